//! The facade a host application calls: [`Crm`].
//!
//! Every operation takes the acting [`Actor`], checks the permission matrix
//! ([`crate::permission`]), validates input, and hands the storage one atomic [`Commit`]
//! holding the change, the assertions it depends on and its audit entries.
//!
//! ```text
//! crm.contacts().create(&actor, input)          crm.deals().move_to(&actor, id, v, "won", 0)
//! crm.contacts().update(&actor, id, v, patch)   crm.contacts().merge(&actor, winner, loser)
//! crm.contacts().list(&actor, params)           crm.users().set_role(&actor, id, v, role)
//! ```

mod changes;
mod contacts;
mod dashboard;
mod deals;
mod logs;
mod present;
mod records;
mod sessions;
mod users;
mod workspace;

pub use changes::{ChangeItem, ChangesPage, MAX_CHANGES_LIMIT, SUBSCRIPTION_BUFFER, Subscription};
pub use dashboard::{Dashboard, RecordCounts, StageFigures, TaskFigures};
pub use logs::{AccessLogService, FLUSH_BATCH, SecurityEventService};
pub use records::{Managed, Records};
pub use users::Users;
pub use workspace::{ActivityFeed, AuditLog, ConfigurationService, SearchResults};

use std::sync::Arc;

use crate::access_log::AccessEntry;
use crate::audit::{AuditAction, AuditEntry, diff};
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::error::{Error, ErrorKind, Result};
use crate::id::{AuditId, UserId, WorkspaceId};
use crate::model::{
    Company, Configuration, Contact, Deal, Entity, EntityKind, Note, Record, Role, Tag, Task, User,
};
use crate::security::{AnomalyConfig, SecurityEvents};
use crate::storage::{Commit, Storage, Write};

/// Settings of the engine.
#[derive(Clone)]
pub struct CrmConfig {
    /// How many times an operation whose *internal* reads went stale (e.g. the contact a new
    /// note touches was updated meanwhile) is retried before answering `VersionConflict`.
    pub conflict_retries: u32,
    /// Whether reads of personal data are kept in the store's access log (see
    /// [`crate::access_log`]; off by default in the engine, on by default in crm-server).
    /// Entries are queued in memory and written by [`Crm::flush_logs`], which the host
    /// calls periodically.
    pub record_access: bool,
    /// Where every access-log entry is also reported as it happens, if anywhere.
    pub access_log: Option<Arc<dyn AccessLog>>,
    /// Hosts' real-time streams of security events (see [`crate::security`]).
    pub security_hooks: Vec<Arc<dyn SecurityEvents>>,
    /// Thresholds of the anomaly rules (see [`crate::security::anomaly`]).
    pub anomalies: AnomalyConfig,
    /// How long a resolved [`Actor`] (the user's role and enabled state) is reused by
    /// [`Crm::actor`] before it is read again (default 2 s; zero: read every time). A change
    /// made through this engine applies at once; one made through another instance on the
    /// same database applies at once too when the storage delivers invalidation signals
    /// (PostgreSQL does, see [`crate::storage::invalidation`]), and within this time when it
    /// does not or while its signal connection is down — as the identity layer's revocation
    /// cache.
    pub actor_cache_ttl: std::time::Duration,
}

impl Default for CrmConfig {
    fn default() -> Self {
        CrmConfig {
            conflict_retries: 5,
            record_access: false,
            access_log: None,
            security_hooks: Vec::new(),
            anomalies: AnomalyConfig::default(),
            actor_cache_ttl: std::time::Duration::from_secs(2),
        }
    }
}

impl std::fmt::Debug for CrmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrmConfig")
            .field("conflict_retries", &self.conflict_retries)
            .field("record_access", &self.record_access)
            .field("access_log", &self.access_log.is_some())
            .field("security_hooks", &self.security_hooks.len())
            .field("anomalies", &self.anomalies)
            .field("actor_cache_ttl", &self.actor_cache_ttl)
            .finish()
    }
}

/// Receives every access-log entry as the read happens (see [`crate::access_log`]): single
/// records, batches, lists, searches, the change feed and exports, one entry per record
/// returned. Called inline after the read: keep it cheap (forward to a log or a channel).
pub trait AccessLog: Send + Sync + 'static {
    /// Reports one record read.
    fn record_read(&self, entry: &AccessEntry);
}

/// Where a request came from, attached to an [`Actor`] by the host (see
/// [`Actor::with_origin`]) so that access-log entries and security events name the route
/// and the client address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The host's route, e.g. `GET /contacts/{id}`.
    pub route: String,
    /// The client address, when known.
    pub address: Option<String>,
}

