//! `GET /changes`: the change feed for offline clients, with long polling; `GET /me/recent`
//! (recently viewed) and `GET /dashboard`, the other reads offline clients cache.
//!
//! A long poll (`wait=N`) takes its [`ChangeSignal`](crm_core::service::ChangeSignal)
//! *before* its first read, so a commit that lands between the read and the wait still wakes
//! it. A wake only says "read again": the answer always comes from the feed. On PostgreSQL a
//! fresh commit becomes readable only once the transactions running beside it have ended
//! (see `crm_store_postgres::feed`), so after a wake that finds nothing the handler re-reads
//! a few times, shortly apart, before it waits for the next signal; and it re-reads at least
//! every second whatever the signal does, so even a lost signal costs a second, never data.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use crm_core::FieldIssue;
use crm_core::feed::{ChangeOp, FEED_KINDS};
use crm_core::model::EntityKind;
use crm_core::service::{ChangesPage, MAX_CHANGES_LIMIT};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{Caller, QueryArgs};
use crate::respond;

/// Page size when `limit` is not given.
const DEFAULT_LIMIT: usize = 100;
/// Longest allowed `wait`, in seconds.
pub(crate) const MAX_WAIT_SECS: u64 = 30;
/// Re-reads after a wake that found nothing, and the pause between them.
const QUICK_REREADS: u32 = 20;
const QUICK_PAUSE: Duration = Duration::from_millis(5);
/// The longest a long poll goes without re-reading the feed.
const SAFETY_REREAD: Duration = Duration::from_secs(1);

fn entity_names(raw: &str) -> Option<Vec<EntityKind>> {
    raw.split(',')
        .map(|v| {
            let v = v.trim();
            FEED_KINDS.into_iter().find(|k| k.noun() == v)
        })
        .collect()
}

fn page_json(page: &ChangesPage) -> Value {
    let data: Vec<Value> = page
        .data
        .iter()
        .map(|i| {
            json!({
                "cursor": i.cursor,
                "entity": i.entity.noun(),
                "id": i.id,
                "op": i.op.name(),
                "version": i.version,
                "at": i.at,
                "actor_id": i.actor,
                "record": match (&i.op, &i.record) {
                    (ChangeOp::Upsert, Some(r)) => r.to_json(),
                    _ => Value::Null,
                },
            })
        })
        .collect();
    json!({ "data": data, "next_cursor": page.next_cursor, "has_more": page.has_more })
}

/// `GET /changes?since=&limit=&entities=&wait=`.
pub(crate) async fn changes(
    Caller { state, auth }: Caller,
    args: QueryArgs,
) -> Result<Response, ApiError> {
    args.only(&["since", "limit", "entities", "wait"])?;
    let limit = args.limit(DEFAULT_LIMIT)?;
    if !(1..=MAX_CHANGES_LIMIT).contains(&limit) {
        return Err(ApiError::invalid_query("limit", FieldIssue::OutOfRange));
    }
    let wait = args.get("wait", |v| v.parse::<u64>().ok())?.unwrap_or(0);
    if wait > MAX_WAIT_SECS {
        return Err(ApiError::invalid_query("wait", FieldIssue::OutOfRange));
    }
    let entities = args
        .get("entities", entity_names)?
        .unwrap_or_else(|| FEED_KINDS.to_vec());
    let mut since = args.0.get("since").cloned();
    let crm = state.crm();
    let mut signal = crm.change_signal();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let mut quick = 0u32;
    loop {
        let page = crm
            .changes_of_kinds(&auth.actor, since.as_deref(), limit, &entities)
            .await?;
        let now = tokio::time::Instant::now();
        if !page.data.is_empty() || page.has_more || now >= deadline {
            return Ok(respond::json(StatusCode::OK, &page_json(&page)));
        }
        // Past the entries this caller may not see.
        since = Some(page.next_cursor);
        if quick > 0 {
            quick -= 1;
            tokio::time::sleep(QUICK_PAUSE.min(deadline - now)).await;
            continue;
        }
        let nap = SAFETY_REREAD.min(deadline - now);
        if tokio::time::timeout(nap, signal.changed()).await.is_ok() {
            quick = QUICK_REREADS;
        }
    }
}

/// `GET /me/recent?entity=contact&limit=`: the caller's recently viewed records of a kind,
/// newest first (at most 100), the same on every device and instance.
pub(crate) async fn recent(
    Caller { state, auth }: Caller,
    headers: axum::http::HeaderMap,
    args: QueryArgs,
) -> Result<Response, ApiError> {
    args.only(&["entity", "limit"])?;
    let entity = args
        .get("entity", |v| FEED_KINDS.into_iter().find(|k| k.noun() == v))?
        .ok_or_else(|| ApiError::invalid_query("entity", FieldIssue::Required))?;
    let limit = args.limit(crm_core::views::RECENT_LIMIT)?;
    let records = state.crm().recent(&auth.actor, entity, limit).await?;
    let data: Vec<Value> = records
        .iter()
        .map(crm_core::model::Record::to_json)
        .collect();
    Ok(crate::etag::json(&headers, &json!({ "data": data })))
}

/// `GET /dashboard?today=YYYY-MM-DD`: the caller's dashboard (see [`crm_core::dashboard`]);
/// `today` is the caller's local date (default: today in UTC). Weak `ETag` and `304`.
pub(crate) async fn dashboard(
    Caller { state, auth }: Caller,
    headers: axum::http::HeaderMap,
    args: QueryArgs,
) -> Result<Response, ApiError> {
    args.only(&["today"])?;
    let today = args.get("today", crm_core::clock::iso_date::parse)?;
    let figures = state.crm().dashboard(&auth.actor, today).await?;
    Ok(crate::etag::json(&headers, &figures))
}
