//! Identity: passwords, access tokens, rotating refresh tokens, sessions, password reset.
//!
//! [`Identity`] sits beside [`Crm`] and turns credentials into [`Actor`](crate::service::Actor)s:
//!
//! * **Login** (`email` + password in a workspace) answers an access token (HS256 JWT, 15
//!   minutes), a refresh token and the user. Every failure — unknown email, wrong password,
//!   disabled user — is the same `InvalidCredentials` error after the same amount of bcrypt
//!   work.
//! * **Sessions** are token families. A refresh token is opaque (256 random bits), stored
//!   only hashed, valid 30 days, and rotated on every use: the session's current token is
//!   replaced by its successor (see [`token`] for why successors are derived) in one
//!   version-checked commit. Presenting a replaced token inside the grace window (10 s)
//!   returns the session's current token — no new branch; after it, the whole session is
//!   revoked (`RefreshTokenReused`). A session that keeps refreshing never expires.
//! * **Revocation** reaches access tokens at once: every verification checks the token's
//!   session in a small cache in front of the store. Revocations made through this instance
//!   update the cache immediately; another instance's revocation is seen at once when the
//!   storage delivers invalidation signals (PostgreSQL's LISTEN/NOTIFY, see
//!   [`crate::storage::invalidation`]) and otherwise — or while the signal connection is
//!   down — within [`IdentityConfig::revocation_cache_ttl`] (so are revocations made by the
//!   users service when it disables someone). Disabling a user or changing a role applies to
//!   the next request on this instance, and on others at once with signals, else within
//!   [`crate::CrmConfig::actor_cache_ttl`], because [`Identity::authenticate`] resolves the
//!   user through [`Crm::actor`].
//! * **Password change** needs the current password and revokes every other session;
//!   **reset** uses a single-use 256-bit token (stored hashed, valid 1 hour) delivered by
//!   the host's [`ResetDelivery`], and revokes every session.
//! * **External tokens**: HS256 JWTs of another identity provider whose `sub` is a crm user
//!   id (Better Auth style), per workspace, when configured.
//!
//! The code reads bottom-up, one file a concern: `config.rs` (settings and secrets), this
//! module (the [`Identity`] service and its construction), `login.rs` (sign-up, login and
//! the tokens a new session answers), `sessions.rs` (refresh, access-token verification,
//! the revocation cache, logout), `external.rs` (other providers' tokens) and
//! `credentials.rs` (setting, changing and resetting passwords); `jwt`, `password` and
//! `token` are the primitives under them.

mod config;
mod credentials;
mod external;
pub mod jwt;
mod login;
pub mod password;
mod sessions;
pub mod token;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::id::WorkspaceId;
use crate::ratelimit::{
    CoreClock, InProcessLimiter, LoginThrottle, LoginThrottler, Policy, RateLimiter,
};
use crate::service::Crm;

pub use config::{ExternalTokenConfig, ExternalUserClaim, IdentityConfig, Secret};
pub use credentials::ResetDelivery;
pub use jwt::{AccessTokens, Claims, ExternalClaims, ExternalTokens};
pub use login::{LoginRequest, TokenResponse};
pub use password::{PasswordConfig, PasswordHasher, Verification};
use sessions::SessionCache;
pub use sessions::{RETIRED_KEPT, SessionInfo};
pub use token::SecretToken;

struct Inner {
    crm: Crm,
    config: IdentityConfig,
    tokens: AccessTokens,
    external: HashMap<WorkspaceId, (ExternalTokens, ExternalTokenConfig)>,
    external_default: Option<(ExternalTokens, ExternalTokenConfig)>,
    hasher: PasswordHasher,
    delivery: Arc<dyn ResetDelivery>,
    limiter: Arc<dyn RateLimiter>,
    throttle: Arc<dyn LoginThrottler>,
    sessions: Arc<SessionCache>,
}

