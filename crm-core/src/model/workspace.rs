use serde::{Deserialize, Serialize};

use super::declare::{Rules, entity};
use super::field::rules::*;
use crate::validate::limits::SHORT_TEXT;

entity! {
    /// A tenant. Nothing is ever read or written across workspaces. Its `workspace_id` is its
    /// own id.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Workspace(WorkspaceId, keep) {
        /// Display name.
        name: String => edit, none, required(SHORT_TEXT);
    }
}

impl Rules for Workspace {
    fn label(&self) -> String {
        self.name.clone()
    }
}
