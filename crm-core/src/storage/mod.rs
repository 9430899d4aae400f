//! The [`Storage`] trait: what a backend must provide.
//!
//! The trait speaks in domain terms and every method is one atomic unit; no transaction
//! handle ever crosses it. Reads return [`Record`]s of one workspace. All writes go through
//! [`Storage::commit`]: a [`Commit`] is a small unit of work built and checked by the core —
//! inserts, version-checked updates and deletes, existence and version assertions on records
//! it read (so decisions such as "the last admin stays an admin" or "the referenced company
//! still exists" hold at commit time), plus the audit entries of the change. A backend
//! applies all of it or none of it. This keeps every rule in the core and the backends thin:
//! a backend is storage, indexes and atomicity.
//!
//! Object safe: hosts hold an `Arc<dyn Storage>` and choose the backend at run time.
//!
//! Embedded ordered key/value backends can use the helpers in [`kv`] (order-preserving key
//! encoding, index maintenance and query planning) so that they agree with every other
//! backend on ordering, filtering and paging. The conformance suite (`testkit` feature)
//! checks that they do.

pub mod invalidation;
mod recount;

pub use crate::commit::{Commit, Write};
pub use crate::kv;
pub use invalidation::{Invalidation, InvalidationSink};
pub use recount::recount;

use async_trait::async_trait;
use uuid::Uuid;

use crate::access_log::{AccessEntry, AccessLogQuery};
use crate::audit::{AuditEntry, AuditQuery};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::feed::{FeedPage, Position};
use crate::id::{UserId, WorkspaceId};
use crate::model::{EntityKind, Record};
use crate::query::ListQuery;
use crate::security::{SecurityEvent, SecurityEventQuery};

