//! Rate limiting: GCRA quotas per policy and key (`InProcessLimiter`), their HTTP header
//! values, bounded memory under many keys, and the login brute-force throttle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crm_core::ratelimit::{
    FakeRelativeClock, InProcessLimiter, LoginThrottle, LoginThrottleConfig, Policy, Quota,
    RateLimitConfig, RateLimiter,
};
use crm_core::{ErrorKind, Timestamp};

fn limiter(config: RateLimitConfig) -> (InProcessLimiter<FakeRelativeClock>, FakeRelativeClock) {
    let clock = FakeRelativeClock::default();
    let limiter = InProcessLimiter::with_clock(config, clock.clone()).expect("valid config");
    (limiter, clock)
}

/// Spends the whole burst of `policy` for `key` (`burst` checks, all allowed) and checks that
/// the next one is refused.
fn exhaust(l: &InProcessLimiter<FakeRelativeClock>, policy: Policy, key: &str, burst: u32) {
    for _ in 0..burst {
        assert!(l.check_now(policy, key).allowed());
    }
    assert!(!l.check_now(policy, key).allowed());
}

/// (policy, limit, window in seconds, retry-after in seconds right after exhaustion).
const DEFAULTS: [(Policy, u32, u64, u64); 5] = [
    (Policy::User, 100, 60, 1),   // one back every 0.6 s: rounded up to 1
    (Policy::Address, 60, 60, 1), // every 1 s
    (Policy::Login, 10, 60, 6),   // every 6 s
    (Policy::Refresh, 30, 60, 2), // every 2 s
    (Policy::PasswordReset, 5, 3600, 720), // every 12 minutes
];

#[test]
fn each_policy_allows_exactly_its_quota_then_refuses_with_headers() {
    let (l, _clock) = limiter(RateLimitConfig::default());
    for (policy, limit, window, retry) in DEFAULTS {
        for i in 1..=limit {
            let d = l.check_now(policy, "key");
            assert!(d.allowed(), "{policy}: request {i} of {limit}");
            assert_eq!(d.limit(), limit);
            assert_eq!(d.remaining(), limit - i, "{policy}");
            assert_eq!(d.retry_after_secs(), None);
            assert_eq!(d.window_secs(), window);
            assert_eq!(
                d.policy_header(),
                format!("\"{}\";q={limit};w={window}", policy.name())
            );
            assert_eq!(
                d.ratelimit_header(),
                format!("\"{}\";r={};t={}", policy.name(), limit - i, d.reset_secs())
            );
            // Full again after `i` emission intervals, rounded up.
            let reset = (u64::from(i) * window * 1_000_000_000).div_ceil(u64::from(limit));
            assert_eq!(
                d.reset_secs(),
                reset.div_ceil(1_000_000_000),
                "{policy} {i}"
            );
            let headers = d.headers();
            assert_eq!(headers.len(), 2);
            assert_eq!(headers[0].0, "RateLimit-Policy");
            assert_eq!(headers[1].0, "RateLimit");
            assert!(d.into_result().is_ok());
        }
        let d = l.check_now(policy, "key");
        assert!(!d.allowed(), "{policy}: request {} refused", limit + 1);
        assert_eq!(d.remaining(), 0);
        assert_eq!(d.retry_after_secs(), Some(retry), "{policy}");
        assert_eq!(d.reset_secs(), window, "{policy}");
        assert_eq!(
            d.ratelimit_header(),
            format!("\"{}\";r=0;t={window}", policy.name())
        );
        assert_eq!(
            d.headers().last().cloned(),
            Some(("Retry-After", retry.to_string()))
        );
        let e = d.into_result().expect_err("refused");
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.code(), "E4001");
        assert_eq!(e.http_status(), 429);
        assert_eq!(e.retry_after_secs(), Some(retry));
        // A refusal is not counted: still refused, same wait.
        assert_eq!(l.check_now(policy, "key").retry_after_secs(), Some(retry));
    }
}

