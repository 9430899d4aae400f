//! Erasure of a contact and anonymization of a user (see the [module docs](super)).

use serde::Serialize;
use uuid::Uuid;

use super::{Privacy, REDACT_BATCH, REDACTED, personal_fields, redact_entry};
use crate::audit::{AuditAction, AuditEntry, AuditQuery, FieldChange};
use crate::clock::Timestamp;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::id::{AuditId, ContactId, UserId, WorkspaceId};
use crate::model::{Entity, EntityKind, Role, User};
use crate::query::{Filter, Value};
use crate::service::Actor;
use crate::storage::{Commit, Write};

/// What an erasure (or anonymization) did. Holds no personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasureReport {
    /// Kind of the erased record (`contact` or `user`).
    pub entity: EntityKind,
    /// Its id.
    pub id: Uuid,
    /// When it was erased (the first call's time, for a repeated call).
    pub erased_at: Timestamp,
    /// Who erased it.
    pub erased_by: Option<UserId>,
    /// The records removed with it (a contact's notes, a user's sessions), by id.
    pub removed: Vec<Uuid>,
    /// Audit entries redacted by this call.
    pub audit_entries_redacted: usize,
    /// Access-log entries removed (or, for a user, cleared) by this call.
    pub access_log_entries: usize,
    /// Whether an earlier call had already erased it (this one finished what was left).
    pub already_erased: bool,
}

/// The ids an erasure entry lists under `field` (`notes`, `sessions`).
fn listed_ids(entry: &AuditEntry, field: &str) -> Vec<Uuid> {
    entry
        .changes
        .iter()
        .find(|c| c.field == field)
        .and_then(|c| serde_json::from_value::<Vec<Uuid>>(c.before.clone()).ok())
        .unwrap_or_default()
}

/// Whether an audit change of a note's `contact_id` names `id` on either side.
fn names_contact(entry: &AuditEntry, id: Uuid) -> bool {
    let id = serde_json::Value::String(id.to_string());
    entry
        .changes
        .iter()
        .any(|c| c.field == "contact_id" && (c.before == id || c.after == id))
}

