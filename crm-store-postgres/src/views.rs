//! Recently viewed records on PostgreSQL (`crm_recent`, migration 0003; semantics in
//! [`crm_core::views`]). A batch is one transaction: an upsert keeping the later time, then
//! a trim of each touched list to its newest `RECENT_LIMIT` rows.

use crm_core::id::{UserId, WorkspaceId};
use crm_core::model::EntityKind;
use crm_core::views::{RECENT_LIMIT, View, latest};
use crm_core::{Result, Timestamp};
use sqlx::Row;
use uuid::Uuid;

use crate::error::db;

/// [`crm_core::Storage::record_views`].
pub(crate) async fn record(pool: &sqlx::PgPool, views: &[View]) -> Result<()> {
    let views = latest(views);
    if views.is_empty() {
        return Ok(());
    }
    let ws: Vec<Uuid> = views.iter().map(|v| v.workspace_id.uuid()).collect();
    let users: Vec<Uuid> = views.iter().map(|v| v.user_id.uuid()).collect();
    let kinds: Vec<i16> = views.iter().map(|v| i16::from(v.entity.tag())).collect();
    let ids: Vec<Uuid> = views.iter().map(|v| v.record_id).collect();
    let ats: Vec<i64> = views.iter().map(|v| v.at.as_micros()).collect();
    let mut tx = pool.begin().await.map_err(db)?;
    sqlx::query(
        "INSERT INTO crm_recent (workspace_id, user_id, entity, record_id, at_micros) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int2[], $4::uuid[], $5::int8[]) \
         ON CONFLICT (workspace_id, user_id, entity, record_id) DO UPDATE \
         SET at_micros = GREATEST(crm_recent.at_micros, EXCLUDED.at_micros)",
    )
    .bind(&ws)
    .bind(&users)
    .bind(&kinds)
    .bind(&ids)
    .bind(&ats)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    sqlx::query(
        "DELETE FROM crm_recent r USING ( \
             SELECT DISTINCT w, u, e FROM UNNEST($1::uuid[], $2::uuid[], $3::int2[]) AS l(w, u, e) \
         ) l \
         WHERE r.workspace_id = l.w AND r.user_id = l.u AND r.entity = l.e \
           AND (r.at_micros, r.record_id) < ( \
             SELECT k.at_micros, k.record_id FROM crm_recent k \
             WHERE k.workspace_id = l.w AND k.user_id = l.u AND k.entity = l.e \
             ORDER BY k.at_micros DESC, k.record_id DESC OFFSET $4 - 1 LIMIT 1)",
    )
    .bind(&ws)
    .bind(&users)
    .bind(&kinds)
    .bind(i64::try_from(RECENT_LIMIT).unwrap_or(100))
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)
}

/// [`crm_core::Storage::recent_views`].
pub(crate) async fn recent(
    pool: &sqlx::PgPool,
    ws: WorkspaceId,
    user: UserId,
    kind: EntityKind,
    limit: usize,
) -> Result<Vec<(Uuid, Timestamp)>> {
    let rows = sqlx::query(
        "SELECT record_id, at_micros FROM crm_recent \
         WHERE workspace_id = $1 AND user_id = $2 AND entity = $3 \
         ORDER BY at_micros DESC, record_id DESC LIMIT $4",
    )
    .bind(ws.uuid())
    .bind(user.uuid())
    .bind(i16::from(kind.tag()))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0).map_err(db)?,
                Timestamp::from_micros(r.try_get(1).map_err(db)?),
            ))
        })
        .collect()
}
