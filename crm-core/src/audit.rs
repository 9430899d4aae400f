//! The audit trail and the activity feed.
//!
//! Every mutation produces [`AuditEntry`]s (who, when, which record, what action and the
//! field-level before/after values) that the core hands to the store *in the same commit* as
//! the change: an entry exists if and only if the change does. The activity feed (Atomic
//! CRM's dashboard: companies, contacts and deals created, notes added) is a projection of
//! the same entries, readable by everyone; the full audit log is for admins and managers.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::kind::{EntityKind, Id};
use crate::model::{Record, UserId, WorkspaceId};

/// Id of an [`AuditEntry`].
pub type AuditId = Id<AuditEntry>;

/// What happened to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// Created.
    Create,
    /// Fields changed.
    Update,
    /// Soft deleted (users: disabled).
    Delete,
    /// Restored from soft deletion.
    Restore,
    /// Permanently removed.
    Purge,
    /// Merged into another record (the loser) or absorbed one (the winner).
    Merge,
    /// Archived.
    Archive,
    /// Unarchived.
    Unarchive,
    /// Moved (deal stage or order).
    Move,
    /// The person's personal data was erased everywhere (see [`crate::privacy`]): the one
    /// entry that stays about the erased record, with no personal data in it.
    Erase,
    /// A departed user's personal data was replaced by "former user N" (see
    /// [`crate::privacy`]).
    Anonymize,
}

impl AuditAction {
    /// Every action, in declaration order.
    pub const ALL: [AuditAction; 11] = [
        AuditAction::Create,
        AuditAction::Update,
        AuditAction::Delete,
        AuditAction::Restore,
        AuditAction::Purge,
        AuditAction::Merge,
        AuditAction::Archive,
        AuditAction::Unarchive,
        AuditAction::Move,
        AuditAction::Erase,
        AuditAction::Anonymize,
    ];
}

/// One field's change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// Field name.
    pub field: String,
    /// Value before (`null` when created).
    pub before: serde_json::Value,
    /// Value after (`null` when purged).
    pub after: serde_json::Value,
}

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Id (time-ordered).
    pub id: AuditId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// When.
    pub at: Timestamp,
    /// Who (none for system actions such as bootstrap).
    pub actor_id: Option<UserId>,
    /// Kind of record.
    pub entity: EntityKind,
    /// Which record.
    pub record_id: Uuid,
    /// A short label of the record at the time (for feeds).
    pub label: String,
    /// What happened.
    pub action: AuditAction,
    /// Field-level changes.
    pub changes: Vec<FieldChange>,
}

/// Field-level differences between two versions of a record (either may be absent).
/// Bookkeeping fields (`version`, `updated_at`) are left out: they change every time.
pub fn diff(before: Option<&Record>, after: Option<&Record>) -> Vec<FieldChange> {
    let obj = |r: Option<&Record>| match r.map(Record::to_json) {
        Some(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let (b, a) = (obj(before), obj(after));
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !matches!(k.as_str(), "version" | "updated_at"))
        .filter_map(|k| {
            let bv = b.get(k).cloned().unwrap_or(serde_json::Value::Null);
            let av = a.get(k).cloned().unwrap_or(serde_json::Value::Null);
            (bv != av).then(|| FieldChange {
                field: k.clone(),
                before: bv,
                after: av,
            })
        })
        .collect()
}

/// Filters for reading the audit log, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this record.
    pub record_id: Option<Uuid>,
    /// Only entries of this user's own actions.
    pub actor_id: Option<UserId>,
    /// Only these kinds.
    pub entities: Vec<EntityKind>,
    /// Only these actions.
    pub actions: Vec<AuditAction>,
    /// Only entries older than this one (paging).
    pub before: Option<AuditId>,
    /// At most this many (1..=100, default 25).
    pub limit: Option<usize>,
}

impl AuditQuery {
    /// Whether an entry passes the filters (not the paging).
    pub fn admits(&self, e: &AuditEntry) -> bool {
        self.record_id.is_none_or(|r| r == e.record_id)
            && self.actor_id.is_none_or(|a| e.actor_id == Some(a))
            && (self.entities.is_empty() || self.entities.contains(&e.entity))
            && (self.actions.is_empty() || self.actions.contains(&e.action))
            && self.before.is_none_or(|b| e.id < b)
    }
}

/// One item of the activity feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityItem {
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor_id: Option<UserId>,
    /// What kind of record was created.
    pub entity: EntityKind,
    /// Which.
    pub record_id: Uuid,
    /// Its label at the time.
    pub label: String,
    /// The audit entry it comes from (use as the paging cursor).
    pub audit_id: AuditId,
}
