//! `/auth/*`: sign-up, login, refresh, logout, sessions, password change and reset.
//!
//! Login, sign-up and refresh answer `{access_token, token_type: "Bearer", expires_in,
//! refresh_token, session_id, user, csrf_token}` and set two cookies:
//!
//! * the refresh token, `HttpOnly; Secure; SameSite=Strict`, scoped to the auth routes'
//!   path (derived from where the router is mounted unless configured);
//! * a CSRF token, readable by scripts (no `HttpOnly`), `Secure; SameSite=Strict`.
//!
//! The CSRF token is a *signed* double submit: `nonce.mac` where `mac` is an HMAC-SHA256,
//! under the adapter's key, of the nonce and a hash of the refresh token it was issued
//! with. The key is derived from the JWT secret with HKDF-SHA256 under a label of its own
//! (unless [`crate::HttpConfig::csrf_secret`] sets one), so a token stays valid across
//! restarts and on every instance that shares the secret — a browser session lives as long
//! as its refresh token, as "sessions never expire" requires. A refresh or logout that relies on the refresh cookie must send the token in
//! `X-CSRF-Token`; it must equal the CSRF cookie and its MAC must match the refresh cookie
//! presented. A site that can make the browser send cookies cannot read them, so it cannot
//! forge the header; a token planted by a sibling subdomain does not match the refresh
//! token. Requests that send the refresh token in the body need no CSRF token: a browser
//! never adds it on its own.

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::time::Duration;
use cookie::{Cookie, SameSite};
use crm_core::id::WorkspaceId;
use crm_core::identity::{LoginRequest, TokenResponse};
use crm_core::model::{ClientInfo, SessionId, UserInput};
use crm_core::{ErrorKind, FieldIssue};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::extract::{ApiJson, Authn, Caller, OptionalJson, PathId, RequestContext};
use crate::respond;
use crate::state::AppState;

/// Name of the CSRF request header.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Writes `Debug` for request bodies with secrets, naming only the public fields.
macro_rules! redacted_debug {
    ($ty:ident { $($field:ident),* }) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &self.$field))*
                    .finish_non_exhaustive()
            }
        }
    };
}

/// Body of `POST /auth/signup`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignupBody {
    workspace_name: String,
    email: String,
    password: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
}
redacted_debug!(SignupBody {
    workspace_name,
    email
});

/// Body of `POST /auth/login`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginBody {
    #[serde(default)]
    workspace_id: Option<WorkspaceId>,
    email: String,
    password: String,
}
redacted_debug!(LoginBody {
    workspace_id,
    email
});

/// Body of `POST /auth/refresh` and `POST /auth/logout` (both optional).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshBody {
    #[serde(default)]
    refresh_token: Option<String>,
}
redacted_debug!(RefreshBody {});

/// Body of `POST /auth/password`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordChangeBody {
    current_password: String,
    new_password: String,
}
redacted_debug!(PasswordChangeBody {});

/// Body of `POST /auth/password-reset`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetRequestBody {
    #[serde(default)]
    workspace_id: Option<WorkspaceId>,
    email: String,
}

/// Body of `POST /auth/password-reset/confirm`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetConfirmBody {
    token: String,
    new_password: String,
}
redacted_debug!(ResetConfirmBody {});

fn client_info(ctx: &RequestContext, headers: &HeaderMap) -> ClientInfo {
    ClientInfo {
        address: ctx.client_ip.map(|ip| ip.to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect()),
    }
}

async fn workspace_or_default(
    state: &AppState,
    given: Option<WorkspaceId>,
) -> Result<WorkspaceId, ApiError> {
    if let Some(ws) = given {
        return Ok(ws);
    }
    state
        .installation_workspace()
        .await?
        .ok_or_else(|| ApiError::malformed("workspace_id", FieldIssue::Required))
}

/// The path of the auth routes as the client sees them: the configured one, or the mount
/// prefix (original path minus the router-relative path) followed by `/auth`.
fn auth_path(state: &AppState, original: &Uri, local: &Uri) -> String {
    if let Some(p) = &state.config().cookies.refresh_path {
        return p.clone();
    }
    let prefix = original
        .path()
        .strip_suffix(local.path())
        .unwrap_or("")
        .trim_end_matches('/');
    format!("{prefix}/auth")
}

