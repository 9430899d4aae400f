//! The domain model (Atomic CRM's, extended): workspaces, users, companies, contacts, deals,
//! notes, tasks, tags and per-workspace configuration.
//!
//! Each record type implements [`Entity`]; [`Record`] is the type-erased form that crosses
//! the [`crate::Storage`] trait. Every record carries its [`Meta`]: id, workspace, creation and
//! update instants, a version that grows by one on each update (optimistic concurrency) and,
//! for the kinds that support soft delete, `deleted_at`.

mod company;
mod config;
mod contact;
mod deal;
mod identity;
mod note;
mod retention;
mod tag;
mod task;
mod user;
mod workspace;

pub use company::{COMPANY_SIZES, Company, CompanyInput, CompanyPatch};
pub use config::{Configuration, ConfigurationPatch, DealStage, NoteStatus};
pub use contact::{
    Contact, ContactInput, ContactPatch, EmailEntry, EmailKind, PhoneEntry, PhoneKind,
};
pub use deal::{Deal, DealInput, DealPatch};
pub use identity::{
    ClientInfo, Credential, PasswordHash, ResetToken, RetiredToken, RevokeReason, Session,
    SessionId, TokenHash,
};
pub use note::{Attachment, Note, NoteInput, NotePatch};
pub use retention::{ClientDetails, MAX_DAYS, RetentionPolicy, truncate_address};
pub use tag::{Tag, TagInput, TagPatch};
pub use task::{Priority, Task, TaskInput, TaskPatch};
pub use user::{Role, User, UserInput, UserPatch};
pub use workspace::Workspace;

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::error::FieldError;
use crate::id::{UserId, WorkspaceId};
use crate::query::{FieldSpec, FieldType, Sort, Value};

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

use FieldType as T;

