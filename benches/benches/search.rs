//! Full-text search over 100,000 contacts, beside a raw redb range scan of the page it
//! returns, plus latency percentiles from individually timed searches.
//!
//! 1. **Seed**: 500 companies, then 100,000 contacts with realistic, varied names (a few
//!    hundred first and last names, titles, emails on company domains, phones, background
//!    text), created by 64 concurrent tasks so the store's group commit batches them. The seed
//!    time is printed.
//! 2. **Criterion** (means): `crm.contacts().list(q = "joh")` — a 3-letter prefix matching
//!    about 3% of the contacts (John, Johnny, Johanna, Johan, Johnson, Johnston) — and a full
//!    word (`q = "johnson"`), against the raw floor: one read transaction copying 25
//!    contact-sized values out of a 100,000-value table (a page, inline and in
//!    `spawn_blocking`).
//! 3. **Percentiles**: each query timed one by one, p50/p95/p99/max printed with the total
//!    number of matches; the target is a p95 under 10 ms for a 3-letter prefix.
//! 4. **The store's search knob**: the same data reopened with smaller
//!    `RedbOptions::search_candidates`, the 3-letter prefixes timed again.
//!
//! `CRM_BENCH_CONTACTS=10000` seeds fewer contacts (for a quick try). Run with
//! `cargo bench -p crm-benches --bench search`.

use std::time::{Duration, Instant};

use criterion::Criterion;
use crm_benches::{CoreFixture, Percentiles, ms, raw_key, seed_companies, seed_contacts};
use crm_core::model::Entity;
use crm_core::{Actor, Crm, ListParams};
use crm_store_redb::RedbOptions;
use uuid::Uuid;

mod common;
use common::{raw_scans, runtime};

/// Companies the contacts work for.
const COMPANIES: usize = 500;
/// Concurrent seeding tasks.
const CONCURRENCY: usize = 64;
/// Timed iterations per query for the percentiles.
const ITERATIONS: usize = 300;
/// Queries timed for the percentiles: 3-letter prefixes, full words, two terms.
const QUERIES: &[&str] = &[
    "joh", "mar", "chr", "ann", "wil", "johnson", "garcia", "maria", "john smi",
];

