//! The vocabulary of entity declarations (see [`super::declare`]): what a declared field is
//! ([`FieldDef`]), the [`Rule`] that checks it, and the small traits through which a field's
//! Rust type says how it is filtered ([`QueryValue`]), checked ([`Checked`]), trimmed
//! ([`Normalize`]), patched ([`PatchField`]), searched, masked, referenced and described as a
//! JSON schema ([`Schema`]).
//!
//! The traits are implemented for the types fields have; a declaration that gives a field a
//! rule or a flag its type cannot honour does not compile (or, for a rule that does not fit
//! the type, fails `every_rule_fits_its_field`).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value as Json, json};

use super::{Configuration, Entity, Reference, UserId};
use crate::clock::{Date, Timestamp};
use crate::error::FieldIssue;
use crate::kind::{EntityKind, Id};
use crate::mask::PersonalField;
use crate::query::{FieldSpec, FieldType, Value};
use crate::validate::{Validator, is_color, limits, trim, trim_opt};

/// Everything an entity's declaration says, for programs: its kind, whether it soft deletes,
/// and its fields in declaration (and JSON) order. The bookkeeping fields (`id`,
/// `workspace_id`, `created_at`, `updated_at`, `version` and, for soft-deleting kinds,
/// `deleted_at`) are common to every record and not listed.
#[derive(Debug)]
pub struct Declaration {
    /// The kind.
    pub kind: EntityKind,
    /// The record type's name (`"Contact"`).
    pub name: &'static str,
    /// Whether records are soft deleted (they carry `deleted_at`).
    pub soft_delete: bool,
    /// The create input's type name, if the kind has one (`"ContactInput"`).
    pub input: Option<&'static str>,
    /// The update patch's type name, if the kind has one (`"ContactPatch"`).
    pub patch: Option<&'static str>,
    /// The declared fields.
    pub fields: &'static [FieldDef],
}

impl Declaration {
    /// The field with this JSON name.
    pub fn field(&self, name: &str) -> Option<&'static FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The fields holding personal data (what a data-subject export gathers and an erasure
    /// clears), in declaration order.
    pub fn personal_data_fields(&self) -> impl Iterator<Item = &'static FieldDef> + use<> {
        self.fields.iter().filter(|f| f.personal)
    }
}

/// Whether and how a field is given by a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// In the create input (same type) and in the patch.
    Edit,
    /// In the create input as an option with a default, and in the patch.
    EditDefault,
    /// In the create input only.
    Create,
    /// In the create input only, as an option with a default.
    CreateDefault,
    /// Set by the core only.
    Core,
    /// Set by the core, changed through the patch by the kind's own code (the generated
    /// `apply` leaves it alone), e.g. a task's `completed`, which also stamps `done_date`.
    PatchCustom,
}

impl Access {
    /// Whether the field is in the create input.
    pub const fn in_input(self) -> bool {
        matches!(
            self,
            Access::Edit | Access::EditDefault | Access::Create | Access::CreateDefault
        )
    }
    /// Whether the input field is an option the core fills with a default.
    pub const fn defaulted(self) -> bool {
        matches!(self, Access::EditDefault | Access::CreateDefault)
    }
    /// Whether the field is in the patch.
    pub const fn in_patch(self) -> bool {
        matches!(
            self,
            Access::Edit | Access::EditDefault | Access::PatchCustom
        )
    }
}

/// How a field's words enter full-text search (see [`crate::search`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchKind {
    /// Its words.
    Words,
    /// A phone number: its words and digit run; the digit run is also a contact point.
    Phone,
    /// An email address: its words, which are also contact points.
    Email,
}