const COMMON_SORTS: [FieldSpec; 2] = [
    FieldSpec::both("created_at", T::Time),
    FieldSpec::both("updated_at", T::Time),
];

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

    /// The fields usable in filters and sorts.
    pub fn fields(self) -> &'static [FieldSpec] {
        const USER: &[FieldSpec] = &[
            COMMON_SORTS[0],
            COMMON_SORTS[1],
            FieldSpec::both("email", T::Text),
            FieldSpec::both("first_name", T::Text),
            FieldSpec::both("last_name", T::Text),
            FieldSpec::filter("role", T::Text),
            FieldSpec::filter("disabled", T::Bool),
        ];
        const COMPANY: &[FieldSpec] = &[
            COMMON_SORTS[0],
            COMMON_SORTS[1],
            FieldSpec::both("name", T::Text),
            FieldSpec::filter("sector", T::Text),
            FieldSpec::filter("size", T::Int),
            FieldSpec::filter("city", T::Text),
            FieldSpec::filter("country", T::Text),
            FieldSpec::filter("sales_id", T::Id),
        ];
        const CONTACT: &[FieldSpec] = &[
            COMMON_SORTS[0],
            COMMON_SORTS[1],
            FieldSpec::both("first_name", T::Text),
            FieldSpec::both("last_name", T::Text),
            FieldSpec::both("last_seen", T::Time),
            FieldSpec::filter("company_id", T::Id),
            FieldSpec::filter("sales_id", T::Id),
            FieldSpec::filter("status", T::Text),
            FieldSpec::filter("has_newsletter", T::Bool),
            FieldSpec::multi("tags", T::Id),
        ];
        const DEAL: &[FieldSpec] = &[
            COMMON_SORTS[0],
            COMMON_SORTS[1],
            FieldSpec::both("name", T::Text),
            FieldSpec::both("amount", T::Int),
            FieldSpec::both("expected_closing_date", T::Date),
            FieldSpec::both("index", T::Int),
            FieldSpec::filter("stage", T::Text),
            FieldSpec::filter("category", T::Text),
            FieldSpec::filter("company_id", T::Id),
            FieldSpec::filter("sales_id", T::Id),
            FieldSpec::filter("archived", T::Bool),
            FieldSpec::multi("contact_ids", T::Id),
        ];
        const NOTE: &[FieldSpec] = &[
            COMMON_SORTS[0],
            COMMON_SORTS[1],
            FieldSpec::both("date", T::Time),
            FieldSpec::filter("contact_id", T::Id),
            FieldSpec::filter("deal_id", T::Id),
            FieldSpec::filter("sales_id", T::Id),
        ];
        const TASK: &[FieldSpec] = &[
            COMMON_SORTS[0],
            COMMON_SORTS[1],
            FieldSpec::both("due_date", T::Date),
            FieldSpec::filter("owner_id", T::Id),
            FieldSpec::filter("completed", T::Bool),
            FieldSpec::filter("type", T::Text),
            FieldSpec::filter("priority", T::Text),
            FieldSpec::filter("contact_id", T::Id),
            FieldSpec::filter("deal_id", T::Id),
            FieldSpec::filter("company_id", T::Id),
        ];
        const TAG: &[FieldSpec] = &[
            COMMON_SORTS[0],
            COMMON_SORTS[1],
            FieldSpec::both("name", T::Text),
        ];
        const OTHER: &[FieldSpec] = &[COMMON_SORTS[0], COMMON_SORTS[1]];
        const BY_USER: &[FieldSpec] = &[
            COMMON_SORTS[0],
            COMMON_SORTS[1],
            FieldSpec::filter("user_id", T::Id),
        ];
        match self {
            EntityKind::User => USER,
            EntityKind::Company => COMPANY,
            EntityKind::Contact => CONTACT,
            EntityKind::Deal => DEAL,
            EntityKind::Note => NOTE,
            EntityKind::Task => TASK,
            EntityKind::Tag => TAG,
            EntityKind::Workspace | EntityKind::Configuration | EntityKind::Credential => OTHER,
            EntityKind::Session | EntityKind::ResetToken => BY_USER,
        }
    }

    /// The sort used when a list names none.
    pub fn default_sort(self) -> Sort {
        match self {
            EntityKind::Company | EntityKind::Tag => Sort::asc("name"),
            EntityKind::Contact => Sort::desc("last_seen"),
            EntityKind::User => Sort::asc("email"),
            EntityKind::Note => Sort::desc("date"),
            EntityKind::Task => Sort::asc("due_date"),
            _ => Sort::desc("created_at"),
        }
    }

    /// Secondary indexes an ordered key/value store should keep: each is a list of fields,
    /// the leading ones matched by equality filters and the last one the sort key (rows are
    /// ordered by it, then by id). Every sortable field has a one-field index, so every sort
    /// can be served by an index; the composite ones serve the common filtered lists.
    pub fn indexes(self) -> &'static [&'static [&'static str]] {
        match self {
            EntityKind::User => &[
                &["created_at"],
                &["updated_at"],
                &["email"],
                &["first_name"],
                &["last_name"],
            ],
            EntityKind::Company => &[
                &["created_at"],
                &["updated_at"],
                &["name"],
                &["sales_id", "name"],
            ],
            EntityKind::Contact => &[
                &["created_at"],
                &["updated_at"],
                &["first_name"],
                &["last_name"],
                &["last_seen"],
                &["company_id", "last_seen"],
                &["sales_id", "last_seen"],
                &["tags", "last_seen"],
            ],
            EntityKind::Deal => &[
                &["created_at"],
                &["updated_at"],
                &["name"],
                &["amount"],
                &["expected_closing_date"],
                &["index"],
                &["stage", "index"],
                &["company_id", "created_at"],
                &["contact_ids", "created_at"],
            ],
            EntityKind::Note => &[
                &["created_at"],
                &["updated_at"],
                &["date"],
                &["contact_id", "date"],
                &["deal_id", "date"],
            ],
            EntityKind::Task => &[
                &["created_at"],
                &["updated_at"],
                &["due_date"],
                &["owner_id", "created_at"],
                &["owner_id", "updated_at"],
                &["owner_id", "due_date"],
                &["contact_id", "due_date"],
                &["deal_id", "due_date"],
                &["company_id", "due_date"],
            ],
            EntityKind::Tag => &[&["created_at"], &["updated_at"], &["name"]],
            EntityKind::Workspace | EntityKind::Configuration | EntityKind::Credential => {
                &[&["created_at"], &["updated_at"]]
            }
            EntityKind::Session | EntityKind::ResetToken => {
                &[&["created_at"], &["updated_at"], &["user_id", "created_at"]]
            }
        }
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

/// The bookkeeping fields every record has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Record id.
    pub id: Uuid,
    /// Owning workspace (for a workspace, itself).
    pub workspace_id: WorkspaceId,
    /// Creation instant.
    pub created_at: Timestamp,
    /// Last update instant.
    pub updated_at: Timestamp,
    /// Starts at 1, grows by one on every update.
    pub version: u64,
    /// When the record was soft deleted (kinds that support it).
    pub deleted_at: Option<Timestamp>,
}