/// The user on whose behalf an operation runs: a snapshot of its workspace, id and role
/// taken when the request started (see [`Crm::actor`]), so a role change applies to the next
/// request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    workspace_id: WorkspaceId,
    user_id: UserId,
    role: Role,
    origin: Option<Arc<Origin>>,
}

impl Actor {
    /// The workspace.
    pub fn workspace_id(&self) -> WorkspaceId {
        self.workspace_id
    }
    /// The user.
    pub fn user_id(&self) -> UserId {
        self.user_id
    }
    /// The role at the time the actor was resolved.
    pub fn role(&self) -> Role {
        self.role
    }
    /// An actor built by the engine itself (not resolved from storage).
    pub(crate) fn new_internal(workspace_id: WorkspaceId, user_id: UserId, role: Role) -> Actor {
        Actor {
            workspace_id,
            user_id,
            role,
            origin: None,
        }
    }
    /// Where the request came from, if the host said.
    pub fn origin(&self) -> Option<&Origin> {
        self.origin.as_deref()
    }
    /// The same actor, acting through `route` from `address` (recorded in the access log
    /// and security events).
    #[must_use]
    pub fn with_origin(mut self, route: impl Into<String>, address: Option<String>) -> Self {
        self.origin = Some(Arc::new(Origin {
            route: route.into(),
            address,
        }));
        self
    }
}

struct Inner {
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    config: CrmConfig,
    actors: Arc<ActorCache>,
    /// Bumped after every commit that wrote feed entries (see [`ChangeSignal`]).
    feed_signal: Arc<tokio::sync::watch::Sender<u64>>,
    /// Set once the storage was asked to report other instances' commits.
    watching: std::sync::OnceLock<()>,
    /// The access log's and security events' queues, counters and anomaly rules.
    monitor: crate::security::monitor::Monitor,
    /// Caches of this process told of this engine's own commits (the identity layer's
    /// session states), see [`Crm::subscribe_local_invalidations`].
    local_sinks: crate::storage::invalidation::Sinks,
}

/// Wakes a reader of the change feed when there may be something new: after a commit
/// through this engine wrote feed entries, or when the store reports one made elsewhere (see
/// [`Crm::notify_changes`]). Only a wake-up: the feed itself is the truth, so a missed or
/// spurious signal costs a read, never a change. Get one with [`Crm::change_signal`] *before*
/// reading the feed, so nothing committed after the read goes unnoticed.
#[derive(Debug, Clone)]
pub struct ChangeSignal {
    rx: tokio::sync::watch::Receiver<u64>,
}

impl ChangeSignal {
    /// Waits until a commit was signalled since the last wait (or since the signal was made).
    /// Runtime-agnostic; combine it with the host runtime's timeout.
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            // The engine is gone: nothing will ever be signalled.
            std::future::pending::<()>().await;
        }
    }
}

/// Recently resolved actors, by (workspace, user), with the time they were read.
struct ActorCache(crate::storage::invalidation::KeyedCache<Actor>);

/// Another instance changed a user (or signals were lost): forget it (or everything).
impl crate::storage::InvalidationSink for ActorCache {
    fn invalidate(&self, signal: &crate::storage::Invalidation) {
        self.0.invalidate(signal);
    }
}

/// Entries beyond which the actor cache starts over (it only saves reads).
const ACTOR_CACHE_MAX: usize = 100_000;

/// The CRM engine: cheap to clone, shareable across tasks.
#[derive(Clone)]
pub struct Crm {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Crm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crm")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Crm {
    /// An engine over `storage` using the system clock.
    pub fn new(storage: Arc<dyn Storage>, config: CrmConfig) -> Self {
        Crm::with_clock(storage, config, Arc::new(SystemClock))
    }

    /// An engine with an injected clock (tests move time with [`crate::ManualClock`]).
    ///
    /// When the storage delivers invalidation signals (see
    /// [`Storage::subscribe_invalidations`]), the actor cache subscribes: a user changed
    /// through another instance is forgotten at once, not after
    /// [`CrmConfig::actor_cache_ttl`].
    pub fn with_clock(storage: Arc<dyn Storage>, config: CrmConfig, clock: Arc<dyn Clock>) -> Self {
        let actors = Arc::new(ActorCache(crate::storage::invalidation::KeyedCache::new(
            ACTOR_CACHE_MAX,
            crate::storage::invalidation::Holds::Users,
        )));
        let sink: Arc<dyn crate::storage::InvalidationSink> = actors.clone();
        storage.subscribe_invalidations(Arc::downgrade(&sink));
        Crm {
            inner: Arc::new(Inner {
                storage,
                clock,
                config,
                actors,
                feed_signal: Arc::new(tokio::sync::watch::Sender::new(0)),
                watching: std::sync::OnceLock::new(),
                monitor: Default::default(),
                local_sinks: Default::default(),
            }),
        }
    }

