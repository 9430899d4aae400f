//! Coded refusals answered by the server's own small listeners (the metrics listener, the
//! HTTPS redirect), in the same shape as the API's errors:
//! `{"error": {"code", "message", "fields", "request_id"}}`. They sit outside the
//! [`crm_http`] router, whose middleware renders the API's errors, so they render their own.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::{Error, ErrorKind};

/// A new request id: 128 random bits in hex (a constant if the system has no randomness,
/// which only makes ids less useful, never wrong).
fn request_id() -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The coded refusal of `kind`, with its own status or `status`.
pub fn coded(kind: ErrorKind, status: Option<StatusCode>) -> Response {
    let error = Error::new(kind);
    let status = status.unwrap_or_else(|| {
        StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    });
    let request_id = request_id();
    let body = serde_json::json!({
        "error": {
            "code": error.code(),
            "message": error.user_message(),
            "fields": [],
            "request_id": request_id,
        }
    });
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", v);
    }
    response
}
