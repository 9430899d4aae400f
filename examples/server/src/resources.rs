//! The server's own series in `/metrics`: what the process uses, what it serves, and how
//! busy its store is: one [`ServerSeries`] collector, registered in the HTTP adapter's metrics
//! registry ([`crm_http::AppState::with_registry`]) and read on each scrape — a few small
//! `/proc` reads and atomic loads, no background sampling, so a value is never stale.
//!
//! | metric | type | source |
//! |---|---|---|
//! | `process_resident_memory_bytes` | gauge | `VmRSS` of `/proc/self/status` |
//! | `process_cpu_seconds_total` | counter | user + system time of `/proc/self/stat` |
//! | `process_open_fds`, `process_max_fds` | gauge | entries of `/proc/self/fd`; `/proc/self/limits` |
//! | `process_threads` | gauge | `Threads` of `/proc/self/status` |
//! | `crm_server_open_connections` | gauge (`listener`) | the accept loops |
//! | `crm_db_pool_connections` | gauge (`state`: `idle`, `in_use`) | PostgreSQL pool |
//! | `crm_db_pool_max_connections`, `crm_db_pool_waiting` | gauge | PostgreSQL pool |
//! | `crm_redb_write_queue_depth`, `crm_redb_write_queue_capacity` | gauge | redb writer |
//! | `crm_redb_commit_batch_size` | histogram | redb group commits |
//!
//! The process series follow the Prometheus client libraries' names, so the usual
//! dashboards work. They exist on Linux only (elsewhere they are left out, not faked).
//! CPU time in `/proc/self/stat` is in clock ticks of `USER_HZ`, which Linux fixes at 100
//! for user space on every architecture this server targets.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crm_http::prometheus_client::collector::Collector;
use crm_http::prometheus_client::encoding::{
    DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet,
};
use crm_http::prometheus_client::metrics::MetricType;
use crm_http::prometheus_client::metrics::counter::ConstCounter;
use crm_http::prometheus_client::metrics::gauge::ConstGauge;

use crate::store::OpenStore;

/// Clock ticks per second of `/proc/self/stat` (Linux's `USER_HZ`).
const USER_HZ: f64 = 100.0;

/// Open connections of one listener, counted by its accept loop.
#[derive(Debug, Clone, Default)]
pub struct Connections(Arc<AtomicI64>);

