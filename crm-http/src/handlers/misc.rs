//! `/configuration`, `/search`, `/activity`, `/audit`, and the operational endpoints
//! `/health`, `/ready`, `/metrics`, `/openapi.json`, plus the fallbacks.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::audit::{AuditAction, AuditQuery};
use crm_core::id::AuditId;
use crm_core::model::{Configuration, ConfigurationPatch, EntityKind};
use crm_core::query::DEFAULT_LIMIT;
use crm_core::{ErrorKind, FieldIssue};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{ApiJson, Caller, IfNoneMatch, QueryArgs, RequiredIfMatch};
use crate::respond::{self, Versioned, guarded};
use crate::state::AppState;

/// `GET /configuration`, with `ETag` and `304`.
pub(crate) async fn get_configuration(
    Caller { state, auth }: Caller,
    inm: IfNoneMatch,
) -> Result<Versioned<Configuration>, ApiError> {
    let config = state.crm().configuration().get(&auth.actor).await?;
    Ok(Versioned::read(config, &inm))
}

/// `PATCH /configuration` with `If-Match` (admins).
pub(crate) async fn update_configuration(
    Caller { state, auth }: Caller,
    RequiredIfMatch(m): RequiredIfMatch,
    ApiJson(patch): ApiJson<ConfigurationPatch>,
) -> Result<Versioned<Configuration>, ApiError> {
    let service = state.crm().configuration();
    guarded(
        m,
        async || service.get(&auth.actor).await,
        async |v| service.update(&auth.actor, v, patch).await,
    )
    .await
}

/// `GET /search?q=...&limit=...`: companies, contacts and deals at once.
pub(crate) async fn search(
    Caller { state, auth }: Caller,
    headers: axum::http::HeaderMap,
    args: QueryArgs,
) -> Result<Response, ApiError> {
    args.only(&["q", "limit"])?;
    let q = args
        .0
        .get("q")
        .ok_or_else(|| ApiError::invalid_query("q", FieldIssue::Required))?;
    let limit = args.limit(DEFAULT_LIMIT)?;
    let results = state.crm().search(&auth.actor, q, limit).await?;
    Ok(crate::etag::json(&headers, &results))
}

fn audit_id(v: &str) -> Option<AuditId> {
    Uuid::parse_str(v).ok().map(AuditId::from_uuid)
}

/// A paged list of items whose cursor is the last item's audit id: a next page exists when
/// the page is full. With a weak `ETag` (see [`crate::etag`]).
fn audit_page<T: serde::Serialize>(
    headers: &axum::http::HeaderMap,
    items: &[T],
    limit: usize,
    last: Option<AuditId>,
) -> Response {
    let next = (items.len() == limit).then_some(last).flatten();
    crate::etag::json(
        headers,
        &serde_json::json!({ "data": items, "next_cursor": next }),
    )
}

/// `GET /activity?limit=...&cursor=...`: recent creations, newest first.
pub(crate) async fn activity(
    Caller { state, auth }: Caller,
    headers: axum::http::HeaderMap,
    args: QueryArgs,
) -> Result<Response, ApiError> {
    args.only(&["limit", "cursor"])?;
    let limit = args.limit(DEFAULT_LIMIT)?;
    let before = args.get("cursor", audit_id)?;
    let items = state
        .crm()
        .activity()
        .list(&auth.actor, before, limit)
        .await?;
    let last = items.last().map(|i| i.audit_id);
    Ok(audit_page(&headers, &items, limit, last))
}

fn parse_list<T: DeserializeOwned>(raw: &str) -> Option<Vec<T>> {
    raw.split(',')
        .map(|v| serde_json::from_value(serde_json::Value::String(v.trim().to_owned())).ok())
        .collect()
}

