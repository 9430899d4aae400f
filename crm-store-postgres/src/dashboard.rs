//! The dashboard on PostgreSQL (migration 0004; semantics in [`crm_core::dashboard`]).
//!
//! # Tallies
//!
//! `crm_tally` holds the maintained figures, one row per `(workspace, key, slot)`; a figure
//! is the sum of its rows. A commit applies the [`TallyDeltas`] of its writes in its own
//! transaction (so a figure always equals a recount of the committed records): it first reads
//! the rows its updates and deletes replace, `FOR UPDATE` (so nothing changes them before its
//! writes do; the writes themselves would take the same locks a moment later), then adds the
//! deltas with one `INSERT ... ON CONFLICT DO UPDATE`, its last statement before `COMMIT`.
//!
//! A workspace-wide figure (live contacts, a stage's deals) would be one hot row that every
//! commit in the workspace updates and must wait for. So such tallies are spread over
//! [`SLOTS`] rows, the slot being the writing backend's process id modulo [`SLOTS`]:
//! commits on different connections update different rows and never queue on each other
//! (two connections whose ids collide just take turns). The per-day task figures
//! ([`TallyKey::spreads`]) keep one row (slot 0): there can be many, they are read as a range,
//! and one user's tasks due the same day are rarely written concurrently. Rows are updated in
//! key order, so two commits never deadlock on tallies.
//!
//! # Reading
//!
//! One `REPEATABLE READ READ ONLY` transaction (one snapshot) runs four index-served
//! statements: the tally rows under the query's prefixes, summed per key; the owner's next
//! open tasks (`crm_task_by_owner_id_completed_due_date`); the hot contacts (the partial index
//! `crm_contact_hot`); the latest activity (the partial index `crm_audit_activity`). The last
//! two name their predicates as literals so the planner can use the partial indexes.

use std::collections::HashMap;

use crm_core::audit::AuditEntry;
use crm_core::dashboard::{
    self as dash, DashboardData, DashboardQuery, Tally, TallyDeltas, TallyKey,
};
use crm_core::model::{EntityKind, Record};
use crm_core::query::Value;
use crm_core::{Result, Write};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::error::{PgStoreError, db};
use crate::schema::{encode_key, table};

/// Rows a spread tally is kept in (see the [module docs](self)).
pub const SLOTS: i32 = 16;

/// The stored states that a commit's updates and deletes replace, by `(kind, id)`, locked
/// `FOR UPDATE` until the transaction ends. Records the commit does not find are left out
/// (its write then fails anyway).
pub(crate) async fn replaced_states(
    tx: &mut PgConnection,
    ws: Uuid,
    writes: &[Write],
) -> Result<HashMap<(EntityKind, Uuid), Record>> {
    let mut by_kind: Vec<(EntityKind, Vec<Uuid>)> = Vec::new();
    for w in writes {
        let (kind, id) = match w {
            Write::Update { record, .. } => (record.kind(), record.id()),
            Write::Delete { kind, id, .. } => (*kind, *id),
            _ => continue,
        };
        if !crm_core::feed::in_feed(kind) {
            continue;
        }
        match by_kind.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, ids)) => ids.push(id),
            None => by_kind.push((kind, vec![id])),
        }
    }
    let mut out = HashMap::new();
    for (kind, mut ids) in by_kind {
        ids.sort_unstable();
        ids.dedup();
        let sql = format!(
            "SELECT data::text FROM {} WHERE workspace_id = $1 AND id = ANY($2) \
             ORDER BY id FOR UPDATE",
            table(kind)
        );
        let rows = sqlx::query(&sql)
            .bind(ws)
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        for row in rows {
            let data: &str = row.try_get(0).map_err(db)?;
            let record = Record::from_json_bytes(kind, data.as_bytes()).map_err(|source| {
                PgStoreError::Decode {
                    what: kind.noun(),
                    source,
                }
            })?;
            out.insert((kind, record.id()), record);
        }
    }
    Ok(out)
}

