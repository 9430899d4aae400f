use serde::{Deserialize, Serialize};

use super::{CompanyId, ContactId, TagId, UserId, WorkspaceId};
use super::{
    Configuration, Entity, EntityKind, Reference, entity_common, opt_id, opt_text, opt_time, text,
};
use crate::clock::Timestamp;
use crate::error::{FieldError, FieldIssue};
use crate::query::Value;
use crate::validate::{Validator, limits, trim, trim_opt};

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

/// A person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Id.
    pub id: ContactId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// First name (required).
    pub first_name: String,
    /// Last name (required).
    pub last_name: String,
    /// Job title.
    pub title: Option<String>,
    /// Gender, free text.
    pub gender: Option<String>,
    /// Background notes.
    pub background: Option<String>,
    /// Email addresses.
    pub emails: Vec<EmailEntry>,
    /// Phone numbers.
    pub phones: Vec<PhoneEntry>,
    /// Employer.
    pub company_id: Option<CompanyId>,
    /// Employer's name, kept in sync by the core (for search and display).
    #[serde(default)]
    pub company_name: Option<String>,
    /// Status (one of the configuration's note statuses).
    pub status: Option<String>,
    /// Tags.
    pub tags: Vec<TagId>,
    /// Subscribed to the newsletter.
    pub has_newsletter: bool,
    /// LinkedIn URL.
    pub linkedin_url: Option<String>,
    /// Avatar URL.
    pub avatar: Option<String>,
    /// First contact.
    pub first_seen: Timestamp,
    /// Last contact; moved forward by new notes.
    pub last_seen: Timestamp,
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

/// Input to create a contact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)]
pub struct ContactInput {
    pub first_name: String,
    pub last_name: String,
    pub title: Option<String>,
    pub gender: Option<String>,
    pub background: Option<String>,
    pub emails: Vec<EmailEntry>,
    pub phones: Vec<PhoneEntry>,
    pub company_id: Option<CompanyId>,
    pub status: Option<String>,
    pub tags: Vec<TagId>,
    pub has_newsletter: bool,
    pub linkedin_url: Option<String>,
    pub avatar: Option<String>,
    /// Default: now.
    pub first_seen: Option<Timestamp>,
    /// Default: now.
    pub last_seen: Option<Timestamp>,
    /// Default: the creator.
    pub sales_id: Option<UserId>,
}

/// A contact update: absent fields are kept, `null` clears.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)]
pub struct ContactPatch {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    #[serde(deserialize_with = "super::nullable")]
    pub title: Option<Option<String>>,
    #[serde(deserialize_with = "super::nullable")]
    pub gender: Option<Option<String>>,
    #[serde(deserialize_with = "super::nullable")]
    pub background: Option<Option<String>>,
    pub emails: Option<Vec<EmailEntry>>,
    pub phones: Option<Vec<PhoneEntry>>,
    #[serde(deserialize_with = "super::nullable")]
    pub company_id: Option<Option<CompanyId>>,
    #[serde(deserialize_with = "super::nullable")]
    pub status: Option<Option<String>>,
    pub tags: Option<Vec<TagId>>,
    pub has_newsletter: Option<bool>,
    #[serde(deserialize_with = "super::nullable")]
    pub linkedin_url: Option<Option<String>>,
    #[serde(deserialize_with = "super::nullable")]
    pub avatar: Option<Option<String>>,
    pub first_seen: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
    #[serde(deserialize_with = "super::nullable")]
    pub sales_id: Option<Option<UserId>>,
}

impl Contact {
    pub(crate) fn from_input(i: ContactInput, now: Timestamp) -> Contact {
        Contact {
            id: ContactId::generate(),
            workspace_id: WorkspaceId::from_uuid(uuid::Uuid::nil()),
            first_name: i.first_name,
            last_name: i.last_name,
            title: i.title,
            gender: i.gender,
            background: i.background,
            emails: i.emails,
            phones: i.phones,
            company_id: i.company_id,
            company_name: None,
            status: i.status,
            tags: i.tags,
            has_newsletter: i.has_newsletter,
            linkedin_url: i.linkedin_url,
            avatar: i.avatar,
            first_seen: i.first_seen.unwrap_or(now),
            last_seen: i.last_seen.unwrap_or(now),
            sales_id: i.sales_id,
            created_at: Timestamp::EPOCH,
            updated_at: Timestamp::EPOCH,
            version: 0,
            deleted_at: None,
        }
    }

