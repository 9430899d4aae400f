//! Access tokens: HS256 JWTs.
//!
//! Claims: `sub` (user), `ws` (workspace), `role`, `sid` (session), `iat`, `exp`, `iss`,
//! `aud`. Verification pins HS256 (no `none`, no RS256/HS256 confusion), requires
//! `exp`/`iat`/`sub`/`iss`/`aud`, checks issuer and audience, and checks time with the
//! engine's injectable clock (not the system clock), rejecting tokens that are expired or
//! issued in the future. Claims of the wrong JSON type are rejected like a bad signature.
//!
//! jsonwebtoken's crypto backend comes from its `rust_crypto` feature; a host that also
//! enables its `aws_lc_rs` feature must install a provider itself (see jsonwebtoken's docs).
//!
//! ## Verified tokens are remembered
//!
//! A client sends the same access token with every request for its whole lifetime (15
//! minutes by default), and checking its HMAC signature and decoding its claims is the
//! largest single cost of a cached read (about a third of the instructions of `GET` one
//! record, `benches/load/allocs.rs` under callgrind). [`AccessTokens`] therefore keeps the
//! claims of the tokens it verified, keyed by the token's exact text: a token is found there
//! only if it is byte for byte a token whose signature and claims were checked, so a forged
//! or altered token always takes the full check. The times (`exp`, `iat`) are checked on
//! every use against the engine's clock, found or not, so a remembered token still expires
//! on time; revocation is not this module's concern (it is checked per request by the
//! identity layer either way). The memory is bounded: at most [`VERIFIED_CACHE`] tokens,
//! and when that many are held the whole set is dropped and refilled by use.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::error::{Error, ErrorKind, Result};
use crate::model::Role;

/// Tolerated clock difference for `iat` in the future, in seconds.
pub const IAT_LEEWAY_SECS: i64 = 30;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// User id.
    pub sub: Uuid,
    /// Workspace id.
    pub ws: Uuid,
    /// Role when issued (informational: the engine re-reads the user on each request).
    pub role: Role,
    /// Session id (checked against revoked sessions on every verification).
    pub sid: Uuid,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
}

/// Claims accepted from an external identity provider (Better Auth style): `sub`, `exp`
/// and `iat` are required (plus `iss`/`aud` when configured); `email`, `email_verified` and
/// `name` are read when present. Other claims are ignored; a claim of the wrong JSON type
/// makes the token invalid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalClaims {
    /// The provider's subject: a crm user id when users are mapped by id.
    pub sub: String,
    /// The user's e-mail address, if the provider says it.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the provider verified that address (`false` refuses mapping by e-mail).
    #[serde(default)]
    pub email_verified: Option<bool>,
    /// The user's display name, if any (used to name a provisioned user).
    #[serde(default)]
    pub name: Option<String>,
    /// Issued at.
    pub iat: i64,
    /// Expires at.
    pub exp: i64,
}

/// Verified tokens remembered at most (see the [module docs](self)); about 2 MB when full.
pub const VERIFIED_CACHE: usize = 4096;

/// Issues and verifies access tokens with one HS256 secret. Clones share one set of
/// remembered verified tokens (see the [module docs](self)).
#[derive(Clone)]
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_secs: i64,
    verified: Arc<RwLock<HashMap<Box<str>, Claims>>>,
}

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokens")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

fn invalid() -> Error {
    Error::new(ErrorKind::TokenInvalid)
}

/// Checks `iat`/`exp` against `now` with the engine's clock.
fn check_times(iat: i64, exp: i64, now: Timestamp) -> Result<()> {
    let now = now.as_micros().div_euclid(1_000_000);
    if now >= exp {
        return Err(Error::new(ErrorKind::TokenExpired));
    }
    if iat > now + IAT_LEEWAY_SECS {
        return Err(invalid());
    }
    Ok(())
}

fn strict_validation(required: &[&str]) -> Validation {
    let mut v = Validation::new(Algorithm::HS256);
    v.set_required_spec_claims(required);
    // Time is checked with the engine's clock, not the system clock.
    v.validate_exp = false;
    v.validate_nbf = false;
    v.leeway = 0;
    v
}

impl AccessTokens {
    /// Tokens signed with `secret` (at least 32 bytes recommended), valid `ttl_secs`.
    pub fn new(secret: &[u8], issuer: &str, audience: &str, ttl_secs: i64) -> Self {
        let mut validation = strict_validation(&["exp", "iat", "sub", "iss", "aud"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        AccessTokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            ttl_secs,
            verified: Arc::default(),
        }
    }

    /// Lifetime of new tokens, in seconds.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Signs a token for a session at `now`.
    ///
    /// # Errors
    /// `TokenInvalid` if signing fails (not expected with an HMAC key).
    pub fn issue(
        &self,
        user: Uuid,
        workspace: Uuid,
        role: Role,
        session: Uuid,
        now: Timestamp,
    ) -> Result<String> {
        let iat = now.as_micros().div_euclid(1_000_000);
        let claims = Claims {
            sub: user,
            ws: workspace,
            role,
            sid: session,
            iat,
            exp: iat + self.ttl_secs,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| invalid().with_source(e))
    }

    /// Verifies signature, algorithm, issuer, audience and times (not revocation: see
    /// [`crate::identity::Identity::verify_access_token`]).
    ///
    /// # Errors
    /// `TokenExpired` or `TokenInvalid`.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Claims> {
        if token.len() > 4096 {
            return Err(invalid());
        }
        // A poisoned lock only means another thread panicked while holding it: the map
        // holds nothing but fully verified entries, so it stays usable.
        let known = self
            .verified
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(token)
            .cloned();
        if let Some(claims) = known {
            check_times(claims.iat, claims.exp, now)?;
            return Ok(claims);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| invalid().with_source(e))?;
        check_times(data.claims.iat, data.claims.exp, now)?;
        let mut verified = self
            .verified
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if verified.len() >= VERIFIED_CACHE {
            verified.clear();
        }
        verified.insert(token.into(), data.claims.clone());
        Ok(data.claims)
    }

