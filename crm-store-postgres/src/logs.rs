//! The access log, security events and audit pruning on PostgreSQL (`crm_access_log`,
//! `crm_security_events`, migration 0005; semantics in [`crm_core::access_log`] and
//! [`crm_core::security`]). Each call is one statement (one transaction): all or nothing.

use crm_core::access_log::{AccessEntry, AccessLogQuery};
use crm_core::id::{UserId, WorkspaceId};
use crm_core::security::{SecurityEvent, SecurityEventQuery};
use crm_core::{Result, Timestamp};
use sqlx::Row;
use uuid::Uuid;

use crate::error::{PgStoreError, db};

fn limit_of(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn encode<T: serde::Serialize>(what: &'static str, v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|source| PgStoreError::Encode { what, source }.into())
}

fn decode<T: serde::de::DeserializeOwned>(what: &'static str, v: serde_json::Value) -> Result<T> {
    serde_json::from_value(v).map_err(|source| PgStoreError::Decode { what, source }.into())
}

/// [`crm_core::Storage::append_access_log`].
pub(crate) async fn append_access(pool: &sqlx::PgPool, entries: &[AccessEntry]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let ws: Vec<Uuid> = entries.iter().map(|e| e.workspace_id.uuid()).collect();
    let ids: Vec<Uuid> = entries.iter().map(|e| e.id).collect();
    let ats: Vec<i64> = entries.iter().map(|e| e.at.as_micros()).collect();
    let users: Vec<Uuid> = entries.iter().map(|e| e.user_id.uuid()).collect();
    let records: Vec<Uuid> = entries.iter().map(|e| e.record_id).collect();
    let data = entries
        .iter()
        .map(|e| encode("access entry", e))
        .collect::<Result<Vec<_>>>()?;
    sqlx::query(
        "INSERT INTO crm_access_log (workspace_id, id, at_micros, user_id, record_id, data) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int8[], $4::uuid[], $5::uuid[], \
         $6::jsonb[]) ON CONFLICT DO NOTHING",
    )
    .bind(&ws)
    .bind(&ids)
    .bind(&ats)
    .bind(&users)
    .bind(&records)
    .bind(&data)
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(())
}

/// [`crm_core::Storage::access_log`].
pub(crate) async fn access_log(
    pool: &sqlx::PgPool,
    ws: WorkspaceId,
    q: &AccessLogQuery,
) -> Result<Vec<AccessEntry>> {
    let rows = sqlx::query(
        "SELECT data FROM crm_access_log WHERE workspace_id = $1 \
         AND ($2::uuid IS NULL OR record_id = $2) AND ($3::uuid IS NULL OR user_id = $3) \
         AND ($4::int8 IS NULL OR at_micros >= $4) AND ($5::int8 IS NULL OR at_micros < $5) \
         AND ($6::uuid IS NULL OR id < $6) ORDER BY id DESC LIMIT $7",
    )
    .bind(ws.uuid())
    .bind(q.record_id)
    .bind(q.user_id.map(UserId::uuid))
    .bind(q.since.map(Timestamp::as_micros))
    .bind(q.until.map(Timestamp::as_micros))
    .bind(q.before)
    .bind(limit_of(q.limit))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    rows.into_iter()
        .map(|r| decode("access entry", r.try_get(0).map_err(db)?))
        .collect()
}

/// [`crm_core::Storage::erase_access_log_for`].
pub(crate) async fn erase_access_for(
    pool: &sqlx::PgPool,
    ws: WorkspaceId,
    record: Uuid,
) -> Result<usize> {
    let done = sqlx::query("DELETE FROM crm_access_log WHERE workspace_id = $1 AND record_id = $2")
        .bind(ws.uuid())
        .bind(record)
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(done.rows_affected() as usize)
}

/// [`crm_core::Storage::redact_access_log_by`].
pub(crate) async fn redact_access_by(
    pool: &sqlx::PgPool,
    ws: WorkspaceId,
    user: UserId,
) -> Result<usize> {
    let done = sqlx::query(
        "UPDATE crm_access_log SET data = jsonb_set(data, '{address}', 'null') \
         WHERE workspace_id = $1 AND user_id = $2 AND data->'address' <> 'null'::jsonb",
    )
    .bind(ws.uuid())
    .bind(user.uuid())
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(done.rows_affected() as usize)
}

/// Deletes up to `limit` of the oldest rows (by id) of `table` made before `before`,
/// stopping at the first one kept.
async fn prune(
    pool: &sqlx::PgPool,
    table: &str,
    ws: WorkspaceId,
    before: Timestamp,
    limit: usize,
) -> Result<usize> {
    let sql = format!(
        "WITH oldest AS ( \
             SELECT id, at_micros FROM {table} WHERE workspace_id = $1 ORDER BY id LIMIT $3 \
         ), stop AS ( \
             SELECT id FROM oldest WHERE at_micros >= $2 ORDER BY id LIMIT 1 \
         ) \
         DELETE FROM {table} t USING oldest o \
         WHERE t.workspace_id = $1 AND t.id = o.id \
           AND (NOT EXISTS (SELECT 1 FROM stop) OR o.id < (SELECT id FROM stop))"
    );
    let done = sqlx::query(&sql)
        .bind(ws.uuid())
        .bind(before.as_micros())
        .bind(limit_of(limit))
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(done.rows_affected() as usize)
}

/// [`crm_core::Storage::prune_access_log`].
pub(crate) async fn prune_access(
    pool: &sqlx::PgPool,
    ws: WorkspaceId,
    before: Timestamp,
    limit: usize,
) -> Result<usize> {
    prune(pool, "crm_access_log", ws, before, limit).await
}

/// [`crm_core::Storage::append_security_events`].
pub(crate) async fn append_security(pool: &sqlx::PgPool, events: &[SecurityEvent]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let ws: Vec<Uuid> = events.iter().map(|e| e.workspace_id.uuid()).collect();
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let ats: Vec<i64> = events.iter().map(|e| e.at.as_micros()).collect();
    let types: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    let users: Vec<Option<Uuid>> = events.iter().map(|e| e.user_id.map(UserId::uuid)).collect();
    let actors: Vec<Option<Uuid>> = events
        .iter()
        .map(|e| e.actor_id.map(UserId::uuid))
        .collect();
    let data = events
        .iter()
        .map(|e| encode("security event", e))
        .collect::<Result<Vec<_>>>()?;
    sqlx::query(
        "INSERT INTO crm_security_events \
         (workspace_id, id, at_micros, type, user_id, actor_id, data) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int8[], $4::text[], $5::uuid[], \
         $6::uuid[], $7::jsonb[]) ON CONFLICT DO NOTHING",
    )
    .bind(&ws)
    .bind(&ids)
    .bind(&ats)
    .bind(&types)
    .bind(&users)
    .bind(&actors)
    .bind(&data)
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(())
}

/// [`crm_core::Storage::security_events`].
pub(crate) async fn security_events(
    pool: &sqlx::PgPool,
    ws: WorkspaceId,
    q: &SecurityEventQuery,
) -> Result<Vec<SecurityEvent>> {
    let rows = sqlx::query(
        "SELECT data FROM crm_security_events WHERE workspace_id = $1 \
         AND ($2::text IS NULL OR type = $2) \
         AND ($3::uuid IS NULL OR user_id = $3 OR actor_id = $3) \
         AND ($4::int8 IS NULL OR at_micros >= $4) AND ($5::uuid IS NULL OR id < $5) \
         ORDER BY id DESC LIMIT $6",
    )
    .bind(ws.uuid())
    .bind(q.kind.map(|k| k.as_str()))
    .bind(q.user_id.map(UserId::uuid))
    .bind(q.since.map(Timestamp::as_micros))
    .bind(q.before)
    .bind(limit_of(q.limit))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    rows.into_iter()
        .map(|r| decode("security event", r.try_get(0).map_err(db)?))
        .collect()
}

/// [`crm_core::Storage::redact_security_events_for`].
pub(crate) async fn redact_security_for(
    pool: &sqlx::PgPool,
    ws: WorkspaceId,
    user: UserId,
) -> Result<usize> {
    let done = sqlx::query(
        "UPDATE crm_security_events \
         SET data = jsonb_set(jsonb_set(data, '{address}', 'null'), '{email}', 'null') \
         WHERE workspace_id = $1 AND (user_id = $2 OR actor_id = $2) \
         AND (data->'address' <> 'null'::jsonb OR data->'email' <> 'null'::jsonb)",
    )
    .bind(ws.uuid())
    .bind(user.uuid())
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(done.rows_affected() as usize)
}

/// [`crm_core::Storage::prune_security_events`].
pub(crate) async fn prune_security(
    pool: &sqlx::PgPool,
    ws: WorkspaceId,
    before: Timestamp,
    limit: usize,
) -> Result<usize> {
    prune(pool, "crm_security_events", ws, before, limit).await
}

/// [`crm_core::Storage::prune_audit`]: the audit table keeps the time inside `data`, so the
/// candidates are read, their times compared here, and the prefix deleted by id.
pub(crate) async fn prune_audit(
    pool: &sqlx::PgPool,
    ws: WorkspaceId,
    before: Timestamp,
    limit: usize,
) -> Result<usize> {
    let rows = sqlx::query(
        "SELECT id, data->>'at' FROM crm_audit WHERE workspace_id = $1 ORDER BY id LIMIT $2",
    )
    .bind(ws.uuid())
    .bind(limit_of(limit))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let mut doomed: Vec<Uuid> = Vec::new();
    for r in rows {
        let at: Option<String> = r.try_get(1).map_err(db)?;
        match at.as_deref().and_then(Timestamp::parse_rfc3339) {
            Some(at) if at < before => doomed.push(r.try_get(0).map_err(db)?),
            _ => break,
        }
    }
    if doomed.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query("DELETE FROM crm_audit WHERE workspace_id = $1 AND id = ANY($2)")
        .bind(ws.uuid())
        .bind(&doomed)
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(done.rows_affected() as usize)
}
