//! [`LoginThrottle`]: exponential delays after repeated failed logins.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::PassThroughBuild;
use crate::clock::Timestamp;
use crate::error::{Error, ErrorKind, FieldError, FieldIssue, Result};

/// Where failed-login counts live: [`LoginThrottle`] keeps them in this process; a shared
/// implementation (e.g. `crm_store_postgres::PgLoginThrottle`) keeps them where every
/// instance of the host sees the same counts, with the same rules
/// ([`LoginThrottleConfig`]). The identity layer calls it around every login.
#[async_trait::async_trait]
pub trait LoginThrottler: Send + Sync + 'static {
    /// As [`LoginThrottle::check`].
    ///
    /// # Errors
    /// `RateLimited` with the wait, while the account or the address is in a delay.
    async fn check(&self, account: &str, address: &str, now: Timestamp) -> Result<()>;
    /// As [`LoginThrottle::record_failure`].
    async fn record_failure(&self, account: &str, address: &str, now: Timestamp);
    /// As [`LoginThrottle::record_success`].
    async fn record_success(&self, account: &str, address: &str);
}

#[async_trait::async_trait]
impl LoginThrottler for LoginThrottle {
    async fn check(&self, account: &str, address: &str, now: Timestamp) -> Result<()> {
        LoginThrottle::check(self, account, address, now)
    }
    async fn record_failure(&self, account: &str, address: &str, now: Timestamp) {
        LoginThrottle::record_failure(self, account, address, now);
    }
    async fn record_success(&self, account: &str, address: &str) {
        LoginThrottle::record_success(self, account, address);
    }
}

/// Shards per table (a power of two), each behind its own lock.
const SHARDS: usize = 16;

/// Settings of a [`LoginThrottle`].
///
/// Defaults: 5 free failures, then 1 s, 2 s, 4 s, … capped at 15 minutes; failures forgotten
/// after 1 hour without a new one; at most 100,000 tracked accounts and 100,000 tracked
/// addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginThrottleConfig {
    /// Consecutive failures a key may have before delays start (at least 1). After this many,
    /// the key waits [`base_delay`](Self::base_delay); each further failure doubles the wait.
    pub free_failures: u32,
    /// The first delay (at least 1 ms).
    pub base_delay: Duration,
    /// The longest delay (at least `base_delay`).
    pub max_delay: Duration,
    /// A key's failures are forgotten (and its entry may be evicted) once this long has
    /// passed since its last failure. At least `max_delay`, so a delay never outlives the
    /// entry that imposes it.
    pub idle_window: Duration,
    /// Cap on tracked keys, separately for accounts and for addresses (at least 16). Past it,
    /// entries are evicted oldest-first, keys not in a delay before keys in one.
    pub max_entries: usize,
}

impl Default for LoginThrottleConfig {
    fn default() -> Self {
        LoginThrottleConfig {
            free_failures: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            idle_window: Duration::from_secs(3600),
            max_entries: 100_000,
        }
    }
}

