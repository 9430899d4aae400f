//! The right of access: one JSON document with what the engine keeps about a person.

use serde::Serialize;
use uuid::Uuid;

use super::traces::Performed;
use super::{EXPORT_FORMAT, Privacy};
use crate::audit::{AuditEntry, AuditQuery};
use crate::clock::Timestamp;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::id::{ContactId, UserId, WorkspaceId};
use crate::model::{
    ClientDetails, Company, Contact, Deal, Entity, EntityKind, Note, RetentionPolicy, RevokeReason,
    Role, Session, Task, User, Workspace,
};
use crate::query::Value;
use crate::service::Actor;

/// The header of every export.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportHeader {
    /// [`EXPORT_FORMAT`].
    pub format: &'static str,
    /// When the document was made.
    pub generated_at: Timestamp,
    /// Who asked for it.
    pub generated_by: UserId,
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// Its name.
    pub workspace_name: Option<String>,
    /// What the document is about: `contact` or `user`.
    pub subject: EntityKind,
    /// Its id.
    pub subject_id: Uuid,
    /// The workspace's retention periods for the data the document lists.
    pub retention: RetentionPeriods,
}

/// The retention periods (days) of the workspace's [`RetentionPolicy`] that apply to the
/// data an export lists, as [`crate::Crm::apply_retention`] enforces them. (The policy's
/// `webhook_delivery_days` is left out: the engine keeps no webhook deliveries.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionPeriods {
    /// Soft-deleted records (a contact in the trash, its notes, tasks, deals) are purged
    /// this long after their deletion.
    pub trash_days: i64,
    /// Audit entries are removed this long after they were made; `null`: kept forever.
    pub audit_days: Option<i64>,
    /// Access-log entries are removed after this long.
    pub access_log_days: i64,
    /// Security events are removed after this long.
    pub security_event_days: i64,
    /// Ended sessions (and used or expired password-reset tokens) are removed this long
    /// after they ended.
    pub session_days: i64,
    /// Which client details (addresses, user agents) are stored.
    pub client_details: ClientDetails,
}

impl From<&RetentionPolicy> for RetentionPeriods {
    fn from(p: &RetentionPolicy) -> Self {
        RetentionPeriods {
            trash_days: p.trash_days,
            audit_days: p.audit_days,
            access_log_days: p.access_log_days,
            security_event_days: p.security_event_days,
            session_days: p.session_days,
            client_details: p.client_details,
        }
    }
}

/// Everything kept about a contact (`GET /contacts/{id}/personal-data`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactExport {
    /// Header.
    pub header: ExportHeader,
    /// The contact (also when soft deleted), as the caller may see it.
    pub contact: Contact,
    /// Its notes (soft-deleted ones included).
    pub notes: Vec<Note>,
    /// Tasks about it.
    pub tasks: Vec<Task>,
    /// Deals that list it.
    pub deals: Vec<Deal>,
    /// Its company.
    pub company: Option<Company>,
    /// Every audit entry about the contact and its notes, newest first.
    pub audit: Vec<AuditEntry>,
    /// Reads of it recorded in the access log, newest first.
    pub access_log: serde_json::Value,
    /// Changes of its consents, oldest first, from the audit trail.
    pub consent_history: Vec<ConsentChange>,
}

/// One change of a contact's consents, from its audit trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsentChange {
    /// When.
    pub at: Timestamp,
    /// Who recorded it.
    pub actor_id: Option<UserId>,
    /// The consents before.
    pub before: serde_json::Value,
    /// The consents after.
    pub after: serde_json::Value,
}

/// A login session as shown in an export: where and when, never a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// Session id.
    pub id: Uuid,
    /// Client address it was opened from.
    pub address: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
    /// Opened at.
    pub created_at: Timestamp,
    /// Last refreshed at.
    pub last_used_at: Timestamp,
    /// When its refresh token expires.
    pub expires_at: Timestamp,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
    /// Why.
    pub revoke_reason: Option<RevokeReason>,
}

impl From<Session> for SessionInfo {
    fn from(s: Session) -> Self {
        SessionInfo {
            id: s.id.uuid(),
            address: s.client.address,
            user_agent: s.client.user_agent,
            created_at: s.created_at,
            last_used_at: s.updated_at,
            expires_at: s.expires_at,
            revoked_at: s.revoked_at,
            revoke_reason: s.revoke_reason,
        }
    }
}

/// Everything kept about a user of the workspace (`GET /users/{id}/personal-data`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserExport {
    /// Header.
    pub header: ExportHeader,
    /// The profile.
    pub profile: User,
    /// Login sessions (addresses, user agents, times).
    pub sessions: Vec<SessionInfo>,
    /// Audit entries of the user's own actions, newest first.
    pub audit_own_actions: Vec<AuditEntry>,
    /// Audit entries about the user record, newest first.
    pub audit_about: Vec<AuditEntry>,
    /// Security events about the user, newest first.
    pub security_events: serde_json::Value,
}

