//! [`MemoryStore`]: the reference implementation of [`Storage`], in memory.
//!
//! It is the executable statement of the trait's semantics — every method is the plainest
//! possible reading of its docs — used to run the conformance suite against the core itself
//! and as a model for fuzzing. It is not a production backend (nothing is persisted).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use uuid::Uuid;

use crate::access_log::{AccessEntry, AccessLogQuery};
use crate::audit::{AuditEntry, AuditQuery};
use crate::clock::Timestamp;
use crate::error::{Error, ErrorKind, FieldError, FieldIssue, Result};
use crate::feed::{Change, ChangeEntry, ChangeOp, FeedPage, Position};
use crate::id::{UserId, WorkspaceId};
use crate::model::{EntityKind, Record};
use crate::query::ListQuery;
use crate::security::{SecurityEvent, SecurityEventQuery};
use crate::storage::{Commit, Storage, Write, kv};

type Key = (Uuid, EntityKind, Uuid);

#[derive(Default)]
struct State {
    records: BTreeMap<Key, Record>,
    audit: Vec<AuditEntry>,
    /// The change feeds: `(workspace, position) -> change`, one entry per record.
    feed: BTreeMap<(Uuid, Position), Change>,
    /// Where each record's entry is.
    feed_at: HashMap<Key, Position>,
    /// The last commit number (the `tx` of positions).
    feed_tx: u64,
    /// Per workspace: entries at or below were pruned.
    horizons: HashMap<Uuid, Position>,
    /// Recently viewed: (workspace, user, kind) -> record -> latest view.
    views: HashMap<(Uuid, Uuid, EntityKind), HashMap<Uuid, Timestamp>>,
    /// The access log, by id.
    access: BTreeMap<Uuid, AccessEntry>,
    /// Security events, by id.
    security: BTreeMap<Uuid, SecurityEvent>,
}

