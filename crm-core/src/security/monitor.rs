//! The engine's recorder of reads and security events: bounded queues in front of the
//! store, counters, hooks, sampling and the anomaly rules. See [`crate::access_log`] and
//! [the module docs](super).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

use super::anomaly::{AnomalyConfig, Detector, RULES};
use super::{SecurityEvent, SecurityEventType};
use crate::access_log::AccessEntry;

/// What [`crate::Crm::flush_logs`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Access-log entries written.
    pub access_entries: usize,
    /// Security events written.
    pub security_events: usize,
}

/// Counters of the recorder (for `/metrics`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogCounts {
    /// Security events seen, per type (sampled-out rate-limit events included).
    pub events: Vec<(SecurityEventType, u64)>,
    /// Anomalies fired, per rule.
    pub anomalies: Vec<(&'static str, u64)>,
    /// Access-log entries queued.
    pub access_entries: u64,
    /// Entries and events dropped because a queue was full or a write failed.
    pub dropped: u64,
}

impl LogCounts {
    /// The events of one type seen (0 for a type never seen).
    pub fn event_count(&self, kind: SecurityEventType) -> u64 {
        self.events
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }
}

#[derive(Default)]
pub(crate) struct Monitor {
    pub(crate) access: Mutex<Vec<AccessEntry>>,
    pub(crate) events: Mutex<Vec<SecurityEvent>>,
    /// Serializes flushes (one batch in flight).
    pub(crate) flushing: tokio::sync::Mutex<()>,
    detector: Mutex<Detector>,
    /// Rate-limit sampling: (workspace, key) -> minute last recorded.
    sampled: Mutex<HashMap<(Uuid, String), i64>>,
    counts: [AtomicU64; SecurityEventType::ALL.len()],
    anomalies: [AtomicU64; RULES.len()],
    access_total: AtomicU64,
    dropped: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Monitor {
    pub(crate) fn count(&self, kind: SecurityEventType) {
        if let Some(i) = SecurityEventType::ALL.iter().position(|k| *k == kind)
            && let Some(c) = self.counts.get(i)
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn count_rule(&self, rule: &str) {
        if let Some(i) = RULES.iter().position(|r| *r == rule) {
            self.anomalies[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether a rate-limit event for this key should be kept: the first per key and minute.
    pub(crate) fn sample(&self, event: &SecurityEvent) -> bool {
        if event.kind != SecurityEventType::RateLimited {
            return true;
        }
        let key = format!(
            "{}|{}|{}",
            event.address.as_deref().unwrap_or(""),
            event.user_id.map(|u| u.to_string()).unwrap_or_default(),
            event
                .detail
                .get("policy")
                .and_then(|p| p.as_str())
                .unwrap_or("")
        );
        let minute = event.at.as_micros().div_euclid(60_000_000);
        let mut sampled = lock(&self.sampled);
        if sampled.len() >= 100_000 {
            sampled.clear();
        }
        sampled.insert((event.workspace_id.uuid(), key), minute) != Some(minute)
    }

    pub(crate) fn observe(
        &self,
        config: &AnomalyConfig,
        event: &SecurityEvent,
    ) -> Vec<SecurityEvent> {
        lock(&self.detector).observe(config, event)
    }

    pub(crate) fn read(
        &self,
        config: &AnomalyConfig,
        entries: &[AccessEntry],
    ) -> Option<SecurityEvent> {
        let first = entries.first()?;
        lock(&self.detector).read(
            config,
            first.workspace_id,
            first.user_id,
            entries.iter().map(|e| e.record_id),
            first.at,
            first.address.as_deref(),
        )
    }

    pub(crate) fn queue_event(&self, event: SecurityEvent) {
        let mut q = lock(&self.events);
        if q.len() >= super::QUEUE_LIMIT {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            q.push(event);
        }
    }

    pub(crate) fn queue_access(&self, entries: Vec<AccessEntry>) {
        self.access_total
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        let mut q = lock(&self.access);
        let room = crate::access_log::QUEUE_LIMIT.saturating_sub(q.len());
        if entries.len() > room {
            self.dropped
                .fetch_add((entries.len() - room) as u64, Ordering::Relaxed);
        }
        q.extend(entries.into_iter().take(room));
    }

    /// The queued access entries, leaving an empty queue with the same capacity (the next
    /// second's reads then do not regrow it from nothing).
    pub(crate) fn take_access(&self) -> Vec<AccessEntry> {
        let mut q = lock(&self.access);
        let fresh = Vec::with_capacity(q.len().min(crate::access_log::QUEUE_LIMIT));
        std::mem::replace(&mut *q, fresh)
    }

    pub(crate) fn dropped(&self, n: usize) {
        self.dropped.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn counts(&self) -> LogCounts {
        LogCounts {
            events: SecurityEventType::ALL
                .iter()
                .zip(&self.counts)
                .map(|(k, c)| (*k, c.load(Ordering::Relaxed)))
                .collect(),
            anomalies: RULES
                .iter()
                .zip(&self.anomalies)
                .map(|(r, c)| (*r, c.load(Ordering::Relaxed)))
                .collect(),
            access_entries: self.access_total.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}
