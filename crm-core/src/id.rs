//! Typed record ids.
//!
//! Ids are UUIDv7: time-ordered (so new records cluster at the end of indexes) and generated
//! without coordination, so any number of instances can create records at once. Each kind of
//! record has its own id type ([`ContactId`], [`DealId`], ...) so that a deal id cannot be
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

/// Id of a [`crate::model::Workspace`].
pub type WorkspaceId = Id<crate::model::Workspace>;
/// Id of a [`crate::model::User`].
pub type UserId = Id<crate::model::User>;
/// Id of a [`crate::model::Company`].
pub type CompanyId = Id<crate::model::Company>;
/// Id of a [`crate::model::Contact`].
pub type ContactId = Id<crate::model::Contact>;
/// Id of a [`crate::model::Deal`].
pub type DealId = Id<crate::model::Deal>;
/// Id of a [`crate::model::Note`].
pub type NoteId = Id<crate::model::Note>;
/// Id of a [`crate::model::Task`].
pub type TaskId = Id<crate::model::Task>;
/// Id of a [`crate::model::Tag`].
pub type TagId = Id<crate::model::Tag>;
/// Id of an [`crate::audit::AuditEntry`].
pub type AuditId = Id<crate::audit::AuditEntry>;
