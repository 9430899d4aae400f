//! The shared rate limiter's cost beside the in-process one, in the same run: `checks`
//! rate-limit checks of `keys` users (each under its 100-per-minute quota, so every check
//! is allowed and the leases are what a real workload of many users causes), issued by 64
//! concurrent tasks spread round robin over 1, 2 and 3 limiter instances (one pool each) on
//! one PostgreSQL database. Reports checks per second and database leases per check
//! (`crm_rate_limit` row updates, from `pg_stat_user_tables`).
//!
//! ```sh
//! cargo run --release -p crm-benches --bin shared-limiter            # 1,000 users x 90 checks
//! SHARED_LIMITER_KEYS=5000 cargo run --release -p crm-benches --bin shared-limiter
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crm_core::ratelimit::{InProcessLimiter, Policy, RateLimitConfig, RateLimiter};
use crm_store_postgres::PgRateLimiter;
use crm_store_postgres::testing::TestDatabase;

const TASKS: usize = 64;
const PER_KEY: usize = 90;

async fn leases(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(n_tup_upd, 0) FROM pg_stat_user_tables WHERE relname = 'crm_rate_limit'",
    )
    .fetch_optional(pool)
    .await
    .unwrap()
    .unwrap_or(0)
}

/// Runs the workload over `limiters`; answers (checks/s, allowed).
async fn drive(limiters: Vec<Arc<dyn RateLimiter>>, keys: usize) -> (f64, usize) {
    let mut work: Vec<usize> = (0..keys)
        .flat_map(|k| std::iter::repeat_n(k, PER_KEY))
        .collect();
    // A fixed shuffle (xorshift), so every run sees the same order.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..work.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        work.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let work = Arc::new(work);
    let next = Arc::new(AtomicUsize::new(0));
    let allowed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let limiter = limiters[t % limiters.len()].clone();
        let (work, next, allowed) = (work.clone(), next.clone(), allowed.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(k) = work.get(i) else { break };
                if limiter
                    .check(Policy::User, &format!("user-{k}"))
                    .await
                    .allowed()
                {
                    allowed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    (work.len() as f64 / secs, allowed.load(Ordering::Relaxed))
}

fn main() {
    let keys: usize = std::env::var("SHARED_LIMITER_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let config = RateLimitConfig::default();
            println!("{keys} users x {PER_KEY} checks (quota 100/min), {TASKS} concurrent tasks\n");
            println!("| limiter | instances | checks/s | allowed | DB leases per check |");
            println!("|---|---|---|---|---|");
            let (rps, allowed) = drive(
                vec![Arc::new(InProcessLimiter::new(config.clone()).unwrap())],
                keys,
            )
            .await;
            println!("| in-process | 1 | {rps:.0} | {allowed} | 0 |");
            for n in 1..=3 {
                let db = TestDatabase::create().await;
                let mut limiters: Vec<Arc<dyn RateLimiter>> = Vec::new();
                let mut first = None;
                for _ in 0..n {
                    let store = db.store().await;
                    limiters.push(Arc::new(
                        PgRateLimiter::new(&store, config.clone()).unwrap(),
                    ));
                    first.get_or_insert(store);
                }
                let pool = first.unwrap().pool().clone();
                let (rps, allowed) = drive(limiters, keys).await;
                // Statistics reach pg_stat_user_tables within about a second.
                tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
                let leased = leases(&pool).await;
                println!(
                    "| shared (PostgreSQL) | {n} | {rps:.0} | {allowed} | {:.3} |",
                    leased as f64 / (keys * PER_KEY) as f64
                );
            }
        });
}
