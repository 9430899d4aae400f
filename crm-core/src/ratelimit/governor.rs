//! [`InProcessLimiter`]: the default [`RateLimiter`], GCRA quotas on the `governor` crate.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ::governor::clock::{Clock as GovernorClock, QuantaClock, Reference};
use ::governor::middleware::StateInformationMiddleware;
use ::governor::nanos::Nanos;
use ::governor::state::keyed::HashMapStateStore;
use async_trait::async_trait;

use super::{PassThroughBuild, Policy, Quota, RateDecision, RateLimitConfig, RateLimiter};
use crate::clock::Clock;
use crate::error::Result;

/// Shards per policy (a power of two). Each shard has its own lock, map, check counter and
/// eviction schedule, so concurrent checks rarely touch the same cache lines and an eviction
/// pass covers one shard (1/16 of the policy's keys) at a time.
const SHARDS: usize = 16;
/// The time-based eviction trigger reads the clock on every 16th check of a shard (a mask).
const TIME_CHECK_MASK: u64 = 15;

/// The state of one shard: key hash -> GCRA theoretical arrival time.
type Store = HashMapStateStore<u64, PassThroughBuild>;
/// One shard of one policy.
type Shard<C> = ::governor::RateLimiter<u64, Store, C, StateInformationMiddleware>;

/// One shard and its eviction bookkeeping, alone on its cache lines (no false sharing
/// between shards checked by different threads).
#[repr(align(128))]
struct Slot<C: GovernorClock> {
    limiter: Shard<C>,
    /// Checks made on this shard.
    checks: AtomicU64,
    /// The check count at which the next eviction pass runs.
    next_evict_at: AtomicU64,
    /// When the last pass ran (limiter-relative nanoseconds).
    last_evict_nanos: AtomicU64,
    /// Set while a thread runs a pass on this shard.
    evicting: AtomicBool,
}

/// Clears an `evicting` flag when dropped (also if a pass panicked).
struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The shards and quota of one policy.
struct PolicyLimiter<C: GovernorClock> {
    quota: Quota,
    /// `per / requests`: the time one request's worth of capacity takes to come back.
    interval: Duration,
    /// `(requests - 1) * interval`: how far past the next allowed instant a full reset lies.
    tolerance: Duration,
    shards: Box<[Slot<C>]>,
}

impl<C: GovernorClock + Clone> PolicyLimiter<C> {
    /// Builds the shards. `quota` was validated; invalid values are clamped, never panic.
    fn new(quota: Quota, clock: &C, evict_every: u64) -> Self {
        let requests =
            std::num::NonZeroU32::new(quota.requests).unwrap_or(std::num::NonZeroU32::MIN);
        let interval = quota.emission_interval().max(Duration::from_nanos(1));
        let governor_quota = ::governor::Quota::with_period(interval)
            .unwrap_or(::governor::Quota::per_second(std::num::NonZeroU32::MIN))
            .allow_burst(requests);
        let shards = (0..SHARDS)
            .map(|_| Slot {
                limiter: Shard::new(governor_quota, Store::default(), clock.clone()),
                checks: AtomicU64::new(0),
                next_evict_at: AtomicU64::new(evict_every),
                last_evict_nanos: AtomicU64::new(0),
                evicting: AtomicBool::new(false),
            })
            .collect();
        PolicyLimiter {
            quota,
            interval,
            tolerance: interval.saturating_mul(requests.get() - 1),
            shards,
        }
    }

    /// Live keys over all shards.
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.limiter.len()).sum()
    }
}

/// The default [`RateLimiter`]: one keyed GCRA limiter (`governor`) per [`Policy`], in the
/// memory of this process.
///
/// * **Per process.** N server instances each allow the full quota; a shared
///   [`RateLimiter`] implementation is how several instances enforce one limit.
/// * **Cheap checks.** A key is hashed once (SipHash with a random per-limiter seed) to a
///   64-bit value that is the stored key — checking a known key never allocates (a new key
///   may grow a map), no client strings are stored (no emails or addresses in memory) and a
///   live key takes ~20–40 bytes. Two keys
///   colliding on 64 bits (odds ~n²/2⁶⁵, and not steerable without the seed) would share one
///   quota. State is split over 16 shards per policy, each with its own lock.
/// * **Bounded memory without a background thread.** A key whose state is indistinguishable
///   from a fresh one (its quota fully restored) is evicted (`retain_recent` +
///   `shrink_to_fit`), one shard at a time, inside a check: once a shard has seen
///   `max(evict_every_checks / 16, its live keys at its last eviction)` checks, or when
///   `evict_interval` has passed since its last eviction. A host may also call
///   [`evict`](Self::evict) from a timer of its own. A policy thus holds at most the keys
///   active in the last window plus about one eviction period's worth of new keys, eviction
///   costs O(1) per check amortized, and one pass touches 1/16 of a policy's keys (a pass
///   over all 100,000 live keys of a policy takes ~0.25 ms on a 2-core machine).
/// * **Time.** The default clock is [`QuantaClock`]; [`with_clock`](Self::with_clock) takes
///   any `governor` clock, e.g. [`FakeRelativeClock`](super::FakeRelativeClock) for tests or
///   [`CoreClock`] to share the engine's [`Clock`].
pub struct InProcessLimiter<C: GovernorClock = QuantaClock> {
    config: RateLimitConfig,
    policies: Box<[PolicyLimiter<C>]>,
    hasher: RandomState,
    clock: C,
    start: C::Instant,
    evict_interval_nanos: u64,
    /// Checks between a shard's eviction passes, at least (`evict_every_checks / 16`).
    evict_every: u64,
}

