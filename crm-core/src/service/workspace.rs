//! Workspace-level services: bootstrap, configuration, audit log, activity feed and the
//! cross-entity search.

use serde::{Deserialize, Serialize};

use super::{Actor, Crm};
use crate::audit::{ActivityItem, AuditAction, AuditEntry, AuditQuery};
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::id::{AuditId, UserId, WorkspaceId};
use crate::model::{
    Company, Configuration, ConfigurationPatch, Contact, Deal, Entity, EntityKind, Role, User,
    UserInput, Workspace,
};
use crate::permission::{Action, Decision, Ownership, Resource, decide};
use crate::query::{ListParams, MAX_LIMIT};
use crate::storage::{Commit, Write};

fn allow(
    actor: &Actor,
    action: Action,
    resource: Resource,
    entity: EntityKind,
    op: Operation,
) -> Result<()> {
    match decide(actor.role(), action, resource, Ownership::Others) {
        Decision::Allow => Ok(()),
        _ => Err(Error::new(ErrorKind::Forbidden).with_context(op, entity)),
    }
}

impl Crm {
    /// Creates a new workspace, its default configuration and its first user, who is its
    /// admin whatever `admin.role` says — all in one commit.
    ///
    /// # Errors
    /// `Validation` for a bad name or user input; storage failures.
    pub async fn bootstrap(&self, name: &str, admin: UserInput) -> Result<(Workspace, User)> {
        self.bootstrap_with(name, admin, |_, _| Ok(())).await
    }

    /// [`Crm::bootstrap`] with extra writes (and their audit entries) for the new admin in
    /// the same commit: its password and first session, for sign-up.
    pub(crate) async fn bootstrap_with(
        &self,
        name: &str,
        admin: UserInput,
        extra: impl FnOnce(&User, &mut Commit) -> Result<()>,
    ) -> Result<(Workspace, User)> {
        let now = self.now();
        let id = WorkspaceId::generate();
        let mut workspace = Workspace {
            id,
            workspace_id: id,
            name: name.to_string(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        workspace.normalize();
        let config = Configuration::defaults(id, now);
        let errors = workspace.validate(&config);
        if !errors.is_empty() {
            return Err(
                Error::validation(errors).with_context(Operation::Save, EntityKind::Workspace)
            );
        }
        let mut user = User::from_input(UserInput {
            role: Some(Role::Admin),
            ..admin
        });
        user.workspace_id = id;
        user.created_at = now;
        user.updated_at = now;
        user.version = 1;
        let mut commit = Commit::new(id);
        for record in [workspace.clone().into_record(), config.into_record()] {
            commit
                .audit
                .push(self.audit_entry(None, AuditAction::Create, None, Some(&record)));
            commit.writes.push(Write::Insert(record));
        }
        extra(&user, &mut commit)?;
        let user = self
            .users()
            .insert(None, user, commit)
            .await
            .map_err(|e| e.with_context(Operation::Save, EntityKind::User))?;
        Ok((workspace, user))
    }

    /// The workspace of the actor.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn workspace(&self, actor: &Actor) -> Result<Workspace> {
        self.storage()
            .get(
                actor.workspace_id(),
                EntityKind::Workspace,
                actor.workspace_id().uuid(),
            )
            .await?
            .and_then(Workspace::from_record)
            .ok_or_else(|| Error::not_found(EntityKind::Workspace))
    }

    /// Searches companies, contacts and deals at once (word prefixes, and substrings of emails
    /// and phone numbers: see [`crate::search`]), up to
    /// `limit` of each (1..=100), with the same permissions as every read.
    ///
    /// # Errors
    /// `InvalidQuery` for an empty query or a bad limit; storage failures.
    pub async fn search(&self, actor: &Actor, q: &str, limit: usize) -> Result<SearchResults> {
        if !(1..=MAX_LIMIT).contains(&limit) || crate::search::query_terms(q).is_empty() {
            return Err(Error::new(ErrorKind::InvalidQuery));
        }
        // Relevance-free but useful order: most recently updated first.
        let params = ListParams::new().q(q).limit(limit).sort("-updated_at");
        Ok(SearchResults {
            companies: self.companies().list(actor, &params).await?.data,
            contacts: self.contacts().list(actor, &params).await?.data,
            deals: self.deals().list(actor, &params).await?.data,
        })
    }
}

/// Results of [`Crm::search`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResults {
    /// Matching companies.
    pub companies: Vec<Company>,
    /// Matching contacts.
    pub contacts: Vec<Contact>,
    /// Matching deals.
    pub deals: Vec<Deal>,
}

