//! Role-based access control (DESIGN §4), decided in one place.
//!
//! [`decide`] answers, for a role, an [`Action`] on a [`Resource`], and the caller's
//! [`Ownership`] of the record, one of: allowed, forbidden (403), or *hidden* — the record
//! must look as if it does not exist (404), so that "own only" scopes leak nothing. List
//! queries use [`read_scope`] to restrict results up front.
//!
//! The policy is expressed with ownership scopes ([`Scope::Own`]) so a future per-workspace
//! "sales see only their own records" mode is a table change, not a new mechanism.

use serde::{Deserialize, Serialize};

use crate::kind::EntityKind;
use crate::model::Role;

/// What is acted upon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    /// Companies.
    Company,
    /// Contacts.
    Contact,
    /// Deals.
    Deal,
    /// Notes.
    Note,
    /// Tags.
    Tag,
    /// Tasks.
    Task,
    /// Users.
    User,
    /// Workspace configuration.
    Configuration,
    /// The audit log.
    AuditLog,
}

impl Resource {
    /// The resource of a record kind of the change feed ([`EntityKind::RECORDS`]); `None`
    /// for the other kinds.
    pub fn of_record(kind: EntityKind) -> Option<Resource> {
        Some(match kind {
            EntityKind::Company => Resource::Company,
            EntityKind::Contact => Resource::Contact,
            EntityKind::Deal => Resource::Deal,
            EntityKind::Note => Resource::Note,
            EntityKind::Task => Resource::Task,
            EntityKind::Tag => Resource::Tag,
            _ => return None,
        })
    }
}

impl Resource {
    /// Every resource.
    pub const ALL: [Resource; 9] = [
        Resource::Company,
        Resource::Contact,
        Resource::Deal,
        Resource::Note,
        Resource::Tag,
        Resource::Task,
        Resource::User,
        Resource::Configuration,
        Resource::AuditLog,
    ];
}

/// What is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Read one or list.
    Read,
    /// Create.
    Create,
    /// Update (including archive, move, completion).
    Update,
    /// Soft delete (users: disable).
    Delete,
    /// Restore a soft-deleted record.
    Restore,
    /// Hard delete a soft-deleted record.
    Purge,
    /// Merge two records.
    Merge,
    /// Change a user's role.
    ChangeRole,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 8] = [
        Action::Read,
        Action::Create,
        Action::Update,
        Action::Delete,
        Action::Restore,
        Action::Purge,
        Action::Merge,
        Action::ChangeRole,
    ];
}

/// The caller's relation to the record acted upon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ownership {
    /// The caller owns it (its task, its own user record).
    Own,
    /// Someone else's, or nobody's.
    Others,
}

/// How much of a resource a role may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Nothing: the action is forbidden.
    None,
    /// Only records the caller owns; others' are hidden.
    Own,
    /// Every record of the workspace.
    All,
}

/// The outcome of a permission check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refuse with [`crate::ErrorKind::Forbidden`].
    Forbid,
    /// Pretend the record does not exist ([`crate::ErrorKind::NotFound`]).
    Hide,
}

/// The scope a role has for an action on a resource.
pub fn scope(role: Role, action: Action, resource: Resource) -> Scope {
    use Action as A;
    use Resource as R;
    use Role::*;
    use Scope::{All, Own};
    let none = Scope::None;
    match resource {
        R::Company | R::Contact | R::Deal | R::Note | R::Tag => match (role, action) {
            (_, A::Read) => All,
            (Admin | Manager | Sales, A::Create | A::Update | A::Delete) => All,
            (Admin, A::Restore | A::Purge) => All,
            (Admin | Manager, A::Merge) if resource == R::Contact => All,
            _ => none,
        },
        R::Task => match (role, action) {
            (Admin | Manager, A::Read | A::Create | A::Update | A::Delete) => All,
            (Admin, A::Restore | A::Purge) => All,
            (Sales, A::Read | A::Create | A::Update | A::Delete) => Own,
            (ReadOnly, A::Read) => Own,
            _ => none,
        },
        R::User => match (role, action) {
            (_, A::Read) => All,
            (Admin, A::Create | A::Update | A::Delete | A::ChangeRole) => All,
            (Manager | Sales | ReadOnly, A::Update) => Own,
            _ => none,
        },
        R::Configuration => match (role, action) {
            (_, A::Read) => All,
            (Admin, A::Update) => All,
            _ => none,
        },
        R::AuditLog => match (role, action) {
            (Admin | Manager, A::Read) => All,
            _ => none,
        },
    }
}

/// Decides one action on one record.
///
/// Own-scoped *users* are the exception to hiding: every user record is readable by
/// everyone, so touching another user's profile is forbidden (403), not hidden.
pub fn decide(role: Role, action: Action, resource: Resource, ownership: Ownership) -> Decision {
    match scope(role, action, resource) {
        Scope::All => Decision::Allow,
        Scope::Own if ownership == Ownership::Own => Decision::Allow,
        Scope::Own if resource_visible(role, resource, ownership) => Decision::Forbid,
        Scope::Own => Decision::Hide,
        Scope::None if resource_visible(role, resource, ownership) => Decision::Forbid,
        Scope::None => Decision::Hide,
    }
}

/// Whether the caller can see the record at all (if not, every refusal is a 404).
fn resource_visible(role: Role, resource: Resource, ownership: Ownership) -> bool {
    match scope(role, Action::Read, resource) {
        Scope::All => true,
        Scope::Own => ownership == Ownership::Own,
        Scope::None => false,
    }
}

/// The read scope used to restrict lists and searches.
pub fn read_scope(role: Role, resource: Resource) -> Scope {
    scope(role, Action::Read, resource)
}