/// One declared field.
#[derive(Debug)]
pub struct FieldDef {
    /// Its name in JSON (and in filters, sorts and field errors).
    pub name: &'static str,
    /// Its doc comment, one entry a line.
    pub doc: &'static [&'static str],
    /// Who sets it.
    pub access: Access,
    /// How lists filter and sort by it, if they do.
    pub query: Option<FieldSpec>,
    /// What the validator holds it to (beyond what the kind's own rules add).
    pub rule: Rule,
    /// Personal data: what a data-subject export gathers and an erasure clears.
    pub personal: bool,
    /// The personal-data class `read_only` may see masked, if any.
    pub mask: Option<PersonalField>,
    /// How it is searched, if it is.
    pub search: Option<SearchKind>,
    /// Whether it refers to records that must exist in the same workspace.
    pub reference: bool,
    /// Whether it names the record's owner.
    pub owner: bool,
    /// The JSON schema of its Rust type, without the rule's constraints.
    pub type_schema: fn() -> Json,
}

impl FieldDef {
    /// The doc comment as one line of text.
    pub fn description(&self) -> String {
        self.doc
            .iter()
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The field's JSON schema as records carry it: its type's with the rule's constraints
    /// (`maxLength`, `pattern`, `format`, ranges, enums, `maxItems`).
    pub fn schema(&self) -> Json {
        let mut s = (self.type_schema)();
        self.rule.constrain(&mut s);
        let d = self.description();
        if !d.is_empty()
            && let Json::Object(m) = &mut s
        {
            m.insert("description".into(), Json::String(d));
        }
        s
    }

    /// Whether a create input must give it (the validator refuses it empty or absent).
    pub fn required_in_input(&self) -> bool {
        matches!(self.access, Access::Edit | Access::Create) && self.rule.requires_value()
    }
}

/// A list in the workspace [`Configuration`] that a field's value must be one of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigList {
    /// `company_sectors`.
    CompanySectors,
    /// `deal_categories`.
    DealCategories,
    /// The values of `deal_stages`.
    DealStages,
    /// The values of `note_statuses`.
    NoteStatuses,
    /// `task_types`.
    TaskTypes,
}

impl ConfigList {
    /// Whether `value` is on the list in `config`.
    pub fn allows(self, config: &Configuration, value: &str) -> bool {
        match self {
            ConfigList::CompanySectors => config.company_sectors.iter().any(|s| s == value),
            ConfigList::DealCategories => config.deal_categories.iter().any(|s| s == value),
            ConfigList::DealStages => config.deal_stages.iter().any(|s| s.value == value),
            ConfigList::NoteStatuses => config.note_statuses.iter().any(|s| s.value == value),
            ConfigList::TaskTypes => config.task_types.iter().any(|s| s == value),
        }
    }

    /// The configuration field holding the list.
    pub const fn config_field(self) -> &'static str {
        match self {
            ConfigList::CompanySectors => "company_sectors",
            ConfigList::DealCategories => "deal_categories",
            ConfigList::DealStages => "deal_stages",
            ConfigList::NoteStatuses => "note_statuses",
            ConfigList::TaskTypes => "task_types",
        }
    }
}

/// What the validator holds a field to. Each rule fits some types (texts, integers, lists);
/// on an optional field it applies to a present value.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// Nothing beyond the type (and the field type's own checks, for nested records).
    Any,
    /// A text of at most `max` chars without NUL; when `required`, not blank.
    Text {
        /// Most chars.
        max: usize,
        /// Not blank.
        required: bool,
    },
    /// An http(s) URL ([`crate::validate::is_url`]), at most [`limits::URL`] chars.
    Url,
    /// An email address ([`crate::validate::is_email`]), at most [`limits::EMAIL`] chars.
    Email,
    /// A phone number ([`crate::validate::is_phone`]), at most [`limits::PHONE`] chars.
    Phone,
    /// A `#rrggbb` color.
    Color,
    /// A text `check` accepts, which is what `pattern` (its schema) matches.
    Format {
        /// The `^…$` regular expression stating the format.
        pattern: &'static str,
        /// The check.
        check: fn(&str) -> bool,
    },
    /// An integer in `min..=max`.
    Range {
        /// Smallest.
        min: i64,
        /// Largest.
        max: i64,
    },
    /// One of these integers.
    Among(&'static [u32]),
    /// One of a configuration list's values; when `required`, not empty either.
    Choice {
        /// Which list.
        list: ConfigList,
        /// Not empty.
        required: bool,
    },
    /// A list of at most `max` items, each held to `each`.
    Items {
        /// Most items.
        max: usize,
        /// The items' rule.
        each: &'static Rule,
    },
}

