//! Entity tags of collection answers: lists, `/dashboard`, `/me/recent`, `/search`,
//! `/activity`, `/audit`.
//!
//! A record's `ETag` is its version; a collection has no version, so its tag is a digest of
//! the answer's bytes: `W/"` + the first 96 bits of the body's SHA-256 in hex + `"`. Weak,
//! because the same data may one day be encoded differently (field order, whitespace); equal
//! bytes always give the same tag, on every instance. The digest is computed over the JSON
//! the handler already built (SHA-256 runs on the CPU's SHA extensions where it has them:
//! tens of microseconds for a page of 100 tasks; see BENCHMARKS.md).
//!
//! `If-None-Match` (RFC 9110 §13.1.2, weak comparison) with the current tag, or `*`, gets
//! `304 Not Modified` with the tag and no body. The answer is still computed first — the
//! saving is the transfer and the client's work, which is what an offline client polling
//! its dashboard or a list needs.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The weak entity tag of a body.
pub(crate) fn digest_tag(body: &[u8]) -> String {
    let hash = Sha256::digest(body);
    let mut tag = String::with_capacity(28);
    tag.push_str("W/\"");
    for b in &hash[..12] {
        tag.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        tag.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    tag.push('"');
    tag
}

/// Whether an `If-None-Match` header names `tag` (weakly) or is `*`.
fn none_match(headers: &HeaderMap, tag: &str) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let want = opaque(tag);
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || opaque(t) == want)
}

/// `200` with `value` as JSON and its digest `ETag`, or `304` when the request's
/// `If-None-Match` already names that tag.
pub(crate) fn json<T: Serialize + ?Sized>(headers: &HeaderMap, value: &T) -> Response {
    let body = match serde_json::to_vec(value) {
        Ok(body) => body,
        Err(_) => return crate::respond::json(StatusCode::OK, value),
    };
    let tag = digest_tag(&body);
    let tag_value = HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("W/\"0\""));
    if none_match(headers, &tag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag_value)]).into_response();
    }
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, tag_value),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_weak_digests_compared_weakly() {
        let tag = digest_tag(b"{\"data\":[]}");
        assert!(
            tag.starts_with("W/\"") && tag.ends_with('"') && tag.len() == 28,
            "{tag}"
        );
        assert_eq!(tag, digest_tag(b"{\"data\":[]}"));
        assert_ne!(tag, digest_tag(b"{\"data\":[1]}"));
        let mut h = HeaderMap::new();
        assert!(!none_match(&h, &tag));
        let strong = tag.trim_start_matches("W/").to_owned();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"x\", {strong}")).unwrap(),
        );
        assert!(none_match(&h, &tag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(none_match(&h, &tag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("W/\"3\""));
        assert!(!none_match(&h, &tag));
    }
}
