//! Anomaly rules over the stream of security events and reads.
//!
//! Each rule watches what this engine instance sees (in memory, per workspace), and when it
//! fires the engine records an [`Anomaly`](super::SecurityEventType::Anomaly) event whose
//! `detail.rule` names the rule, and counts it per rule ([`crate::Crm::log_counts`]). A
//! rule that fired for a key stays quiet for that key for its window, so an attack in
//! progress gives one event per window, not one per attempt.
//!
//! # Thresholds are per instance
//!
//! The rules' state is this process's memory, not shared through the store. With several
//! instances on one database, behind a load balancer that spreads requests over `N` of them:
//!
//! * `credential_stuffing` and `password_spraying` count only the failed logins this
//!   instance handled. An attack spread evenly over `N` instances fires on an instance only
//!   once *its* share reaches the thresholds — about `N` times the configured numbers in
//!   total, within the window. Divide `stuffing_failures` and `spraying_accounts` by the
//!   number of instances (or route logins of one address to one instance) to keep the
//!   single-instance sensitivity. `stuffing_addresses` needs no change when the balancer
//!   spreads one address's requests too, but does when it pins addresses to instances.
//! * `bulk_reading` compares a user's distinct reads in a minute on this instance with the
//!   user's usual pace on this instance; spread evenly, both shrink by `N` and the ratio
//!   holds, but the `bulk_min_records` floor does not: lower it by `N` as well.
//! * Each instance keeps its own quiet period per key, so one attack seen by several
//!   instances gives up to one anomaly per instance and window (the events say which rule
//!   and key; they are stored side by side in the shared log).
//! * `refresh_token_reuse` and `new_address` depend on the shared store only (the session's
//!   retired tokens, the user's kept sessions): they fire once per occurrence, on the
//!   instance that served it, exactly as with one instance.
//! * A restart forgets the counting rules' state (failures, usual read pace, quiet periods).
//!
//! | rule | fires when | defaults |
//! |------|------------|----------|
//! | `credential_stuffing` | one account gets `stuffing_failures` failed logins from at least `stuffing_addresses` addresses within `window` | 10 failures, 3 addresses, 15 min |
//! | `password_spraying` | one address fails logins on at least `spraying_accounts` accounts within `window` | 10 accounts, 15 min |
//! | `bulk_reading` | a user reads more distinct records in one minute than `bulk_factor` × their usual per-minute count, and at least `bulk_min_records` | factor 10, at least 300 |
//! | `refresh_token_reuse` | a rotated refresh token is reused (always) | — |
//! | `new_address` | a user logs in from an address none of their kept sessions came from (not on the very first login) | on |

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use uuid::Uuid;

use super::{SecurityEvent, SecurityEventType};
use crate::clock::Timestamp;
use crate::id::{UserId, WorkspaceId};

/// Thresholds of the anomaly rules; see the [module docs](self) for the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyConfig {
    /// Whether the rules run at all.
    pub enabled: bool,
    /// The window of the login rules.
    pub window: Duration,
    /// Failed logins on one account that, from enough addresses, are credential stuffing.
    pub stuffing_failures: usize,
    /// Distinct addresses those failures must come from.
    pub stuffing_addresses: usize,
    /// Distinct accounts one address must fail on to be password spraying.
    pub spraying_accounts: usize,
    /// How many times a user's usual per-minute reads a minute must exceed.
    pub bulk_factor: u32,
    /// The fewest distinct records in a minute that can count as bulk reading.
    pub bulk_min_records: usize,
    /// Whether a login from an address never seen for the user is an anomaly.
    pub new_address: bool,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        AnomalyConfig {
            enabled: true,
            window: Duration::from_secs(15 * 60),
            stuffing_failures: 10,
            stuffing_addresses: 3,
            spraying_accounts: 10,
            bulk_factor: 10,
            bulk_min_records: 300,
            new_address: true,
        }
    }
}

/// The names of the rules, as in `detail.rule` and `/metrics`.
pub const RULES: [&str; 5] = [
    "credential_stuffing",
    "password_spraying",
    "bulk_reading",
    "refresh_token_reuse",
    "new_address",
];

/// Keys beyond which a rule's state starts over (bounded memory under a flood).
const MAX_KEYS: usize = 100_000;

#[derive(Default)]
struct Reads {
    /// Start of the current minute (micros).
    minute: i64,
    /// Distinct records read in it.
    records: HashSet<Uuid>,
    /// Usual distinct records per minute (exponential average over active minutes).
    usual: f64,
    /// Whether the rule fired in the current minute.
    fired: bool,
}

