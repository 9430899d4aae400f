//! # crm-store-postgres
//!
//! PostgreSQL storage for [`crm_core`] on [sqlx](https://docs.rs/sqlx): the backend for hosts
//! that outgrow one machine — several stateless instances of the host application sharing
//! one database. [`PgStore`] implements [`crm_core::Storage`] and passes the same conformance
//! suite as every other backend.
//!
//! ```no_run
//! # async fn demo() -> crm_core::Result<()> {
//! use std::sync::Arc;
//! use crm_core::{Crm, CrmConfig, Storage};
//! use crm_store_postgres::{PgOptions, PgStore};
//!
//! // Connects, then applies the embedded migrations (idempotent).
//! let options = PgOptions::new("postgres://crm@db.internal/crm?sslmode=verify-full")
//!     .max_connections(20);
//! let storage: Arc<dyn Storage> = Arc::new(PgStore::connect(options).await?);
//! let crm = Crm::new(storage, CrmConfig::default());
//! # let _ = crm;
//! # Ok(()) }
//! ```
//!
//! ## Schema
//!
//! Created by the embedded [migrations](migrate), applied on connect (or by
//! [`PgStore::migrate`] when [`PgOptions::migrate_on_connect`] is off). One table per record
//! kind (`crm_contact`, `crm_deal`, ...), each row holding:
//!
//! | column | content |
//! |---|---|
//! | `workspace_id`, `id` | the primary key: every index starts with the workspace |
//! | `version`, `deleted` | optimistic concurrency; soft delete |
//! | `data` | the record as `jsonb` (the source of truth; hosts may query it for reports) |
//! | `k_<field>` | each filterable/sortable field as an order-preserving `bytea` key ([`kv::encode_value`](crm_core::storage::kv::encode_value)): comparisons and sorts follow the core's rules exactly (text case-insensitive, `NULL` last) |
//! | `m_<field>` | multi-valued fields (contact tags, deal contacts) as `uuid[]`, GIN-indexed |
//! | `words` | search words ([`tokens_of`](crm_core::search::tokens_of)) as a `tsvector`, GIN-indexed, matched as prefixes |
//! | `points` | contact points ([`contact_points_of`](crm_core::search::contact_points_of)) as text, `pg_trgm` GIN-indexed, matched as substrings |
//!
//! B-tree indexes `(workspace_id, k_<equality fields>..., k_<sort field>, id)` cover every
//! index of [`EntityKind::indexes`](crm_core::model::EntityKind::indexes) — every sortable
//! field, the common filtered lists — plus the task list's `(completed, due_date)` and
//! `(owner_id, completed, due_date)`. Lists are keyset range scans: `ORDER BY k_<sort>, id`
//! with the cursor as a row comparison, so page 1,000 costs what page 1 costs. `crm_unique`
//! holds unique values (user emails, tag names, token hashes) under a primary key, and
//! `crm_audit` the audit log keyed by its time-ordered ids.
//!
//! ## Search
//!
//! A query matches as [`crm_core::search`] defines: terms as prefixes of `words` (GIN) or,
//! from three chars, inside `points` (trigram GIN), written in disjunctive form so that
//! PostgreSQL can combine the bitmaps. Nothing ranks or counts the matches. The planner has
//! no statistics for rare words (it guesses 0.5% of the rows and may then walk the sort
//! index through a million rows to find none), so a search runs in bounded steps: first the
//! matches among the first 2,048 rows of the sort order (dense matches — a one-letter
//! prefix — fill the page there and stop early); if the page is not full and there are more
//! rows, the matches are sparse and are collected from the GIN indexes alone (plain index
//! walks and sequential scans turned off for that one statement), then sorted. The GIN
//! indexes hold no workspace column (it would be a posting list of every row of the
//! workspace, read by every search): other workspaces' matches fall to the heap recheck.
//!
//! ## Transactions and concurrency
//!
//! Every [`Commit`] is one transaction; see [`mod@write`] for the locking that
//! keeps each assertion true until commit under any number of connections and instances. A
//! lost race surfaces as `VersionConflict` (the core re-reads and retries where the
//! operation allows) or `Duplicate`, never as a partial write.
//!
//! ## Many instances
//!
//! Instances of the host sharing one database act as one server:
//!
//! * the **first workspace** is decided by the database ([`mod@write`]: `Write::FirstWorkspace`
//!   takes a transaction-scoped advisory lock and re-checks), so two first sign-ups racing
//!   on two instances cannot both succeed;
//! * **migrations** run under sqlx's database-wide advisory lock: one instance applies
//!   them, the others wait and find them applied;
//! * **revocations and user changes** reach every instance's caches at once through
//!   `LISTEN`/`NOTIFY` ([`signal`]), with the caches' TTLs as the fallback while the signal
//!   connection is down;
//! * **rate limits and the login throttle** are shared: [`PgRateLimiter`] leases a key's
//!   tokens to instances in small batches (the database sees about one call per five
//!   requests of a user), [`PgLoginThrottle`] keeps the failure counts (`crm_rate_limit` and
//!   `crm_login_failure`, unlogged tables of migration 0002).
//!
//! ## Failures
//!
//! See [`PgStoreError`] for how driver errors map to the coded E3xxx kinds. The pool tests
//! each connection before handing it out, so after the database restarts or connections are
//! terminated, the calls in flight fail with `StorageUnavailable` and later calls reconnect
//! by themselves.