/// The reference implementation of [`Storage`], in memory.
///
/// It is the executable statement of the trait's semantics — every method is the plainest
/// possible reading of its docs — used to run the conformance suite against the core itself
/// and as a model for fuzzing. It is not a production backend (nothing is persisted).
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    wakers: Mutex<Vec<std::sync::Arc<dyn Fn() + Send + Sync>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn check(state: &State, ws: WorkspaceId, writes: &[Write]) -> Result<()> {
    let get = |kind: EntityKind, id: Uuid| state.records.get(&(ws.uuid(), kind, id));
    let versioned = |kind: EntityKind, id: Uuid, expected: u64| match get(kind, id) {
        None => Err(Error::not_found(kind)),
        Some(r) if r.version() != expected => Err(Error::new(ErrorKind::VersionConflict)),
        Some(_) => Ok(()),
    };
    // Unique values claimed by earlier writes of this same commit.
    let mut claimed: Vec<(EntityKind, &'static str, String, Uuid)> = Vec::new();
    let mut unique_free = |record: &Record| -> Result<()> {
        for (key, value) in record.unique_keys() {
            if claimed.iter().any(|(k, n, v, id)| {
                *k == record.kind() && *n == key && *v == value && *id != record.id()
            }) {
                return Err(Error::duplicate(key));
            }
            claimed.push((record.kind(), key, value.clone(), record.id()));
            let taken = state.records.iter().any(|((w, k, id), r)| {
                *w == ws.uuid()
                    && *k == record.kind()
                    && *id != record.id()
                    && r.unique_keys()
                        .iter()
                        .any(|(k2, v2)| *k2 == key && *v2 == value)
            });
            if taken {
                return Err(Error::duplicate(key));
            }
        }
        Ok(())
    };
    for w in writes {
        match w {
            Write::Insert(r) => {
                if r.workspace_id() != ws {
                    return Err(Error::new(ErrorKind::StorageFailure));
                }
                if get(r.kind(), r.id()).is_some() {
                    return Err(Error::new(ErrorKind::VersionConflict));
                }
                unique_free(r)?;
            }
            Write::Update {
                record,
                expected_version,
            } => {
                if record.workspace_id() != ws {
                    return Err(Error::new(ErrorKind::StorageFailure));
                }
                versioned(record.kind(), record.id(), *expected_version)?;
                unique_free(record)?;
            }
            Write::Delete {
                kind,
                id,
                expected_version,
            }
            | Write::Check {
                kind,
                id,
                expected_version,
            } => {
                versioned(*kind, *id, *expected_version)?;
            }
            Write::Exists { kind, id, field } => {
                if get(*kind, *id).is_none_or(Record::is_deleted) {
                    return Err(Error::validation(vec![FieldError::new(
                        *field,
                        FieldIssue::UnknownReference,
                    )]));
                }
            }
            Write::FirstWorkspace => {
                let other = state
                    .records
                    .keys()
                    .any(|(w, k, id)| *k == EntityKind::Workspace && w == id && *w != ws.uuid());
                if other {
                    return Err(Error::new(ErrorKind::AlreadyInitialized));
                }
            }
            Write::RedactAudit(e) => {
                if e.workspace_id != ws {
                    return Err(Error::new(ErrorKind::StorageFailure));
                }
            }
            Write::ForgetViews { .. } | Write::ForgetViewer { .. } => {}
        }
    }
    Ok(())
}

#[async_trait]
impl Storage for MemoryStore {
    async fn get(
        &self,
        workspace: WorkspaceId,
        kind: EntityKind,
        id: Uuid,
    ) -> Result<Option<Record>> {
        Ok(self
            .lock()
            .records
            .get(&(workspace.uuid(), kind, id))
            .cloned())
    }

    async fn get_many(
        &self,
        workspace: WorkspaceId,
        kind: EntityKind,
        ids: &[Uuid],
    ) -> Result<Vec<Record>> {
        let state = self.lock();
        Ok(ids
            .iter()
            .filter_map(|id| state.records.get(&(workspace.uuid(), kind, *id)).cloned())
            .collect())
    }

    async fn list(
        &self,
        workspace: WorkspaceId,
        kind: EntityKind,
        query: &ListQuery,
    ) -> Result<Vec<Record>> {
        let state = self.lock();
        let mut rows: Vec<Record> = state
            .records
            .range((workspace.uuid(), kind, Uuid::nil())..=(workspace.uuid(), kind, Uuid::max()))
            .map(|(_, r)| r)
            .filter(|r| kv::admits(r, query) && kv::after_cursor(r, query))
            .cloned()
            .collect();
        kv::sort_records(&mut rows, query);
        rows.truncate(query.limit);
        Ok(rows)
    }

    async fn find_unique(
        &self,
        workspace: WorkspaceId,
        kind: EntityKind,
        key: &str,
        value: &str,
    ) -> Result<Option<Record>> {
        let state = self.lock();
        Ok(state
            .records
            .range((workspace.uuid(), kind, Uuid::nil())..=(workspace.uuid(), kind, Uuid::max()))
            .map(|(_, r)| r)
            .find(|r| r.unique_keys().iter().any(|(k, v)| *k == key && v == value))
            .cloned())
    }

    async fn commit(&self, commit: Commit) -> Result<()> {
        let mut state = self.lock();
        let ws = commit.workspace_id;
        check(&state, ws, &commit.writes)?;
        let changes = crate::feed::changes_of(&commit);
        if !changes.is_empty() {
            state.feed_tx += 1;
            let tx = state.feed_tx;
            for (seq, change) in changes.into_iter().enumerate() {
                let key = (ws.uuid(), change.entity, change.id);
                let position = Position {
                    tx,
                    seq: u32::try_from(seq).unwrap_or(u32::MAX),
                };
                if let Some(old) = state.feed_at.insert(key, position) {
                    state.feed.remove(&(ws.uuid(), old));
                }
                state.feed.insert((ws.uuid(), position), change);
            }
        }
        for w in commit.writes {
            match w {
                Write::Insert(r) | Write::Update { record: r, .. } => {
                    state.records.insert((ws.uuid(), r.kind(), r.id()), r);
                }
                Write::Delete { kind, id, .. } => {
                    state.records.remove(&(ws.uuid(), kind, id));
                }
                Write::RedactAudit(e) => {
                    if let Some(old) = state
                        .audit
                        .iter_mut()
                        .find(|o| o.id == e.id && o.workspace_id == ws)
                    {
                        *old = e;
                    }
                }
                Write::ForgetViews { kind, id } => {
                    for ((w, _, k), list) in &mut state.views {
                        if *w == ws.uuid() && *k == kind {
                            list.remove(&id);
                        }
                    }
                }
                Write::ForgetViewer { user } => {
                    state
                        .views
                        .retain(|(w, u, _), _| !(*w == ws.uuid() && *u == user.uuid()));
                }
                Write::Check { .. } | Write::Exists { .. } | Write::FirstWorkspace => {}
            }
        }
        state.audit.extend(commit.audit);
        drop(state);
        let wakers = self
            .wakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for wake in wakers {
            wake();
        }
        Ok(())
    }

    async fn record_views(&self, views: &[crate::views::View]) -> Result<()> {
        let mut state = self.lock();
        for v in crate::views::latest(views) {
            let list = state
                .views
                .entry((v.workspace_id.uuid(), v.user_id.uuid(), v.entity))
                .or_default();
            let at = list.entry(v.record_id).or_insert(v.at);
            *at = (*at).max(v.at);
            while list.len() > crate::views::RECENT_LIMIT {
                let oldest = list
                    .iter()
                    .min_by_key(|(id, at)| (**at, **id))
                    .map(|(id, _)| *id);
                if let Some(id) = oldest {
                    list.remove(&id);
                }
            }
        }
        Ok(())
    }

    async fn recent_views(
        &self,
        workspace: WorkspaceId,
        user: crate::id::UserId,
        kind: EntityKind,
        limit: usize,
    ) -> Result<Vec<(Uuid, Timestamp)>> {
        let state = self.lock();
        let mut rows: Vec<(Uuid, Timestamp)> = state
            .views
            .get(&(workspace.uuid(), user.uuid(), kind))
            .map(|m| m.iter().map(|(id, at)| (*id, *at)).collect())
            .unwrap_or_default();
        rows.sort_by_key(|(id, at)| std::cmp::Reverse((*at, *id)));
        rows.truncate(limit);
        Ok(rows)
    }

    fn watch_changes(&self, wake: std::sync::Arc<dyn Fn() + Send + Sync>) {
        self.wakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(wake);
    }

    async fn changes(
        &self,
        workspace: WorkspaceId,
        after: Position,
        limit: usize,
    ) -> Result<FeedPage> {
        let state = self.lock();
        let ws = workspace.uuid();
        let end = Position {
            tx: u64::MAX,
            seq: u32::MAX,
        };
        let entries = state
            .feed
            .range((
                std::ops::Bound::Excluded((ws, after)),
                std::ops::Bound::Included((ws, end)),
            ))
            .take(limit)
            .map(|((_, position), change)| ChangeEntry {
                position: *position,
                change: change.clone(),
            })
            .collect();
        Ok(FeedPage {
            entries,
            horizon: state.horizons.get(&ws).copied().unwrap_or_default(),
        })
    }

    async fn prune_changes(
        &self,
        workspace: WorkspaceId,
        deleted_before: Timestamp,
    ) -> Result<usize> {
        let mut state = self.lock();
        let ws = workspace.uuid();
        let doomed: Vec<(Position, EntityKind, Uuid)> = state
            .feed
            .iter()
            .filter(|((w, _), c)| *w == ws && c.op == ChangeOp::Delete && c.at < deleted_before)
            .map(|((_, p), c)| (*p, c.entity, c.id))
            .collect();
        for (position, kind, id) in &doomed {
            state.feed.remove(&(ws, *position));
            state.feed_at.remove(&(ws, *kind, *id));
        }
        if let Some(top) = doomed.iter().map(|(p, _, _)| *p).max() {
            let horizon = state.horizons.entry(ws).or_default();
            *horizon = (*horizon).max(top);
        }
        Ok(doomed.len())
    }

    async fn audit(&self, workspace: WorkspaceId, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let state = self.lock();
        let limit = query.limit.unwrap_or(crate::query::DEFAULT_LIMIT);
        let mut rows: Vec<AuditEntry> = state
            .audit
            .iter()
            .filter(|e| e.workspace_id == workspace && query.admits(e))
            .cloned()
            .collect();
        rows.sort_by_key(|e| std::cmp::Reverse(e.id));
        rows.truncate(limit);
        Ok(rows)
    }

    async fn append_access_log(&self, entries: &[AccessEntry]) -> Result<()> {
        let mut state = self.lock();
        for e in entries {
            state.access.insert(e.id, e.clone());
        }
        Ok(())
    }

    async fn access_log(
        &self,
        workspace: WorkspaceId,
        query: &AccessLogQuery,
    ) -> Result<Vec<AccessEntry>> {
        let state = self.lock();
        Ok(state
            .access
            .values()
            .rev()
            .filter(|e| e.workspace_id == workspace && query.admits(e))
            .take(query.limit)
            .cloned()
            .collect())
    }

    async fn erase_access_log_for(&self, workspace: WorkspaceId, record_id: Uuid) -> Result<usize> {
        let mut state = self.lock();
        let before = state.access.len();
        state
            .access
            .retain(|_, e| !(e.workspace_id == workspace && e.record_id == record_id));
        Ok(before - state.access.len())
    }

    async fn redact_access_log_by(&self, workspace: WorkspaceId, user: UserId) -> Result<usize> {
        let mut state = self.lock();
        let mut n = 0;
        for e in state.access.values_mut() {
            if e.workspace_id == workspace && e.user_id == user && e.address.is_some() {
                e.address = None;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn prune_access_log(
        &self,
        workspace: WorkspaceId,
        before: Timestamp,
        limit: usize,
    ) -> Result<usize> {
        let mut state = self.lock();
        let doomed: Vec<Uuid> = state
            .access
            .values()
            .filter(|e| e.workspace_id == workspace)
            .take_while(|e| e.at < before)
            .take(limit)
            .map(|e| e.id)
            .collect();
        for id in &doomed {
            state.access.remove(id);
        }
        Ok(doomed.len())
    }

    async fn append_security_events(&self, events: &[SecurityEvent]) -> Result<()> {
        let mut state = self.lock();
        for e in events {
            state.security.insert(e.id, e.clone());
        }
        Ok(())
    }

    async fn security_events(
        &self,
        workspace: WorkspaceId,
        query: &SecurityEventQuery,
    ) -> Result<Vec<SecurityEvent>> {
        let state = self.lock();
        Ok(state
            .security
            .values()
            .rev()
            .filter(|e| e.workspace_id == workspace && query.admits(e))
            .take(query.limit)
            .cloned()
            .collect())
    }

    async fn redact_security_events_for(
        &self,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<usize> {
        let mut state = self.lock();
        let mut n = 0;
        for e in state.security.values_mut() {
            if e.workspace_id == workspace
                && (e.user_id == Some(user) || e.actor_id == Some(user))
                && (e.address.is_some() || e.email.is_some())
            {
                e.address = None;
                e.email = None;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn prune_security_events(
        &self,
        workspace: WorkspaceId,
        before: Timestamp,
        limit: usize,
    ) -> Result<usize> {
        let mut state = self.lock();
        let doomed: Vec<Uuid> = state
            .security
            .values()
            .filter(|e| e.workspace_id == workspace)
            .take_while(|e| e.at < before)
            .take(limit)
            .map(|e| e.id)
            .collect();
        for id in &doomed {
            state.security.remove(id);
        }
        Ok(doomed.len())
    }

    async fn prune_audit(
        &self,
        workspace: WorkspaceId,
        before: Timestamp,
        limit: usize,
    ) -> Result<usize> {
        let mut state = self.lock();
        let mut ids: Vec<(crate::id::AuditId, Timestamp)> = state
            .audit
            .iter()
            .filter(|e| e.workspace_id == workspace)
            .map(|e| (e.id, e.at))
            .collect();
        ids.sort_by_key(|(id, _)| *id);
        let doomed: std::collections::HashSet<crate::id::AuditId> = ids
            .into_iter()
            .take_while(|(_, at)| *at < before)
            .take(limit)
            .map(|(id, _)| id)
            .collect();
        state.audit.retain(|e| !doomed.contains(&e.id));
        Ok(doomed.len())
    }

    async fn workspaces(&self, limit: usize) -> Result<Vec<WorkspaceId>> {
        Ok(self
            .lock()
            .records
            .keys()
            .filter(|(w, k, id)| *k == EntityKind::Workspace && w == id)
            .map(|(w, _, _)| WorkspaceId::from_uuid(*w))
            .take(limit)
            .collect())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
