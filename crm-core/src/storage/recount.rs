//! [`recount`]: the dashboard's figures computed from the records themselves — the default
//! of [`Storage::dashboard`] and what the conformance suite checks every store's maintained
//! tallies against. Here, beside the trait, so that [`crate::dashboard`] (the figures'
//! definitions, which the trait's signature names) needs nothing of the storage layer.

use std::collections::BTreeMap;

use super::Storage;
use crate::audit::{AuditAction, AuditQuery};
use crate::dashboard::{
    ACTIVITY_KINDS, DashboardData, DashboardQuery, HOT_PREFIX, Tally, contributions, entries,
    next_tasks_prefix, tally_prefixes,
};
use crate::error::Result;
use crate::feed::FEED_KINDS;
use crate::id::WorkspaceId;
use crate::model::Record;
use crate::query::{Deleted, ListQuery, Sort};

/// Computes a [`DashboardData`] by reading every live record (and the audit log) through
/// `storage`'s ordinary reads: the plain definition the maintained tallies must agree with.
/// The default of [`Storage::dashboard`] (what the in-memory reference store answers) and
/// the conformance suite's recount. Proportional to the workspace's size; not one snapshot
/// on stores whose separate reads are not.
///
/// # Errors
/// Storage failures.
pub async fn recount<S: Storage + ?Sized>(
    storage: &S,
    ws: WorkspaceId,
    query: &DashboardQuery,
) -> Result<DashboardData> {
    let prefixes = tally_prefixes(query);
    let mut tallies: BTreeMap<Vec<u8>, Tally> = BTreeMap::new();
    let mut tasks: Vec<(Vec<u8>, Record)> = Vec::new();
    let mut hot: Vec<(Vec<u8>, Record)> = Vec::new();
    let task_prefix = next_tasks_prefix(query.owner);
    for kind in FEED_KINDS {
        let mut q = ListQuery::new(Sort::asc("created_at"), 500);
        q.deleted = Deleted::Exclude;
        loop {
            let rows = storage.list(ws, kind, &q).await?;
            let full = rows.len() == q.limit;
            if let Some(last) = rows.last() {
                q.after = Some(q.sort.cursor_after(last));
            }
            for r in rows {
                for (key, t) in contributions(&r) {
                    let k = key.encode();
                    if prefixes.iter().any(|p| k.starts_with(p)) {
                        tallies.entry(k).or_default().add(t);
                    }
                }
                for e in entries(&r) {
                    if e.starts_with(&task_prefix) {
                        tasks.push((e, r.clone()));
                    } else if e.starts_with(&HOT_PREFIX) {
                        hot.push((e, r.clone()));
                    }
                }
            }
            if !full {
                break;
            }
        }
    }
    tasks.sort_by(|a, b| a.0.cmp(&b.0));
    tasks.truncate(query.next_tasks);
    hot.sort_by(|a, b| b.0.cmp(&a.0));
    hot.truncate(query.hot_contacts);
    let activity = if query.activity == 0 {
        Vec::new()
    } else {
        storage
            .audit(
                ws,
                &AuditQuery {
                    record_id: None,
                    actor_id: None,
                    entities: ACTIVITY_KINDS.to_vec(),
                    actions: vec![AuditAction::Create],
                    before: None,
                    limit: Some(query.activity),
                },
            )
            .await?
    };
    Ok(DashboardData {
        tallies: tallies.into_iter().filter(|(_, t)| !t.is_zero()).collect(),
        next_tasks: tasks.into_iter().map(|(_, r)| r).collect(),
        hot_contacts: hot.into_iter().map(|(_, r)| r).collect(),
        activity,
    })
}