/// Short names for rules, for declarations.
pub mod rules {
    pub use super::ConfigList::*;
    use super::{ConfigList, Rule};

    /// No rule.
    pub const ANY: Rule = Rule::Any;
    /// An http(s) URL.
    pub const URL: Rule = Rule::Url;
    /// An email address.
    pub const EMAIL: Rule = Rule::Email;
    /// A phone number.
    pub const PHONE: Rule = Rule::Phone;
    /// A `#rrggbb` color.
    pub const COLOR: Rule = Rule::Color;

    /// A text of at most `max` chars (blank allowed).
    pub const fn text(max: usize) -> Rule {
        Rule::Text {
            max,
            required: false,
        }
    }
    /// A text of at most `max` chars, not blank.
    pub const fn required(max: usize) -> Rule {
        Rule::Text {
            max,
            required: true,
        }
    }
    /// A text `check` accepts; `pattern` states it in the schema.
    pub const fn format(pattern: &'static str, check: fn(&str) -> bool) -> Rule {
        Rule::Format { pattern, check }
    }
    /// An integer in `min..=max`.
    pub const fn range(min: i64, max: i64) -> Rule {
        Rule::Range { min, max }
    }
    /// One of these integers.
    pub const fn among(values: &'static [u32]) -> Rule {
        Rule::Among(values)
    }
    /// One of a configuration list's values.
    pub const fn choice(list: ConfigList) -> Rule {
        Rule::Choice {
            list,
            required: false,
        }
    }
    /// One of a configuration list's values, not empty.
    pub const fn required_choice(list: ConfigList) -> Rule {
        Rule::Choice {
            list,
            required: true,
        }
    }
    /// At most `max` items, each held to `each`.
    pub const fn items(max: usize, each: &'static Rule) -> Rule {
        Rule::Items { max, each }
    }
}

/// `^…$` patterns the schema states for the rules the validator checks by hand. They follow
/// the validator's functions (`crate::validate`); where a regular expression cannot say
/// exactly the same (Unicode letters in host names), they accept a subset of what the
/// validator accepts, so a value that matches is never refused.
pub mod patterns {
    /// A text without NUL characters.
    pub const TEXT: &str = "^[^\\u0000]*$";
    /// A text without NUL characters, with at least one non-blank character.
    pub const REQUIRED_TEXT: &str = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$";
    /// `http://` or `https://`, a host of letters, digits, `.`, `-`, `:`, `[`, `]`, `@`,
    /// then an optional path, query or fragment without spaces or control characters.
    pub const URL: &str =
        "^https?://[A-Za-z0-9.:@\\[\\]-]+([/?#][^\\s\\u0000-\\u001f\\u007f-\\u009f]*)?$";
    /// `local@domain.tld`: a local part of dot-separated runs without spaces, control
    /// characters or `@`; domain labels of letters, digits and inner hyphens (at most 63); a
    /// top-level label of two or more letters.
    pub const EMAIL: &str = "^[^@\\s.\\u0000-\\u001f\\u007f-\\u009f]+(\\.[^@\\s.\\u0000-\\u001f\\u007f-\\u009f]+)*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,63}$";
    /// An optional `+`, then digits and the separators ` .-()xX`, at least three digits.
    pub const PHONE: &str = "^\\+?[ .()xX-]*([0-9][ .()xX-]*){3,}$";
    /// `#rrggbb`.
    pub const COLOR: &str = "^#[0-9A-Fa-f]{6}$";
}

