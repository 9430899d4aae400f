//! Coded errors.
//!
//! Every failure in `crm` is one [`Error`]: a stable [`ErrorKind`] (which carries the public
//! code, `E1xxx`..`E5xxx`), optional context (what the caller was doing to which kind of
//! record), the list of failing fields for validation errors, and the underlying cause kept as
//! a [`std::error::Error::source`] for the server log.
//!
//! The `Display` form is the user-facing message, e.g. `Unable to save contact (E2001)`. It
//! never contains the source, SQL, file paths or any secret: log the source chain separately
//! (with the request id) and show users only `to_string()`.
//!
//! The error dictionary (`docs/errors.md`) is generated from [`ErrorKind::ALL`] by
//! [`dictionary_markdown`]; a test keeps the committed file in sync.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::kind::EntityKind;

/// Boxed underlying cause of an error (driver error, I/O error, ...).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Shorthand for `Result<T, crm_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! error_kinds {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $code:literal, $status:literal, $message:literal, $meaning:literal, $action:literal;
    )*) => {
        /// The kind of an [`Error`], with its stable public code.
        ///
        /// Codes never change meaning once released; new kinds get new codes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorKind {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorKind {
            /// Every kind, in code order (used for the error dictionary).
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$variant),*];

            /// The numeric part of the public code (e.g. `2001` for `E2001`).
            pub const fn number(self) -> u16 {
                match self { $(ErrorKind::$variant => $code,)* }
            }

            /// The HTTP status an adapter should answer with.
            pub const fn http_status(self) -> u16 {
                match self { $(ErrorKind::$variant => $status,)* }
            }

            /// The generic user-facing message, used when an error has no context.
            pub const fn generic_message(self) -> &'static str {
                match self { $(ErrorKind::$variant => $message,)* }
            }

            /// What the error means (for the dictionary).
            pub const fn meaning(self) -> &'static str {
                match self { $(ErrorKind::$variant => $meaning,)* }
            }

            /// What a user can do about it (for the dictionary).
            pub const fn user_action(self) -> &'static str {
                match self { $(ErrorKind::$variant => $action,)* }
            }

            /// The variant name, e.g. `"VersionConflict"`.
            pub const fn name(self) -> &'static str {
                match self { $(ErrorKind::$variant => stringify!($variant),)* }
            }
        }
    };
}