/// A storage backend. See the [module docs](self).
///
/// Every method either succeeds completely or fails with a coded [`crate::Error`] and leaves
/// the stored state as it was. Driver failures map to the E3xxx kinds with the driver error
/// kept as the source.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// One record by id, soft-deleted ones included; `None` if absent from this workspace.
    ///
    /// # Errors
    /// Storage failures (E3xxx).
    async fn get(
        &self,
        workspace: WorkspaceId,
        kind: EntityKind,
        id: Uuid,
    ) -> Result<Option<Record>>;

    /// Several records by id (missing ones are skipped), in the order asked.
    ///
    /// # Errors
    /// Storage failures (E3xxx).
    async fn get_many(
        &self,
        workspace: WorkspaceId,
        kind: EntityKind,
        ids: &[Uuid],
    ) -> Result<Vec<Record>>;

    /// Up to `query.limit` records of a kind matching every filter, the search terms and the
    /// soft-delete rule, in `query.sort` order (ties by id), strictly after `query.after`.
    ///
    /// # Errors
    /// Storage failures (E3xxx).
    async fn list(
        &self,
        workspace: WorkspaceId,
        kind: EntityKind,
        query: &ListQuery,
    ) -> Result<Vec<Record>>;

    /// The record holding a unique key (see [`Record::unique_keys`]), e.g. a user by email.
    ///
    /// # Errors
    /// Storage failures (E3xxx).
    async fn find_unique(
        &self,
        workspace: WorkspaceId,
        kind: EntityKind,
        key: &str,
        value: &str,
    ) -> Result<Option<Record>>;

    /// Applies a commit atomically and durably (acknowledged only once durable).
    ///
    /// # Errors
    /// The failing assertion's kind (`VersionConflict`, `NotFound`, `Duplicate`,
    /// `Validation`): nothing was applied. A storage failure (E3xxx): nothing was applied,
    /// except where a backend documents an "outcome unknown" case (the durable write itself
    /// failed and the backend cannot tell whether it landed — e.g. a database that cannot be
    /// reopened or a connection lost during `COMMIT`). Even then the commit is all or
    /// nothing, never partial.
    async fn commit(&self, commit: Commit) -> Result<()>;

    /// Up to `limit` entries of the workspace's change feed strictly after `after`, in
    /// position order, with the feed's horizon read in the same snapshot (see
    /// [`crate::feed`]). A commit applies its [`crate::feed::changes_of`] atomically with its
    /// writes: each replaces the record's previous entry (one entry per record) and takes a
    /// position above every position a reader may already have read.
    ///
    /// # Errors
    /// Storage failures (E3xxx).
    async fn changes(
        &self,
        workspace: WorkspaceId,
        after: Position,
        limit: usize,
    ) -> Result<FeedPage>;

    /// Removes the workspace's `delete` entries made before `deleted_before` and raises its
    /// horizon to the highest position removed; returns how many were removed. Upserts stay
    /// (they stand for records that exist).
    ///
    /// # Errors
    /// Storage failures (E3xxx); nothing is removed then.
    async fn prune_changes(
        &self,
        workspace: WorkspaceId,
        deleted_before: Timestamp,
    ) -> Result<usize>;

    /// Records views of records (see [`crate::views`]): per (workspace, user, kind) each
    /// record once, at its latest view, and at most [`crate::views::RECENT_LIMIT`] records,
    /// the oldest dropped. All of a call's views or none.
    ///
    /// # Errors
    /// Storage failures (E3xxx).
    async fn record_views(&self, views: &[crate::views::View]) -> Result<()>;

    /// A user's recently viewed records of a kind, newest first, at most `limit`: the ids
    /// and the time of each one's latest view.
    ///
    /// # Errors
    /// Storage failures (E3xxx).
    async fn recent_views(
        &self,
        workspace: WorkspaceId,
        user: crate::id::UserId,
        kind: EntityKind,
        limit: usize,
    ) -> Result<Vec<(Uuid, Timestamp)>>;

    /// Appends access-log entries (see [`crate::access_log`]); all of a call's entries or
    /// none. Entries are never changed afterwards except by the erase, redact and prune
    /// methods below.
    ///
    /// # Errors
    /// Storage failures (E3xxx).
    async fn append_access_log(&self, entries: &[AccessEntry]) -> Result<()>;

    /// The workspace's access-log entries matching `query`, newest first (by id), at most
    /// `query.limit`.
    ///
    /// # Errors
    /// Storage failures (E3xxx).
    async fn access_log(
        &self,
        workspace: WorkspaceId,
        query: &AccessLogQuery,
    ) -> Result<Vec<AccessEntry>>;

    /// Removes every access-log entry about `record_id` (erasure of a person); returns how
    /// many. All or none.
    ///
    /// # Errors
    /// Storage failures (E3xxx); nothing is removed then.
    async fn erase_access_log_for(&self, workspace: WorkspaceId, record_id: Uuid) -> Result<usize>;

    /// Clears the address of every access-log entry of reads `user` made (anonymisation of
    /// a user: who read what stays, by id); returns how many entries changed. All or none.
    ///
    /// # Errors
    /// Storage failures (E3xxx); nothing is changed then.
    async fn redact_access_log_by(&self, workspace: WorkspaceId, user: UserId) -> Result<usize>;

    /// Removes up to `limit` of the workspace's oldest access-log entries made before
    /// `before` (retention, in bounded batches); returns how many.
    ///
    /// # Errors
    /// Storage failures (E3xxx); nothing is removed then.
    async fn prune_access_log(
        &self,
        workspace: WorkspaceId,
        before: Timestamp,
        limit: usize,
    ) -> Result<usize>;

    /// Appends security events (see [`crate::security`]); all of a call's events or none.
    ///
    /// # Errors
    /// Storage failures (E3xxx).
    async fn append_security_events(&self, events: &[SecurityEvent]) -> Result<()>;

    /// The workspace's security events matching `query`, newest first (by id), at most
    /// `query.limit`.
    ///
    /// # Errors
    /// Storage failures (E3xxx).
    async fn security_events(
        &self,
        workspace: WorkspaceId,
        query: &SecurityEventQuery,
    ) -> Result<Vec<SecurityEvent>>;

    /// Clears the personal data (`address`, `email`) of every security event about or by
    /// `user` (anonymisation or erasure of a user; type, time and ids stay); returns how many
    /// events changed. All or none.
    ///
    /// # Errors
    /// Storage failures (E3xxx); nothing is changed then.
    async fn redact_security_events_for(
        &self,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<usize>;

    /// Removes up to `limit` of the workspace's oldest security events made before `before`
    /// (retention, in bounded batches); returns how many.
    ///
    /// # Errors
    /// Storage failures (E3xxx); nothing is removed then.
    async fn prune_security_events(
        &self,
        workspace: WorkspaceId,
        before: Timestamp,
        limit: usize,
    ) -> Result<usize>;

    /// Removes up to `limit` of the workspace's oldest audit entries made before `before`
    /// (retention of the audit trail, when the workspace limits it); returns how many.
    /// "Oldest" is id order (ids are time-ordered), and removal stops at the first entry
    /// made at or after `before`, so one call reads no more than it removes.
    ///
    /// # Errors
    /// Storage failures (E3xxx); nothing is removed then.
    async fn prune_audit(
        &self,
        workspace: WorkspaceId,
        before: Timestamp,
        limit: usize,
    ) -> Result<usize>;

    /// Asks the store to call `wake` whenever a commit through any handle on its data (this
    /// one, its clones, another instance on the same database) may have added feed entries.
    /// Only a wake-up (readers then read [`Storage::changes`]), so an extra call is harmless
    /// and a missed one costs latency: `wake` must be cheap and never block. The default
    /// does nothing (the engine still wakes its own readers after its own commits).
    fn watch_changes(&self, wake: std::sync::Arc<dyn Fn() + Send + Sync>) {
        let _ = wake;
    }

    /// What a dashboard shows, read in one snapshot (see [`crate::dashboard`]): the tally
    /// rows under [`crate::dashboard::tally_prefixes`], the owner's next open tasks, the hot
    /// contacts and the latest activity. A commit keeps the tallies exact by applying
    /// [`crate::dashboard::TallyDeltas`] of its writes atomically with them.
    ///
    /// The default computes it by reading every live record ([`recount`]):
    /// right, and what the in-memory reference store answers, but proportional to the
    /// workspace's size. Production backends maintain the tallies and override it.
    ///
    /// # Errors
    /// Storage failures (E3xxx).
    async fn dashboard(
        &self,
        workspace: WorkspaceId,
        query: &crate::dashboard::DashboardQuery,
    ) -> Result<crate::dashboard::DashboardData> {
        recount(self, workspace, query).await
    }

    /// Audit entries matching the query, newest first.
    ///
    /// # Errors
    /// Storage failures (E3xxx).
    async fn audit(&self, workspace: WorkspaceId, query: &AuditQuery) -> Result<Vec<AuditEntry>>;

    /// Ids of the installation's workspaces in id order (oldest first: ids are UUIDv7), at
    /// most `limit`. The one read that spans workspaces: a host uses it at start-up to find
    /// the workspace of a single-tenant installation (e.g. the standalone server after a
    /// restart). It returns ids only, never data.
    ///
    /// # Errors
    /// Storage failures (E3xxx).
    async fn workspaces(&self, limit: usize) -> Result<Vec<WorkspaceId>>;

    /// Registers a cache to hear about changes committed through *other* handles on the same
    /// data (other instances of the host on one database), at once — see [`invalidation`].
    /// Answers whether the backend delivers such signals; the default (a backend only one
    /// process uses) does not, and caches rely on their TTL. Never fails: a backend that
    /// loses its signal connection reports [`Invalidation::All`] when it listens again.
    fn subscribe_invalidations(&self, sink: std::sync::Weak<dyn InvalidationSink>) -> bool {
        let _ = sink;
        false
    }

    /// Checks that the backend is reachable.
    ///
    /// # Errors
    /// `StorageUnavailable` when it is not.
    async fn ping(&self) -> Result<()>;
}
