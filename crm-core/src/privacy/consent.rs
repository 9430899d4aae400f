//! Consent: what a contact agreed to, per purpose.
//!
//! A contact carries one [`Consent`] per purpose — its current state (`granted` or
//! `withdrawn`, when, from which source, with an optional note). Recording a new state
//! replaces the purpose's entry in an ordinary audited update, so the **history** is the
//! contact's audit trail (every entry's `consents` change; the export lists them as
//! `consent_history`). Lists filter on the purposes a contact currently consents to:
//! `GET /contacts?consented=newsletter`.
//!
//! # Atomic CRM's `has_newsletter`
//!
//! `has_newsletter` is the purpose `newsletter`, kept in step both ways: recording a
//! `newsletter` consent sets `has_newsletter` to whether it is granted, and changing
//! `has_newsletter` through an update records a `newsletter` consent with the source
//! `has_newsletter` (granted when it becomes `true`, withdrawn when `false`). A contact
//! imported with `has_newsletter: true` and no consent entry counts as consenting to
//! `newsletter`: the filter `consented=newsletter` is served as `has_newsletter=true`, which
//! stands for the same.
//!
//! # Purposes
//!
//! A purpose is a short name: 1 to [`PURPOSE_MAX`] characters of `a-z`, `0-9`, `_`, `-` and
//! `.` (`newsletter`, `marketing.email`, `profiling`). For list filters each purpose stands
//! for a fixed id ([`purpose_id`], an injective packing of the name into a UUID), so every
//! store filters on it like on a tag.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Privacy;
use crate::audit::AuditAction;
use crate::clock::Timestamp;
use crate::error::{Error, ErrorKind, FieldError, FieldIssue, Operation, Result};
use crate::id::ContactId;
use crate::model::{Contact, EntityKind};
use crate::permission::Action;
use crate::service::{Actor, Records};
use crate::storage::Commit;

/// The purpose Atomic CRM's `has_newsletter` stands for.
pub const NEWSLETTER: &str = "newsletter";

/// The source recorded when a consent follows a change of `has_newsletter`.
pub const FROM_HAS_NEWSLETTER: &str = "has_newsletter";

/// The longest purpose name.
pub const PURPOSE_MAX: usize = 22;

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
    /// What for (see the [module docs](self)).
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

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_-.";

/// Whether `purpose` is a valid purpose name.
pub fn valid_purpose(purpose: &str) -> bool {
    (1..=PURPOSE_MAX).contains(&purpose.len()) && purpose.bytes().all(|b| ALPHABET.contains(&b))
}

/// The fixed id standing for a purpose in list filters: the name packed in base 40 (0 ends
/// it) into the 122 free bits of a version-8 UUID, so two purposes never share an id.
/// `None` for an invalid name.
pub fn purpose_id(purpose: &str) -> Option<Uuid> {
    if !valid_purpose(purpose) {
        return None;
    }
    let mut n: u128 = 0;
    for b in purpose.bytes() {
        let digit = ALPHABET.iter().position(|a| *a == b)? as u128 + 1;
        n = n * 40 + digit;
    }
    // 40^22 < 2^118: the value fits the 122 free bits around the version and variant.
    let mut bytes = [0u8; 16];
    // Layout: 48 bits | version 4 bits | 12 bits | variant 2 bits | 62 bits = 122 bits.
    let top48 = (n >> 74) as u64 & 0xFFFF_FFFF_FFFF;
    let mid12 = (n >> 62) as u64 & 0xFFF;
    let low62 = n as u64 & 0x3FFF_FFFF_FFFF_FFFF;
    bytes[..6].copy_from_slice(&top48.to_be_bytes()[2..]);
    let v = 0x8000 | mid12 as u16;
    bytes[6..8].copy_from_slice(&v.to_be_bytes());
    bytes[8..].copy_from_slice(&(low62 | 0x8000_0000_0000_0000).to_be_bytes());
    Some(Uuid::from_bytes(bytes))
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
/// (see the [module docs](self)): a changed `has_newsletter` (or a new contact subscribed)
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

impl Privacy<'_> {
    /// Records a contact's consent for a purpose: replaces the purpose's entry in an
    /// audited update (the audit trail keeps the history), and for `newsletter` sets
    /// `has_newsletter` to match. Who may update the contact may record it.
    ///
    /// # Errors
    /// `Validation` naming `purpose` (missing or malformed), `at` (in the future), `source`
    /// or `note` (too long); `NotFound`, `Forbidden`; storage failures. Nothing is written
    /// on error.
    pub async fn record_consent(
        &self,
        actor: &Actor,
        id: ContactId,
        input: ConsentInput,
    ) -> Result<Contact> {
        let fail = |e: Error| e.with_context(Operation::Save, EntityKind::Contact);
        let now = self.crm.now();
        let errors = check(&input, now);
        if !errors.is_empty() {
            return Err(fail(Error::validation(errors)));
        }
        let contacts = self.crm.contacts();
        let saved = self
            .crm
            .retrying(|| async {
                let current = contacts
                    .load(actor, id.uuid(), false, Operation::Save)
                    .await?;
                Records::<Contact>::authorize(actor, Action::Update, &current, Operation::Save)?;
                let mut record = current.clone();
                set(
                    &mut record.consents,
                    Consent {
                        purpose: input.purpose.clone(),
                        status: input.status,
                        at: input.at.unwrap_or(now),
                        source: input.source.clone(),
                        note: input.note.clone(),
                    },
                );
                if input.purpose == NEWSLETTER {
                    record.has_newsletter = input.status == ConsentStatus::Granted;
                }
                let commit = Commit::new(actor.workspace_id());
                contacts
                    .commit_change(
                        actor,
                        current,
                        record,
                        AuditAction::Update,
                        commit,
                        now,
                        Operation::Save,
                    )
                    .await
            })
            .await
            .map_err(fail)?;
        let mut shown = self
            .crm
            .present_all(actor, vec![saved], None)
            .await
            .map_err(fail)?;
        shown
            .pop()
            .ok_or_else(|| fail(Error::new(ErrorKind::NotFound)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purpose_ids_are_distinct_versioned_and_stable() {
        let names = [
            "a",
            "b",
            "aa",
            "newsletter",
            "newsletter.",
            "marketing.email",
            "zzzzzzzzzzzzzzzzzzzzzz",
            "......................",
            ".....................",
            "0",
            "_",
        ];
        let ids: Vec<Uuid> = names.iter().map(|n| purpose_id(n).unwrap()).collect();
        for (i, a) in ids.iter().enumerate() {
            assert_eq!(a.get_version_num(), 8);
            assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
            for b in &ids[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(purpose_id("newsletter"), purpose_id("newsletter"));
        for bad in ["", "News", "a b", "ü", &"a".repeat(23)] {
            assert_eq!(purpose_id(bad), None, "{bad}");
        }
    }
}
