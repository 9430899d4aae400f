//! Data protection: the right of access (export) and the right to erasure (DESIGN §13).
//!
//! `crm.privacy()` ([`Privacy`]) answers four requests:
//!
//! | call | who | what |
//! |---|---|---|
//! | [`Privacy::export_contact`] | admin, manager | one JSON document with everything kept about a person |
//! | [`Privacy::export_user`] | admin, or the user themselves | a team member's profile, sessions, audit trail |
//! | [`Privacy::erase_contact`] | admin | removes the person everywhere the engine keeps data |
//! | [`Privacy::anonymize_user`] | admin | a departed user becomes "former user N" |
//!
//! # What erasure removes, and what stays
//!
//! Erasing a contact removes the record, its notes (with their e-mails, phones and texts),
//! its search-index entries (they go with the record), its place in every user's recently
//! viewed lists, and the access-log entries about it. Deals and tasks that referenced it lose
//! the reference. The change feed keeps one body-less `delete` entry per removed record (ids,
//! versions and times only: see [`crate::feed`]). Every audit entry about the contact or one
//! of its notes (also notes purged earlier, found through their audit trail) keeps who changed
//! which field when, but its personal values and its label are replaced by [`REDACTED`]. What
//! remains is one [`AuditAction::Erase`] entry: who erased which id when, and the ids of the
//! notes that went with it — no personal data.
//!
//! Anonymizing a user keeps the user record (records keep their owner) but replaces its
//! e-mail, names and avatar ("former user N", `former-user-N@anonymized.invalid`), disables
//! it, deletes its sessions (addresses, user agents), password and reset tokens and its
//! recently viewed lists, and redacts the same fields in the audit entries about it.
//!
//! # Failure and resumption
//!
//! The removal of records is **one store commit**: the record, its notes, the unlinking of
//! deals and tasks, the recently viewed lists and the [`AuditAction::Erase`] entry, all or
//! nothing. The redaction of old audit entries then runs in **bounded commits** of at most
//! [`REDACT_BATCH`] entries (a person can have any number), followed by the access log. A
//! failure after the first commit leaves the erasure recorded and some entries still to
//! redact: the call answers the storage error, and calling it again **resumes** (the erasure
//! entry tells it the id was erased and which notes went with it; already redacted entries
//! are skipped). So both operations are idempotent: a second call answers the same
//! [`ErasureReport`] with `already_erased` set.

pub mod consent;
mod erase;
mod export;
mod traces;

pub use erase::{ANONYMIZED_DOMAIN, ErasureReport};
pub use export::{
    ConsentChange, ContactExport, ExportHeader, RetentionPeriods, SessionInfo, UserExport,
};

use crate::audit::{AuditAction, AuditEntry, AuditQuery};
use crate::error::Result;
use crate::id::WorkspaceId;
use crate::model::EntityKind;
use crate::service::Crm;

/// What replaces a personal value (and the label) in a redacted audit entry.
pub const REDACTED: &str = "[erased]";

/// At most this many audit entries are redacted per store commit.
pub const REDACT_BATCH: usize = 100;

/// The format name written into every export's header.
pub const EXPORT_FORMAT: &str = "crm.personal-data/1";

/// The fields of a kind that hold personal data — those its declaration flags `personal`
/// (see [`crate::model::FieldDef::personal`]): what erasure redacts in audit entries. Ids,
/// times and configuration values (statuses) are not personal data and stay, so the audit
/// trail still tells who changed which field when.
pub fn personal_fields(kind: EntityKind) -> Vec<&'static str> {
    kind.personal_data_fields().map(|f| f.name).collect()
}

/// The entry with its personal values and its label replaced: values of
/// [`personal_fields`] become [`REDACTED`] (an empty value stays empty), the label becomes
/// `label`. Who, when, which record, the action and the field names stay.
pub fn redact_entry(entry: &AuditEntry, label: &str) -> AuditEntry {
    let fields = personal_fields(entry.entity);
    let hide = |v: &serde_json::Value| {
        if v.is_null() {
            serde_json::Value::Null
        } else {
            serde_json::Value::String(REDACTED.to_owned())
        }
    };
    let mut out = entry.clone();
    out.label = label.to_owned();
    for c in &mut out.changes {
        if fields.contains(&c.field.as_str()) {
            c.before = hide(&c.before);
            c.after = hide(&c.after);
        }
    }
    out
}

/// `crm.privacy()`: export and erasure. See the [module docs](self).
pub struct Privacy<'a> {
    pub(crate) crm: &'a Crm,
}

impl Crm {
    /// Data protection: export and erasure of a person's data.
    pub fn privacy(&self) -> Privacy<'_> {
        Privacy { crm: self }
    }
}

impl Privacy<'_> {
    /// Every audit entry matching `query` (all pages), newest first.
    async fn all_audit(&self, ws: WorkspaceId, mut query: AuditQuery) -> Result<Vec<AuditEntry>> {
        query.limit = Some(REDACT_BATCH);
        let mut out = Vec::new();
        loop {
            let page = self.crm.storage().audit(ws, &query).await?;
            let full = page.len() == REDACT_BATCH;
            query.before = page.last().map(|e| e.id);
            out.extend(page);
            if !full {
                return Ok(out);
            }
        }
    }

    /// The erasure (or anonymization) entry of a record, if it was erased.
    async fn erasure_entry(
        &self,
        ws: WorkspaceId,
        id: uuid::Uuid,
        action: AuditAction,
    ) -> Result<Option<AuditEntry>> {
        let query = AuditQuery {
            record_id: Some(id),
            actions: vec![action],
            limit: Some(1),
            ..Default::default()
        };
        Ok(self.crm.storage().audit(ws, &query).await?.pop())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::FieldChange;
    use crate::clock::Timestamp;
    use crate::id::AuditId;

    #[test]
    fn redaction_keeps_who_what_when_and_hides_values() {
        let e = AuditEntry {
            id: AuditId::generate(),
            workspace_id: WorkspaceId::from_uuid(uuid::Uuid::now_v7()),
            at: Timestamp::from_micros(5),
            actor_id: None,
            entity: EntityKind::Contact,
            record_id: uuid::Uuid::now_v7(),
            label: "Jane Doe".into(),
            action: AuditAction::Update,
            changes: vec![
                FieldChange {
                    field: "first_name".into(),
                    before: serde_json::json!("Jane"),
                    after: serde_json::json!("Janet"),
                },
                FieldChange {
                    field: "title".into(),
                    before: serde_json::Value::Null,
                    after: serde_json::json!("CEO"),
                },
                FieldChange {
                    field: "status".into(),
                    before: serde_json::json!("cold"),
                    after: serde_json::json!("hot"),
                },
            ],
        };
        let r = redact_entry(&e, REDACTED);
        assert_eq!(r.label, REDACTED);
        assert_eq!(r.changes[0].before, serde_json::json!(REDACTED));
        assert_eq!(r.changes[0].after, serde_json::json!(REDACTED));
        assert_eq!(r.changes[1].before, serde_json::Value::Null);
        assert_eq!(r.changes[2], e.changes[2]);
        assert_eq!(
            (r.id, r.at, r.actor_id, r.action),
            (e.id, e.at, e.actor_id, e.action)
        );
        assert_eq!(redact_entry(&r, REDACTED), r, "redaction is idempotent");
    }
}
