//! Rate limiting: per-user, per-address, login, refresh and password-reset quotas, plus
//! brute-force protection of logins.
//!
//! Two independent mechanisms live here:
//!
//! * **Quotas** ([`RateLimiter`], [`Policy`], [`RateLimitConfig`]): a GCRA rate limit per
//!   policy and key, e.g. 100 requests per minute per user. A check answers a
//!   [`RateDecision`] that carries everything an HTTP adapter needs: whether the request may
//!   proceed, the `RateLimit` / `RateLimit-Policy` header values, and `Retry-After` when it
//!   may not. [`InProcessLimiter`] (on the `governor` crate) is the default implementation; it
//!   keeps its state in the memory of one process. Several instances behind a load balancer
//!   each enforce their own copy of the limit; to enforce **one** limit across instances, use
//!   a shared implementation of [`RateLimiter`] (e.g. one on PostgreSQL) instead — the trait
//!   is async and object safe for that reason (`Arc<dyn RateLimiter>`).
//! * **Login throttling** ([`LoginThrottle`]): counts *failed* logins per account and per
//!   client address and, after a few consecutive failures, makes the key wait an
//!   exponentially growing delay. It only ever gates login attempts.
//!
//! A typical request path:
//!
//! ```
//! # async fn demo() -> crm_core::Result<()> {
//! use crm_core::ratelimit::{InProcessLimiter, Policy, RateLimiter};
//!
//! let limiter = InProcessLimiter::new(Default::default())?;
//! let decision = limiter.check(Policy::User, "user-42").await;
//! // Headers go on every response, 2xx or 429.
//! let headers = decision.headers();
//! assert_eq!(headers[0], ("RateLimit-Policy", r#""user";q=100;w=60"#.to_owned()));
//! assert_eq!(headers[1], ("RateLimit", r#""user";r=99;t=1"#.to_owned()));
//! let decision = decision.into_result()?; // Err(RateLimited, retry_after) when refused
//! assert!(decision.allowed());
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Error, ErrorKind, FieldError, FieldIssue, Result};

mod governor;
mod throttle;

pub use self::governor::{CoreClock, InProcessLimiter};
pub use self::throttle::{LoginThrottle, LoginThrottleConfig, LoginThrottler};
/// The `governor` clocks [`InProcessLimiter::with_clock`] accepts out of the box:
/// [`QuantaClock`] (the default: monotonic, a few nanoseconds per read) and
/// [`FakeRelativeClock`] (moves only when told, for tests).
pub use ::governor::clock::{FakeRelativeClock, QuantaClock};

/// Name of the header carrying the current limit state (see [`RateDecision::ratelimit_header`]).
pub const RATELIMIT_HEADER: &str = "RateLimit";
/// Name of the header carrying the quota policy (see [`RateDecision::policy_header`]).
pub const RATELIMIT_POLICY_HEADER: &str = "RateLimit-Policy";
/// Name of the standard `Retry-After` header (RFC 9110), sent with refusals.
pub const RETRY_AFTER_HEADER: &str = "Retry-After";

/// What a quota limits. Each policy has its own [`Quota`] and its own key space: the same key
/// under two policies is counted twice, independently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Policy {
    /// Authenticated requests, keyed by user (e.g. the user id, or workspace and user id).
    User,
    /// Unauthenticated requests, keyed by client address. Key IPv6 clients by their /64
    /// prefix: one host commonly owns a whole /64, so per-address keys would be free to mint.
    Address,
    /// Login attempts (successful or not), keyed by client address. Failed logins are further
    /// throttled per account and address by [`LoginThrottle`].
    Login,
    /// Refresh-token calls, keyed by client address (or session).
    Refresh,
    /// Password-reset requests. Check it twice per request — once keyed by client address and
    /// once by the normalized email — so neither many emails from one address nor many
    /// addresses for one email get through. Prefix the keys (`"ip:"`, `"email:"`) if the two
    /// key spaces could ever overlap.
    PasswordReset,
}

