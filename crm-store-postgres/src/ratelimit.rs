//! [`PgRateLimiter`]: one rate limit for every instance sharing a PostgreSQL database,
//! without a database round trip per request.
//!
//! ## Design
//!
//! Each (policy, key) has one GCRA bucket in the `crm_rate_limit` table (migration 0002):
//! its "theoretical arrival time", on the **database's** clock, so instances whose clocks
//! differ still share one bucket. An instance does not ask the database about every
//! request: it **leases a batch** of the key's tokens with one call to `crm_rate_lease` (a
//! SQL function: one round trip, the row locked for the few microseconds of the update) and
//! serves the next requests of that key from its local lease.
//!
//! * **Batch size:** 5% of the quota, between 1 and 64 tokens: 5 of the 100 per minute of a
//!   user, 1 for login (10 per minute) and password resets. The database sees about one call
//!   per batch of allowed requests per key and instance (a user at 100 requests per minute:
//!   20 calls per minute, whatever the number of instances).
//! * **Never over the limit.** Tokens are debited from the shared bucket when leased, before
//!   they are used, so the requests allowed across all instances never exceed what one GCRA
//!   bucket allows: the full quota at once, then one request per `per / requests`. The
//!   overshoot is **zero** (the margin was 5%).
//! * **Bounded under-use.** A lease lives `batch × interval` (between 100 ms and 5 s; 3 s for
//!   100/min). Tokens left in an instance's lease cannot be used by another instance until
//!   the lease is given back (with the key's next lease, in the same call) or the bucket
//!   refills: a client spread over N instances may be refused while up to
//!   `(N − 1) × (batch − 1)` tokens sit in other instances' leases — at most 4 of 100 per
//!   instance for a user.
//! * **One lease call per key at a time.** When a key's lease runs out under concurrent
//!   requests, one of them leases and the others wait for its answer, then use the tokens it
//!   brought: a burst of 64 concurrent requests costs one round trip, not 64 (which also
//!   leased 64 batches at once, and left them to expire unused).
//! * **Busy keys never wait.** A lease of 16 tokens or more (quotas from 320 a window) that
//!   is half used is topped up by the check that notices it, to one batch again, while the
//!   others go on with what is left; an instance still never holds more than one batch of a
//!   key.
//! * **Refusals are cached** until the next token is due, so a client hammering past its
//!   limit costs the database one call per key and instance per `per / requests` (0.6 s for
//!   a user), not one per request.
//! * **Truthful headers.** `remaining` is this instance's lease plus what the bucket had left
//!   at the last lease (other instances may have taken some since); `reset` is when the
//!   bucket is full again, counting leased tokens as used; `Retry-After` is when the
//!   database's bucket has its next token.
//! * **Failures.** When the database cannot be reached, checks fall back to an in-process
//!   limiter with the same quotas (each instance then enforces its own copy, as without a
//!   shared limiter), logged at most once a minute: the API stays up and every instance
//!   still limits. After a failed lease, a key's checks stay local for 0.5 s before the
//!   database is asked again (so an outage costs one timeout per key and half second, not
//!   one per request).
//! * **Bounded state.** Local leases are forgotten once expired and unused (swept when the
//!   map grows past 10,000 keys); rows whose bucket is full (nothing to remember) are
//!   deleted by a sweep every 60 s of traffic, 1,000 rows at a time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use crm_core::Result;
use crm_core::ratelimit::{
    InProcessLimiter, Policy, Quota, RateDecision, RateLimitConfig, RateLimiter,
};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::PgStore;

/// Local leases beyond which expired ones are swept.
const SWEEP_AT: usize = 10_000;
/// How often (at most) full buckets are deleted from the table.
const ROW_SWEEP_EVERY: Duration = Duration::from_secs(60);
/// After a failed lease, how long a key's checks fall back to the in-process limiter
/// without asking the database again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(500);

/// A shared [`RateLimiter`] on PostgreSQL; see the [module docs](self).
pub struct PgRateLimiter {
    pool: sqlx::PgPool,
    config: RateLimitConfig,
    leases: Mutex<HashMap<(Policy, [u8; 32]), Lease>>,
    fallback: InProcessLimiter,
    last_row_sweep: Mutex<Instant>,
    warned_at: Mutex<Option<Instant>>,
    sweeping: AtomicBool,
}

