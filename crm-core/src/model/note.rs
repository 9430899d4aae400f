use serde::{Deserialize, Serialize};

use serde_json::Value as Json;

use super::declare::{Rules, entity};
use super::field::rules::*;
use super::field::{Checked, Normalize, Schema, constrained, object_schema};
use super::{ConfigList, Configuration, ContactId, DealId, Rule, UserId};
use crate::clock::Timestamp;
use crate::error::FieldIssue;
use crate::validate::limits::{ATTACHMENT_SIZE_MAX, LIST_ITEMS, NOTE_TEXT, SHORT_TEXT};
use crate::validate::{Validator, trim};

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

entity! {
    /// A note attached to exactly one contact or one deal.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Note(NoteId, soft_delete) {
        /// The contact it is about (exclusive with `deal_id`).
        contact_id: Option<ContactId> => create, filter, ANY, reference;
        /// The deal it is about (exclusive with `contact_id`).
        deal_id: Option<DealId> => create, filter, ANY, reference;
        /// Body (required).
        text: String => edit, none, required(NOTE_TEXT), personal;
        /// Contact status at the time (contact notes: one of the configuration's note
        /// statuses).
        status: Option<String> => edit, none, ANY;
        /// Note type (deal notes), free text.
        note_type as "type": Option<String> => edit, none, text(SHORT_TEXT);
        /// When it happened (default: now).
        date: Timestamp => edit(now), both, ANY;
        /// Author.
        sales_id: Option<UserId> => core(Some(author)), filter, ANY, owner;
        /// Attached files' metadata.
        attachments: Vec<Attachment> => edit, none, items(LIST_ITEMS, &ANY), personal;
    }
    /// Input to create a note.
    input NoteInput(now: Timestamp, author: UserId);
    /// A note update (its target cannot change).
    patch NotePatch;
}

impl Rules for Note {
    fn label(&self) -> String {
        self.text.chars().take(80).collect()
    }
    fn check_rules(&self, v: &mut Validator, config: &Configuration) {
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
        if let Some(s) = &self.status {
            if self.contact_id.is_none() {
                v.push_msg(
                    "status",
                    FieldIssue::NotAllowed,
                    "Only contact notes have a status.",
                );
            } else if !ConfigList::NoteStatuses.allows(config, s) {
                v.push("status", FieldIssue::NotAllowed);
            }
        }
    }
}

impl Checked for Attachment {
    fn check(&self, v: &mut Validator, name: &str, _rule: &Rule, _config: &Configuration) {
        v.required(&format!("{name}.name"), &self.name, SHORT_TEXT);
        v.opt_url(&format!("{name}.url"), &self.url);
        v.opt_text(&format!("{name}.mime_type"), &self.mime_type, SHORT_TEXT);
        if let Some(size) = self.size {
            v.range(&format!("{name}.size"), size, 0, ATTACHMENT_SIZE_MAX);
        }
    }
}

impl Normalize for Vec<Attachment> {
    fn normalize(&mut self) {
        for a in self {
            trim(&mut a.name);
        }
    }
}

impl Schema for Attachment {
    fn schema() -> Json {
        let mut size = u64::schema();
        size["maximum"] = serde_json::json!(ATTACHMENT_SIZE_MAX);
        size["nullable"] = serde_json::json!(true);
        object_schema(&[
            ("name", constrained::<String>(required(SHORT_TEXT)), true),
            ("url", constrained::<Option<String>>(URL), false),
            (
                "mime_type",
                constrained::<Option<String>>(text(SHORT_TEXT)),
                false,
            ),
            ("size", size, false),
        ])
    }
}
