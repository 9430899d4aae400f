use serde::{Deserialize, Serialize};

use super::{CompanyId, ContactId, DealId, UserId, WorkspaceId};
use super::{Configuration, Entity, EntityKind, Reference, entity_common, opt_id, opt_text, text};
use crate::clock::{Date, Timestamp};
use crate::error::{FieldError, FieldIssue};
use crate::query::Value;
use crate::validate::{Validator, limits, trim, trim_opt};

/// A sales opportunity, placed in a pipeline stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deal {
    /// Id.
    pub id: DealId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Name (required).
    pub name: String,
    /// Customer company.
    pub company_id: Option<CompanyId>,
    /// Contacts involved.
    pub contact_ids: Vec<ContactId>,
    /// Category (one of the configuration's deal categories).
    pub category: Option<String>,
    /// Stage (one of the configuration's deal stages).
    pub stage: String,
    /// Description.
    pub description: Option<String>,
    /// Amount in minor units of the workspace currency.
    pub amount: i64,
    /// Expected closing date.
    #[serde(default, with = "crate::clock::iso_date::option")]
    pub expected_closing_date: Option<Date>,
    /// Order inside the stage (ascending); maintained by moves.
    pub index: i64,
    /// When archived; archived deals are kept but leave the board.
    pub archived_at: Option<Timestamp>,
    /// Account manager.
    pub sales_id: Option<UserId>,
    /// Creation instant.
    pub created_at: Timestamp,
    /// Last update instant.
    pub updated_at: Timestamp,
    /// Version.
    pub version: u64,
    /// Soft-deletion instant.
    pub deleted_at: Option<Timestamp>,
}

/// Input to create a deal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)]
pub struct DealInput {
    pub name: String,
    pub company_id: Option<CompanyId>,
    pub contact_ids: Vec<ContactId>,
    pub category: Option<String>,
    /// Default: the first configured stage.
    pub stage: Option<String>,
    pub description: Option<String>,
    pub amount: i64,
    #[serde(with = "crate::clock::iso_date::option")]
    pub expected_closing_date: Option<Date>,
    /// Default: the creator.
    pub sales_id: Option<UserId>,
}

/// A deal update: absent fields are kept, `null` clears. Stage and order change through
/// `move_to`, archiving through `archive`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)]
pub struct DealPatch {
    pub name: Option<String>,
    #[serde(deserialize_with = "super::nullable")]
    pub company_id: Option<Option<CompanyId>>,
    pub contact_ids: Option<Vec<ContactId>>,
    #[serde(deserialize_with = "super::nullable")]
    pub category: Option<Option<String>>,
    pub stage: Option<String>,
    #[serde(deserialize_with = "super::nullable")]
    pub description: Option<Option<String>>,
    pub amount: Option<i64>,
    #[serde(with = "crate::clock::iso_date::nullable")]
    pub expected_closing_date: Option<Option<Date>>,
    #[serde(deserialize_with = "super::nullable")]
    pub sales_id: Option<Option<UserId>>,
}

impl Deal {
    pub(crate) fn from_input(i: DealInput, default_stage: String) -> Deal {
        Deal {
            id: DealId::generate(),
            workspace_id: WorkspaceId::from_uuid(uuid::Uuid::nil()),
            name: i.name,
            company_id: i.company_id,
            contact_ids: i.contact_ids,
            category: i.category,
            stage: i.stage.unwrap_or(default_stage),
            description: i.description,
            amount: i.amount,
            expected_closing_date: i.expected_closing_date,
            index: 0,
            archived_at: None,
            sales_id: i.sales_id,
            created_at: Timestamp::EPOCH,
            updated_at: Timestamp::EPOCH,
            version: 0,
            deleted_at: None,
        }
    }

    pub(crate) fn apply(&mut self, p: DealPatch) {
        use super::set;
        set(&mut self.name, p.name);
        set(&mut self.company_id, p.company_id);
        set(&mut self.contact_ids, p.contact_ids);
        set(&mut self.category, p.category);
        set(&mut self.stage, p.stage);
        set(&mut self.description, p.description);
        set(&mut self.amount, p.amount);
        set(&mut self.expected_closing_date, p.expected_closing_date);
        set(&mut self.sales_id, p.sales_id);
    }
}

impl Entity for Deal {
    const KIND: EntityKind = EntityKind::Deal;
    entity_common!(Deal, soft_delete);

    fn field(&self, name: &str) -> Value {
        match name {
            "created_at" => Value::Time(self.created_at),
            "updated_at" => Value::Time(self.updated_at),
            "name" => text(&self.name),
            "amount" => Value::Int(self.amount),
            "expected_closing_date" => self.expected_closing_date.map_or(Value::Null, Value::Date),
            "index" => Value::Int(self.index),
            "stage" => text(&self.stage),
            "category" => opt_text(&self.category),
            "company_id" => opt_id(self.company_id),
            "sales_id" => opt_id(self.sales_id),
            "archived" => Value::Bool(self.archived_at.is_some()),
            "contact_ids" => Value::List(
                self.contact_ids
                    .iter()
                    .map(|c| Value::Id(c.uuid()))
                    .collect(),
            ),
            _ => Value::Null,
        }
    }
    fn search_words(&self, out: &mut Vec<String>) {
        use crate::search::tokenize_into;
        tokenize_into(&self.name, out);
        for f in [&self.category, &self.description].into_iter().flatten() {
            tokenize_into(f, out);
        }
    }
    fn label(&self) -> String {
        self.name.clone()
    }
    fn owner(&self) -> Option<UserId> {
        self.sales_id
    }
    fn references(&self) -> Vec<Reference> {
        let mut refs = Vec::new();
        if let Some(c) = self.company_id {
            refs.push(Reference {
                field: "company_id",
                kind: EntityKind::Company,
                id: c.uuid(),
            });
        }
        if let Some(s) = self.sales_id {
            refs.push(Reference {
                field: "sales_id",
                kind: EntityKind::User,
                id: s.uuid(),
            });
        }
        for c in &self.contact_ids {
            refs.push(Reference {
                field: "contact_ids",
                kind: EntityKind::Contact,
                id: c.uuid(),
            });
        }
        refs
    }
    fn normalize(&mut self) {
        trim(&mut self.name);
        trim(&mut self.stage);
        trim_opt(&mut self.category);
        trim_opt(&mut self.description);
        let mut seen = std::collections::HashSet::new();
        self.contact_ids.retain(|c| seen.insert(*c));
    }
    fn validate(&self, config: &Configuration) -> Vec<FieldError> {
        let mut v = Validator::new();
        v.required("name", &self.name, limits::SHORT_TEXT);
        v.max_items("contact_ids", self.contact_ids.len(), limits::LIST_ITEMS);
        if let Some(c) = &self.category {
            v.one_of("category", c, &config.deal_categories);
        }
        if self.stage.is_empty() {
            v.push("stage", FieldIssue::Required);
        } else {
            v.one_of("stage", &self.stage, &config.stage_values());
        }
        v.opt_text("description", &self.description, limits::LONG_TEXT);
        v.range("amount", self.amount, 0, limits::AMOUNT_MAX);
        v.into_errors()
    }
}