impl Rule {
    /// Whether the rule refuses an empty or absent value.
    pub const fn requires_value(&self) -> bool {
        matches!(
            self,
            Rule::Text { required: true, .. } | Rule::Email | Rule::Choice { required: true, .. }
        )
    }

    /// Adds the rule's constraints to a field's type schema.
    pub fn constrain(&self, schema: &mut Json) {
        let Json::Object(m) = schema else { return };
        let mut put = |k: &str, v: Json| {
            m.insert(k.to_owned(), v);
        };
        match *self {
            Rule::Any => {}
            Rule::Text { max, required } => {
                put("maxLength", json!(max));
                if required {
                    put("minLength", json!(1));
                    put("pattern", json!(patterns::REQUIRED_TEXT));
                } else {
                    put("pattern", json!(patterns::TEXT));
                }
            }
            Rule::Url => {
                put("format", json!("uri"));
                put("maxLength", json!(limits::URL));
                put("pattern", json!(patterns::URL));
            }
            Rule::Email => {
                // Not `email` (RFC 5321, ASCII only): local parts may be internationalized.
                put("format", json!("idn-email"));
                put("maxLength", json!(limits::EMAIL));
                put("pattern", json!(patterns::EMAIL));
            }
            Rule::Phone => {
                put("maxLength", json!(limits::PHONE));
                put("pattern", json!(patterns::PHONE));
            }
            Rule::Color => put("pattern", json!(patterns::COLOR)),
            Rule::Format { pattern, .. } => put("pattern", json!(pattern)),
            Rule::Range { min, max } => {
                put("minimum", json!(min));
                put("maximum", json!(max));
            }
            Rule::Among(values) => {
                put("enum", json!(values));
                if m.get("nullable") == Some(&Json::Bool(true)) {
                    // `Option` made the schema nullable before the rule named the values.
                    nullable(schema);
                }
            }
            Rule::Choice { list, required } => {
                if required {
                    put("minLength", json!(1));
                }
                put(
                    "x-crm-one-of",
                    json!(format!("configuration.{}", list.config_field())),
                );
            }
            Rule::Items { max, each } => {
                put("maxItems", json!(max));
                if let Some(items) = m.get_mut("items") {
                    each.constrain(items);
                }
            }
        }
    }

    /// Whether the rule can apply to a value of this JSON schema type (`"string"`,
    /// `"integer"`, `"array"`, ...).
    pub fn fits(&self, schema: &Json) -> bool {
        let ty = schema.get("type").and_then(Json::as_str);
        match self {
            Rule::Any => true,
            Rule::Text { .. }
            | Rule::Url
            | Rule::Email
            | Rule::Phone
            | Rule::Color
            | Rule::Format { .. }
            | Rule::Choice { .. } => ty == Some("string"),
            Rule::Range { .. } | Rule::Among(_) => ty == Some("integer"),
            Rule::Items { each, .. } => {
                ty == Some("array") && schema.get("items").is_some_and(|i| each.fits(i))
            }
        }
    }
}

/// The value of a field's type in filters and sorts.
pub trait QueryValue {
    /// Its type.
    const TYPE: FieldType;
    /// Whether it holds several values (a filter matches if any does).
    const MULTI: bool = false;
    /// As a filter or sort value.
    fn query_value(&self) -> Value;
}

/// [`QueryValue`] of plain types: `type => FieldType variant, |v| its value`.
macro_rules! query_values {
    ($($t:ty => $field_type:ident, |$v:ident| $value:expr;)*) => {$(
        impl QueryValue for $t {
            const TYPE: FieldType = FieldType::$field_type;
            fn query_value(&self) -> Value {
                let $v = self;
                $value
            }
        }
    )*};
}
query_values! {
    String => Text, |s| Value::Text(s.clone());
    bool => Bool, |b| Value::Bool(*b);
    i64 => Int, |n| Value::Int(*n);
    u32 => Int, |n| Value::Int(i64::from(*n));
    Timestamp => Time, |t| Value::Time(*t);
    Date => Date, |d| Value::Date(*d);
}
impl<T> QueryValue for Id<T> {
    const TYPE: FieldType = FieldType::Id;
    fn query_value(&self) -> Value {
        Value::Id(self.uuid())
    }
}
impl<T: QueryValue> QueryValue for Option<T> {
    const TYPE: FieldType = T::TYPE;
    fn query_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, T::query_value)
    }
}
impl<T: QueryValue> QueryValue for Vec<T> {
    const TYPE: FieldType = T::TYPE;
    const MULTI: bool = true;
    fn query_value(&self) -> Value {
        Value::List(self.iter().map(T::query_value).collect())
    }
}

