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

/// Issues and verifies access tokens with one HS256 secret.
#[derive(Clone)]
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_secs: i64,
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
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| invalid().with_source(e))?;
        check_times(data.claims.iat, data.claims.exp, now)?;
        Ok(data.claims)
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