pub mod dashboard;
pub mod error;
pub mod feed;
pub mod feed_signal;
mod logs;
pub mod migrate;
pub mod ratelimit;
mod read;
pub mod schema;
pub mod signal;
#[cfg(feature = "testing")]
pub mod testing;
pub mod throttle;
mod views;
pub mod write;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use crm_core::audit::{AuditEntry, AuditQuery};
use crm_core::id::WorkspaceId;
use crm_core::model::{EntityKind, Record};
use crm_core::query::ListQuery;
use crm_core::{Commit, Result, Storage};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

pub use error::PgStoreError;
pub use ratelimit::PgRateLimiter;
pub use throttle::PgLoginThrottle;

/// Connection and pool settings. Build with [`PgOptions::new`] and the setters.
///
/// TLS follows the URL's `sslmode` (`disable`, `prefer` — the default —, `require`,
/// `verify-ca`, `verify-full`) and `sslrootcert`; the server certificate is checked against
/// the Mozilla root store unless a root certificate is given.
#[derive(Clone)]
pub struct PgOptions {
    url: String,
    max_connections: u32,
    min_connections: u32,
    acquire_timeout: Duration,
    idle_timeout: Option<Duration>,
    statement_timeout: Option<Duration>,
    migrate_on_connect: bool,
    application_name: String,
    signals: bool,
}

impl fmt::Debug for PgOptions {
    // The URL may carry a password: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &"<redacted>")
            .field("max_connections", &self.max_connections)
            .field("min_connections", &self.min_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("migrate_on_connect", &self.migrate_on_connect)
            .field("application_name", &self.application_name)
            .field("signals", &self.signals)
            .finish()
    }
}

impl PgOptions {
    /// Settings for the database at `url` (`postgres://user:password@host:port/db?sslmode=...`),
    /// with defaults: 10 connections at most, none kept open when idle, 5 s to acquire a
    /// connection, 30 s statement timeout, migrations applied on connect.
    pub fn new(url: impl Into<String>) -> Self {
        PgOptions {
            url: url.into(),
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(600)),
            statement_timeout: Some(Duration::from_secs(30)),
            migrate_on_connect: true,
            application_name: "crm".into(),
            signals: true,
        }
    }

    /// Most connections the pool opens (default 10). Several instances share the server's
    /// `max_connections`: keep their sum below it.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Connections kept open even when idle (default 0).
    pub fn min_connections(mut self, n: u32) -> Self {
        self.min_connections = n;
        self
    }

    /// How long a call waits for a free connection before failing with
    /// `StorageUnavailable` (default 5 s).
    pub fn acquire_timeout(mut self, d: Duration) -> Self {
        self.acquire_timeout = d;
        self
    }

    /// Idle connections above the minimum are closed after this long (default 10 min).
    pub fn idle_timeout(mut self, d: Option<Duration>) -> Self {
        self.idle_timeout = d;
        self
    }

    /// Server-side limit on any one statement (PostgreSQL's `statement_timeout`, default
    /// 30 s; `None` for the server's setting). A statement cut off fails with `Busy`.
    pub fn statement_timeout(mut self, d: Option<Duration>) -> Self {
        self.statement_timeout = d;
        self
    }

    /// Whether [`PgStore::connect`] applies the embedded migrations (default `true`).
    pub fn migrate_on_connect(mut self, yes: bool) -> Self {
        self.migrate_on_connect = yes;
        self
    }

    /// The `application_name` connections report (default `crm`), shown in
    /// `pg_stat_activity`.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    /// Whether the store delivers invalidation signals to the core's caches (default
    /// `true`): one extra connection per store listening on [`signal::CHANNEL`], so a
    /// revocation or user change made through another instance reaches this one's caches
    /// at once instead of after their TTL. Commits always send the signals.
    pub fn invalidation_signals(mut self, yes: bool) -> Self {
        self.signals = yes;
        self
    }

    fn connect_options(&self) -> std::result::Result<PgConnectOptions, PgStoreError> {
        let mut opts = PgConnectOptions::from_str(&self.url).map_err(PgStoreError::InvalidUrl)?;
        opts = opts.application_name(&self.application_name);
        if let Some(t) = self.statement_timeout {
            opts = opts.options([("statement_timeout", format!("{}ms", t.as_millis()))]);
        }
        Ok(opts)
    }
}