/// A `Set-Cookie` value: `SameSite=Strict` always, the configured `Secure`, `Domain` and
/// `Max-Age` (`Max-Age=0` when `clear`ing it).
fn cookie(
    state: &AppState,
    name: &str,
    value: &str,
    path: &str,
    http_only: bool,
    clear: bool,
) -> String {
    let c = &state.config().cookies;
    let mut cookie = Cookie::build((name, value))
        .path(path)
        .same_site(SameSite::Strict)
        .secure(c.secure)
        .http_only(http_only);
    let max_age = if clear { Some(0) } else { c.max_age_secs };
    if let Some(secs) = max_age {
        cookie = cookie.max_age(Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX)));
    }
    if let Some(d) = &c.domain {
        cookie = cookie.domain(d.as_str());
    }
    cookie.build().to_string()
}

fn csrf_mac(state: &AppState, nonce: &str, refresh_token: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(state.csrf_key())
        .expect("HMAC accepts keys of any length");
    mac.update(b"crm-csrf\0");
    mac.update(nonce.as_bytes());
    mac.update(b"\0");
    mac.update(&Sha256::digest(refresh_token.as_bytes()));
    mac
}

/// A new CSRF token bound to `refresh_token`.
fn issue_csrf(state: &AppState, refresh_token: &str) -> Result<String, ApiError> {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(|e| {
        ApiError::from(crm_core::Error::new(ErrorKind::StorageFailure).with_source(e.to_string()))
    })?;
    let nonce = URL_SAFE_NO_PAD.encode(nonce);
    let mac = URL_SAFE_NO_PAD.encode(
        csrf_mac(state, &nonce, refresh_token)
            .finalize()
            .into_bytes(),
    );
    Ok(format!("{nonce}.{mac}"))
}

/// Whether `token` is a CSRF token issued with `refresh_token`.
fn csrf_valid(state: &AppState, token: &str, refresh_token: &str) -> bool {
    let Some((nonce, mac)) = token.split_once('.') else {
        return false;
    };
    let Ok(mac) = URL_SAFE_NO_PAD.decode(mac) else {
        return false;
    };
    csrf_mac(state, nonce, refresh_token)
        .verify_slice(&mac)
        .is_ok()
}

/// The value of cookie `name` in the request's `Cookie` headers, if sent once. Pairs that
/// are not cookies (no `=`, no name) are skipped.
pub(crate) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        for cookie in Cookie::split_parse(value.to_str().ok()?).flatten() {
            if cookie.name() == name {
                if found.is_some() {
                    // Two cookies of one name (e.g. one planted for a wider path): refuse.
                    return None;
                }
                found = Some(cookie.value().trim().to_owned());
            }
        }
    }
    found
}

fn csrf_refused() -> ApiError {
    ApiError::new(ErrorKind::Forbidden)
        .with_message("The security token of this request is missing or invalid (E1002)")
        .with_fields(vec![crm_core::FieldError::with_message(
            "X-CSRF-Token",
            FieldIssue::InvalidFormat,
            "Send the CSRF token issued with the session in the X-CSRF-Token header.",
        )])
}