impl std::fmt::Debug for PgRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgRateLimiter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// This instance's share of one key's bucket.
#[derive(Debug)]
struct Lease {
    /// Tokens leased and not yet used.
    tokens: u32,
    /// Until when they may be used.
    expires: Instant,
    /// Tokens the shared bucket had left at the last lease.
    left: u32,
    /// When the bucket is full again (leased tokens counted as used).
    full_at: Instant,
    /// Refused (the bucket had no token) until then.
    refused_until: Option<Instant>,
    /// Set while one check of this key leases from the database: the others wait for it
    /// (one database call per key at a time, not one per concurrent request).
    leasing: Option<Arc<Notify>>,
    /// The database failed the last lease: limit per instance until then.
    unreachable_until: Option<Instant>,
}

impl Lease {
    fn empty(now: Instant) -> Self {
        Lease {
            tokens: 0,
            expires: now,
            left: 0,
            full_at: now,
            refused_until: None,
            leasing: None,
            unreachable_until: None,
        }
    }
}

/// Batches from this size on are topped up before they run out (see [`Local::TopUp`]).
const TOP_UP_FROM_BATCH: u32 = 16;

/// What the local lease did with a check.
enum Local {
    /// Answered it.
    Served(RateDecision),
    /// Answered it, and the lease of this busy key is half used: this check tops it up with
    /// this many tokens (holding the key's turn) while the other checks go on using what is
    /// left, so that they never wait for the database.
    TopUp(RateDecision, u32),
    /// Could not answer it.
    Missed(Miss),
}

/// Why the local lease could not answer a check.
enum Miss {
    /// This check leases from the database, giving back this many unused tokens; it holds
    /// the key's turn ([`Turn`]) until it is done.
    Lease(u32),
    /// Another check of the key is leasing: wait for it, then look again.
    Wait(Arc<Notify>),
    /// The database failed a moment ago: limit per instance.
    Unreachable,
}

/// The key's turn to lease: when dropped (done, failed or cancelled), the checks waiting for
/// it are woken.
struct Turn<'a> {
    limiter: &'a PgRateLimiter,
    id: (Policy, [u8; 32]),
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let waiting = self
            .limiter
            .leases()
            .get_mut(&self.id)
            .and_then(|l| l.leasing.take());
        if let Some(n) = waiting {
            n.notify_waiters();
        }
    }
}

/// One `crm_rate_lease` answer.
struct Granted {
    granted: u32,
    left: u32,
    next: Duration,
    full: Duration,
}

impl PgRateLimiter {
    /// A limiter with `config`'s quotas on `store`'s database (migration 0002 applied, as
    /// [`PgStore::connect`] does).
    ///
    /// # Errors
    /// `Validation` for invalid quotas.
    pub fn new(store: &PgStore, config: RateLimitConfig) -> Result<Self> {
        let fallback = InProcessLimiter::new(config.clone())?;
        Ok(PgRateLimiter {
            pool: store.pool().clone(),
            config,
            leases: Mutex::new(HashMap::new()),
            fallback,
            last_row_sweep: Mutex::new(Instant::now()),
            warned_at: Mutex::new(None),
            sweeping: AtomicBool::new(false),
        })
    }

    /// The quotas.
    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// Tokens leased at once for `quota`: 5% of it, between 1 and 64.
    pub fn batch(quota: Quota) -> u32 {
        (quota.requests / 20).clamp(1, 64)
    }

    fn lease_ttl(quota: Quota) -> Duration {
        (quota.emission_interval() * Self::batch(quota))
            .clamp(Duration::from_millis(100), Duration::from_secs(5))
    }