/// The filter and sort spec of a field of type `T` (`filter`, `sort`: what lists may do).
pub const fn query_spec<T: QueryValue>(name: &'static str, filter: bool, sort: bool) -> FieldSpec {
    FieldSpec {
        name,
        ty: T::TYPE,
        filter,
        sort: sort && !T::MULTI,
        multi: T::MULTI,
    }
}

/// How a field's type is held to its [`Rule`]. Types without rules of their own keep the
/// default, which checks nothing; nested records (email entries, attachments, ...) check
/// their own fields, named below the field's (`emails[0].email`).
pub trait Checked {
    /// Records every violation of `rule` by this value of field `name`.
    fn check(&self, _v: &mut Validator, _name: &str, _rule: &Rule, _config: &Configuration) {}
}

impl Checked for String {
    fn check(&self, v: &mut Validator, name: &str, rule: &Rule, config: &Configuration) {
        match *rule {
            Rule::Text {
                max,
                required: true,
            } => v.required(name, self, max),
            Rule::Text {
                max,
                required: false,
            } => v.text(name, self, max),
            Rule::Url => v.url(name, self),
            Rule::Email => v.email(name, self),
            Rule::Phone => v.phone(name, self),
            Rule::Color => {
                if !is_color(self) {
                    v.push(name, FieldIssue::InvalidFormat);
                }
            }
            Rule::Format { check, .. } => {
                if !check(self) {
                    v.push(name, FieldIssue::InvalidFormat);
                }
            }
            Rule::Choice { list, required } => {
                if required && self.is_empty() {
                    v.push(name, FieldIssue::Required);
                } else if !list.allows(config, self) {
                    v.push(name, FieldIssue::NotAllowed);
                }
            }
            Rule::Any | Rule::Range { .. } | Rule::Among(_) | Rule::Items { .. } => {}
        }
    }
}
/// Types without rules of their own.
macro_rules! unchecked {
    ($($t:ty),* $(,)?) => { $( impl Checked for $t {} )* };
}
unchecked!(bool, u64, Timestamp, Date);
impl<T> Checked for Id<T> {}

impl Checked for i64 {
    fn check(&self, v: &mut Validator, name: &str, rule: &Rule, _: &Configuration) {
        if let Rule::Range { min, max } = *rule {
            v.range(name, *self, min, max);
        }
    }
}
impl Checked for u32 {
    fn check(&self, v: &mut Validator, name: &str, rule: &Rule, _: &Configuration) {
        if let Rule::Among(values) = rule
            && !values.contains(self)
        {
            v.push(name, FieldIssue::NotAllowed);
        }
    }
}
impl<T: Checked> Checked for Option<T> {
    fn check(&self, v: &mut Validator, name: &str, rule: &Rule, config: &Configuration) {
        if let Some(x) = self {
            x.check(v, name, rule, config);
        }
    }
}
impl<T: Checked> Checked for Vec<T> {
    fn check(&self, v: &mut Validator, name: &str, rule: &Rule, config: &Configuration) {
        let (max, each) = match *rule {
            Rule::Items { max, each } => (Some(max), each),
            _ => (None, &Rule::Any),
        };
        if let Some(max) = max {
            v.max_items(name, self.len(), max);
        }
        for (i, x) in self.iter().enumerate() {
            x.check(v, &format!("{name}[{i}]"), each, config);
        }
    }
}

