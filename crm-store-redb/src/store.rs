//! [`RedbStore`] and its [`RedbOptions`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use async_trait::async_trait;
use crm_core::audit::{AuditEntry, AuditQuery};
use crm_core::id::WorkspaceId;
use crm_core::model::{EntityKind, Record};
use crm_core::query::ListQuery;
use crm_core::storage::{Commit, Storage};
use crm_core::{Error, Result};
use redb::{Database, ReadTransaction, ReadableDatabase};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::error::{StoreError, StoreResult};
use crate::writer::{Job, Msg, Opener, PruneJob, Shared, ViewsJob, Writer, prepare_database};
use crate::{access, logs, read};

/// Tuning knobs of a [`RedbStore`]. `RedbOptions::default()` suits most hosts.
///
/// ```
/// let options = crm_store_redb::RedbOptions {
///     max_batch: 64,
///     ..Default::default()
/// };
/// # let _ = options;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedbOptions {
    /// Most commits applied in one write transaction (one fsync). Default 256. Larger batches
    /// raise throughput under many concurrent writers; a batch never waits to fill up.
    pub max_batch: usize,
    /// Most commits waiting for the writer; further callers wait (asynchronously) for room.
    /// Default 4096.
    pub queue_capacity: usize,
    /// A search collects at most this many candidate records from the search index before it
    /// switches to walking the sort index (a broad query, see the
    /// [crate docs](crate#lists-and-search)). Default 5,000.
    pub search_candidates: usize,
    /// redb's page cache in bytes; `None` keeps redb's default (1 GiB, allocated lazily).
    pub cache_size: Option<usize>,
    /// Run point reads — one record by id or by unique key, or up to
    /// [`INLINE_MANY_MAX`] records by id — on the calling (async) thread instead of the
    /// blocking pool. Default `true`. Lists, searches, audit reads and larger batches always
    /// run on the blocking pool. See the [crate docs](crate#where-reads-run) for why.
    pub inline_point_reads: bool,
}

/// Most ids a [`Storage::get_many`] reads inline (see [`RedbOptions::inline_point_reads`]).
pub const INLINE_MANY_MAX: usize = 32;

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            max_batch: 256,
            queue_capacity: 4096,
            search_candidates: 5_000,
            cache_size: None,
            inline_point_reads: true,
        }
    }
}

/// The writer thread's queue and group commits (see [`RedbStore::writer_stats`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterStats {
    /// Commits queued for the writer thread now.
    pub queued: usize,
    /// Most commits the queue holds before callers wait.
    pub queue_capacity: usize,
    /// Batches (write transactions) committed or attempted so far.
    pub batches: u64,
    /// Commits in those batches.
    pub commits: u64,
    /// Cumulative batch-size histogram: (upper bound, batches of at most that many commits).
    pub batch_size_buckets: Vec<(u64, u64)>,
}

/// `crm-core` storage in one redb file, with group commit. See the [crate docs](crate).
///
/// Cheap to clone (all clones share one database and one writer thread). The file is closed
/// when the last clone is dropped (after the queued commits finish) or by [`RedbStore::close`].
/// Every method must be called from within a Tokio runtime (scans run on its blocking pool;
/// point reads inline, see [`RedbOptions::inline_point_reads`]).
#[derive(Clone)]
pub struct RedbStore {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    sender: RwLock<Option<mpsc::Sender<Msg>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    search_candidates: usize,
    inline_point_reads: bool,
    path: PathBuf,
    /// Called after every commit that wrote feed entries ([`Storage::watch_changes`]).
    wakers: Mutex<Vec<Arc<dyn Fn() + Send + Sync>>>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The path is configuration, not a secret, but keep it out of casual logs anyway.
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens (creating if needed) the database file at `path` with default options.
    ///
    /// # Errors
    /// `StorageUnavailable` when the file cannot be opened (another process has it open, I/O
    /// or permission errors); `StorageCorrupted` when it is not a database of this crate's
    /// format (or redb finds it corrupted).
    pub fn open(path: impl AsRef<Path>) -> Result<RedbStore> {
        Self::open_with(path, RedbOptions::default())
    }

