use serde::{Deserialize, Serialize};

use super::WorkspaceId;
use super::{Configuration, Entity, EntityKind, entity_common};
use crate::clock::Timestamp;
use crate::error::FieldError;
use crate::query::Value;
use crate::validate::{Validator, limits};

/// A tenant. Nothing is ever read or written across workspaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    /// Id (also its own `workspace_id`).
    pub id: WorkspaceId,
    /// Equal to `id`.
    pub workspace_id: WorkspaceId,
    /// Display name.
    pub name: String,
    /// Creation instant.
    pub created_at: Timestamp,
    /// Last update instant.
    pub updated_at: Timestamp,
    /// Version.
    pub version: u64,
}

impl Entity for Workspace {
    const KIND: EntityKind = EntityKind::Workspace;
    entity_common!(Workspace, no_soft_delete);

    fn field(&self, name: &str) -> Value {
        match name {
            "created_at" => Value::Time(self.created_at),
            "updated_at" => Value::Time(self.updated_at),
            _ => Value::Null,
        }
    }
    fn label(&self) -> String {
        self.name.clone()
    }
    fn normalize(&mut self) {
        crate::validate::trim(&mut self.name);
    }
    fn validate(&self, _config: &Configuration) -> Vec<FieldError> {
        let mut v = Validator::new();
        v.required("name", &self.name, limits::SHORT_TEXT);
        v.into_errors()
    }
}
