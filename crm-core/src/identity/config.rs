//! Settings of the identity layer: secrets, token lifetimes, external providers.

use std::collections::HashMap;
use std::time::Duration;

use crate::id::WorkspaceId;
use crate::ratelimit::{LoginThrottleConfig, RateLimitConfig};

use super::PasswordConfig;

/// A secret given by configuration; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }
    /// The bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Which claim of an external token names the crm user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExternalUserClaim {
    /// `sub` is the crm user id (Better Auth sharing the user table).
    #[default]
    Id,
    /// `email` is the crm user's e-mail address (case-insensitive); a token whose
    /// `email_verified` is `false` is refused.
    Email,
}

/// Accepting another identity provider's tokens in a workspace.
///
/// The provider's token is taken as it is: HS256 only (the algorithm is pinned, `none` and
/// asymmetric algorithms are refused), its own `exp` with no leeway and no extension (there
/// is no refresh: the client gets a new token from its provider), `iat` not in the future.
#[derive(Debug, Clone)]
pub struct ExternalTokenConfig {
    /// The shared HS256 secret.
    pub secret: Secret,
    /// Required `iss`, if any.
    pub issuer: Option<String>,
    /// Required `aud`, if any.
    pub audience: Option<String>,
    /// The claim naming the user (default: `sub` is the user id).
    pub user_claim: ExternalUserClaim,
    /// Create a user the workspace does not know yet, as `read_only`, from the token's
    /// `email` (and `name`); an admin grants more. Default `false`: unknown users are
    /// refused (`Unauthenticated`).
    pub provision: bool,
}

impl ExternalTokenConfig {
    /// Tokens signed with `secret`, any issuer and audience, users by id, no provisioning.
    pub fn new(secret: Secret) -> Self {
        ExternalTokenConfig {
            secret,
            issuer: None,
            audience: None,
            user_claim: ExternalUserClaim::Id,
            provision: false,
        }
    }
}

/// Settings of the identity layer.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// The HS256 secret of access tokens (32+ random bytes; from the environment in the
    /// server). Also keys the derivation of refresh-token successors.
    pub jwt_secret: Secret,
    /// `iss` of access tokens.
    pub issuer: String,
    /// `aud` of access tokens.
    pub audience: String,
    /// Access-token lifetime (15 minutes).
    pub access_ttl: Duration,
    /// Refresh-token lifetime; a session unused this long dies (30 days).
    pub refresh_ttl: Duration,
    /// How long a replaced refresh token still converges on the current one (10 s).
    pub refresh_grace: Duration,
    /// Password-reset token lifetime (1 hour).
    pub reset_ttl: Duration,
    /// How long a session's state may be served from the cache (2 s): the most another
    /// instance's revocation can take to be seen here when no invalidation signal reaches
    /// this instance (a storage without signals, or its signal connection down).
    pub revocation_cache_ttl: Duration,
    /// Password hashing.
    pub password: PasswordConfig,
    /// External identity providers, per workspace.
    pub external: HashMap<WorkspaceId, ExternalTokenConfig>,
    /// The external identity provider of every workspace without an entry in
    /// [`IdentityConfig::external`] (a host that configures one provider before its
    /// workspace exists). Default none.
    pub external_default: Option<ExternalTokenConfig>,
    /// Quotas of the in-process limiter (login, refresh and reset per address; reset also
    /// per email). Ignored when a limiter is supplied.
    pub rate_limits: RateLimitConfig,
    /// Brute-force protection of login, per account and per address (the in-process
    /// throttle's settings; a throttler given to [`Identity::with_limits`](super::Identity::with_limits) has its own).
    pub login_throttle: LoginThrottleConfig,
}

impl IdentityConfig {
    /// The defaults of DESIGN §5 with the given secret.
    pub fn new(jwt_secret: Secret) -> Self {
        IdentityConfig {
            jwt_secret,
            issuer: "crm".into(),
            audience: "crm".into(),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_grace: Duration::from_secs(10),
            reset_ttl: Duration::from_secs(3600),
            revocation_cache_ttl: Duration::from_secs(2),
            password: PasswordConfig::default(),
            external: HashMap::new(),
            external_default: None,
            rate_limits: RateLimitConfig::default(),
            login_throttle: LoginThrottleConfig::default(),
        }
    }
}
