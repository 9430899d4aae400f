//! Invalidation signals: how a change committed through one instance reaches the caches of
//! every other instance sharing the storage at once, instead of after a cache TTL.
//!
//! Two caches in the core save a storage read per request: the identity layer's session
//! states (is this access token's session still active?) and the engine's resolved actors
//! (role, enabled). Both are kept coherent for changes made through *this* process; changes
//! made through another instance were seen only when an entry expired
//! ([`crate::identity::IdentityConfig::revocation_cache_ttl`],
//! [`crate::CrmConfig::actor_cache_ttl`]).
//!
//! A backend shared by several processes can do better: [`invalidations_of`] names what a
//! commit makes stale (a revoked or deleted session, a written or deleted user); the backend
//! publishes those names *as part of the commit* (PostgreSQL: `pg_notify` inside the
//! transaction, delivered only if it commits) and hands every signal it hears to the
//! [`InvalidationSink`]s registered through [`crate::Storage::subscribe_invalidations`].
//! A sink forgets the named entries, so the next request reads the new state.
//!
//! Why this is correct, not merely faster:
//!
//! * A signal is sent only for a change that committed, and only after it committed, so a
//!   cache that forgets an entry and reads again reads the new state.
//! * A read that started before the signal arrived must not re-insert the old state after
//!   it: the caches bump a generation on every invalidation and drop a read's result if the
//!   generation moved meanwhile.
//! * Signals can be lost (the signal connection drops). A backend then reports
//!   [`Invalidation::All`] once it listens again, and the caches start over; in between,
//!   the TTLs still bound staleness as before. The TTL stays the fallback, never the rule.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, Weak};

use uuid::Uuid;

use super::{Commit, Write};
use crate::id::WorkspaceId;
use crate::model::{EntityKind, Record};

/// A cache entry made stale by a committed change (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Invalidation {
    /// The session was revoked or deleted.
    Session {
        /// Workspace.
        workspace: WorkspaceId,
        /// Session id.
        id: Uuid,
    },
    /// The user was written (role, enabled state, ...) or deleted.
    User {
        /// Workspace.
        workspace: WorkspaceId,
        /// User id.
        id: Uuid,
    },
    /// Signals may have been lost: forget every cached entry.
    All,
}

impl Invalidation {
    /// A short text form for a text signal channel: `s <workspace> <id>`, `u <workspace>
    /// <id>` or `*` (at most 75 bytes).
    pub fn encode(&self) -> String {
        match self {
            Invalidation::Session { workspace, id } => format!("s {workspace} {id}"),
            Invalidation::User { workspace, id } => format!("u {workspace} {id}"),
            Invalidation::All => "*".into(),
        }
    }

    /// Parses [`Invalidation::encode`]'s form; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        if text == "*" {
            return Some(Invalidation::All);
        }
        let mut parts = text.split(' ');
        let (tag, ws, id) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let workspace = WorkspaceId::from_uuid(Uuid::parse_str(ws).ok()?);
        let id = Uuid::parse_str(id).ok()?;
        match tag {
            "s" => Some(Invalidation::Session { workspace, id }),
            "u" => Some(Invalidation::User { workspace, id }),
            _ => None,
        }
    }
}

/// What `commit` makes stale in other instances' caches: every session it revokes or
/// deletes and every user it writes or deletes, once each, in write order. Session updates
/// that keep the session active (refresh-token rotation) are not named: nothing cached
/// about them changes.
pub fn invalidations_of(commit: &Commit) -> Vec<Invalidation> {
    let workspace = commit.workspace_id;
    let mut out: Vec<Invalidation> = Vec::new();
    for w in &commit.writes {
        let found = match w {
            Write::Update {
                record: Record::Session(session),
                ..
            } => session.revoked_at.is_some().then(|| Invalidation::Session {
                workspace,
                id: session.id.uuid(),
            }),
            Write::Insert(record) | Write::Update { record, .. }
                if record.kind() == EntityKind::User =>
            {
                Some(Invalidation::User {
                    workspace,
                    id: record.id(),
                })
            }
            Write::Delete {
                kind: EntityKind::Session,
                id,
                ..
            } => Some(Invalidation::Session { workspace, id: *id }),
            Write::Delete {
                kind: EntityKind::User,
                id,
                ..
            } => Some(Invalidation::User { workspace, id: *id }),
            _ => None,
        };
        if let Some(i) = found
            && !out.contains(&i)
        {
            out.push(i);
        }
    }
    out
}