/// `crm.configuration()`.
pub struct ConfigurationService<'a> {
    pub(crate) crm: &'a Crm,
}

impl ConfigurationService<'_> {
    /// The workspace configuration (everyone).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn get(&self, actor: &Actor) -> Result<Configuration> {
        allow(
            actor,
            Action::Read,
            Resource::Configuration,
            EntityKind::Configuration,
            Operation::Load,
        )?;
        self.crm.load_config(actor.workspace_id()).await
    }

    /// Changes the configuration (admins).
    ///
    /// # Errors
    /// `Forbidden`, `VersionConflict`, `Validation`; storage failures.
    pub async fn update(
        &self,
        actor: &Actor,
        expected_version: u64,
        patch: ConfigurationPatch,
    ) -> Result<Configuration> {
        let ctx = |e: Error| e.with_context(Operation::Save, EntityKind::Configuration);
        allow(
            actor,
            Action::Update,
            Resource::Configuration,
            EntityKind::Configuration,
            Operation::Save,
        )?;
        let current = self.crm.load_config(actor.workspace_id()).await?;
        if current.version != expected_version {
            return Err(ctx(Error::new(ErrorKind::VersionConflict)));
        }
        let mut config = current.clone();
        config.update(patch);
        let errors = config.validate(&current);
        if !errors.is_empty() {
            return Err(ctx(Error::validation(errors)));
        }
        if config == current {
            return Ok(current);
        }
        config.version += 1;
        config.updated_at = self.crm.now();
        let (before, after) = (current.into_record(), config.clone().into_record());
        let commit = self
            .crm
            .update_commit(actor, &before, after, expected_version);
        self.crm.commit(commit).await.map_err(ctx)?;
        Ok(config)
    }
}

/// `crm.audit()`: the full audit trail (admins and managers).
pub struct AuditLog<'a> {
    pub(crate) crm: &'a Crm,
}

impl AuditLog<'_> {
    /// Audit entries, newest first.
    ///
    /// # Errors
    /// `Forbidden` for sales and read-only users, `InvalidQuery` for a bad limit; storage
    /// failures.
    pub async fn list(&self, actor: &Actor, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        if decide(
            actor.role(),
            Action::Read,
            Resource::AuditLog,
            Ownership::Others,
        ) != Decision::Allow
        {
            return Err(Error::new(ErrorKind::Forbidden));
        }
        let mut query = query.clone();
        let limit = query.limit.unwrap_or(crate::query::DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Error::new(ErrorKind::InvalidQuery));
        }
        query.limit = Some(limit);
        self.crm.storage().audit(actor.workspace_id(), &query).await
    }
}

/// `crm.activity()`: what happened lately (companies, contacts and deals created, notes
/// added), readable by everyone.
pub struct ActivityFeed<'a> {
    pub(crate) crm: &'a Crm,
}

impl ActivityFeed<'_> {
    /// Up to `limit` items (1..=100), newest first, older than `before` if given.
    ///
    /// # Errors
    /// `InvalidQuery` for a bad limit; storage failures.
    pub async fn list(
        &self,
        actor: &Actor,
        before: Option<AuditId>,
        limit: usize,
    ) -> Result<Vec<ActivityItem>> {
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Error::new(ErrorKind::InvalidQuery));
        }
        let query = AuditQuery {
            record_id: None,
            actor_id: None,
            entities: crate::dashboard::ACTIVITY_KINDS.to_vec(),
            actions: vec![AuditAction::Create],
            before,
            limit: Some(limit),
        };
        let entries = self
            .crm
            .storage()
            .audit(actor.workspace_id(), &query)
            .await?;
        Ok(entries
            .into_iter()
            .map(|e| ActivityItem {
                at: e.at,
                actor_id: e.actor_id.map(|a: UserId| a),
                entity: e.entity,
                record_id: e.record_id,
                label: e.label,
                audit_id: e.id,
            })
            .collect())
    }
}
