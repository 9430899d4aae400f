use serde::{Deserialize, Serialize};

use super::{Configuration, Entity, EntityKind, Reference, entity_common, opt_id};
use super::{ContactId, DealId, NoteId, UserId, WorkspaceId};
use crate::clock::Timestamp;
use crate::error::{FieldError, FieldIssue};
use crate::query::Value;
use crate::validate::{Validator, limits, trim, trim_opt};

/// Metadata of a file attached to a note (the file itself lives elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    /// File name.
    pub name: String,
    /// Where the host stores it.
    #[serde(default)]
    pub url: Option<String>,
    /// MIME type.
    #[serde(default)]
    pub mime_type: Option<String>,
    /// Size in bytes.
    #[serde(default)]
    pub size: Option<u64>,
}

/// A note attached to exactly one contact or one deal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Id.
    pub id: NoteId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// The contact it is about (exclusive with `deal_id`).
    pub contact_id: Option<ContactId>,
    /// The deal it is about (exclusive with `contact_id`).
    pub deal_id: Option<DealId>,
    /// Body (required).
    pub text: String,
    /// Contact status at the time (contact notes).
    pub status: Option<String>,
    /// Note type (deal notes), free text.
    #[serde(rename = "type")]
    pub note_type: Option<String>,
    /// When it happened.
    pub date: Timestamp,
    /// Author.
    pub sales_id: Option<UserId>,
    /// Attached files' metadata.
    pub attachments: Vec<Attachment>,
    /// Creation instant.
    pub created_at: Timestamp,
    /// Last update instant.
    pub updated_at: Timestamp,
    /// Version.
    pub version: u64,
    /// Soft-deletion instant.
    pub deleted_at: Option<Timestamp>,
}

/// Input to create a note.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)]
pub struct NoteInput {
    pub contact_id: Option<ContactId>,
    pub deal_id: Option<DealId>,
    pub text: String,
    pub status: Option<String>,
    #[serde(rename = "type")]
    pub note_type: Option<String>,
    /// Default: now.
    pub date: Option<Timestamp>,
    pub attachments: Vec<Attachment>,
}

/// A note update (its target cannot change).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)]
pub struct NotePatch {
    pub text: Option<String>,
    #[serde(deserialize_with = "super::nullable")]
    pub status: Option<Option<String>>,
    #[serde(rename = "type", deserialize_with = "super::nullable")]
    pub note_type: Option<Option<String>>,
    pub date: Option<Timestamp>,
    pub attachments: Option<Vec<Attachment>>,
}

impl Note {
    pub(crate) fn from_input(i: NoteInput, now: Timestamp, author: UserId) -> Note {
        Note {
            id: NoteId::generate(),
            workspace_id: WorkspaceId::from_uuid(uuid::Uuid::nil()),
            contact_id: i.contact_id,
            deal_id: i.deal_id,
            text: i.text,
            status: i.status,
            note_type: i.note_type,
            date: i.date.unwrap_or(now),
            sales_id: Some(author),
            attachments: i.attachments,
            created_at: Timestamp::EPOCH,
            updated_at: Timestamp::EPOCH,
            version: 0,
            deleted_at: None,
        }
    }

    pub(crate) fn apply(&mut self, p: NotePatch) {
        use super::set;
        set(&mut self.text, p.text);
        set(&mut self.status, p.status);
        set(&mut self.note_type, p.note_type);
        set(&mut self.date, p.date);
        set(&mut self.attachments, p.attachments);
    }
}

impl Entity for Note {
    const KIND: EntityKind = EntityKind::Note;
    entity_common!(Note, soft_delete);

    fn field(&self, name: &str) -> Value {
        match name {
            "created_at" => Value::Time(self.created_at),
            "updated_at" => Value::Time(self.updated_at),
            "date" => Value::Time(self.date),
            "contact_id" => opt_id(self.contact_id),
            "deal_id" => opt_id(self.deal_id),
            "sales_id" => opt_id(self.sales_id),
            _ => Value::Null,
        }
    }
    fn label(&self) -> String {
        self.text.chars().take(80).collect()
    }
    fn owner(&self) -> Option<UserId> {
        self.sales_id
    }
    fn references(&self) -> Vec<Reference> {
        let mut refs = Vec::new();
        if let Some(c) = self.contact_id {
            refs.push(Reference {
                field: "contact_id",
                kind: EntityKind::Contact,
                id: c.uuid(),
            });
        }
        if let Some(d) = self.deal_id {
            refs.push(Reference {
                field: "deal_id",
                kind: EntityKind::Deal,
                id: d.uuid(),
            });
        }
        refs
    }
    fn normalize(&mut self) {
        trim(&mut self.text);
        trim_opt(&mut self.status);
        trim_opt(&mut self.note_type);
        for a in &mut self.attachments {
            trim(&mut a.name);
        }
    }
    fn validate(&self, config: &Configuration) -> Vec<FieldError> {
        let mut v = Validator::new();
        match (self.contact_id, self.deal_id) {
            (None, None) => v.push_msg(
                "contact_id",
                FieldIssue::Required,
                "A note belongs to a contact or a deal.",
            ),
            (Some(_), Some(_)) => v.push_msg(
                "deal_id",
                FieldIssue::NotAllowed,
                "A note belongs to a contact or a deal, not both.",
            ),
            _ => {}
        }
        v.required("text", &self.text, limits::NOTE_TEXT);
        if let Some(s) = &self.status {
            if self.contact_id.is_none() {
                v.push_msg(
                    "status",
                    FieldIssue::NotAllowed,
                    "Only contact notes have a status.",
                );
            } else {
                v.one_of("status", s, &config.status_values());
            }
        }
        v.opt_text("type", &self.note_type, limits::SHORT_TEXT);
        v.max_items("attachments", self.attachments.len(), limits::LIST_ITEMS);
        for (i, a) in self.attachments.iter().enumerate() {
            v.required(
                &format!("attachments[{i}].name"),
                &a.name,
                limits::SHORT_TEXT,
            );
            v.opt_url(&format!("attachments[{i}].url"), &a.url);
            v.opt_text(
                &format!("attachments[{i}].mime_type"),
                &a.mime_type,
                limits::SHORT_TEXT,
            );
            if let Some(size) = a.size {
                v.range(
                    &format!("attachments[{i}].size"),
                    size,
                    0,
                    limits::ATTACHMENT_SIZE_MAX,
                );
            }
        }
        v.into_errors()
    }
}
