//! The access log's and security events' side of the adapter: the task that writes the
//! engine's queued entries (see [`crm_core::Crm::flush_logs`]) every [`FLUSH_EVERY`], and
//! their counters in `/metrics` ([`SecurityCounters`]).
//!
//! A crash loses what is still queued: at most [`FLUSH_EVERY`] of entries (plus one write
//! in flight), never a record or anything else.

use std::sync::{OnceLock, Weak};
use std::time::Duration;

use crm_core::security::LogCounts;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

/// The longest an entry waits in the engine's queue.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Starts the writer task once (inside the runtime, at the first request). It holds a weak
/// handle on the engine and ends when the engine is gone.
#[derive(Default)]
pub(crate) struct Flusher {
    started: OnceLock<()>,
}

impl Flusher {
    pub(crate) fn start(&self, crm: &crm_core::Crm, alive: Weak<()>) {
        self.started.get_or_init(|| {
            let crm = crm.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(FLUSH_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let gone = alive.upgrade().is_none();
                    if let Err(e) = crm.flush_logs().await {
                        tracing::warn!(error = ?e, "security logs: a batch was dropped");
                    }
                    if gone {
                        return;
                    }
                }
            });
        });
    }
}

/// The engine's security counters, read on each scrape: events per type
/// (`crm_security_events_total{type}`), anomalies per rule (`crm_anomalies_total{rule}`),
/// access-log entries (`crm_access_log_entries_total`) and drops
/// (`crm_security_log_dropped_total`).
#[derive(Debug)]
pub(crate) struct SecurityCounters(pub(crate) crm_core::Crm);

impl Collector for SecurityCounters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let counts: LogCounts = self.0.log_counts();
        let events = counts.events.iter().map(|(kind, n)| (kind.as_str(), *n));
        // Name, help, label and series of the counters with one label.
        let labelled = [
            (
                "crm_security_events",
                "Security events, by type.",
                "type",
                events.collect::<Vec<_>>(),
            ),
            (
                "crm_anomalies",
                "Anomalies detected, by rule.",
                "rule",
                counts.anomalies,
            ),
        ];
        for (name, help, label, series) in labelled {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (value, n) in series {
                ConstCounter::new(n).encode(family.encode_family(&[(label, value)])?)?;
            }
        }
        // Name, help and value of the counters without labels.
        let single = [
            (
                "crm_access_log_entries",
                "Records read and logged.",
                counts.access_entries,
            ),
            (
                "crm_security_log_dropped",
                "Log entries dropped (queue full or a write failed).",
                counts.dropped,
            ),
        ];
        for (name, help, n) in single {
            ConstCounter::new(n).encode(encoder.encode_descriptor(
                name,
                help,
                None,
                MetricType::Counter,
            )?)?;
        }
        Ok(())
    }
}