impl InProcessLimiter<QuantaClock> {
    /// A limiter with the given quotas on the real (monotonic) clock.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Validation`](crate::ErrorKind::Validation) when the configuration is
    /// invalid (see [`RateLimitConfig::validate`]).
    pub fn new(config: RateLimitConfig) -> Result<Self> {
        Self::with_clock(config, QuantaClock::default())
    }
}

impl Default for InProcessLimiter<QuantaClock> {
    /// A limiter with the default quotas on the real clock.
    fn default() -> Self {
        Self::build(RateLimitConfig::default(), QuantaClock::default())
    }
}

impl<C> InProcessLimiter<C>
where
    C: GovernorClock + Clone + Send + Sync + 'static,
{
    /// A limiter with the given quotas on `clock` (e.g. a
    /// [`FakeRelativeClock`](super::FakeRelativeClock) that tests advance by hand).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Validation`](crate::ErrorKind::Validation) when the configuration is
    /// invalid (see [`RateLimitConfig::validate`]).
    pub fn with_clock(config: RateLimitConfig, clock: C) -> Result<Self> {
        config.validate()?;
        Ok(Self::build(config, clock))
    }

    fn build(config: RateLimitConfig, clock: C) -> Self {
        let evict_every = config.evict_every_checks.div_ceil(SHARDS as u64).max(1);
        let policies = Policy::ALL
            .iter()
            .map(|&p| PolicyLimiter::new(config.quota(p), &clock, evict_every))
            .collect();
        let start = clock.now();
        InProcessLimiter {
            evict_interval_nanos: u64::try_from(config.evict_interval.as_nanos())
                .unwrap_or(u64::MAX),
            evict_every,
            config,
            policies,
            hasher: RandomState::new(),
            clock,
            start,
        }
    }

    /// The configuration the limiter was built with.
    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// Counts one request of `policy` for `key` if the quota allows it, and says so —
    /// synchronously, without the boxed future of [`RateLimiter::check`]. A refused request
    /// is not counted.
    pub fn check_now(&self, policy: Policy, key: &str) -> RateDecision {
        let hash = self.hasher.hash_one(key);
        let limiter = &self.policies[policy.index()];
        // The map indexes buckets by the low bits and tags them with the top 7; pick the shard
        // from bits used by neither.
        let slot = &limiter.shards[(hash >> 32) as usize & (SHARDS - 1)];
        let shard = &slot.limiter;
        let decision = match shard.check_key(&hash) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                // The key is back to full capacity at most `used` intervals from now.
                let used = limiter.quota.requests.saturating_sub(remaining);
                RateDecision::allow(
                    policy,
                    limiter.quota,
                    remaining,
                    limiter.interval.saturating_mul(used),
                )
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(shard.clock().now());
                RateDecision::refuse(
                    policy,
                    limiter.quota,
                    wait,
                    wait.saturating_add(limiter.tolerance),
                )
            }
        };
        self.after_check(slot);
        decision
    }

    /// Evicts every key whose quota is fully restored and releases the memory, now, in every
    /// shard. Checks do this by themselves periodically, shard by shard (see the type docs);
    /// call it from a timer to also reclaim memory while no traffic arrives.
    pub fn evict(&self) {
        for slot in self.policies.iter().flat_map(|p| p.shards.iter()) {
            self.evict_slot(slot, slot.checks.load(Ordering::Relaxed));
        }
    }

    /// Keys currently stored for `policy` (governor's `len()` summed over the shards): live
    /// keys plus stale ones not evicted yet.
    pub fn key_count(&self, policy: Policy) -> usize {
        self.policies[policy.index()].len()
    }

    /// Keys currently stored over all policies.
    pub fn total_keys(&self) -> usize {
        self.policies.iter().map(PolicyLimiter::len).sum()
    }

    /// Nanoseconds since the limiter was built.
    fn elapsed_nanos(&self) -> u64 {
        self.clock.now().duration_since(self.start).as_u64()
    }

    /// Counts the check and runs an eviction pass over the shard when one is due.
    #[inline]
    fn after_check(&self, slot: &Slot<C>) {
        let n = slot.checks.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let due = n >= slot.next_evict_at.load(Ordering::Relaxed)
            || (n & TIME_CHECK_MASK == 0
                && self
                    .elapsed_nanos()
                    .saturating_sub(slot.last_evict_nanos.load(Ordering::Relaxed))
                    >= self.evict_interval_nanos);
        // One evicting thread per shard; the others go on checking.
        if due && !slot.evicting.swap(true, Ordering::Acquire) {
            let _clear = ClearOnDrop(&slot.evicting);
            self.evict_slot(slot, n);
        }
    }

    /// One eviction pass over one shard, after its `checks`-th check.
    fn evict_slot(&self, slot: &Slot<C>, checks: u64) {
        slot.limiter.retain_recent();
        slot.limiter.shrink_to_fit();
        let live = slot.limiter.len() as u64;
        slot.last_evict_nanos
            .store(self.elapsed_nanos(), Ordering::Relaxed);
        let every = self.evict_every.max(live);
        slot.next_evict_at
            .store(checks.saturating_add(every), Ordering::Relaxed);
    }
}