/// A reference from one record to another, which must exist in the same workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference {
    /// Field path holding the reference (for field errors).
    pub field: &'static str,
    /// Kind of the referenced record.
    pub kind: EntityKind,
    /// Its id.
    pub id: Uuid,
}

/// Behaviour shared by every record type.
pub trait Entity: Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Which kind this is.
    const KIND: EntityKind;
    /// The bookkeeping fields.
    fn meta(&self) -> Meta;
    /// Replaces the bookkeeping fields (the core's job, not a host's).
    fn set_meta(&mut self, meta: Meta);
    /// Value of a filterable/sortable field (see [`EntityKind::fields`]); `Null` if unknown.
    fn field(&self, name: &str) -> Value;
    /// Appends the words the record is found by: a query term matches one when it is a
    /// prefix of it (see [`crate::search`]).
    fn search_words(&self, _out: &mut Vec<String>) {}
    /// Appends the record's contact points: normalized email-address words and phone digit
    /// runs, which a query term of at least [`crate::search::MIN_SUBSTRING`] chars also
    /// matches anywhere inside (see [`crate::search`]). None by default.
    fn contact_points(&self, _out: &mut Vec<String>) {}
    /// Masks the personal fields `masking` names (see [`crate::mask`]); kinds without
    /// personal fields keep the default, which changes nothing.
    fn mask(&mut self, _masking: &crate::mask::Masking) {}
    /// Values that must be unique in the workspace, as (constraint name, normalized value).
    fn unique_keys(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// A short human label (activity feed, audit).
    fn label(&self) -> String;
    /// The user owning the record, if the kind has owners.
    fn owner(&self) -> Option<UserId> {
        None
    }
    /// Other records this one points at.
    fn references(&self) -> Vec<Reference> {
        Vec::new()
    }
    /// Trims texts and normalizes values before validation.
    fn normalize(&mut self) {}
    /// Every field violation, given the workspace configuration.
    fn validate(&self, config: &Configuration) -> Vec<FieldError>;
    /// Into the type-erased form.
    fn into_record(self) -> Record;
    /// From the type-erased form, if it is of this kind.
    fn from_record(record: Record) -> Option<Self>;
}

macro_rules! records {
    ($($variant:ident),*) => {
        /// A record of any kind: what crosses the [`crate::Storage`] trait.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        pub enum Record {
            $( #[doc = concat!("A ", stringify!($variant), ".")] $variant($variant), )*
        }

        impl Record {
            /// Its kind.
            pub fn kind(&self) -> EntityKind {
                match self { $(Record::$variant(_) => EntityKind::$variant,)* }
            }
            /// Its bookkeeping fields.
            pub fn meta(&self) -> Meta {
                match self { $(Record::$variant(r) => r.meta(),)* }
            }
            /// Replaces its bookkeeping fields.
            pub fn set_meta(&mut self, meta: Meta) {
                match self { $(Record::$variant(r) => r.set_meta(meta),)* }
            }
            /// Value of a filterable/sortable field.
            pub fn field(&self, name: &str) -> Value {
                match self { $(Record::$variant(r) => r.field(name),)* }
            }
            /// Appends the words the record is found by.
            pub fn search_words(&self, out: &mut Vec<String>) {
                match self { $(Record::$variant(r) => r.search_words(out),)* }
            }
            /// Appends the contact points the record is found by (substring-matched).
            pub fn contact_points(&self, out: &mut Vec<String>) {
                match self { $(Record::$variant(r) => r.contact_points(out),)* }
            }
            /// Masks its personal fields (see [`crate::mask`]).
            pub fn mask(&mut self, masking: &crate::mask::Masking) {
                match self { $(Record::$variant(r) => r.mask(masking),)* }
            }
            /// Values that must be unique in the workspace (none while soft deleted: a
            /// deleted tag's name can be reused; restoring it then checks again).
            pub fn unique_keys(&self) -> Vec<(&'static str, String)> {
                if self.meta().deleted_at.is_some() {
                    return Vec::new();
                }
                match self { $(Record::$variant(r) => r.unique_keys(),)* }
            }
            /// The user owning the record, if the kind has owners.
            pub fn owner(&self) -> Option<UserId> {
                match self { $(Record::$variant(r) => r.owner(),)* }
            }
            /// A short human label.
            pub fn label(&self) -> String {
                match self { $(Record::$variant(r) => r.label(),)* }
            }
            /// Serializes the record's own fields (without the `kind` tag) to a JSON object, with
            /// secrets (token and password hashes) left out: the form audit entries show.
            pub fn to_json(&self) -> serde_json::Value {
                let mut v = match self { $(Record::$variant(r) => serde_json::to_value(r).unwrap_or_default(),)* };
                if let serde_json::Value::Object(map) = &mut v {
                    for secret in ["password_hash", "current_token", "retired", "token_hash"] {
                        map.remove(secret);
                    }
                }
                v
            }
            /// Serializes the record's own fields to JSON bytes (the redb value format).
            ///
            /// # Errors
            /// The JSON error (not expected for the crate's own types, but never hidden).
            pub fn to_json_bytes(&self) -> serde_json::Result<Vec<u8>> {
                match self { $(Record::$variant(r) => serde_json::to_vec(r),)* }
            }
            /// Parses the record's own fields from JSON bytes, given its kind.
            ///
            /// # Errors
            /// The JSON error when the bytes are not a record of that kind.
            pub fn from_json_bytes(kind: EntityKind, bytes: &[u8]) -> serde_json::Result<Record> {
                Ok(match kind { $(EntityKind::$variant => Record::$variant(serde_json::from_slice(bytes)?),)* })
            }
        }
    };
}

