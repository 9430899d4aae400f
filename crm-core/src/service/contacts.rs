//! Contact merge (Atomic CRM's `merge_contacts`).

use super::{Actor, Records};
use crate::audit::AuditAction;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::id::ContactId;
use crate::model::{Contact, Entity, EntityKind};
use crate::permission::Action;
use crate::query::{Filter, Value};
use crate::storage::Commit;

impl Records<'_, Contact> {
    /// Merges `loser` into `winner`, atomically: the winner keeps its values and takes the
    /// loser's where it has none (emails, phones and tags are unioned); the loser's notes and
    /// tasks move to the winner; deals that list the loser list the winner instead; the loser
    /// is soft deleted (admins can still find it in the trash).
    ///
    /// # Errors
    /// `Forbidden` (admins and managers merge), `NotFound`, `InvalidState` when both ids are
    /// the same; storage failures. Nothing is written on error.
    pub async fn merge(
        &self,
        actor: &Actor,
        winner: ContactId,
        loser: ContactId,
    ) -> Result<Contact> {
        let ctx = |e: Error| e.with_context(Operation::Merge, EntityKind::Contact);
        if winner == loser {
            return Err(ctx(Error::new(ErrorKind::InvalidState)));
        }
        self.crm
            .retrying(|| async {
                let w = self
                    .load(actor, winner.uuid(), false, Operation::Merge)
                    .await?;
                let l = self
                    .load(actor, loser.uuid(), false, Operation::Merge)
                    .await?;
                Self::authorize(actor, Action::Merge, &w, Operation::Merge)?;
                let now = self.crm.now();
                let mut commit = Commit::new(actor.workspace_id());
                let mut merged = w.clone();
                merged.absorb(&l);
                let w_before = w.clone().into_record();
                self.crm.push_update(
                    &mut commit,
                    actor,
                    &w_before,
                    merged.clone().into_record(),
                    AuditAction::Merge,
                );
                let l_before = l.clone().into_record();
                let mut gone = l.clone();
                gone.deleted_at = Some(now);
                self.crm.push_update(
                    &mut commit,
                    actor,
                    &l_before,
                    gone.into_record(),
                    AuditAction::Merge,
                );
                for (kind, field) in [
                    (EntityKind::Note, "contact_id"),
                    (EntityKind::Task, "contact_id"),
                    (EntityKind::Deal, "contact_ids"),
                ] {
                    for row in self
                        .crm
                        .all_matching(actor, kind, Filter::eq(field, Value::Id(loser.uuid())))
                        .await?
                    {
                        let moved = super::records::unlink(
                            row.clone(),
                            field,
                            loser.uuid(),
                            Some(winner.uuid()),
                        );
                        self.crm
                            .push_update(&mut commit, actor, &row, moved, AuditAction::Update);
                    }
                }
                self.crm.commit(commit).await?;
                let mut out = merged;
                out.version = w.version + 1;
                out.updated_at = now;
                Ok(out)
            })
            .await
            .map_err(ctx)
    }
}
