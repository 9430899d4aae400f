//! Enforcing each workspace's [`RetentionPolicy`]: [`Crm::apply_retention`].
//!
//! One run, per workspace: purges soft-deleted records older than `trash_days` (through the
//! ordinary purge path, so each purge is audited, reaches the change feed as a `delete`
//! entry and clears references); removes access-log entries, security events and — when the
//! policy limits it — audit entries older than their periods; deletes sessions that ended
//! (revoked or expired) and reset tokens that were used or expired more than `session_days`
//! ago, and truncates the addresses of sessions that ended more recently (the default
//! [`ClientDetails::Stored`] policy). Everything goes in bounded batches of
//! [`RETENTION_BATCH`], each its own store call or commit — never one giant transaction —
//! so a run that fails half-way leaves what it did done and the rest for the next run.
//! A run that removed anything leaves one summary audit entry (on the workspace's
//! configuration, action `purge`, one field per category with the count).
//!
//! The policy's `webhook_delivery_days` is validated and kept but not enforced: the engine
//! has no webhooks, so there are no dead deliveries to prune (the report has no count for
//! them). It applies once webhooks land.
//!
//! Retention acts as the system: its purges carry no actor.

use std::time::Duration;

use serde::Serialize;

use crate::audit::{AuditAction, AuditEntry, FieldChange};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::id::{AuditId, Id, WorkspaceId};
use crate::model::{
    ClientDetails, Configuration, Entity, EntityKind, RetentionPolicy, Role, Session,
    truncate_address,
};
use crate::query::{Deleted, ListQuery, Sort};
use crate::service::{Actor, Crm};
use crate::storage::{Commit, Write};

/// Items removed per store call or commit.
pub const RETENTION_BATCH: usize = 500;

/// What one run removed (summed over the workspaces it covered).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// Workspaces covered.
    pub workspaces: usize,
    /// Soft-deleted records purged (notes purged with them not counted).
    pub trash: usize,
    /// Audit entries removed.
    pub audit: usize,
    /// Access-log entries removed.
    pub access_log: usize,
    /// Security events removed.
    pub security_events: usize,
    /// Ended sessions removed.
    pub sessions: usize,
    /// Ended sessions whose client address was truncated.
    pub sessions_truncated: usize,
    /// Used or expired reset tokens removed.
    pub reset_tokens: usize,
}

impl RetentionReport {
    fn removed_anything(&self) -> bool {
        self.trash
            + self.audit
            + self.access_log
            + self.security_events
            + self.sessions
            + self.sessions_truncated
            + self.reset_tokens
            > 0
    }

    fn add(&mut self, o: &RetentionReport) {
        self.workspaces += o.workspaces;
        self.trash += o.trash;
        self.audit += o.audit;
        self.access_log += o.access_log;
        self.security_events += o.security_events;
        self.sessions += o.sessions;
        self.sessions_truncated += o.sessions_truncated;
        self.reset_tokens += o.reset_tokens;
    }
}

fn days_before(now: Timestamp, days: i64) -> Timestamp {
    let days = u64::try_from(days.max(0)).unwrap_or(0);
    Timestamp::from_micros(now.as_micros().saturating_sub(
        i64::try_from(Duration::from_secs(days * 86_400).as_micros()).unwrap_or(i64::MAX),
    ))
}

/// The kinds that have a trash.
const TRASHED: [EntityKind; 6] = EntityKind::RECORDS;

/// Most workspaces one run covers.
const MAX_WORKSPACES: usize = 100_000;

impl Crm {
    /// Applies every workspace's retention policy as of `now` (see the
    /// [module docs](crate::retention)); reports what it removed.
    ///
    /// # Errors
    /// The first storage failure; what earlier batches removed stays removed.
    pub async fn apply_retention(&self, now: Timestamp) -> Result<RetentionReport> {
        let mut total = RetentionReport::default();
        for ws in self.storage().workspaces(MAX_WORKSPACES).await? {
            let r = self.apply_retention_in(ws, now).await?;
            total.add(&r);
        }
        Ok(total)
    }

    /// [`Crm::apply_retention`] for one workspace.
    ///
    /// # Errors
    /// As [`Crm::apply_retention`].
    pub async fn apply_retention_in(
        &self,
        ws: WorkspaceId,
        now: Timestamp,
    ) -> Result<RetentionReport> {
        let policy: RetentionPolicy = self.load_config(ws).await?.retention;
        let mut r = RetentionReport {
            workspaces: 1,
            ..Default::default()
        };
        let system = Actor::system(ws);
        r.trash = self
            .purge_trash(&system, days_before(now, policy.trash_days))
            .await?;
        if let Some(days) = policy.audit_days {
            let cutoff = days_before(now, days);
            r.audit = drain(|| self.storage().prune_audit(ws, cutoff, RETENTION_BATCH)).await?;
        }
        let cutoff = days_before(now, policy.access_log_days);
        r.access_log =
            drain(|| self.storage().prune_access_log(ws, cutoff, RETENTION_BATCH)).await?;
        let cutoff = days_before(now, policy.security_event_days);
        r.security_events = drain(|| {
            self.storage()
                .prune_security_events(ws, cutoff, RETENTION_BATCH)
        })
        .await?;
        let cutoff = days_before(now, policy.session_days);
        let (removed, truncated) = self
            .sessions(ws, now, cutoff, policy.client_details)
            .await?;
        r.sessions = removed;
        r.sessions_truncated = truncated;
        r.reset_tokens = self.reset_tokens(ws, now, cutoff).await?;
        if r.removed_anything() {
            self.summary(ws, &r).await?;
        }
        Ok(r)
    }