    pub(crate) fn apply(&mut self, p: ContactPatch) {
        use super::set;
        set(&mut self.first_name, p.first_name);
        set(&mut self.last_name, p.last_name);
        set(&mut self.title, p.title);
        set(&mut self.gender, p.gender);
        set(&mut self.background, p.background);
        set(&mut self.emails, p.emails);
        set(&mut self.phones, p.phones);
        set(&mut self.company_id, p.company_id);
        set(&mut self.status, p.status);
        set(&mut self.tags, p.tags);
        set(&mut self.has_newsletter, p.has_newsletter);
        set(&mut self.linkedin_url, p.linkedin_url);
        set(&mut self.avatar, p.avatar);
        set(&mut self.first_seen, p.first_seen);
        set(&mut self.last_seen, p.last_seen);
        set(&mut self.sales_id, p.sales_id);
    }

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
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
    }
}

impl Entity for Contact {
    const KIND: EntityKind = EntityKind::Contact;
    entity_common!(Contact, soft_delete);

    fn field(&self, name: &str) -> Value {
        match name {
            "created_at" => Value::Time(self.created_at),
            "updated_at" => Value::Time(self.updated_at),
            "first_name" => text(&self.first_name),
            "last_name" => text(&self.last_name),
            "last_seen" => Value::Time(self.last_seen),
            "first_seen" => Value::Time(self.first_seen),
            "company_id" => opt_id(self.company_id),
            "sales_id" => opt_id(self.sales_id),
            "status" => opt_text(&self.status),
            "has_newsletter" => Value::Bool(self.has_newsletter),
            "tags" => Value::List(self.tags.iter().map(|t| Value::Id(t.uuid())).collect()),
            "deleted_at" => opt_time(self.deleted_at),
            _ => Value::Null,
        }
    }
    fn mask(&mut self, masking: &crate::mask::Masking) {
        use crate::mask::{PersonalField, mask_email, mask_phone};
        if masking.masks(PersonalField::Emails) {
            for e in &mut self.emails {
                e.email = mask_email(&e.email);
            }
        }
        if masking.masks(PersonalField::PhoneNumbers) {
            for p in &mut self.phones {
                p.number = mask_phone(&p.number);
            }
        }
    }
    fn search_words(&self, out: &mut Vec<String>) {
        use crate::search::{phone_tokens_into, tokenize_into};
        tokenize_into(&self.first_name, out);
        tokenize_into(&self.last_name, out);
        for f in [&self.title, &self.company_name, &self.background]
            .into_iter()
            .flatten()
        {
            tokenize_into(f, out);
        }
        for e in &self.emails {
            tokenize_into(&e.email, out);
        }
        for p in &self.phones {
            phone_tokens_into(&p.number, out);
        }
    }
    fn contact_points(&self, out: &mut Vec<String>) {
        use crate::search::{phone_digits, tokenize_into};
        for e in &self.emails {
            tokenize_into(&e.email, out);
        }
        for p in &self.phones {
            let digits = phone_digits(&p.number);
            if !digits.is_empty() {
                out.push(digits);
            }
        }
    }
    fn label(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
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
        for t in &self.tags {
            refs.push(Reference {
                field: "tags",
                kind: EntityKind::Tag,
                id: t.uuid(),
            });
        }
        refs
    }
    fn normalize(&mut self) {
        trim(&mut self.first_name);
        trim(&mut self.last_name);
        for f in [
            &mut self.title,
            &mut self.gender,
            &mut self.background,
            &mut self.status,
            &mut self.linkedin_url,
            &mut self.avatar,
        ] {
            trim_opt(f);
        }
        for e in &mut self.emails {
            trim(&mut e.email);
        }
        for p in &mut self.phones {
            trim(&mut p.number);
        }
        let mut seen = std::collections::HashSet::new();
        self.tags.retain(|t| seen.insert(*t));
    }
    fn validate(&self, config: &Configuration) -> Vec<FieldError> {
        let mut v = Validator::new();
        v.required("first_name", &self.first_name, limits::SHORT_TEXT);
        v.required("last_name", &self.last_name, limits::SHORT_TEXT);
        v.opt_text("title", &self.title, limits::SHORT_TEXT);
        v.opt_text("gender", &self.gender, limits::SHORT_TEXT);
        v.opt_text("background", &self.background, limits::LONG_TEXT);
        v.max_items("emails", self.emails.len(), limits::LIST_ITEMS);
        for (i, e) in self.emails.iter().enumerate() {
            v.email(&format!("emails[{i}].email"), &e.email);
        }
        v.max_items("phones", self.phones.len(), limits::LIST_ITEMS);
        for (i, p) in self.phones.iter().enumerate() {
            v.phone(&format!("phones[{i}].number"), &p.number);
        }
        if let Some(s) = &self.status {
            v.one_of("status", s, &config.status_values());
        }
        v.max_items("tags", self.tags.len(), limits::LIST_ITEMS);
        v.opt_url("linkedin_url", &self.linkedin_url);
        v.opt_url("avatar", &self.avatar);
        if self.last_seen < self.first_seen {
            v.push_msg(
                "last_seen",
                FieldIssue::OutOfRange,
                "Must not be before first_seen.",
            );
        }
        v.into_errors()
    }
}
