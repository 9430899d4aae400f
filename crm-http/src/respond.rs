//! Response helpers: JSON bodies, entity tags, `Location`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::ErrorKind;
use serde::Serialize;

use crate::error::ApiError;

/// A JSON response with `status`.
pub(crate) fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => ApiError::from(crm_core::Error::new(ErrorKind::StorageCorrupted).with_source(e))
            .into_response(),
    }
}

/// The entity tag of a record version: `"3"`.
pub(crate) fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// A JSON record with its `ETag`.
pub(crate) fn record<T: Serialize>(status: StatusCode, value: &T, version: u64) -> Response {
    let mut r = json(status, value);
    r.headers_mut().insert(header::ETAG, etag(version));
    r
}

/// `304 Not Modified` for a record the client already has.
pub(crate) fn not_modified(version: u64) -> Response {
    let mut r = StatusCode::NOT_MODIFIED.into_response();
    r.headers_mut().insert(header::ETAG, etag(version));
    r
}

/// `204 No Content`.
pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// A version conflict on a request that carried `If-Match` is a failed precondition (`412`,
/// still coded `E5002`); other errors keep their status.
pub(crate) fn precondition(e: crm_core::Error) -> ApiError {
    if e.kind() == ErrorKind::VersionConflict {
        ApiError::from(e).with_status(StatusCode::PRECONDITION_FAILED)
    } else {
        e.into()
    }
}

/// A failed precondition without a core error behind it.
pub(crate) fn precondition_failed() -> ApiError {
    ApiError::new(ErrorKind::VersionConflict).with_status(StatusCode::PRECONDITION_FAILED)
}