impl Policy {
    /// Every policy, in declaration order.
    pub const ALL: [Policy; 5] = [
        Policy::User,
        Policy::Address,
        Policy::Login,
        Policy::Refresh,
        Policy::PasswordReset,
    ];

    /// A stable lower-case name, e.g. `"password_reset"` (for logs, metrics and config keys).
    pub const fn name(self) -> &'static str {
        match self {
            Policy::User => "user",
            Policy::Address => "address",
            Policy::Login => "login",
            Policy::Refresh => "refresh",
            Policy::PasswordReset => "password_reset",
        }
    }

    /// Position in [`Policy::ALL`].
    pub(crate) const fn index(self) -> usize {
        match self {
            Policy::User => 0,
            Policy::Address => 1,
            Policy::Login => 2,
            Policy::Refresh => 3,
            Policy::PasswordReset => 4,
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A rate: at most `requests` per `per`.
///
/// Enforced as GCRA (a leaky bucket without timers): a fresh key may burst up to `requests`
/// at once, after which capacity comes back smoothly, one request every `per / requests`
/// (100 per minute: one every 0.6 s). A key is never allowed more than `requests` in any
/// burst, and on average no more than `requests` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    /// Requests allowed per window (also the burst size). At least 1.
    pub requests: u32,
    /// The window. Between 1 ms and 366 days, and at least `requests` nanoseconds.
    pub per: Duration,
}

impl Quota {
    /// Longest accepted window.
    pub const MAX_WINDOW: Duration = Duration::from_secs(366 * 24 * 3600);
    /// Shortest accepted window.
    pub const MIN_WINDOW: Duration = Duration::from_millis(1);

    /// `requests` per second.
    pub const fn per_second(requests: u32) -> Self {
        Quota {
            requests,
            per: Duration::from_secs(1),
        }
    }

    /// `requests` per minute.
    pub const fn per_minute(requests: u32) -> Self {
        Quota {
            requests,
            per: Duration::from_secs(60),
        }
    }

    /// `requests` per hour.
    pub const fn per_hour(requests: u32) -> Self {
        Quota {
            requests,
            per: Duration::from_secs(3600),
        }
    }

    /// The window in whole seconds, rounded up (the `w` parameter of `RateLimit-Policy`).
    pub fn window_secs(&self) -> u64 {
        ceil_secs(self.per)
    }

    /// The time in which one request's worth of capacity comes back (`per / requests`).
    /// Zero for an invalid quota.
    pub fn emission_interval(&self) -> Duration {
        if self.requests == 0 {
            Duration::ZERO
        } else {
            self.per / self.requests
        }
    }

    /// Checks the quota; `field` names it in the validation error (e.g. `"login"`).
    fn validate_into(&self, field: &str, errors: &mut Vec<FieldError>) {
        if self.requests == 0 {
            errors.push(FieldError::with_message(
                format!("{field}.requests"),
                FieldIssue::OutOfRange,
                "A quota must allow at least one request.",
            ));
        }
        if self.per < Self::MIN_WINDOW || self.per > Self::MAX_WINDOW {
            errors.push(FieldError::with_message(
                format!("{field}.per"),
                FieldIssue::OutOfRange,
                "A quota window must be between 1 ms and 366 days.",
            ));
        } else if self.requests > 0 && self.emission_interval().is_zero() {
            errors.push(FieldError::with_message(
                format!("{field}.per"),
                FieldIssue::OutOfRange,
                "A quota window must be at least one nanosecond per request.",
            ));
        }
    }
}

/// The quotas of every [`Policy`] and how [`InProcessLimiter`] keeps its memory bounded.
///
/// Defaults: [`Policy::User`] 100/minute (the requirement documents' value),
/// [`Policy::Address`] 60/minute, [`Policy::Login`] 10/minute, [`Policy::Refresh`]
/// 30/minute, [`Policy::PasswordReset`] 5/hour; eviction at least every 10,000 checks and at
/// least every 60 s of traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Authenticated requests per user.
    pub user: Quota,
    /// Unauthenticated requests per client address.
    pub address: Quota,
    /// Login attempts per client address.
    pub login: Quota,
    /// Refresh calls per client address (or session).
    pub refresh: Quota,
    /// Password-reset requests, per address and per email.
    pub password_reset: Quota,
    /// Stale keys of a policy are evicted after about this many of its checks (at least 1;
    /// [`InProcessLimiter`] counts per shard, `evict_every_checks / 16` each). It waits
    /// longer when many keys are live (one pass per live key's worth of checks), so the
    /// amortized cost of eviction stays constant per check.
    pub evict_every_checks: u64,
    /// Stale keys are also evicted when this much time has passed since the last eviction
    /// (noticed on a check; no background thread). At least 1 ms.
    pub evict_interval: Duration,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            user: Quota::per_minute(100),
            address: Quota::per_minute(60),
            login: Quota::per_minute(10),
            refresh: Quota::per_minute(30),
            password_reset: Quota::per_hour(5),
            evict_every_checks: 10_000,
            evict_interval: Duration::from_secs(60),
        }
    }
}

