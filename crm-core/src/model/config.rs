use serde::{Deserialize, Serialize};

use super::{Entity, EntityKind, entity_common};
use crate::clock::Timestamp;
use crate::error::{FieldError, FieldIssue};
use crate::id::{Id, WorkspaceId};
use crate::query::Value;
use crate::validate::{Validator, is_color, limits};

/// A deal pipeline stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DealStage {
    /// Stored value.
    pub value: String,
    /// Display label.
    pub label: String,
}

/// A contact status (Atomic CRM's "note statuses": cold, warm, hot, in-contract).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteStatus {
    /// Stored value.
    pub value: String,
    /// Display label.
    pub label: String,
    /// `#rrggbb`.
    pub color: String,
}

/// Per-workspace settings; one per workspace, its id equal to the workspace id. Everyone
/// reads it; only admins change it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Configuration {
    /// Equal to the workspace id.
    pub id: Id<Configuration>,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Deal stages, in pipeline order.
    pub deal_stages: Vec<DealStage>,
    /// Stage values that count as closed (won/lost) for the pipeline.
    pub deal_pipeline_closed: Vec<String>,
    /// Deal categories.
    pub deal_categories: Vec<String>,
    /// Contact statuses.
    pub note_statuses: Vec<NoteStatus>,
    /// Task types.
    pub task_types: Vec<String>,
    /// Company sectors.
    pub company_sectors: Vec<String>,
    /// ISO 4217 currency of deal amounts.
    pub currency: String,
    /// Personal fields the `read_only` role sees masked (see [`crate::mask`]; default none).
    #[serde(default)]
    pub masked_fields: Vec<crate::mask::PersonalField>,
    /// How long what is kept, which client details are stored (see
    /// [`super::RetentionPolicy`]).
    #[serde(default)]
    pub retention: super::RetentionPolicy,
    /// Creation instant.
    pub created_at: Timestamp,
    /// Last update instant.
    pub updated_at: Timestamp,
    /// Version.
    pub version: u64,
}

/// A configuration change; absent fields keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigurationPatch {
    /// Deal stages.
    pub deal_stages: Option<Vec<DealStage>>,
    /// Closed stage values.
    pub deal_pipeline_closed: Option<Vec<String>>,
    /// Deal categories.
    pub deal_categories: Option<Vec<String>>,
    /// Contact statuses.
    pub note_statuses: Option<Vec<NoteStatus>>,
    /// Task types.
    pub task_types: Option<Vec<String>>,
    /// Company sectors.
    pub company_sectors: Option<Vec<String>>,
    /// Currency.
    pub currency: Option<String>,
    /// Personal fields masked for `read_only`.
    pub masked_fields: Option<Vec<crate::mask::PersonalField>>,
    /// The retention policy (replaces the whole policy; absent fields take defaults).
    pub retention: Option<super::RetentionPolicy>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

