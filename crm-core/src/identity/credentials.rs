//! Passwords: set by an admin, imported, changed by their owner, reset by e-mail.

use async_trait::async_trait;

use crate::audit::AuditAction;
use crate::clock::Timestamp;
use crate::error::{Error, ErrorKind, Result};
use crate::id::{Id, UserId, WorkspaceId};
use crate::model::{
    ClientInfo, Credential, Entity, EntityKind, PasswordHash, ResetToken, RevokeReason, SessionId,
    User, UserInput,
};
use crate::ratelimit::Policy;
use crate::security::{SecurityEvent, SecurityEventType};
use crate::service::Actor;
use crate::storage::{Commit, Write};

use super::{Identity, PasswordHasher, SecretToken};

/// Delivers password-reset tokens (by email, usually); implemented by the host.
#[async_trait]
pub trait ResetDelivery: Send + Sync + 'static {
    /// Sends `token` to `user`; it is valid until `expires_at`.
    ///
    /// # Errors
    /// Whatever the host's delivery fails with; the reset request then fails too.
    async fn deliver(&self, user: &User, token: &SecretToken, expires_at: Timestamp) -> Result<()>;
}

impl Identity {
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
        .await?;
        crm.security_event(crm.event_for(actor, SecurityEventType::PasswordChanged));
        Ok(())
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
        let ended = crm
            .push_user_revocations(&mut commit, user.workspace_id, user.id, keep, reason, None)
            .await?;
        crm.commit(commit).await?;
        for sid in ended {
            self.cache(user.workspace_id.uuid(), sid, false, now);
            super::sessions::revoked_event(crm, user.workspace_id, user.id, sid, reason, None);
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
        let event = |kind: SecurityEventType| {
            SecurityEvent::new(workspace, kind, self.now())
                .address(client.address.as_deref())
                .email(&email)
        };
        let limited = match self
            .limit(Policy::PasswordReset, client.address.as_deref())
            .await
        {
            Ok(()) => {
                self.limit(
                    Policy::PasswordReset,
                    Some(&format!("email:{workspace}:{email}")),
                )
                .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = limited {
            crm.security_event(
                event(SecurityEventType::RateLimited).with("policy", "password_reset"),
            );
            return Err(e);
        }
        let Some(user) = crm
            .storage()
            .find_unique(workspace, EntityKind::User, "email", &email)
            .await?
            .and_then(User::from_record)
        else {
            crm.security_event(
                event(SecurityEventType::PasswordResetRequested).with("known", false),
            );
            return Ok(());
        };
        if user.disabled {
            crm.security_event(
                event(SecurityEventType::PasswordResetRequested)
                    .user(user.id)
                    .with("known", false),
            );
            return Ok(());
        }
        crm.security_event(
            event(SecurityEventType::PasswordResetRequested)
                .user(user.id)
                .with("known", true),
        );
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
            })?;
        crm.security_event(
            SecurityEvent::new(ws, SecurityEventType::PasswordResetCompleted, now).user(user.id),
        );
        Ok(())
    }
}

pub(super) fn credential(user: &User, hash: PasswordHash, now: Timestamp) -> Credential {
    Credential {
        id: user.id.cast(),
        workspace_id: user.workspace_id,
        password_hash: hash,
        created_at: now,
        updated_at: now,
        version: 1,
    }
}
