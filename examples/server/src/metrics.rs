//! Who may read `/metrics`. The metrics name routes, error codes, login failures and the
//! process's resources: harmless on a loopback server, an information leak on a public one.
//! So outside local mode the API's `/metrics` is served only with a bearer token
//! (`CRM_METRICS_TOKEN`, environment only, compared in constant time), or not at all on the
//! API's address and instead on a listener of its own (`--metrics-bind 127.0.0.1:9464`),
//! which a firewall or a private interface keeps internal. With neither, outside local mode
//! the API answers `/metrics` with 404 and the start-up log says why.
//!
//! The token is checked at start: shorter than [`TOKEN_MIN_LEN`] or with characters that a
//! bearer token cannot carry (RFC 6750 `token68`), it stops the server with one line that
//! names the variable, never its value.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use crm_core::ErrorKind;
use crm_core::identity::Secret;
use crm_http::AppState;
use tokio::net::TcpListener;

use crate::BoxError;

/// The environment variable holding the metrics token.
pub const TOKEN_ENV: &str = "CRM_METRICS_TOKEN";
/// Shortest accepted metrics token, in characters.
pub const TOKEN_MIN_LEN: usize = 32;
/// Longest accepted metrics token, in characters.
pub const TOKEN_MAX_LEN: usize = 512;

/// The metrics token from `env_value` (the value of [`TOKEN_ENV`], if set).
///
/// # Errors
/// A token shorter than [`TOKEN_MIN_LEN`] or longer than [`TOKEN_MAX_LEN`], or with a
/// character outside RFC 6750's `token68` (letters, digits, `-._~+/`, trailing `=`).
pub fn token(env_value: Option<String>) -> Result<Option<Secret>, BoxError> {
    let Some(value) = env_value else {
        return Ok(None);
    };
    if !(TOKEN_MIN_LEN..=TOKEN_MAX_LEN).contains(&value.len()) {
        return Err(format!(
            "{TOKEN_ENV} must be {TOKEN_MIN_LEN} to {TOKEN_MAX_LEN} characters long (e.g. `openssl rand -hex 32`)"
        )
        .into());
    }
    let body = value.trim_end_matches('=');
    let token68 = !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        });
    if !token68 {
        return Err(format!(
            "{TOKEN_ENV} may hold only letters, digits and -._~+/ (with trailing =): it is sent as a bearer token"
        )
        .into());
    }
    Ok(Some(Secret::new(value.into_bytes())))
}

/// Where the metrics are served, as decided by [`plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exposure {
    /// On the API's address, public (local mode without a token).
    Public,
    /// On the API's address, with the bearer token.
    Token,
    /// On a listener of their own (with the token too, if one is set); not on the API's.
    Listener(SocketAddr),
    /// Not served: outside local mode with neither a token nor a listener.
    Off,
}

/// Where the metrics are served, given local mode, the token and `--metrics-bind`.
pub fn plan(local: bool, token: bool, bind: Option<SocketAddr>) -> Exposure {
    match (bind, token) {
        (Some(addr), _) => Exposure::Listener(addr),
        (None, true) => Exposure::Token,
        (None, false) if local => Exposure::Public,
        (None, false) => Exposure::Off,
    }
}

#[derive(Clone)]
struct Listener {
    state: AppState,
    token: Option<Secret>,
}

async fn metrics(State(l): State<Listener>, headers: HeaderMap) -> Response {
    if let Some(expected) = &l.token
        && !crm_http::handlers::misc::metrics_token_matches(&headers, expected.expose())
    {
        return crate::refusal::coded(ErrorKind::Unauthenticated, None);
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crm_http::metrics::CONTENT_TYPE),
        )],
        l.state.metrics_text(),
    )
        .into_response()
}

async fn not_found() -> Response {
    crate::refusal::coded(ErrorKind::NotFound, None)
}

/// Binds the metrics listener.
///
/// # Errors
/// The address cannot be bound.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BoxError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on --metrics-bind {addr}: {e}").into())
}

/// The service of the metrics listener: `GET /metrics` (with `token` if given), and `404`
/// for anything else.
pub fn router(state: AppState, token: Option<Secret>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(Listener { state, token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked() {
        assert!(token(None).unwrap().is_none());
        assert!(token(Some("short".into())).is_err());
        assert!(token(Some("x".repeat(TOKEN_MAX_LEN + 1))).is_err());
        assert!(token(Some(format!("{} spaces", "a".repeat(40)))).is_err());
        assert!(token(Some("=".repeat(40))).is_err());
        let t = token(Some(format!("{}+/=", "aB3-._~".repeat(5)))).unwrap();
        assert!(t.is_some());
        let err = token(Some("tiny-secret".into())).unwrap_err().to_string();
        assert!(err.contains(TOKEN_ENV) && !err.contains("tiny-secret"));
    }

    #[test]
    fn exposure_follows_mode_token_and_listener() {
        let addr: SocketAddr = "127.0.0.1:9464".parse().unwrap();
        assert_eq!(plan(true, false, None), Exposure::Public);
        assert_eq!(plan(false, false, None), Exposure::Off);
        assert_eq!(plan(false, true, None), Exposure::Token);
        assert_eq!(plan(true, true, None), Exposure::Token);
        assert_eq!(plan(false, false, Some(addr)), Exposure::Listener(addr));
    }
}
