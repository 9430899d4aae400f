//! Identity: passwords, access tokens, rotating refresh tokens, sessions, password reset.
//!
//! [`Identity`] sits beside [`Crm`] and turns credentials into [`Actor`]s:
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

pub mod jwt;
pub mod password;
pub mod token;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use uuid::Uuid;

use crate::audit::AuditAction;
use crate::clock::Timestamp;
use crate::error::{Error, ErrorKind, Result};
use crate::id::{Id, UserId, WorkspaceId};
use crate::model::{
    ClientInfo, Credential, Entity, EntityKind, PasswordHash, ResetToken, RetiredToken,
    RevokeReason, Session, SessionId, User, UserInput, Workspace,
};
use crate::query::{Filter, Value};
use crate::ratelimit::{
    CoreClock, InProcessLimiter, LoginThrottle, LoginThrottleConfig, LoginThrottler, Policy,
    RateLimitConfig, RateLimiter,
};
use crate::service::{Actor, Crm};
use crate::storage::{Commit, Write};

pub use jwt::{AccessTokens, Claims, ExternalClaims, ExternalTokens};
pub use password::{PasswordConfig, PasswordHasher, Verification};
pub use token::SecretToken;

/// Retired refresh tokens remembered per session (for grace and reuse detection).
pub const RETIRED_KEPT: usize = 64;

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
    /// throttle's settings; a throttler given to [`Identity::with_limits`] has its own).
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

/// Delivers password-reset tokens (by email, usually); implemented by the host.
#[async_trait]
pub trait ResetDelivery: Send + Sync + 'static {
    /// Sends `token` to `user`; it is valid until `expires_at`.
    ///
    /// # Errors
    /// Whatever the host's delivery fails with; the reset request then fails too.
    async fn deliver(&self, user: &User, token: &SecretToken, expires_at: Timestamp) -> Result<()>;
}

/// A login request.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    /// The workspace to sign in to.
    pub workspace_id: WorkspaceId,
    /// Email (case-insensitive).
    pub email: String,
    /// Password, as typed.
    pub password: String,
    /// Where the request comes from.
    pub client: ClientInfo,
}

/// Tokens of a session, as answered by login and refresh.
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    /// The access token (JWT).
    pub access_token: String,
    /// Always `"Bearer"`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The refresh token (keep secret).
    #[serde(serialize_with = "expose_token")]
    pub refresh_token: SecretToken,
    /// The session.
    pub session_id: SessionId,
    /// The user.
    pub user: User,
}

fn expose_token<S: serde::Serializer>(
    t: &SecretToken,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(t.expose())
}

/// A session as shown to its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// Id.
    pub id: SessionId,
    /// Opened at.
    pub created_at: Timestamp,
    /// Last refreshed at.
    pub last_used_at: Timestamp,
    /// Expires at unless refreshed.
    pub expires_at: Timestamp,
    /// Where it was opened from.
    pub client: ClientInfo,
    /// Whether it is the session of the asking request.
    pub current: bool,
}

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

/// Session states by (workspace id, session id): (active, checked at).
#[derive(Default)]
struct SessionCache {
    entries: RwLock<HashMap<(Uuid, Uuid), (bool, Timestamp)>>,
    /// Bumped by every invalidation signal: a storage read that started before one must not
    /// be cached after it.
    generation: std::sync::atomic::AtomicU64,
}

/// Another instance revoked a session (or signals were lost): forget it (or everything).
impl crate::storage::InvalidationSink for SessionCache {
    fn invalidate(&self, signal: &crate::storage::Invalidation) {
        use crate::storage::Invalidation;
        let key = match signal {
            Invalidation::Session { workspace, id } => Some((workspace.uuid(), *id)),
            Invalidation::All => None,
            Invalidation::User { .. } => return,
        };
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut entries) = self.entries.write() {
            match key {
                Some(k) => {
                    entries.remove(&k);
                }
                None => entries.clear(),
            }
        }
    }
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

/// Most cached session states kept before the cache is cleared.
const SESSION_CACHE_MAX: usize = 100_000;