/// A [`crm_core::Storage`] on PostgreSQL. Cheap to clone (the pool is shared); see the
/// [crate docs](crate).
#[derive(Clone)]
pub struct PgStore {
    pool: sqlx::PgPool,
    connect: PgConnectOptions,
    /// Storage calls in progress (see [`PgStore::pool_stats`]).
    calls: Arc<AtomicUsize>,
    signals: bool,
    /// The invalidation listener, started by the first subscription; shared by the clones
    /// and stopped with the last one.
    listener: std::sync::Arc<std::sync::Mutex<Option<signal::Listener>>>,
    feed_signals: std::sync::Arc<feed_signal::Signals>,
}

/// A snapshot of the connection pool, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgPoolStats {
    /// Connections open (idle or in use).
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// Most connections the pool opens.
    pub max: u32,
    /// Storage calls waiting for a connection: calls in progress beyond the connections in
    /// use (a call holds at most one connection at a time, so this is the pool's queue,
    /// give or take a call between two of its queries). An estimate: connections a host
    /// holds itself through [`PgStore::pool`] count as used by calls, hiding as many
    /// waiters.
    pub waiting: u32,
}

/// Counts one storage call while alive.
struct Busy<'a>(&'a AtomicUsize);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("connections", &self.pool.size())
            .finish()
    }
}

impl PgStore {
    /// Connects (checking that the database answers) and, unless turned off, applies the
    /// embedded migrations.
    ///
    /// # Errors
    /// `StorageUnavailable` if the database cannot be reached within the acquire timeout;
    /// `StorageFailure` for an invalid URL or a failed migration.
    pub async fn connect(options: PgOptions) -> Result<Self> {
        let connect = options.connect_options()?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .min_connections(options.min_connections)
            .acquire_timeout(options.acquire_timeout)
            .idle_timeout(options.idle_timeout)
            .test_before_acquire(true)
            .connect_with(connect.clone())
            .await
            .map_err(PgStoreError::from)?;
        let feed_signals = std::sync::Arc::new(feed_signal::Signals::new(pool.clone()));
        let store = PgStore {
            pool,
            connect,
            calls: Arc::new(AtomicUsize::new(0)),
            signals: options.signals,
            listener: std::sync::Arc::default(),
            feed_signals,
        };
        if options.migrate_on_connect {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Applies the embedded migrations not yet applied (see [`migrate`]). Idempotent and
    /// safe to run from several instances at once.
    ///
    /// # Errors
    /// `StorageFailure` if a migration fails (its transaction is rolled back) or the
    /// database was migrated by a newer release; `StorageUnavailable` if unreachable.
    pub async fn migrate(&self) -> Result<()> {
        migrate::run(&self.connect)
            .await
            .map_err(|e| PgStoreError::from(e).into())
    }

    /// The pool's size, idle connections and waiting calls, for metrics.
    pub fn pool_stats(&self) -> PgPoolStats {
        let size = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle())
            .unwrap_or(u32::MAX)
            .min(size);
        let calls = u32::try_from(self.calls.load(Ordering::Relaxed)).unwrap_or(u32::MAX);
        PgPoolStats {
            size,
            idle,
            max: self.pool.options().get_max_connections(),
            waiting: calls.saturating_sub(size - idle),
        }
    }

    fn busy(&self) -> Busy<'_> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Busy(&self.calls)
    }

