use serde::{Deserialize, Serialize};

use super::declare::{Rules, entity};
use super::field::rules::*;
use crate::validate::limits::TAG_NAME;

entity! {
    /// A label for contacts; names are unique per workspace (case-insensitive).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Tag(TagId, soft_delete) {
        /// Name (required, unique).
        name: String => edit, both, required(TAG_NAME);
        /// `#rrggbb` (default a neutral grey).
        color: String => edit("#eeeeee".into()), none, COLOR;
    }
    /// Input to create a tag.
    input TagInput;
    /// A tag update.
    patch TagPatch;
}

impl Rules for Tag {
    fn label(&self) -> String {
        self.name.clone()
    }
    fn unique_keys(&self) -> Vec<(&'static str, String)> {
        vec![("name", self.name.to_lowercase())]
    }
    fn normalize_more(&mut self) {
        self.color.make_ascii_lowercase();
    }
}
