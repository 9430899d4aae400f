//! [`PgRateLimiter`] on real PostgreSQL: two limiters (two instances, two pools) on one
//! database enforce one quota together, and a limiter that loses its database keeps
//! limiting on its own.

use std::time::Instant;

use crm_core::ErrorKind;
use crm_core::ratelimit::{Policy, Quota, RateLimitConfig, RateLimiter};
use crm_store_postgres::PgRateLimiter;
use crm_store_postgres::testing::TestDatabase;

fn run(f: impl std::future::Future<Output = ()>) {
    crm_core::testkit::run(f);
}

#[test]
fn two_instances_together_allow_one_quota_not_two() {
    run(async {
        // The default quotas: 100 a minute per user.
        assert_eq!(RateLimitConfig::default().user, Quota::per_minute(100));
        let (_db, a, b, _) = two_instances(Quota::per_minute(100)).await;
        let started = Instant::now();
        let mut allowed = 0u32;
        let mut refusals = Vec::new();
        // Round robin over the two instances, two clients' worth of concurrency each.
        for round in 0..150 {
            let (x, y) = tokio::join!(
                a.check(Policy::User, "user-1"),
                b.check(Policy::User, "user-1")
            );
            for d in [x, y] {
                if d.allowed() {
                    allowed += 1;
                    assert!(d.remaining() <= 100);
                } else {
                    refusals.push((round, d));
                }
            }
        }
        // GCRA on one bucket: the burst of 100, plus one more per 0.6 s that went by.
        let refilled = (started.elapsed().as_secs_f64() / 0.6).ceil() as u32;
        assert!(
            allowed <= 100 + refilled,
            "allowed {allowed} of 300 in {:?}: more than one quota",
            started.elapsed()
        );
        // Tokens left in the other instance's lease (at most batch - 1 = 4) are the only
        // ones a client can miss.
        assert!(allowed >= 100 - 4, "allowed only {allowed}");
        let (_, refused) = refusals.last().expect("some requests refused");
        assert_eq!(refused.remaining(), 0);
        let retry = refused
            .retry_after_secs()
            .expect("Retry-After on a refusal");
        assert!((1..=60).contains(&retry));
        let e = refused.clone().into_result().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);

        // Another key, another policy: their own buckets.
        assert!(a.check(Policy::User, "user-2").await.allowed());
        assert!(b.check(Policy::Login, "user-1").await.allowed());
    });
}

#[test]
fn without_its_database_a_limiter_keeps_limiting_per_instance() {
    run(async {
        let db = TestDatabase::create().await;
        let store = db.store().await;
        let config = RateLimitConfig::default().with_quota(Policy::Login, Quota::per_minute(3));
        let limiter = PgRateLimiter::new(&store, config).unwrap();
        assert!(limiter.check(Policy::Login, "10.0.0.1").await.allowed());
        store.close().await;
        let decisions: Vec<bool> = {
            let mut v = Vec::new();
            for _ in 0..5 {
                v.push(limiter.check(Policy::Login, "10.0.0.2").await.allowed());
            }
            v
        };
        assert_eq!(decisions, [true, true, true, false, false]);
    });
}