/// The refresh token a request presents: from the body (no CSRF check), or from the cookie
/// (CSRF checked). `None` when neither is present.
fn presented_refresh_token(
    state: &AppState,
    headers: &HeaderMap,
    body: Option<RefreshBody>,
) -> Result<Option<(String, bool)>, ApiError> {
    if let Some(t) = body.and_then(|b| b.refresh_token) {
        return Ok(Some((t, false)));
    }
    let names = &state.config().cookies;
    let Some(token) = cookie_value(headers, &names.refresh_name) else {
        return Ok(None);
    };
    let header_token = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(csrf_refused)?;
    let cookie_token = cookie_value(headers, &names.csrf_name).ok_or_else(csrf_refused)?;
    let same = header_token.len() == cookie_token.len()
        && header_token
            .bytes()
            .zip(cookie_token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same || !csrf_valid(state, header_token, &token) {
        return Err(csrf_refused());
    }
    Ok(Some((token, true)))
}

/// The tokens answer with its cookies.
fn session_response(
    state: &AppState,
    status: StatusCode,
    tokens: &TokenResponse,
    path: &str,
    extra: Option<(&str, serde_json::Value)>,
) -> Result<Response, ApiError> {
    let csrf = issue_csrf(state, tokens.refresh_token.expose())?;
    let mut body = serde_json::to_value(tokens).map_err(|e| {
        ApiError::from(crm_core::Error::new(ErrorKind::StorageCorrupted).with_source(e))
    })?;
    if let Some(obj) = body.as_object_mut() {
        obj.insert("csrf_token".into(), serde_json::Value::String(csrf.clone()));
        if let Some((k, v)) = extra {
            obj.insert(k.into(), v);
        }
    }
    let mut response = respond::json(status, &body);
    let c = &state.config().cookies;
    for value in [
        cookie(
            state,
            &c.refresh_name,
            tokens.refresh_token.expose(),
            path,
            true,
            false,
        ),
        cookie(state, &c.csrf_name, &csrf, &c.csrf_path, false, false),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}

fn clear_cookies(state: &AppState, response: &mut Response, path: &str) {
    let c = &state.config().cookies;
    for value in [
        cookie(state, &c.refresh_name, "", path, true, true),
        cookie(state, &c.csrf_name, "", &c.csrf_path, false, true),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}

/// `POST /auth/signup`: creates a workspace and its first admin, and signs in. Closed once
/// the installation has a workspace unless open sign-up is enabled (`409`, `E5006`).
pub(crate) async fn signup(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    ApiJson(body): ApiJson<SignupBody>,
) -> Result<Response, ApiError> {
    let open = state.config().open_signup;
    let _serialized = if open {
        None
    } else {
        Some(state.signup_lock().lock().await)
    };
    // Closed sign-up asks storage first (cheap, and spares the password hashing): after a
    // restart, or on another instance, the installation's workspace may exist without this
    // process having created it.
    if !open && state.installation_workspace().await?.is_some() {
        return Err(ApiError::new(ErrorKind::AlreadyInitialized));
    }
    let admin = UserInput {
        email: body.email,
        first_name: body.first_name,
        last_name: body.last_name,
        ..Default::default()
    };
    // Closed sign-up: the storage decides the race for the first workspace atomically
    // (instances sharing a database each pass the check above at the same moment).
    let client = client_info(&ctx, &headers);
    let identity = state.identity();
    let (workspace, tokens) = if open {
        identity
            .sign_up(&body.workspace_name, admin, &body.password, client)
            .await?
    } else {
        identity
            .sign_up_first(&body.workspace_name, admin, &body.password, client)
            .await?
    };
    state.claim_first_workspace(workspace.id);
    let ws = serde_json::to_value(&workspace).unwrap_or_default();
    session_response(
        &state,
        StatusCode::CREATED,
        &tokens,
        &auth_path(&state, &original, &uri),
        Some(("workspace", ws)),
    )
}

/// `POST /auth/login`.
pub(crate) async fn login(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    let workspace_id = workspace_or_default(&state, body.workspace_id).await?;
    let result = state
        .identity()
        .login(LoginRequest {
            workspace_id,
            email: body.email,
            password: body.password,
            client: client_info(&ctx, &headers),
        })
        .await;
    state.metrics().record_login(result.is_ok());
    let tokens = result?;
    session_response(
        &state,
        StatusCode::OK,
        &tokens,
        &auth_path(&state, &original, &uri),
        None,
    )
}

/// `POST /auth/refresh`: rotates the refresh token (body, or cookie + `X-CSRF-Token`).
pub(crate) async fn refresh(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    OptionalJson(body): OptionalJson<RefreshBody>,
) -> Result<Response, ApiError> {
    let path = auth_path(&state, &original, &uri);
    let (token, from_cookie) = presented_refresh_token(&state, &headers, body)?
        .ok_or_else(|| ApiError::new(ErrorKind::Unauthenticated))?;
    match state
        .identity()
        .refresh(&token, &client_info(&ctx, &headers))
        .await
    {
        Ok(tokens) => session_response(&state, StatusCode::OK, &tokens, &path, None),
        Err(e) => {
            let dead = matches!(
                e.kind(),
                ErrorKind::RefreshTokenReused
                    | ErrorKind::SessionRevoked
                    | ErrorKind::TokenInvalid
                    | ErrorKind::AccountDisabled
            );
            let mut response = ApiError::from(e).into_response();
            if from_cookie && dead {
                clear_cookies(&state, &mut response, &path);
            }
            Ok(response)
        }
    }
}

/// `POST /auth/logout`: ends the session of the bearer token or, without one, of the
/// presented refresh token (body, or cookie + `X-CSRF-Token`). Clears the cookies.
pub(crate) async fn logout(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    authn: Option<axum::Extension<Authn>>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    OptionalJson(body): OptionalJson<RefreshBody>,
) -> Result<Response, ApiError> {
    let path = auth_path(&state, &original, &uri);
    let identity = state.identity();
    match authn.map(|a| a.0) {
        Some(Authn::Valid(pair)) => {
            let (actor, claims) = &*pair;
            identity
                .logout(actor, SessionId::from_uuid(claims.sid))
                .await?;
        }
        other => {
            let Some((token, _)) = presented_refresh_token(&state, &headers, body)? else {
                return Err(match other {
                    Some(Authn::Invalid(kind)) => ApiError::new(kind),
                    _ => ApiError::new(ErrorKind::Unauthenticated),
                });
            };
            // The core resolves a refresh token only by rotating it; the session then ends.
            match identity.refresh(&token, &client_info(&ctx, &headers)).await {
                Ok(tokens) => {
                    let actor = state
                        .crm()
                        .actor(tokens.user.workspace_id, tokens.user.id)
                        .await?;
                    identity.logout(&actor, tokens.session_id).await?;
                }
                // Already over: logging out again is not an error.
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::RefreshTokenReused | ErrorKind::SessionRevoked
                    ) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let mut response = respond::no_content();
    clear_cookies(&state, &mut response, &path);
    Ok(response)
}

/// `POST /auth/logout-all`: ends every session of the caller.
pub(crate) async fn logout_all(
    Caller { state, auth }: Caller,
    OriginalUri(original): OriginalUri,
    uri: Uri,
) -> Result<Response, ApiError> {
    state.identity().logout_all(&auth.actor).await?;
    let mut response = respond::no_content();
    clear_cookies(&state, &mut response, &auth_path(&state, &original, &uri));
    Ok(response)
}

/// `GET /auth/sessions`: the caller's active sessions, `current` marking this one.
pub(crate) async fn sessions(Caller { state, auth }: Caller) -> Result<Response, ApiError> {
    let list = state
        .identity()
        .sessions(&auth.actor, Some(auth.session_id()))
        .await?;
    Ok(respond::json(
        StatusCode::OK,
        &serde_json::json!({ "data": list }),
    ))
}

/// `DELETE /auth/sessions/{id}`: revokes one of the caller's sessions.
pub(crate) async fn revoke_session(
    Caller { state, auth }: Caller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    state
        .identity()
        .revoke_session(&auth.actor, SessionId::from_uuid(id))
        .await?;
    Ok(respond::no_content())
}

/// `POST /auth/password`: changes the caller's password; every other session ends.
pub(crate) async fn change_password(
    Caller { state, auth }: Caller,
    ApiJson(body): ApiJson<PasswordChangeBody>,
) -> Result<Response, ApiError> {
    state
        .identity()
        .change_password(
            &auth.actor,
            Some(auth.session_id()),
            &body.current_password,
            &body.new_password,
        )
        .await?;
    Ok(respond::no_content())
}

/// `POST /auth/password-reset`: `202` whether or not the email exists.
pub(crate) async fn request_reset(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ResetRequestBody>,
) -> Result<Response, ApiError> {
    let workspace = workspace_or_default(&state, body.workspace_id).await?;
    state
        .identity()
        .request_password_reset(workspace, &body.email, &client_info(&ctx, &headers))
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `POST /auth/password-reset/confirm`: sets the new password; every session ends.
pub(crate) async fn confirm_reset(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResetConfirmBody>,
) -> Result<Response, ApiError> {
    state
        .identity()
        .confirm_password_reset(&body.token, &body.new_password)
        .await?;
    Ok(respond::no_content())
}
