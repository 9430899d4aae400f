//! Password hashing: bcrypt, off the async threads, on a bounded pool.
//!
//! * **Any length, any characters, never truncated.** bcrypt reads at most 72 bytes, so two
//!   passwords sharing their first 72 bytes would both verify. Our own hashes therefore hash
//!   `base64(SHA-256(password))` (44 bytes) with bcrypt, and are stored as
//!   `$crm-sha256$` followed by the bcrypt string.
//! * **Imported hashes** (`$2a$`, `$2b$`, `$2y$`, any cost, e.g. exported from Supabase or
//!   Atomic CRM) verify against the raw password; a password longer than 72 bytes never
//!   verifies against one (it could only match by truncation). After a successful login
//!   such a hash, or one of a lower cost than configured, is reported as needing a rehash.
//! * **Bounded.** Hashing (~250 ms of CPU at cost 12) runs on a few dedicated threads fed by a
//!   bounded queue. When the queue is full, callers get `Busy` (E4002, retry after 1 s)
//!   instead of piling up.

use std::sync::{Arc, mpsc};
use std::thread;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::error::{Error, ErrorKind, Result};
use crate::model::PasswordHash;

const OWN_PREFIX: &str = "$crm-sha256$";
const BCRYPT_MAX: usize = 72;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Settings of the password hasher.
#[derive(Debug, Clone)]
pub struct PasswordConfig {
    /// bcrypt cost of new hashes (default 12; tests use 4).
    pub cost: u32,
    /// Hashing threads (default: one less than the cores, at least one).
    pub workers: usize,
    /// Jobs that may wait for a thread before callers get `Busy` (default 64).
    pub queue: usize,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        let cores = thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        PasswordConfig {
            cost: 12,
            workers: cores.saturating_sub(1).max(1),
            queue: 64,
        }
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    /// The password matches.
    pub matches: bool,
    /// The hash should be replaced (imported format or lower cost).
    pub needs_rehash: bool,
}

/// Hashes and verifies passwords on its own bounded pool. Cheap to clone.
#[derive(Clone)]
pub struct PasswordHasher {
    cost: u32,
    jobs: Arc<mpsc::SyncSender<Job>>,
    dummy: Arc<std::sync::OnceLock<String>>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

fn prehash(password: &str) -> String {
    STANDARD.encode(Sha256::digest(password.as_bytes()))
}

fn cost_of(bcrypt_hash: &str) -> Option<u32> {
    bcrypt_hash.get(4..6)?.parse().ok()
}

impl PasswordHasher {
    /// Starts the hashing threads.
    pub fn new(config: &PasswordConfig) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Job>(config.queue.max(1));
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for i in 0..config.workers.max(1) {
            let rx = rx.clone();
            // The threads end when every sender (every clone of the hasher) is gone.
            let _ = thread::Builder::new()
                .name(format!("crm-password-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
        }
        PasswordHasher {
            cost: config.cost,
            jobs: Arc::new(tx),
            dummy: Arc::new(std::sync::OnceLock::new()),
        }
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => Error::new(ErrorKind::Busy).with_retry_after(1),
            mpsc::TrySendError::Disconnected(_) => Error::new(ErrorKind::Busy),
        })?;
        rx.await.map_err(|_| Error::new(ErrorKind::Busy))
    }

    /// Hashes a password with the configured cost.
    ///
    /// # Errors
    /// `Busy` when the pool's queue is full.
    pub async fn hash(&self, password: &str) -> Result<PasswordHash> {
        let pre = prehash(password);
        let cost = self.cost;
        let hashed = self
            .run(move || bcrypt::hash(pre, cost))
            .await?
            .map_err(|e| Error::new(ErrorKind::Busy).with_source(e.to_string()))?;
        Ok(PasswordHash(format!("{OWN_PREFIX}{hashed}")))
    }

    /// Verifies a password against a stored hash (our own format or an imported bcrypt one).
    /// A malformed hash never verifies.
    ///
    /// # Errors
    /// `Busy` when the pool's queue is full.
    pub async fn verify(&self, password: &str, stored: &PasswordHash) -> Result<Verification> {
        let stored = stored.0.clone();
        let configured = self.cost;
        let (input, hash, own) = match stored.strip_prefix(OWN_PREFIX) {
            Some(h) => (prehash(password), h.to_string(), true),
            None => (password.to_string(), stored.clone(), false),
        };
        if !own && input.len() > BCRYPT_MAX {
            // Only truncation could make it match: refuse, but spend the same time.
            self.spend_time().await?;
            return Ok(Verification {
                matches: false,
                needs_rehash: false,
            });
        }
        let matches = self
            .run(move || bcrypt::verify(input, &hash).unwrap_or(false))
            .await?;
        let needs_rehash = matches
            && (!own
                || cost_of(stored.strip_prefix(OWN_PREFIX).unwrap_or(&stored))
                    .is_none_or(|c| c < configured));
        Ok(Verification {
            matches,
            needs_rehash,
        })
    }