error_kinds! {
    /// No valid credentials were presented.
    Unauthenticated = 1001, 401, "Please sign in", "The request carries no valid credentials.", "Sign in again.";
    /// The caller is known but its role does not allow the action.
    Forbidden = 1002, 403, "You are not allowed to do this", "Your role does not allow this action.", "Ask an administrator for access.";
    /// Email/password did not match an active account (deliberately vague).
    InvalidCredentials = 1003, 401, "Email or password is incorrect", "The email and password do not match an active account.", "Check the email and password, or reset the password.";
    /// The acting user is disabled.
    AccountDisabled = 1004, 401, "Please sign in", "The account used for this request is disabled.", "Contact an administrator.";
    /// The access token has expired.
    TokenExpired = 1005, 401, "Your session has expired", "The access token is past its expiry time.", "Refresh the session or sign in again.";
    /// The token is malformed, forged, or not for this service.
    TokenInvalid = 1006, 401, "Please sign in", "The token is malformed, its signature or algorithm is wrong, or it was issued for another service.", "Sign in again.";
    /// The session was revoked or has expired.
    SessionRevoked = 1007, 401, "Your session has ended", "The session was logged out, revoked, or expired.", "Sign in again.";
    /// A refresh token was used again after it had been replaced; the session is revoked.
    RefreshTokenReused = 1008, 401, "Your session has ended for your security", "A refresh token that had already been used was presented again; the whole session was revoked.", "Sign in again; if this keeps happening, change your password.";
    /// A password-reset token is unknown, used or expired.
    ResetTokenInvalid = 1009, 401, "This reset link is no longer valid", "The password-reset token is unknown, already used, or expired.", "Request a new reset link.";
    /// The current password given for a password change is wrong.
    WrongPassword = 1010, 403, "The current password is incorrect", "A password change needs the current password.", "Enter your current password.";
    /// Some fields of the input are invalid; see the field list.
    Validation = 2001, 422, "Some fields are invalid", "One or more fields failed validation; each is listed with its own code.", "Correct the listed fields and try again.";
    /// A paging cursor is malformed or belongs to another query.
    InvalidCursor = 2002, 400, "The page link is no longer valid", "The paging cursor is malformed or was issued for a different query.", "Reload the list from the first page.";
    /// A list query names an unknown filter or sort field, or a bad value for it.
    InvalidQuery = 2003, 400, "The search or filter is invalid", "A filter, sort or page size is unknown or out of range.", "Change the filter or sort and try again.";
    /// The request body or parameters could not be parsed.
    MalformedRequest = 2004, 400, "The request could not be read", "The request body or parameters are malformed (bad JSON, wrong types, unknown fields).", "Fix the request; client software may need an update.";
    /// A change-feed cursor is older than what the feed still keeps.
    CursorExpired = 2005, 410, "Your offline copy is too old to update", "The change-feed cursor is older than the oldest change the feed still keeps (deletions before it were pruned); reading on from it could miss changes.", "Discard the local copy and sync again from the beginning.";
    /// The storage backend cannot be reached.
    StorageUnavailable = 3001, 503, "The database is not available right now", "The storage backend could not be reached (connection lost, database down).", "Try again in a moment.";
    /// The storage backend failed while executing the operation; nothing was changed.
    StorageFailure = 3002, 500, "The database failed to complete the operation", "The storage backend reported an error; the operation was not applied.", "Try again; contact support with the request id if it persists.";
    /// Stored data could not be decoded.
    StorageCorrupted = 3003, 500, "Stored data could not be read", "A stored record could not be decoded.", "Contact support with the request id.";
    /// The caller exceeded a rate limit.
    RateLimited = 4001, 429, "Too many requests", "A rate limit was exceeded.", "Wait for the time given in Retry-After and try again.";
    /// The service is saturated; retry shortly.
    Busy = 4002, 503, "The service is busy", "A bounded internal queue is full.", "Try again in a moment.";
    /// The request body is larger than allowed.
    PayloadTooLarge = 4003, 413, "The request is too large", "The request body exceeds the configured size limit.", "Send less data at once.";
    /// The request's media type is not supported.
    UnsupportedMediaType = 4004, 415, "The request format is not supported", "The request's Content-Type is not application/json.", "Send JSON with Content-Type: application/json.";
    /// The request came over plain HTTP where only HTTPS is accepted.
    HttpsRequired = 4005, 403, "A secure connection is required", "The request came over plain HTTP, and this server accepts only HTTPS.", "Use the https:// address of the service.";
    /// The record does not exist (or is not visible to the caller).
    NotFound = 5001, 404, "The record was not found", "The record does not exist, was deleted, or is not visible to you.", "Reload; the record may have been removed.";
    /// The record changed since the caller read it.
    VersionConflict = 5002, 409, "The record was changed by someone else", "The expected version is stale: the record was modified after you read it.", "Reload the record, reapply your change and save again.";
    /// A value that must be unique is already used.
    Duplicate = 5003, 409, "This value is already in use", "A value that must be unique in the workspace (such as an email) is already used.", "Choose another value.";
    /// The change would leave the workspace without an active admin.
    LastAdmin = 5004, 409, "The workspace needs at least one active admin", "The change would demote or disable the last active admin.", "Make another user admin first.";
    /// The operation is not valid in the record's current state.
    InvalidState = 5005, 409, "This action is not possible right now", "The record is not in a state that allows this action (e.g. archiving a deal that is already archived, merging a contact into itself, or restoring or purging a record that is not in the trash).", "Reload the record and check its state.";
    /// The workspace already exists or already has users.
    AlreadyInitialized = 5006, 409, "The workspace is already set up", "Bootstrap was called for a workspace that already exists.", "Sign in instead.";
}

impl ErrorKind {
    /// The public code, e.g. `"E2001"`.
    pub fn code(self) -> String {
        format!("E{}", self.number())
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E{}", self.number())
    }
}

/// What the caller was trying to do; used to phrase messages ("Unable to save contact").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Creating or updating.
    Save,
    /// Reading one record.
    Load,
    /// Listing or searching.
    List,
    /// Soft or hard deleting.
    Delete,
    /// Restoring a soft-deleted record.
    Restore,
    /// Merging two records.
    Merge,
    /// Archiving or unarchiving.
    Archive,
    /// Moving a deal.
    Move,
}

impl Operation {
    fn verb(self) -> &'static str {
        match self {
            Operation::Save => "save",
            Operation::Load => "load",
            Operation::List => "list",
            Operation::Delete => "delete",
            Operation::Restore => "restore",
            Operation::Merge => "merge",
            Operation::Archive => "archive",
            Operation::Move => "move",
        }
    }
}