    fn leases(&self) -> std::sync::MutexGuard<'_, HashMap<(Policy, [u8; 32]), Lease>> {
        self.leases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Serves from the local lease if it can: `Ok(decision)`; else what to do instead
    /// ([`Miss`]; for [`Miss::Lease`] the lease is emptied and marked as leasing).
    fn local(&self, quota: Quota, id: &(Policy, [u8; 32]), now: Instant) -> Local {
        let mut leases = self.leases();
        let lease = leases.entry(*id).or_insert_with(|| Lease::empty(now));
        // Leased tokens first: a concurrent check of the key may have been refused by the
        // bucket because this lease took its last tokens.
        if lease.tokens > 0 && lease.expires > now {
            lease.tokens -= 1;
            let decision = RateDecision::allow(
                id.0,
                quota,
                lease.tokens.saturating_add(lease.left),
                lease.full_at.saturating_duration_since(now),
            );
            let batch = Self::batch(quota);
            if batch >= TOP_UP_FROM_BATCH
                && lease.tokens <= batch / 2
                && lease.leasing.is_none()
                && lease.unreachable_until.is_none_or(|u| u <= now)
            {
                lease.leasing = Some(Arc::new(Notify::new()));
                return Local::TopUp(decision, batch - lease.tokens);
            }
            return Local::Served(decision);
        }
        if let Some(until) = lease.refused_until {
            if until > now {
                return Local::Served(RateDecision::refuse(
                    id.0,
                    quota,
                    until - now,
                    lease.full_at.saturating_duration_since(now),
                ));
            }
            lease.refused_until = None;
        }
        if let Some(n) = &lease.leasing {
            return Local::Missed(Miss::Wait(n.clone()));
        }
        if lease.unreachable_until.is_some_and(|u| u > now) {
            return Local::Missed(Miss::Unreachable);
        }
        lease.leasing = Some(Arc::new(Notify::new()));
        Local::Missed(Miss::Lease(std::mem::take(&mut lease.tokens)))
    }

    /// Adds up to `want` tokens to the lease of `id` (the caller holds the key's turn); the
    /// lease keeps what it has meanwhile.
    async fn top_up(&self, id: &(Policy, [u8; 32]), quota: Quota, want: u32) {
        let turn = Turn {
            limiter: self,
            id: *id,
        };
        match self.lease(id.0, &id.1, quota, want, 0).await {
            Ok(g) => {
                let now = Instant::now();
                if let Some(lease) = self.leases().get_mut(id) {
                    lease.left = g.left;
                    lease.full_at = now + g.full;
                    if g.granted > 0 {
                        lease.tokens += g.granted;
                        lease.expires = now + Self::lease_ttl(quota);
                    }
                }
            }
            Err(e) => self.lease_failed(id, &e),
        }
        drop(turn);
    }

    /// A lease call failed: logged (at most once a minute), and the checks of `id` stay
    /// local for [`RETRY_AFTER_FAILURE`].
    fn lease_failed(&self, id: &(Policy, [u8; 32]), e: &sqlx::Error) {
        self.warn(e);
        if let Some(lease) = self.leases().get_mut(id) {
            lease.unreachable_until = Some(Instant::now() + RETRY_AFTER_FAILURE);
        }
    }

    /// Whether the lease of `id` is still being fetched by the check that `n` belongs to.
    fn still_leasing(&self, id: &(Policy, [u8; 32]), n: &Arc<Notify>) -> bool {
        self.leases()
            .get(id)
            .and_then(|l| l.leasing.as_ref())
            .is_some_and(|m| Arc::ptr_eq(m, n))
    }

    async fn lease(
        &self,
        policy: Policy,
        key: &[u8; 32],
        quota: Quota,
        take: u32,
        give_back: u32,
    ) -> std::result::Result<Granted, sqlx::Error> {
        let interval = i64::try_from(quota.emission_interval().as_micros())
            .unwrap_or(i64::MAX)
            .max(1);
        let row: (i32, i32, i64, i64) =
            sqlx::query_as("SELECT * FROM crm_rate_lease($1, $2, $3, $4, $5, $6)")
                .bind(policy_code(policy))
                .bind(key.as_slice())
                .bind(interval)
                .bind(i32::try_from(quota.requests).unwrap_or(i32::MAX))
                .bind(i32::try_from(take).unwrap_or(1))
                .bind(i32::try_from(give_back).unwrap_or(0))
                .fetch_one(&self.pool)
                .await?;
        let micros = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
        Ok(Granted {
            granted: u32::try_from(row.0).unwrap_or(0),
            left: u32::try_from(row.1).unwrap_or(0),
            next: micros(row.2),
            full: micros(row.3),
        })
    }