#[test]
fn retry_after_is_rounded_up_and_never_zero() {
    let config = RateLimitConfig::default().with_quota(
        Policy::User,
        Quota {
            requests: 3,
            per: Duration::from_millis(2_500),
        },
    );
    let (l, clock) = limiter(config);
    for _ in 0..3 {
        assert!(l.check_now(Policy::User, "u").allowed());
    }
    // One request back every 833.3 ms.
    assert_eq!(l.check_now(Policy::User, "u").retry_after_secs(), Some(1));
    clock.advance(Duration::from_millis(833));
    let d = l.check_now(Policy::User, "u");
    assert!(!d.allowed(), "0.33 ms early");
    assert_eq!(
        d.retry_after_secs(),
        Some(1),
        "a fraction of a millisecond is 1 s"
    );
    assert_eq!(d.reset_secs(), 2, "2,500 ms - 833 ms, rounded up");
    clock.advance(Duration::from_millis(1));
    assert!(l.check_now(Policy::User, "u").allowed());

    // Long waits round up too: 5/hour, 12 minutes per request.
    let (l, clock) = limiter(RateLimitConfig::default());
    for _ in 0..5 {
        l.check_now(Policy::PasswordReset, "ip:1.2.3.4");
    }
    clock.advance(Duration::from_millis(100));
    let d = l.check_now(Policy::PasswordReset, "ip:1.2.3.4");
    assert_eq!(d.retry_after_secs(), Some(720), "719.9 s rounds up to 720");
    assert_eq!(d.reset_secs(), 3600);
}

#[test]
fn keys_are_independent() {
    let (l, _clock) = limiter(RateLimitConfig::default());
    exhaust(&l, Policy::Login, "10.0.0.1", 10);
    let d = l.check_now(Policy::Login, "10.0.0.2");
    assert!(d.allowed());
    assert_eq!(d.remaining(), 9);
    // Keys are exact strings.
    assert!(l.check_now(Policy::Login, "10.0.0.1 ").allowed());
}

#[test]
fn policies_are_independent() {
    let (l, _clock) = limiter(RateLimitConfig::default());
    exhaust(&l, Policy::PasswordReset, "k", 5);
    for policy in [
        Policy::User,
        Policy::Address,
        Policy::Login,
        Policy::Refresh,
    ] {
        let d = l.check_now(policy, "k");
        assert!(d.allowed(), "{policy}");
        assert_eq!(d.remaining(), d.limit() - 1, "{policy}");
    }
}

#[test]
fn time_restores_capacity() {
    let (l, clock) = limiter(RateLimitConfig::default());
    exhaust(&l, Policy::User, "u", 100);
    // One request every 600 ms.
    clock.advance(Duration::from_millis(599));
    assert!(!l.check_now(Policy::User, "u").allowed());
    clock.advance(Duration::from_millis(1));
    let d = l.check_now(Policy::User, "u");
    assert!(d.allowed());
    assert_eq!(d.remaining(), 0);
    assert!(!l.check_now(Policy::User, "u").allowed());
    // After a whole window the full burst is back.
    clock.advance(Duration::from_secs(60));
    for i in 0..100 {
        assert!(l.check_now(Policy::User, "u").allowed(), "request {i}");
    }
    assert!(!l.check_now(Policy::User, "u").allowed());
}

#[tokio::test]
async fn works_as_a_shared_trait_object() {
    let clock = FakeRelativeClock::default();
    let limiter: Arc<dyn RateLimiter> =
        Arc::new(InProcessLimiter::with_clock(RateLimitConfig::default(), clock.clone()).unwrap());
    for _ in 0..10 {
        limiter
            .check(Policy::Login, "a")
            .await
            .into_result()
            .unwrap();
    }
    let e = limiter
        .check(Policy::Login, "a")
        .await
        .into_result()
        .unwrap_err();
    assert_eq!(e.retry_after_secs(), Some(6));

    // The real-clock default builds and allows.
    let real: Arc<dyn RateLimiter> =
        Arc::new(InProcessLimiter::new(RateLimitConfig::default()).unwrap());
    assert!(real.check(Policy::User, "u").await.allowed());
}

