//! Field validation helpers and the limits every field is held to.
//!
//! Validation lives in the core ("backend validation only"): every entity checks every field
//! and reports *all* violations at once as [`FieldError`]s. Lengths are counted in Unicode
//! scalar values (`char`s), after trimming surrounding whitespace.

use crate::error::{FieldError, FieldIssue};

/// Limits applied to fields. Public so hosts can mirror them in their UIs.
pub mod limits {
    /// Names, titles, labels and other one-line texts.
    pub const SHORT_TEXT: usize = 200;
    /// Long free texts (background, description).
    pub const LONG_TEXT: usize = 10_000;
    /// Note bodies.
    pub const NOTE_TEXT: usize = 50_000;
    /// URLs.
    pub const URL: usize = 2_048;
    /// Email addresses (RFC 5321 path limit).
    pub const EMAIL: usize = 254;
    /// Local part of an email address.
    pub const EMAIL_LOCAL: usize = 64;
    /// Phone numbers, as typed.
    pub const PHONE: usize = 32;
    /// Minimum digits in a phone number.
    pub const PHONE_MIN_DIGITS: usize = 3;
    /// Tag names.
    pub const TAG_NAME: usize = 50;
    /// Items in a list field (emails, phones, tags, contact ids, links, attachments).
    pub const LIST_ITEMS: usize = 50;
    /// Items in configuration lists (stages, categories, ...).
    pub const CONFIG_ITEMS: usize = 100;
    /// Largest deal amount in minor units (10^15).
    pub const AMOUNT_MAX: i64 = 1_000_000_000_000_000;
    /// Largest attachment size in bytes declared in metadata (10 GiB).
    pub const ATTACHMENT_SIZE_MAX: u64 = 10 * 1024 * 1024 * 1024;
}

/// Collects field errors for one input.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    /// An empty validator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an error.
    pub fn push(&mut self, field: impl Into<String>, issue: FieldIssue) {
        self.errors.push(FieldError::new(field, issue));
    }

    /// Records an error with a specific message.
    pub fn push_msg(
        &mut self,
        field: impl Into<String>,
        issue: FieldIssue,
        msg: impl Into<String>,
    ) {
        self.errors
            .push(FieldError::with_message(field, issue, msg));
    }

    /// A required one-line text of at most `max` chars.
    pub fn required(&mut self, field: &str, value: &str, max: usize) {
        if value.trim().is_empty() {
            self.push(field, FieldIssue::Required);
        } else {
            self.text(field, value, max);
        }
    }

    /// A text of at most `max` chars (empty allowed), without NUL characters (no store can
    /// keep them everywhere: PostgreSQL's text and jsonb cannot).
    pub fn text(&mut self, field: &str, value: &str, max: usize) {
        if value.contains('\0') {
            self.push_msg(
                field,
                FieldIssue::InvalidFormat,
                "Must not contain NUL characters.",
            );
        } else if value.chars().count() > max {
            self.push_msg(
                field,
                FieldIssue::TooLong,
                format!("At most {max} characters."),
            );
        }
    }

    /// An optional text of at most `max` chars.
    pub fn opt_text(&mut self, field: &str, value: &Option<String>, max: usize) {
        if let Some(v) = value {
            self.text(field, v, max);
        }
    }

    /// An optional URL (http or https).
    pub fn opt_url(&mut self, field: &str, value: &Option<String>) {
        if let Some(v) = value {
            self.url(field, v);
        }
    }

    /// A URL (http or https).
    pub fn url(&mut self, field: &str, value: &str) {
        if value.chars().count() > limits::URL {
            self.push(field, FieldIssue::TooLong);
        } else if !is_url(value) {
            self.push_msg(field, FieldIssue::InvalidFormat, "Expected an http(s) URL.");
        }
    }

    /// An email address.
    pub fn email(&mut self, field: &str, value: &str) {
        if value.is_empty() {
            self.push(field, FieldIssue::Required);
        } else if value.chars().count() > limits::EMAIL {
            self.push(field, FieldIssue::TooLong);
        } else if !is_email(value) {
            self.push_msg(
                field,
                FieldIssue::InvalidFormat,
                "Expected an email address.",
            );
        }
    }

    /// A phone number.
    pub fn phone(&mut self, field: &str, value: &str) {
        if value.is_empty() {
            self.push(field, FieldIssue::Required);
        } else if value.chars().count() > limits::PHONE {
            self.push(field, FieldIssue::TooLong);
        } else if !is_phone(value) {
            self.push_msg(field, FieldIssue::InvalidFormat, "Expected a phone number.");
        }
    }

    /// A list of at most `max` items.
    pub fn max_items(&mut self, field: &str, len: usize, max: usize) {
        if len > max {
            self.push_msg(field, FieldIssue::TooMany, format!("At most {max} items."));
        }
    }

    /// A value that must be one of `allowed` (when `allowed` is non-empty).
    pub fn one_of(&mut self, field: &str, value: &str, allowed: &[String]) {
        if !allowed.iter().any(|a| a == value) {
            self.push(field, FieldIssue::NotAllowed);
        }
    }

    /// A value within `min..=max`.
    pub fn range<T: PartialOrd>(&mut self, field: &str, value: T, min: T, max: T) {
        if value < min || value > max {
            self.push(field, FieldIssue::OutOfRange);
        }
    }

    /// Whether nothing failed so far.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// Appends errors collected elsewhere.
    pub fn extend(&mut self, errors: impl IntoIterator<Item = FieldError>) {
        self.errors.extend(errors);
    }

    /// The collected errors.
    pub fn into_errors(self) -> Vec<FieldError> {
        self.errors
    }
}

