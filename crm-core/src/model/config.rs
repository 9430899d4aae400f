use serde::{Deserialize, Serialize};

use serde_json::Value as Json;

use super::declare::{Rules, entity};
use super::field::rules::*;
use super::field::{Checked, Normalize, Schema, constrained, object_schema};
use super::{Rule, WorkspaceId};
use crate::clock::Timestamp;
use crate::error::FieldIssue;
use crate::mask::PersonalField;
use crate::validate::limits::{CONFIG_ITEMS, SHORT_TEXT};
use crate::validate::{Validator, is_color};

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

entity! {
    /// Per-workspace settings; one per workspace, its id equal to the workspace id. Everyone
    /// reads it; only admins change it.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Configuration(ConfigurationId, keep) {
        /// Deal stages, in pipeline order (at least one; values unique).
        deal_stages: Vec<DealStage> => edit, none, items(CONFIG_ITEMS, &ANY);
        /// Stage values that count as closed (won/lost) for the pipeline.
        deal_pipeline_closed: Vec<String> => edit, none, items(CONFIG_ITEMS, &ANY);
        /// Deal categories (unique).
        deal_categories: Vec<String> => edit, none, items(CONFIG_ITEMS, &ITEM);
        /// Contact statuses (values unique).
        note_statuses: Vec<NoteStatus> => edit, none, items(CONFIG_ITEMS, &ANY);
        /// Task types (unique).
        task_types: Vec<String> => edit, none, items(CONFIG_ITEMS, &ITEM);
        /// Company sectors (unique).
        company_sectors: Vec<String> => edit, none, items(CONFIG_ITEMS, &ITEM);
        /// ISO 4217 currency of deal amounts (three capital letters).
        currency: String => edit, none, CURRENCY;
        /// Personal fields the `read_only` role sees masked (see [`crate::mask`]; default none).
        #[serde(default)]
        masked_fields: Vec<PersonalField> => patch_custom(Vec::new()), none, ANY;
    }
    input none;
    /// A configuration change; absent fields keep their value.
    patch ConfigurationPatch;
}

/// The rule of configuration list items: a one-line text, not blank.
const ITEM: Rule = required(SHORT_TEXT);

/// An ISO 4217 code: three capital letters.
const CURRENCY: Rule = format("^[A-Z]{3}$", |c| {
    c.len() == 3 && c.chars().all(|c| c.is_ascii_uppercase())
});

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
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// Applies a change: the declared fields, then `masked_fields` (kept sorted, without
    /// repeats).
    pub(crate) fn update(&mut self, mut patch: ConfigurationPatch) {
        let masked = patch.masked_fields.take();
        self.apply(patch);
        if let Some(mut fields) = masked {
            fields.sort_unstable();
            fields.dedup();
            self.masked_fields = fields;
        }
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

/// Reports each repeated value of a configuration list, at its item.
fn no_repeats<'a>(v: &mut Validator, field: &str, values: impl Iterator<Item = &'a str>) {
    let mut seen = std::collections::HashSet::new();
    for (i, value) in values.enumerate() {
        if !seen.insert(value) {
            v.push(format!("{field}[{i}]"), FieldIssue::Duplicate);
        }
    }
}

impl Rules for Configuration {
    fn label(&self) -> String {
        "configuration".into()
    }
    fn check_rules(&self, v: &mut Validator, _config: &Configuration) {
        if self.deal_stages.is_empty() {
            v.push("deal_stages", FieldIssue::Required);
        }
        no_repeats(
            v,
            "deal_stages",
            self.deal_stages.iter().map(|s| s.value.as_str()),
        );
        for (i, s) in self.deal_pipeline_closed.iter().enumerate() {
            if !self.deal_stages.iter().any(|d| d.value == *s) {
                v.push(format!("deal_pipeline_closed[{i}]"), FieldIssue::NotAllowed);
            }
        }
        no_repeats(
            v,
            "deal_categories",
            self.deal_categories.iter().map(String::as_str),
        );
        no_repeats(
            v,
            "note_statuses",
            self.note_statuses.iter().map(|s| s.value.as_str()),
        );
        no_repeats(v, "task_types", self.task_types.iter().map(String::as_str));
        no_repeats(
            v,
            "company_sectors",
            self.company_sectors.iter().map(String::as_str),
        );
    }
}

impl Checked for DealStage {
    fn check(&self, v: &mut Validator, name: &str, _rule: &Rule, _config: &Configuration) {
        v.required(name, &self.value, SHORT_TEXT);
        v.required(&format!("{name}.label"), &self.label, SHORT_TEXT);
    }
}

impl Checked for NoteStatus {
    fn check(&self, v: &mut Validator, name: &str, _rule: &Rule, _config: &Configuration) {
        v.required(name, &self.value, SHORT_TEXT);
        v.required(&format!("{name}.label"), &self.label, SHORT_TEXT);
        if !is_color(&self.color) {
            v.push(format!("{name}.color"), FieldIssue::InvalidFormat);
        }
    }
}

impl Normalize for Vec<DealStage> {}
impl Normalize for Vec<NoteStatus> {}
impl Normalize for Vec<PersonalField> {}

impl Schema for DealStage {
    fn schema() -> Json {
        object_schema(&[
            ("value", constrained::<String>(ITEM), true),
            ("label", constrained::<String>(ITEM), true),
        ])
    }
}

impl Schema for NoteStatus {
    fn schema() -> Json {
        object_schema(&[
            ("value", constrained::<String>(ITEM), true),
            ("label", constrained::<String>(ITEM), true),
            ("color", constrained::<String>(COLOR), true),
        ])
    }
}