impl RateLimitConfig {
    /// The quota of `policy`.
    pub fn quota(&self, policy: Policy) -> Quota {
        match policy {
            Policy::User => self.user,
            Policy::Address => self.address,
            Policy::Login => self.login,
            Policy::Refresh => self.refresh,
            Policy::PasswordReset => self.password_reset,
        }
    }

    /// Replaces the quota of `policy` (builder style).
    pub fn with_quota(mut self, policy: Policy, quota: Quota) -> Self {
        let slot = match policy {
            Policy::User => &mut self.user,
            Policy::Address => &mut self.address,
            Policy::Login => &mut self.login,
            Policy::Refresh => &mut self.refresh,
            Policy::PasswordReset => &mut self.password_reset,
        };
        *slot = quota;
        self
    }

    /// Checks every quota and the eviction settings.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Validation`] listing each invalid setting (`user.requests`,
    /// `login.per`, `evict_every_checks`, ...): a quota allowing 0 requests, a window outside
    /// 1 ms..=366 days or shorter than one nanosecond per request, or a zero eviction setting.
    pub fn validate(&self) -> Result<()> {
        let mut errors = Vec::new();
        for policy in Policy::ALL {
            self.quota(policy).validate_into(policy.name(), &mut errors);
        }
        if self.evict_every_checks == 0 {
            errors.push(FieldError::with_message(
                "evict_every_checks",
                FieldIssue::OutOfRange,
                "Eviction must run after at least one check.",
            ));
        }
        if self.evict_interval < Duration::from_millis(1) {
            errors.push(FieldError::with_message(
                "evict_interval",
                FieldIssue::OutOfRange,
                "The eviction interval must be at least 1 ms.",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::validation(errors))
        }
    }
}

/// A rate limiter: answers whether one more request under a [`Policy`] and key may proceed,
/// and counts it if so.
///
/// [`InProcessLimiter`] is the default: fast, but its state lives in one process, so N
/// instances of a server each allow the full quota. A shared implementation (e.g. on
/// PostgreSQL) is how several instances enforce one limit; hosts hold an
/// `Arc<dyn RateLimiter>` and choose at start-up.
///
/// Implementations must fail open or closed deliberately and document which: `check` has no
/// error channel, so a shared limiter that cannot reach its store decides itself (and should
/// log it).
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts one request of `policy` for `key` if the quota allows it, and says so.
    ///
    /// A refused request is not counted.
    async fn check(&self, policy: Policy, key: &str) -> RateDecision;
}

