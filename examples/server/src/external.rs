//! Tokens of another identity provider (Better Auth, say) accepted as API credentials:
//! the host shares an HS256 secret with the provider (`CRM_EXTERNAL_JWT_SECRET`, environment
//! only), and any bearer token that is not one of crm's own is tried as the provider's in the
//! installation's workspace. What is checked, in `crm_core`: the algorithm is pinned to
//! HS256, the signature, `exp` (the provider's own, no leeway, never extended: there is no
//! refresh), `iat` not in the future, `iss` and `aud` when configured. The user is named by
//! `sub` (a crm user id) or by a verified `email`; an unknown user is refused, or created as
//! `read_only` with `--external-jwt-provision`. Every refusal is a coded `401` (`E1xxx`).
//!
//! The secret must differ from crm's own `CRM_JWT_SECRET` (with one key, each side's tokens
//! would be the other's) and be at least 32 bytes, checked at start.

use clap::{Args, ValueEnum};
use crm_core::identity::{ExternalTokenConfig, ExternalUserClaim, Secret};

use crate::BoxError;

/// The environment variable holding the provider's shared secret.
pub const SECRET_ENV: &str = "CRM_EXTERNAL_JWT_SECRET";
/// Shortest accepted secret, in bytes.
pub const MIN_LEN: usize = 32;

/// The claim naming the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UserClaim {
    /// `sub` is the crm user id.
    Sub,
    /// `email` is the crm user's address (tokens with `email_verified: false` are refused).
    Email,
}

/// Settings of external tokens (the secret comes from the environment only).
#[derive(Debug, Clone, Args)]
pub struct ExternalArgs {
    /// Accept bearer tokens of another identity provider signed (HS256) with the secret in
    /// `CRM_EXTERNAL_JWT_SECRET` (environment only, 32+ bytes, not crm's own secret); this
    /// is the `iss` they must carry.
    #[arg(long, env = "CRM_EXTERNAL_JWT_ISSUER")]
    pub external_jwt_issuer: Option<String>,
    /// The `aud` external tokens must carry.
    #[arg(long, env = "CRM_EXTERNAL_JWT_AUDIENCE")]
    pub external_jwt_audience: Option<String>,
    /// The claim of external tokens naming the user.
    #[arg(long, env = "CRM_EXTERNAL_JWT_USER_CLAIM", value_enum, default_value_t = UserClaim::Sub)]
    pub external_jwt_user_claim: UserClaim,
    /// Create users named by external tokens that the workspace does not know, as
    /// `read_only` (from the token's `email` and `name`).
    #[arg(long, env = "CRM_EXTERNAL_JWT_PROVISION")]
    pub external_jwt_provision: bool,
}

/// The external-token settings, if `CRM_EXTERNAL_JWT_SECRET` is set.
///
/// # Errors
/// A secret shorter than [`MIN_LEN`] or equal to crm's own; issuer, audience or
/// provisioning settings without a secret.
pub fn config(
    secret: Option<String>,
    own_secret: &Secret,
    args: &ExternalArgs,
) -> Result<Option<ExternalTokenConfig>, BoxError> {
    let Some(secret) = secret else {
        if args.external_jwt_issuer.is_some()
            || args.external_jwt_audience.is_some()
            || args.external_jwt_provision
        {
            return Err(format!("the --external-jwt-* settings need {SECRET_ENV}").into());
        }
        return Ok(None);
    };
    if secret.len() < MIN_LEN {
        return Err(format!("{SECRET_ENV} must be at least {MIN_LEN} bytes long").into());
    }
    if secret.as_bytes() == own_secret.expose() {
        return Err(format!(
            "{SECRET_ENV} must differ from CRM_JWT_SECRET (the two kinds of tokens would be interchangeable)"
        )
        .into());
    }
    let trimmed = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Ok(Some(ExternalTokenConfig {
        issuer: trimmed(&args.external_jwt_issuer),
        audience: trimmed(&args.external_jwt_audience),
        user_claim: match args.external_jwt_user_claim {
            UserClaim::Sub => ExternalUserClaim::Id,
            UserClaim::Email => ExternalUserClaim::Email,
        },
        provision: args.external_jwt_provision,
        ..ExternalTokenConfig::new(Secret::new(secret.into_bytes()))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ExternalArgs {
        ExternalArgs {
            external_jwt_issuer: Some("better-auth".into()),
            external_jwt_audience: None,
            external_jwt_user_claim: UserClaim::Email,
            external_jwt_provision: true,
        }
    }

    #[test]
    fn settings_are_checked() {
        let own = Secret::new("o".repeat(40));
        assert!(config(None, &own, &args()).is_err());
        let mut none = args();
        none.external_jwt_issuer = None;
        none.external_jwt_provision = false;
        assert!(config(None, &own, &none).unwrap().is_none());
        let err = config(Some("short secret".into()), &own, &args()).unwrap_err();
        assert!(err.to_string().contains(SECRET_ENV) && !err.to_string().contains("short secret"));
        assert!(config(Some("o".repeat(40)), &own, &args()).is_err());
        let c = config(Some("e".repeat(40)), &own, &args())
            .unwrap()
            .unwrap();
        assert_eq!(c.issuer.as_deref(), Some("better-auth"));
        assert_eq!(c.user_claim, ExternalUserClaim::Email);
        assert!(c.provision);
    }
}
