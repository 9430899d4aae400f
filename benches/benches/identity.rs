//! Identity benchmarks, each beside the floor it rests on, measured in the same run:
//!
//! 1. **Access-token verification** including the revocation check (warm session cache):
//!    `Identity::verify_access_token`, beside `jsonwebtoken::decode` alone with the same key
//!    and validation (the floor). Target: under 5 µs.
//! 2. **Refresh rotation on redb**: `Identity::refresh` with the current token (one durable
//!    version-checked commit), beside a raw redb write transaction inserting one value and
//!    committing durably (the floor).
//! 3. **Reads while logins hash**: p50/p99 of `crm.contacts().get` idle, then while 8 tasks
//!    log in continuously with bcrypt cost 12. Target: p99 within 2x of idle.
//!
//! Run with `cargo bench -p crm-benches --bench identity`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::Criterion;
use crm_benches::{CoreFixture, Percentiles, ms};
use crm_core::identity::{
    Identity, IdentityConfig, LoginRequest, ResetDelivery, Secret, SecretToken,
};
use crm_core::model::{ClientInfo, ContactInput, User};
use crm_core::{Result, Timestamp};
use tokio::runtime::Runtime;

const SECRET: &[u8] = b"bench-secret-bench-secret-bench-secret-!";

struct NoDelivery;

#[async_trait]
impl ResetDelivery for NoDelivery {
    async fn deliver(&self, _: &User, _: &SecretToken, _: Timestamp) -> Result<()> {
        Ok(())
    }
}

fn main() {
    let rt = Runtime::new().expect("runtime");
    let fx = rt.block_on(CoreFixture::new());
    let identity = Identity::new(
        fx.crm.clone(),
        IdentityConfig::new(Secret::new(SECRET)),
        Arc::new(NoDelivery),
    )
    .expect("identity");
    let ws = fx.actor.workspace_id();
    rt.block_on(identity.set_password(&fx.actor, fx.actor.user_id(), "bench password"))
        .expect("password");
    let login = || LoginRequest {
        workspace_id: ws,
        email: "admin@bench.test".into(),
        password: "bench password".into(),
        client: ClientInfo::default(),
    };
    let tokens = rt.block_on(identity.login(login())).expect("login");

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(30)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));

    // 1. Verification.
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_issuer(&["crm"]);
    validation.set_audience(&["crm"]);
    validation.validate_exp = false;
    let key = jsonwebtoken::DecodingKey::from_secret(SECRET);
    let access = tokens.access_token.clone();
    rt.block_on(identity.verify_access_token(&access))
        .expect("valid token");
    c.bench_function(
        "identity/verify_access_token (with revocation check)",
        |b| {
            b.iter(|| {
                rt.block_on(identity.verify_access_token(black_box(&access)))
                    .expect("valid")
            })
        },
    );
    c.bench_function("identity/floor: jsonwebtoken::decode", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<serde_json::Value>(black_box(&access), &key, &validation)
                .expect("valid")
        })
    });

    // 2. Rotation.
    let mut current = tokens.refresh_token.clone();
    c.bench_function("identity/refresh rotation on redb (durable)", |b| {
        b.iter(|| {
            let next = rt
                .block_on(identity.refresh(current.expose(), &ClientInfo::default()))
                .expect("refresh");
            current = next.refresh_token;
        })
    });
    let raw = fx.raw_table("raw-rotation.redb");
    let value = vec![7u8; 600];
    let mut n = 0u64;
    c.bench_function("identity/floor: raw redb insert + durable commit", |b| {
        b.iter(|| {
            n += 1;
            raw.insert(&n.to_be_bytes(), &value);
        })
    });
    c.final_summary();

    // 3. Reads while logins hash.
    let contact = rt
        .block_on(fx.crm.contacts().create(
            &fx.actor,
            ContactInput {
                first_name: "Read".into(),
                last_name: "Me".into(),
                ..Default::default()
            },
        ))
        .expect("contact");
    let sample = |rt: &Runtime| {
        rt.block_on(async {
            let mut samples = Vec::with_capacity(3000);
            for _ in 0..3000 {
                let t = Instant::now();
                black_box(
                    fx.crm
                        .contacts()
                        .get(&fx.actor, contact.id)
                        .await
                        .expect("get"),
                );
                samples.push(t.elapsed());
                // Spread the samples over time, as requests would be.
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            Percentiles::of(&mut samples).expect("samples")
        })
    };
    let idle = sample(&rt);
    let stop = Arc::new(AtomicBool::new(false));
    let logins = Arc::new(AtomicUsize::new(0));
    for _ in 0..8 {
        let (identity, stop, logins) = (identity.clone(), stop.clone(), logins.clone());
        let req = login();
        rt.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if identity.login(req.clone()).await.is_ok() {
                    logins.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let loaded = sample(&rt);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let done = logins.load(Ordering::Relaxed);
    println!("\nreads of one contact (3,000 samples each):");
    println!(
        "  idle:                 p50 {}  p99 {}  max {}",
        ms(idle.p50),
        ms(idle.p99),
        ms(idle.max)
    );
    println!(
        "  8 logins hashing:     p50 {}  p99 {}  max {}",
        ms(loaded.p50),
        ms(loaded.p99),
        ms(loaded.max)
    );
    println!(
        "  p99 ratio loaded/idle: {:.2}x (target <= 2x); {} logins completed in {:.1} s ({:.1}/s at cost 12)",
        loaded.p99.as_secs_f64() / idle.p99.as_secs_f64(),
        done,
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64()
    );
}
