use serde::{Deserialize, Serialize};

use super::{Configuration, Entity, EntityKind, entity_common, opt_time, text};
use super::{UserId, WorkspaceId};
use crate::clock::Timestamp;
use crate::error::FieldError;
use crate::query::Value;
use crate::validate::{Validator, limits, trim, trim_opt};

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

/// A member of a workspace (Atomic CRM's "sales"). Users are disabled, never deleted, so
/// their records keep their owner. The password hash is not part of this record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Email, unique per workspace (case-insensitive).
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Role.
    pub role: Role,
    /// Disabled users cannot act.
    pub disabled: bool,
    /// Avatar URL.
    pub avatar: Option<String>,
    /// Last successful login.
    pub last_login_at: Option<Timestamp>,
    /// Creation instant.
    pub created_at: Timestamp,
    /// Last update instant.
    pub updated_at: Timestamp,
    /// Version.
    pub version: u64,
}

/// Input to create a user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    /// Email.
    pub email: String,
    /// First name.
    #[serde(default)]
    pub first_name: String,
    /// Last name.
    #[serde(default)]
    pub last_name: String,
    /// Role (default `sales`; ignored for a workspace's first user, who is admin).
    #[serde(default)]
    pub role: Option<Role>,
    /// Avatar URL.
    #[serde(default)]
    pub avatar: Option<String>,
}

/// A profile update (role and disabled flag have their own operations).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserPatch {
    /// Email.
    pub email: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Avatar URL (`null` clears).
    #[serde(deserialize_with = "super::nullable")]
    pub avatar: Option<Option<String>>,
}

impl User {
    pub(crate) fn from_input(input: UserInput, role: Role) -> User {
        User {
            id: UserId::generate(),
            workspace_id: WorkspaceId::from_uuid(uuid::Uuid::nil()),
            email: input.email,
            first_name: input.first_name,
            last_name: input.last_name,
            role,
            disabled: false,
            avatar: input.avatar,
            last_login_at: None,
            created_at: Timestamp::EPOCH,
            updated_at: Timestamp::EPOCH,
            version: 0,
        }
    }

    pub(crate) fn apply(&mut self, p: UserPatch) {
        super::set(&mut self.email, p.email);
        super::set(&mut self.first_name, p.first_name);
        super::set(&mut self.last_name, p.last_name);
        super::set(&mut self.avatar, p.avatar);
    }

    /// Whether the user is an admin who is not disabled.
    pub fn is_active_admin(&self) -> bool {
        self.role == Role::Admin && !self.disabled
    }
}

impl Entity for User {
    const KIND: EntityKind = EntityKind::User;
    entity_common!(User, no_soft_delete);

    fn field(&self, name: &str) -> Value {
        match name {
            "created_at" => Value::Time(self.created_at),
            "updated_at" => Value::Time(self.updated_at),
            "email" => text(&self.email),
            "first_name" => text(&self.first_name),
            "last_name" => text(&self.last_name),
            "role" => text(self.role.as_str()),
            "disabled" => Value::Bool(self.disabled),
            "last_login_at" => opt_time(self.last_login_at),
            _ => Value::Null,
        }
    }
    fn unique_keys(&self) -> Vec<(&'static str, String)> {
        vec![("email", self.email.to_lowercase())]
    }
    fn label(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
            .trim()
            .to_string()
    }
    fn normalize(&mut self) {
        trim(&mut self.email);
        trim(&mut self.first_name);
        trim(&mut self.last_name);
        trim_opt(&mut self.avatar);
    }
    fn validate(&self, _config: &Configuration) -> Vec<FieldError> {
        let mut v = Validator::new();
        v.email("email", &self.email);
        v.text("first_name", &self.first_name, limits::SHORT_TEXT);
        v.text("last_name", &self.last_name, limits::SHORT_TEXT);
        v.opt_url("avatar", &self.avatar);
        v.into_errors()
    }
}
