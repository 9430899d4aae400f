//! Opaque secret tokens (refresh and password-reset tokens).
//!
//! A token is `base64url(workspace id (16 bytes) ‖ secret (32 bytes))`: 256 bits of secret,
//! plus the workspace so the store can look the token up within its workspace. Only the
//! SHA-256 of the whole token is ever stored.
//!
//! A rotated refresh token's successor is *derived*, not drawn: `HMAC-SHA256(key, parent)`.
//! Whoever presents the parent inside the grace window can therefore be handed the same
//! child again (two tabs refreshing at once converge on one token; 20 concurrent refreshes
//! get one child) although the store keeps only hashes. Without the server's key the child
//! cannot be computed from the parent.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::id::WorkspaceId;
use crate::model::TokenHash;

const SECRET_LEN: usize = 32;
const TOKEN_LEN: usize = 16 + SECRET_LEN;

/// A secret token as handed to a client; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

impl std::fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretToken(<redacted>)")
    }
}

impl SecretToken {
    /// A fresh random token for a workspace.
    ///
    /// # Errors
    /// `StorageFailure`-free; fails only if the OS random source fails (`Busy`).
    pub fn generate(workspace: WorkspaceId) -> Result<Self> {
        let mut secret = [0u8; SECRET_LEN];
        getrandom::fill(&mut secret)
            .map_err(|e| Error::new(ErrorKind::Busy).with_source(e.to_string()))?;
        Ok(Self::from_parts(workspace, &secret))
    }

    fn from_parts(workspace: WorkspaceId, secret: &[u8; SECRET_LEN]) -> Self {
        let mut raw = [0u8; TOKEN_LEN];
        raw[..16].copy_from_slice(workspace.as_bytes());
        raw[16..].copy_from_slice(secret);
        SecretToken(URL_SAFE_NO_PAD.encode(raw))
    }

    /// Wraps a token received from a client (not yet checked).
    pub fn from_client(token: impl Into<String>) -> Self {
        SecretToken(token.into())
    }

    /// The token text, to hand to the client.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The workspace encoded in the token, if the token is well formed.
    pub fn workspace(&self) -> Option<WorkspaceId> {
        if self.0.len() > 128 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(&self.0).ok()?;
        if raw.len() != TOKEN_LEN {
            return None;
        }
        let ws: [u8; 16] = raw[..16].try_into().ok()?;
        Some(WorkspaceId::from_uuid(uuid::Uuid::from_bytes(ws)))
    }

    /// The stored form: hex SHA-256 of the token text.
    pub fn hash(&self) -> TokenHash {
        let digest = Sha256::digest(self.0.as_bytes());
        TokenHash(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The successor of this token under `key` (see the [module docs](self)).
    pub fn derive_child(&self, key: &[u8], workspace: WorkspaceId) -> Self {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(self.0.as_bytes());
        let out: [u8; SECRET_LEN] = mac.finalize().into_bytes().into();
        Self::from_parts(workspace, &out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_their_workspace_and_hash_stably() {
        let ws = WorkspaceId::generate();
        let t = SecretToken::generate(ws).unwrap();
        assert_eq!(t.workspace(), Some(ws));
        assert_eq!(t.expose().len(), 64);
        assert_eq!(t.hash(), SecretToken::from_client(t.expose()).hash());
        assert_ne!(t, SecretToken::generate(ws).unwrap());
        assert!(!format!("{t:?}").contains(t.expose()));
        for bad in ["", "x", "!!!!", &"A".repeat(64), &"A".repeat(500)] {
            let parsed = SecretToken::from_client(bad).workspace();
            assert!(parsed.is_none() || bad.len() == 64);
        }
    }

    #[test]
    fn children_are_deterministic_per_key() {
        let ws = WorkspaceId::generate();
        let t = SecretToken::generate(ws).unwrap();
        assert_eq!(t.derive_child(b"k1", ws), t.derive_child(b"k1", ws));
        assert_ne!(t.derive_child(b"k1", ws), t.derive_child(b"k2", ws));
        assert_eq!(t.derive_child(b"k1", ws).workspace(), Some(ws));
    }
}