    /// A wake-up for readers of the change feed; see [`ChangeSignal`]. The first call asks
    /// the storage to report other instances' commits too ([`Storage::watch_changes`]; on
    /// PostgreSQL that starts a listener, so call it from within the host's runtime).
    pub fn change_signal(&self) -> ChangeSignal {
        self.inner.watching.get_or_init(|| {
            let signal = self.inner.feed_signal.clone();
            self.inner.storage.watch_changes(Arc::new(move || {
                signal.send_modify(|n| *n = n.wrapping_add(1))
            }));
        });
        ChangeSignal {
            rx: self.inner.feed_signal.subscribe(),
        }
    }

    /// Wakes every [`ChangeSignal`]: a store (or host) calls it when another instance
    /// committed feed entries. Cheap; never blocks.
    pub fn notify_changes(&self) {
        self.inner
            .feed_signal
            .send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The storage backend.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.inner.storage
    }

    /// The engine's clock.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock.clone()
    }

    /// The current time according to the engine's clock.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Resolves the acting user of a request: it must exist in the workspace and be enabled.
    /// A resolved actor is reused for [`CrmConfig::actor_cache_ttl`]; a change to the user
    /// made through this engine (role, disabling) is seen at once, one made through another
    /// instance within that time.
    ///
    /// # Errors
    /// `Unauthenticated` if the user does not exist in the workspace, `AccountDisabled` if it
    /// is disabled, storage failures.
    pub async fn actor(&self, workspace: WorkspaceId, user: UserId) -> Result<Actor> {
        let key = (workspace.uuid(), user.uuid());
        let ttl = i64::try_from(self.inner.config.actor_cache_ttl.as_micros()).unwrap_or(i64::MAX);
        let now = self.now().as_micros();
        if ttl > 0
            && let Some(actor) = self.inner.actors.0.fresh(key, now, ttl)
        {
            return Ok(actor);
        }
        let generation = self.inner.actors.0.generation();
        let record = self
            .storage()
            .get(workspace, EntityKind::User, user.uuid())
            .await?;
        let user = record
            .and_then(User::from_record)
            .ok_or_else(|| Error::new(ErrorKind::Unauthenticated))?;
        if user.disabled {
            return Err(Error::new(ErrorKind::AccountDisabled));
        }
        let actor = Actor {
            workspace_id: workspace,
            user_id: user.id,
            role: user.role,
            origin: None,
        };
        if ttl > 0 {
            self.inner
                .actors
                .0
                .put_if_current(generation, key, actor.clone(), now);
        }
        Ok(actor)
    }

    /// Registers a cache of this process to be told, before and after, of every commit made
    /// through this engine that makes its entries stale ([`invalidations_of`]) — whatever the
    /// store, and whichever part of the engine wrote it (disabling a user ends their sessions
    /// in the facade's own commit, which the identity layer's session cache must hear of at
    /// once). Other instances' commits reach the caches through
    /// [`Storage::subscribe_invalidations`] where the store supports it.
    ///
    /// [`invalidations_of`]: crate::storage::invalidation::invalidations_of
    pub fn subscribe_local_invalidations(
        &self,
        sink: std::sync::Weak<dyn crate::storage::InvalidationSink>,
    ) {
        self.inner.local_sinks.add(sink);
    }

    /// Applies `commit` through the storage, keeping the actor cache coherent: the users it
    /// writes are forgotten, whatever the outcome; the caches registered with
    /// [`Crm::subscribe_local_invalidations`] are told of what it makes stale before the
    /// commit (so a read racing it does not keep the old state) and after it. Every write of
    /// the engine goes through here.
    pub(crate) async fn commit(&self, commit: Commit) -> Result<()> {
        let stale = crate::storage::invalidation::invalidations_of(&commit);
        let tell = || {
            for signal in &stale {
                self.inner.local_sinks.deliver(signal);
            }
        };
        tell();
        let users: Vec<(uuid::Uuid, uuid::Uuid)> = commit
            .writes
            .iter()
            .filter_map(|w| match w {
                Write::Insert(r) | Write::Update { record: r, .. }
                    if r.kind() == EntityKind::User =>
                {
                    Some(r.id())
                }
                Write::Delete {
                    kind: EntityKind::User,
                    id,
                    ..
                } => Some(*id),
                _ => None,
            })
            .map(|id| (commit.workspace_id.uuid(), id))
            .collect();
        if !users.is_empty() {
            self.inner.actors.0.forget(Some(&users));
        }
        let fed = commit.writes.iter().any(|w| match w {
            Write::Insert(r) | Write::Update { record: r, .. } => crate::feed::in_feed(r.kind()),
            Write::Delete { kind, .. } => crate::feed::in_feed(*kind),
            _ => false,
        });
        let outcome = self.inner.storage.commit(commit).await;
        if !users.is_empty() {
            self.inner.actors.0.forget(Some(&users));
        }
        tell();
        if fed && outcome.is_ok() {
            self.notify_changes();
        }
        outcome
    }

    /// Companies.
    pub fn companies(&self) -> Records<'_, Company> {
        Records::new(self)
    }
    /// Contacts (with merge).
    pub fn contacts(&self) -> Records<'_, Contact> {
        Records::new(self)
    }
    /// Deals (with archive and move).
    pub fn deals(&self) -> Records<'_, Deal> {
        Records::new(self)
    }
    /// Notes on contacts and deals.
    pub fn notes(&self) -> Records<'_, Note> {
        Records::new(self)
    }
    /// Tasks (own only for sales and read-only users).
    pub fn tasks(&self) -> Records<'_, Task> {
        Records::new(self)
    }
    /// Tags.
    pub fn tags(&self) -> Records<'_, Tag> {
        Records::new(self)
    }
    /// Users of the workspace.
    pub fn users(&self) -> Users<'_> {
        Users { crm: self }
    }
    /// The workspace configuration.
    pub fn configuration(&self) -> ConfigurationService<'_> {
        ConfigurationService { crm: self }
    }
    /// The audit log (admins and managers).
    pub fn audit(&self) -> AuditLog<'_> {
        AuditLog { crm: self }
    }
    /// The activity feed.
    pub fn activity(&self) -> ActivityFeed<'_> {
        ActivityFeed { crm: self }
    }

    /// The workspace configuration, without a permission check (internal reads).
    pub(crate) async fn load_config(&self, workspace: WorkspaceId) -> Result<Configuration> {
        self.storage()
            .get(workspace, EntityKind::Configuration, workspace.uuid())
            .await?
            .and_then(Configuration::from_record)
            .ok_or_else(|| Error::not_found(EntityKind::Configuration))
    }

    /// Runs `op` again when it failed on a stale internal read.
    pub(crate) async fn retrying<T, F, Fut>(&self, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Err(e)
                    if e.kind() == ErrorKind::VersionConflict
                        && attempt < self.inner.config.conflict_retries =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// An audit entry for a change made by a user (identity events).
    pub(crate) fn audit_entry_for(
        &self,
        user: UserId,
        action: AuditAction,
        before: Option<&Record>,
        after: Option<&Record>,
    ) -> AuditEntry {
        let mut e = self.audit_entry(None, action, before, after);
        e.actor_id = Some(user);
        e
    }

    /// An audit entry for a change by `actor` (None: the system).
    pub(crate) fn audit_entry(
        &self,
        actor: Option<&Actor>,
        action: AuditAction,
        before: Option<&Record>,
        after: Option<&Record>,
    ) -> AuditEntry {
        let subject = after.or(before).expect("an audit entry is about a record");
        AuditEntry {
            id: AuditId::generate(),
            workspace_id: subject.workspace_id(),
            at: self.now(),
            // The system actor (nil id, e.g. retention) is recorded as no actor.
            actor_id: actor.map(Actor::user_id).filter(|u| !u.uuid().is_nil()),
            entity: subject.kind(),
            record_id: subject.id(),
            label: subject.label(),
            action,
            changes: diff(before, after),
        }
    }

    /// The commit of an update by `actor` from `before` to `after` (the record at
    /// `expected_version`), with its audit entry.
    pub(crate) fn update_commit(
        &self,
        actor: &Actor,
        before: &Record,
        after: Record,
        expected_version: u64,
    ) -> Commit {
        let mut commit = Commit::new(actor.workspace_id());
        commit.audit.push(self.audit_entry(
            Some(actor),
            AuditAction::Update,
            Some(before),
            Some(&after),
        ));
        commit.writes.push(Write::Update {
            record: after,
            expected_version,
        });
        commit
    }
}
