use serde::{Deserialize, Serialize};

use super::declare::{Rules, entity};
use super::field::rules::*;
use super::field::{ClearOnNull, Normalize, text_enum};
use super::{CompanyId, ContactId, DealId, UserId};
use crate::clock::{Date, Timestamp};
use crate::validate::limits::LONG_TEXT;

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
    /// Every priority, lowest first.
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Medium,
        Priority::High,
        Priority::Urgent,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

text_enum!(Priority);
impl Normalize for Option<Priority> {}
impl ClearOnNull for Priority {}

entity! {
    /// A to-do item owned by one user. Sales and read-only users only ever see their own.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Task(TaskId, soft_delete) {
        /// Owner (default: the creator).
        owner_id: UserId => edit(owner), filter, ANY, reference, owner;
        /// What to do (required).
        text: String => edit, none, required(LONG_TEXT);
        /// Type (one of the configuration's task types).
        task_type as "type": Option<String> => edit, filter, choice(TaskTypes);
        /// Due date.
        #[serde(default, with = "crate::clock::iso_date::option")]
        due_date: Option<Date> => edit, both, ANY;
        /// Priority.
        priority: Option<Priority> => edit, filter, ANY;
        /// Done; setting it stamps or clears `done_date`.
        completed: bool => patch_custom(false), filter, ANY;
        /// When it was completed (set by the core).
        done_date: Option<Timestamp> => core(None), none, ANY;
        /// Related contact.
        contact_id: Option<ContactId> => edit, filter, ANY, reference;
        /// Related deal.
        deal_id: Option<DealId> => edit, filter, ANY, reference;
        /// Related company.
        company_id: Option<CompanyId> => edit, filter, ANY, reference;
    }
    /// Input to create a task.
    input TaskInput(owner: UserId);
    /// A task update: absent fields are kept, `null` clears.
    patch TaskPatch;
}

impl Task {
    /// Applies a patch at `now`: its declared fields, then `completed`, which stamps or clears
    /// `done_date`.
    pub(crate) fn apply_at(&mut self, patch: TaskPatch, now: Timestamp) {
        let completed = patch.completed;
        self.apply(patch);
        if let Some(done) = completed {
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

impl Rules for Task {
    fn label(&self) -> String {
        self.text.chars().take(80).collect()
    }
}