/// One open connection, counted until dropped.
#[derive(Debug)]
pub struct Open(Arc<AtomicI64>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Connections {
    /// Counts a connection until the returned guard drops.
    pub fn open(&self) -> Open {
        self.0.fetch_add(1, Ordering::Relaxed);
        Open(self.0.clone())
    }

    /// Connections open now.
    pub fn count(&self) -> i64 {
        self.0.load(Ordering::Relaxed).max(0)
    }
}

fn status_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// User + system CPU seconds from the text of `/proc/self/stat`.
fn cpu_seconds(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces and parentheses: fields after it start
    // after the last ')'. utime and stime are fields 14 and 15, i.e. 12th and 13th after.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    #[allow(clippy::cast_precision_loss)]
    Some((utime + stime) as f64 / USER_HZ)
}

fn max_fds(limits: &str) -> Option<u64> {
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l["Max open files".len()..].split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The server's own series, read on each scrape: registered once in the HTTP adapter's
/// metrics registry ([`crm_http::AppState::with_registry`]).
#[derive(Debug)]
pub struct ServerSeries {
    /// Each listener's name (the `listener` label) and its open connections.
    pub listeners: Vec<(&'static str, Connections)>,
    /// The store, for its pool or writer series.
    pub store: OpenStore,
}

impl Collector for ServerSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        encode_process(&mut encoder)?;
        encode_connections(&mut encoder, &self.listeners)?;
        encode_store(&mut encoder, &self.store)
    }
}

/// One unlabelled series (`help` ends with a full stop).
fn single(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> std::fmt::Result {
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// The process series (Linux: from `/proc/self`; elsewhere nothing).
fn encode_process(encoder: &mut DescriptorEncoder) -> std::fmt::Result {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(kb) = status_field(&status, "VmRSS") {
            single(
                encoder,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                &ConstGauge::new(kb * 1024),
            )?;
        }
        if let Some(n) = status_field(&status, "Threads") {
            single(
                encoder,
                "process_threads",
                "OS threads of the process.",
                &ConstGauge::new(n),
            )?;
        }
    }
    if let Some(secs) = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .as_deref()
        .and_then(cpu_seconds)
    {
        // A counter: the encoder adds the `_total` suffix.
        single(
            encoder,
            "process_cpu_seconds",
            "User and system CPU time spent, in seconds.",
            &ConstCounter::new(secs),
        )?;
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        // The directory handle being read is one of the entries; leave it out.
        let n = dir.count().saturating_sub(1);
        single(
            encoder,
            "process_open_fds",
            "Open file descriptors.",
            &ConstGauge::new(n as u64),
        )?;
    }
    if let Some(n) = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .as_deref()
        .and_then(max_fds)
    {
        single(
            encoder,
            "process_max_fds",
            "Most file descriptors the process may open.",
            &ConstGauge::new(n),
        )?;
    }
    Ok(())
}

/// The open connections of each `(listener, counter)`.
fn encode_connections(
    encoder: &mut DescriptorEncoder,
    listeners: &[(&'static str, Connections)],
) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(
        "crm_server_open_connections",
        "Client connections open now.",
        None,
        MetricType::Gauge,
    )?;
    for (name, c) in listeners {
        ConstGauge::new(c.count()).encode(family.encode_family(&[("listener", *name)])?)?;
    }
    Ok(())
}

/// The store's series: the PostgreSQL pool, or the redb writer.
fn encode_store(encoder: &mut DescriptorEncoder, store: &OpenStore) -> std::fmt::Result {
    match store {
        OpenStore::Postgres(pg) => {
            let s = pg.pool_stats();
            let mut family = encoder.encode_descriptor(
                "crm_db_pool_connections",
                "PostgreSQL connections open, by state.",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(u64::from(s.idle))
                .encode(family.encode_family(&[("state", "idle")])?)?;
            ConstGauge::new(u64::from(s.size.saturating_sub(s.idle)))
                .encode(family.encode_family(&[("state", "in_use")])?)?;
            single(
                encoder,
                "crm_db_pool_max_connections",
                "Most PostgreSQL connections the pool opens.",
                &ConstGauge::new(u64::from(s.max)),
            )?;
            single(
                encoder,
                "crm_db_pool_waiting",
                "Storage calls waiting for a PostgreSQL connection.",
                &ConstGauge::new(u64::from(s.waiting)),
            )
        }
        OpenStore::Redb(redb) => {
            let s = redb.writer_stats();
            single(
                encoder,
                "crm_redb_write_queue_depth",
                "Commits queued for the redb writer thread.",
                &ConstGauge::new(s.queued as u64),
            )?;
            single(
                encoder,
                "crm_redb_write_queue_capacity",
                "Most commits the redb write queue holds before callers wait.",
                &ConstGauge::new(s.queue_capacity as u64),
            )?;
            let histogram = encoder.encode_descriptor(
                "crm_redb_commit_batch_size",
                "Commits per redb write transaction (group commit).",
                None,
                MetricType::Histogram,
            )?;
            encode_batch_sizes(histogram, &s)
        }
    }
}

/// The writer's cumulative batch-size buckets as the per-bucket counts the encoder sums up
/// again; `+Inf` is the number of batches.
fn encode_batch_sizes(
    mut histogram: MetricEncoder,
    s: &crm_store_redb::WriterStats,
) -> std::fmt::Result {
    let mut below = 0;
    let mut buckets: Vec<(f64, u64)> = s
        .batch_size_buckets
        .iter()
        .map(|&(bound, cumulative)| {
            let n = cumulative.saturating_sub(below);
            below = below.max(cumulative);
            (bound as f64, n)
        })
        .collect();
    buckets.push((f64::INFINITY, s.batches.saturating_sub(below)));
    histogram.encode_histogram::<NoLabelSet>(s.commits as f64, s.batches, &buckets, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse() {
        let stat = "4242 (crm (server) x) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0 100 0";
        assert_eq!(cpu_seconds(stat), Some(3.0));
        assert_eq!(cpu_seconds("garbage"), None);
        let status = "Name:\tcrm-server\nVmRSS:\t   12345 kB\nThreads:\t9\n";
        assert_eq!(status_field(status, "VmRSS"), Some(12345));
        assert_eq!(status_field(status, "Threads"), Some(9));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(max_fds(limits), Some(1024));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_measured() {
        #[derive(Debug)]
        struct ProcessOnly;
        impl Collector for ProcessOnly {
            fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
                encode_process(&mut encoder)
            }
        }
        let mut registry = crm_http::prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(ProcessOnly));
        let out = crm_http::metrics::render(&registry);
        assert!(
            out.contains("# TYPE process_cpu_seconds_total counter\n"),
            "{out}"
        );
        let value = |name: &str| -> f64 {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name} missing:\n{out}"))
                .parse()
                .unwrap()
        };
        assert!(value("process_resident_memory_bytes") > 1_000_000.0);
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_max_fds") >= value("process_open_fds"));
        assert!(value("process_cpu_seconds_total") >= 0.0);
        let c = Connections::default();
        let a = c.open();
        let b = c.open();
        drop(a);
        assert_eq!(c.count(), 1);
        drop(b);
        assert_eq!(c.count(), 0);
    }
}
