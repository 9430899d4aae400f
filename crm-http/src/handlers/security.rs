//! `GET /security-events` and `GET /access-log` (admins): the workspace's security events
//! and access log, newest first, paged by the last entry's id.
//!
//! Both flush this instance's queued entries first (see [`crm_core::Crm::flush_logs`]), so
//! what happened on this instance up to the request is in the answer.

use axum::http::StatusCode;
use axum::response::Response;
use crm_core::access_log::AccessLogQuery;
use crm_core::id::UserId;
use crm_core::security::{SecurityEventQuery, SecurityEventType};
use crm_core::{FieldIssue, Timestamp};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{Caller, QueryArgs};
use crate::respond;
use crate::state::AppState;

/// Page size when `limit` is not given.
const DEFAULT_LIMIT: usize = 50;

fn page<T: serde::Serialize>(items: &[T], limit: usize, last: Option<Uuid>) -> Response {
    let next = (items.len() == limit).then_some(last).flatten();
    respond::json(
        StatusCode::OK,
        &serde_json::json!({ "data": items, "next_cursor": next }),
    )
}

fn limit(args: &QueryArgs, max: usize) -> Result<usize, ApiError> {
    let limit = args.limit(DEFAULT_LIMIT)?;
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::invalid_query("limit", FieldIssue::OutOfRange))
    }
}

async fn flush(state: &AppState) {
    if let Err(e) = state.crm().flush_logs().await {
        tracing::warn!(error = ?e, "security logs: a batch could not be written");
    }
}

/// `GET /security-events?type=&user_id=&since=&cursor=&limit=`.
pub(crate) async fn security_events(
    Caller { state, auth }: Caller,
    args: QueryArgs,
) -> Result<Response, ApiError> {
    args.only(&["type", "user_id", "since", "cursor", "limit"])?;
    let limit = limit(&args, crm_core::security::MAX_LIMIT)?;
    let query = SecurityEventQuery {
        kind: args.get("type", SecurityEventType::parse)?,
        user_id: args.get("user_id", |v| {
            Uuid::parse_str(v).ok().map(UserId::from_uuid)
        })?,
        since: args.get("since", Timestamp::parse_rfc3339)?,
        before: args.get("cursor", |v| Uuid::parse_str(v).ok())?,
        limit,
    };
    flush(&state).await;
    let events = state
        .crm()
        .security_events()
        .list(&auth.actor, &query)
        .await?;
    let last = events.last().map(|e| e.id);
    Ok(page(&events, limit, last))
}

/// `GET /access-log?record_id=&user_id=&since=&until=&cursor=&limit=`.
pub(crate) async fn access_log(
    Caller { state, auth }: Caller,
    args: QueryArgs,
) -> Result<Response, ApiError> {
    args.only(&["record_id", "user_id", "since", "until", "cursor", "limit"])?;
    let limit = limit(&args, crm_core::access_log::MAX_LIMIT)?;
    let query = AccessLogQuery {
        record_id: args.get("record_id", |v| Uuid::parse_str(v).ok())?,
        user_id: args.get("user_id", |v| {
            Uuid::parse_str(v).ok().map(UserId::from_uuid)
        })?,
        since: args.get("since", Timestamp::parse_rfc3339)?,
        until: args.get("until", Timestamp::parse_rfc3339)?,
        before: args.get("cursor", |v| Uuid::parse_str(v).ok())?,
        limit,
    };
    flush(&state).await;
    let entries = state.crm().access_log().list(&auth.actor, &query).await?;
    let last = entries.last().map(|e| e.id);
    Ok(page(&entries, limit, last))
}