/// Codes of individual field violations inside an [`ErrorKind::Validation`] error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FieldIssue {
    /// A required value is missing or blank.
    Required,
    /// The value is too long (see `max`).
    TooLong,
    /// The value is outside the allowed range.
    OutOfRange,
    /// The value does not have the expected format (email, phone, URL, color...).
    InvalidFormat,
    /// The value is not one of the allowed choices.
    NotAllowed,
    /// The value references a record that does not exist in this workspace.
    UnknownReference,
    /// Too many items in a list.
    TooMany,
    /// The value is already used by another record.
    Duplicate,
    /// The caller may not change this field.
    ReadOnly,
}

impl FieldIssue {
    /// Stable code of the field issue (shares the E2xxx range).
    pub const fn code(self) -> &'static str {
        match self {
            FieldIssue::Required => "E2101",
            FieldIssue::TooLong => "E2102",
            FieldIssue::OutOfRange => "E2103",
            FieldIssue::InvalidFormat => "E2104",
            FieldIssue::NotAllowed => "E2105",
            FieldIssue::UnknownReference => "E2106",
            FieldIssue::TooMany => "E2107",
            FieldIssue::Duplicate => "E2108",
            FieldIssue::ReadOnly => "E2109",
        }
    }

    /// Every field issue, for the dictionary.
    pub const ALL: &'static [FieldIssue] = &[
        FieldIssue::Required,
        FieldIssue::TooLong,
        FieldIssue::OutOfRange,
        FieldIssue::InvalidFormat,
        FieldIssue::NotAllowed,
        FieldIssue::UnknownReference,
        FieldIssue::TooMany,
        FieldIssue::Duplicate,
        FieldIssue::ReadOnly,
    ];

    /// Human readable meaning.
    pub const fn meaning(self) -> &'static str {
        match self {
            FieldIssue::Required => "The field is required.",
            FieldIssue::TooLong => "The value is too long.",
            FieldIssue::OutOfRange => "The value is out of the allowed range.",
            FieldIssue::InvalidFormat => "The value does not have the expected format.",
            FieldIssue::NotAllowed => "The value is not one of the allowed choices.",
            FieldIssue::UnknownReference => {
                "The referenced record does not exist in this workspace."
            }
            FieldIssue::TooMany => "The list has too many items.",
            FieldIssue::Duplicate => "The value is already used.",
            FieldIssue::ReadOnly => "You may not change this field.",
        }
    }
}

/// One failing field of a validation error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Path of the field, e.g. `"emails[1].email"`.
    pub field: String,
    /// What is wrong.
    pub issue: FieldIssue,
    /// The field issue's code (`E21xx`), repeated for clients that only read strings.
    pub code: String,
    /// A short user-facing explanation, never containing the submitted value.
    pub message: String,
}

impl FieldError {
    /// Builds a field error with the issue's default message.
    pub fn new(field: impl Into<String>, issue: FieldIssue) -> Self {
        Self::with_message(field, issue, issue.meaning())
    }

    /// Builds a field error with a specific message.
    pub fn with_message(
        field: impl Into<String>,
        issue: FieldIssue,
        message: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            issue,
            code: issue.code().to_string(),
            message: message.into(),
        }
    }
}

/// The one error type of `crm`. See the [module docs](self).
///
/// `Display` is [`Error::user_message`]; the cause is the [`std::error::Error::source`].
#[derive(thiserror::Error)]
#[error("{}", self.user_message())]
pub struct Error {
    kind: ErrorKind,
    operation: Option<Operation>,
    entity: Option<EntityKind>,
    fields: Vec<FieldError>,
    retry_after_secs: Option<u64>,
    #[source]
    source: Option<BoxError>,
}

impl Error {
    /// A bare error of the given kind.
    pub fn new(kind: ErrorKind) -> Self {
        Error {
            kind,
            operation: None,
            entity: None,
            fields: Vec::new(),
            retry_after_secs: None,
            source: None,
        }
    }

    /// A validation error listing every failing field.
    pub fn validation(fields: Vec<FieldError>) -> Self {
        let mut e = Error::new(ErrorKind::Validation);
        e.fields = fields;
        e
    }

    /// A unique value (named by `field`) is already taken.
    pub fn duplicate(field: &str) -> Self {
        let mut e = Error::new(ErrorKind::Duplicate);
        e.fields = vec![FieldError::new(field, FieldIssue::Duplicate)];
        e
    }

    /// A not-found error for a kind of record.
    pub fn not_found(entity: EntityKind) -> Self {
        Error::new(ErrorKind::NotFound).with_context(Operation::Load, entity)
    }

