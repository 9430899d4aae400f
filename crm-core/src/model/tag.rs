use serde::{Deserialize, Serialize};

use super::{Configuration, Entity, EntityKind, entity_common, text};
use super::{TagId, WorkspaceId};
use crate::clock::Timestamp;
use crate::error::{FieldError, FieldIssue};
use crate::query::Value;
use crate::validate::{Validator, is_color, limits, trim};

/// A label for contacts; names are unique per workspace (case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// Id.
    pub id: TagId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Name (required, unique).
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
    /// Creation instant.
    pub created_at: Timestamp,
    /// Last update instant.
    pub updated_at: Timestamp,
    /// Version.
    pub version: u64,
    /// Soft-deletion instant.
    pub deleted_at: Option<Timestamp>,
}

/// Input to create a tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TagInput {
    /// Name.
    pub name: String,
    /// `#rrggbb` (default a neutral grey).
    pub color: Option<String>,
}

/// A tag update.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TagPatch {
    /// Name.
    pub name: Option<String>,
    /// Color.
    pub color: Option<String>,
}

impl Tag {
    pub(crate) fn from_input(i: TagInput) -> Tag {
        Tag {
            id: TagId::generate(),
            workspace_id: WorkspaceId::from_uuid(uuid::Uuid::nil()),
            name: i.name,
            color: i.color.unwrap_or_else(|| "#eeeeee".into()),
            created_at: Timestamp::EPOCH,
            updated_at: Timestamp::EPOCH,
            version: 0,
            deleted_at: None,
        }
    }

    pub(crate) fn apply(&mut self, p: TagPatch) {
        super::set(&mut self.name, p.name);
        super::set(&mut self.color, p.color);
    }
}

impl Entity for Tag {
    const KIND: EntityKind = EntityKind::Tag;
    entity_common!(Tag, soft_delete);

    fn field(&self, name: &str) -> Value {
        match name {
            "created_at" => Value::Time(self.created_at),
            "updated_at" => Value::Time(self.updated_at),
            "name" => text(&self.name),
            _ => Value::Null,
        }
    }
    fn unique_keys(&self) -> Vec<(&'static str, String)> {
        vec![("name", self.name.to_lowercase())]
    }
    fn label(&self) -> String {
        self.name.clone()
    }
    fn normalize(&mut self) {
        trim(&mut self.name);
        trim(&mut self.color);
        self.color.make_ascii_lowercase();
    }
    fn validate(&self, _config: &Configuration) -> Vec<FieldError> {
        let mut v = Validator::new();
        v.required("name", &self.name, limits::TAG_NAME);
        if !is_color(&self.color) {
            v.push("color", FieldIssue::InvalidFormat);
        }
        v.into_errors()
    }
}
