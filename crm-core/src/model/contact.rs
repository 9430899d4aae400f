use serde::{Deserialize, Serialize};

use serde_json::Value as Json;

use super::declare::{Rules, entity};
use super::field::rules::*;
use super::field::{
    Checked, MaskText, Normalize, Schema, SearchText, constrained, enum_schema, object_schema,
};
use super::{CompanyId, Configuration, Rule, TagId, UserId};
use crate::clock::Timestamp;
use crate::error::FieldIssue;
use crate::model::consent::Consent;
use crate::query::Value;
use crate::validate::limits::{LIST_ITEMS, LONG_TEXT, SHORT_TEXT};
use crate::validate::{Validator, trim};

/// Kind of an email address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum EmailKind {
    /// Work.
    #[default]
    Work,
    /// Home.
    Home,
    /// Other.
    Other,
}

/// Kind of a phone number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PhoneKind {
    /// Work.
    #[default]
    Work,
    /// Home.
    Home,
    /// Other.
    Other,
}

/// One email address of a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailEntry {
    /// Address.
    pub email: String,
    /// Kind.
    #[serde(rename = "type", default)]
    pub kind: EmailKind,
}

/// One phone number of a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneEntry {
    /// Number as typed.
    pub number: String,
    /// Kind.
    #[serde(rename = "type", default)]
    pub kind: PhoneKind,
}

entity! {
    /// A person.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Contact(ContactId, soft_delete) {
        /// First name (required).
        first_name: String => edit, both, required(SHORT_TEXT), personal, search(words);
        /// Last name (required).
        last_name: String => edit, both, required(SHORT_TEXT), personal, search(words);
        /// Job title.
        title: Option<String> => edit, none, text(SHORT_TEXT), personal, search(words);
        /// Gender, free text.
        gender: Option<String> => edit, none, text(SHORT_TEXT), personal;
        /// Background notes.
        background: Option<String> => edit, none, text(LONG_TEXT), personal, search(words);
        /// Email addresses.
        emails: Vec<EmailEntry> => edit, none, items(LIST_ITEMS, &ANY), personal(Emails), search(email);
        /// Phone numbers.
        phones: Vec<PhoneEntry> => edit, none, items(LIST_ITEMS, &ANY), personal(PhoneNumbers), search(phone);
        /// Employer.
        company_id: Option<CompanyId> => edit, filter, ANY, reference;
        /// Employer's name, kept in sync by the core (for search and display).
        #[serde(default)]
        company_name: Option<String> => core(None), none, ANY, search(words);
        /// Status (one of the configuration's note statuses).
        status: Option<String> => edit, filter, choice(NoteStatuses);
        /// Tags.
        tags: Vec<TagId> => edit, filter, items(LIST_ITEMS, &ANY), reference;
        /// Subscribed to the newsletter (the consent purpose `newsletter`, kept in step: see
        /// [`crate::privacy::consent`]).
        has_newsletter: bool => edit, filter, ANY;
        /// Consents, one per purpose: the current state of each (the history is the audit
        /// trail). Set by `crm.privacy().record_consent` and by changes of `has_newsletter`;
        /// lists filter on `consented=<purpose>`.
        #[serde(default)]
        consents: Vec<Consent> => core(Vec::new()),
            filter_any("consented": Purpose = |v: &Vec<Consent>| Value::List(
                crate::model::consent::consented_ids(v).into_iter().map(Value::Id).collect()
            )), ANY, personal;
        /// LinkedIn URL.
        linkedin_url: Option<String> => edit, none, URL, personal;
        /// Avatar URL.
        avatar: Option<String> => edit, none, URL, personal;
        /// First contact (default: now).
        first_seen: Timestamp => edit(now), none, ANY;
        /// Last contact (default: now); moved forward by new notes.
        last_seen: Timestamp => edit(now), both, ANY;
        /// Account manager (default: the creator).
        sales_id: Option<UserId> => edit, filter, ANY, reference, owner;
    }
    /// Input to create a contact.
    input ContactInput(now: Timestamp);
    /// A contact update: absent fields are kept, `null` clears.
    patch ContactPatch;
}

