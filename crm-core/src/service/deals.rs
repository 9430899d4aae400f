//! Deal pipeline operations: archive, unarchive, move between stages and reorder.

use super::{Actor, Crm, Records};
use crate::audit::AuditAction;
use crate::error::{Error, ErrorKind, FieldError, FieldIssue, Operation, Result};
use crate::id::DealId;
use crate::model::{Deal, Entity, EntityKind, Record};
use crate::permission::Action;
use crate::query::{Deleted, Filter, ListQuery, Sort, Value};
use crate::storage::Commit;

/// Gap left between neighbouring deals' `index`, so most moves rewrite one deal only.
const INDEX_GAP: i64 = 1024;

/// Deals of a stage (not archived, not deleted), in board order.
async fn stage_deals(crm: &Crm, actor: &Actor, stage: &str) -> Result<Vec<Deal>> {
    let mut rows: Vec<Deal> = crm
        .all_where::<Deal>(actor.workspace_id(), "stage", Value::Text(stage.into()))
        .await?
        .into_iter()
        .filter(|d| d.deleted_at.is_none() && d.archived_at.is_none() && d.stage == stage)
        .collect();
    rows.sort_by_key(|d| (d.index, d.id));
    Ok(rows)
}

/// The index that puts a deal at the end of `stage`.
///
/// One row read through the `(stage, index)` index: the largest index of any deal of the
/// stage (archived and deleted ones included, which only makes the gap larger), so creating
/// a deal costs the same in a stage of ten deals or ten thousand.
pub(crate) async fn end_of_stage(crm: &Crm, actor: &Actor, stage: &str) -> Result<i64> {
    let mut query = ListQuery::new(Sort::desc("index"), 1);
    query
        .filters
        .push(Filter::eq("stage", Value::Text(stage.to_string())));
    query.deleted = Deleted::Include;
    let last = crm
        .storage()
        .list(actor.workspace_id(), EntityKind::Deal, &query)
        .await?;
    Ok(last
        .first()
        .and_then(|r| match r.field("index") {
            Value::Int(i) => Some(i.saturating_add(INDEX_GAP)),
            _ => None,
        })
        .unwrap_or(0))
}

impl Records<'_, Deal> {
    /// Archives a deal: it leaves the board but is kept (archiving is not deleting).
    ///
    /// # Errors
    /// `VersionConflict`, `NotFound`, `Forbidden`, `InvalidState` if already archived;
    /// storage failures.
    pub async fn archive(&self, actor: &Actor, id: DealId, expected_version: u64) -> Result<Deal> {
        self.set_archived(actor, id, expected_version, true).await
    }

    /// Puts an archived deal back on the board, at the end of its stage.
    ///
    /// # Errors
    /// As [`Records::archive`]; `InvalidState` if not archived.
    pub async fn unarchive(
        &self,
        actor: &Actor,
        id: DealId,
        expected_version: u64,
    ) -> Result<Deal> {
        self.set_archived(actor, id, expected_version, false).await
    }

    async fn set_archived(
        &self,
        actor: &Actor,
        id: DealId,
        expected_version: u64,
        archive: bool,
    ) -> Result<Deal> {
        let ctx = |e: Error| e.with_context(Operation::Archive, EntityKind::Deal);
        let current = self
            .load(actor, id.uuid(), false, Operation::Archive)
            .await?;
        Self::authorize(actor, Action::Update, &current, Operation::Archive)?;
        if current.version != expected_version {
            return Err(ctx(Error::new(ErrorKind::VersionConflict)));
        }
        if current.archived_at.is_some() == archive {
            return Err(ctx(Error::new(ErrorKind::InvalidState)));
        }
        let now = self.crm.now();
        let mut record = current.clone();
        if archive {
            record.archived_at = Some(now);
        } else {
            record.archived_at = None;
            record.index = end_of_stage(self.crm, actor, &record.stage).await?;
        }
        let action = if archive {
            AuditAction::Archive
        } else {
            AuditAction::Unarchive
        };
        self.commit_change(
            actor,
            current,
            record,
            action,
            Commit::new(actor.workspace_id()),
            now,
            Operation::Archive,
        )
        .await
    }

    /// Moves a deal to `stage` at `position` (0 = top; past the end = bottom), also used to
    /// reorder inside a stage. Usually one deal is rewritten; when its neighbours leave no
    /// room, the whole stage is renumbered in the same commit.
    ///
    /// # Errors
    /// `VersionConflict` (of the deal, or when the stage keeps changing under the move),
    /// `Validation` for an unknown stage, `NotFound`, `Forbidden`, `InvalidState` for an
    /// archived deal; storage failures.
    pub async fn move_to(
        &self,
        actor: &Actor,
        id: DealId,
        expected_version: u64,
        stage: &str,
        position: usize,
    ) -> Result<Deal> {
        let ctx = |e: Error| e.with_context(Operation::Move, EntityKind::Deal);
        let config = self.crm.load_config(actor.workspace_id()).await?;
        if !config.deal_stages.iter().any(|s| s.value == stage) {
            return Err(ctx(Error::validation(vec![FieldError::new(
                "stage",
                FieldIssue::NotAllowed,
            )])));
        }
        self.crm
            .retrying(|| async {
                let current = self.load(actor, id.uuid(), false, Operation::Move).await?;
                Self::authorize(actor, Action::Update, &current, Operation::Move)?;
                if current.version != expected_version {
                    return Err(Error::new(ErrorKind::VersionConflict));
                }
                if current.archived_at.is_some() {
                    return Err(Error::new(ErrorKind::InvalidState));
                }
                let now = self.crm.now();
                let mut others: Vec<Deal> = stage_deals(self.crm, actor, stage).await?;
                others.retain(|d| d.id != current.id);
                let pos = position.min(others.len());
                let prev = pos.checked_sub(1).map(|p| others[p].index);
                let next = others.get(pos).map(|d| d.index);
                let slot = match (prev, next) {
                    (None, None) => Some(0),
                    (Some(p), None) => p.checked_add(INDEX_GAP),
                    (None, Some(n)) => n.checked_sub(INDEX_GAP),
                    (Some(p), Some(n)) if n - p > 1 => Some(p + (n - p) / 2),
                    _ => None,
                };
                let mut commit = Commit::new(actor.workspace_id());
                let mut record = current.clone();
                record.stage = stage.to_string();
                match slot {
                    Some(index) => record.index = index,
                    None => {
                        // No room: renumber the stage with even gaps, the moved deal included.
                        for (i, d) in others.iter().enumerate() {
                            let new_index = (i as i64 + i64::from(i >= pos)) * INDEX_GAP;
                            if d.index != new_index {
                                let before: Record = d.clone().into_record();
                                let mut after = d.clone();
                                after.index = new_index;
                                self.crm.push_update(
                                    &mut commit,
                                    actor,
                                    &before,
                                    after.into_record(),
                                    AuditAction::Move,
                                );
                            }
                        }
                        record.index = pos as i64 * INDEX_GAP;
                    }
                }
                self.commit_change(
                    actor,
                    current,
                    record,
                    AuditAction::Move,
                    commit,
                    now,
                    Operation::Move,
                )
                .await
            })
            .await
            .map_err(ctx)
    }
}
