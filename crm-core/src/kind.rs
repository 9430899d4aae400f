//! What names a record: its [`EntityKind`] and its typed [`Id`] — the crate's leaf module.
//!
//! Nothing here imports anything else of the crate, so every other module can build on it:
//! errors name the kind of record they are about, the model declares one id type per record
//! type (`ContactId = Id<Contact>`, ...), the stores key rows by kind and id. What a kind
//! *has* — its fields, filters, sorts and indexes — is the model's business
//! ([`crate::model`] adds those methods to [`EntityKind`]).
//!
//! Ids are UUIDv7: time-ordered (so new records cluster at the end of indexes) and generated
//! without coordination, so any number of instances can create records at once. Each kind of
//! record has its own id type (`Id<T>` for the record type `T`) so that a deal id cannot be
//! passed where a contact id is expected; on the wire they are plain UUID strings.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// The id of a record of type `T`.
pub struct Id<T> {
    uuid: Uuid,
    _kind: PhantomData<fn() -> T>,
}

impl<T> Id<T> {
    /// A new, unique, time-ordered id.
    pub fn generate() -> Self {
        Id::from_uuid(Uuid::now_v7())
    }

    /// Wraps an existing UUID.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Id {
            uuid,
            _kind: PhantomData,
        }
    }

    /// The underlying UUID.
    pub const fn uuid(self) -> Uuid {
        self.uuid
    }

    /// The id as 16 bytes (big endian; byte order equals time order for v7 ids).
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.uuid.as_bytes()
    }

    /// Re-types the id (used where a generic record id meets a typed one).
    pub const fn cast<U>(self) -> Id<U> {
        Id::from_uuid(self.uuid)
    }
}

impl<T> Clone for Id<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Id<T> {}
impl<T> PartialEq for Id<T> {
    fn eq(&self, other: &Self) -> bool {
        self.uuid == other.uuid
    }
}
impl<T> Eq for Id<T> {}
impl<T> PartialOrd for Id<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Id<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.uuid.cmp(&other.uuid)
    }
}
impl<T> Hash for Id<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.uuid.hash(state)
    }
}
impl<T> fmt::Debug for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.uuid, f)
    }
}
impl<T> fmt::Display for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.uuid, f)
    }
}
impl<T> FromStr for Id<T> {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Id::from_uuid)
    }
}
impl<T> From<Uuid> for Id<T> {
    fn from(uuid: Uuid) -> Self {
        Id::from_uuid(uuid)
    }
}
impl<T> Serialize for Id<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.uuid.serialize(s)
    }
}
impl<'de, T> Deserialize<'de> for Id<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Uuid::deserialize(d).map(Id::from_uuid)
    }
}

/// Declares [`EntityKind`] from its table, and `with_kinds!`, which hands the list of kinds
/// to another macro (the model builds its `Record` enum from it). `$d` is a `$` for the
/// nested macro.
macro_rules! kinds {
    ($d:tt $(
        $(#[doc = $doc:literal])*
        $kind:ident = $tag:literal, $noun:literal, soft_delete: $soft:literal, searchable: $search:literal;
    )*) => {
        /// The kinds of records.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum EntityKind {
            $( $(#[doc = $doc])* $kind, )*
        }

        impl EntityKind {
            /// Every kind.
            pub const ALL: [EntityKind; [$($tag),*].len()] = [$(EntityKind::$kind),*];

            /// The noun used in messages ("Unable to save *contact*").
            pub const fn noun(self) -> &'static str {
                match self { $(EntityKind::$kind => $noun,)* }
            }

            /// A stable one-byte tag, for key encodings of embedded stores.
            pub const fn tag(self) -> u8 {
                match self { $(EntityKind::$kind => $tag,)* }
            }

            /// Whether records of this kind are soft deleted (and can be restored).
            pub const fn soft_deletes(self) -> bool {
                match self { $(EntityKind::$kind => $soft,)* }
            }

            /// Whether lists of this kind accept a full-text query.
            pub const fn searchable(self) -> bool {
                match self { $(EntityKind::$kind => $search,)* }
            }
        }

        /// Calls `$m! { Kind, ... }` with every kind, in table order.
        macro_rules! with_kinds {
            ($d m:path) => { $d m! { $($kind),* } };
        }
        pub(crate) use with_kinds;
    };
}

// One line a kind: its tag (never reused: embedded stores key rows by it), its noun, and
// whether it soft deletes and is searchable (tests check both against its declaration).
kinds! { $
    /// A tenant.
    Workspace = 1, "workspace", soft_delete: false, searchable: false;
    /// A member of a workspace.
    User = 2, "user", soft_delete: false, searchable: false;
    /// An organization.
    Company = 3, "company", soft_delete: true, searchable: true;
    /// A person.
    Contact = 4, "contact", soft_delete: true, searchable: true;
    /// A sales opportunity.
    Deal = 5, "deal", soft_delete: true, searchable: true;
    /// A note on a contact or a deal.
    Note = 6, "note", soft_delete: true, searchable: false;
    /// A to-do item with an owner.
    Task = 7, "task", soft_delete: true, searchable: false;
    /// A label for contacts.
    Tag = 8, "tag", soft_delete: true, searchable: false;
    /// The per-workspace settings.
    Configuration = 9, "configuration", soft_delete: false, searchable: false;
    /// A login session (internal: identity layer).
    Session = 10, "session", soft_delete: false, searchable: false;
    /// A user's password hash (internal: identity layer).
    Credential = 11, "password", soft_delete: false, searchable: false;
    /// A password-reset token (internal: identity layer).
    ResetToken = 12, "password reset", soft_delete: false, searchable: false;
}

impl EntityKind {
    /// The record resources, which a workspace's users create, edit and soft delete:
    /// companies, contacts, deals, notes, tasks and tags (the change feed's and the trash's
    /// kinds, and the first the API serves).
    pub const RECORDS: [EntityKind; 6] = [
        EntityKind::Company,
        EntityKind::Contact,
        EntityKind::Deal,
        EntityKind::Note,
        EntityKind::Task,
        EntityKind::Tag,
    ];
}

impl std::fmt::Display for EntityKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.noun())
    }
}

/// Random-looking bits for the `n`th id a process makes outside the store (log entries,
/// request ids): SplitMix64 of a seed the operating system gives once per process, plus
/// `n`. Distinct for every `n` within a process, unrelated across processes; no system call
/// after the first (a fresh UUIDv7 costs one `getrandom` each).
pub fn process_unique_bits(n: u64) -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        let mut b = [0u8; 8];
        // Without randomness the bits stay distinct per `n`, which is what ids need;
        // across processes the timestamps of the ids and this seed separate them.
        let _ = getrandom::fill(&mut b);
        u64::from_le_bytes(b)
    });
    let mut z = seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