/// Hears invalidation signals (see the [module docs](self)). Called from the backend's
/// listener task: keep it short and never block on I/O.
pub trait InvalidationSink: Send + Sync + 'static {
    /// Forgets what `signal` names.
    fn invalidate(&self, signal: &Invalidation);
}

/// The sinks registered with a backend, held weakly (a dropped cache unregisters itself).
/// A helper for backends implementing [`crate::Storage::subscribe_invalidations`].
#[derive(Default)]
pub struct Sinks {
    sinks: std::sync::Mutex<Vec<Weak<dyn InvalidationSink>>>,
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sinks").field("live", &self.live()).finish()
    }
}

impl Sinks {
    /// Adds a sink.
    pub fn add(&self, sink: Weak<dyn InvalidationSink>) {
        let mut sinks = self
            .sinks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sinks.retain(|s| s.strong_count() > 0);
        sinks.push(sink);
    }

    /// Hands `signal` to every live sink.
    pub fn deliver(&self, signal: &Invalidation) {
        let live: Vec<_> = {
            let mut sinks = self
                .sinks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            sinks.retain(|s| s.strong_count() > 0);
            sinks.iter().filter_map(Weak::upgrade).collect()
        };
        for sink in live {
            sink.invalidate(signal);
        }
    }

    /// How many registered sinks are still alive.
    pub fn live(&self) -> usize {
        self.sinks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|s| s.strong_count() > 0)
            .count()
    }
}

/// A process-local cache by (workspace id, id) that invalidations keep coherent, as the
/// engine's resolved actors and the identity layer's session states are (see the [module
/// docs](self)): each value with the instant (microseconds) it was read; every forget bumps a
/// generation, and a read that started before one is not cached after it. Full at `max`
/// entries, it starts over (it only saves reads).
pub(crate) struct KeyedCache<V> {
    entries: RwLock<HashMap<(Uuid, Uuid), (V, i64)>>,
    generation: AtomicU64,
    max: usize,
    holds: Holds,
}

/// What a [`KeyedCache`] holds: which [`Invalidation`]s name its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holds {
    /// Entries by session ([`Invalidation::Session`]).
    Sessions,
    /// Entries by user ([`Invalidation::User`]).
    Users,
}

impl<V: Clone> KeyedCache<V> {
    /// An empty cache of at most `max` entries of the kind `holds`.
    pub(crate) fn new(max: usize, holds: Holds) -> Self {
        KeyedCache {
            entries: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            max,
            holds,
        }
    }

    /// Applies a signal: forgets the entry it names when it names one of the kind this
    /// cache holds, every entry on [`Invalidation::All`]; ignores the others.
    pub(crate) fn invalidate(&self, signal: &Invalidation) {
        match (signal, self.holds) {
            (Invalidation::Session { workspace, id }, Holds::Sessions)
            | (Invalidation::User { workspace, id }, Holds::Users) => {
                self.forget(Some(&[(workspace.uuid(), *id)]));
            }
            (Invalidation::All, _) => self.forget(None),
            _ => {}
        }
    }

    /// The value cached for `key`, if it was read at most `ttl` microseconds before `now`.
    pub(crate) fn fresh(&self, key: (Uuid, Uuid), now: i64, ttl: i64) -> Option<V> {
        let entries = self.entries.read().ok()?;
        let (value, at) = entries.get(&key)?;
        (now.saturating_sub(*at) <= ttl).then(|| value.clone())
    }

    /// The generation now: taken before a read, given to [`KeyedCache::put_if_current`].
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Caches `value` for `key`, read at `now`, unless something was forgotten since
    /// `generation` (the value read may then be the old one).
    pub(crate) fn put_if_current(&self, generation: u64, key: (Uuid, Uuid), value: V, now: i64) {
        if let Ok(mut entries) = self.entries.write()
            && self.generation() == generation
        {
            Self::insert(&mut entries, self.max, key, value, now);
        }
    }

    /// Caches `value` for `key`, known at `now` (the caller made it so).
    pub(crate) fn put(&self, key: (Uuid, Uuid), value: V, now: i64) {
        if let Ok(mut entries) = self.entries.write() {
            Self::insert(&mut entries, self.max, key, value, now);
        }
    }

