//! `--redirect-http <port>`: a plain-HTTP listener beside the HTTPS one that sends browsers
//! to the `https://` address. `GET` and `HEAD` get `308 Permanent Redirect` to the same
//! host, on the HTTPS listener's port, with the path and query kept; every other method gets
//! the API's coded refusal (`403`, `E4005`) — a redirected `POST` would carry its body over
//! plain HTTP once more, and a client that sends one must be fixed, not helped.
//!
//! The `Host` header is the client's, so it is checked before it is echoed into `Location`:
//! a DNS name (labels of letters, digits and hyphens, at most 253 characters), an IPv4
//! address or a bracketed IPv6 address, with an optional port that is replaced. Anything
//! else — missing, empty, user-info, paths, control characters — gets `400` (`E2004`), so
//! the listener can never be turned into an open redirect to some other place. The answers
//! carry no `Strict-Transport-Security`: browsers ignore it over plain HTTP, and it stays on
//! the HTTPS side, where the API sets it on every response.

use std::net::{Ipv4Addr, Ipv6Addr};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::ErrorKind;

/// The host part of a `Host` header value, port removed, if it is a name or address this
/// server may redirect to.
pub fn valid_host(value: &str) -> Option<&str> {
    if value.starts_with('[') {
        let end = value.find(']')?;
        let (literal, rest) = value.split_at(end + 1);
        literal[1..literal.len() - 1].parse::<Ipv6Addr>().ok()?;
        return (rest.is_empty() || valid_port(rest.strip_prefix(':')?)).then_some(literal);
    }
    let host = match value.rsplit_once(':') {
        Some((h, port)) if valid_port(port) => h,
        Some(_) => return None,
        None => value,
    };
    if host.parse::<Ipv4Addr>().is_ok() {
        return Some(host);
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let ok = (1..=253).contains(&name.len())
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    ok.then_some(host)
}

fn valid_port(p: &str) -> bool {
    (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
}

/// The `https://` URL of a request for `host` (already checked), `path_and_query`, on
/// `https_port` (left out when it is 443).
pub fn location(host: &str, https_port: u16, path_and_query: &str) -> String {
    let path = if path_and_query.starts_with('/') {
        path_and_query
    } else {
        "/"
    };
    if https_port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{https_port}{path}")
    }
}

async fn answer(State(https_port): State<u16>, req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return crate::refusal::coded(ErrorKind::HttpsRequired, None);
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .and_then(valid_host);
    let Some(host) = host else {
        return crate::refusal::coded(ErrorKind::MalformedRequest, Some(StatusCode::BAD_REQUEST));
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    match HeaderValue::from_str(&location(host, https_port, path)) {
        Ok(to) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, to)]).into_response(),
        Err(_) => crate::refusal::coded(ErrorKind::MalformedRequest, Some(StatusCode::BAD_REQUEST)),
    }
}

/// The redirecting service, for HTTPS on `https_port`.
pub fn router(https_port: u16) -> Router {
    Router::new().fallback(answer).with_state(https_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_names_or_addresses() {
        assert_eq!(valid_host("crm.example.com"), Some("crm.example.com"));
        assert_eq!(valid_host("crm.example.com:80"), Some("crm.example.com"));
        assert_eq!(valid_host("localhost"), Some("localhost"));
        assert_eq!(valid_host("10.0.0.1:8080"), Some("10.0.0.1"));
        assert_eq!(valid_host("[::1]:80"), Some("[::1]"));
        assert_eq!(valid_host("[::1]"), Some("[::1]"));
        for bad in [
            "",
            ":80",
            "evil.com/x",
            "user@evil.com",
            "a..b",
            "-a.com",
            "a b",
            "[nope]",
            "[::1]x",
            "host:99999",
            "host:",
            "a\u{7f}b",
        ] {
            assert_eq!(valid_host(bad), None, "{bad:?}");
        }
        assert_eq!(valid_host(&"a".repeat(64)), None);
        let long = ["abc"; 70].join(".");
        assert_eq!(valid_host(&long), None);
    }

    #[test]
    fn locations_keep_path_and_query() {
        assert_eq!(
            location("crm.test", 443, "/api/v1/contacts?q=a"),
            "https://crm.test/api/v1/contacts?q=a"
        );
        assert_eq!(location("[::1]", 8443, "/"), "https://[::1]:8443/");
        assert_eq!(location("h", 8443, "*"), "https://h:8443/");
    }
}