/// The outcome of one [`RateLimiter::check`], with what an HTTP adapter needs for the
/// response headers.
///
/// The header helpers follow **draft-ietf-httpapi-ratelimit-headers-10** (September 2025,
/// <https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/10/>): both
/// fields are Structured Fields lists (RFC 9651) of one item, the policy's name as a string
/// ([`Policy::name`]) with parameters:
///
/// * `RateLimit-Policy: "user";q=100;w=60` — the quota policy: `q` requests (the quota) per
///   `w`-second window ([`policy_header`](Self::policy_header));
/// * `RateLimit: "user";r=99;t=1` — the current state under that policy: `r` requests
///   remaining, `t` seconds until the quota is fully available again
///   ([`ratelimit_header`](Self::ratelimit_header));
/// * plus `Retry-After: <seconds>` on a refusal ([`retry_after_secs`](Self::retry_after_secs)).
///
/// All durations are whole seconds rounded **up**, so a client that waits that long is never
/// early; `Retry-After` is never 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateDecision {
    policy: Policy,
    allowed: bool,
    limit: u32,
    remaining: u32,
    reset_secs: u64,
    retry_after_secs: Option<u64>,
    window_secs: u64,
}

impl RateDecision {
    /// An allowed request under `policy`'s `quota`: `remaining` more requests may follow at
    /// once, and the key is back to its full quota after `reset_after`. For implementors of
    /// [`RateLimiter`].
    pub fn allow(policy: Policy, quota: Quota, remaining: u32, reset_after: Duration) -> Self {
        RateDecision {
            policy,
            allowed: true,
            limit: quota.requests,
            remaining: remaining.min(quota.requests),
            reset_secs: ceil_secs(reset_after),
            retry_after_secs: None,
            window_secs: quota.window_secs(),
        }
    }

    /// A refused request under `policy`'s `quota`: the next request may succeed after
    /// `retry_after` (rounded up to whole seconds, at least 1), and the full quota is back
    /// after `reset_after` (never reported as earlier than `retry_after`). For implementors
    /// of [`RateLimiter`].
    pub fn refuse(
        policy: Policy,
        quota: Quota,
        retry_after: Duration,
        reset_after: Duration,
    ) -> Self {
        let retry = ceil_secs(retry_after).max(1);
        RateDecision {
            policy,
            allowed: false,
            limit: quota.requests,
            remaining: 0,
            reset_secs: ceil_secs(reset_after).max(retry),
            retry_after_secs: Some(retry),
            window_secs: quota.window_secs(),
        }
    }

    /// The policy the request was counted under.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Whether the request may proceed.
    pub fn allowed(&self) -> bool {
        self.allowed
    }

    /// The quota's request count (`q`).
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Requests the key may still make right now (`r`; 0 when refused).
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// Seconds until the key has its full quota again (`t`), rounded up.
    pub fn reset_secs(&self) -> u64 {
        self.reset_secs
    }

    /// Seconds to wait before retrying, rounded up and at least 1: `Some` exactly when
    /// refused.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after_secs
    }

    /// The quota's window in seconds (`w`).
    pub fn window_secs(&self) -> u64 {
        self.window_secs
    }

    /// The `RateLimit-Policy` header value, e.g. `"user";q=100;w=60`.
    pub fn policy_header(&self) -> String {
        format!(
            "\"{}\";q={};w={}",
            self.policy.name(),
            self.limit,
            self.window_secs
        )
    }

    /// The `RateLimit` header value, e.g. `"user";r=99;t=1`.
    pub fn ratelimit_header(&self) -> String {
        format!(
            "\"{}\";r={};t={}",
            self.policy.name(),
            self.remaining,
            self.reset_secs
        )
    }

    /// Every header to send, as (name, value): `RateLimit-Policy` and `RateLimit` always,
    /// `Retry-After` when refused. Take them before [`into_result`](Self::into_result)
    /// consumes the decision, so a 429 carries them too.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            (RATELIMIT_POLICY_HEADER, self.policy_header()),
            (RATELIMIT_HEADER, self.ratelimit_header()),
        ];
        if let Some(secs) = self.retry_after_secs {
            headers.push((RETRY_AFTER_HEADER, secs.to_string()));
        }
        headers
    }

    /// The decision as a result: `Ok(self)` when allowed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::RateLimited`] (E4001, HTTP 429) carrying
    /// [`Error::retry_after_secs`] — whole seconds, rounded up, never 0 — when refused.
    pub fn into_result(self) -> Result<RateDecision> {
        match self.retry_after_secs {
            None if self.allowed => Ok(self),
            retry => Err(Error::new(ErrorKind::RateLimited).with_retry_after(retry.unwrap_or(1))),
        }
    }
}