#[async_trait]
impl<C> RateLimiter for InProcessLimiter<C>
where
    C: GovernorClock + Clone + Send + Sync + 'static,
{
    async fn check(&self, policy: Policy, key: &str) -> RateDecision {
        self.check_now(policy, key)
    }
}

impl<C: GovernorClock> fmt::Debug for InProcessLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcessLimiter")
            .field("config", &self.config)
            .field(
                "checks",
                &self
                    .policies
                    .iter()
                    .flat_map(|p| p.shards.iter())
                    .map(|s| s.checks.load(Ordering::Relaxed))
                    .sum::<u64>(),
            )
            .finish_non_exhaustive()
    }
}

/// A `governor` clock reading the engine's [`Clock`] (e.g. a
/// [`ManualClock`](crate::ManualClock) shared with the rest of a test), for
/// [`InProcessLimiter::with_clock`]. Its instants are nanoseconds since the Unix epoch.
///
/// Production should keep the default [`QuantaClock`]: it is monotonic and cheaper to read
/// than the wall clock.
#[derive(Clone)]
pub struct CoreClock(Arc<dyn Clock>);

impl CoreClock {
    /// Wraps an engine clock.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        CoreClock(clock)
    }
}

impl fmt::Debug for CoreClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CoreClock").field(&self.0.now()).finish()
    }
}

impl GovernorClock for CoreClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let micros = u64::try_from(self.0.now().as_micros()).unwrap_or(0);
        Nanos::from(micros.saturating_mul(1000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{ManualClock, Timestamp};
    use crate::ratelimit::FakeRelativeClock;

    fn limiter(
        config: RateLimitConfig,
    ) -> (InProcessLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let limiter = InProcessLimiter::with_clock(config, clock.clone()).unwrap();
        (limiter, clock)
    }

    #[test]
    fn reset_and_remaining_track_gcra_state() {
        let (l, clock) = limiter(RateLimitConfig::default());
        // Login: 10/minute, one request back every 6 s.
        let d = l.check_now(Policy::Login, "a");
        assert_eq!((d.remaining(), d.reset_secs()), (9, 6));
        for _ in 0..9 {
            assert!(l.check_now(Policy::Login, "a").allowed());
        }
        let d = l.check_now(Policy::Login, "a");
        assert!(!d.allowed());
        assert_eq!(d.retry_after_secs(), Some(6));
        assert_eq!(d.reset_secs(), 60);
        clock.advance(Duration::from_millis(5_500));
        let d = l.check_now(Policy::Login, "a");
        assert_eq!(d.retry_after_secs(), Some(1), "0.5 s rounds up to 1");
        clock.advance(Duration::from_millis(500));
        let d = l.check_now(Policy::Login, "a");
        assert!(d.allowed());
        assert_eq!((d.remaining(), d.reset_secs()), (0, 60));
    }

    #[test]
    fn time_trigger_evicts_without_reaching_the_check_count() {
        let config = RateLimitConfig {
            evict_every_checks: u64::MAX,
            evict_interval: Duration::from_secs(10),
            ..RateLimitConfig::default()
        };
        let (l, clock) = limiter(config);
        for i in 0..1000 {
            l.check_now(Policy::User, &format!("old{i}"));
        }
        assert_eq!(l.key_count(Policy::User), 1000);
        clock.advance(Duration::from_secs(11));
        // A shard reads the clock every 16 of its checks: 2,000 checks (~125 per shard)
        // trigger a pass in every shard, which drops the old keys and keeps the new ones.
        for i in 0..2000 {
            l.check_now(Policy::User, &format!("new{i}"));
        }
        assert_eq!(l.key_count(Policy::User), 2000);
        assert_eq!(l.total_keys(), 2000);
    }

    #[test]
    fn core_clock_drives_the_limiter() {
        let manual = ManualClock::new(Timestamp::from_micros(1_700_000_000_000_000));
        let clock = CoreClock::new(Arc::new(manual.clone()));
        let l = InProcessLimiter::with_clock(
            RateLimitConfig::default().with_quota(Policy::Refresh, Quota::per_second(1)),
            clock,
        )
        .unwrap();
        assert!(l.check_now(Policy::Refresh, "s").allowed());
        assert!(!l.check_now(Policy::Refresh, "s").allowed());
        manual.advance(Duration::from_secs(1));
        assert!(l.check_now(Policy::Refresh, "s").allowed());
        assert!(format!("{l:?}").contains("InProcessLimiter"));
    }
}