/// How a field's type is tidied before validation: texts are trimmed (optional ones become
/// `None` when blank), id lists lose repeats. Types with nothing to tidy keep the default.
pub trait Normalize {
    /// Tidies the value in place.
    fn normalize(&mut self) {}
}

impl Normalize for String {
    fn normalize(&mut self) {
        trim(self);
    }
}
impl Normalize for Option<String> {
    fn normalize(&mut self) {
        trim_opt(self);
    }
}
impl Normalize for Vec<String> {
    fn normalize(&mut self) {
        self.iter_mut().for_each(trim);
    }
}
impl<T> Normalize for Vec<Id<T>> {
    fn normalize(&mut self) {
        let mut seen = std::collections::HashSet::new();
        self.retain(|t| seen.insert(*t));
    }
}

/// Types that are kept as they are.
macro_rules! untouched {
    ($($t:ty),* $(,)?) => { $( impl Normalize for $t {} )* };
}
untouched!(
    bool,
    i64,
    Timestamp,
    Option<u32>,
    Option<Timestamp>,
    Option<Date>,
);
impl<T> Normalize for Id<T> {}
impl<T> Normalize for Option<Id<T>> {}

/// How a field's type is read from a patch: `Option<Self>` there, `None` when the field is
/// absent. For a field that is itself optional, `null` means "clear" (`Some(None)`); for any
/// other field `null` is the same as absent (keep).
pub trait PatchField: Sized + Serialize + DeserializeOwned {
    /// Reads a present field.
    ///
    /// # Errors
    /// The deserializer's, when the value is not of the field's type.
    fn deserialize_patch<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Self>, D::Error> {
        Option::<Self>::deserialize(d)
    }
    /// Writes a patch field (`null` for absent or cleared).
    ///
    /// # Errors
    /// The serializer's.
    fn serialize_patch<S: Serializer>(value: &Option<Self>, s: S) -> Result<S::Ok, S::Error> {
        value.serialize(s)
    }
}

/// Non-optional types: `null` keeps the value.
macro_rules! keep_on_null {
    ($($t:ty),* $(,)?) => { $( impl PatchField for $t {} )* };
}
keep_on_null!(String, bool, i64, Timestamp);
impl<T> PatchField for Id<T> {}
impl<T: Serialize + DeserializeOwned> PatchField for Vec<T> {}

/// Optional types: `null` clears the value.
impl<T: Serialize + DeserializeOwned + ClearOnNull> PatchField for Option<T> {
    fn deserialize_patch<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Self>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}
impl PatchField for Option<Date> {
    fn deserialize_patch<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Self>, D::Error> {
        crate::clock::iso_date::nullable::deserialize(d)
    }
    fn serialize_patch<S: Serializer>(value: &Option<Self>, s: S) -> Result<S::Ok, S::Error> {
        crate::clock::iso_date::nullable::serialize(value, s)
    }
}

/// Types whose `Option` clears on `null` in a patch (see [`PatchField`]).
pub trait ClearOnNull {}
impl ClearOnNull for String {}
impl ClearOnNull for u32 {}
impl ClearOnNull for Timestamp {}
impl<T> ClearOnNull for Id<T> {}

/// `#[serde(with = "…::patch")]` for patch fields (see [`PatchField`]).
pub mod patch {
    use serde::{Deserializer, Serializer};

    use super::PatchField;

    /// Reads a present patch field.
    ///
    /// # Errors
    /// The deserializer's.
    pub fn deserialize<'de, D: Deserializer<'de>, T: PatchField>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        T::deserialize_patch(d)
    }

    /// Writes a patch field.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer, T: PatchField>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        T::serialize_patch(v, s)
    }
}