#[test]
fn concurrent_checks_on_one_key_allow_exactly_the_quota() {
    let (l, _clock) = limiter(RateLimitConfig::default());
    let allowed = AtomicU32::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..100 {
                    if l.check_now(Policy::User, "shared").allowed() {
                        allowed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(allowed.into_inner(), 100);
}

#[test]
fn invalid_config_is_a_validation_error() {
    let config = RateLimitConfig::default().with_quota(Policy::Refresh, Quota::per_minute(0));
    let e = InProcessLimiter::new(config).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    assert_eq!(e.fields()[0].field, "refresh.requests");
}

/// Distinct keys driven through the limiter while the fake clock moves on (10 ms per 100
/// keys: ~1.2 s of keys are live at any moment — a single-use key under 100/minute is stale
/// after two 0.6 s intervals).
const DISTINCT_KEYS: u64 = 1_000_000;

#[test]
fn memory_stays_bounded_under_a_million_distinct_keys() {
    let (l, clock) = limiter(RateLimitConfig::default());
    let started = Instant::now();
    let mut key = String::with_capacity(32);
    let mut max_stored = 0;
    for i in 0..DISTINCT_KEYS {
        key.clear();
        key.push_str("203.0.113.");
        key.push_str(&i.to_string());
        assert!(l.check_now(Policy::User, &key).allowed());
        if i % 100 == 99 {
            clock.advance(Duration::from_millis(10));
        }
        if i % 1_000 == 0 {
            max_stored = max_stored.max(l.key_count(Policy::User));
        }
    }
    let stored = l.key_count(Policy::User);
    eprintln!(
        "{DISTINCT_KEYS} distinct keys in {:.2?}: {stored} stored at the end, at most {max_stored} \
         sampled",
        started.elapsed()
    );
    assert!(max_stored < 100_000, "{max_stored} keys stored");
    assert!(stored < 100_000, "{stored} keys stored");
    // Once every key's window is over, an eviction pass leaves nothing.
    clock.advance(Duration::from_secs(61));
    l.evict();
    assert_eq!(l.total_keys(), 0);
}

#[test]
fn active_keys_survive_eviction() {
    let (l, clock) = limiter(RateLimitConfig::default());
    for _ in 0..10 {
        l.check_now(Policy::Login, "attacker");
    }
    for i in 0..1_000 {
        l.check_now(Policy::Login, &format!("other-{i}"));
    }
    clock.advance(Duration::from_secs(7));
    l.evict();
    // Single-use keys are stale after 12 s; the exhausted one still owes 53 s.
    assert_eq!(l.key_count(Policy::Login), 1_001);
    clock.advance(Duration::from_secs(6));
    l.evict();
    assert_eq!(l.key_count(Policy::Login), 1);
    let d = l.check_now(Policy::Login, "attacker");
    assert!(d.allowed(), "13 s restored two requests");
    assert_eq!(d.remaining(), 1);
}

// ---------------------------------------------------------------------------------------
// LoginThrottle

fn at(secs: f64) -> Timestamp {
    Timestamp::from_micros(1_700_000_000_000_000 + (secs * 1e6) as i64)
}

/// Records `times` failed logins of `account` from `address` at `now`.
fn fail_logins(t: &LoginThrottle, account: &str, address: &str, now: Timestamp, times: u32) {
    for _ in 0..times {
        t.record_failure(account, address, now);
    }
}

fn retry_after(t: &LoginThrottle, account: &str, address: &str, now: Timestamp) -> Option<u64> {
    match t.check(account, address, now) {
        Ok(()) => None,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::RateLimited);
            Some(e.retry_after_secs().expect("retry_after"))
        }
    }
}

#[test]
fn five_free_failures_then_doubling_delays_capped_at_15_minutes() {
    let t = LoginThrottle::default();
    let (acct, addr) = ("ada@acme.test", "198.51.100.7");
    let mut now = 0.0;
    for _ in 0..4 {
        assert_eq!(retry_after(&t, acct, addr, at(now)), None);
        t.record_failure(acct, addr, at(now));
    }
    assert_eq!(
        retry_after(&t, acct, addr, at(now)),
        None,
        "4 failures are free"
    );
    t.record_failure(acct, addr, at(now));
    // From the 5th failure on: 1 s, 2 s, 4 s, ... 512 s, then 900 s.
    let mut expected = vec![1u64, 2, 4, 8, 16, 32, 64, 128, 256, 512];
    expected.extend([900, 900, 900]);
    for delay in expected {
        assert_eq!(retry_after(&t, acct, addr, at(now)), Some(delay));
        assert_eq!(
            retry_after(&t, acct, addr, at(now + delay as f64 - 0.25)),
            Some(1),
            "a quarter second left rounds up to 1"
        );
        now += delay as f64;
        assert_eq!(
            retry_after(&t, acct, addr, at(now)),
            None,
            "delay of {delay} s over"
        );
        t.record_failure(acct, addr, at(now));
    }
}