fn invalid_credentials() -> Error {
    Error::new(ErrorKind::InvalidCredentials)
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

    /// Creates a workspace whose first user (its admin) signs in with `password`, together
    /// with that admin's first session, in one commit: all of it or nothing.
    ///
    /// # Errors
    /// `Validation`, `Busy`; storage failures.
    pub async fn sign_up(
        &self,
        workspace_name: &str,
        admin: UserInput,
        password: &str,
        client: ClientInfo,
    ) -> Result<(Workspace, TokenResponse)> {
        self.sign_up_as(workspace_name, admin, password, client, false)
            .await
    }

    /// [`Identity::sign_up`] for an installation whose sign-up closes after the first
    /// workspace: the commit also asserts [`Write::FirstWorkspace`], so the storage itself
    /// decides which of several concurrent first sign-ups (on any number of instances
    /// sharing the database) wins; the others change nothing.
    ///
    /// # Errors
    /// `AlreadyInitialized` (E5006) when the installation already has a workspace; as
    /// [`Identity::sign_up`] otherwise.
    pub async fn sign_up_first(
        &self,
        workspace_name: &str,
        admin: UserInput,
        password: &str,
        client: ClientInfo,
    ) -> Result<(Workspace, TokenResponse)> {
        self.sign_up_as(workspace_name, admin, password, client, true)
            .await
    }

    async fn sign_up_as(
        &self,
        workspace_name: &str,
        admin: UserInput,
        password: &str,
        client: ClientInfo,
        first: bool,
    ) -> Result<(Workspace, TokenResponse)> {
        let hash = self.inner.hasher.hash(password).await?;
        let now = self.now();
        // Workspace, admin, password and first session: one commit, so a failure leaves
        // nothing behind (a workspace whose sign-up "failed" would close sign-up for good).
        let mut opened = None;
        let (workspace, user) = self
            .inner
            .crm
            .bootstrap_with(workspace_name, admin, |user, commit| {
                if first {
                    commit.writes.insert(0, Write::FirstWorkspace);
                }
                commit.writes.push(Write::Insert(
                    credential(user, hash.clone(), now).into_record(),
                ));
                opened = Some(self.new_session(user, client, commit)?);
                Ok(())
            })
            .await?;
        let (session, refresh) = opened.ok_or_else(|| Error::new(ErrorKind::StorageFailure))?;
        self.cache(session.workspace_id.uuid(), session.id.uuid(), true, now);
        let tokens = self.respond(user, &session, refresh)?;
        Ok((workspace, tokens))
    }

    /// Sets or replaces a user's password as an admin (e.g. right after creating the user),
    /// revoking the user's sessions.
    ///
    /// # Errors
    /// `Forbidden` for non-admins, `NotFound`, `Busy`; storage failures.
    pub async fn set_password(&self, admin: &Actor, user: UserId, password: &str) -> Result<()> {
        if admin.role() != crate::model::Role::Admin {
            return Err(Error::new(ErrorKind::Forbidden));
        }
        let target = self.inner.crm.users().get(admin, user).await?;
        let hash = self.inner.hasher.hash(password).await?;
        self.replace_password(
            &target,
            hash,
            None,
            RevokeReason::PasswordChanged,
            Commit::new(admin.workspace_id()),
        )
        .await
    }

    /// Creates a user with a password hash exported from another system (`$2a$`, `$2b$`,
    /// `$2y$`, any cost); it is upgraded to the configured cost at the first login.
    ///
    /// # Errors
    /// `Validation` for an unsupported hash format or bad user input, `Forbidden`,
    /// `Duplicate`; storage failures.
    pub async fn import_user(
        &self,
        admin: &Actor,
        input: UserInput,
        password_hash: &str,
    ) -> Result<User> {
        if !PasswordHasher::is_supported(password_hash) {
            return Err(Error::validation(vec![crate::FieldError::new(
                "password_hash",
                crate::FieldIssue::InvalidFormat,
            )]));
        }
        let hash = PasswordHash(password_hash.to_string());
        let now = self.now();
        self.inner
            .crm
            .users()
            .create_with(admin, input, |user| {
                vec![Write::Insert(
                    credential(user, hash.clone(), now).into_record(),
                )]
            })
            .await
    }

    /// Signs in.
    ///
    /// Attempts are limited per client address (the `Login` quota), and failures are
    /// throttled per account and per address (exponential delays after 5 failures); the
    /// throttle never blocks password resets.
    ///
    /// # Errors
    /// `InvalidCredentials` (always the same, whatever failed), `RateLimited` (with a retry
    /// delay), `Busy`; storage failures.
    pub async fn login(&self, request: LoginRequest) -> Result<TokenResponse> {
        let crm = &self.inner.crm;
        let ws = request.workspace_id;
        let email = request.email.trim().to_lowercase();
        let address = request.client.address.clone();
        self.limit(Policy::Login, address.as_deref()).await?;
        let account = format!("{ws}:{email}");
        // Without a known address, the account alone is throttled.
        let address_key = address
            .clone()
            .unwrap_or_else(|| format!("account:{account}"));
        self.inner
            .throttle
            .check(&account, &address_key, self.now())
            .await?;
        let user = crm
            .storage()
            .find_unique(ws, EntityKind::User, "email", &email)
            .await?
            .and_then(User::from_record);
        let cred = match &user {
            Some(u) => crm
                .storage()
                .get(ws, EntityKind::Credential, u.id.uuid())
                .await?
                .and_then(Credential::from_record),
            None => None,
        };
        let (Some(user), Some(cred)) = (user, cred) else {
            self.inner.hasher.spend_time().await?;
            self.inner
                .throttle
                .record_failure(&account, &address_key, self.now())
                .await;
            return Err(invalid_credentials());
        };
        let verdict = self
            .inner
            .hasher
            .verify(&request.password, &cred.password_hash)
            .await?;
        if !verdict.matches || user.disabled {
            self.inner
                .throttle
                .record_failure(&account, &address_key, self.now())
                .await;
            return Err(invalid_credentials());
        }
        self.inner
            .throttle
            .record_success(&account, &address_key)
            .await;
        let mut commit = Commit::new(ws);
        if verdict.needs_rehash {
            let hash = self.inner.hasher.hash(&request.password).await?;
            let mut upgraded = cred.clone();
            upgraded.password_hash = hash;
            upgraded.version += 1;
            upgraded.updated_at = self.now();
            commit.writes.push(Write::Update {
                record: upgraded.into_record(),
                expected_version: cred.version,
            });
        }
        let response = self.open_session(&user, request.client, commit).await?;
        // Bookkeeping, best effort and without a version bump (so nobody's pending edit of the
        // user conflicts with a login): a lost race only loses this timestamp.
        let mut seen = user.clone();
        seen.last_login_at = Some(self.now());
        let mut stamp = Commit::new(ws);
        stamp.writes.push(Write::Update {
            record: seen.clone().into_record(),
            expected_version: user.version,
        });
        let user = if crm.commit(stamp).await.is_ok() {
            seen
        } else {
            user
        };
        Ok(TokenResponse { user, ..response })
    }

    async fn open_session(
        &self,
        user: &User,
        client: ClientInfo,
        mut commit: Commit,
    ) -> Result<TokenResponse> {
        let (session, refresh) = self.new_session(user, client, &mut commit)?;
        self.inner.crm.commit(commit).await?;
        self.cache(
            session.workspace_id.uuid(),
            session.id.uuid(),
            true,
            self.now(),
        );
        self.respond(user.clone(), &session, refresh)
    }

    /// A new session for `user`: its insert and audit entry go into `commit`.
    fn new_session(
        &self,
        user: &User,
        client: ClientInfo,
        commit: &mut Commit,
    ) -> Result<(Session, SecretToken)> {
        let now = self.now();
        let refresh = SecretToken::generate(user.workspace_id)?;
        let client = ClientInfo {
            address: client.address.map(|a| a.chars().take(64).collect()),
            user_agent: client.user_agent.map(|a| a.chars().take(256).collect()),
        };
        let session = Session {
            id: SessionId::generate(),
            workspace_id: user.workspace_id,
            user_id: user.id,
            current_token: refresh.hash(),
            generation: 0,
            retired: Vec::new(),
            expires_at: now.plus(self.inner.config.refresh_ttl),
            revoked_at: None,
            revoke_reason: None,
            client,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let record = session.clone().into_record();
        commit.audit.push(self.inner.crm.audit_entry_for(
            user.id,
            AuditAction::Create,
            None,
            Some(&record),
        ));
        commit.writes.push(Write::Insert(record));
        Ok((session, refresh))
    }

    fn respond(
        &self,
        user: User,
        session: &Session,
        refresh: SecretToken,
    ) -> Result<TokenResponse> {
        let access = self.inner.tokens.issue(
            user.id.uuid(),
            user.workspace_id.uuid(),
            user.role,
            session.id.uuid(),
            self.now(),
        )?;
        Ok(TokenResponse {
            access_token: access,
            token_type: "Bearer",
            expires_in: self.inner.tokens.ttl_secs(),
            refresh_token: refresh,
            session_id: session.id,
            user,
        })
    }

    /// Exchanges a refresh token for new tokens (rotation; see the [module docs](self)).
    ///
    /// # Errors
    /// `RateLimited` past the `Refresh` quota of the client address, `TokenInvalid` for an
    /// unknown or malformed token, `SessionRevoked` for a revoked or expired session, `RefreshTokenReused` when a replaced token is presented after the
    /// grace window (the session is then revoked), `AccountDisabled`; storage failures.
    pub async fn refresh(&self, token: &str, client: &ClientInfo) -> Result<TokenResponse> {
        self.limit(Policy::Refresh, client.address.as_deref())
            .await?;
        let presented = SecretToken::from_client(token);
        let ws = presented
            .workspace()
            .ok_or_else(|| Error::new(ErrorKind::TokenInvalid))?;
        let hash = presented.hash();
        let crm = &self.inner.crm;
        let mut attempts = 0;
        loop {
            let now = self.now();
            let session = crm
                .storage()
                .find_unique(ws, EntityKind::Session, "refresh", &hash.0)
                .await?
                .and_then(Session::from_record)
                .ok_or_else(|| Error::new(ErrorKind::TokenInvalid))?;
            if !session.is_active(now) {
                return Err(Error::new(ErrorKind::SessionRevoked));
            }
            let user = crm
                .storage()
                .get(ws, EntityKind::User, session.user_id.uuid())
                .await?
                .and_then(User::from_record);
            let Some(user) = user.filter(|u| !u.disabled) else {
                return Err(Error::new(ErrorKind::AccountDisabled));
            };
            if session.current_token == hash {
                let child = presented.derive_child(&self.derivation_key(), ws);
                let mut next = session.clone();
                next.retired.push(RetiredToken {
                    hash: hash.clone(),
                    rotated_at: now,
                });
                if next.retired.len() > RETIRED_KEPT {
                    next.retired.remove(0);
                }
                next.current_token = child.hash();
                next.generation += 1;
                next.expires_at = now.plus(self.inner.config.refresh_ttl);
                next.updated_at = now;
                next.version += 1;
                let mut commit = Commit::new(ws);
                commit.writes.push(Write::Update {
                    record: next.clone().into_record(),
                    expected_version: session.version,
                });
                match crm.commit(commit).await {
                    Ok(()) => return self.respond(user, &next, child),
                    // Someone rotated it meanwhile (another tab): look again, now inside grace.
                    Err(e) if e.kind() == ErrorKind::VersionConflict && attempts < 10 => {
                        attempts += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            let retired = session
                .retired
                .iter()
                .find(|r| r.hash == hash)
                .ok_or_else(|| Error::new(ErrorKind::TokenInvalid))?;
            if now.as_micros() - retired.rotated_at.as_micros()
                <= secs_micros(self.inner.config.refresh_grace)
            {
                // Inside the grace window: hand out the session's current token, no branch.
                let key = self.derivation_key();
                let mut t = presented.clone();
                for _ in 0..=RETIRED_KEPT {
                    t = t.derive_child(&key, ws);
                    if t.hash() == session.current_token {
                        return self.respond(user, &session, t);
                    }
                }
                return Err(Error::new(ErrorKind::TokenInvalid));
            }
            // Reuse after the grace window: treat as theft and end the whole family.
            match self.revoke(&session, RevokeReason::TokenReuse, None).await {
                Ok(()) => return Err(Error::new(ErrorKind::RefreshTokenReused)),
                Err(e) if e.kind() == ErrorKind::VersionConflict && attempts < 10 => {
                    attempts += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Verifies an access token, including that its session is still active.
    ///
    /// # Errors
    /// `TokenInvalid`, `TokenExpired`, `SessionRevoked`; storage failures.
    pub async fn verify_access_token(&self, token: &str) -> Result<Claims> {
        let now = self.now();
        let claims = self.inner.tokens.verify(token, now)?;
        if !self.session_active(claims.ws, claims.sid, now).await? {
            return Err(Error::new(ErrorKind::SessionRevoked));
        }
        Ok(claims)
    }

    /// Verifies an access token and resolves the acting user through [`Crm::actor`] (a role
    /// change or disabling applies at once on this instance, within the actor cache's TTL on
    /// others).
    ///
    /// # Errors
    /// As [`Identity::verify_access_token`], plus `AccountDisabled`/`Unauthenticated`.
    pub async fn authenticate(&self, token: &str) -> Result<(Actor, Claims)> {
        let claims = self.verify_access_token(token).await?;
        let actor = self
            .inner
            .crm
            .actor(
                WorkspaceId::from_uuid(claims.ws),
                UserId::from_uuid(claims.sub),
            )
            .await?;
        Ok((actor, claims))
    }

    /// Whether tokens of an external identity provider are accepted in `workspace`.
    pub fn accepts_external(&self, workspace: WorkspaceId) -> bool {
        self.inner.external.contains_key(&workspace) || self.inner.external_default.is_some()
    }

    /// Resolves the user of an external identity provider's token in `workspace` (see
    /// [`ExternalTokenConfig`]): verifies it, finds the user its claim names, and — when
    /// provisioning is on — creates an unknown user as `read_only`.
    ///
    /// # Errors
    /// `TokenInvalid` (also when the workspace accepts no external tokens, the naming claim
    /// is missing or malformed, or the e-mail is unverified), `TokenExpired`,
    /// `Unauthenticated` for an unknown user (without provisioning, or without an e-mail to
    /// provision from), `AccountDisabled`; storage failures.
    pub async fn authenticate_external(
        &self,
        workspace: WorkspaceId,
        token: &str,
    ) -> Result<Actor> {
        self.authenticate_external_claims(workspace, token)
            .await
            .map(|(actor, _)| actor)
    }

    /// [`Identity::authenticate_external`], answering the token's claims too.
    ///
    /// # Errors
    /// As [`Identity::authenticate_external`].
    pub async fn authenticate_external_claims(
        &self,
        workspace: WorkspaceId,
        token: &str,
    ) -> Result<(Actor, jwt::ExternalClaims)> {
        let (verifier, config) = self
            .inner
            .external
            .get(&workspace)
            .or(self.inner.external_default.as_ref())
            .ok_or_else(|| Error::new(ErrorKind::TokenInvalid))?;
        let claims = verifier.verify(token, self.now())?;
        let email = claims
            .email
            .as_deref()
            .map(|e| e.trim().to_lowercase())
            .filter(|e| e.contains('@'));
        let found = match config.user_claim {
            ExternalUserClaim::Id => {
                let id = Uuid::parse_str(&claims.sub)
                    .map_err(|_| Error::new(ErrorKind::TokenInvalid))?;
                self.inner.crm.actor(workspace, UserId::from_uuid(id)).await
            }
            ExternalUserClaim::Email => {
                let email = email
                    .as_deref()
                    .ok_or_else(|| Error::new(ErrorKind::TokenInvalid))?;
                if claims.email_verified == Some(false) {
                    return Err(Error::new(ErrorKind::TokenInvalid));
                }
                self.external_user_by_email(workspace, email).await
            }
        };
        let actor = match found {
            Err(e) if e.kind() == ErrorKind::Unauthenticated && config.provision => {
                self.provision_external(workspace, config.user_claim, &claims, email)
                    .await
            }
            other => other,
        }?;
        Ok((actor, claims))
    }

    async fn external_user_by_email(&self, workspace: WorkspaceId, email: &str) -> Result<Actor> {
        let user = self
            .inner
            .crm
            .storage()
            .find_unique(workspace, EntityKind::User, "email", email)
            .await?
            .and_then(User::from_record)
            .ok_or_else(|| Error::new(ErrorKind::Unauthenticated))?;
        self.inner.crm.actor(workspace, user.id).await
    }

    /// Creates the user of an external token as `read_only`. Two first requests of the same
    /// new user may race: the loser's insert fails on the unique e-mail, and it then finds
    /// the winner's user.
    async fn provision_external(
        &self,
        workspace: WorkspaceId,
        claim: ExternalUserClaim,
        claims: &jwt::ExternalClaims,
        email: Option<String>,
    ) -> Result<Actor> {
        if claims.email_verified == Some(false) {
            return Err(Error::new(ErrorKind::Unauthenticated));
        }
        let Some(email) = email else {
            return Err(Error::new(ErrorKind::Unauthenticated));
        };
        if self
            .inner
            .crm
            .storage()
            .get(workspace, EntityKind::Workspace, workspace.uuid())
            .await?
            .is_none()
        {
            return Err(Error::new(ErrorKind::Unauthenticated));
        }
        let (first_name, last_name) = match claims.name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => match n.split_once(' ') {
                Some((f, l)) => (f.to_owned(), l.trim().to_owned()),
                None => (n.to_owned(), String::new()),
            },
            _ => (String::new(), String::new()),
        };
        let input = UserInput {
            email: email.clone(),
            first_name,
            last_name,
            role: Some(crate::model::Role::ReadOnly),
            avatar: None,
        };
        let mut user = User::from_input(input);
        if claim == ExternalUserClaim::Id {
            user.id = UserId::from_uuid(
                Uuid::parse_str(&claims.sub).map_err(|_| Error::new(ErrorKind::TokenInvalid))?,
            );
        }
        let now = self.now();
        user.workspace_id = workspace;
        user.created_at = now;
        user.updated_at = now;
        user.version = 1;
        let inserted = self
            .inner
            .crm
            .users()
            .insert(None, user, Commit::new(workspace))
            .await;
        match inserted {
            Ok(user) => self.inner.crm.actor(workspace, user.id).await,
            Err(e)
                if matches!(e.kind(), ErrorKind::Validation | ErrorKind::Duplicate)
                    && claim == ExternalUserClaim::Email =>
            {
                // Lost a race to the same user's other first request (or the e-mail is
                // invalid, and the lookup fails again).
                self.external_user_by_email(workspace, &email).await
            }
            // The e-mail belongs to another user, or is invalid.
            Err(e) if matches!(e.kind(), ErrorKind::Validation | ErrorKind::Duplicate) => {
                Err(Error::new(ErrorKind::Unauthenticated))
            }
            Err(e) => Err(e),
        }
    }

    async fn session_active(&self, ws: Uuid, sid: Uuid, now: Timestamp) -> Result<bool> {
        let ttl = secs_micros(self.inner.config.revocation_cache_ttl);
        if let Ok(cache) = self.inner.sessions.entries.read()
            && let Some((active, at)) = cache.get(&(ws, sid))
            && now.as_micros() - at.as_micros() <= ttl
        {
            return Ok(*active);
        }
        let generation = self
            .inner
            .sessions
            .generation
            .load(std::sync::atomic::Ordering::SeqCst);
        let record = self
            .inner
            .crm
            .storage()
            .get(WorkspaceId::from_uuid(ws), EntityKind::Session, sid)
            .await?;
        let active = record
            .and_then(Session::from_record)
            .is_some_and(|s| s.is_active(now));
        // An invalidation signal that arrived during the read may concern this very
        // session: then the state read may be the old one, and is not kept.
        if self
            .inner
            .sessions
            .generation
            .load(std::sync::atomic::Ordering::SeqCst)
            == generation
        {
            self.cache(ws, sid, active, now);
        }
        Ok(active)
    }

    fn cache(&self, ws: Uuid, sid: Uuid, active: bool, now: Timestamp) {
        if let Ok(mut cache) = self.inner.sessions.entries.write() {
            if cache.len() >= SESSION_CACHE_MAX {
                cache.clear();
            }
            cache.insert((ws, sid), (active, now));
        }
    }

    async fn revoke(
        &self,
        session: &Session,
        reason: RevokeReason,
        actor: Option<UserId>,
    ) -> Result<()> {
        let mut commit = Commit::new(session.workspace_id);
        push_revocation(
            &self.inner.crm,
            &mut commit,
            session,
            reason,
            actor,
            self.now(),
        );
        self.inner.crm.commit(commit).await?;
        self.cache(
            session.workspace_id.uuid(),
            session.id.uuid(),
            false,
            self.now(),
        );
        Ok(())
    }

    /// Ends the session of the request (logout).
    ///
    /// # Errors
    /// `SessionRevoked` if already ended; storage failures.
    pub async fn logout(&self, actor: &Actor, session: SessionId) -> Result<()> {
        let s = self.own_session(actor, session).await?;
        if !s.is_active(self.now()) {
            return Err(Error::new(ErrorKind::SessionRevoked));
        }
        self.revoke(&s, RevokeReason::Logout, Some(actor.user_id()))
            .await
    }

    /// Revokes one of the actor's own sessions (e.g. a lost device).
    ///
    /// # Errors
    /// `NotFound` for someone else's or an unknown session; storage failures.
    pub async fn revoke_session(&self, actor: &Actor, session: SessionId) -> Result<()> {
        let s = self.own_session(actor, session).await?;
        if s.is_active(self.now()) {
            self.revoke(&s, RevokeReason::Revoked, Some(actor.user_id()))
                .await?;
        }
        Ok(())
    }

    /// Logs the actor out everywhere.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn logout_all(&self, actor: &Actor) -> Result<()> {
        let mut commit = Commit::new(actor.workspace_id());
        let ended = push_user_revocations(
            &self.inner.crm,
            &mut commit,
            actor.workspace_id(),
            actor.user_id(),
            None,
            RevokeReason::Revoked,
            Some(actor.user_id()),
        )
        .await?;
        self.inner.crm.commit(commit).await?;
        for sid in ended {
            self.cache(actor.workspace_id().uuid(), sid, false, self.now());
        }
        Ok(())
    }

    async fn own_session(&self, actor: &Actor, session: SessionId) -> Result<Session> {
        self.inner
            .crm
            .storage()
            .get(actor.workspace_id(), EntityKind::Session, session.uuid())
            .await?
            .and_then(Session::from_record)
            .filter(|s| s.user_id == actor.user_id())
            .ok_or_else(|| Error::not_found(EntityKind::Session))
    }

    /// The actor's active sessions, newest first; `current` marks the asking one.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn sessions(
        &self,
        actor: &Actor,
        current: Option<SessionId>,
    ) -> Result<Vec<SessionInfo>> {
        let now = self.now();
        let mut out: Vec<SessionInfo> =
            active_sessions(&self.inner.crm, actor.workspace_id(), actor.user_id(), now)
                .await?
                .into_iter()
                .map(|s| SessionInfo {
                    id: s.id,
                    created_at: s.created_at,
                    last_used_at: s.updated_at,
                    expires_at: s.expires_at,
                    client: s.client,
                    current: Some(s.id) == current,
                })
                .collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(out)
    }

    /// Changes the actor's password; every other session is revoked.
    ///
    /// # Errors
    /// `WrongPassword` if `current_password` is wrong, `Busy`; storage failures.
    pub async fn change_password(
        &self,
        actor: &Actor,
        session: Option<SessionId>,
        current_password: &str,
        new_password: &str,
    ) -> Result<()> {
        let crm = &self.inner.crm;
        let user = crm.users().get(actor, actor.user_id()).await?;
        let cred = crm
            .storage()
            .get(actor.workspace_id(), EntityKind::Credential, user.id.uuid())
            .await?
            .and_then(Credential::from_record);
        let ok = match &cred {
            Some(c) => {
                self.inner
                    .hasher
                    .verify(current_password, &c.password_hash)
                    .await?
                    .matches
            }
            None => {
                self.inner.hasher.spend_time().await?;
                false
            }
        };
        if !ok {
            return Err(Error::new(ErrorKind::WrongPassword));
        }
        let hash = self.inner.hasher.hash(new_password).await?;
        self.replace_password(
            &user,
            hash,
            session,
            RevokeReason::PasswordChanged,
            Commit::new(actor.workspace_id()),
        )
        .await
    }

    async fn replace_password(
        &self,
        user: &User,
        hash: PasswordHash,
        keep: Option<SessionId>,
        reason: RevokeReason,
        mut commit: Commit,
    ) -> Result<()> {
        let crm = &self.inner.crm;
        let now = self.now();
        let existing = crm
            .storage()
            .get(user.workspace_id, EntityKind::Credential, user.id.uuid())
            .await?
            .and_then(Credential::from_record);
        match existing {
            Some(c) => {
                let mut next = c.clone();
                next.password_hash = hash;
                next.version += 1;
                next.updated_at = now;
                let (before, after) = (c.clone().into_record(), next.into_record());
                commit.audit.push(crm.audit_entry_for(
                    user.id,
                    AuditAction::Update,
                    Some(&before),
                    Some(&after),
                ));
                commit.writes.push(Write::Update {
                    record: after,
                    expected_version: c.version,
                });
            }
            None => {
                let record = credential(user, hash, now).into_record();
                commit.audit.push(crm.audit_entry_for(
                    user.id,
                    AuditAction::Create,
                    None,
                    Some(&record),
                ));
                commit.writes.push(Write::Insert(record));
            }
        }
        let ended = push_user_revocations(
            crm,
            &mut commit,
            user.workspace_id,
            user.id,
            keep,
            reason,
            None,
        )
        .await?;
        crm.commit(commit).await?;
        for sid in ended {
            self.cache(user.workspace_id.uuid(), sid, false, now);
        }
        Ok(())
    }

    /// Starts a password reset. Always answers `Ok` for a well-formed request, whether or
    /// not the email belongs to an active user; only then is a token created and delivered.
    /// Limited per client address and per email (the `PasswordReset` quota), never by the
    /// login throttle.
    ///
    /// # Errors
    /// `RateLimited`, storage failures, delivery failures.
    pub async fn request_password_reset(
        &self,
        workspace: WorkspaceId,
        email: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        let crm = &self.inner.crm;
        let email = email.trim().to_lowercase();
        self.limit(Policy::PasswordReset, client.address.as_deref())
            .await?;
        self.limit(
            Policy::PasswordReset,
            Some(&format!("email:{workspace}:{email}")),
        )
        .await?;
        let Some(user) = crm
            .storage()
            .find_unique(workspace, EntityKind::User, "email", &email)
            .await?
            .and_then(User::from_record)
        else {
            return Ok(());
        };
        if user.disabled {
            return Ok(());
        }
        let now = self.now();
        let token = SecretToken::generate(workspace)?;
        let expires_at = now.plus(self.inner.config.reset_ttl);
        let reset = ResetToken {
            id: Id::generate(),
            workspace_id: workspace,
            user_id: user.id,
            token_hash: token.hash(),
            expires_at,
            used_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let mut commit = Commit::new(workspace);
        commit.writes.push(Write::Insert(reset.into_record()));
        crm.commit(commit).await?;
        self.inner.delivery.deliver(&user, &token, expires_at).await
    }

    /// Completes a password reset: sets the new password and revokes every session, once.
    ///
    /// # Errors
    /// `ResetTokenInvalid` for an unknown, used or expired token, `Busy`; storage failures.
    pub async fn confirm_password_reset(&self, token: &str, new_password: &str) -> Result<()> {
        let crm = &self.inner.crm;
        let presented = SecretToken::from_client(token);
        let bad = || Error::new(ErrorKind::ResetTokenInvalid);
        let ws = presented.workspace().ok_or_else(bad)?;
        let reset = crm
            .storage()
            .find_unique(ws, EntityKind::ResetToken, "token", &presented.hash().0)
            .await?
            .and_then(ResetToken::from_record)
            .ok_or_else(bad)?;
        let now = self.now();
        if reset.used_at.is_some() || now >= reset.expires_at {
            return Err(bad());
        }
        let user = crm
            .storage()
            .get(ws, EntityKind::User, reset.user_id.uuid())
            .await?
            .and_then(User::from_record)
            .ok_or_else(bad)?;
        let hash = self.inner.hasher.hash(new_password).await?;
        let mut used = reset.clone();
        used.used_at = Some(now);
        used.updated_at = now;
        used.version += 1;
        let mut commit = Commit::new(ws);
        // Version-checked: of two concurrent confirmations only one gets through.
        commit.writes.push(Write::Update {
            record: used.into_record(),
            expected_version: reset.version,
        });
        self.replace_password(&user, hash, None, RevokeReason::PasswordChanged, commit)
            .await
            .map_err(|e| {
                if e.kind() == ErrorKind::VersionConflict {
                    bad()
                } else {
                    e
                }
            })
    }
}

fn secs_micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn credential(user: &User, hash: PasswordHash, now: Timestamp) -> Credential {
    Credential {
        id: user.id.cast(),
        workspace_id: user.workspace_id,
        password_hash: hash,
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

/// The user's sessions that are still usable.
pub(crate) async fn active_sessions(
    crm: &Crm,
    ws: WorkspaceId,
    user: UserId,
    now: Timestamp,
) -> Result<Vec<Session>> {
    Ok(crm
        .all_matching_in(
            ws,
            EntityKind::Session,
            Filter::eq("user_id", Value::Id(user.uuid())),
        )
        .await?
        .into_iter()
        .filter_map(Session::from_record)
        .filter(|s| s.is_active(now))
        .collect())
}

/// Adds the revocation of one session to a commit.
pub(crate) fn push_revocation(
    crm: &Crm,
    commit: &mut Commit,
    session: &Session,
    reason: RevokeReason,
    actor: Option<UserId>,
    now: Timestamp,
) {
    let mut ended = session.clone();
    ended.revoked_at = Some(now);
    ended.revoke_reason = Some(reason);
    ended.updated_at = now;
    ended.version += 1;
    let (before, after) = (session.clone().into_record(), ended.into_record());
    commit.audit.push(crm.audit_entry_for(
        actor.unwrap_or(session.user_id),
        AuditAction::Delete,
        Some(&before),
        Some(&after),
    ));
    commit.writes.push(Write::Update {
        record: after,
        expected_version: session.version,
    });
}

/// Adds the revocation of every active session of a user (but `keep`) to a commit; returns
/// the ids it ends.
pub(crate) async fn push_user_revocations(
    crm: &Crm,
    commit: &mut Commit,
    ws: WorkspaceId,
    user: UserId,
    keep: Option<SessionId>,
    reason: RevokeReason,
    actor: Option<UserId>,
) -> Result<Vec<Uuid>> {
    let now = crm.now();
    let mut ended = Vec::new();
    for s in active_sessions(crm, ws, user, now).await? {
        if Some(s.id) != keep {
            push_revocation(crm, commit, &s, reason, actor, now);
            ended.push(s.id.uuid());
        }
    }
    Ok(ended)
}
