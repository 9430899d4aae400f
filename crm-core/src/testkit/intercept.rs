//! [`Intercepted`]: a [`Storage`] that forwards every call to another store after a [`Hook`]
//! has had its say — the one place a test double (a store whose ping fails, one that holds a
//! kind of read at a gate, one that fails its n-th call) forwards the trait, so that no
//! double forwards a method by hand and none forgets one (such as
//! [`Storage::subscribe_invalidations`]) when the trait grows.
//!
//! ```
//! use std::sync::Arc;
//! use crm_core::testkit::{Call, Hook, Intercepted, MemoryStore};
//! use crm_core::{Error, ErrorKind, Storage};
//!
//! /// The database "went away": pings fail, everything else works.
//! struct Unreachable;
//!
//! #[async_trait::async_trait]
//! impl Hook for Unreachable {
//!     async fn before(&self, call: Call) -> crm_core::Result<()> {
//!         match call {
//!             Call::Ping => Err(Error::new(ErrorKind::StorageUnavailable)),
//!             _ => Ok(()),
//!         }
//!     }
//! }
//!
//! # crm_core::testkit::run(async {
//! let store = Intercepted::new(Arc::new(MemoryStore::new()), Unreachable);
//! assert!(store.ping().await.is_err());
//! assert!(store.workspaces(10).await.unwrap().is_empty());
//! # });
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::access_log::{AccessEntry, AccessLogQuery};
use crate::audit::{AuditEntry, AuditQuery};
use crate::clock::Timestamp;
use crate::dashboard::{DashboardData, DashboardQuery};
use crate::error::Result;
use crate::feed::{FeedPage, Position};
use crate::id::{UserId, WorkspaceId};
use crate::model::{EntityKind, Record};
use crate::query::ListQuery;
use crate::security::{SecurityEvent, SecurityEventQuery};
use crate::storage::{Commit, InvalidationSink, Storage};
use crate::views::View;

/// A call of an [`Intercepted`] store, as its [`Hook`] sees it: the method, and the kind of
/// record it reads where it names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Call {
    /// [`Storage::get`].
    Get(EntityKind),
    /// [`Storage::get_many`].
    GetMany(EntityKind),
    /// [`Storage::list`].
    List(EntityKind),
    /// [`Storage::find_unique`].
    FindUnique(EntityKind),
    /// [`Storage::commit`].
    Commit,
    /// [`Storage::changes`].
    Changes,
    /// [`Storage::prune_changes`].
    PruneChanges,
    /// [`Storage::record_views`].
    RecordViews,
    /// [`Storage::recent_views`].
    RecentViews(EntityKind),
    /// [`Storage::audit`].
    Audit,
    /// [`Storage::workspaces`].
    Workspaces,
    /// [`Storage::append_access_log`].
    AppendAccessLog,
    /// [`Storage::access_log`].
    AccessLog,
    /// [`Storage::erase_access_log_for`].
    EraseAccessLog,
    /// [`Storage::redact_access_log_by`].
    RedactAccessLog,
    /// [`Storage::prune_access_log`].
    PruneAccessLog,
    /// [`Storage::append_security_events`].
    AppendSecurityEvents,
    /// [`Storage::security_events`].
    SecurityEvents,
    /// [`Storage::redact_security_events_for`].
    RedactSecurityEvents,
    /// [`Storage::prune_security_events`].
    PruneSecurityEvents,
    /// [`Storage::prune_audit`].
    PruneAudit,
    /// [`Storage::dashboard`].
    Dashboard,
    /// [`Storage::ping`].
    Ping,
}

/// What runs before each call of an [`Intercepted`] store (the calls that reach the
/// storage: not the registration of wake-ups and invalidation sinks, which are forwarded
/// as they are).
#[async_trait]
pub trait Hook: Send + Sync + 'static {
    /// Runs before `call` reaches the inner store, and may wait.
    ///
    /// # Errors
    /// An error is the call's answer: the inner store is then not called.
    async fn before(&self, call: Call) -> Result<()>;
}

/// A store that forwards every call to `inner` once its [`Hook`] lets it through.
///
/// # Example
///
/// ```
/// # use std::sync::Arc;
/// # use crm_core::testkit::{Call, Hook, Intercepted, MemoryStore};
/// struct CountCommits(std::sync::atomic::AtomicUsize);
///
/// #[async_trait::async_trait]
/// impl Hook for CountCommits {
///     async fn before(&self, call: Call) -> crm_core::Result<()> {
///         if call == Call::Commit {
///             self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
///         }
///         Ok(())
///     }
/// }
///
/// let store = Intercepted::new(Arc::new(MemoryStore::new()), CountCommits(Default::default()));
/// assert_eq!(store.hook().0.load(std::sync::atomic::Ordering::SeqCst), 0);
/// ```
pub struct Intercepted<H> {
    inner: Arc<dyn Storage>,
    hook: H,
}

impl<H: Hook> Intercepted<H> {
    /// `inner`, with `hook` run before each of its calls.
    pub fn new(inner: Arc<dyn Storage>, hook: H) -> Self {
        Intercepted { inner, hook }
    }

    /// The hook (to arm or inspect it).
    pub fn hook(&self) -> &H {
        &self.hook
    }
}