/// `GET /audit?record_id=...&actor_id=...&entity=contact,deal&action=update&limit=...&cursor=...`
/// (admins and managers), newest first.
pub(crate) async fn audit(
    Caller { state, auth }: Caller,
    headers: axum::http::HeaderMap,
    args: QueryArgs,
) -> Result<Response, ApiError> {
    args.only(&[
        "record_id",
        "actor_id",
        "entity",
        "action",
        "limit",
        "cursor",
    ])?;
    let limit = args.limit(DEFAULT_LIMIT)?;
    let query = AuditQuery {
        record_id: args.get("record_id", |v| Uuid::parse_str(v).ok())?,
        actor_id: args.get("actor_id", |v| {
            Uuid::parse_str(v).ok().map(crm_core::id::UserId::from_uuid)
        })?,
        entities: args
            .get("entity", parse_list::<EntityKind>)?
            .unwrap_or_default(),
        actions: args
            .get("action", parse_list::<AuditAction>)?
            .unwrap_or_default(),
        before: args.get("cursor", audit_id)?,
        limit: Some(limit),
    };
    let entries = state.crm().audit().list(&auth.actor, &query).await?;
    let last = entries.last().map(|e| e.id);
    Ok(audit_page(&headers, &entries, limit, last))
}

/// `GET /health`: the process answers; touches no storage.
pub(crate) async fn health() -> Response {
    respond::json(StatusCode::OK, &serde_json::json!({ "status": "ok" }))
}

/// `GET /ready`: the storage answers a ping (`503`, `E3001`, when it does not).
pub(crate) async fn ready(State(state): State<AppState>) -> Result<Response, ApiError> {
    state.crm().storage().ping().await?;
    Ok(respond::json(
        StatusCode::OK,
        &serde_json::json!({ "status": "ready" }),
    ))
}

/// `GET /metrics`: Prometheus text format (404 when the host turned it off; `401` without
/// the configured [`crate::HttpConfig::metrics_token`]).
pub(crate) async fn metrics(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    if !state.config().expose_metrics {
        return Err(not_found_route());
    }
    if let Some(expected) = &state.config().metrics_token
        && !metrics_token_matches(&headers, expected.expose())
    {
        return Err(ApiError::new(ErrorKind::Unauthenticated));
    }
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
        )],
        state.metrics_text(),
    )
        .into_response())
}

/// Whether `headers` carry `Authorization: Bearer <expected>`. Every byte is compared
/// whatever the first difference, so the time taken says nothing about the token.
pub fn metrics_token_matches(headers: &axum::http::HeaderMap, expected: &[u8]) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().as_bytes())
    else {
        return false;
    };
    if given.len() != expected.len() {
        return false;
    }
    given
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// `GET /openapi.json`: the OpenAPI 3 document of this router, its `servers` naming where
/// the router is mounted as the client sees it (the original path minus the router-relative
/// one, e.g. `/api/v1`), so that generated clients and test tools find the paths.
pub(crate) async fn openapi(
    axum::extract::OriginalUri(original): axum::extract::OriginalUri,
    uri: axum::http::Uri,
) -> Response {
    let prefix = original
        .path()
        .strip_suffix(uri.path())
        .unwrap_or("")
        .trim_end_matches('/');
    let mut doc = crate::openapi::document().clone();
    doc["servers"] = serde_json::json!([{
        "url": if prefix.is_empty() { "/" } else { prefix },
        "description": "This router, where the host mounts it.",
    }]);
    respond::json(StatusCode::OK, &doc)
}

/// Message of a request that matches no route.
pub const NO_SUCH_ENDPOINT: &str = "There is no such endpoint (E5001)";

fn not_found_route() -> ApiError {
    ApiError::new(ErrorKind::NotFound).with_message(NO_SUCH_ENDPOINT)
}

/// Fallback: no route matches the path.
pub(crate) async fn fallback() -> ApiError {
    not_found_route()
}

/// Fallback: the path exists but not with this method (`405`, `E2004`).
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorKind::MalformedRequest)
        .with_status(StatusCode::METHOD_NOT_ALLOWED)
        .with_message("This method is not allowed on this endpoint (E2004)")
}
