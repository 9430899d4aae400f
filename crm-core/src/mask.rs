//! Masking personal fields for roles that may not see them (DESIGN §13).
//!
//! A workspace's [`Configuration::masked_fields`] names the kinds of personal data
//! ([`PersonalField`]: e-mail addresses, phone numbers, postal addresses, tax identifiers)
//! that the `read_only` role sees masked — `j***@example.com`, `+1 ••• ••• 0100`. Every
//! other role sees them whole; the stored record is never changed.
//!
//! This module holds the masks and sits below the model: each entity declaration names the
//! [`PersonalField`] its personal fields belong to, and [`Entity::mask`] applies the masks to
//! them. The policy — who sees what masked — is the facade's (`service/present.rs`).
//!
//! # Why one function
//!
//! Every read path of the core that hands records to an actor — `get`, `list`, `search`,
//! and any later one (the change feed, exports) — ends in [`Crm::present`] (or, for typed
//! lists, [`Crm::present_all`], which is the same policy). The policy ([`Masking::for_actor`])
//! and the masks ([`Masking::apply`], each kind's [`Entity::mask`]) live there and here and
//! nowhere else, so a new path cannot mask differently, only forget to call it — and the
//! tests check each path.
//!
//! # Searching
//!
//! The search index holds the unmasked values, so a masked actor's search could otherwise
//! find a contact by an e-mail address it may not see — an oracle that would reveal the value
//! one guess at a time. So for a masked actor a search keeps only the records that match the
//! query on their *masked* form ([`Masking::still_matches`]): found by name, by the parts of
//! an address the mask shows, never by what it hides. Pages may then come back shorter than
//! asked, with the cursor of the unfiltered page (paging stays correct).
//!
//! [`Configuration::masked_fields`]: crate::model::Configuration::masked_fields
//! [`Entity::mask`]: crate::model::Entity::mask
//! [`Crm::present`]: crate::Crm::present
//! [`Crm::present_all`]: crate::Crm::present_all

use serde::{Deserialize, Serialize};

use crate::query::SearchQuery;
use crate::search::Searchable;

/// A kind of personal data that can be masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonalField {
    /// Contacts' e-mail addresses.
    Emails,
    /// Contacts' and companies' phone numbers.
    PhoneNumbers,
    /// Companies' street address and postal code.
    Addresses,
    /// Companies' tax identifier.
    TaxIdentifier,
}

impl PersonalField {
    /// Every kind.
    pub const ALL: [PersonalField; 4] = [
        PersonalField::Emails,
        PersonalField::PhoneNumbers,
        PersonalField::Addresses,
        PersonalField::TaxIdentifier,
    ];
}

/// What one actor sees masked (nothing, for most).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Masking {
    fields: Vec<PersonalField>,
}

/// The bullet masks are made of.
const DOTS: &str = "•••";

/// `john.smith@example.com` → `j***@example.com`; no `@`: `***`.
pub fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        _ => "***".to_owned(),
    }
}

/// `+1 (520) 555-0100` → `+1 ••• ••• 0100`: the country code (when written with `+` and
/// followed by a separator) and the last four digits stay; 4 digits or fewer: `••••`.
pub fn mask_phone(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    if digits.len() <= 4 {
        return "••••".to_owned();
    }
    let last: String = digits[digits.len() - 4..].iter().collect();
    let country = number.trim_start().strip_prefix('+').and_then(|rest| {
        let cc: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let separated = rest[cc.len()..].starts_with(|c: char| !c.is_ascii_digit());
        ((1..=3).contains(&cc.len()) && separated && digits.len() > cc.len() + 4).then_some(cc)
    });
    match country {
        Some(cc) => format!("+{cc} {DOTS} {DOTS} {last}"),
        None => format!("{DOTS} {DOTS} {last}"),
    }
}

/// A street address or postal code: `•••` (nothing of it shows).
pub fn mask_address(_value: &str) -> String {
    DOTS.to_owned()
}

/// A tax identifier: its last two characters stay when it has more than four.
pub fn mask_tax_identifier(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() > 4 {
        let tail: String = chars[chars.len() - 2..].iter().collect();
        format!("{DOTS}{tail}")
    } else {
        DOTS.to_owned()
    }
}

impl Masking {
    /// Masking of exactly `fields` (for hosts and tests).
    pub fn of(fields: &[PersonalField]) -> Masking {
        Masking {
            fields: fields.to_vec(),
        }
    }

    /// Whether nothing is masked.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Whether `field` is masked.
    pub fn masks(&self, field: PersonalField) -> bool {
        self.fields.contains(&field)
    }

    /// Whether `record` (already masked) still matches the search query `q`; always true
    /// without a query or without masking.
    pub fn still_matches<R: Searchable + ?Sized>(
        &self,
        record: &R,
        q: Option<&SearchQuery>,
    ) -> bool {
        match q {
            Some(q) if !self.is_empty() => crate::search::matches(record, &q.terms),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mask and the (value, masked value) pairs it must give.
    type Cases = (fn(&str) -> String, &'static [(&'static str, &'static str)]);

    #[test]
    fn masks_look_as_documented() {
        let masks: [Cases; 4] = [
            (
                mask_email,
                &[
                    ("jane.doe@example.com", "j***@example.com"),
                    ("nobody", "***"),
                    ("@example.com", "***"),
                ],
            ),
            (
                mask_phone,
                &[
                    ("+1 (520) 555-0100", "+1 ••• ••• 0100"),
                    ("+1 520 555 0100", "+1 ••• ••• 0100"),
                    ("+44 20 7946 0958", "+44 ••• ••• 0958"),
                    ("(520) 555-0100", "••• ••• 0100"),
                    ("+15205550100", "••• ••• 0100"),
                    ("0100", "••••"),
                ],
            ),
            (
                mask_tax_identifier,
                &[("DE123456789", "•••89"), ("1234", "•••")],
            ),
            (mask_address, &[("1 Main St", "•••")]),
        ];
        for (mask, cases) in masks {
            for (value, masked) in cases {
                assert_eq!(mask(value), *masked, "{value}");
            }
        }
    }
}