/// Trims surrounding whitespace in place.
pub fn trim(s: &mut String) {
    let t = s.trim();
    if t.len() != s.len() {
        *s = t.to_string();
    }
}

/// Trims an optional text and turns blank into `None`.
pub fn trim_opt(s: &mut Option<String>) {
    if let Some(v) = s {
        trim(v);
        if v.is_empty() {
            *s = None;
        }
    }
}

/// Whether `s` looks like an email address: `local@domain.tld`, no spaces or control
/// characters, local part at most 64 chars, domain labels of letters, digits and hyphens.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    if local.is_empty()
        || local.chars().count() > limits::EMAIL_LOCAL
        || local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '@')
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.chars().count() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic))
}

/// Whether `s` looks like a phone number: digits with optional `+` prefix, spaces, dots,
/// dashes, parentheses and an `x` extension marker; at least 3 digits.
pub fn is_phone(s: &str) -> bool {
    let body = s.strip_prefix('+').unwrap_or(s);
    let digits = body.chars().filter(char::is_ascii_digit).count();
    digits >= limits::PHONE_MIN_DIGITS
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '.' | '-' | '(' | ')' | 'x' | 'X'))
}

/// Whether `s` is an absolute http(s) URL with a host and no whitespace.
pub fn is_url(s: &str) -> bool {
    let rest = if let Some(r) = s.strip_prefix("https://") {
        r
    } else if let Some(r) = s.strip_prefix("http://") {
        r
    } else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    !host.is_empty()
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && host
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '@'))
}

/// Whether `s` is a `#rrggbb` color.
pub fn is_color(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_format() {
        for ok in ["a@b.co", "jane.doe+crm@example.com", "ü@exämple.de"] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "a@b.c",
            "a b@c.de",
            "@c.de",
            "a@.de",
            "a@-b.de",
            "a..b@c.de",
            "a@b.d3",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn phone_format() {
        for ok in [
            "+1 (555) 123-4567",
            "555.1234",
            "123",
            "+33 1 23 45 67 89 x12",
        ] {
            assert!(is_phone(ok), "{ok}");
        }
        for bad in ["", "12", "call me", "+", "555-CALL", "++123"] {
            assert!(!is_phone(bad), "{bad}");
        }
    }

    #[test]
    fn url_format() {
        assert!(is_url("https://example.com/a?b#c"));
        assert!(is_url("http://localhost:8080"));
        assert!(!is_url("javascript:alert(1)"));
        assert!(!is_url("https://"));
        assert!(!is_url("https://exa mple.com"));
        assert!(!is_url("ftp://example.com"));
    }
}
