//! Security events: logins, refusals, revocations, role changes, anomalies — persisted,
//! queryable by admins, streamed to the host in real time, counted per type.
//!
//! The identity layer, the facade and the host (crm-http: CSRF failures, rate limits,
//! refusals) report [`SecurityEvent`]s through [`crate::Crm::security_event`]. Each one is
//! handed at once to the configured [`SecurityEvents`] hooks (a host's real-time stream),
//! counted per [`SecurityEventType`] ([`crate::Crm::log_counts`]), fed to the anomaly
//! rules ([`anomaly`]) and queued for the store, which gets them in batches through
//! [`crate::Crm::flush_logs`] like the access log (bounded queue; a crash loses at most the
//! host's flush interval).
//!
//! # Several instances on one database
//!
//! The events are shared, the recorder is not. What each part covers when several engine
//! instances (processes of the host) work on one store:
//!
//! * **Stored events**: every instance writes its own events to the shared store, so
//!   [`crate::Crm::security_events`] (`GET /security-events`) lists all instances' events —
//!   each once it is flushed by the instance that recorded it (crm-http flushes every
//!   second, and a read flushes the reading instance's queue first).
//! * **Hooks and counters** ([`SecurityEvents`], [`crate::Crm::log_counts`], `/metrics`)
//!   see only this instance's events, since it started: sum the counters over the
//!   instances (a Prometheus `sum by (type)`), and attach a hook to every instance.
//! * **Rate-limit sampling** is per instance: one stored `rate_limited` event per key and
//!   minute *on each instance* that refuses the key.
//! * **Anomaly rules** keep their state in this instance's memory (see [`anomaly`]): the
//!   rules counting over a window (`credential_stuffing`, `password_spraying`,
//!   `bulk_reading`) see only the failures and reads this instance served, and their
//!   quiet periods are per instance; `refresh_token_reuse` and `new_address` are decided
//!   from the shared store (the session's rotated tokens, the user's kept sessions) and fire
//!   on whichever instance served the request, the same as with one instance. A restart
//!   starts the counting rules over.
//!
//! **Payloads hold no secrets**: no password, token, hash or key is ever put in an event —
//! the constructors take only ids, an address, an account name and short reason codes.
//! The login name a failed login named (`email`) is kept so that attacks on unknown accounts
//! can be seen; [`crate::Storage::redact_security_events_for`] clears it and the address from
//! a user's events.

pub mod anomaly;
pub(crate) mod monitor;

pub use anomaly::AnomalyConfig;
pub use monitor::{FlushReport, LogCounts};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::id::{UserId, WorkspaceId};

/// Largest page of [`SecurityEventQuery::limit`].
pub const MAX_LIMIT: usize = 500;

/// Events waiting in memory to be written, at most (beyond, new ones are dropped from the
/// store — hooks and counters still see them).
pub const QUEUE_LIMIT: usize = 50_000;

