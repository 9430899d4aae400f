//! Internal records of the identity layer: sessions, credentials and password-reset tokens.
//!
//! They are records like any other so that every identity change is one atomic, version
//! checked [`crate::Commit`] on any backend (rotation, revocation, single-use resets), but
//! the facade never lists or returns them through the generic record services. Secrets are
//! stored only as hashes, and their fields are left out of audit entries and `Debug`.

use serde::{Deserialize, Serialize};

use super::{Configuration, Entity, EntityKind, entity_common, opt_time};
use super::{Id, UserId, WorkspaceId};
use crate::clock::Timestamp;
use crate::error::FieldError;
use crate::query::Value;

/// Id of a [`Session`].
pub type SessionId = Id<Session>;

/// A hash (hex SHA-256) of a secret token; prints redacted.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenHash(pub String);

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(<redacted>)")
    }
}

/// Where a session was opened from (shown in "my sessions").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// Client address as seen by the host (after trusted-proxy handling).
    pub address: Option<String>,
    /// User agent, truncated to 256 characters.
    pub user_agent: Option<String>,
}

/// A refresh token that was replaced by a newer one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredToken {
    /// Its hash.
    pub hash: TokenHash,
    /// When it was rotated.
    pub rotated_at: Timestamp,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    /// The user logged out.
    Logout,
    /// The user logged out everywhere, or revoked this session from another one.
    Revoked,
    /// The password changed or was reset.
    PasswordChanged,
    /// The user was disabled.
    UserDisabled,
    /// A rotated refresh token was used again after the grace window (likely theft).
    TokenReuse,
}

/// A login session: one refresh-token family. Rotation replaces `current_token` and retires
/// the old one; a session lives while it keeps being refreshed and dies 30 days (by default)
/// after its last refresh, or when revoked.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Id (the `sid` claim of access tokens).
    pub id: SessionId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Owner.
    pub user_id: UserId,
    /// Hash of the refresh token that is valid now.
    pub current_token: TokenHash,
    /// How many rotations happened.
    pub generation: u64,
    /// Recently replaced tokens (newest last, capped), for grace and reuse detection.
    pub retired: Vec<RetiredToken>,
    /// When the current refresh token expires.
    pub expires_at: Timestamp,
    /// When revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// Why it was revoked.
    pub revoke_reason: Option<RevokeReason>,
    /// Where it was opened from.
    pub client: ClientInfo,
    /// Opened at.
    pub created_at: Timestamp,
    /// Last refresh (or opening).
    pub updated_at: Timestamp,
    /// Version.
    pub version: u64,
}

impl Session {
    /// Whether the session can still be used at `now`.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("workspace_id", &self.workspace_id)
            .field("user_id", &self.user_id)
            .field("generation", &self.generation)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .field("revoke_reason", &self.revoke_reason)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Entity for Session {
    const KIND: EntityKind = EntityKind::Session;
    entity_common!(Session, no_soft_delete);

    fn field(&self, name: &str) -> Value {
        match name {
            "created_at" => Value::Time(self.created_at),
            "updated_at" => Value::Time(self.updated_at),
            "user_id" => Value::Id(self.user_id.uuid()),
            "revoked_at" => opt_time(self.revoked_at),
            _ => Value::Null,
        }
    }
    fn unique_keys(&self) -> Vec<(&'static str, String)> {
        // Every token the session has issued finds it: the current one to refresh, retired
        // ones to converge (inside the grace window) or to detect reuse (after it).
        std::iter::once(("refresh", self.current_token.0.clone()))
            .chain(self.retired.iter().map(|r| ("refresh", r.hash.0.clone())))
            .collect()
    }
    fn label(&self) -> String {
        "session".into()
    }
    fn owner(&self) -> Option<UserId> {
        Some(self.user_id)
    }
    fn validate(&self, _config: &Configuration) -> Vec<FieldError> {
        Vec::new()
    }
}

/// A stored password hash, in a PHC-like string (see [`crate::identity`]); prints redacted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(pub String);

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// A user's password hash; its id is the user's id. Never leaves the core.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// Equal to the user id.
    pub id: Id<Credential>,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// The hash.
    pub password_hash: PasswordHash,
    /// Set.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Version.
    pub version: u64,
}

impl Entity for Credential {
    const KIND: EntityKind = EntityKind::Credential;
    entity_common!(Credential, no_soft_delete);

    fn field(&self, name: &str) -> Value {
        match name {
            "created_at" => Value::Time(self.created_at),
            "updated_at" => Value::Time(self.updated_at),
            _ => Value::Null,
        }
    }
    fn label(&self) -> String {
        "password".into()
    }
    fn validate(&self, _config: &Configuration) -> Vec<FieldError> {
        Vec::new()
    }
}

/// A single-use password-reset token (stored hashed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetToken {
    /// Id.
    pub id: Id<ResetToken>,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Whose password it resets.
    pub user_id: UserId,
    /// Hash of the token.
    pub token_hash: TokenHash,
    /// Valid until.
    pub expires_at: Timestamp,
    /// When it was used (tokens are single-use).
    pub used_at: Option<Timestamp>,
    /// Issued at.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Version.
    pub version: u64,
}

impl Entity for ResetToken {
    const KIND: EntityKind = EntityKind::ResetToken;
    entity_common!(ResetToken, no_soft_delete);

    fn field(&self, name: &str) -> Value {
        match name {
            "created_at" => Value::Time(self.created_at),
            "updated_at" => Value::Time(self.updated_at),
            "user_id" => Value::Id(self.user_id.uuid()),
            _ => Value::Null,
        }
    }
    fn unique_keys(&self) -> Vec<(&'static str, String)> {
        vec![("token", self.token_hash.0.clone())]
    }
    fn label(&self) -> String {
        "password reset".into()
    }
    fn owner(&self) -> Option<UserId> {
        Some(self.user_id)
    }
    fn validate(&self, _config: &Configuration) -> Vec<FieldError> {
        Vec::new()
    }
}
