//! HTTP errors: every failure is a coded [`crm_core::Error`] answered as
//!
//! ```json
//! {"error": {"code": "E2001", "message": "Unable to save contact (E2001)",
//!            "fields": [{"field": "first_name", "issue": "required", "code": "E2101", "message": "..."}],
//!            "request_id": "0190..."}}
//! ```
//!
//! with the status of its [`ErrorKind`] (a few HTTP-specific cases override it: a stale
//! `If-Match` is `412`, a missing one `428`, a wrong method `405`). Handlers return
//! [`ApiError`]; its response carries the error in an extension and an empty body, and the
//! outer middleware writes the body once it knows the request id — so errors raised anywhere
//! (extractors, the rate limiter, the fallback) look the same.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::{Error, ErrorKind, FieldError, FieldIssue};
use serde::Serialize;

/// An error answered to an HTTP client. Build it from a [`crm_core::Error`] (`?` works) or
/// an [`ErrorKind`].
#[derive(Debug)]
pub struct ApiError {
    error: Error,
    status: Option<StatusCode>,
    message: Option<String>,
    fields: Option<Vec<FieldError>>,
}

impl ApiError {
    /// An error of the given kind, with its default status and message.
    pub fn new(kind: ErrorKind) -> Self {
        Error::new(kind).into()
    }

    /// Answers with `status` instead of the kind's own status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// Answers with `message` instead of the error's user message. The message must not
    /// contain internals or submitted values.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Lists `fields` as the failing fields (for kinds other than `Validation`, whose
    /// fields come from the core error).
    pub fn with_fields(mut self, fields: Vec<FieldError>) -> Self {
        self.fields = Some(fields);
        self
    }

    /// The underlying coded error.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or_else(|| {
            StatusCode::from_u16(self.error.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        })
    }

    /// A malformed request (`400`, `E2004`) naming the offending field.
    pub(crate) fn malformed(field: &str, issue: FieldIssue) -> Self {
        ApiError::new(ErrorKind::MalformedRequest).with_fields(vec![FieldError::new(field, issue)])
    }

    /// An invalid query string (`400`, `E2003`) naming the offending parameter.
    pub(crate) fn invalid_query(param: &str, issue: FieldIssue) -> Self {
        ApiError::new(ErrorKind::InvalidQuery).with_fields(vec![FieldError::new(param, issue)])
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError {
            error,
            status: None,
            message: None,
            fields: None,
        }
    }
}

impl From<ErrorKind> for ApiError {
    fn from(kind: ErrorKind) -> Self {
        ApiError::new(kind)
    }
}

/// The error of a response, left in its extensions for the outer middleware (which renders
/// the body, logs, and counts it).
#[derive(Clone, Debug)]
pub(crate) struct ErrorReport {
    pub error: Arc<Error>,
    pub message: String,
    pub fields: Vec<FieldError>,
}

impl ErrorReport {
    pub fn code(&self) -> String {
        self.error.code()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let fields = self.fields.unwrap_or_else(|| self.error.fields().to_vec());
        let message = self.message.unwrap_or_else(|| self.error.user_message());
        let mut response = status.into_response();
        if let Some(secs) = self.error.retry_after_secs()
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response.extensions_mut().insert(ErrorReport {
            error: Arc::new(self.error),
            message,
            fields,
        });
        response
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: String,
    message: &'a str,
    fields: &'a [FieldError],
    request_id: &'a str,
}

/// The JSON body of an error response.
pub(crate) fn render(report: &ErrorReport, request_id: &str) -> Vec<u8> {
    serde_json::to_vec(&Body {
        error: Inner {
            code: report.code(),
            message: &report.message,
            fields: &report.fields,
            request_id,
        },
    })
    .unwrap_or_default()
}