    fn insert(
        entries: &mut HashMap<(Uuid, Uuid), (V, i64)>,
        max: usize,
        key: (Uuid, Uuid),
        value: V,
        now: i64,
    ) {
        if entries.len() >= max {
            entries.clear();
        }
        entries.insert(key, (value, now));
    }

    /// Forgets these keys (`None`: every entry) and bumps the generation.
    pub(crate) fn forget(&self, keys: Option<&[(Uuid, Uuid)]>) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut entries) = self.entries.write() {
            match keys {
                Some(keys) => {
                    for k in keys {
                        entries.remove(k);
                    }
                }
                None => entries.clear(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::model::{ClientInfo, Entity, Session, SessionId, TokenHash, User, UserInput};

    fn session(ws: WorkspaceId, revoked: bool) -> Session {
        let now = Timestamp::from_micros(1_700_000_000_000_000);
        Session {
            id: SessionId::generate(),
            workspace_id: ws,
            user_id: crate::id::UserId::generate(),
            current_token: TokenHash("h".into()),
            generation: 0,
            retired: Vec::new(),
            expires_at: now,
            revoked_at: revoked.then_some(now),
            revoke_reason: None,
            client: ClientInfo::default(),
            created_at: now,
            updated_at: now,
            version: 2,
        }
    }

    #[test]
    fn revocations_and_user_writes_are_named_rotations_are_not() {
        let ws = WorkspaceId::generate();
        let (revoked, rotated) = (session(ws, true), session(ws, false));
        let mut user = User::from_input(UserInput::default());
        user.workspace_id = ws;
        let mut c = Commit::new(ws);
        for record in [revoked.clone().into_record(), rotated.clone().into_record()] {
            c.writes.push(Write::Update {
                record,
                expected_version: 1,
            });
        }
        c.writes.push(Write::Update {
            record: user.clone().into_record(),
            expected_version: 1,
        });
        // Twice the same user: named once.
        c.writes.push(Write::Update {
            record: user.clone().into_record(),
            expected_version: 2,
        });
        c.writes.push(Write::Delete {
            kind: EntityKind::Session,
            id: rotated.id.uuid(),
            expected_version: 2,
        });
        c.writes.push(Write::FirstWorkspace);
        assert_eq!(
            invalidations_of(&c),
            [
                Invalidation::Session {
                    workspace: ws,
                    id: revoked.id.uuid()
                },
                Invalidation::User {
                    workspace: ws,
                    id: user.id.uuid()
                },
                Invalidation::Session {
                    workspace: ws,
                    id: rotated.id.uuid()
                },
            ]
        );
        assert!(invalidations_of(&Commit::new(ws)).is_empty());
    }

    #[derive(Default)]
    struct Count(std::sync::atomic::AtomicUsize);

    impl InvalidationSink for Count {
        fn invalidate(&self, _: &Invalidation) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn dropped_sinks_unregister_themselves() {
        let sinks = Sinks::default();
        let kept = std::sync::Arc::new(Count::default());
        let dropped = std::sync::Arc::new(Count::default());
        let (k, d): (
            std::sync::Arc<dyn InvalidationSink>,
            std::sync::Arc<dyn InvalidationSink>,
        ) = (kept.clone(), dropped.clone());
        sinks.add(std::sync::Arc::downgrade(&k));
        sinks.add(std::sync::Arc::downgrade(&d));
        sinks.deliver(&Invalidation::All);
        drop((d, dropped));
        assert_eq!(sinks.live(), 1);
        sinks.deliver(&Invalidation::All);
        assert_eq!(kept.0.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn text_form_round_trips_and_rejects_garbage() {
        let ws = WorkspaceId::generate();
        for i in [
            Invalidation::Session {
                workspace: ws,
                id: Uuid::now_v7(),
            },
            Invalidation::User {
                workspace: ws,
                id: Uuid::now_v7(),
            },
            Invalidation::All,
        ] {
            assert!(i.encode().len() <= 75);
            assert_eq!(Invalidation::decode(&i.encode()), Some(i));
        }
        for bad in ["", "s", "x a b", "s not-a-uuid 1", "**", "s a b c"] {
            assert_eq!(Invalidation::decode(bad), None, "{bad}");
        }
    }
}
