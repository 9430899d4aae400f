//! The consent records a contact carries ([`Consent`], one per purpose) and the rules that
//! keep them: input checks, replacing a purpose's entry, merging, the filter ids of consented
//! purposes and the `has_newsletter` link. The data half of [`crate::privacy::consent`]
//! (which adds recording a consent through the engine, and re-exports all of this); below
//! [`crate::model::Contact`], which holds them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::error::{FieldError, FieldIssue};
use crate::model::Contact;
use crate::query::{purpose_id, valid_purpose};

/// The purpose Atomic CRM's `has_newsletter` stands for.
pub const NEWSLETTER: &str = "newsletter";

/// The source recorded when a consent follows a change of `has_newsletter`.
pub const FROM_HAS_NEWSLETTER: &str = "has_newsletter";

/// The longest source and note.
pub const SOURCE_MAX: usize = 200;

/// Granted or withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    /// The person agreed.
    Granted,
    /// The person withdrew (or refused).
    Withdrawn,
}

/// A contact's current consent for one purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// What for (see [`crate::privacy::consent`]).
    pub purpose: String,
    /// Granted or withdrawn.
    pub status: ConsentStatus,
    /// When it was given or withdrawn.
    pub at: Timestamp,
    /// Where it came from (a form, an e-mail, a phone call, `has_newsletter`).
    pub source: Option<String>,
    /// Free text.
    pub note: Option<String>,
}

/// What a caller records: a purpose's new state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentInput {
    /// What for.
    pub purpose: String,
    /// Granted or withdrawn.
    pub status: ConsentStatus,
    /// When (default: now; not in the future).
    #[serde(default)]
    pub at: Option<Timestamp>,
    /// Where it came from.
    #[serde(default)]
    pub source: Option<String>,
    /// Free text.
    #[serde(default)]
    pub note: Option<String>,
}

/// Every field problem of a consent input, `at` checked against `now`.
pub fn check(input: &ConsentInput, now: Timestamp) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if input.purpose.is_empty() {
        errors.push(FieldError::new("purpose", FieldIssue::Required));
    } else if !valid_purpose(&input.purpose) {
        errors.push(FieldError::new("purpose", FieldIssue::InvalidFormat));
    }
    if input.at.is_some_and(|at| at > now) {
        errors.push(FieldError::new("at", FieldIssue::OutOfRange));
    }
    for (field, v) in [("source", &input.source), ("note", &input.note)] {
        if v.as_ref().is_some_and(|s| s.chars().count() > SOURCE_MAX) {
            errors.push(FieldError::new(field, FieldIssue::TooLong));
        }
    }
    errors
}

/// Sets a purpose's entry in `consents` (replacing the previous one).
pub fn set(consents: &mut Vec<Consent>, consent: Consent) {
    consents.retain(|c| c.purpose != consent.purpose);
    consents.push(consent);
    consents.sort_by(|a, b| a.purpose.cmp(&b.purpose));
}

/// The purposes a contact with these consents consents to, as filter ids.
pub fn consented_ids(consents: &[Consent]) -> Vec<Uuid> {
    consents
        .iter()
        .filter(|c| c.status == ConsentStatus::Granted)
        .filter_map(|c| purpose_id(&c.purpose))
        .collect()
}

/// Merges a merged-away contact's consents into the winner's: per purpose the later entry
/// wins.
pub(crate) fn absorb(consents: &mut Vec<Consent>, other: &[Consent]) {
    for o in other {
        match consents.iter().find(|c| c.purpose == o.purpose) {
            Some(c) if c.at >= o.at => {}
            _ => set(consents, o.clone()),
        }
    }
}

/// Serves `consented=newsletter` by `has_newsletter=true`, which stands for the same (the two
/// are kept in step) and also finds contacts stored before consents existed.
pub(crate) fn rewrite_query(query: &mut crate::query::ListQuery) {
    use crate::query::{FilterOp, Value};
    let newsletter = purpose_id(NEWSLETTER).map(Value::Id);
    for f in &mut query.filters {
        if f.field == "consented"
            && matches!(&f.op, FilterOp::Eq(v) if Some(v) == newsletter.as_ref())
        {
            f.field = "has_newsletter".into();
            f.op = FilterOp::Eq(Value::Bool(true));
        }
    }
}

/// Keeps a contact's `has_newsletter` and its `newsletter` consent in step after a save
/// (see [`crate::privacy::consent`]): a changed `has_newsletter` (or a new contact subscribed)
/// records a consent from the source [`FROM_HAS_NEWSLETTER`].
pub(crate) fn follow_has_newsletter(
    before: Option<&Contact>,
    record: &mut Contact,
    now: Timestamp,
) {
    let was = before.map(|b| b.has_newsletter);
    if was == Some(record.has_newsletter) || (was.is_none() && !record.has_newsletter) {
        return;
    }
    let status = if record.has_newsletter {
        ConsentStatus::Granted
    } else {
        ConsentStatus::Withdrawn
    };
    if record
        .consents
        .iter()
        .any(|c| c.purpose == NEWSLETTER && c.status == status)
    {
        return;
    }
    set(
        &mut record.consents,
        Consent {
            purpose: NEWSLETTER.to_owned(),
            status,
            at: now,
            source: Some(FROM_HAS_NEWSLETTER.to_owned()),
            note: None,
        },
    );
}
