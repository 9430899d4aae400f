//! What the criterion benchmarks share (a module of each, not a benchmark of its own).

// Each benchmark uses a part of it.
#![allow(dead_code)]

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use crm_benches::RawTable;
use tokio::runtime::Runtime;

/// Criterion's settings for this machine: two shared cores, so short, small runs, enough to
/// see ratios.
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

/// The runtime the criterion benchmarks drive the engine on (multi-threaded, the default
/// number of workers).
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Benchmarks the raw floor of a page read: a scan of `n` entries of `raw` from `start`,
/// inline (`<name>_inline`) and through `spawn_blocking` as the store reads
/// (`<name>_spawn_blocking`).
pub fn raw_scans(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    raw: &RawTable,
    start: &[u8],
    n: usize,
    name: &str,
) {
    g.bench_function(format!("{name}_inline"), |b| {
        b.iter(|| raw.scan(black_box(start), n))
    });
    g.bench_function(format!("{name}_spawn_blocking"), |b| {
        b.to_async(rt).iter(|| {
            let (raw, start) = (raw.clone(), start.to_vec());
            async move {
                tokio::task::spawn_blocking(move || raw.scan(&start, n))
                    .await
                    .expect("join")
            }
        })
    });
}
