//! Recently viewed records: per user and kind, the last [`RECENT_LIMIT`] records the user
//! opened, newest first — kept by the store, so the list is the same on every device and
//! every instance.
//!
//! Recording a view is not on the read path: the host (e.g. `crm-http`) queues views in
//! memory and hands them to [`crate::Storage::record_views`] in batches, off the request.
//! What a crash can lose is what was still queued: at most the host's flush interval of
//! views (a second or two), never anything else. A store keeps, per (workspace, user, kind),
//! each record once with the time of its latest view, and at most [`RECENT_LIMIT`] records
//! (the oldest views fall off); a view holds ids and a time, no personal data of its own.

use uuid::Uuid;

use crate::clock::Timestamp;
use crate::id::{UserId, WorkspaceId};
use crate::model::EntityKind;

/// How many recently viewed records a store keeps per user and kind.
pub const RECENT_LIMIT: usize = 100;

/// One view of a record by a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// Who viewed.
    pub user_id: UserId,
    /// What kind of record.
    pub entity: EntityKind,
    /// Which record.
    pub record_id: Uuid,
    /// When.
    pub at: Timestamp,
}

/// The latest view of each record in `views` per (workspace, user, kind, record), in no
/// particular order: what a store applies (a later view of the same record wins).
pub fn latest(views: &[View]) -> Vec<View> {
    let mut out: Vec<View> = Vec::with_capacity(views.len());
    let mut at: std::collections::HashMap<(WorkspaceId, UserId, EntityKind, Uuid), usize> =
        std::collections::HashMap::with_capacity(views.len());
    for v in views {
        match at.entry((v.workspace_id, v.user_id, v.entity, v.record_id)) {
            std::collections::hash_map::Entry::Occupied(e) => {
                let o = &mut out[*e.get()];
                if o.at < v.at {
                    *o = *v;
                }
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(out.len());
                out.push(*v);
            }
        }
    }
    out
}
