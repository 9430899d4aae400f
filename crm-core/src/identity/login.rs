//! Sign-up and login: checking a password, opening a session, answering its tokens.

use serde::Serialize;

use crate::audit::AuditAction;
use crate::error::{Error, ErrorKind, Result};
use crate::id::WorkspaceId;
use crate::model::{
    ClientInfo, Credential, Entity, EntityKind, Session, SessionId, User, UserInput, Workspace,
};
use crate::ratelimit::Policy;
use crate::security::{SecurityEvent, SecurityEventType};
use crate::storage::{Commit, Write};

use super::credentials::credential;
use super::{Identity, SecretToken};

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

fn invalid_credentials() -> Error {
    Error::new(ErrorKind::InvalidCredentials)
}

impl Identity {
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
        let event = |kind: SecurityEventType| {
            SecurityEvent::new(ws, kind, self.now())
                .address(address.as_deref())
                .email(&email)
        };
        if let Err(e) = self.limit(Policy::Login, address.as_deref()).await {
            crm.security_event(event(SecurityEventType::RateLimited).with("policy", "login"));
            return Err(e);
        }
        let account = format!("{ws}:{email}");
        // Without a known address, the account alone is throttled.
        let address_key = address
            .clone()
            .unwrap_or_else(|| format!("account:{account}"));
        if let Err(e) = self
            .inner
            .throttle
            .check(&account, &address_key, self.now())
            .await
        {
            crm.security_event(event(SecurityEventType::LoginThrottled));
            return Err(e);
        }
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
            crm.security_event(
                event(SecurityEventType::LoginFailed).with("reason", "unknown_account"),
            );
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
            let reason = if verdict.matches {
                "disabled"
            } else {
                "wrong_password"
            };
            crm.security_event(
                event(SecurityEventType::LoginFailed)
                    .user(user.id)
                    .with("reason", reason),
            );
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
        let new_address = self.new_address(&user, address.as_deref()).await;
        let response = self.open_session(&user, request.client, commit).await?;
        crm.security_event(
            event(SecurityEventType::LoginSucceeded)
                .user(user.id)
                .with("session_id", response.session_id.to_string()),
        );
        if new_address {
            let mut anomaly = event(SecurityEventType::Anomaly)
                .user(user.id)
                .with("rule", "new_address")
                .with("trigger", "login_succeeded");
            anomaly.email = None;
            crm.record_anomaly(anomaly);
        }
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

    /// Whether `address` is one none of the user's kept sessions came from (compared in
    /// full and truncated, since ended sessions keep only the network), for the
    /// `new_address` anomaly rule. A user's very first session is not new; nor is anything
    /// when the rule is off, the address unknown or the sessions unreadable.
    async fn new_address(&self, user: &User, address: Option<&str>) -> bool {
        let crm = &self.inner.crm;
        let Some(address) = address else {
            return false;
        };
        if !crm.anomaly_rules().enabled || !crm.anomaly_rules().new_address {
            return false;
        }
        let user_id = crate::query::Value::Id(user.id.uuid());
        let Ok(sessions) = crm
            .all_where::<Session>(user.workspace_id, "user_id", user_id)
            .await
        else {
            return false;
        };
        let truncated = crate::model::truncate_address(address);
        !sessions.is_empty()
            && !sessions.iter().any(|s| {
                s.client
                    .address
                    .as_deref()
                    .is_some_and(|a| a == address || a == truncated)
            })
    }

    async fn open_session(
        &self,
        user: &User,
        client: ClientInfo,
        mut commit: Commit,
    ) -> Result<TokenResponse> {
        // The workspace's data minimisation decides what of the client is stored.
        let details = self
            .inner
            .crm
            .load_config(user.workspace_id)
            .await
            .map(|c| c.retention.client_details)
            .unwrap_or_default();
        let client = ClientInfo {
            address: details.address(client.address.as_deref()),
            user_agent: details.user_agent(client.user_agent.as_deref()),
        };
        let (session, refresh) = self.new_session(user, client, &mut commit)?;
        self.inner.crm.commit(commit).await?;
        self.cache_session(&session, true);
        self.respond(user.clone(), &session, refresh)
    }

    /// A new session for `user`: its insert and audit entry go into `commit`.
    pub(super) fn new_session(
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
        let mut entry =
            self.inner
                .crm
                .audit_entry_for(user.id, AuditAction::Create, None, Some(&record));
        // The audit trail outlives the session: it keeps only the address's network.
        for change in &mut entry.changes {
            if change.field == "client"
                && let Some(address) = change.after.get_mut("address")
                && let Some(a) = address.as_str()
            {
                *address = serde_json::Value::String(crate::model::truncate_address(a));
            }
        }
        commit.audit.push(entry);
        commit.writes.push(Write::Insert(record));
        Ok((session, refresh))
    }

    pub(super) fn respond(
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
}