#[test]
fn failed_logins_counted_on_one_instance_delay_the_others() {
    use crm_core::Timestamp;
    use crm_core::ratelimit::{LoginThrottleConfig, LoginThrottler};
    use crm_store_postgres::PgLoginThrottle;
    run(async {
        let db = TestDatabase::create().await;
        let config = LoginThrottleConfig::default();
        let a = PgLoginThrottle::new(&db.store().await, config.clone()).unwrap();
        let b = PgLoginThrottle::new(&db.store().await, config).unwrap();
        let t0 = Timestamp::from_micros(1_800_000_000_000_000);
        let at = |s: i64| Timestamp::from_micros(t0.as_micros() + s * 1_000_000);
        // Five failures, alternating instances; the fifth starts a 1 s delay, over by t+5.
        for i in 0..5 {
            let t = if i % 2 == 0 { &a } else { &b };
            t.check("ws:ada@acme.test", "10.0.0.1", at(i))
                .await
                .unwrap();
            t.record_failure("ws:ada@acme.test", "10.0.0.1", at(i))
                .await;
        }
        b.check("ws:ada@acme.test", "10.0.0.1", at(5))
            .await
            .unwrap();
        // The sixth failure, on A, delays the account on B (2 s), from another address too.
        a.record_failure("ws:ada@acme.test", "10.0.0.1", at(5))
            .await;
        let e = b
            .check("ws:ada@acme.test", "10.0.0.9", at(5))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after_secs(), Some(2));
        // ... and the address, for another account.
        let e = b
            .check("ws:bob@acme.test", "10.0.0.1", at(5))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        // The delay passes; a success on B clears the counts for A.
        b.check("ws:ada@acme.test", "10.0.0.1", at(7))
            .await
            .unwrap();
        b.record_success("ws:ada@acme.test", "10.0.0.1").await;
        a.record_failure("ws:ada@acme.test", "10.0.0.1", at(8))
            .await;
        a.check("ws:ada@acme.test", "10.0.0.1", at(8))
            .await
            .unwrap();
        // Unrelated keys were never delayed.
        a.check("ws:eve@acme.test", "10.0.0.2", at(5))
            .await
            .unwrap();
    });
}

/// A fresh database (to keep while the limiters are used), two limiters (two instances) on
/// it with `user` as the user quota (the other quotas the defaults), and its batch size.
async fn two_instances(user: Quota) -> (TestDatabase, PgRateLimiter, PgRateLimiter, u32) {
    let db = TestDatabase::create().await;
    let config = RateLimitConfig {
        user,
        ..RateLimitConfig::default()
    };
    let a = PgRateLimiter::new(&db.store().await, config.clone()).unwrap();
    let b = PgRateLimiter::new(&db.store().await, config).unwrap();
    (db, a, b, PgRateLimiter::batch(user))
}

#[test]
fn concurrent_checks_of_an_empty_lease_make_one_database_call() {
    run(async {
        let (_db, a, b, batch) = two_instances(Quota::per_minute(1000)).await;
        assert_eq!(batch, 50);
        let a = std::sync::Arc::new(a);
        // 20 checks at once on A, fewer than half a batch (no top-up): one of them leases,
        // the others wait for its tokens. (Each leasing on its own would take 20 batches,
        // the whole bucket.)
        let mut checks = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let a = a.clone();
            checks.spawn(async move { a.check(Policy::User, "user-1").await });
        }
        while let Some(d) = checks.join_next().await {
            assert!(d.unwrap().allowed());
        }
        // B's first check leases a batch of its own and reports what the bucket has left:
        // all but A's one batch and its own.
        let d = b.check(Policy::User, "user-1").await;
        assert!(d.allowed());
        assert!(
            d.remaining() >= 1000 - 2 * batch + (batch - 1),
            "the bucket lost more than two batches: {} remaining",
            d.remaining()
        );
    });
}

#[test]
fn a_busy_keys_half_used_lease_is_topped_up_to_one_batch() {
    run(async {
        // An hourly quota: the bucket refills by less than a token while the test runs.
        let (_db, a, b, batch) = two_instances(Quota::per_hour(1280)).await;
        assert_eq!(batch, 64);
        // A leases a batch at its first check; the check that leaves half of it tops it up
        // by the half used (to one batch, never more); the last 8 come from the lease.
        for _ in 0..40 {
            assert!(a.check(Policy::User, "user-1").await.allowed());
        }
        let d = b.check(Policy::User, "user-1").await;
        assert!(d.allowed());
        // B's remaining: its own lease (a batch, one used) plus what the bucket has left
        // after A's batch and a half and B's batch.
        let expected = 1280 - batch - batch / 2 - batch + (batch - 1);
        assert!(
            (expected..=expected + 1).contains(&d.remaining()),
            "expected {expected} remaining, got {}",
            d.remaining()
        );
    });
}
