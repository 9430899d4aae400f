//! Tokens of another identity provider: verifying them, finding or provisioning their user.

use uuid::Uuid;

use crate::error::{Error, ErrorKind, Result};
use crate::id::{UserId, WorkspaceId};
use crate::model::{Entity, EntityKind, User, UserInput};
use crate::service::Actor;
use crate::storage::Commit;

use super::{ExternalUserClaim, Identity, jwt};

impl Identity {
    /// Whether tokens of an external identity provider are accepted in `workspace`.
    pub fn accepts_external(&self, workspace: WorkspaceId) -> bool {
        self.inner.external.contains_key(&workspace) || self.inner.external_default.is_some()
    }

    /// Resolves the user of an external identity provider's token in `workspace` (see
    /// [`ExternalTokenConfig`](super::ExternalTokenConfig)): verifies it, finds the user its claim names, and — when
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
}
