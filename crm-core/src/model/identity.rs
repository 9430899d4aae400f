//! Internal records of the identity layer: sessions, credentials and password-reset tokens.
//!
//! They are records like any other so that every identity change is one atomic, version
//! checked [`crate::Commit`] on any backend (rotation, revocation, single-use resets), but
//! the facade never lists or returns them through the generic record services. Secrets are
//! stored only as hashes, and their fields are left out of audit entries and `Debug`.

use serde::{Deserialize, Serialize};

use serde_json::{Value as Json, json};

use super::UserId;
use super::declare::{Rules, entity};
use super::field::rules::*;
use super::field::{Checked, Schema, enum_schema, fixed_schemas, object_schema};
use crate::clock::Timestamp;

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

entity! {
    /// A login session: one refresh-token family. Rotation replaces `current_token` and retires
    /// the old one; a session lives while it keeps being refreshed and dies 30 days (by default)
    /// after its last refresh, or when revoked. Opened at `created_at`; `updated_at` is its last
    /// refresh.
    #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Session(SessionId, keep) {
        /// Owner.
        user_id: UserId => core, filter, ANY, owner;
        /// Hash of the refresh token that is valid now.
        current_token: TokenHash => core, none, ANY;
        /// How many rotations happened.
        generation: u64 => core, none, ANY;
        /// Recently replaced tokens (newest last, capped), for grace and reuse detection.
        retired: Vec<RetiredToken> => core, none, ANY;
        /// When the current refresh token expires.
        expires_at: Timestamp => core, none, ANY;
        /// When revoked, if it was.
        revoked_at: Option<Timestamp> => core, none, ANY;
        /// Why it was revoked.
        revoke_reason: Option<RevokeReason> => core, none, ANY;
        /// Where it was opened from.
        client: ClientInfo => core, none, ANY, personal;
    }
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

impl Rules for Session {
    fn label(&self) -> String {
        "session".into()
    }
    fn unique_keys(&self) -> Vec<(&'static str, String)> {
        // Every token the session has issued finds it: the current one to refresh, retired
        // ones to converge (inside the grace window) or to detect reuse (after it).
        std::iter::once(("refresh", self.current_token.0.clone()))
            .chain(self.retired.iter().map(|r| ("refresh", r.hash.0.clone())))
            .collect()
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

entity! {
    /// A user's password hash; its id is the user's id. Never leaves the core. Set at
    /// `created_at`, last changed at `updated_at`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Credential(CredentialId, keep) {
        /// The hash.
        password_hash: PasswordHash => core, none, ANY;
    }
}

impl Rules for Credential {
    fn label(&self) -> String {
        "password".into()
    }
}

entity! {
    /// A single-use password-reset token (stored hashed), issued at `created_at`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ResetToken(ResetTokenId, keep) {
        /// Whose password it resets.
        user_id: UserId => core, filter, ANY, owner;
        /// Hash of the token.
        token_hash: TokenHash => core, none, ANY;
        /// Valid until.
        expires_at: Timestamp => core, none, ANY;
        /// When it was used (tokens are single-use).
        used_at: Option<Timestamp> => core, none, ANY;
    }
}

impl Rules for ResetToken {
    fn label(&self) -> String {
        "password reset".into()
    }
    fn unique_keys(&self) -> Vec<(&'static str, String)> {
        vec![("token", self.token_hash.0.clone())]
    }
}

impl Checked for TokenHash {}
impl Checked for PasswordHash {}
impl Checked for RetiredToken {}
impl Checked for RevokeReason {}
impl Checked for ClientInfo {}

fixed_schemas! {
    TokenHash => json!({ "type": "string", "description": "Hex SHA-256 of a secret token." });
    PasswordHash => json!({ "type": "string", "description": "A PHC-like password hash string." });
}
impl Schema for RetiredToken {
    fn schema() -> Json {
        object_schema(&[
            ("hash", TokenHash::schema(), true),
            ("rotated_at", Timestamp::schema(), true),
        ])
    }
}
impl Schema for RevokeReason {
    fn schema() -> Json {
        enum_schema(&[
            RevokeReason::Logout,
            RevokeReason::Revoked,
            RevokeReason::PasswordChanged,
            RevokeReason::UserDisabled,
            RevokeReason::TokenReuse,
        ])
    }
}
impl Schema for ClientInfo {
    fn schema() -> Json {
        object_schema(&[
            ("address", Option::<String>::schema(), false),
            ("user_agent", Option::<String>::schema(), false),
        ])
    }
}