/// The identity service. Cheap to clone.
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Identity {
    /// The identity layer over an engine, with the in-process rate limiter (on the engine's
    /// clock).
    ///
    /// # Errors
    /// `Validation` for invalid rate-limit or throttle settings.
    pub fn new(crm: Crm, config: IdentityConfig, delivery: Arc<dyn ResetDelivery>) -> Result<Self> {
        let limiter =
            InProcessLimiter::with_clock(config.rate_limits.clone(), CoreClock::new(crm.clock()))?;
        Self::with_limiter(crm, config, delivery, Arc::new(limiter))
    }

    /// The identity layer with a given rate limiter (e.g. one shared by several instances).
    ///
    /// # Errors
    /// `Validation` for invalid throttle settings.
    pub fn with_limiter(
        crm: Crm,
        config: IdentityConfig,
        delivery: Arc<dyn ResetDelivery>,
        limiter: Arc<dyn RateLimiter>,
    ) -> Result<Self> {
        let throttle = Arc::new(LoginThrottle::new(config.login_throttle.clone())?);
        Self::with_limits(crm, config, delivery, limiter, throttle)
    }

    /// The identity layer with a given rate limiter and login throttle (e.g. both shared by
    /// several instances); [`IdentityConfig::login_throttle`] is then ignored.
    ///
    /// # Errors
    /// None today; `Result` for settings checks to come.
    pub fn with_limits(
        crm: Crm,
        config: IdentityConfig,
        delivery: Arc<dyn ResetDelivery>,
        limiter: Arc<dyn RateLimiter>,
        throttle: Arc<dyn LoginThrottler>,
    ) -> Result<Self> {
        let tokens = AccessTokens::new(
            config.jwt_secret.expose(),
            &config.issuer,
            &config.audience,
            secs(config.access_ttl),
        );
        let verifier = |c: &ExternalTokenConfig| {
            (
                ExternalTokens::new(
                    c.secret.expose(),
                    c.issuer.as_deref(),
                    c.audience.as_deref(),
                ),
                c.clone(),
            )
        };
        let external = config
            .external
            .iter()
            .map(|(ws, c)| (*ws, verifier(c)))
            .collect();
        let external_default = config.external_default.as_ref().map(verifier);
        let hasher = PasswordHasher::new(&config.password);
        let sessions = Arc::new(SessionCache::default());
        let sink: Arc<dyn crate::storage::InvalidationSink> = sessions.clone();
        crm.storage().subscribe_invalidations(Arc::downgrade(&sink));
        // The engine's own commits (a disabled user's sessions end in the facade's commit).
        crm.subscribe_local_invalidations(Arc::downgrade(&sink));
        Ok(Identity {
            inner: Arc::new(Inner {
                crm,
                config,
                tokens,
                external,
                external_default,
                hasher,
                delivery,
                limiter,
                throttle,
                sessions,
            }),
        })
    }

    /// Applies a policy's quota to a key (no-op without a key).
    async fn limit(&self, policy: Policy, key: Option<&str>) -> Result<()> {
        match key {
            Some(k) => self
                .inner
                .limiter
                .check(policy, k)
                .await
                .into_result()
                .map(|_| ()),
            None => Ok(()),
        }
    }

    /// The engine.
    pub fn crm(&self) -> &Crm {
        &self.inner.crm
    }

    /// The password hasher (shared pool).
    pub fn hasher(&self) -> &PasswordHasher {
        &self.inner.hasher
    }

    fn now(&self) -> Timestamp {
        self.inner.crm.now()
    }

    /// A 32-byte key for another purpose, derived from the JWT secret with HKDF-SHA256
    /// (RFC 5869; the secret as input keying material, `label` as the `info`). Distinct
    /// labels give independent keys, and a key reveals nothing about the secret or the
    /// other keys. Every instance configured with the same JWT secret derives the same key,
    /// and so does the same instance after a restart: crm-http signs its CSRF tokens with
    /// `derive_key(b"crm-http/csrf/v1")` unless the host configures a key of its own.
    #[must_use]
    pub fn derive_key(&self, label: &[u8]) -> [u8; 32] {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(
            Some(b"crm-identity-kdf"),
            self.inner.config.jwt_secret.expose(),
        );
        let mut key = [0u8; 32];
        hk.expand(label, &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        key
    }

    fn derivation_key(&self) -> Vec<u8> {
        let mut k = b"crm-refresh-successor:".to_vec();
        k.extend_from_slice(self.inner.config.jwt_secret.expose());
        k
    }
}