    /// A storage-level error keeping the driver error as its source.
    pub fn storage(kind: ErrorKind, source: impl Into<BoxError>) -> Self {
        Error::new(kind).with_source(source)
    }

    /// Attaches the operation and entity, used to phrase the message. Existing context wins
    /// for the entity (an inner "contact not found" stays about the contact).
    pub fn with_context(mut self, operation: Operation, entity: EntityKind) -> Self {
        if self.operation.is_none() {
            self.operation = Some(operation);
        }
        if self.entity.is_none() {
            self.entity = Some(entity);
        }
        self
    }

    /// Attaches field-level details (e.g. which request parameter is wrong).
    pub fn with_fields(mut self, fields: Vec<FieldError>) -> Self {
        self.fields = fields;
        self
    }

    /// Attaches the underlying cause (kept for logs, never shown to users).
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Attaches a retry delay in whole seconds (rate limiting, busy).
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs.max(1));
        self
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The public code, e.g. `"E2001"`.
    pub fn code(&self) -> String {
        self.kind.code()
    }

    /// The HTTP status an adapter should use.
    pub fn http_status(&self) -> u16 {
        self.kind.http_status()
    }

    /// The failing fields (validation errors only).
    pub fn fields(&self) -> &[FieldError] {
        &self.fields
    }

    /// The kind of record the error is about, when known.
    pub fn entity(&self) -> Option<EntityKind> {
        self.entity
    }

    /// Seconds after which a retry may succeed (rate limiting, busy).
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after_secs
    }

    /// The user-facing message, e.g. `Unable to save contact (E2001)`.
    pub fn user_message(&self) -> String {
        match (self.operation, self.entity) {
            (Some(op), Some(entity)) => {
                format!("Unable to {} {} ({})", op.verb(), entity.noun(), self.kind)
            }
            _ => format!("{} ({})", self.kind.generic_message(), self.kind),
        }
    }
}

impl fmt::Debug for Error {
    // Debug shows the kind, context, fields and the source chain: it is for server logs.
    // Sources are driver/io errors built by the stores, which never embed secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("code", &self.kind.code())
            .field("kind", &self.kind.name());
        if let Some(op) = self.operation {
            d.field("operation", &op);
        }
        if let Some(entity) = self.entity {
            d.field("entity", &entity);
        }
        if !self.fields.is_empty() {
            d.field("fields", &self.fields);
        }
        if let Some(s) = &self.source {
            d.field("source", &s.to_string());
        }
        d.finish()
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error::new(kind)
    }
}

/// Renders the error dictionary (`docs/errors.md`) from the code.
pub fn dictionary_markdown() -> String {
    let mut out = String::from(
        "# Error dictionary\n\n\
         Generated from `crm_core::error::ErrorKind` by `crm_core::error::dictionary_markdown()`;\n\
         do not edit by hand (`UPDATE_ERROR_DOCS=1 cargo test -p crm-core --test error_dictionary`\n\
         rewrites it). Ranges: E1xxx authentication and authorization, E2xxx validation,\n\
         E3xxx storage, E4xxx network and limits, E5xxx business rules.\n\n\
         | code | name | HTTP | message | meaning | what the user can do |\n\
         |---|---|---|---|---|---|\n",
    );
    for kind in ErrorKind::ALL {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            kind,
            kind.name(),
            kind.http_status(),
            kind.generic_message(),
            kind.meaning(),
            kind.user_action()
        ));
    }
    out.push_str(
        "\n## Field issues\n\nA validation error (E2001) lists each failing field with one of these codes.\n\n\
         | code | issue | meaning |\n|---|---|---|\n",
    );
    for issue in FieldIssue::ALL {
        let name = serde_json::to_value(issue)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            issue.code(),
            name,
            issue.meaning()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_the_seed_format_and_hide_sources() {
        let e = Error::validation(vec![FieldError::new("first_name", FieldIssue::Required)])
            .with_context(Operation::Save, EntityKind::Contact);
        assert_eq!(e.to_string(), "Unable to save contact (E2001)");
        let e = Error::storage(
            ErrorKind::StorageFailure,
            "SELECT * FROM secret_table failed at /var/lib/x",
        );
        assert_eq!(
            e.to_string(),
            "The database failed to complete the operation (E3002)"
        );
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn codes_are_in_their_ranges() {
        for kind in ErrorKind::ALL {
            let range = kind.number() / 1000;
            assert!((1..=5).contains(&range), "{kind:?}");
        }
    }
}