/// Whole seconds in `d`, rounded up.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A hasher for keys that are already uniformly distributed 64-bit hashes: it passes them
/// through instead of hashing them a second time.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PassThroughHasher(u64);

impl std::hash::Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by our keys; fold anything else in, FNV-style.
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// `BuildHasher` of [`PassThroughHasher`].
pub(crate) type PassThroughBuild = std::hash::BuildHasherDefault<PassThroughHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_draft_10() {
        let q = Quota::per_minute(100);
        let d = RateDecision::allow(Policy::User, q, 99, Duration::from_millis(600));
        assert_eq!(d.policy_header(), r#""user";q=100;w=60"#);
        assert_eq!(d.ratelimit_header(), r#""user";r=99;t=1"#);
        assert_eq!(d.policy(), Policy::User);
        assert_eq!(d.headers().len(), 2);
        assert!(d.clone().into_result().is_ok());

        let d = RateDecision::refuse(Policy::User, q, Duration::from_millis(1), Duration::ZERO);
        assert_eq!(d.retry_after_secs(), Some(1));
        assert_eq!(d.reset_secs(), 1);
        assert_eq!(d.headers()[2], ("Retry-After", "1".to_owned()));
        let e = d.into_result().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after_secs(), Some(1));

        let d = RateDecision::refuse(Policy::Address, q, Duration::ZERO, Duration::ZERO);
        assert_eq!(d.retry_after_secs(), Some(1), "never 0");
        let d = RateDecision::refuse(
            Policy::PasswordReset,
            q,
            Duration::from_millis(6001),
            Duration::from_secs(65),
        );
        assert_eq!(d.retry_after_secs(), Some(7), "rounded up");
        assert_eq!(d.ratelimit_header(), r#""password_reset";r=0;t=65"#);
        assert_eq!(d.policy_header(), r#""password_reset";q=100;w=60"#);
    }

    #[test]
    fn config_validation_lists_every_bad_field() {
        assert!(RateLimitConfig::default().validate().is_ok());
        let bad = RateLimitConfig {
            evict_every_checks: 0,
            ..RateLimitConfig::default()
        }
        .with_quota(Policy::Login, Quota::per_minute(0))
        .with_quota(
            Policy::User,
            Quota {
                requests: 10,
                per: Duration::ZERO,
            },
        )
        .with_quota(
            Policy::Refresh,
            Quota {
                requests: u32::MAX,
                per: Duration::from_millis(1),
            },
        );
        let e = bad.validate().unwrap_err();
        let fields: Vec<_> = e.fields().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "user.per",
                "login.requests",
                "refresh.per",
                "evict_every_checks"
            ]
        );
    }

    #[test]
    fn window_and_interval() {
        assert_eq!(Quota::per_hour(5).window_secs(), 3600);
        assert_eq!(
            Quota::per_minute(100).emission_interval(),
            Duration::from_millis(600)
        );
        assert_eq!(
            Quota {
                requests: 3,
                per: Duration::from_millis(1500)
            }
            .window_secs(),
            2
        );
        assert_eq!(Policy::PasswordReset.to_string(), "password_reset");
        for (i, p) in Policy::ALL.iter().enumerate() {
            assert_eq!(p.index(), i);
        }
    }
}