impl Contact {
    /// Fills this contact's empty fields from `other` and unions the lists (Atomic CRM's
    /// `merge_contacts` rules: the winner's values win, nothing of the loser's is dropped).
    pub(crate) fn absorb(&mut self, other: &Contact) {
        fn fill<T: Clone>(a: &mut Option<T>, b: &Option<T>) {
            if a.is_none() {
                a.clone_from(b);
            }
        }
        fill(&mut self.title, &other.title);
        fill(&mut self.gender, &other.gender);
        fill(&mut self.background, &other.background);
        fill(&mut self.company_id, &other.company_id);
        if self.company_name.is_none() {
            self.company_name.clone_from(&other.company_name);
        }
        fill(&mut self.status, &other.status);
        fill(&mut self.linkedin_url, &other.linkedin_url);
        fill(&mut self.avatar, &other.avatar);
        fill(&mut self.sales_id, &other.sales_id);
        for e in &other.emails {
            if !self
                .emails
                .iter()
                .any(|m| m.email.eq_ignore_ascii_case(&e.email))
            {
                self.emails.push(e.clone());
            }
        }
        for p in &other.phones {
            if !self.phones.iter().any(|m| m.number == p.number) {
                self.phones.push(p.clone());
            }
        }
        for t in &other.tags {
            if !self.tags.contains(t) {
                self.tags.push(*t);
            }
        }
        self.has_newsletter |= other.has_newsletter;
        crate::model::consent::absorb(&mut self.consents, &other.consents);
        if let Some(n) = self
            .consents
            .iter()
            .find(|c| c.purpose == crate::model::consent::NEWSLETTER)
        {
            self.has_newsletter = n.status == crate::model::consent::ConsentStatus::Granted;
        }
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
    }
}

impl Rules for Contact {
    fn label(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }
    fn check_rules(&self, v: &mut Validator, _config: &Configuration) {
        if self.last_seen < self.first_seen {
            v.push_msg(
                "last_seen",
                FieldIssue::OutOfRange,
                "Must not be before first_seen.",
            );
        }
    }
}

impl Checked for EmailEntry {
    fn check(&self, v: &mut Validator, name: &str, _rule: &Rule, _config: &Configuration) {
        v.email(&format!("{name}.email"), &self.email);
    }
}

impl Checked for PhoneEntry {
    fn check(&self, v: &mut Validator, name: &str, _rule: &Rule, _config: &Configuration) {
        v.phone(&format!("{name}.number"), &self.number);
    }
}

impl Normalize for Vec<EmailEntry> {
    fn normalize(&mut self) {
        for e in self {
            trim(&mut e.email);
        }
    }
}

impl Normalize for Vec<PhoneEntry> {
    fn normalize(&mut self) {
        for p in self {
            trim(&mut p.number);
        }
    }
}

impl SearchText for EmailEntry {
    fn each_text(&self, f: &mut dyn FnMut(&str)) {
        f(&self.email);
    }
}

impl SearchText for PhoneEntry {
    fn each_text(&self, f: &mut dyn FnMut(&str)) {
        f(&self.number);
    }
}

impl MaskText for EmailEntry {
    fn mask_with(&mut self, mask: fn(&str) -> String) {
        self.email = mask(&self.email);
    }
}

impl MaskText for PhoneEntry {
    fn mask_with(&mut self, mask: fn(&str) -> String) {
        self.number = mask(&self.number);
    }
}

impl Schema for EmailKind {
    fn schema() -> Json {
        enum_schema(&[EmailKind::Work, EmailKind::Home, EmailKind::Other])
    }
}

impl Schema for PhoneKind {
    fn schema() -> Json {
        enum_schema(&[PhoneKind::Work, PhoneKind::Home, PhoneKind::Other])
    }
}

/// Checked where it is recorded ([`crate::model::consent::check`], re-exported by [`crate::privacy::consent`]).
impl Checked for Consent {}

impl Schema for Consent {
    fn schema() -> Json {
        object_schema(&[
            ("purpose", String::schema(), true),
            (
                "status",
                enum_schema(&[
                    crate::model::consent::ConsentStatus::Granted,
                    crate::model::consent::ConsentStatus::Withdrawn,
                ]),
                true,
            ),
            ("at", Timestamp::schema(), true),
            ("source", Option::<String>::schema(), false),
            ("note", Option::<String>::schema(), false),
        ])
    }
}

impl Schema for EmailEntry {
    fn schema() -> Json {
        object_schema(&[
            ("email", constrained::<String>(EMAIL), true),
            ("type", EmailKind::schema(), false),
        ])
    }
}

impl Schema for PhoneEntry {
    fn schema() -> Json {
        object_schema(&[
            ("number", constrained::<String>(PHONE), true),
            ("type", PhoneKind::schema(), false),
        ])
    }
}