/// The rules' state (see the [module docs](self)).
#[derive(Default)]
pub(crate) struct Detector {
    /// Per (workspace, account): recent failures (time, address).
    failures_by_account: HashMap<(Uuid, String), VecDeque<(i64, String)>>,
    /// Per (workspace, address): recent failures (time, account).
    failures_by_address: HashMap<(Uuid, String), VecDeque<(i64, String)>>,
    /// Per (rule, workspace, key): quiet until.
    quiet: HashMap<(&'static str, Uuid, String), i64>,
    reads: HashMap<(Uuid, Uuid), Reads>,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl Detector {
    fn quiet(&mut self, rule: &'static str, ws: Uuid, key: &str, now: i64, window: i64) -> bool {
        if self.quiet.len() >= MAX_KEYS {
            self.quiet.retain(|_, until| *until > now);
        }
        let k = (rule, ws, key.to_owned());
        if self.quiet.get(&k).is_some_and(|until| *until > now) {
            return true;
        }
        self.quiet.insert(k, now.saturating_add(window));
        false
    }

    /// The anomalies `event` reveals, as events to record.
    pub(crate) fn observe(
        &mut self,
        config: &AnomalyConfig,
        event: &SecurityEvent,
    ) -> Vec<SecurityEvent> {
        if !config.enabled || event.kind == SecurityEventType::Anomaly {
            return Vec::new();
        }
        let ws = event.workspace_id.uuid();
        let now = event.at.as_micros();
        let window = micros(config.window);
        let mut out = Vec::new();
        let anomaly = |rule: &str| {
            SecurityEvent::new(event.workspace_id, SecurityEventType::Anomaly, event.at)
                .address(event.address.as_deref())
                .with("rule", rule)
                .with("trigger", event.kind.as_str())
        };
        match event.kind {
            SecurityEventType::RefreshTokenReuse => {
                let mut a = anomaly("refresh_token_reuse");
                a.user_id = event.user_id;
                out.push(a);
            }
            SecurityEventType::LoginFailed => {
                let account = event
                    .user_id
                    .map(|u| u.to_string())
                    .or_else(|| event.email.clone())
                    .unwrap_or_default();
                let address = event.address.clone().unwrap_or_default();
                if self.failures_by_account.len() >= MAX_KEYS {
                    self.failures_by_account.clear();
                }
                if self.failures_by_address.len() >= MAX_KEYS {
                    self.failures_by_address.clear();
                }
                let q = self
                    .failures_by_account
                    .entry((ws, account.clone()))
                    .or_default();
                q.push_back((now, address.clone()));
                while q.front().is_some_and(|(t, _)| now - *t > window) {
                    q.pop_front();
                }
                let addresses: HashSet<&str> = q.iter().map(|(_, a)| a.as_str()).collect();
                let stuffing = q.len() >= config.stuffing_failures
                    && addresses.len() >= config.stuffing_addresses;
                let (failures, distinct) = (q.len(), addresses.len());
                if stuffing && !self.quiet("credential_stuffing", ws, &account, now, window) {
                    let mut a = anomaly("credential_stuffing")
                        .with("failures", failures)
                        .with("addresses", distinct);
                    a.user_id = event.user_id;
                    a.email = event.email.clone();
                    out.push(a);
                }
                if !address.is_empty() {
                    let q = self
                        .failures_by_address
                        .entry((ws, address.clone()))
                        .or_default();
                    q.push_back((now, account));
                    while q.front().is_some_and(|(t, _)| now - *t > window) {
                        q.pop_front();
                    }
                    let accounts: HashSet<&str> = q.iter().map(|(_, a)| a.as_str()).collect();
                    let n = accounts.len();
                    if n >= config.spraying_accounts
                        && !self.quiet("password_spraying", ws, &address, now, window)
                    {
                        out.push(anomaly("password_spraying").with("accounts", n));
                    }
                }
            }
            _ => {}
        }
        out
    }

    /// Records that `user` read `records` at `at`; the bulk-reading anomaly if it fires.
    pub(crate) fn read(
        &mut self,
        config: &AnomalyConfig,
        ws: WorkspaceId,
        user: UserId,
        records: impl ExactSizeIterator<Item = Uuid>,
        at: Timestamp,
        address: Option<&str>,
    ) -> Option<SecurityEvent> {
        if !config.enabled || records.len() == 0 {
            return None;
        }
        if self.reads.len() >= MAX_KEYS {
            self.reads.clear();
        }
        let minute = at.as_micros().div_euclid(60_000_000) * 60_000_000;
        let r = self.reads.entry((ws.uuid(), user.uuid())).or_default();
        if r.minute != minute {
            if !r.records.is_empty() {
                // Minutes without reads do not drag the average down: "usual" is the usual
                // pace while working.
                let n = r.records.len() as f64;
                r.usual = if r.usual == 0.0 {
                    n
                } else {
                    0.8 * r.usual + 0.2 * n
                };
            }
            r.minute = minute;
            r.records.clear();
            r.fired = false;
        }
        r.records.extend(records);
        let n = r.records.len();
        let threshold =
            (r.usual * f64::from(config.bulk_factor)).max(config.bulk_min_records as f64);
        if !r.fired && n as f64 > threshold {
            r.fired = true;
            return Some(
                SecurityEvent::new(ws, SecurityEventType::Anomaly, at)
                    .user(user)
                    .address(address)
                    .with("rule", "bulk_reading")
                    .with("records", n)
                    .with("usual_per_minute", r.usual.round() as u64),
            );
        }
        None
    }
}