    fn warn(&self, e: &sqlx::Error) {
        let mut at = self
            .warned_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if at.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
            *at = Some(Instant::now());
            tracing::warn!(error = %e, "shared rate limiter unreachable: limiting per instance meanwhile");
        }
    }

    /// Now and then: forget expired local leases, and delete full buckets from the table.
    async fn sweep(&self, now: Instant) {
        {
            let mut leases = self.leases();
            if leases.len() > SWEEP_AT {
                leases.retain(|_, l| {
                    (l.tokens > 0 && l.expires > now)
                        || l.refused_until.is_some_and(|u| u > now)
                        || l.leasing.is_some()
                });
            }
        }
        let due = {
            let mut last = self
                .last_row_sweep
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.elapsed() >= ROW_SWEEP_EVERY {
                *last = now;
                true
            } else {
                false
            }
        };
        if due && !self.sweeping.swap(true, Ordering::AcqRel) {
            let _ = sqlx::query(
                "DELETE FROM crm_rate_limit WHERE ctid IN (SELECT ctid FROM crm_rate_limit \
                 WHERE tat < (extract(epoch FROM clock_timestamp()) * 1000000)::bigint LIMIT 1000)",
            )
            .execute(&self.pool)
            .await;
            self.sweeping.store(false, Ordering::Release);
        }
    }
}

/// The `policy` column's value.
fn policy_code(policy: Policy) -> i16 {
    Policy::ALL
        .iter()
        .position(|p| *p == policy)
        .and_then(|i| i16::try_from(i).ok())
        .unwrap_or(i16::MAX)
}

#[async_trait]
impl RateLimiter for PgRateLimiter {
    async fn check(&self, policy: Policy, key: &str) -> RateDecision {
        let quota = self.config.quota(policy);
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let id = (policy, digest);
        let give_back = loop {
            match self.local(quota, &id, Instant::now()) {
                Local::Served(decision) => return decision,
                Local::TopUp(decision, want) => {
                    self.top_up(&id, quota, want).await;
                    return decision;
                }
                Local::Missed(Miss::Lease(unused)) => break unused,
                Local::Missed(Miss::Unreachable) => return self.fallback.check_now(policy, key),
                Local::Missed(Miss::Wait(n)) => {
                    // Registered before looking again, so the leaser's wake-up cannot be
                    // missed between the look and the wait.
                    let woken = n.notified();
                    tokio::pin!(woken);
                    woken.as_mut().enable();
                    if self.still_leasing(&id, &n) {
                        woken.await;
                    }
                }
            }
        };
        let turn = Turn { limiter: self, id };
        let granted = match self
            .lease(policy, &digest, quota, Self::batch(quota), give_back)
            .await
        {
            Ok(g) => g,
            Err(e) => {
                self.lease_failed(&id, &e);
                drop(turn);
                return self.fallback.check_now(policy, key);
            }
        };
        let now = Instant::now();
        let decision = {
            let mut leases = self.leases();
            let lease = leases.entry(id).or_insert_with(|| Lease::empty(now));
            lease.unreachable_until = None;
            lease.left = granted.left;
            lease.full_at = now + granted.full;
            // The lease was emptied when this check took the key's turn, and no other check
            // of the key leases meanwhile: what the bucket granted is all there is.
            if granted.granted == 0 {
                lease.refused_until = Some(now + granted.next);
                RateDecision::refuse(policy, quota, granted.next, granted.full)
            } else {
                lease.tokens = granted.granted - 1;
                lease.expires = now + Self::lease_ttl(quota);
                lease.refused_until = None;
                RateDecision::allow(
                    policy,
                    quota,
                    lease.tokens.saturating_add(lease.left),
                    granted.full,
                )
            }
        };
        drop(turn);
        self.sweep(now).await;
        decision
    }
}