    async fn purge_trash(&self, system: &Actor, cutoff: Timestamp) -> Result<usize> {
        let ws = system.workspace_id();
        let mut purged = 0;
        for kind in TRASHED {
            let doomed: Vec<uuid::Uuid> = self
                .scan(ws, kind, Deleted::Only)
                .await?
                .into_iter()
                .filter(|r| r.meta().deleted_at.is_some_and(|d| d < cutoff))
                .map(|r| r.id())
                .collect();
            for id in doomed {
                let outcome = match kind {
                    EntityKind::Company => self.companies().purge(system, Id::from_uuid(id)).await,
                    EntityKind::Contact => self.contacts().purge(system, Id::from_uuid(id)).await,
                    EntityKind::Deal => self.deals().purge(system, Id::from_uuid(id)).await,
                    EntityKind::Task => self.tasks().purge(system, Id::from_uuid(id)).await,
                    EntityKind::Tag => self.tags().purge(system, Id::from_uuid(id)).await,
                    _ => self.notes().purge(system, Id::from_uuid(id)).await,
                };
                match outcome {
                    Ok(()) => purged += 1,
                    // Gone meanwhile (a note purged with its contact, a restore): fine.
                    Err(e) if e.kind() == crate::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(purged)
    }

    /// Every record of a kind (with the given soft-delete rule), read in pages.
    async fn scan(
        &self,
        ws: WorkspaceId,
        kind: EntityKind,
        deleted: Deleted,
    ) -> Result<Vec<crate::model::Record>> {
        let mut query = ListQuery::new(Sort::asc("created_at"), RETENTION_BATCH);
        query.deleted = deleted;
        self.list_all(ws, kind, query).await
    }

    async fn sessions(
        &self,
        ws: WorkspaceId,
        now: Timestamp,
        cutoff: Timestamp,
        details: ClientDetails,
    ) -> Result<(usize, usize)> {
        let (mut removed, mut truncated) = (0, 0);
        let mut writes = Vec::new();
        for s in self
            .scan(ws, EntityKind::Session, Deleted::Include)
            .await?
            .into_iter()
            .filter_map(Session::from_record)
        {
            let ended = s
                .revoked_at
                .or((s.expires_at <= now).then_some(s.expires_at));
            let Some(ended) = ended else { continue };
            if ended < cutoff {
                writes.push(Write::Delete {
                    kind: EntityKind::Session,
                    id: s.id.uuid(),
                    expected_version: s.version,
                });
                removed += 1;
            } else if details == ClientDetails::Stored
                && let Some(address) = &s.client.address
                && truncate_address(address) != *address
            {
                let mut next = s.clone();
                next.client.address = Some(truncate_address(address));
                next.version += 1;
                writes.push(Write::Update {
                    record: next.into_record(),
                    expected_version: s.version,
                });
                truncated += 1;
            }
        }
        self.write_batches(ws, writes).await?;
        Ok((removed, truncated))
    }

    async fn reset_tokens(
        &self,
        ws: WorkspaceId,
        now: Timestamp,
        cutoff: Timestamp,
    ) -> Result<usize> {
        let writes: Vec<Write> = self
            .scan(ws, EntityKind::ResetToken, Deleted::Include)
            .await?
            .into_iter()
            .filter_map(crate::model::ResetToken::from_record)
            .filter(|t| {
                let ended = t.used_at.unwrap_or(t.expires_at);
                (t.used_at.is_some() || t.expires_at <= now) && ended < cutoff
            })
            .map(|t| Write::Delete {
                kind: EntityKind::ResetToken,
                id: t.id.uuid(),
                expected_version: t.version,
            })
            .collect();
        let n = writes.len();
        self.write_batches(ws, writes).await?;
        Ok(n)
    }

    /// Commits `writes` in batches; a batch that conflicts (the session was refreshed or
    /// revoked meanwhile) is left for the next run.
    async fn write_batches(&self, ws: WorkspaceId, writes: Vec<Write>) -> Result<()> {
        let mut writes = writes.into_iter().peekable();
        while writes.peek().is_some() {
            let mut commit = Commit::new(ws);
            commit.writes.extend(writes.by_ref().take(RETENTION_BATCH));
            match self.commit(commit).await {
                Ok(()) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        crate::ErrorKind::VersionConflict | crate::ErrorKind::NotFound
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn summary(&self, ws: WorkspaceId, r: &RetentionReport) -> Result<()> {
        let change = |field: &str, n: usize| FieldChange {
            field: field.into(),
            before: serde_json::Value::Null,
            after: n.into(),
        };
        let mut commit = Commit::new(ws);
        commit.audit.push(AuditEntry {
            id: AuditId::generate(),
            workspace_id: ws,
            at: self.now(),
            actor_id: None,
            entity: Configuration::KIND,
            record_id: ws.uuid(),
            label: "retention".into(),
            action: AuditAction::Purge,
            changes: vec![
                change("removed.trash", r.trash),
                change("removed.audit", r.audit),
                change("removed.access_log", r.access_log),
                change("removed.security_events", r.security_events),
                change("removed.sessions", r.sessions),
                change("truncated.sessions", r.sessions_truncated),
                change("removed.reset_tokens", r.reset_tokens),
            ],
        });
        self.commit(commit).await
    }
}

/// Calls a bounded prune until it removes less than a batch; the total.
async fn drain<F, Fut>(mut prune: F) -> Result<usize>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize>>,
{
    let mut total = 0;
    loop {
        let n = prune().await?;
        total += n;
        if n < RETENTION_BATCH {
            return Ok(total);
        }
    }
}

impl Actor {
    /// The system acting in a workspace (retention): an admin with the nil user id.
    pub(crate) fn system(ws: WorkspaceId) -> Actor {
        Actor::new_internal(
            ws,
            crate::id::UserId::from_uuid(uuid::Uuid::nil()),
            Role::Admin,
        )
    }
}