impl Configuration {
    /// Atomic CRM's defaults for a new workspace.
    pub fn defaults(workspace_id: WorkspaceId, now: Timestamp) -> Self {
        let stage = |v: &str, l: &str| DealStage {
            value: v.into(),
            label: l.into(),
        };
        let status = |v: &str, l: &str, c: &str| NoteStatus {
            value: v.into(),
            label: l.into(),
            color: c.into(),
        };
        Configuration {
            id: workspace_id.cast(),
            workspace_id,
            deal_stages: vec![
                stage("opportunity", "Opportunity"),
                stage("proposal-sent", "Proposal Sent"),
                stage("in-negociation", "In Negotiation"),
                stage("won", "Won"),
                stage("lost", "Lost"),
                stage("delayed", "Delayed"),
            ],
            deal_pipeline_closed: strings(&["won", "lost"]),
            deal_categories: strings(&[
                "Other",
                "Copywriting",
                "Print project",
                "UI Design",
                "Website design",
            ]),
            note_statuses: vec![
                status("cold", "Cold", "#7dbde8"),
                status("warm", "Warm", "#e8cb7d"),
                status("hot", "Hot", "#e88b7d"),
                status("in-contract", "In Contract", "#a4e87d"),
            ],
            task_types: strings(&[
                "None",
                "Email",
                "Demo",
                "Lunch",
                "Meeting",
                "Follow-up",
                "Thank you",
                "Ship",
                "Call",
            ]),
            company_sectors: strings(&[
                "Communication Services",
                "Consumer Discretionary",
                "Consumer Staples",
                "Energy",
                "Financials",
                "Health Care",
                "Industrials",
                "Information Technology",
                "Materials",
                "Real Estate",
                "Utilities",
            ]),
            currency: "USD".into(),
            masked_fields: Vec::new(),
            retention: super::RetentionPolicy::default(),
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    pub(crate) fn apply(&mut self, p: ConfigurationPatch) {
        super::set(&mut self.deal_stages, p.deal_stages);
        super::set(&mut self.deal_pipeline_closed, p.deal_pipeline_closed);
        super::set(&mut self.deal_categories, p.deal_categories);
        super::set(&mut self.note_statuses, p.note_statuses);
        super::set(&mut self.task_types, p.task_types);
        super::set(&mut self.company_sectors, p.company_sectors);
        super::set(&mut self.currency, p.currency);
        if let Some(mut fields) = p.masked_fields {
            fields.sort_unstable();
            fields.dedup();
            self.masked_fields = fields;
        }
        super::set(&mut self.retention, p.retention);
    }

    /// Stage values, in order.
    pub fn stage_values(&self) -> Vec<String> {
        self.deal_stages.iter().map(|s| s.value.clone()).collect()
    }

    /// Contact status values.
    pub fn status_values(&self) -> Vec<String> {
        self.note_statuses.iter().map(|s| s.value.clone()).collect()
    }
}

fn check_list(v: &mut Validator, field: &str, items: &[String]) {
    v.max_items(field, items.len(), limits::CONFIG_ITEMS);
    let mut seen = std::collections::HashSet::new();
    for (i, item) in items.iter().enumerate() {
        v.required(&format!("{field}[{i}]"), item, limits::SHORT_TEXT);
        if !seen.insert(item.as_str()) {
            v.push(format!("{field}[{i}]"), FieldIssue::Duplicate);
        }
    }
}

impl Entity for Configuration {
    const KIND: EntityKind = EntityKind::Configuration;
    entity_common!(Configuration, no_soft_delete);

    fn field(&self, name: &str) -> Value {
        match name {
            "created_at" => Value::Time(self.created_at),
            "updated_at" => Value::Time(self.updated_at),
            _ => Value::Null,
        }
    }
    fn label(&self) -> String {
        "configuration".into()
    }
    fn validate(&self, _config: &Configuration) -> Vec<FieldError> {
        let mut v = Validator::new();
        if self.deal_stages.is_empty() {
            v.push("deal_stages", FieldIssue::Required);
        }
        let stages: Vec<String> = self.deal_stages.iter().map(|s| s.value.clone()).collect();
        check_list(&mut v, "deal_stages", &stages);
        for (i, s) in self.deal_stages.iter().enumerate() {
            v.required(
                &format!("deal_stages[{i}].label"),
                &s.label,
                limits::SHORT_TEXT,
            );
        }
        v.max_items(
            "deal_pipeline_closed",
            self.deal_pipeline_closed.len(),
            limits::CONFIG_ITEMS,
        );
        for (i, s) in self.deal_pipeline_closed.iter().enumerate() {
            v.one_of(&format!("deal_pipeline_closed[{i}]"), s, &stages);
        }
        check_list(&mut v, "deal_categories", &self.deal_categories);
        let statuses: Vec<String> = self.note_statuses.iter().map(|s| s.value.clone()).collect();
        check_list(&mut v, "note_statuses", &statuses);
        for (i, s) in self.note_statuses.iter().enumerate() {
            v.required(
                &format!("note_statuses[{i}].label"),
                &s.label,
                limits::SHORT_TEXT,
            );
            if !is_color(&s.color) {
                v.push(
                    format!("note_statuses[{i}].color"),
                    FieldIssue::InvalidFormat,
                );
            }
        }
        check_list(&mut v, "task_types", &self.task_types);
        check_list(&mut v, "company_sectors", &self.company_sectors);
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_uppercase()) {
            v.push("currency", FieldIssue::InvalidFormat);
        }
        let mut errors = v.into_errors();
        errors.extend(self.retention.validate());
        errors
    }
}
