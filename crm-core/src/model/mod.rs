//! The domain model (Atomic CRM's, extended): workspaces, users, companies, contacts, deals,
//! notes, tasks, tags and per-workspace configuration.
//!
//! Each record type implements [`Entity`]; [`Record`] is the type-erased form that crosses
//! the [`crate::Storage`] trait. Every record carries its [`Meta`]: id, workspace, creation and
//! update instants, a version that grows by one on each update (optimistic concurrency) and,
//! for the kinds that support soft delete, `deleted_at`.
//!
//! # One declaration per record type
//!
//! Each record type is declared once, in its file, with the `entity!` macro (see
//! `model/declare.rs` for the grammar): one line per field giving its Rust type, who sets it
//! (create input, update patch, the core), how lists filter and sort by it, the [`Rule`] the
//! validator holds it to, and whether it is personal data, masked, searched, a reference or
//! the owner. From that the macro writes the record struct (with the bookkeeping fields), its
//! `…Input` and `…Patch`, and its [`Entity`] implementation; [`Entity::declaration`] (and
//! [`EntityKind::declaration`]) give the [`Declaration`] itself, from which come the
//! filterable fields ([`EntityKind::fields`]), the JSON schemas of records, inputs and
//! patches ([`Declaration::record_schema`], ...) and the personal-data inventory
//! ([`EntityKind::personal_data_fields`]). What a declaration cannot say — labels, unique
//! keys, rules across fields — is ordinary code beside it.
//!
//! ```
//! use crm_core::model::{EntityKind, Rule};
//!
//! let contact = EntityKind::Contact.declaration();
//! let first_name = contact.field("first_name").unwrap();
//! assert!(matches!(first_name.rule, Rule::Text { max: 200, required: true }));
//! assert!(first_name.personal);
//! let personal: Vec<&str> = EntityKind::Company.personal_data_fields().map(|f| f.name).collect();
//! assert_eq!(personal, ["phone_number", "address", "zipcode", "tax_identifier"]);
//! ```

mod company;
mod config;
pub(crate) mod consent;
mod contact;
mod deal;
mod declare;
mod field;
mod identity;
mod kinds;
mod note;
mod retention;
mod schema;
mod tag;
mod task;
mod user;
mod workspace;

pub use company::{COMPANY_SIZES, Company, CompanyId, CompanyInput, CompanyPatch};
pub use config::{Configuration, ConfigurationId, ConfigurationPatch, DealStage, NoteStatus};
pub use contact::{
    Contact, ContactId, ContactInput, ContactPatch, EmailEntry, EmailKind, PhoneEntry, PhoneKind,
};
pub use deal::{Deal, DealId, DealInput, DealPatch};
pub use field::{Access, ConfigList, Declaration, FieldDef, Rule, SearchKind, patterns, rules};
pub use identity::{
    ClientInfo, Credential, CredentialId, PasswordHash, ResetToken, ResetTokenId, RetiredToken,
    RevokeReason, Session, SessionId, TokenHash,
};
pub use note::{Attachment, Note, NoteId, NoteInput, NotePatch};
pub use retention::{ClientDetails, MAX_DAYS, RetentionPolicy, truncate_address};
pub use tag::{Tag, TagId, TagInput, TagPatch};
pub use task::{Priority, Task, TaskId, TaskInput, TaskPatch};
pub use user::{Role, User, UserId, UserInput, UserPatch};
pub use workspace::{Workspace, WorkspaceId};

pub use crate::kind::EntityKind;

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::error::FieldError;
use crate::query::Value;

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
    /// The declaration of the kind's fields (see [`Declaration`]).
    fn declaration() -> &'static Declaration;
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
            /// The declaration of `kind`'s record type.
            pub fn declaration_of(kind: EntityKind) -> &'static Declaration {
                match kind { $(EntityKind::$variant => <$variant as Entity>::declaration(),)* }
            }
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

crate::kind::with_kinds!(records);

impl crate::search::Searchable for Record {
    fn search_words(&self, out: &mut Vec<String>) {
        Record::search_words(self, out);
    }
    fn contact_points(&self, out: &mut Vec<String>) {
        Record::contact_points(self, out);
    }
}

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
