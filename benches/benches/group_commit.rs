//! Durable create throughput: 64 concurrent tasks (whose commits the store batches into
//! shared fsyncs — group commit) against one create at a time (one commit, one fsync, per
//! create), beside the raw redb floors: single-insert commits one after another, and commits
//! of 64 inserts.
//!
//! Each side runs [`ROUNDS`] times on a fresh store; the median rate is reported. The target
//! is a concurrent rate at least 3x the sequential one. Run with
//! `cargo bench -p crm-benches --bench group_commit`.

use std::time::{Duration, Instant};

use crm_benches::{CoreFixture, Rng, contact_input, raw_key, seed_contacts};
use crm_core::model::Entity;
use tokio::runtime::Runtime;
use uuid::Uuid;

mod common;
use common::runtime;

/// Repetitions of each measurement (the median is reported).
const ROUNDS: usize = 3;
/// Creates per round, one at a time.
const SEQUENTIAL: usize = 300;
/// Concurrent tasks.
const TASKS: usize = 64;
/// Creates per round from the concurrent tasks (50 each).
const CONCURRENT: usize = TASKS * 50;

/// Creates per second of `count` creates taking `elapsed`.
fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// The median of a few rates.
fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// Creates per second through the engine, `count` contacts from `tasks` tasks, on a fresh
/// store each round.
fn engine_rate(rt: &Runtime, count: usize, tasks: usize) -> Vec<f64> {
    (0..ROUNDS)
        .map(|round| {
            rt.block_on(async {
                let fx = CoreFixture::new().await;
                // Warm up (page cache, writer thread, code paths) before timing.
                seed_contacts(&fx.crm, &fx.actor, &[], 20, 4, 99)
                    .await
                    .expect("warm up");
                let elapsed = seed_contacts(&fx.crm, &fx.actor, &[], count, tasks, round as u64)
                    .await
                    .expect("creates");
                rate(count, elapsed)
            })
        })
        .collect()
}

fn main() {
    // `cargo bench` passes flags such as `--bench`; this harness takes none.
    let rt = runtime();

    // A contact's stored bytes, for the raw side.
    let value = rt.block_on(async {
        let fx = CoreFixture::new().await;
        let c = fx
            .crm
            .contacts()
            .create(&fx.actor, contact_input(&mut Rng::new(5), &[]))
            .await
            .expect("create");
        c.into_record().to_json_bytes().expect("record JSON")
    });

    let sequential = engine_rate(&rt, SEQUENTIAL, 1);
    let concurrent = engine_rate(&rt, CONCURRENT, TASKS);

    let raw_single: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let dir = tempfile::tempdir().expect("temp dir");
            let raw = crm_benches::RawTable::create(dir.path().join("raw.redb"));
            let t = Instant::now();
            for _ in 0..SEQUENTIAL {
                raw.insert(&raw_key(Uuid::now_v7()), &value);
            }
            rate(SEQUENTIAL, t.elapsed())
        })
        .collect();
    let raw_batched: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let dir = tempfile::tempdir().expect("temp dir");
            let raw = crm_benches::RawTable::create(dir.path().join("raw.redb"));
            let t = Instant::now();
            for _ in 0..CONCURRENT / TASKS {
                raw.insert_many((0..TASKS).map(|_| (raw_key(Uuid::now_v7()), value.as_slice())));
            }
            rate(CONCURRENT, t.elapsed())
        })
        .collect();

    // One line per way of committing: its label (padded), the median rate, every round's.
    let line = |label: String, rates: &[f64]| {
        let all: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "  {label}{:>8.0}/s  [{}]",
            median(rates.to_vec()),
            all.join(", ")
        );
    };
    println!("durable creates per second (median of {ROUNDS} rounds; all rounds in brackets)");
    line(
        format!("engine, one create at a time ({SEQUENTIAL}):    "),
        &sequential,
    );
    line(
        format!("engine, {TASKS} concurrent tasks ({CONCURRENT}):  "),
        &concurrent,
    );
    line(
        format!("raw redb, one insert per commit ({SEQUENTIAL}): "),
        &raw_single,
    );
    line(
        format!("raw redb, {TASKS} inserts per commit ({CONCURRENT}): "),
        &raw_batched,
    );
    let ratio = median(concurrent.clone()) / median(sequential.clone());
    let raw_ratio = median(raw_batched) / median(raw_single.clone());
    println!(
        "  concurrent / sequential (engine): {ratio:.1}x  (target >= 3x: {})",
        if ratio >= 3.0 { "met" } else { "NOT met" }
    );
    println!("  batched / single (raw redb):      {raw_ratio:.1}x");
    println!(
        "  engine sequential / raw single-insert commits: {:.2}",
        median(sequential) / median(raw_single)
    );
    println!("  (contact value: {} bytes of JSON)", value.len());
}
