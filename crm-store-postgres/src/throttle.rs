//! [`PgLoginThrottle`]: the login throttle's failure counts shared by every instance on a
//! PostgreSQL database, with the rules of [`LoginThrottleConfig`] (free failures, then
//! doubling delays, forgotten after the idle window).
//!
//! Logins are rare and bcrypt-bound (about 250 ms of CPU each), so the database work per
//! login is small beside them: one indexed `SELECT` before every attempt, one upsert per key
//! (account and address) after a failure, one `DELETE` after a success. Keys are SHA-256
//! digests of `account:` / `address:` plus the key, so no email or address is stored. Rows
//! idle past the window are deleted, 1,000 at a time, at most once a minute. When the
//! database cannot be reached the calls fall back to an in-process [`LoginThrottle`] with
//! the same settings (each instance then counts on its own), so logins keep working and
//! stay throttled.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use crm_core::clock::Timestamp;
use crm_core::ratelimit::{LoginThrottle, LoginThrottleConfig, LoginThrottler};
use crm_core::{Error, ErrorKind, Result};
use sha2::{Digest, Sha256};

use crate::PgStore;

/// A shared [`LoginThrottler`] on PostgreSQL; see the [module docs](self).
pub struct PgLoginThrottle {
    pool: sqlx::PgPool,
    config: LoginThrottleConfig,
    fallback: LoginThrottle,
    last_sweep: Mutex<Instant>,
}

impl std::fmt::Debug for PgLoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLoginThrottle")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn keys(account: &str, address: &str) -> [Vec<u8>; 2] {
    let digest = |prefix: &str, k: &str| {
        let mut h = Sha256::new();
        h.update(prefix.as_bytes());
        h.update(k.as_bytes());
        h.finalize().to_vec()
    };
    [digest("account:", account), digest("address:", address)]
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl PgLoginThrottle {
    /// A throttle with `config`'s rules on `store`'s database (migration 0002 applied).
    ///
    /// # Errors
    /// `Validation` for invalid settings.
    pub fn new(store: &PgStore, config: LoginThrottleConfig) -> Result<Self> {
        let fallback = LoginThrottle::new(config.clone())?;
        Ok(PgLoginThrottle {
            pool: store.pool().clone(),
            config,
            fallback,
            last_sweep: Mutex::new(Instant::now()),
        })
    }

    async fn wait_micros(&self, account: &str, address: &str, now: i64) -> sqlx::Result<i64> {
        let [a, b] = keys(account, address);
        let until: Option<i64> = sqlx::query_scalar(
            "SELECT max(blocked_until) FROM crm_login_failure WHERE key = ANY($1)",
        )
        .bind(vec![a, b])
        .fetch_one(&self.pool)
        .await?;
        Ok(until.unwrap_or(0).saturating_sub(now))
    }

    async fn fail(&self, key: Vec<u8>, now: i64) -> sqlx::Result<()> {
        let idle = micros(self.config.idle_window);
        let failures: i32 = sqlx::query_scalar(
            "INSERT INTO crm_login_failure AS f (key, failures, last_failure, blocked_until) \
             VALUES ($1, 1, $2, 0) ON CONFLICT (key) DO UPDATE SET \
             failures = CASE WHEN $2 - f.last_failure > $3 THEN 1 ELSE f.failures + 1 END, \
             last_failure = GREATEST(f.last_failure, $2) RETURNING failures",
        )
        .bind(&key)
        .bind(now)
        .bind(idle)
        .fetch_one(&self.pool)
        .await?;
        let delay = self
            .config
            .delay_after(u32::try_from(failures).unwrap_or(u32::MAX));
        if !delay.is_zero() {
            sqlx::query(
                "UPDATE crm_login_failure SET blocked_until = GREATEST(blocked_until, $2) \
                 WHERE key = $1",
            )
            .bind(&key)
            .bind(now.saturating_add(micros(delay)))
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    async fn sweep(&self, now: i64) {
        let due = {
            let mut last = self
                .last_sweep
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let due = last.elapsed() >= Duration::from_secs(60);
            if due {
                *last = Instant::now();
            }
            due
        };
        if due {
            let _ = sqlx::query(
                "DELETE FROM crm_login_failure WHERE key IN (SELECT key FROM crm_login_failure \
                 WHERE last_failure < $1 AND blocked_until < $2 LIMIT 1000)",
            )
            .bind(now.saturating_sub(micros(self.config.idle_window)))
            .bind(now)
            .execute(&self.pool)
            .await;
        }
    }
}

fn warn(e: &sqlx::Error) {
    tracing::warn!(error = %e, "shared login throttle unreachable: throttling per instance meanwhile");
}

#[async_trait]
impl LoginThrottler for PgLoginThrottle {
    async fn check(&self, account: &str, address: &str, now: Timestamp) -> Result<()> {
        match self.wait_micros(account, address, now.as_micros()).await {
            Ok(wait) if wait > 0 => Err(Error::new(ErrorKind::RateLimited)
                .with_retry_after(wait.unsigned_abs().div_ceil(1_000_000))),
            Ok(_) => Ok(()),
            Err(e) => {
                warn(&e);
                self.fallback.check(account, address, now)
            }
        }
    }

    async fn record_failure(&self, account: &str, address: &str, now: Timestamp) {
        let t = now.as_micros();
        let [a, b] = keys(account, address);
        for key in [a, b] {
            if let Err(e) = self.fail(key, t).await {
                warn(&e);
                self.fallback.record_failure(account, address, now);
                return;
            }
        }
        self.sweep(t).await;
    }

    async fn record_success(&self, account: &str, address: &str) {
        let [a, b] = keys(account, address);
        let done = sqlx::query("DELETE FROM crm_login_failure WHERE key = ANY($1)")
            .bind(vec![a, b])
            .execute(&self.pool)
            .await;
        if let Err(e) = done {
            warn(&e);
        }
        self.fallback.record_success(account, address);
    }
}