fn contacts_to_seed() -> usize {
    std::env::var("CRM_BENCH_CONTACTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn main() {
    let rt = runtime();
    let fx = rt.block_on(CoreFixture::new());
    let (crm, actor) = (&fx.crm, &fx.actor);
    let contacts = contacts_to_seed();

    // 1. Seed.
    let started = Instant::now();
    let companies = rt
        .block_on(seed_companies(crm, actor, COMPANIES, CONCURRENCY, 1))
        .expect("seed companies");
    let company_time = started.elapsed();
    let contact_time = rt
        .block_on(seed_contacts(
            crm,
            actor,
            &companies,
            contacts,
            CONCURRENCY,
            2,
        ))
        .expect("seed contacts");
    println!(
        "seeded {COMPANIES} companies in {:.2} s and {contacts} contacts in {:.2} s \
         ({:.0} contacts/s, {CONCURRENCY} concurrent tasks, durable group commits)",
        company_time.as_secs_f64(),
        contact_time.as_secs_f64(),
        contacts as f64 / contact_time.as_secs_f64()
    );
    let db_size = std::fs::metadata(fx.dir.path().join("crm.redb")).map_or(0, |m| m.len());
    println!("store file: {:.1} MiB", db_size as f64 / (1024.0 * 1024.0));

    // The raw floor: as many contact-sized values, one transaction.
    let sample = rt
        .block_on(crm.contacts().list(actor, &ListParams::new().limit(1)))
        .expect("list")
        .data
        .remove(0);
    let bytes = sample.into_record().to_json_bytes().expect("record JSON");
    let raw = fx.raw_table("raw.redb");
    raw.insert_many((0..contacts).map(|_| (raw_key(Uuid::now_v7()), bytes.clone())));
    let start = raw_key(Uuid::nil());

    // 2. Criterion means.
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    {
        let mut g = c.benchmark_group(format!("search_{contacts}_contacts"));
        for q in ["joh", "johnson"] {
            let params = ListParams::new().q(q);
            g.bench_function(format!("core_q_{q}"), |b| {
                b.to_async(&rt)
                    .iter(|| async { crm.contacts().list(actor, &params).await.expect("search") })
            });
        }
        raw_scans(&mut g, &rt, &raw, &start, 25, "raw_redb_scan_25");
        g.finish();
    }
    c.final_summary();

    // 3. Percentiles of individually timed iterations.
    println!();
    println!(
        "search latency over {contacts} contacts, {ITERATIONS} timed iterations each (page of 25)"
    );
    rt.block_on(async {
        header();
        for q in QUERIES {
            let matches = count_matches(crm, actor, q).await;
            let (rows, p) = time_it(|| async {
                let page = crm.contacts().list(actor, &ListParams::new().q(q)).await;
                page.expect("search").data.len()
            })
            .await;
            line(&format!("contacts q={q:?}"), matches, rows, p, q.len() == 3);
        }
        // The cross-entity search (companies, contacts and deals at once).
        let (rows, p) = time_it(|| async {
            let found = crm.search(actor, "joh", 25).await.expect("search");
            found.companies.len() + found.contacts.len() + found.deals.len()
        })
        .await;
        line("crm.search \"joh\" (3 kinds)", 0, rows, p, false);
        let (rows, p) = time_it(|| {
            let (r, s) = (raw.clone(), start.clone());
            async move {
                tokio::task::spawn_blocking(move || r.scan(&s, 25).len())
                    .await
                    .expect("join")
            }
        })
        .await;
        line("raw scan 25 (spawn_blocking)", 0, rows, p, false);
    });

    // 4. The store's one search knob, on the same data: below `search_candidates` matches a
    //    search loads and sorts every candidate, above it walks the sort index.
    let mut fx = fx;
    for cap in [500, 250] {
        rt.block_on(async {
            fx.reopen_with(RedbOptions {
                search_candidates: cap,
                ..Default::default()
            })
            .await;
            println!();
            println!("same data, store reopened with RedbOptions::search_candidates = {cap}");
            header();
            for q in QUERIES.iter().filter(|q| q.len() == 3) {
                let (crm, actor) = (&fx.crm, &fx.actor);
                let matches = count_matches(crm, actor, q).await;
                let (rows, p) = time_it(|| async {
                    let page = crm.contacts().list(actor, &ListParams::new().q(q)).await;
                    page.expect("search").data.len()
                })
                .await;
                line(&format!("contacts q={q:?}"), matches, rows, p, true);
            }
        });
    }
}

/// The column titles of [`line`].
fn header() {
    println!(
        "{:<30} {:>7} {:>5} {:>10} {:>10} {:>10} {:>10}  p95 < 10 ms",
        "query", "matches", "rows", "p50", "p95", "p99", "max"
    );
}

/// One row of a latency table; `target`: whether the p95 target applies (3-letter prefixes).
fn line(name: &str, matches: usize, rows: usize, p: Percentiles, target: bool) {
    let verdict = match (target, p.p95 < Duration::from_millis(10)) {
        (false, _) => "-",
        (true, true) => "met",
        (true, false) => "NOT met",
    };
    let matches = if matches == 0 {
        "-".to_string()
    } else {
        matches.to_string()
    };
    println!(
        "{:<30} {:>7} {:>5} {:>10} {:>10} {:>10} {:>10}  {verdict}",
        name,
        matches,
        rows,
        ms(p.p50),
        ms(p.p95),
        ms(p.p99),
        ms(p.max)
    );
}

/// Runs `op` [`ITERATIONS`] times, timing each run; returns the last result and the
/// percentiles.
async fn time_it<F, Fut>(mut op: F) -> (usize, Percentiles)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = usize>,
{
    let mut samples = Vec::with_capacity(ITERATIONS);
    let mut last = 0;
    for _ in 0..ITERATIONS {
        let t = Instant::now();
        last = op().await;
        samples.push(t.elapsed());
    }
    (last, Percentiles::of(&mut samples).expect("samples"))
}

/// How many contacts match `q` in all (paging through every match, 100 at a time).
async fn count_matches(crm: &Crm, actor: &Actor, q: &str) -> usize {
    let mut total = 0;
    let mut cursor = None;
    loop {
        let params = ListParams::new().q(q).limit(100).cursor(cursor);
        let page = crm.contacts().list(actor, &params).await.expect("search");
        total += page.data.len();
        cursor = page.next_cursor;
        if cursor.is_none() {
            return total;
        }
    }
}
