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

pub use crate::model::consent::{
    Consent, ConsentInput, ConsentStatus, FROM_HAS_NEWSLETTER, NEWSLETTER, SOURCE_MAX, check,
    consented_ids, set,
};
pub use crate::query::{PURPOSE_MAX, purpose_id, valid_purpose};

use super::Privacy;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::id::ContactId;
use crate::model::{Contact, EntityKind};
use crate::permission::Action;
use crate::service::{Actor, Records};
use crate::storage::Commit;

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
                    .commit_update(actor, current, record, commit, now)
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
