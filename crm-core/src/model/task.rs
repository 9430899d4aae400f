use serde::{Deserialize, Serialize};

use super::{CompanyId, ContactId, DealId, TaskId, UserId, WorkspaceId};
use super::{Configuration, Entity, EntityKind, Reference, entity_common, opt_id, opt_text, text};
use crate::clock::{Date, Timestamp};
use crate::error::FieldError;
use crate::query::Value;
use crate::validate::{Validator, limits, trim, trim_opt};

/// Task priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Urgent.
    Urgent,
}

impl Priority {
    fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

/// A to-do item owned by one user. Sales and read-only users only ever see their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Id.
    pub id: TaskId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Owner.
    pub owner_id: UserId,
    /// What to do (required).
    pub text: String,
    /// Type (one of the configuration's task types).
    #[serde(rename = "type")]
    pub task_type: Option<String>,
    /// Due date.
    #[serde(default, with = "crate::clock::iso_date::option")]
    pub due_date: Option<Date>,
    /// Priority.
    pub priority: Option<Priority>,
    /// Done.
    pub completed: bool,
    /// When it was completed (set by the core).
    pub done_date: Option<Timestamp>,
    /// Related contact.
    pub contact_id: Option<ContactId>,
    /// Related deal.
    pub deal_id: Option<DealId>,
    /// Related company.
    pub company_id: Option<CompanyId>,
    /// Creation instant.
    pub created_at: Timestamp,
    /// Last update instant.
    pub updated_at: Timestamp,
    /// Version.
    pub version: u64,
    /// Soft-deletion instant.
    pub deleted_at: Option<Timestamp>,
}

/// Input to create a task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)]
pub struct TaskInput {
    /// Default: the creator.
    pub owner_id: Option<UserId>,
    pub text: String,
    #[serde(rename = "type")]
    pub task_type: Option<String>,
    #[serde(with = "crate::clock::iso_date::option")]
    pub due_date: Option<Date>,
    pub priority: Option<Priority>,
    pub contact_id: Option<ContactId>,
    pub deal_id: Option<DealId>,
    pub company_id: Option<CompanyId>,
}

/// A task update: absent fields are kept, `null` clears.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)]
pub struct TaskPatch {
    pub owner_id: Option<UserId>,
    pub text: Option<String>,
    #[serde(rename = "type", deserialize_with = "super::nullable")]
    pub task_type: Option<Option<String>>,
    #[serde(with = "crate::clock::iso_date::nullable")]
    pub due_date: Option<Option<Date>>,
    #[serde(deserialize_with = "super::nullable")]
    pub priority: Option<Option<Priority>>,
    pub completed: Option<bool>,
    #[serde(deserialize_with = "super::nullable")]
    pub contact_id: Option<Option<ContactId>>,
    #[serde(deserialize_with = "super::nullable")]
    pub deal_id: Option<Option<DealId>>,
    #[serde(deserialize_with = "super::nullable")]
    pub company_id: Option<Option<CompanyId>>,
}

impl Task {
    pub(crate) fn from_input(i: TaskInput, owner: UserId) -> Task {
        Task {
            id: TaskId::generate(),
            workspace_id: WorkspaceId::from_uuid(uuid::Uuid::nil()),
            owner_id: i.owner_id.unwrap_or(owner),
            text: i.text,
            task_type: i.task_type,
            due_date: i.due_date,
            priority: i.priority,
            completed: false,
            done_date: None,
            contact_id: i.contact_id,
            deal_id: i.deal_id,
            company_id: i.company_id,
            created_at: Timestamp::EPOCH,
            updated_at: Timestamp::EPOCH,
            version: 0,
            deleted_at: None,
        }
    }

    /// Applies a patch; completion stamps or clears `done_date` with `now`.
    pub(crate) fn apply(&mut self, p: TaskPatch, now: Timestamp) {
        use super::set;
        set(&mut self.owner_id, p.owner_id);
        set(&mut self.text, p.text);
        set(&mut self.task_type, p.task_type);
        set(&mut self.due_date, p.due_date);
        set(&mut self.priority, p.priority);
        set(&mut self.contact_id, p.contact_id);
        set(&mut self.deal_id, p.deal_id);
        set(&mut self.company_id, p.company_id);
        if let Some(done) = p.completed {
            self.set_completed(done, now);
        }
    }

    pub(crate) fn set_completed(&mut self, done: bool, now: Timestamp) {
        if done && !self.completed {
            self.done_date = Some(now);
        } else if !done {
            self.done_date = None;
        }
        self.completed = done;
    }
}

impl Entity for Task {
    const KIND: EntityKind = EntityKind::Task;
    entity_common!(Task, soft_delete);

    fn field(&self, name: &str) -> Value {
        match name {
            "created_at" => Value::Time(self.created_at),
            "updated_at" => Value::Time(self.updated_at),
            "due_date" => self.due_date.map_or(Value::Null, Value::Date),
            "owner_id" => Value::Id(self.owner_id.uuid()),
            "completed" => Value::Bool(self.completed),
            "type" => opt_text(&self.task_type),
            "priority" => self.priority.map_or(Value::Null, |p| text(p.as_str())),
            "contact_id" => opt_id(self.contact_id),
            "deal_id" => opt_id(self.deal_id),
            "company_id" => opt_id(self.company_id),
            _ => Value::Null,
        }
    }
    fn label(&self) -> String {
        self.text.chars().take(80).collect()
    }
    fn owner(&self) -> Option<UserId> {
        Some(self.owner_id)
    }
    fn references(&self) -> Vec<Reference> {
        let mut refs = vec![Reference {
            field: "owner_id",
            kind: EntityKind::User,
            id: self.owner_id.uuid(),
        }];
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
        if let Some(c) = self.company_id {
            refs.push(Reference {
                field: "company_id",
                kind: EntityKind::Company,
                id: c.uuid(),
            });
        }
        refs
    }
    fn normalize(&mut self) {
        trim(&mut self.text);
        trim_opt(&mut self.task_type);
    }
    fn validate(&self, config: &Configuration) -> Vec<FieldError> {
        let mut v = Validator::new();
        v.required("text", &self.text, limits::LONG_TEXT);
        if let Some(t) = &self.task_type {
            v.one_of("type", t, &config.task_types);
        }
        v.into_errors()
    }
}