    /// The connection pool, for hosts that want to run their own queries (reports over the
    /// `data` columns, say) on the same connections.
    pub fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }

    /// Refreshes the planner's statistics of every table (`ANALYZE`). Autovacuum does it
    /// after enough changes, but right after a bulk load the planner still believes the
    /// tables nearly empty and may pick plans that read every row (seen: a search at 25 ms
    /// instead of 1.5 ms on 20k contacts); call this after seeding or importing.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn analyze(&self) -> Result<()> {
        sqlx::query("ANALYZE")
            .execute(&self.pool)
            .await
            .map_err(error::db)?;
        Ok(())
    }

    /// Closes every connection (the invalidation listener's too); calls made afterwards
    /// fail with `StorageUnavailable`.
    pub async fn close(&self) {
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        drop(listener);
        self.pool.close().await;
    }
}

#[async_trait]
impl Storage for PgStore {
    async fn get(
        &self,
        workspace: WorkspaceId,
        kind: EntityKind,
        id: Uuid,
    ) -> Result<Option<Record>> {
        let _busy = self.busy();
        read::get(&self.pool, workspace.uuid(), kind, id).await
    }

    async fn get_many(
        &self,
        workspace: WorkspaceId,
        kind: EntityKind,
        ids: &[Uuid],
    ) -> Result<Vec<Record>> {
        let _busy = self.busy();
        read::get_many(&self.pool, workspace.uuid(), kind, ids).await
    }

    async fn list(
        &self,
        workspace: WorkspaceId,
        kind: EntityKind,
        query: &ListQuery,
    ) -> Result<Vec<Record>> {
        let _busy = self.busy();
        read::list(&self.pool, workspace.uuid(), kind, query).await
    }

    async fn find_unique(
        &self,
        workspace: WorkspaceId,
        kind: EntityKind,
        key: &str,
        value: &str,
    ) -> Result<Option<Record>> {
        let _busy = self.busy();
        read::find_unique(&self.pool, workspace.uuid(), kind, key, value).await
    }

    async fn commit(&self, commit: Commit) -> Result<()> {
        let _busy = self.busy();
        let ws = commit.workspace_id.uuid();
        let fed = !crm_core::feed::changes_of(&commit).is_empty();
        write::commit(&self.pool, commit).await?;
        if fed {
            self.feed_signals.after_commit(ws);
        }
        Ok(())
    }

    async fn record_views(&self, views: &[crm_core::views::View]) -> Result<()> {
        views::record(&self.pool, views).await
    }

    async fn recent_views(
        &self,
        workspace: WorkspaceId,
        user: crm_core::id::UserId,
        kind: EntityKind,
        limit: usize,
    ) -> Result<Vec<(Uuid, crm_core::Timestamp)>> {
        views::recent(&self.pool, workspace, user, kind, limit).await
    }

    async fn append_access_log(&self, entries: &[crm_core::access_log::AccessEntry]) -> Result<()> {
        logs::append_access(&self.pool, entries).await
    }

    async fn access_log(
        &self,
        workspace: WorkspaceId,
        query: &crm_core::access_log::AccessLogQuery,
    ) -> Result<Vec<crm_core::access_log::AccessEntry>> {
        logs::access_log(&self.pool, workspace, query).await
    }

    async fn erase_access_log_for(&self, workspace: WorkspaceId, record_id: Uuid) -> Result<usize> {
        logs::erase_access_for(&self.pool, workspace, record_id).await
    }

    async fn redact_access_log_by(
        &self,
        workspace: WorkspaceId,
        user: crm_core::id::UserId,
    ) -> Result<usize> {
        logs::redact_access_by(&self.pool, workspace, user).await
    }

    async fn prune_access_log(
        &self,
        workspace: WorkspaceId,
        before: crm_core::Timestamp,
        limit: usize,
    ) -> Result<usize> {
        logs::prune_access(&self.pool, workspace, before, limit).await
    }

    async fn append_security_events(
        &self,
        events: &[crm_core::security::SecurityEvent],
    ) -> Result<()> {
        logs::append_security(&self.pool, events).await
    }

    async fn security_events(
        &self,
        workspace: WorkspaceId,
        query: &crm_core::security::SecurityEventQuery,
    ) -> Result<Vec<crm_core::security::SecurityEvent>> {
        logs::security_events(&self.pool, workspace, query).await
    }

    async fn redact_security_events_for(
        &self,
        workspace: WorkspaceId,
        user: crm_core::id::UserId,
    ) -> Result<usize> {
        logs::redact_security_for(&self.pool, workspace, user).await
    }

    async fn prune_security_events(
        &self,
        workspace: WorkspaceId,
        before: crm_core::Timestamp,
        limit: usize,
    ) -> Result<usize> {
        logs::prune_security(&self.pool, workspace, before, limit).await
    }