/// The tally changes of a commit's writes, applied in order from the `replaced` states.
pub(crate) fn deltas_of(
    writes: &[Write],
    mut replaced: HashMap<(EntityKind, Uuid), Record>,
) -> TallyDeltas {
    let mut deltas = TallyDeltas::new();
    for w in writes {
        match w {
            Write::Insert(r) => deltas.add(None, Some(r)),
            Write::Update { record, .. } => {
                let key = (record.kind(), record.id());
                deltas.add(replaced.get(&key), Some(record));
                replaced.insert(key, record.clone());
            }
            Write::Delete { kind, id, .. } => {
                deltas.add(replaced.remove(&(*kind, *id)).as_ref(), None);
            }
            _ => {}
        }
    }
    deltas
}

/// Adds `deltas` to the workspace's tallies, in one statement (see the
/// [module docs](self) for the slots).
pub(crate) async fn apply(tx: &mut PgConnection, ws: Uuid, deltas: TallyDeltas) -> Result<()> {
    let rows = deltas.into_rows();
    if rows.is_empty() {
        return Ok(());
    }
    let mut keys: Vec<Vec<u8>> = Vec::with_capacity(rows.len());
    let mut spread: Vec<bool> = Vec::with_capacity(rows.len());
    let mut counts: Vec<i64> = Vec::with_capacity(rows.len());
    let mut totals: Vec<String> = Vec::with_capacity(rows.len());
    for (k, t) in rows {
        spread.push(TallyKey::spreads_encoded(&k));
        keys.push(k);
        counts.push(t.count);
        totals.push(t.amount.to_string());
    }
    sqlx::query(
        "INSERT INTO crm_tally (workspace_id, key, slot, n, total) \
         SELECT $1, k, CASE WHEN s THEN (pg_backend_pid() % $6)::int2 ELSE 0::int2 END, n, t::numeric \
         FROM UNNEST($2::bytea[], $3::bool[], $4::int8[], $5::text[]) AS u(k, s, n, t) \
         ON CONFLICT (workspace_id, key, slot) DO UPDATE SET \
         n = crm_tally.n + EXCLUDED.n, total = crm_tally.total + EXCLUDED.total",
    )
    .bind(ws)
    .bind(&keys)
    .bind(&spread)
    .bind(&counts)
    .bind(&totals)
    .bind(SLOTS)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    Ok(())
}

/// The `k_status` of a hot contact, as the partial index `crm_contact_hot` names it.
pub const HOT_STATUS_KEY: &str = "\\x60686f740001";

fn decode<T>(
    what: &'static str,
    data: &str,
    parse: impl FnOnce(&[u8]) -> serde_json::Result<T>,
) -> Result<T> {
    parse(data.as_bytes()).map_err(|source| PgStoreError::Decode { what, source }.into())
}