#[test]
fn success_clears_the_account_and_the_address() {
    let t = LoginThrottle::default();
    fail_logins(&t, "a@x.test", "192.0.2.1", at(0.0), 6);
    assert_eq!(retry_after(&t, "a@x.test", "192.0.2.1", at(0.0)), Some(2));
    t.record_success("a@x.test", "192.0.2.1");
    assert_eq!(retry_after(&t, "a@x.test", "192.0.2.1", at(0.0)), None);
    assert!(t.is_empty());
    // Counting starts over: 4 more failures are free again.
    fail_logins(&t, "a@x.test", "192.0.2.1", at(1.0), 4);
    assert_eq!(retry_after(&t, "a@x.test", "192.0.2.1", at(1.0)), None);
}

#[test]
fn accounts_and_addresses_are_throttled_independently() {
    let t = LoginThrottle::default();
    // One address guessing many accounts: the address is throttled, for every account.
    for i in 0..5 {
        t.record_failure(&format!("user{i}@x.test"), "192.0.2.66", at(0.0));
    }
    assert_eq!(
        retry_after(&t, "fresh@x.test", "192.0.2.66", at(0.0)),
        Some(1)
    );
    assert_eq!(retry_after(&t, "user0@x.test", "192.0.2.1", at(0.0)), None);

    // Many addresses guessing one account: the account is throttled, from every address.
    for i in 0..5 {
        t.record_failure("target@x.test", &format!("203.0.113.{i}"), at(0.0));
    }
    assert_eq!(
        retry_after(&t, "target@x.test", "192.0.2.200", at(0.0)),
        Some(1)
    );
    assert_eq!(
        retry_after(&t, "TARGET@X.test", "192.0.2.200", at(0.0)),
        Some(1),
        "case-insensitive"
    );
    assert_eq!(
        retry_after(&t, "other@x.test", "192.0.2.200", at(0.0)),
        None
    );

    // The longer of the two delays wins.
    fail_logins(&t, "target@x.test", "192.0.2.99", at(0.0), 2);
    assert_eq!(
        retry_after(&t, "target@x.test", "192.0.2.1", at(0.0)),
        Some(4)
    );
}

#[test]
fn old_failures_are_forgotten_after_the_idle_window() {
    let t = LoginThrottle::default();
    fail_logins(&t, "a@x.test", "192.0.2.1", at(0.0), 4);
    // An hour and a bit later the 4 old failures no longer count.
    t.record_failure("a@x.test", "192.0.2.1", at(3_601.0));
    assert_eq!(retry_after(&t, "a@x.test", "192.0.2.1", at(3_601.0)), None);
    assert_eq!(t.len(), 2);
    t.evict(at(7_202.0));
    assert!(t.is_empty());
}

#[test]
fn throttle_memory_stays_bounded() {
    // Idle sweeps: 200,000 one-off failures spread over 10 hours never keep more than about
    // 1.25 hours of them.
    let t = LoginThrottle::default();
    let mut max_len = 0;
    for i in 0..200_000u32 {
        let now = at(f64::from(i) * 0.18); // 36,000 s in all
        t.record_failure(
            &format!("u{i}@x.test"),
            &format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
            now,
        );
        if i % 1_000 == 0 {
            max_len = max_len.max(t.len());
        }
    }
    // 3,600 s / 0.18 s = 20,000 keys per hour and table; sweeps run every 15 minutes.
    assert!(max_len <= 2 * 25_100, "{max_len}");

    // The cap: a flood of fresh accounts within one window, past max_entries.
    let t = LoginThrottle::new(LoginThrottleConfig {
        max_entries: 1_000,
        ..LoginThrottleConfig::default()
    })
    .unwrap();
    fail_logins(&t, "victim@x.test", "192.0.2.1", at(0.0), 5);
    for i in 0..50_000 {
        t.record_failure(&format!("flood{i}@x.test"), "192.0.2.2", at(0.5));
        // 16 shards of at most ceil(1,000 / 16) accounts, plus 2 addresses.
        assert!(t.len() <= 16 * 63 + 2, "{}", t.len());
    }
    // The account serving a delay was not evicted by the flood of fresh ones.
    assert_eq!(
        retry_after(&t, "victim@x.test", "192.0.2.3", at(0.5)),
        Some(1)
    );
}

#[test]
fn concurrent_failures_are_all_counted() {
    let t = LoginThrottle::default();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                fail_logins(&t, "a@x.test", "192.0.2.1", at(0.0), 5);
            });
        }
    });
    // 20 failures: 2^(20-5) s, capped at 900.
    assert_eq!(retry_after(&t, "a@x.test", "192.0.2.1", at(0.0)), Some(900));
}