    /// Spends the time of one verification without a real hash (unknown accounts), so that
    /// failures take similar time whether or not the account exists.
    ///
    /// # Errors
    /// `Busy` when the pool's queue is full.
    pub async fn spend_time(&self) -> Result<()> {
        let cost = self.cost;
        let dummy = self.dummy.clone();
        self.run(move || {
            let hash =
                dummy.get_or_init(|| bcrypt::hash("crm-dummy-password", cost).unwrap_or_default());
            let _ = bcrypt::verify("not the password", hash);
        })
        .await
    }

    /// Whether `hash` is a format this hasher can verify (for imports).
    pub fn is_supported(hash: &str) -> bool {
        let raw = hash.strip_prefix(OWN_PREFIX).unwrap_or(hash);
        ["$2a$", "$2b$", "$2y$"].iter().any(|p| raw.starts_with(p))
            && raw.len() == 60
            && cost_of(raw).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> PasswordHasher {
        PasswordHasher::new(&PasswordConfig {
            cost: 4,
            workers: 1,
            queue: 4,
        })
    }

    #[tokio::test]
    async fn long_passwords_are_not_truncated() {
        let h = hasher();
        let a = "x".repeat(72) + "a";
        let b = "x".repeat(72) + "b";
        let stored = h.hash(&a).await.unwrap();
        assert!(h.verify(&a, &stored).await.unwrap().matches);
        assert!(
            !h.verify(&b, &stored).await.unwrap().matches,
            "sharing 72 bytes is not enough"
        );
        assert!(!h.verify("", &stored).await.unwrap().matches);
        let empty = h.hash("").await.unwrap();
        assert!(
            h.verify("", &empty).await.unwrap().matches,
            "any password, even empty"
        );
        let unicode = h.hash("пароль 🙂 \0 tab\t").await.unwrap();
        assert!(
            h.verify("пароль 🙂 \0 tab\t", &unicode)
                .await
                .unwrap()
                .matches
        );
    }

    #[tokio::test]
    async fn imported_hashes_verify_and_ask_for_rehash() {
        let h = hasher();
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            let b = bcrypt::hash_with_result("hunter2", 5).unwrap();
            let version = match prefix {
                "$2a$" => bcrypt::Version::TwoA,
                "$2y$" => bcrypt::Version::TwoY,
                _ => bcrypt::Version::TwoB,
            };
            let imported = PasswordHash(b.format_for_version(version));
            assert!(imported.0.starts_with(prefix));
            assert!(PasswordHasher::is_supported(&imported.0));
            let v = h.verify("hunter2", &imported).await.unwrap();
            assert_eq!(
                v,
                Verification {
                    matches: true,
                    needs_rehash: true
                }
            );
            assert!(!h.verify("hunter3", &imported).await.unwrap().matches);
        }
        let own = h.hash("pw").await.unwrap();
        assert_eq!(
            h.verify("pw", &own).await.unwrap(),
            Verification {
                matches: true,
                needs_rehash: false
            }
        );
        let stronger = PasswordHasher::new(&PasswordConfig {
            cost: 5,
            workers: 1,
            queue: 4,
        });
        assert!(
            stronger.verify("pw", &own).await.unwrap().needs_rehash,
            "lower cost than configured"
        );
        assert!(
            !h.verify("pw", &PasswordHash("garbage".into()))
                .await
                .unwrap()
                .matches
        );
        assert!(!PasswordHasher::is_supported("$1$md5"));
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy() {
        let h = PasswordHasher::new(&PasswordConfig {
            cost: 10,
            workers: 1,
            queue: 1,
        });
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..6 {
            let h = h.clone();
            set.spawn(async move { h.hash("pw").await });
        }
        let mut busy = 0;
        while let Some(r) = set.join_next().await {
            if let Err(e) = r.unwrap() {
                assert_eq!(e.kind(), ErrorKind::Busy);
                assert_eq!(e.retry_after_secs(), Some(1));
                busy += 1;
            }
        }
        assert!(
            busy >= 1,
            "with one worker and a queue of one, six at once cannot all wait"
        );
    }
}