records!(
    Workspace,
    User,
    Company,
    Contact,
    Deal,
    Note,
    Task,
    Tag,
    Configuration,
    Session,
    Credential,
    ResetToken
);

impl Record {
    /// Its id.
    pub fn id(&self) -> Uuid {
        self.meta().id
    }
    /// Its workspace.
    pub fn workspace_id(&self) -> WorkspaceId {
        self.meta().workspace_id
    }
    /// Its version.
    pub fn version(&self) -> u64 {
        self.meta().version
    }
    /// Whether it is soft deleted.
    pub fn is_deleted(&self) -> bool {
        self.meta().deleted_at.is_some()
    }
    /// Down-casts to a concrete type.
    pub fn into_entity<E: Entity>(self) -> Option<E> {
        E::from_record(self)
    }
}

/// Implements the `Meta` accessors and the record conversions of an entity struct with the
/// standard field names.
macro_rules! entity_common {
    ($ty:ident, soft_delete) => {
        fn meta(&self) -> $crate::model::Meta {
            $crate::model::Meta {
                id: self.id.uuid(),
                workspace_id: self.workspace_id,
                created_at: self.created_at,
                updated_at: self.updated_at,
                version: self.version,
                deleted_at: self.deleted_at,
            }
        }
        fn set_meta(&mut self, m: $crate::model::Meta) {
            self.id = m.id.into();
            self.workspace_id = m.workspace_id;
            self.created_at = m.created_at;
            self.updated_at = m.updated_at;
            self.version = m.version;
            self.deleted_at = m.deleted_at;
        }
        entity_common!(@conv $ty);
    };
    ($ty:ident, no_soft_delete) => {
        fn meta(&self) -> $crate::model::Meta {
            $crate::model::Meta {
                id: self.id.uuid(),
                workspace_id: self.workspace_id,
                created_at: self.created_at,
                updated_at: self.updated_at,
                version: self.version,
                deleted_at: None,
            }
        }
        fn set_meta(&mut self, m: $crate::model::Meta) {
            self.id = m.id.into();
            self.workspace_id = m.workspace_id;
            self.created_at = m.created_at;
            self.updated_at = m.updated_at;
            self.version = m.version;
        }
        entity_common!(@conv $ty);
    };
    (@conv $ty:ident) => {
        fn into_record(self) -> $crate::model::Record {
            $crate::model::Record::$ty(self)
        }
        fn from_record(record: $crate::model::Record) -> Option<Self> {
            match record {
                $crate::model::Record::$ty(r) => Some(r),
                _ => None,
            }
        }
    };
}
pub(crate) use entity_common;

/// Common value helpers for `Entity::field` implementations.
pub(crate) fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}
pub(crate) fn opt_text(s: &Option<String>) -> Value {
    s.as_deref().map_or(Value::Null, text)
}
pub(crate) fn opt_id<T>(id: Option<crate::id::Id<T>>) -> Value {
    id.map_or(Value::Null, |i| Value::Id(i.uuid()))
}
pub(crate) fn opt_time(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, Value::Time)
}

/// Deserializes a field that distinguishes "absent" (`None`, keep) from `null`
/// (`Some(None)`, clear) in patches.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Applies a patch field: `Some(v)` replaces.
pub(crate) fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *target = v;
    }
}
