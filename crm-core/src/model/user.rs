use serde::{Deserialize, Serialize};

use super::declare::{Rules, entity};
use super::field::rules::*;
use super::field::{Normalize, text_enum};
use crate::clock::Timestamp;
use crate::validate::limits::SHORT_TEXT;

/// A user's role in its workspace (DESIGN §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including user administration and configuration.
    Admin,
    /// All records and all tasks, restore/merge/audit; no user administration.
    Manager,
    /// Records, and only their own tasks.
    Sales,
    /// Reads records, and only their own tasks.
    ReadOnly,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Manager, Role::Sales, Role::ReadOnly];

    /// The wire name (`"read_only"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Sales => "sales",
            Role::ReadOnly => "read_only",
        }
    }
}

text_enum!(Role);
impl Normalize for Role {}

entity! {
    /// A member of a workspace (Atomic CRM's "sales"). Users are disabled, never deleted, so
    /// their records keep their owner. The password hash is not part of this record.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct User(UserId, keep) {
        /// Email, unique per workspace (case-insensitive).
        email: String => edit, both, EMAIL, personal;
        /// First name.
        first_name: String => edit, both, text(SHORT_TEXT), personal;
        /// Last name.
        last_name: String => edit, both, text(SHORT_TEXT), personal;
        /// Role (default `sales`; a workspace's first user is its admin).
        role: Role => create(Role::Sales), filter, ANY;
        /// Disabled users cannot act.
        disabled: bool => core(false), filter, ANY;
        /// Avatar URL.
        avatar: Option<String> => edit, none, URL, personal;
        /// Last successful login.
        last_login_at: Option<Timestamp> => core(None), none, ANY;
    }
    /// Input to create a user.
    input UserInput;
    /// A profile update (role and disabled flag have their own operations).
    patch UserPatch;
}

impl User {
    /// Whether the user is an admin who is not disabled.
    pub fn is_active_admin(&self) -> bool {
        self.role == Role::Admin && !self.disabled
    }
}

impl Rules for User {
    fn label(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
            .trim()
            .to_string()
    }
    fn unique_keys(&self) -> Vec<(&'static str, String)> {
        vec![("email", self.email.to_lowercase())]
    }
}