    /// Opens (creating if needed) the database file at `path`.
    ///
    /// A file left behind by a crash is repaired by redb while opening: every commit that
    /// was acknowledged is there, whole; one that was not is either whole or absent.
    ///
    /// Opening blocks (file I/O, possibly a repair): call it at start-up, or from
    /// `tokio::task::spawn_blocking` inside a running service. It spawns the writer thread.
    ///
    /// # Errors
    /// As [`RedbStore::open`].
    pub fn open_with(path: impl AsRef<Path>, options: RedbOptions) -> Result<RedbStore> {
        let path = path.as_ref().to_path_buf();
        let cache_size = options.cache_size;
        let file = path.clone();
        let opener: Opener = Box::new(move || {
            let mut builder = Database::builder();
            if let Some(bytes) = cache_size {
                builder.set_cache_size(bytes);
            }
            builder.create(&file)
        });
        Ok(Self::open_inner(path, opener, &options)?)
    }

    /// Opens with a custom opener (the tests use one that injects I/O failures).
    pub(crate) fn open_inner(
        path: PathBuf,
        opener: Opener,
        options: &RedbOptions,
    ) -> StoreResult<RedbStore> {
        let db = opener().map_err(|e| StoreError::Open(e.into()))?;
        let seq = prepare_database(&db)?;
        let shared = Arc::new(Shared::new(db));
        let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
        let writer = Writer::new(shared.clone(), opener, rx, options.max_batch, seq);
        let handle = std::thread::Builder::new()
            .name("crm-redb-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| StoreError::Open(e.into()))?;
        Ok(RedbStore {
            inner: Arc::new(Inner {
                shared,
                sender: RwLock::new(Some(tx)),
                writer: Mutex::new(Some(handle)),
                search_candidates: options.search_candidates,
                inline_point_reads: options.inline_point_reads,
                path,
                wakers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The write queue and the group commits so far, for metrics.
    pub fn writer_stats(&self) -> WriterStats {
        let (queued, capacity) = self
            .inner
            .sender
            .read()
            .ok()
            .and_then(|s| {
                s.as_ref()
                    .map(|tx| (tx.max_capacity() - tx.capacity(), tx.max_capacity()))
            })
            .unwrap_or((0, 0));
        let (batch_size_buckets, batches, commits) = self.inner.shared.batches.snapshot();
        WriterStats {
            queued,
            queue_capacity: capacity,
            batches,
            commits,
            batch_size_buckets,
        }
    }

    /// The path of the database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Shuts the store down gracefully: new commits are refused, the commits already queued
    /// are committed and answered, then the database handle is released (the file closes as
    /// soon as reads still running finish). Later calls on any clone fail with
    /// `StorageUnavailable`. Calling it again does nothing.
    ///
    /// # Errors
    /// `StorageFailure` if the writer thread ended abnormally.
    pub async fn close(&self) -> Result<()> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.shutdown())
            .await
            .map_err(StoreError::Task)?
            .map_err(Error::from)
    }

    /// Runs `f` in a read transaction on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> StoreResult<T> + Send + 'static,
    {
        let db = self.inner.database()?;
        let out = tokio::task::spawn_blocking(move || {
            let txn = db.begin_read()?;
            f(&txn)
        })
        .await
        .map_err(StoreError::Task)?;
        Ok(out?)
    }

    /// Runs `f` in a read transaction on this thread (a point read; see
    /// [`RedbOptions::inline_point_reads`]), or on the blocking pool when inline point reads
    /// are off.
    async fn point_read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> StoreResult<T> + Send + 'static,
    {
        if !self.inner.inline_point_reads {
            return self.read(f).await;
        }
        let db = self.inner.database()?;
        let txn = db.begin_read().map_err(StoreError::from)?;
        Ok(f(&txn)?)
    }

    /// Hands a job to the writer thread (waiting for room in its queue) and awaits its
    /// answer. A dropped reply means the writer failed while holding the job: its outcome
    /// is unknown, so that is reported as a failure rather than as unavailability.
    /// Runs `work` in a write transaction of its own on the writer thread.
    async fn apply(
        &self,
        work: impl FnOnce(&redb::WriteTransaction) -> StoreResult<usize> + Send + 'static,
    ) -> Result<usize> {
        self.apply_with(work, false).await
    }

    /// [`Self::apply`] committed without waiting for the disk (see
    /// [`crate::writer::ApplyJob::relaxed`]): for the access log, whose documented loss on a
    /// crash is a few seconds.
    async fn apply_relaxed(
        &self,
        work: impl FnOnce(&redb::WriteTransaction) -> StoreResult<usize> + Send + 'static,
    ) -> Result<usize> {
        self.apply_with(work, true).await
    }

    async fn apply_with(
        &self,
        work: impl FnOnce(&redb::WriteTransaction) -> StoreResult<usize> + Send + 'static,
        relaxed: bool,
    ) -> Result<usize> {
        self.to_writer(|reply| {
            Msg::Apply(crate::writer::ApplyJob {
                work: Box::new(work),
                reply,
                relaxed,
            })
        })
        .await
    }

    async fn to_writer<T>(&self, job: impl FnOnce(oneshot::Sender<Result<T>>) -> Msg) -> Result<T> {
        let sender = self
            .inner
            .sender
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        sender
            .send(job(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        drop(sender);
        answer
            .await
            .map_err(|_| Error::storage(crm_core::ErrorKind::StorageFailure, StoreError::Closed))?
    }
}

impl Inner {
    /// The database handle for a read. Without one, the store is either closed or the writer
    /// could not yet reopen the file after a failed commit: nudge it to try again now.
    fn database(&self) -> StoreResult<Arc<Database>> {
        self.shared.db().map_err(|e| {
            match self
                .sender
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
            {
                Some(sender) => {
                    let _ = sender.try_send(Msg::Reopen);
                    e
                }
                None => StoreError::Closed,
            }
        })
    }

    fn shutdown(&self) -> StoreResult<()> {
        // Dropping the last sender lets the writer drain the queue and stop.
        drop(
            self.sender
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(),
        );
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let joined = handle.map_or(Ok(()), JoinHandle::join);
        self.shared.take();
        joined.map_err(|_| StoreError::Closed)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Waits for the queued commits (there are none left unless a caller abandoned its
        // future) so that the file is released when the last handle goes.
        let _ = self.shutdown();
    }
}

#[async_trait]
impl Storage for RedbStore {
    async fn get(
        &self,
        workspace: WorkspaceId,
        kind: EntityKind,
        id: Uuid,
    ) -> Result<Option<Record>> {
        self.point_read(move |txn| read::get(txn, workspace, kind, id))
            .await
    }

    async fn get_many(
        &self,
        workspace: WorkspaceId,
        kind: EntityKind,
        ids: &[Uuid],
    ) -> Result<Vec<Record>> {
        let ids_len = ids.len();
        let ids = ids.to_vec();
        let read = move |txn: &ReadTransaction| read::get_many(txn, workspace, kind, &ids);
        if ids_len <= INLINE_MANY_MAX {
            self.point_read(read).await
        } else {
            self.read(read).await
        }
    }

    async fn list(
        &self,
        workspace: WorkspaceId,
        kind: EntityKind,
        query: &ListQuery,
    ) -> Result<Vec<Record>> {
        let query = query.clone();
        let cap = self.inner.search_candidates;
        self.read(move |txn| read::list(txn, workspace, kind, &query, cap))
            .await
    }

    async fn find_unique(
        &self,
        workspace: WorkspaceId,
        kind: EntityKind,
        key: &str,
        value: &str,
    ) -> Result<Option<Record>> {
        let (key, value) = (key.to_string(), value.to_string());
        self.point_read(move |txn| read::find_unique(txn, workspace, kind, &key, &value))
            .await
    }

    async fn commit(&self, commit: Commit) -> Result<()> {
        let fed = !crm_core::feed::changes_of(&commit).is_empty();
        self.to_writer(|reply| Msg::Commit(Job { commit, reply }))
            .await?;
        if fed {
            let wakers = self
                .inner
                .wakers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            for wake in wakers {
                wake();
            }
        }
        Ok(())
    }

    async fn record_views(&self, views: &[crm_core::views::View]) -> Result<()> {
        if views.is_empty() {
            return Ok(());
        }
        self.to_writer(|reply| {
            Msg::Views(ViewsJob {
                views: views.to_vec(),
                reply,
            })
        })
        .await
    }

    async fn recent_views(
        &self,
        workspace: WorkspaceId,
        user: crm_core::id::UserId,
        kind: EntityKind,
        limit: usize,
    ) -> Result<Vec<(Uuid, crm_core::Timestamp)>> {
        self.read(move |txn| read::recent_views(txn, workspace, user.uuid(), kind, limit))
            .await
    }

    async fn append_access_log(&self, entries: &[crm_core::access_log::AccessEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let batch = access::EncodedAccess::new(entries);
        self.apply_relaxed(move |txn| access::append_access(txn, &batch))
            .await
            .map(drop)
    }

    async fn access_log(
        &self,
        workspace: WorkspaceId,
        query: &crm_core::access_log::AccessLogQuery,
    ) -> Result<Vec<crm_core::access_log::AccessEntry>> {
        let query = query.clone();
        self.read(move |txn| access::access_log(txn, workspace, &query))
            .await
    }

    async fn erase_access_log_for(&self, workspace: WorkspaceId, record_id: Uuid) -> Result<usize> {
        self.apply(move |txn| access::erase_access_for(txn, workspace, record_id))
            .await
    }

    async fn redact_access_log_by(
        &self,
        workspace: WorkspaceId,
        user: crm_core::id::UserId,
    ) -> Result<usize> {
        self.apply(move |txn| access::redact_access_by(txn, workspace, user))
            .await
    }

    async fn prune_access_log(
        &self,
        workspace: WorkspaceId,
        before: crm_core::Timestamp,
        limit: usize,
    ) -> Result<usize> {
        self.apply(move |txn| access::prune_access(txn, workspace, before, limit))
            .await
    }

    async fn append_security_events(
        &self,
        events: &[crm_core::security::SecurityEvent],
    ) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let events = events.to_vec();
        self.apply(move |txn| logs::append_security(txn, &events))
            .await
            .map(drop)
    }

    async fn security_events(
        &self,
        workspace: WorkspaceId,
        query: &crm_core::security::SecurityEventQuery,
    ) -> Result<Vec<crm_core::security::SecurityEvent>> {
        let query = query.clone();
        self.read(move |txn| logs::security_events(txn, workspace, &query))
            .await
    }

    async fn redact_security_events_for(
        &self,
        workspace: WorkspaceId,
        user: crm_core::id::UserId,
    ) -> Result<usize> {
        self.apply(move |txn| logs::redact_security_for(txn, workspace, user))
            .await
    }

    async fn prune_security_events(
        &self,
        workspace: WorkspaceId,
        before: crm_core::Timestamp,
        limit: usize,
    ) -> Result<usize> {
        self.apply(move |txn| logs::prune_security(txn, workspace, before, limit))
            .await
    }

    async fn prune_audit(
        &self,
        workspace: WorkspaceId,
        before: crm_core::Timestamp,
        limit: usize,
    ) -> Result<usize> {
        self.apply(move |txn| logs::prune_audit(txn, workspace, before, limit))
            .await
    }

    fn watch_changes(&self, wake: Arc<dyn Fn() + Send + Sync>) {
        self.inner
            .wakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(wake);
    }

    async fn changes(
        &self,
        workspace: WorkspaceId,
        after: crm_core::feed::Position,
        limit: usize,
    ) -> Result<crm_core::feed::FeedPage> {
        self.read(move |txn| read::changes(txn, workspace, after, limit))
            .await
    }

    async fn prune_changes(
        &self,
        workspace: WorkspaceId,
        deleted_before: crm_core::Timestamp,
    ) -> Result<usize> {
        self.to_writer(|reply| {
            Msg::Prune(PruneJob {
                workspace,
                deleted_before,
                reply,
            })
        })
        .await
    }

    async fn audit(&self, workspace: WorkspaceId, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let query = query.clone();
        self.read(move |txn| read::audit(txn, workspace, &query))
            .await
    }

    async fn dashboard(
        &self,
        workspace: WorkspaceId,
        query: &crm_core::dashboard::DashboardQuery,
    ) -> Result<crm_core::dashboard::DashboardData> {
        let query = query.clone();
        self.read(move |txn| read::dashboard(txn, workspace, &query))
            .await
    }

    async fn workspaces(&self, limit: usize) -> Result<Vec<WorkspaceId>> {
        self.read(move |txn| read::workspaces(txn, limit)).await
    }

    async fn ping(&self) -> Result<()> {
        let writer_alive = self
            .inner
            .sender
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(|s| !s.is_closed());
        if !writer_alive {
            return Err(StoreError::Closed.into());
        }
        self.read(|_| Ok(())).await
    }
}