/// Texts a searchable field holds.
pub trait SearchText {
    /// Calls `f` with each text.
    fn each_text(&self, f: &mut dyn FnMut(&str));
}
impl SearchText for String {
    fn each_text(&self, f: &mut dyn FnMut(&str)) {
        f(self);
    }
}
impl<T: SearchText> SearchText for Option<T> {
    fn each_text(&self, f: &mut dyn FnMut(&str)) {
        if let Some(x) = self {
            x.each_text(f);
        }
    }
}
impl<T: SearchText> SearchText for Vec<T> {
    fn each_text(&self, f: &mut dyn FnMut(&str)) {
        for x in self {
            x.each_text(f);
        }
    }
}

impl SearchKind {
    /// Appends the words `text` is found by.
    pub fn words(self, text: &str, out: &mut Vec<String>) {
        match self {
            SearchKind::Words | SearchKind::Email => crate::search::tokenize_into(text, out),
            SearchKind::Phone => crate::search::phone_tokens_into(text, out),
        }
    }
    /// Appends the contact points `text` gives.
    pub fn points(self, text: &str, out: &mut Vec<String>) {
        match self {
            SearchKind::Words => {}
            SearchKind::Email => crate::search::tokenize_into(text, out),
            SearchKind::Phone => {
                let digits = crate::search::phone_digits(text);
                if !digits.is_empty() {
                    out.push(digits);
                }
            }
        }
    }
}

/// Texts a masked field holds, replaced by their masks.
pub trait MaskText {
    /// Replaces each text `t` by `mask(t)`.
    fn mask_with(&mut self, mask: fn(&str) -> String);
}
impl MaskText for String {
    fn mask_with(&mut self, mask: fn(&str) -> String) {
        *self = mask(self);
    }
}
impl<T: MaskText> MaskText for Option<T> {
    fn mask_with(&mut self, mask: fn(&str) -> String) {
        if let Some(x) = self {
            x.mask_with(mask);
        }
    }
}
impl<T: MaskText> MaskText for Vec<T> {
    fn mask_with(&mut self, mask: fn(&str) -> String) {
        for x in self {
            x.mask_with(mask);
        }
    }
}

/// The mask of each personal-data class.
pub fn mask_of(field: PersonalField) -> fn(&str) -> String {
    use crate::mask::{mask_address, mask_email, mask_phone, mask_tax_identifier};
    match field {
        PersonalField::Emails => mask_email,
        PersonalField::PhoneNumbers => mask_phone,
        PersonalField::Addresses => mask_address,
        PersonalField::TaxIdentifier => mask_tax_identifier,
    }
}