impl Privacy<'_> {
    async fn header(
        &self,
        actor: &Actor,
        subject: EntityKind,
        subject_id: Uuid,
    ) -> Result<ExportHeader> {
        let ws = actor.workspace_id();
        let name = self
            .crm
            .storage()
            .get(ws, EntityKind::Workspace, ws.uuid())
            .await?
            .and_then(Workspace::from_record)
            .map(|w| w.name);
        Ok(ExportHeader {
            format: EXPORT_FORMAT,
            generated_at: self.crm.now(),
            generated_by: actor.user_id(),
            workspace_id: ws,
            workspace_name: name,
            subject,
            subject_id,
            retention: self.traces().retention(ws).await?,
        })
    }

    /// Every record of `kind` (soft-deleted included) whose `field` holds `id`.
    async fn referring<E: Entity>(&self, actor: &Actor, field: &str, id: Uuid) -> Result<Vec<E>> {
        self.crm
            .all_where(actor.workspace_id(), field, Value::Id(id))
            .await
    }

    /// The right of access for a contact: see [`ContactExport`]. Admins and managers; the
    /// masking rules of [`crate::Crm::present`] apply. The export is reported as a read of
    /// the contact.
    ///
    /// # Errors
    /// `Forbidden` for other roles; `NotFound` for an unknown (or erased, or another
    /// workspace's) id; storage failures. Nothing is changed.
    pub async fn export_contact(&self, actor: &Actor, id: ContactId) -> Result<ContactExport> {
        let fail = |e: Error| e.with_context(Operation::Load, EntityKind::Contact);
        if !matches!(actor.role(), Role::Admin | Role::Manager) {
            return Err(fail(Error::new(ErrorKind::Forbidden)));
        }
        let ws = actor.workspace_id();
        let contact = self
            .crm
            .storage()
            .get(ws, EntityKind::Contact, id.uuid())
            .await
            .map_err(fail)?
            .and_then(Contact::from_record)
            .ok_or_else(|| fail(Error::new(ErrorKind::NotFound)))?;
        let notes: Vec<Note> = self
            .referring(actor, "contact_id", id.uuid())
            .await
            .map_err(fail)?;
        let tasks: Vec<Task> = self
            .referring(actor, "contact_id", id.uuid())
            .await
            .map_err(fail)?;
        let deals: Vec<Deal> = self
            .referring(actor, "contact_ids", id.uuid())
            .await
            .map_err(fail)?;
        let company = match contact.company_id {
            Some(c) => self
                .crm
                .storage()
                .get(ws, EntityKind::Company, c.uuid())
                .await
                .map_err(fail)?
                .and_then(Company::from_record),
            None => None,
        };
        let mut audit = Vec::new();
        for rid in std::iter::once(id.uuid()).chain(notes.iter().map(|n| n.id.uuid())) {
            let query = AuditQuery {
                record_id: Some(rid),
                ..Default::default()
            };
            audit.extend(self.all_audit(ws, query).await.map_err(fail)?);
        }
        audit.sort_by_key(|e| std::cmp::Reverse(e.id));
        let mut consent_history: Vec<ConsentChange> = audit
            .iter()
            .filter(|e| e.record_id == id.uuid())
            .flat_map(|e| {
                e.changes
                    .iter()
                    .filter(|c| c.field == "consents")
                    // A new contact's empty list is no consent.
                    .filter(|c| !(c.before.is_null() && c.after == serde_json::json!([])))
                    .map(|c| ConsentChange {
                        at: e.at,
                        actor_id: e.actor_id,
                        before: c.before.clone(),
                        after: c.after.clone(),
                    })
            })
            .collect();
        consent_history.reverse();
        let access_log = self
            .traces()
            .access_about(ws, id.uuid())
            .await
            .map_err(fail)?;
        let header = self
            .header(actor, EntityKind::Contact, id.uuid())
            .await
            .map_err(fail)?;
        let contact = self
            .crm
            .present_all(actor, vec![contact], None)
            .await
            .map_err(fail)?
            .pop()
            .ok_or_else(|| fail(Error::new(ErrorKind::NotFound)))?;
        let company = self
            .crm
            .present_all(actor, company.into_iter().collect(), None)
            .await
            .map_err(fail)?
            .pop();
        self.traces()
            .performed(actor, Performed::Export, EntityKind::Contact, id.uuid())
            .await
            .map_err(fail)?;
        Ok(ContactExport {
            header,
            contact,
            notes,
            tasks,
            deals,
            company,
            audit,
            access_log,
            consent_history,
        })
    }

    /// The right of access for a user of the workspace: see [`UserExport`]. Admins, or the
    /// user themselves.
    ///
    /// # Errors
    /// `Forbidden` for anyone else; `NotFound` for an unknown id; storage failures. Nothing
    /// is changed.
    pub async fn export_user(&self, actor: &Actor, id: UserId) -> Result<UserExport> {
        let fail = |e: Error| e.with_context(Operation::Load, EntityKind::User);
        if actor.role() != Role::Admin && actor.user_id() != id {
            return Err(fail(Error::new(ErrorKind::Forbidden)));
        }
        let ws = actor.workspace_id();
        let profile = self
            .crm
            .storage()
            .get(ws, EntityKind::User, id.uuid())
            .await
            .map_err(fail)?
            .and_then(User::from_record)
            .ok_or_else(|| fail(Error::new(ErrorKind::NotFound)))?;
        let mut sessions: Vec<SessionInfo> = self
            .referring::<Session>(actor, "user_id", id.uuid())
            .await
            .map_err(fail)?
            .into_iter()
            .map(SessionInfo::from)
            .collect();
        sessions.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        let own = AuditQuery {
            actor_id: Some(id),
            ..Default::default()
        };
        let audit_own_actions = self.all_audit(ws, own).await.map_err(fail)?;
        let about = AuditQuery {
            record_id: Some(id.uuid()),
            ..Default::default()
        };
        let audit_about = self.all_audit(ws, about).await.map_err(fail)?;
        let security_events = self.traces().events_about(ws, id).await.map_err(fail)?;
        let header = self
            .header(actor, EntityKind::User, id.uuid())
            .await
            .map_err(fail)?;
        self.traces()
            .performed(actor, Performed::Export, EntityKind::User, id.uuid())
            .await
            .map_err(fail)?;
        Ok(UserExport {
            header,
            profile,
            sessions,
            audit_own_actions,
            audit_about,
            security_events,
        })
    }
}
