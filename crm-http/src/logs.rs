//! The access log's and security events' side of the adapter: the task that writes the
//! engine's queued entries (see [`crm_core::Crm::flush_logs`]) every [`FLUSH_EVERY`], and
//! their counters in `/metrics`.
//!
//! A crash loses what is still queued: at most [`FLUSH_EVERY`] of entries (plus one write
//! in flight), never a record or anything else.

use std::fmt::Write as _;
use std::sync::{OnceLock, Weak};
use std::time::Duration;

use crm_core::security::LogCounts;

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

/// Appends the security counters in the Prometheus text format.
pub(crate) fn render(counts: &LogCounts, out: &mut String) {
    out.push_str("# HELP crm_security_events_total Security events by type.\n");
    out.push_str("# TYPE crm_security_events_total counter\n");
    for (kind, n) in &counts.events {
        let _ = writeln!(
            out,
            "crm_security_events_total{{type=\"{}\"}} {n}",
            kind.as_str()
        );
    }
    out.push_str("# HELP crm_anomalies_total Anomalies detected, by rule.\n");
    out.push_str("# TYPE crm_anomalies_total counter\n");
    for (rule, n) in &counts.anomalies {
        let _ = writeln!(out, "crm_anomalies_total{{rule=\"{rule}\"}} {n}");
    }
    out.push_str("# HELP crm_access_log_entries_total Records read and logged.\n");
    out.push_str("# TYPE crm_access_log_entries_total counter\n");
    let _ = writeln!(
        out,
        "crm_access_log_entries_total {}",
        counts.access_entries
    );
    out.push_str(
        "# HELP crm_security_log_dropped_total Log entries dropped (queue full or write failed).\n",
    );
    out.push_str("# TYPE crm_security_log_dropped_total counter\n");
    let _ = writeln!(out, "crm_security_log_dropped_total {}", counts.dropped);
}
