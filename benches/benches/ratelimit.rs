//! Rate-limit checks with 100,000 live keys, beside the floor they rest on: a plain
//! `Mutex<HashMap<String, u64>>` lookup of the same keys.
//!
//! | group | measured | floor |
//! |---|---|---|
//! | `ratelimit_check` | `InProcessLimiter::check_now` on a random one of 100,000 live keys (allowed path, eviction off; default quotas with periodic eviction on; refused path; through `dyn RateLimiter` with its boxed future) | `Mutex<HashMap<String, u64>>::get` of a random one of the same 100,000 keys |
//! | `ratelimit_check_2_threads` | the same, two threads at once (time per check of the combined throughput) | the same floor, two threads |
//! | `login_throttle_check` | `LoginThrottle::check(account, address)` with 100,000 tracked accounts and addresses | two floor lookups (account and address) |
//!
//! Keys are hyphenated UUIDs (36 bytes), like user ids. An eviction pass over the 100,000
//! live keys is timed once and printed. Run with
//! `cargo bench -p crm-benches --bench ratelimit`.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crm_benches::Rng;
use crm_core::Timestamp;
use crm_core::ratelimit::{
    InProcessLimiter, LoginThrottle, LoginThrottleConfig, Policy, Quota, RateDecision,
    RateLimitConfig, RateLimiter,
};
use uuid::Uuid;

mod common;
use common::criterion;

/// Live keys in every structure.
const KEYS: usize = 100_000;

/// `n` distinct hyphenated UUID strings.
fn keys(rng: &mut Rng, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| Uuid::from_u64_pair(rng.next_u64(), rng.next_u64()).to_string())
        .collect()
}

/// The floor: the cheapest shared per-key state there is.
struct Floor(Mutex<HashMap<String, u64>>);

impl Floor {
    fn new(keys: &[String]) -> Self {
        Floor(Mutex::new(
            keys.iter().cloned().zip(0u64..).collect::<HashMap<_, _>>(),
        ))
    }

    fn get(&self, key: &str) -> Option<u64> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .copied()
    }
}

/// A limiter whose `User` quota is never exhausted in a run (so every check takes the allowed
/// path) and whose keys stay live (no eviction), pre-populated with `keys`.
fn allowed_path_limiter(keys: &[String]) -> InProcessLimiter {
    let config = RateLimitConfig {
        evict_every_checks: u64::MAX,
        evict_interval: Duration::from_secs(365 * 24 * 3600),
        ..RateLimitConfig::default()
    }
    .with_quota(Policy::User, Quota::per_minute(1_000_000_000));
    let limiter = InProcessLimiter::new(config).expect("config");
    for k in keys {
        assert!(limiter.check_now(Policy::User, k).allowed());
    }
    limiter
}

/// Polls the `dyn RateLimiter` future once: the in-process one is always ready.
fn check_dyn(limiter: &dyn RateLimiter, key: &str) -> RateDecision {
    let mut cx = Context::from_waker(Waker::noop());
    match limiter.check(Policy::User, key).as_mut().poll(&mut cx) {
        Poll::Ready(d) => d,
        Poll::Pending => unreachable!("the in-process limiter never waits"),
    }
}

/// Time per operation of `iters` operations split over two threads.
fn two_threads(iters: u64, op: impl Fn(&mut Rng) + Sync) -> Duration {
    let started = Instant::now();
    std::thread::scope(|s| {
        for seed in 0..2 {
            let op = &op;
            s.spawn(move || {
                let mut rng = Rng::new(seed);
                for _ in 0..iters / 2 {
                    op(&mut rng);
                }
            });
        }
    });
    started.elapsed()
}

fn main() {
    let mut rng = Rng::new(7);
    let keys = keys(&mut rng, KEYS);
    let floor = Floor::new(&keys);

    let started = Instant::now();
    let fast = allowed_path_limiter(&keys);
    println!(
        "populated {KEYS} keys in {:.1} ms; stored: {}",
        started.elapsed().as_secs_f64() * 1e3,
        fast.key_count(Policy::User)
    );

    // Default quotas (100/minute per user) with eviction on: keys stay live, checks turn from
    // allowed to refused as the run goes on, and eviction passes run inside checks.
    let default = InProcessLimiter::new(RateLimitConfig::default()).expect("config");
    for k in &keys {
        default.check_now(Policy::User, k);
    }
    let started = Instant::now();
    default.evict();
    println!(
        "eviction pass over {} live keys (all kept): {:.2} ms",
        default.key_count(Policy::User),
        started.elapsed().as_secs_f64() * 1e3
    );

    // One exhausted key for the refused path.
    let hot = &keys[0];
    while default.check_now(Policy::Address, hot).allowed() {}

    let mut c = criterion();
    {
        let mut g = c.benchmark_group("ratelimit_check");
        let mut rng = Rng::new(1);
        g.bench_function("floor_mutex_hashmap_get", |b| {
            b.iter(|| black_box(floor.get(rng.pick::<String>(&keys))))
        });
        g.bench_function("in_process_allowed", |b| {
            b.iter(|| black_box(fast.check_now(Policy::User, rng.pick::<String>(&keys))))
        });
        g.bench_function("in_process_default_quota_with_eviction", |b| {
            b.iter(|| black_box(default.check_now(Policy::User, rng.pick::<String>(&keys))))
        });
        g.bench_function("in_process_refused", |b| {
            b.iter(|| black_box(default.check_now(Policy::Address, hot)))
        });
        let dyn_limiter: &dyn RateLimiter = &fast;
        g.bench_function("dyn_rate_limiter_allowed", |b| {
            b.iter(|| black_box(check_dyn(dyn_limiter, rng.pick::<String>(&keys))))
        });
        g.finish();
    }
    {
        let mut g = c.benchmark_group("ratelimit_check_2_threads");
        g.bench_function("floor_mutex_hashmap_get", |b| {
            b.iter_custom(|iters| {
                two_threads(iters, |rng| {
                    black_box(floor.get(rng.pick::<String>(&keys)));
                })
            })
        });
        g.bench_function("in_process_allowed", |b| {
            b.iter_custom(|iters| {
                two_threads(iters, |rng| {
                    black_box(fast.check_now(Policy::User, rng.pick::<String>(&keys)));
                })
            })
        });
        g.finish();
    }

    // Login throttle: 100,000 accounts and 100,000 addresses with one (free) failure each.
    let throttle = LoginThrottle::new(LoginThrottleConfig {
        max_entries: 1_000_000,
        ..LoginThrottleConfig::default()
    })
    .expect("config");
    let addresses: Vec<String> = (0..KEYS)
        .map(|i| format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255))
        .collect();
    let now = Timestamp::now_utc();
    for (account, address) in keys.iter().zip(&addresses) {
        throttle.record_failure(account, address, now);
    }
    let address_floor = Floor::new(&addresses);
    println!("login throttle tracks {} keys", throttle.len());
    {
        let mut g = c.benchmark_group("login_throttle_check");
        let mut rng = Rng::new(2);
        g.bench_function("floor_two_mutex_hashmap_gets", |b| {
            b.iter(|| {
                black_box(floor.get(rng.pick::<String>(&keys)));
                black_box(address_floor.get(rng.pick::<String>(&addresses)))
            })
        });
        g.bench_function("login_throttle", |b| {
            b.iter(|| {
                black_box(throttle.check(
                    rng.pick::<String>(&keys),
                    rng.pick::<String>(&addresses),
                    now,
                ))
            })
        });
        g.finish();
    }

    c.final_summary();
}
