//! Users: creation by admins, profiles, roles and disabling, with the last-admin rule.

use super::{Actor, Crm};
use crate::audit::AuditAction;
use crate::error::{Error, ErrorKind, FieldError, FieldIssue, Operation, Result};
use crate::id::UserId;
use crate::model::{Entity, EntityKind, Role, User, UserInput, UserPatch};
use crate::permission::{Action, Decision, Ownership, Resource, decide};
use crate::query::{ListParams, Page, Value};
use crate::storage::{Commit, Write};

/// The users service, `crm.users()`.
pub struct Users<'a> {
    pub(crate) crm: &'a Crm,
}

fn ctx(op: Operation) -> impl Fn(Error) -> Error {
    move |e| e.with_context(op, EntityKind::User)
}

fn authorize(actor: &Actor, action: Action, target: UserId, op: Operation) -> Result<()> {
    let own = if target == actor.user_id() {
        Ownership::Own
    } else {
        Ownership::Others
    };
    match decide(actor.role(), action, Resource::User, own) {
        Decision::Allow => Ok(()),
        Decision::Forbid => {
            Err(Error::new(ErrorKind::Forbidden).with_context(op, EntityKind::User))
        }
        Decision::Hide => Err(Error::not_found(EntityKind::User)),
    }
}

impl Users<'_> {
    async fn load(&self, actor: &Actor, id: UserId) -> Result<User> {
        self.crm
            .storage()
            .get(actor.workspace_id(), EntityKind::User, id.uuid())
            .await?
            .and_then(User::from_record)
            .ok_or_else(|| Error::not_found(EntityKind::User))
    }

    /// One user of the actor's workspace.
    ///
    /// # Errors
    /// `NotFound`; storage failures.
    pub async fn get(&self, actor: &Actor, id: UserId) -> Result<User> {
        authorize(actor, Action::Read, id, Operation::Load)?;
        let user = self.load(actor, id).await?;
        self.crm.log_access(actor, EntityKind::User, &[id.uuid()]);
        Ok(user)
    }

    /// A user by email (case-insensitive).
    ///
    /// # Errors
    /// `NotFound`; storage failures.
    pub async fn find_by_email(&self, actor: &Actor, email: &str) -> Result<User> {
        authorize(actor, Action::Read, actor.user_id(), Operation::Load)?;
        self.crm
            .storage()
            .find_unique(
                actor.workspace_id(),
                EntityKind::User,
                "email",
                &email.trim().to_lowercase(),
            )
            .await?
            .and_then(User::from_record)
            .ok_or_else(|| Error::not_found(EntityKind::User))
    }

    /// A page of users (filters: role, disabled; sorts: email, names, dates).
    ///
    /// # Errors
    /// `InvalidQuery`/`InvalidCursor`; storage failures.
    pub async fn list(&self, actor: &Actor, params: &ListParams) -> Result<Page<User>> {
        let mut query = params.to_query(EntityKind::User)?;
        if query.search.is_some() {
            return Err(
                Error::new(ErrorKind::InvalidQuery).with_context(Operation::List, EntityKind::User)
            );
        }
        query.deleted = crate::query::Deleted::Exclude;
        self.crm
            .list_scoped(actor, EntityKind::User, Resource::User, "id", &mut query)
            .await
            .map(|p| {
                let data: Vec<User> = p.data.into_iter().filter_map(User::from_record).collect();
                let ids: Vec<uuid::Uuid> = data.iter().map(|u| u.id.uuid()).collect();
                self.crm.log_access(actor, EntityKind::User, &ids);
                Page {
                    data,
                    next_cursor: p.next_cursor,
                }
            })
    }

    /// Creates a user (admins). The role defaults to `sales`.
    ///
    /// # Errors
    /// `Forbidden`, `Validation`, `Duplicate` (email taken, reported as a field error);
    /// storage failures.
    pub async fn create(&self, actor: &Actor, input: UserInput) -> Result<User> {
        self.create_with(actor, input, |_| Vec::new()).await
    }

    /// [`Users::create`] with extra writes for the new user in the same commit.
    pub(crate) async fn create_with(
        &self,
        actor: &Actor,
        input: UserInput,
        extra: impl FnOnce(&User) -> Vec<Write>,
    ) -> Result<User> {
        authorize(actor, Action::Create, UserId::generate(), Operation::Save)?;
        // The role defaults to `sales` (the declaration's default).
        let mut user = User::from_input(input);
        let now = self.crm.now();
        user.workspace_id = actor.workspace_id();
        user.created_at = now;
        user.updated_at = now;
        user.version = 1;
        let mut commit = Commit::new(actor.workspace_id());
        commit.writes.extend(extra(&user));
        self.insert(Some(actor), user, commit)
            .await
            .map_err(ctx(Operation::Save))
    }

    /// Validates and inserts a user (also used by bootstrap).
    pub(crate) async fn insert(
        &self,
        actor: Option<&Actor>,
        mut user: User,
        mut commit: Commit,
    ) -> Result<User> {
        user.normalize();
        let config = crate::model::Configuration::defaults(user.workspace_id, user.created_at);
        let errors = user.validate(&config);
        if !errors.is_empty() {
            return Err(Error::validation(errors));
        }
        let record = user.clone().into_record();
        commit.audit.push(
            self.crm
                .audit_entry(actor, AuditAction::Create, None, Some(&record)),
        );
        commit.writes.push(Write::Insert(record));
        self.crm.commit(commit).await?;
        Ok(user)
    }

    /// Updates a profile: one's own, or anyone's for admins. Role and disabled flag have
    /// their own operations.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `VersionConflict`, `Validation`, `Duplicate`; storage failures.
    pub async fn update_profile(
        &self,
        actor: &Actor,
        id: UserId,
        expected_version: u64,
        patch: UserPatch,
    ) -> Result<User> {
        authorize(actor, Action::Update, id, Operation::Save)?;
        let current = self.load(actor, id).await.map_err(ctx(Operation::Save))?;
        let mut user = current.clone();
        user.apply(patch);
        user.normalize();
        let errors = user.validate(&crate::model::Configuration::defaults(
            user.workspace_id,
            user.created_at,
        ));
        if !errors.is_empty() {
            return Err(ctx(Operation::Save)(Error::validation(errors)));
        }
        self.write(
            actor,
            current,
            user,
            expected_version,
            Vec::new(),
            Vec::new(),
        )
        .await
        .map_err(ctx(Operation::Save))
    }

    /// Changes a user's role (admins; nobody changes their own role). The last active admin
    /// cannot be demoted. Takes effect on the user's next request.
    ///
    /// # Errors
    /// `Forbidden`, `LastAdmin`, `NotFound`, `VersionConflict`; storage failures.
    pub async fn set_role(
        &self,
        actor: &Actor,
        id: UserId,
        expected_version: u64,
        role: Role,
    ) -> Result<User> {
        self.change_access(actor, id, expected_version, Action::ChangeRole, |u| {
            u.role = role
        })
        .await
    }

    /// Disables or re-enables a user (admins; nobody disables themselves). The last active
    /// admin cannot be disabled.
    ///
    /// # Errors
    /// As [`Users::set_role`].
    pub async fn set_disabled(
        &self,
        actor: &Actor,
        id: UserId,
        expected_version: u64,
        disabled: bool,
    ) -> Result<User> {
        self.change_access(actor, id, expected_version, Action::Delete, |u| {
            u.disabled = disabled
        })
        .await
    }

    async fn change_access(
        &self,
        actor: &Actor,
        id: UserId,
        expected_version: u64,
        action: Action,
        change: impl Fn(&mut User),
    ) -> Result<User> {
        let fail = ctx(Operation::Save);
        if id == actor.user_id() {
            // A permission rule, not a bad input: nobody changes their own role or disabled
            // flag, whatever their role (403, with the field that cannot be changed).
            return Err(fail(Error::new(ErrorKind::Forbidden).with_fields(vec![
                FieldError::new(
                    if action == Action::ChangeRole {
                        "role"
                    } else {
                        "disabled"
                    },
                    FieldIssue::ReadOnly,
                ),
            ])));
        }
        authorize(actor, action, id, Operation::Save)?;
        let current = self.load(actor, id).await.map_err(&fail)?;
        let mut user = current.clone();
        change(&mut user);
        let mut checks = Vec::new();
        if current.is_active_admin() && !user.is_active_admin() {
            // Another active admin must remain; assert they are unchanged at commit time so two
            // admins demoting each other concurrently cannot both succeed.
            let others: Vec<User> = self
                .crm
                .all_where::<User>(actor.workspace_id(), "role", Value::Text("admin".into()))
                .await?
                .into_iter()
                .filter(|u| u.id != id && u.is_active_admin())
                .collect();
            let Some(keeper) = others.first() else {
                return Err(fail(Error::new(ErrorKind::LastAdmin)));
            };
            checks.push(Write::Check {
                kind: EntityKind::User,
                id: keeper.id.uuid(),
                expected_version: keeper.version,
            });
        }
        let mut audit = Vec::new();
        let mut events = Vec::new();
        let event = |kind| {
            self.crm
                .event_for(actor, kind)
                .user(id)
                .actor(actor.user_id())
        };
        use crate::security::SecurityEventType as T;
        if user.role != current.role {
            events.push(
                event(T::RoleChanged)
                    .with("from", current.role.as_str())
                    .with("to", user.role.as_str()),
            );
        }
        if user.disabled != current.disabled {
            events.push(event(if user.disabled {
                T::UserDisabled
            } else {
                T::UserEnabled
            }));
        }
        if user.disabled && !current.disabled {
            // Disabling ends every session of the user in the same commit.
            let mut revocations = Commit::new(actor.workspace_id());
            self.crm
                .push_user_revocations(
                    &mut revocations,
                    actor.workspace_id(),
                    id,
                    None,
                    crate::model::RevokeReason::UserDisabled,
                    Some(actor.user_id()),
                )
                .await?;
            let ended: Vec<uuid::Uuid> = revocations
                .writes
                .iter()
                .filter_map(|w| match w {
                    Write::Update { record, .. } => Some(record.id()),
                    _ => None,
                })
                .collect();
            for sid in ended {
                events.push(
                    event(T::SessionRevoked)
                        .with("session_id", sid.to_string())
                        .with("reason", "user_disabled"),
                );
            }
            checks.extend(revocations.writes);
            audit = revocations.audit;
        }
        let written = self
            .write(actor, current, user, expected_version, checks, audit)
            .await
            .map_err(fail)?;
        for e in events {
            self.crm.security_event(e);
        }
        Ok(written)
    }

    async fn write(
        &self,
        actor: &Actor,
        current: User,
        mut user: User,
        expected_version: u64,
        checks: Vec<Write>,
        audit: Vec<crate::audit::AuditEntry>,
    ) -> Result<User> {
        if current.version != expected_version {
            return Err(Error::new(ErrorKind::VersionConflict));
        }
        if current == user {
            return Ok(current);
        }
        user.version = current.version + 1;
        user.updated_at = self.crm.now();
        let (before, after) = (current.into_record(), user.clone().into_record());
        let mut commit = self
            .crm
            .update_commit(actor, &before, after, expected_version);
        commit.writes.extend(checks);
        commit.audit.extend(audit);
        self.crm.commit(commit).await?;
        Ok(user)
    }
}