/// Ids a reference field holds.
pub trait RefIds {
    /// Appends a [`Reference`] per id, as field `field`.
    fn references(&self, field: &'static str, out: &mut Vec<Reference>);
}
impl<T: Entity> RefIds for Id<T> {
    fn references(&self, field: &'static str, out: &mut Vec<Reference>) {
        out.push(Reference {
            field,
            kind: T::KIND,
            id: self.uuid(),
        });
    }
}
impl<T: RefIds> RefIds for Option<T> {
    fn references(&self, field: &'static str, out: &mut Vec<Reference>) {
        if let Some(x) = self {
            x.references(field, out);
        }
    }
}
impl<T: RefIds> RefIds for Vec<T> {
    fn references(&self, field: &'static str, out: &mut Vec<Reference>) {
        for x in self {
            x.references(field, out);
        }
    }
}

/// The user an owner field names.
pub trait OwnerField {
    /// The owner, if any.
    fn owner(&self) -> Option<UserId>;
}
impl OwnerField for UserId {
    fn owner(&self) -> Option<UserId> {
        Some(*self)
    }
}
impl OwnerField for Option<UserId> {
    fn owner(&self) -> Option<UserId> {
        *self
    }
}

/// A type's JSON schema (OpenAPI 3.0's dialect: `nullable` for optional values), as it is
/// on the wire.
pub trait Schema {
    /// The schema.
    fn schema() -> Json;
}

fn typed(ty: &str) -> Json {
    json!({ "type": ty })
}

impl Schema for String {
    fn schema() -> Json {
        typed("string")
    }
}
impl Schema for bool {
    fn schema() -> Json {
        typed("boolean")
    }
}
impl Schema for i64 {
    fn schema() -> Json {
        json!({ "type": "integer", "format": "int64" })
    }
}
/// [`Schema`] of types whose schema is one fixed value: `type => schema`.
macro_rules! fixed_schemas {
    ($($t:ty => $schema:expr;)*) => {$(
        impl $crate::model::field::Schema for $t {
            fn schema() -> serde_json::Value {
                $schema
            }
        }
    )*};
}
pub(crate) use fixed_schemas;

fixed_schemas! {
    u64 => json!({ "type": "integer", "format": "int64", "minimum": 0 });
    u32 => json!({ "type": "integer", "format": "int32", "minimum": 0, "maximum": u32::MAX });
    Timestamp => json!({ "type": "string", "format": "date-time" });
    Date => json!({ "type": "string", "format": "date" });
}
impl<T> Schema for Id<T> {
    fn schema() -> Json {
        json!({ "type": "string", "format": "uuid" })
    }
}
impl<T: Schema> Schema for Option<T> {
    fn schema() -> Json {
        let mut s = T::schema();
        nullable(&mut s);
        s
    }
}

/// Makes `schema` admit `null` (OpenAPI 3.0: `nullable: true`; an `enum` must then list
/// `null` too, or a null is still refused by it).
pub fn nullable(schema: &mut Json) {
    if let Json::Object(m) = schema {
        m.insert("nullable".into(), Json::Bool(true));
        if let Some(Json::Array(values)) = m.get_mut("enum")
            && !values.contains(&Json::Null)
        {
            values.push(Json::Null);
        }
    }
}
impl<T: Schema> Schema for Vec<T> {
    fn schema() -> Json {
        json!({ "type": "array", "items": T::schema() })
    }
}

/// The field-type impls of a wire-named enum (with `as_str` and `ALL`): a text in filters
/// and sorts, no rules of its own, one of `ALL` in the JSON schema.
macro_rules! text_enum {
    ($t:ident) => {
        impl $crate::model::field::QueryValue for $t {
            const TYPE: $crate::query::FieldType = $crate::query::FieldType::Text;
            fn query_value(&self) -> $crate::query::Value {
                $crate::query::Value::Text(self.as_str().to_owned())
            }
        }
        impl $crate::model::field::Checked for $t {}
        impl $crate::model::field::Schema for $t {
            fn schema() -> serde_json::Value {
                $crate::model::field::enum_schema(&$t::ALL)
            }
        }
    };
}
pub(crate) use text_enum;

/// The schema of an enum from its values' wire names.
pub fn enum_schema<T: Serialize>(values: &[T]) -> Json {
    let names: Vec<Json> = values
        .iter()
        .filter_map(|v| serde_json::to_value(v).ok())
        .collect();
    json!({ "type": "string", "enum": names })
}

/// The schema of a nested record: `properties` as (name, schema, required) triples, no other
/// property allowed (the nested types refuse unknown fields).
pub fn object_schema(properties: &[(&str, Json, bool)]) -> Json {
    let props: Map<String, Json> = properties
        .iter()
        .map(|(n, s, _)| ((*n).to_owned(), s.clone()))
        .collect();
    let required: Vec<&str> = properties
        .iter()
        .filter(|(_, _, r)| *r)
        .map(|(n, _, _)| *n)
        .collect();
    let mut o = json!({ "type": "object", "properties": props, "additionalProperties": false });
    if !required.is_empty() {
        o["required"] = json!(required);
    }
    o
}

/// A type's schema with a rule's constraints.
pub fn constrained<T: Schema>(rule: Rule) -> Json {
    let mut s = T::schema();
    rule.constrain(&mut s);
    s
}

impl Schema for PersonalField {
    fn schema() -> Json {
        enum_schema(&PersonalField::ALL)
    }
}
impl Checked for PersonalField {}