    /// How many verified tokens are remembered now (for tests and diagnostics).
    pub fn remembered(&self) -> usize {
        self.verified
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

/// Verifies tokens of an external identity provider sharing an HS256 secret.
#[derive(Clone)]
pub struct ExternalTokens {
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for ExternalTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExternalTokens(<secret>)")
    }
}

impl ExternalTokens {
    /// A verifier for `secret`, optionally pinning issuer and audience.
    pub fn new(secret: &[u8], issuer: Option<&str>, audience: Option<&str>) -> Self {
        let mut required = vec!["exp", "iat", "sub"];
        let mut validation = strict_validation(&[]);
        if let Some(iss) = issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        match audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        ExternalTokens {
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Verifies an external token.
    ///
    /// # Errors
    /// `TokenExpired` or `TokenInvalid`.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<ExternalClaims> {
        if token.len() > 8192 {
            return Err(invalid());
        }
        let data = jsonwebtoken::decode::<ExternalClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| invalid().with_source(e))?;
        check_times(data.claims.iat, data.claims.exp, now)?;
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_micros(secs * 1_000_000)
    }

    fn tokens() -> AccessTokens {
        AccessTokens::new(b"a test secret of at least 32 bytes!!", "crm", "crm", 900)
    }

    fn issue(t: &AccessTokens, now: Timestamp) -> String {
        t.issue(
            Uuid::now_v7(),
            Uuid::now_v7(),
            Role::Sales,
            Uuid::now_v7(),
            now,
        )
        .unwrap()
    }

    #[test]
    fn a_remembered_token_still_expires_on_time() {
        let t = tokens();
        let now = at(1_800_000_000);
        let token = issue(&t, now);
        let first = t.verify(&token, now).unwrap();
        assert_eq!(t.remembered(), 1);
        assert_eq!(t.verify(&token, at(1_800_000_899)).unwrap(), first);
        let err = t.verify(&token, at(1_800_000_900)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TokenExpired);
        // Issued in the future (a clock far behind): refused from memory too.
        let err = t.verify(&token, at(1_799_999_000)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TokenInvalid);
    }

    #[test]
    fn an_altered_copy_of_a_remembered_token_is_refused() {
        let t = tokens();
        let now = at(1_800_000_000);
        let token = issue(&t, now);
        t.verify(&token, now).unwrap();
        let (head, sig) = token.rsplit_once('.').unwrap();
        // Another signature, the same claims.
        let flipped = if sig.starts_with('A') { 'B' } else { 'A' };
        let forged = format!("{head}.{flipped}{}", &sig[1..]);
        assert_eq!(
            t.verify(&forged, now).unwrap_err().kind(),
            ErrorKind::TokenInvalid
        );
        // Other claims with the remembered signature.
        let (header, payload) = head.split_once('.').unwrap();
        let other = issue(&t, now);
        let other_payload = other.split('.').nth(1).unwrap();
        assert_ne!(other_payload, payload);
        let spliced = format!("{header}.{other_payload}.{sig}");
        assert_eq!(
            t.verify(&spliced, now).unwrap_err().kind(),
            ErrorKind::TokenInvalid
        );
        // A token of another secret with the same claims is refused by this one.
        let stranger =
            AccessTokens::new(b"another secret of at least 32 bytes!", "crm", "crm", 900);
        let foreign = issue(&stranger, now);
        assert_eq!(
            t.verify(&foreign, now).unwrap_err().kind(),
            ErrorKind::TokenInvalid
        );
        assert_eq!(
            t.remembered(),
            1,
            "only the token that passed the check is kept"
        );
    }

    #[test]
    fn the_memory_of_verified_tokens_is_bounded() {
        let t = tokens();
        let now = at(1_800_000_000);
        for _ in 0..=VERIFIED_CACHE {
            let token = issue(&t, now);
            t.verify(&token, now).unwrap();
            assert!(t.remembered() <= VERIFIED_CACHE);
        }
        assert_eq!(
            t.remembered(),
            1,
            "full: the set is dropped and refilled by use"
        );
        // Clones share what they remember.
        let token = issue(&t, now);
        t.clone().verify(&token, now).unwrap();
        assert_eq!(t.remembered(), 2);
    }
}
