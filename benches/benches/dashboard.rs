//! `GET /dashboard` at scale — 1M contacts, 200k deals, 500k tasks (plus 100k companies and
//! 100k notes), 10 users — on redb and PostgreSQL in the same run, and what the collection
//! `ETag`s cost on a list of 100 tasks.
//!
//! 1. **Seed** each store through its own bulk path (`crm_core::demo::seed`: commits of 2,000
//!    records with their audit entries, the dashboard tallies maintained by those commits);
//!    the time is printed. PostgreSQL then gets `ANALYZE`.
//! 2. **Dashboard**: `GET /dashboard` through the crm-http router in-process (JWT, rate
//!    limiter, JSON, gzip, ETag — no socket), for the admin and for a sales user; beside it
//!    `Crm::dashboard` (the engine without HTTP) and `Storage::dashboard` (the store's one
//!    snapshot read), and GET one contact through the same router as a reference. Each call
//!    timed one at a time, 400 samples after 20 warm-ups: p50/p95/p99.
//! 3. **ETag on lists**: `GET /tasks?limit=100` through the router, the SHA-256 digest of
//!    its body alone (the ETag's whole extra work), and the same GET answered `304`.
//!
//! `cargo bench -p crm-benches --bench dashboard` (PostgreSQL as the store's tests find
//! one); `CRM_BENCH_SCALE=0.1` for a tenth of the volume.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_benches::http::{api, call};
use crm_benches::{Percentiles, ms};
use crm_core::dashboard::DashboardQuery;
use crm_core::demo::seed;
use crm_core::{Actor, Crm, CrmConfig, Storage};
use sha2::Digest;

const SAMPLES: usize = 400;

/// Times `f` `SAMPLES` times, one call at a time, after 20 warm-up calls.
async fn time<F, Fut>(mut f: F) -> Percentiles
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..20 {
        f().await;
    }
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let t = Instant::now();
        f().await;
        samples.push(t.elapsed());
    }
    Percentiles::of(&mut samples).expect("samples")
}

fn row(store: &str, what: &str, p: Percentiles) {
    println!(
        "| {store} | {what} | {} | {} | {} | {} |",
        ms(p.p50),
        ms(p.p95),
        ms(p.p99),
        ms(p.max)
    );
}

async fn run(name: &str, storage: Arc<dyn Storage>, after_seed: impl AsyncFnOnce()) {
    let crm = Crm::new(storage.clone(), CrmConfig::default());
    let (admin, owners) = crm_core::demo::workspace(&crm, "Dashboard", "dash.test", 9)
        .await
        .expect("workspace");
    let ws = admin.workspace_id();
    let started = Instant::now();
    let seeded = seed(
        storage.as_ref(),
        ws,
        &owners,
        crm_benches::scaled_volume(),
        11,
    )
    .await
    .expect("seed");
    println!(
        "{name}: seeded {} contacts, {} deals, {} tasks (+ companies, notes) in {:.1?}",
        seeded.contacts.len(),
        seeded.deals.len(),
        seeded.tasks.len(),
        started.elapsed()
    );
    after_seed().await;
    let sales: Actor = crm.actor(ws, owners[1]).await.expect("sales actor");
    let (app, token) = api(crm.clone(), &admin, admin.user_id(), "admin@dash.test").await;
    let (sales_app, sales_token) =
        api(crm.clone(), &admin, sales.user_id(), "sales0@dash.test").await;

    let (status, _, body) = call(&app, "/dashboard", &token, None).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let figures = crm.dashboard(&admin, None).await.expect("dashboard");
    println!(
        "{name}: counts {:?}; admin's open tasks: {} overdue, {} today, {} this week, {} open",
        figures.counts,
        figures.tasks.overdue,
        figures.tasks.today,
        figures.tasks.this_week,
        figures.tasks.open
    );

    let http_admin = time(|| async {
        let (s, _, _) = call(&app, "/dashboard", &token, None).await;
        assert_eq!(s, 200);
    })
    .await;
    let http_sales = time(|| async {
        let (s, _, _) = call(&sales_app, "/dashboard", &sales_token, None).await;
        assert_eq!(s, 200);
    })
    .await;
    let engine = time(|| async {
        crm.dashboard(&admin, None).await.expect("dashboard");
    })
    .await;
    let q = DashboardQuery::of(admin.user_id());
    let store = time(|| async {
        storage.dashboard(ws, &q).await.expect("store");
    })
    .await;
    let contact = format!("/contacts/{}", seeded.contacts[seeded.contacts.len() / 2]);
    let get_one = time(|| async {
        let (s, _, _) = call(&app, &contact, &token, None).await;
        assert_eq!(s, 200);
    })
    .await;
    println!("| store | operation | p50 | p95 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    row(
        name,
        "GET /dashboard (admin), router in-process",
        http_admin,
    );
    row(name, "GET /dashboard (sales user)", http_sales);
    row(name, "Crm::dashboard (no HTTP)", engine);
    row(name, "Storage::dashboard (the store's read)", store);
    row(name, "reference: GET one contact, same router", get_one);
    println!(
        "{name}: /dashboard p95 {} (target < 20 ms: {}); p95 / GET-one p95 = {:.2}x",
        ms(http_admin.p95.max(http_sales.p95)),
        if http_admin.p95.max(http_sales.p95) < Duration::from_millis(20) {
            "met"
        } else {
            "NOT met"
        },
        http_admin.p95.as_secs_f64() / get_one.p95.as_secs_f64()
    );

    // The collection ETag's cost on a list of 100 tasks.
    let list = "/tasks?limit=100";
    let (_, headers, _) = call(&app, list, &token, None).await;
    let tag = headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("an ETag")
        .to_owned();
    let json = serde_json::to_vec(
        &crm.tasks()
            .list(&admin, &crm_core::ListParams::new().limit(100))
            .await
            .expect("list"),
    )
    .expect("json");
    let listed = time(|| async {
        let (s, _, _) = call(&app, list, &token, None).await;
        assert_eq!(s, 200);
    })
    .await;
    let not_modified = time(|| async {
        let (s, _, _) = call(&app, list, &token, Some(&tag)).await;
        assert_eq!(s, 304);
    })
    .await;
    let digest = time(|| async {
        std::hint::black_box(sha2::Sha256::digest(std::hint::black_box(&json)));
    })
    .await;
    row(name, "GET /tasks?limit=100 (with its ETag)", listed);
    row(name, "the same, If-None-Match: 304", not_modified);
    row(
        name,
        &format!(
            "SHA-256 of its {} KB body (the ETag's work)",
            json.len() / 1000
        ),
        digest,
    );
    println!(
        "{name}: the ETag digest is {:.1}% of a list-100-tasks request (p50)",
        100.0 * digest.p50.as_secs_f64() / listed.p50.as_secs_f64()
    );
}

fn main() {
    let rt = crm_benches::runtime();
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let redb =
            crm_store_redb::RedbStore::open(dir.path().join("dashboard.redb")).expect("redb");
        run("redb", Arc::new(redb), async || {}).await;
        let db = crm_store_postgres::testing::TestDatabase::create().await;
        let pg = db.store().await;
        let analyze = pg.clone();
        run("postgres", Arc::new(pg), async move || {
            analyze.analyze().await.expect("analyze");
        })
        .await;
    });
}
