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

/// The kinds of records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// A tenant.
    Workspace,
    /// A member of a workspace.
    User,
    /// An organization.
    Company,
    /// A person.
    Contact,
    /// A sales opportunity.
    Deal,
    /// A note on a contact or a deal.
    Note,
    /// A to-do item with an owner.
    Task,
    /// A label for contacts.
    Tag,
    /// The per-workspace settings.
    Configuration,
    /// A login session (internal: identity layer).
    Session,
    /// A user's password hash (internal: identity layer).
    Credential,
    /// A password-reset token (internal: identity layer).
    ResetToken,
}

impl EntityKind {
    /// Every kind.
    pub const ALL: [EntityKind; 12] = [
        EntityKind::Workspace,
        EntityKind::User,
        EntityKind::Company,
        EntityKind::Contact,
        EntityKind::Deal,
        EntityKind::Note,
        EntityKind::Task,
        EntityKind::Tag,
        EntityKind::Configuration,
        EntityKind::Session,
        EntityKind::Credential,
        EntityKind::ResetToken,
    ];

    /// The noun used in messages ("Unable to save *contact*").
    pub const fn noun(self) -> &'static str {
        match self {
            EntityKind::Workspace => "workspace",
            EntityKind::User => "user",
            EntityKind::Company => "company",
            EntityKind::Contact => "contact",
            EntityKind::Deal => "deal",
            EntityKind::Note => "note",
            EntityKind::Task => "task",
            EntityKind::Tag => "tag",
            EntityKind::Configuration => "configuration",
            EntityKind::Session => "session",
            EntityKind::Credential => "password",
            EntityKind::ResetToken => "password reset",
        }
    }

    /// A stable one-byte tag, for key encodings of embedded stores.
    pub const fn tag(self) -> u8 {
        match self {
            EntityKind::Workspace => 1,
            EntityKind::User => 2,
            EntityKind::Company => 3,
            EntityKind::Contact => 4,
            EntityKind::Deal => 5,
            EntityKind::Note => 6,
            EntityKind::Task => 7,
            EntityKind::Tag => 8,
            EntityKind::Configuration => 9,
            EntityKind::Session => 10,
            EntityKind::Credential => 11,
            EntityKind::ResetToken => 12,
        }
    }

    /// Whether records of this kind are soft deleted (and can be restored).
    pub const fn soft_deletes(self) -> bool {
        matches!(
            self,
            EntityKind::Company
                | EntityKind::Contact
                | EntityKind::Deal
                | EntityKind::Note
                | EntityKind::Task
                | EntityKind::Tag
        )
    }

    /// Whether lists of this kind accept a full-text query.
    pub const fn searchable(self) -> bool {
        matches!(
            self,
            EntityKind::Company | EntityKind::Contact | EntityKind::Deal
        )
    }
}

impl std::fmt::Display for EntityKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.noun())
    }
}