macro_rules! event_types {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// What happened. On the wire and in `/metrics`, the snake_case name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum SecurityEventType {
            $($(#[$doc])* $variant,)*
        }

        impl SecurityEventType {
            /// Every type, in declaration order.
            pub const ALL: &'static [SecurityEventType] = &[$(SecurityEventType::$variant,)*];

            /// The snake_case name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(SecurityEventType::$variant => $name,)*
                }
            }

            /// The type of a snake_case name.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($name => Some(SecurityEventType::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

event_types! {
    /// A login succeeded.
    LoginSucceeded = "login_succeeded",
    /// A login failed; `detail.reason` says why (kept internal: `unknown_account`,
    /// `wrong_password`, `disabled`) — the client always gets the same error.
    LoginFailed = "login_failed",
    /// A login was refused by the throttle before any password check.
    LoginThrottled = "login_throttled",
    /// A rotated refresh token was used again after the grace window; its session was
    /// revoked.
    RefreshTokenReuse = "refresh_token_reuse",
    /// A session was revoked (`detail.reason`: logout, revoked, password_changed,
    /// user_disabled, token_reuse).
    SessionRevoked = "session_revoked",
    /// A user changed their password.
    PasswordChanged = "password_changed",
    /// A password reset was requested (for a known account or not: `detail.known`).
    PasswordResetRequested = "password_reset_requested",
    /// A password reset was completed.
    PasswordResetCompleted = "password_reset_completed",
    /// A user's role changed (`detail.from`, `detail.to`).
    RoleChanged = "role_changed",
    /// A user was disabled.
    UserDisabled = "user_disabled",
    /// A user was enabled again.
    UserEnabled = "user_enabled",
    /// A request was refused: `detail.status` 403, or 404 for a record the permission
    /// model hides (`detail.hidden: true` — recorded as what it is).
    AccessRefused = "access_refused",
    /// A browser request failed the CSRF check.
    CsrfFailed = "csrf_failed",
    /// A rate limit was exceeded (sampled: the first refusal per key and minute).
    RateLimited = "rate_limited",
    /// Personal data was erased (`detail.entity`, `detail.record_id`).
    ErasurePerformed = "erasure_performed",
    /// Personal data was exported (`detail.entity`, `detail.record_id`).
    ExportPerformed = "export_performed",
    /// An anomaly rule fired (`detail.rule`, see [`anomaly`]).
    Anomaly = "anomaly",
}

/// One security event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityEvent {
    /// Id (UUIDv7 of `at`, see [`crate::access_log::id_at`]); the paging cursor.
    pub id: Uuid,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// When.
    pub at: Timestamp,
    /// What.
    #[serde(rename = "type")]
    pub kind: SecurityEventType,
    /// The account it is about, when known.
    pub user_id: Option<UserId>,
    /// Who did it, when someone else than `user_id` (an admin changing a role).
    pub actor_id: Option<UserId>,
    /// The client address, when known and the workspace keeps addresses.
    pub address: Option<String>,
    /// The login name a login or reset named (lower-cased), for accounts that may not exist.
    pub email: Option<String>,
    /// Short non-secret facts (reason codes, route, counts), a JSON object.
    pub detail: serde_json::Value,
}

impl SecurityEvent {
    /// An event of `kind` at `at`, about nobody yet, with an empty detail.
    pub fn new(workspace_id: WorkspaceId, kind: SecurityEventType, at: Timestamp) -> Self {
        SecurityEvent {
            id: crate::access_log::id_at(at),
            workspace_id,
            at,
            kind,
            user_id: None,
            actor_id: None,
            address: None,
            email: None,
            detail: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    /// About this user.
    #[must_use]
    pub fn user(mut self, user: UserId) -> Self {
        self.user_id = Some(user);
        self
    }

    /// Done by this user.
    #[must_use]
    pub fn actor(mut self, actor: UserId) -> Self {
        self.actor_id = Some(actor);
        self
    }

    /// From this address.
    #[must_use]
    pub fn address(mut self, address: Option<&str>) -> Self {
        self.address = address.map(str::to_owned);
        self
    }

    /// Naming this login (lower-cased).
    #[must_use]
    pub fn email(mut self, email: &str) -> Self {
        self.email = Some(email.trim().to_lowercase());
        self
    }

    /// With one more fact in `detail`.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        if let serde_json::Value::Object(m) = &mut self.detail {
            m.insert(key.to_owned(), value.into());
        }
        self
    }
}

/// Filters for reading security events, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityEventQuery {
    /// Only this type.
    pub kind: Option<SecurityEventType>,
    /// Only events about (or by) this user.
    pub user_id: Option<UserId>,
    /// Only events at or after this instant.
    pub since: Option<Timestamp>,
    /// Only events older than this one (the paging cursor: the last id of a page).
    pub before: Option<Uuid>,
    /// At most this many (1..=[`MAX_LIMIT`]).
    pub limit: usize,
}

impl SecurityEventQuery {
    /// Whether an event passes the filters and the cursor (not the limit).
    pub fn admits(&self, e: &SecurityEvent) -> bool {
        self.kind.is_none_or(|k| k == e.kind)
            && self
                .user_id
                .is_none_or(|u| e.user_id == Some(u) || e.actor_id == Some(u))
            && self.since.is_none_or(|s| e.at >= s)
            && self.before.is_none_or(|b| e.id < b)
    }
}

/// Receives every security event as it happens, for hosts that stream them (a SIEM, an
/// alerting channel). Called inline where the event happens: keep it cheap (forward to a
/// channel).
pub trait SecurityEvents: Send + Sync + 'static {
    /// One event.
    fn event(&self, event: &SecurityEvent);
}