impl Privacy<'_> {
    /// Erases a contact (live, soft deleted, or purged earlier but still in the audit trail):
    /// see the [module docs](super) for what goes and what stays. Admins only. Idempotent
    /// and resumable: a repeated call finishes what an interrupted one left and answers the
    /// same erasure.
    ///
    /// # Errors
    /// `Forbidden` for other roles; `NotFound` for an id this workspace never had (another
    /// workspace's id included) — nothing is changed then; storage failures: the records
    /// are either all removed or all still there, and a repeated call resumes the redaction.
    pub async fn erase_contact(&self, actor: &Actor, id: ContactId) -> Result<ErasureReport> {
        let fail = |e: Error| e.with_context(Operation::Delete, EntityKind::Contact);
        if actor.role() != Role::Admin {
            return Err(fail(Error::new(ErrorKind::Forbidden)));
        }
        let ws = actor.workspace_id();
        let (entry, already) = self
            .crm
            .retrying(|| self.remove_contact(actor, id.uuid()))
            .await
            .map_err(fail)?;
        let mut redacted = 0;
        for rid in std::iter::once(id.uuid()).chain(listed_ids(&entry, "notes")) {
            redacted += self
                .redact_record(ws, rid, Some(REDACTED))
                .await
                .map_err(fail)?;
        }
        let mut traced = listed_ids(&entry, "notes");
        traced.push(id.uuid());
        let access = self
            .traces()
            .erase_records(ws, &traced)
            .await
            .map_err(fail)?;
        // Every call is recorded, a repeated one too: a failure writing the event after the
        // work cannot lose it, since the caller calls again.
        self.traces()
            .performed(
                actor,
                super::traces::Performed::Erasure,
                EntityKind::Contact,
                id.uuid(),
            )
            .await
            .map_err(fail)?;
        Ok(ErasureReport {
            entity: EntityKind::Contact,
            id: id.uuid(),
            erased_at: entry.at,
            erased_by: entry.actor_id,
            removed: listed_ids(&entry, "notes"),
            audit_entries_redacted: redacted,
            access_log_entries: access,
            already_erased: already,
        })
    }

    /// The one commit of an erasure: the record, its notes, references to it, recently
    /// viewed entries and the erasure entry. Answers the erasure entry, and whether it
    /// existed already.
    async fn remove_contact(&self, actor: &Actor, id: Uuid) -> Result<(AuditEntry, bool)> {
        let ws = actor.workspace_id();
        if let Some(e) = self.erasure_entry(ws, id, AuditAction::Erase).await? {
            return Ok((e, true));
        }
        let storage = self.crm.storage();
        let record = storage.get(ws, EntityKind::Contact, id).await?;
        if record.is_none() {
            // Purged earlier: still erasable while its audit trail holds its data.
            let trail = AuditQuery {
                record_id: Some(id),
                entities: vec![EntityKind::Contact],
                limit: Some(1),
                ..Default::default()
            };
            if storage.audit(ws, &trail).await?.is_empty() {
                return Err(Error::new(ErrorKind::NotFound));
            }
        }
        let mut commit = Commit::new(ws);
        let mut notes: Vec<Uuid> = Vec::new();
        if let Some(r) = &record {
            commit.writes.push(Write::Delete {
                kind: EntityKind::Contact,
                id,
                expected_version: r.version(),
            });
            self.crm
                .detach_referrers(actor, EntityKind::Contact, id, &mut commit, |_, note| {
                    notes.push(note.id())
                })
                .await?;
        }
        // Notes purged earlier (or whose contact was), known only to the audit trail.
        let mut candidates: Vec<Uuid> = Vec::new();
        let note_trail = AuditQuery {
            entities: vec![EntityKind::Note],
            ..Default::default()
        };
        for e in self.all_audit(ws, note_trail).await? {
            if !notes.contains(&e.record_id)
                && !candidates.contains(&e.record_id)
                && names_contact(&e, id)
            {
                candidates.push(e.record_id);
            }
        }
        if !candidates.is_empty() {
            let alive = storage.get_many(ws, EntityKind::Note, &candidates).await?;
            // A note that lives on belongs to another contact now (a merge moved it).
            candidates.retain(|c| !alive.iter().any(|r| r.id() == *c));
            notes.extend(candidates);
        }
        for n in &notes {
            commit.writes.push(Write::ForgetViews {
                kind: EntityKind::Note,
                id: *n,
            });
        }
        commit.writes.push(Write::ForgetViews {
            kind: EntityKind::Contact,
            id,
        });
        let entry = AuditEntry {
            id: AuditId::generate(),
            workspace_id: ws,
            at: self.crm.now(),
            actor_id: Some(actor.user_id()),
            entity: EntityKind::Contact,
            record_id: id,
            label: REDACTED.to_owned(),
            action: AuditAction::Erase,
            changes: vec![FieldChange {
                field: "notes".into(),
                before: serde_json::json!(notes),
                after: serde_json::Value::Null,
            }],
        };
        commit.audit.push(entry.clone());
        self.crm.commit(commit).await?;
        Ok((entry, false))
    }

    /// Redacts every audit entry about one record (but erasure entries), one commit per
    /// page of [`REDACT_BATCH`]; `label` replaces the labels when given. Answers how many
    /// entries changed (already redacted ones are skipped).
    async fn redact_record(&self, ws: WorkspaceId, id: Uuid, label: Option<&str>) -> Result<usize> {
        let mut query = AuditQuery {
            record_id: Some(id),
            limit: Some(REDACT_BATCH),
            ..Default::default()
        };
        let mut changed = 0;
        loop {
            let page = self.crm.storage().audit(ws, &query).await?;
            let full = page.len() == REDACT_BATCH;
            query.before = page.last().map(|e| e.id);
            let mut commit = Commit::new(ws);
            for e in &page {
                if matches!(e.action, AuditAction::Erase | AuditAction::Anonymize) {
                    continue;
                }
                let r = redact_entry(e, label.unwrap_or(&e.label));
                if r != *e {
                    commit.writes.push(Write::RedactAudit(r));
                }
            }
            if !commit.writes.is_empty() {
                changed += commit.writes.len();
                self.crm.commit(commit).await?;
            }
            if !full {
                return Ok(changed);
            }
        }
    }

    /// Anonymizes a departed user (admins; not oneself): see the [module docs](super).
    /// Records keep their owner, shown as "former user N". Idempotent and resumable as
    /// [`Privacy::erase_contact`].
    ///
    /// # Errors
    /// `Forbidden` for other roles or for oneself; `NotFound` for an unknown id; `LastAdmin`
    /// for the last active admin — nothing is changed then; storage failures (a repeated
    /// call resumes).
    pub async fn anonymize_user(&self, actor: &Actor, id: UserId) -> Result<ErasureReport> {
        let fail = |e: Error| e.with_context(Operation::Delete, EntityKind::User);
        if actor.role() != Role::Admin || id == actor.user_id() {
            return Err(fail(Error::new(ErrorKind::Forbidden)));
        }
        let ws = actor.workspace_id();
        let (entry, already) = self
            .crm
            .retrying(|| self.replace_user(actor, id))
            .await
            .map_err(fail)?;
        let mut redacted = self
            .redact_record(ws, id.uuid(), Some(&entry.label))
            .await
            .map_err(fail)?;
        for sid in listed_ids(&entry, "sessions") {
            redacted += self.redact_record(ws, sid, None).await.map_err(fail)?;
        }
        let access = self.traces().redact_user(ws, id).await.map_err(fail)?;
        self.traces()
            .performed(
                actor,
                super::traces::Performed::Anonymization,
                EntityKind::User,
                id.uuid(),
            )
            .await
            .map_err(fail)?;
        Ok(ErasureReport {
            entity: EntityKind::User,
            id: id.uuid(),
            erased_at: entry.at,
            erased_by: entry.actor_id,
            removed: listed_ids(&entry, "sessions"),
            audit_entries_redacted: redacted,
            access_log_entries: access,
            already_erased: already,
        })
    }

    /// The one commit of an anonymization.
    async fn replace_user(&self, actor: &Actor, id: UserId) -> Result<(AuditEntry, bool)> {
        let ws = actor.workspace_id();
        if let Some(e) = self
            .erasure_entry(ws, id.uuid(), AuditAction::Anonymize)
            .await?
        {
            return Ok((e, true));
        }
        let storage = self.crm.storage();
        let current = storage
            .get(ws, EntityKind::User, id.uuid())
            .await?
            .and_then(User::from_record)
            .ok_or_else(|| Error::new(ErrorKind::NotFound))?;
        let mut commit = Commit::new(ws);
        let users: Vec<User> = self
            .crm
            .all_matching(
                actor,
                EntityKind::User,
                Filter::eq("disabled", Value::Bool(false)),
            )
            .await?
            .into_iter()
            .chain(
                self.crm
                    .all_matching(
                        actor,
                        EntityKind::User,
                        Filter::eq("disabled", Value::Bool(true)),
                    )
                    .await?,
            )
            .filter_map(User::from_record)
            .collect();
        if current.is_active_admin() {
            // Another active admin must remain, unchanged at commit time.
            let keeper = users
                .iter()
                .find(|u| u.id != id && u.is_active_admin())
                .ok_or_else(|| Error::new(ErrorKind::LastAdmin))?;
            commit.writes.push(Write::Check {
                kind: EntityKind::User,
                id: keeper.id.uuid(),
                expected_version: keeper.version,
            });
        }
        let n = 1 + users
            .iter()
            .filter(|u| u.email.ends_with(ANONYMIZED_DOMAIN))
            .count();
        let mut user = current.clone();
        user.email = format!("former-user-{n}{ANONYMIZED_DOMAIN}");
        user.first_name = "Former".into();
        user.last_name = format!("user {n}");
        user.avatar = None;
        user.disabled = true;
        user.last_login_at = None;
        user.version = current.version + 1;
        user.updated_at = self.crm.now();
        let label = user.label();
        let mut changes: Vec<FieldChange> = crate::audit::diff(
            Some(&current.clone().into_record()),
            Some(&user.clone().into_record()),
        );
        for c in &mut changes {
            if personal_fields(EntityKind::User).contains(&c.field.as_str()) && !c.before.is_null()
            {
                c.before = serde_json::Value::String(REDACTED.to_owned());
            }
        }
        commit.writes.insert(
            0,
            Write::Update {
                record: user.into_record(),
                expected_version: current.version,
            },
        );
        let mut sessions = Vec::new();
        for kind in [EntityKind::Session, EntityKind::ResetToken] {
            for row in self
                .crm
                .all_matching(actor, kind, Filter::eq("user_id", Value::Id(id.uuid())))
                .await?
            {
                if kind == EntityKind::Session {
                    sessions.push(row.id());
                }
                commit.writes.push(Write::Delete {
                    kind,
                    id: row.id(),
                    expected_version: row.version(),
                });
            }
        }
        if let Some(credential) = storage.get(ws, EntityKind::Credential, id.uuid()).await? {
            commit.writes.push(Write::Delete {
                kind: EntityKind::Credential,
                id: id.uuid(),
                expected_version: credential.version(),
            });
        }
        commit.writes.push(Write::ForgetViewer { user: id });
        changes.push(FieldChange {
            field: "sessions".into(),
            before: serde_json::json!(sessions),
            after: serde_json::Value::Null,
        });
        let entry = AuditEntry {
            id: AuditId::generate(),
            workspace_id: ws,
            at: self.crm.now(),
            actor_id: Some(actor.user_id()),
            entity: EntityKind::User,
            record_id: id.uuid(),
            label,
            action: AuditAction::Anonymize,
            changes,
        };
        commit.audit.push(entry.clone());
        match self.crm.commit(commit).await {
            Ok(()) => Ok((entry, false)),
            // Another anonymization took the same number meanwhile: count again.
            Err(e) if e.kind() == ErrorKind::Duplicate => {
                Err(Error::new(ErrorKind::VersionConflict))
            }
            Err(e) => Err(e),
        }
    }
}

/// The domain of anonymized users' addresses (reserved: it never receives mail).
pub const ANONYMIZED_DOMAIN: &str = "@anonymized.invalid";