#[async_trait]
impl<H: Hook> Storage for Intercepted<H> {
    async fn get(&self, ws: WorkspaceId, kind: EntityKind, id: Uuid) -> Result<Option<Record>> {
        self.hook.before(Call::Get(kind)).await?;
        self.inner.get(ws, kind, id).await
    }
    async fn get_many(
        &self,
        ws: WorkspaceId,
        kind: EntityKind,
        ids: &[Uuid],
    ) -> Result<Vec<Record>> {
        self.hook.before(Call::GetMany(kind)).await?;
        self.inner.get_many(ws, kind, ids).await
    }
    async fn list(&self, ws: WorkspaceId, kind: EntityKind, q: &ListQuery) -> Result<Vec<Record>> {
        self.hook.before(Call::List(kind)).await?;
        self.inner.list(ws, kind, q).await
    }
    async fn find_unique(
        &self,
        ws: WorkspaceId,
        kind: EntityKind,
        key: &str,
        value: &str,
    ) -> Result<Option<Record>> {
        self.hook.before(Call::FindUnique(kind)).await?;
        self.inner.find_unique(ws, kind, key, value).await
    }
    async fn commit(&self, commit: Commit) -> Result<()> {
        self.hook.before(Call::Commit).await?;
        self.inner.commit(commit).await
    }
    async fn changes(&self, ws: WorkspaceId, after: Position, limit: usize) -> Result<FeedPage> {
        self.hook.before(Call::Changes).await?;
        self.inner.changes(ws, after, limit).await
    }
    async fn prune_changes(&self, ws: WorkspaceId, before: Timestamp) -> Result<usize> {
        self.hook.before(Call::PruneChanges).await?;
        self.inner.prune_changes(ws, before).await
    }
    async fn record_views(&self, views: &[View]) -> Result<()> {
        self.hook.before(Call::RecordViews).await?;
        self.inner.record_views(views).await
    }
    async fn recent_views(
        &self,
        ws: WorkspaceId,
        user: UserId,
        kind: EntityKind,
        limit: usize,
    ) -> Result<Vec<(Uuid, Timestamp)>> {
        self.hook.before(Call::RecentViews(kind)).await?;
        self.inner.recent_views(ws, user, kind, limit).await
    }
    fn watch_changes(&self, wake: Arc<dyn Fn() + Send + Sync>) {
        self.inner.watch_changes(wake);
    }
    async fn audit(&self, ws: WorkspaceId, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        self.hook.before(Call::Audit).await?;
        self.inner.audit(ws, query).await
    }
    async fn workspaces(&self, limit: usize) -> Result<Vec<WorkspaceId>> {
        self.hook.before(Call::Workspaces).await?;
        self.inner.workspaces(limit).await
    }
    async fn append_access_log(&self, entries: &[AccessEntry]) -> Result<()> {
        self.hook.before(Call::AppendAccessLog).await?;
        self.inner.append_access_log(entries).await
    }
    async fn access_log(
        &self,
        ws: WorkspaceId,
        query: &AccessLogQuery,
    ) -> Result<Vec<AccessEntry>> {
        self.hook.before(Call::AccessLog).await?;
        self.inner.access_log(ws, query).await
    }
    async fn erase_access_log_for(&self, ws: WorkspaceId, record_id: Uuid) -> Result<usize> {
        self.hook.before(Call::EraseAccessLog).await?;
        self.inner.erase_access_log_for(ws, record_id).await
    }
    async fn redact_access_log_by(&self, ws: WorkspaceId, user: UserId) -> Result<usize> {
        self.hook.before(Call::RedactAccessLog).await?;
        self.inner.redact_access_log_by(ws, user).await
    }
    async fn prune_access_log(
        &self,
        ws: WorkspaceId,
        before: Timestamp,
        limit: usize,
    ) -> Result<usize> {
        self.hook.before(Call::PruneAccessLog).await?;
        self.inner.prune_access_log(ws, before, limit).await
    }
    async fn append_security_events(&self, events: &[SecurityEvent]) -> Result<()> {
        self.hook.before(Call::AppendSecurityEvents).await?;
        self.inner.append_security_events(events).await
    }
    async fn security_events(
        &self,
        ws: WorkspaceId,
        query: &SecurityEventQuery,
    ) -> Result<Vec<SecurityEvent>> {
        self.hook.before(Call::SecurityEvents).await?;
        self.inner.security_events(ws, query).await
    }
    async fn redact_security_events_for(&self, ws: WorkspaceId, user: UserId) -> Result<usize> {
        self.hook.before(Call::RedactSecurityEvents).await?;
        self.inner.redact_security_events_for(ws, user).await
    }
    async fn prune_security_events(
        &self,
        ws: WorkspaceId,
        before: Timestamp,
        limit: usize,
    ) -> Result<usize> {
        self.hook.before(Call::PruneSecurityEvents).await?;
        self.inner.prune_security_events(ws, before, limit).await
    }
    async fn prune_audit(&self, ws: WorkspaceId, before: Timestamp, limit: usize) -> Result<usize> {
        self.hook.before(Call::PruneAudit).await?;
        self.inner.prune_audit(ws, before, limit).await
    }
    async fn dashboard(&self, ws: WorkspaceId, query: &DashboardQuery) -> Result<DashboardData> {
        self.hook.before(Call::Dashboard).await?;
        self.inner.dashboard(ws, query).await
    }
    fn subscribe_invalidations(&self, sink: std::sync::Weak<dyn InvalidationSink>) -> bool {
        self.inner.subscribe_invalidations(sink)
    }
    async fn ping(&self) -> Result<()> {
        self.hook.before(Call::Ping).await?;
        self.inner.ping().await
    }
}