/// [`crm_core::Storage::dashboard`]; see the [module docs](self).
pub(crate) async fn read(
    pool: &sqlx::PgPool,
    ws: Uuid,
    query: &DashboardQuery,
) -> Result<DashboardData> {
    let mut tx = pool.begin().await.map_err(db)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let prefixes = dash::tally_prefixes(query);
    let mut lower: Vec<Vec<u8>> = Vec::with_capacity(4);
    let mut upper: Vec<Vec<u8>> = Vec::with_capacity(4);
    for p in &prefixes {
        lower.push(p.clone());
        // No prefix is all 0xFF bytes, so each has a successor.
        upper.push(crm_core::storage::kv::prefix_successor(p).unwrap_or_else(|| vec![0xFF; 64]));
    }
    let rows = sqlx::query(
        "SELECT key, sum(n)::int8, sum(total)::text FROM crm_tally \
         WHERE workspace_id = $1 AND ( \
           (key >= $2 AND key < $3) OR (key >= $4 AND key < $5) OR \
           (key >= $6 AND key < $7) OR (key >= $8 AND key < $9)) \
         GROUP BY key HAVING sum(n) <> 0 OR sum(total) <> 0 ORDER BY key",
    )
    .bind(ws)
    .bind(&lower[0])
    .bind(&upper[0])
    .bind(&lower[1])
    .bind(&upper[1])
    .bind(&lower[2])
    .bind(&upper[2])
    .bind(&lower[3])
    .bind(&upper[3])
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    let mut out = DashboardData::default();
    for r in rows {
        let key: Vec<u8> = r.try_get(0).map_err(db)?;
        let count: i64 = r.try_get(1).map_err(db)?;
        let total: String = r.try_get(2).map_err(db)?;
        let amount = decode("tally", &total, |b| serde_json::from_slice::<i128>(b))?;
        out.tallies.push((key, Tally { count, amount }));
    }
    let limit = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let tasks = sqlx::query(
        "SELECT data::text FROM crm_task \
         WHERE workspace_id = $1 AND k_owner_id = $2 AND k_completed = $3 AND NOT deleted \
         ORDER BY k_due_date, id LIMIT $4",
    )
    .bind(ws)
    .bind(encode_key(&Value::Id(query.owner.uuid())))
    .bind(encode_key(&Value::Bool(false)))
    .bind(limit(query.next_tasks))
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    for r in tasks {
        let data: &str = r.try_get(0).map_err(db)?;
        out.next_tasks.push(decode("task", data, |b| {
            Record::from_json_bytes(EntityKind::Task, b)
        })?);
    }
    let hot = sqlx::query(&format!(
        "SELECT data::text FROM crm_contact \
         WHERE workspace_id = $1 AND k_status = '{HOT_STATUS_KEY}'::bytea AND NOT deleted \
         ORDER BY k_last_seen DESC, id DESC LIMIT $2"
    ))
    .bind(ws)
    .bind(limit(query.hot_contacts))
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    for r in hot {
        let data: &str = r.try_get(0).map_err(db)?;
        out.hot_contacts.push(decode("contact", data, |b| {
            Record::from_json_bytes(EntityKind::Contact, b)
        })?);
    }
    let activity = sqlx::query(ACTIVITY_SQL)
        .bind(ws)
        .bind(limit(query.activity))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
    for r in activity {
        let data: &str = r.try_get(0).map_err(db)?;
        out.activity.push(decode("audit entry", data, |b| {
            serde_json::from_slice::<AuditEntry>(b)
        })?);
    }
    tx.commit().await.map_err(db)?;
    Ok(out)
}

/// The latest activity: the predicate of the partial index `crm_audit_activity`, as literals
/// (the kinds of [`crm_core::dashboard::ACTIVITY_KINDS`]).
const ACTIVITY_SQL: &str = "SELECT data::text FROM crm_audit \
     WHERE workspace_id = $1 AND action = 'create' AND entity IN (3, 4, 5, 6) \
     ORDER BY id DESC LIMIT $2";

/// The dashboard's statements as they run (for `EXPLAIN` checks): next tasks, hot contacts,
/// activity; `$n` placeholders.
pub fn statements() -> [String; 3] {
    [
        "SELECT data::text FROM crm_task \
         WHERE workspace_id = $1 AND k_owner_id = $2 AND k_completed = $3 AND NOT deleted \
         ORDER BY k_due_date, id LIMIT $4"
            .to_owned(),
        format!(
            "SELECT data::text FROM crm_contact \
             WHERE workspace_id = $1 AND k_status = '{HOT_STATUS_KEY}'::bytea AND NOT deleted \
             ORDER BY k_last_seen DESC, id DESC LIMIT $2"
        ),
        ACTIVITY_SQL.to_owned(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_match_the_core() {
        let hot = encode_key(&Value::Text(dash::HOT_STATUS.into()));
        let hex: String = hot.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(HOT_STATUS_KEY, format!("\\x{hex}"));
        let tags: Vec<String> = dash::ACTIVITY_KINDS
            .iter()
            .map(|k| k.tag().to_string())
            .collect();
        assert!(ACTIVITY_SQL.contains(&format!("entity IN ({})", tags.join(", "))));
        let create = crate::read::action_name(crm_core::audit::AuditAction::Create);
        assert!(ACTIVITY_SQL.contains(&format!("action = '{create}'")));
    }
}
