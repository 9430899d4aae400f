//! Session records as the facade writes them: which sessions of a user are active, and
//! their revocation as writes of a [`Commit`].
//!
//! The facade ends every session of a user it disables in the same commit; the identity
//! layer ([`crate::identity`]), which sits on the facade, ends sessions through the same
//! functions (logout, revocation, password change), so the facade never names it.

use uuid::Uuid;

use crate::audit::AuditAction;
use crate::clock::Timestamp;
use crate::error::Result;
use crate::id::{UserId, WorkspaceId};
use crate::model::{Entity, RevokeReason, Session, SessionId};
use crate::query::Value;
use crate::storage::{Commit, Write};

use super::Crm;

impl Crm {
    /// The user's sessions that are still usable at `now`.
    pub(crate) async fn active_sessions(
        &self,
        ws: WorkspaceId,
        user: UserId,
        now: Timestamp,
    ) -> Result<Vec<Session>> {
        Ok(self
            .all_where::<Session>(ws, "user_id", Value::Id(user.uuid()))
            .await?
            .into_iter()
            .filter(|s| s.is_active(now))
            .collect())
    }

    /// Adds the revocation of one session to a commit (the updated record and its audit
    /// entry, by `actor` or else the session's owner).
    pub(crate) fn push_revocation(
        &self,
        commit: &mut Commit,
        session: &Session,
        reason: RevokeReason,
        actor: Option<UserId>,
        now: Timestamp,
    ) {
        let mut ended = session.clone();
        ended.revoked_at = Some(now);
        ended.revoke_reason = Some(reason);
        ended.updated_at = now;
        ended.version += 1;
        let (before, after) = (session.clone().into_record(), ended.into_record());
        commit.audit.push(self.audit_entry_for(
            actor.unwrap_or(session.user_id),
            AuditAction::Delete,
            Some(&before),
            Some(&after),
        ));
        commit.writes.push(Write::Update {
            record: after,
            expected_version: session.version,
        });
    }

    /// Adds the revocation of every active session of a user (but `keep`) to a commit;
    /// returns the ids it ends.
    pub(crate) async fn push_user_revocations(
        &self,
        commit: &mut Commit,
        ws: WorkspaceId,
        user: UserId,
        keep: Option<SessionId>,
        reason: RevokeReason,
        actor: Option<UserId>,
    ) -> Result<Vec<Uuid>> {
        let now = self.now();
        let mut ended = Vec::new();
        for s in self.active_sessions(ws, user, now).await? {
            if Some(s.id) != keep {
                self.push_revocation(commit, &s, reason, actor, now);
                ended.push(s.id.uuid());
            }
        }
        Ok(ended)
    }
}
