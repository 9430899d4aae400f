//! Sessions: refresh-token rotation, access-token verification against the revocation
//! cache, logout and revocation.

use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::error::{Error, ErrorKind, Result};
use crate::id::{UserId, WorkspaceId};
use crate::model::{
    ClientInfo, Entity, EntityKind, RetiredToken, RevokeReason, Session, SessionId, User,
};
use crate::ratelimit::Policy;
use crate::security::{SecurityEvent, SecurityEventType};
use crate::service::{Actor, Crm};
use crate::storage::{Commit, Write};

use super::{Claims, Identity, SecretToken, TokenResponse};

/// Retired refresh tokens remembered per session (for grace and reuse detection).
pub const RETIRED_KEPT: usize = 64;

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

/// Session states by (workspace id, session id): whether it is active, checked at.
pub(super) struct SessionCache(pub(super) crate::storage::invalidation::KeyedCache<bool>);

impl Default for SessionCache {
    fn default() -> Self {
        SessionCache(crate::storage::invalidation::KeyedCache::new(
            SESSION_CACHE_MAX,
            crate::storage::invalidation::Holds::Sessions,
        ))
    }
}

/// Another instance revoked a session (or signals were lost): forget it (or everything).
impl crate::storage::InvalidationSink for SessionCache {
    fn invalidate(&self, signal: &crate::storage::Invalidation) {
        self.0.invalidate(signal);
    }
}

/// Most cached session states kept before the cache is cleared.
const SESSION_CACHE_MAX: usize = 100_000;

impl Identity {
    /// Exchanges a refresh token for new tokens (rotation; see the [module docs](crate::identity)).
    ///
    /// # Errors
    /// `RateLimited` past the `Refresh` quota of the client address (recorded as a
    /// `rate_limited` security event, policy `refresh`), `TokenInvalid` for an
    /// unknown or malformed token, `SessionRevoked` for a revoked or expired session, `RefreshTokenReused` when a replaced token is presented after the
    /// grace window (the session is then revoked), `AccountDisabled`; storage failures.
    pub async fn refresh(&self, token: &str, client: &ClientInfo) -> Result<TokenResponse> {
        let presented = SecretToken::from_client(token);
        if let Err(e) = self.limit(Policy::Refresh, client.address.as_deref()).await {
            // A `rate_limited` event (sampled) in the workspace the token names; a token
            // naming none has no workspace to record it in. No storage read on a refusal.
            if let Some(ws) = presented.workspace() {
                self.inner.crm.security_event(
                    SecurityEvent::new(ws, SecurityEventType::RateLimited, self.now())
                        .address(client.address.as_deref())
                        .with("policy", "refresh"),
                );
            }
            return Err(e);
        }
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
                Ok(()) => {
                    crm.security_event(
                        SecurityEvent::new(ws, SecurityEventType::RefreshTokenReuse, now)
                            .user(session.user_id)
                            .address(client.address.as_deref())
                            .with("session_id", session.id.to_string()),
                    );
                    return Err(Error::new(ErrorKind::RefreshTokenReused));
                }
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

    async fn session_active(&self, ws: Uuid, sid: Uuid, now: Timestamp) -> Result<bool> {
        let ttl = secs_micros(self.inner.config.revocation_cache_ttl);
        let sessions = &self.inner.sessions.0;
        if let Some(active) = sessions.fresh((ws, sid), now.as_micros(), ttl) {
            return Ok(active);
        }
        let generation = sessions.generation();
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
        sessions.put_if_current(generation, (ws, sid), active, now.as_micros());
        Ok(active)
    }

    pub(super) fn cache(&self, ws: Uuid, sid: Uuid, active: bool, now: Timestamp) {
        self.inner
            .sessions
            .0
            .put((ws, sid), active, now.as_micros());
    }

    /// [`Self::cache`] for `session`, as of now.
    pub(super) fn cache_session(&self, session: &Session, active: bool) {
        self.cache(
            session.workspace_id.uuid(),
            session.id.uuid(),
            active,
            self.now(),
        );
    }

    async fn revoke(
        &self,
        session: &Session,
        reason: RevokeReason,
        actor: Option<UserId>,
    ) -> Result<()> {
        let mut commit = Commit::new(session.workspace_id);
        self.inner
            .crm
            .push_revocation(&mut commit, session, reason, actor, self.now());
        self.inner.crm.commit(commit).await?;
        self.cache_session(session, false);
        revoked_event(
            &self.inner.crm,
            session.workspace_id,
            session.user_id,
            session.id.uuid(),
            reason,
            actor,
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
        let ended = self
            .inner
            .crm
            .push_user_revocations(
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
            revoked_event(
                &self.inner.crm,
                actor.workspace_id(),
                actor.user_id(),
                sid,
                RevokeReason::Revoked,
                Some(actor.user_id()),
            );
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
        let mut out: Vec<SessionInfo> = self
            .inner
            .crm
            .active_sessions(actor.workspace_id(), actor.user_id(), now)
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
}

fn secs_micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Records that a session was revoked (after its commit).
pub(crate) fn revoked_event(
    crm: &Crm,
    ws: WorkspaceId,
    user: UserId,
    session: Uuid,
    reason: RevokeReason,
    actor: Option<UserId>,
) {
    let reason = serde_json::to_value(reason).unwrap_or(serde_json::Value::Null);
    let mut e = SecurityEvent::new(ws, SecurityEventType::SessionRevoked, crm.now())
        .user(user)
        .with("session_id", session.to_string())
        .with("reason", reason);
    e.actor_id = actor.filter(|a| *a != user);
    crm.security_event(e);
}