    async fn prune_audit(
        &self,
        workspace: WorkspaceId,
        before: crm_core::Timestamp,
        limit: usize,
    ) -> Result<usize> {
        logs::prune_audit(&self.pool, workspace, before, limit).await
    }

    fn watch_changes(&self, wake: std::sync::Arc<dyn Fn() + Send + Sync>) {
        self.feed_signals.watch(wake);
    }

    async fn changes(
        &self,
        workspace: WorkspaceId,
        after: crm_core::feed::Position,
        limit: usize,
    ) -> Result<crm_core::feed::FeedPage> {
        feed::changes(&self.pool, workspace, after, limit).await
    }

    async fn prune_changes(
        &self,
        workspace: WorkspaceId,
        deleted_before: crm_core::Timestamp,
    ) -> Result<usize> {
        feed::prune(&self.pool, workspace, deleted_before).await
    }

    async fn dashboard(
        &self,
        workspace: WorkspaceId,
        query: &crm_core::dashboard::DashboardQuery,
    ) -> Result<crm_core::dashboard::DashboardData> {
        let _busy = self.busy();
        dashboard::read(&self.pool, workspace.uuid(), query).await
    }

    async fn audit(&self, workspace: WorkspaceId, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let _busy = self.busy();
        read::audit(&self.pool, workspace.uuid(), query).await
    }

    async fn workspaces(&self, limit: usize) -> Result<Vec<WorkspaceId>> {
        let _busy = self.busy();
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT workspace_id FROM crm_workspace ORDER BY workspace_id LIMIT $1",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(error::db)?;
        Ok(ids.into_iter().map(WorkspaceId::from_uuid).collect())
    }

    fn subscribe_invalidations(
        &self,
        sink: std::sync::Weak<dyn crm_core::storage::InvalidationSink>,
    ) -> bool {
        if !self.signals {
            return false;
        }
        let mut listener = self
            .listener
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if listener.is_none() {
            *listener = signal::Listener::start(&self.connect);
        }
        match listener.as_ref() {
            Some(l) => {
                l.sinks.add(sink);
                true
            }
            None => false,
        }
    }

    async fn ping(&self) -> Result<()> {
        let _busy = self.busy();
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(error::db)?;
        Ok(())
    }
}

/// The `SELECT` statement (SQL text) the store runs for a list query, with `$n` placeholders —
/// for `EXPLAIN` checks and for operators reading slow-query logs.
///
/// # Errors
/// `InvalidQuery` for a field the kind does not have.
pub fn list_sql(workspace: WorkspaceId, kind: EntityKind, query: &ListQuery) -> Result<String> {
    read::list_statement(workspace.uuid(), kind, query).map(|s| s.sql)
}

/// Runs `EXPLAIN` (plain, without executing) on every statement the store may run for a list
/// query and returns the plans' text lines, one plan after the other, each headed by a line
/// naming the step; used by the index-coverage tests and handy when tuning. A search has
/// three steps (see the crate's read path): the windowed walk, the exhaustion check, and the
/// index-collected matches (planned as they run, with plain index walks and sequential
/// scans off).
///
/// # Errors
/// Storage failures, or `InvalidQuery`.
pub async fn explain_list(
    store: &PgStore,
    workspace: WorkspaceId,
    kind: EntityKind,
    query: &ListQuery,
) -> Result<Vec<String>> {
    let st = read::list_statement(workspace.uuid(), kind, query)?;
    let mut steps = vec![("list", st.sql.clone(), false)];
    if let Some(w) = &st.window {
        steps = vec![
            ("search window", w.sql.clone(), false),
            ("search window exhausted?", w.exhausted_sql.clone(), false),
            ("search by index", st.sql.clone(), true),
        ];
    }
    let mut out = Vec::new();
    let mut tx = store.pool.begin().await.map_err(error::db)?;
    for (name, sql, bitmap_only) in steps {
        if bitmap_only {
            for set in [
                "SET LOCAL enable_indexscan = off",
                "SET LOCAL enable_seqscan = off",
            ] {
                sqlx::query(set)
                    .execute(&mut *tx)
                    .await
                    .map_err(error::db)?;
            }
        }
        let explain = format!("EXPLAIN {sql}");
        let rows = st
            .query_text(&explain)
            .fetch_all(&mut *tx)
            .await
            .map_err(error::db)?;
        out.push(format!("-- {name}"));
        for r in &rows {
            out.push(sqlx::Row::try_get::<String, _>(r, 0).map_err(error::db)?);
        }
    }
    tx.rollback().await.map_err(error::db)?;
    Ok(out)
}