impl LoginThrottleConfig {
    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Validation`] listing each invalid setting: `free_failures` of 0,
    /// `base_delay` under 1 ms, `max_delay` under `base_delay`, `idle_window` under
    /// `max_delay`, `max_entries` under 16.
    pub fn validate(&self) -> Result<()> {
        let mut errors = Vec::new();
        let mut bad = |field: &str, message: &str| {
            errors.push(FieldError::with_message(
                field,
                FieldIssue::OutOfRange,
                message,
            ));
        };
        if self.free_failures == 0 {
            bad("free_failures", "At least one failure must be free.");
        }
        if self.base_delay < Duration::from_millis(1) {
            bad("base_delay", "The first delay must be at least 1 ms.");
        }
        if self.max_delay < self.base_delay {
            bad(
                "max_delay",
                "The longest delay must not be shorter than the first.",
            );
        }
        if self.idle_window < self.max_delay {
            bad(
                "idle_window",
                "The idle window must not be shorter than the longest delay.",
            );
        }
        if self.max_entries < SHARDS {
            bad("max_entries", "At least 16 entries must be allowed.");
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::validation(errors))
        }
    }

    /// The delay imposed after `failures` consecutive failures (zero while they are free).
    pub fn delay_after(&self, failures: u32) -> Duration {
        match failures.checked_sub(self.free_failures) {
            None => Duration::ZERO,
            Some(doublings) => 1u32
                .checked_shl(doublings)
                .and_then(|factor| self.base_delay.checked_mul(factor))
                .map_or(self.max_delay, |d| d.min(self.max_delay)),
        }
    }
}

/// What is known about one key.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Consecutive failures within the idle window.
    failures: u32,
    /// When the last failure happened (µs since the epoch).
    last_failure: i64,
    /// No attempt is checked before this instant (µs since the epoch; 0 = no delay).
    blocked_until: i64,
}

/// One shard of a table: key hash -> entry.
#[derive(Default)]
struct Shard {
    entries: HashMap<u64, Entry, PassThroughBuild>,
    /// The next time `record_failure` sweeps expired entries (µs since the epoch).
    next_sweep: i64,
}

/// Failed-login state of one kind of key (accounts or addresses).
struct Table {
    shards: Box<[Mutex<Shard>]>,
}

impl Table {
    fn new() -> Self {
        Table {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    fn shard(&self, hash: u64) -> MutexGuard<'_, Shard> {
        self.shards[(hash >> 32) as usize & (SHARDS - 1)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entries
                    .len()
            })
            .sum()
    }
}

/// Brute-force protection for logins: counts consecutive failed logins per account and per
/// client address, and after [`free_failures`](LoginThrottleConfig::free_failures) of them
/// (5 by default) makes that key wait an exponentially growing delay — 1 s, 2 s, 4 s, …
/// capped at 15 minutes — before its next attempt is even checked.
///
/// It complements the GCRA [`Policy::Login`](super::Policy::Login) quota (which counts every
/// attempt per address): the quota bounds the rate, the throttle makes guessing one
/// account's password slow even from many addresses, and guessing from one address slow
/// even across many accounts.
///
/// Use per login attempt:
///
/// 1. [`check`](Self::check) before verifying the password; on `Err`, answer 429 with its
///    `retry_after` without touching the password hash.
/// 2. After verifying: [`record_failure`](Self::record_failure) or
///    [`record_success`](Self::record_success) (which clears both counters).
///
/// It throttles **login only**. Password-reset requests are never checked against it (they
/// have their own [`Policy::PasswordReset`](super::Policy::PasswordReset) quota), so an
/// attacker who fails logins on purpose cannot lock a user out of resetting their password;
/// and the delay is temporary, so it never locks an account out for good.
///
/// Time is passed in explicitly (`now`, from the engine's [`Clock`](crate::Clock)), so tests
/// move it by hand. Keys are stored as 64-bit hashes with a random per-throttle seed (no
/// emails or addresses in memory); account keys compare ASCII-case-insensitively. Pass the
/// client address of an IPv6 client as its /64 prefix.
///
/// Memory is bounded: entries whose last failure is older than the idle window (1 hour) are
/// swept away during [`record_failure`](Self::record_failure) (at most every quarter idle
/// window per shard) or by [`evict`](Self::evict); past
/// [`max_entries`](LoginThrottleConfig::max_entries) per table the oldest entries go first,
/// those not serving a delay before those serving one (so flooding the table with fresh
/// keys does not free an account under attack). Thread-safe: 16 mutex-guarded shards.
///
/// Checking and recording are separate steps, so parallel attempts that all pass `check`
/// before any failure is recorded each get verified; the `Login` quota bounds that burst.
pub struct LoginThrottle {
    config: LoginThrottleConfig,
    accounts: Table,
    addresses: Table,
    hasher: RandomState,
}

impl LoginThrottle {
    /// A throttle with the given settings.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Validation`] when the settings are invalid (see
    /// [`LoginThrottleConfig::validate`]).
    pub fn new(config: LoginThrottleConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self::build(config))
    }

    fn build(config: LoginThrottleConfig) -> Self {
        LoginThrottle {
            config,
            accounts: Table::new(),
            addresses: Table::new(),
            hasher: RandomState::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &LoginThrottleConfig {
        &self.config
    }

    /// Whether a login attempt for `account` from `address` may be checked at `now`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::RateLimited`] with [`Error::retry_after_secs`] (whole seconds, rounded
    /// up, at least 1) while the account or the address serves a delay — the longer of the
    /// two.
    pub fn check(&self, account: &str, address: &str, now: Timestamp) -> Result<()> {
        let now = now.as_micros();
        let wait = |table: &Table, hash: u64| {
            table
                .shard(hash)
                .entries
                .get(&hash)
                .map_or(0, |e| e.blocked_until.saturating_sub(now))
        };
        let wait_micros = wait(&self.accounts, self.account_hash(account))
            .max(wait(&self.addresses, self.address_hash(address)));
        if wait_micros > 0 {
            let secs = (wait_micros.unsigned_abs()).div_ceil(1_000_000);
            Err(Error::new(ErrorKind::RateLimited).with_retry_after(secs))
        } else {
            Ok(())
        }
    }

    /// Records a failed login for `account` from `address` at `now`: both counters go up and,
    /// past the free failures, both keys start (or extend) a delay.
    pub fn record_failure(&self, account: &str, address: &str, now: Timestamp) {
        let now = now.as_micros();
        self.fail(&self.accounts, self.account_hash(account), now);
        self.fail(&self.addresses, self.address_hash(address), now);
    }

    /// Records a successful login: clears the account's counter and the address's.
    pub fn record_success(&self, account: &str, address: &str) {
        let hash = self.account_hash(account);
        self.accounts.shard(hash).entries.remove(&hash);
        let hash = self.address_hash(address);
        self.addresses.shard(hash).entries.remove(&hash);
    }

    /// Drops every entry whose failures are older than the idle window at `now`, and
    /// releases the memory. [`record_failure`](Self::record_failure) does this by itself
    /// periodically; call it from a timer to also reclaim memory while no failures arrive.
    pub fn evict(&self, now: Timestamp) {
        let now = now.as_micros();
        for table in [&self.accounts, &self.addresses] {
            for shard in table.shards.iter() {
                let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
                self.sweep(&mut shard, now);
                shard.entries.shrink_to_fit();
            }
        }
    }

    /// Tracked keys (accounts plus addresses), including expired ones not swept yet.
    pub fn len(&self) -> usize {
        self.accounts.len() + self.addresses.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn account_hash(&self, account: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write_u8(b'a');
        // ASCII-lowercased, through a stack buffer (no allocation).
        let mut buf = [0u8; 64];
        for chunk in account.as_bytes().chunks(buf.len()) {
            let lower = &mut buf[..chunk.len()];
            lower.copy_from_slice(chunk);
            lower.make_ascii_lowercase();
            h.write(lower);
        }
        h.finish()
    }

    fn address_hash(&self, address: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write_u8(b'i');
        h.write(address.as_bytes());
        h.finish()
    }

    fn idle_micros(&self) -> i64 {
        i64::try_from(self.config.idle_window.as_micros()).unwrap_or(i64::MAX)
    }

    fn fail(&self, table: &Table, hash: u64, now: i64) {
        let idle = self.idle_micros();
        let mut shard = table.shard(hash);
        if now >= shard.next_sweep {
            self.sweep(&mut shard, now);
            shard.next_sweep = now.saturating_add(idle / 4);
        }
        let entry = shard.entries.entry(hash).or_insert(Entry {
            failures: 0,
            last_failure: now,
            blocked_until: 0,
        });
        if now.saturating_sub(entry.last_failure) > idle {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = entry.last_failure.max(now);
        let delay = self.config.delay_after(entry.failures);
        entry.blocked_until = if delay.is_zero() {
            0
        } else {
            let delay = i64::try_from(delay.as_micros()).unwrap_or(i64::MAX);
            now.saturating_add(delay).max(entry.blocked_until)
        };
        let cap = self.config.max_entries.div_ceil(SHARDS);
        if shard.entries.len() > cap {
            self.sweep(&mut shard, now);
            if shard.entries.len() > cap {
                Self::evict_oldest(&mut shard, cap, now);
            }
        }
    }

    /// Removes the entries whose last failure is older than the idle window and whose delay
    /// is over.
    fn sweep(&self, shard: &mut Shard, now: i64) {
        let idle = self.idle_micros();
        shard
            .entries
            .retain(|_, e| e.blocked_until > now || now.saturating_sub(e.last_failure) <= idle);
    }

    /// Evicts the oldest eighth of a full shard (at least down to `cap`): keys not serving a
    /// delay first, then by last failure. Amortized O(1) per insert.
    fn evict_oldest(shard: &mut Shard, cap: usize, now: i64) {
        let target = cap - cap / 8;
        let excess = shard.entries.len().saturating_sub(target);
        if excess == 0 {
            return;
        }
        let rank = |e: &Entry| (e.blocked_until > now, e.last_failure);
        let mut ranks: Vec<(bool, i64)> = shard.entries.values().map(rank).collect();
        let (_, &mut threshold, _) = ranks.select_nth_unstable(excess - 1);
        // Remove everything ranked below the threshold, then ties until `excess` are gone.
        let mut ties = excess - ranks.iter().filter(|r| **r < threshold).count();
        shard.entries.retain(|_, e| {
            let r = rank(e);
            if r < threshold {
                false
            } else if r == threshold && ties > 0 {
                ties -= 1;
                false
            } else {
                true
            }
        });
    }
}

impl Default for LoginThrottle {
    /// A throttle with the default settings.
    fn default() -> Self {
        Self::build(LoginThrottleConfig::default())
    }
}

impl fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginThrottle")
            .field("config", &self.config)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_first_penalized_failure_and_cap() {
        let c = LoginThrottleConfig::default();
        let secs: Vec<u64> = (0..=20).map(|f| c.delay_after(f).as_secs()).collect();
        assert_eq!(&secs[..8], &[0, 0, 0, 0, 0, 1, 2, 4]);
        assert_eq!(secs[14], 512);
        assert_eq!(secs[15], 900, "capped at 15 minutes");
        assert_eq!(c.delay_after(u32::MAX), c.max_delay);
    }

    #[test]
    fn config_validation() {
        assert!(LoginThrottleConfig::default().validate().is_ok());
        let e = LoginThrottle::new(LoginThrottleConfig {
            free_failures: 0,
            base_delay: Duration::ZERO,
            max_delay: Duration::from_secs(7200),
            idle_window: Duration::from_secs(3600),
            max_entries: 1,
        })
        .unwrap_err();
        let fields: Vec<_> = e.fields().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            ["free_failures", "base_delay", "idle_window", "max_entries"]
        );
    }

    #[test]
    fn oldest_unpenalized_entries_go_first() {
        let mut shard = Shard::default();
        for k in 0..100u64 {
            let blocked = k % 10 == 0;
            shard.entries.insert(
                k,
                Entry {
                    failures: if blocked { 9 } else { 1 },
                    last_failure: k as i64,
                    blocked_until: if blocked { 1_000 } else { 0 },
                },
            );
        }
        LoginThrottle::evict_oldest(&mut shard, 80, 500);
        assert_eq!(shard.entries.len(), 70);
        // All 10 penalized keys survive, even the oldest.
        assert!((0..100).step_by(10).all(|k| shard.entries.contains_key(&k)));
        // The 30 oldest unpenalized keys are gone.
        assert!(!shard.entries.contains_key(&1));
        assert!(!shard.entries.contains_key(&33));
        assert!(shard.entries.contains_key(&34));
    }
}
