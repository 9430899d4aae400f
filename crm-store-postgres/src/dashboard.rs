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
//! One statement (one round trip, and one snapshot: the statement's own) with four
//! index-served parts: the tally rows under the query's prefixes, summed per key; the
//! owner's next open tasks (`crm_task_by_owner_id_completed_due_date`); the hot contacts (the
//! partial index `crm_contact_hot`); the latest activity (the partial index
//! `crm_audit_activity`). The last two name their predicates as literals so the planner can
//! use the partial indexes.

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

/// A commit's tally changes as the arrays of one `INSERT ... ON CONFLICT DO UPDATE` that adds
/// them (see the [module docs](self) for the slots): the last part of the commit's closing
/// statement ([`crate::write`]), so the tally rows stay locked as briefly as possible.
pub(crate) struct TallyRows {
    keys: Vec<Vec<u8>>,
    spread: Vec<bool>,
    counts: Vec<i64>,
    totals: Vec<String>,
}

impl TallyRows {
    /// The statement, `$1` the workspace and each `?` a parameter [`TallyRows::bind`] binds.
    pub(crate) const SQL: &'static str = "INSERT INTO crm_tally (workspace_id, key, slot, n, total) \
         SELECT $1, k, CASE WHEN s THEN (pg_backend_pid() % ?)::int2 ELSE 0::int2 END, n, t::numeric \
         FROM UNNEST(?::bytea[], ?::bool[], ?::int8[], ?::text[]) AS u(k, s, n, t) \
         ON CONFLICT (workspace_id, key, slot) DO UPDATE SET \
         n = crm_tally.n + EXCLUDED.n, total = crm_tally.total + EXCLUDED.total";

    /// The rows of `deltas`, in key order; `None` for none.
    pub(crate) fn of(deltas: TallyDeltas) -> Option<Self> {
        let rows = deltas.into_rows();
        if rows.is_empty() {
            return None;
        }
        let mut out = TallyRows {
            keys: Vec::with_capacity(rows.len()),
            spread: Vec::with_capacity(rows.len()),
            counts: Vec::with_capacity(rows.len()),
            totals: Vec::with_capacity(rows.len()),
        };
        for (k, t) in rows {
            out.spread.push(TallyKey::spreads_encoded(&k));
            out.keys.push(k);
            out.counts.push(t.count);
            out.totals.push(t.amount.to_string());
        }
        Some(out)
    }

    /// Binds the parameters of [`TallyRows::SQL`], in order.
    pub(crate) fn bind<'q>(&'q self, q: crate::write::PgQuery<'q>) -> crate::write::PgQuery<'q> {
        q.bind(SLOTS)
            .bind(&self.keys)
            .bind(&self.spread)
            .bind(&self.counts)
            .bind(&self.totals)
    }
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

/// The owner's next open tasks (`$1` workspace, `$2` owner key, `$3` the key of `false`,
/// `$4` limit), served by `crm_task_by_owner_id_completed_due_date`.
const TASKS_SQL: &str = "SELECT data::text FROM crm_task \
     WHERE workspace_id = $1 AND k_owner_id = $2 AND k_completed = $3 AND NOT deleted \
     ORDER BY k_due_date, id LIMIT $4";

/// The hot contacts (`$1` workspace, `$2` limit): the predicate of the partial index
/// `crm_contact_hot`, as literals.
fn hot_sql(limit: &str) -> String {
    format!(
        "SELECT data::text FROM crm_contact \
         WHERE workspace_id = $1 AND k_status = '{HOT_STATUS_KEY}'::bytea AND NOT deleted \
         ORDER BY k_last_seen DESC, id DESC LIMIT {limit}"
    )
}

/// The latest activity (`$1` workspace, `$2` limit): the predicate of the partial index
/// `crm_audit_activity`, as literals (the kinds of [`crm_core::dashboard::ACTIVITY_KINDS`]).
const ACTIVITY_SQL: &str = "SELECT data::text FROM crm_audit \
     WHERE workspace_id = $1 AND action = 'create' AND entity IN (3, 4, 5, 6) \
     ORDER BY id DESC LIMIT $2";

/// The whole read in one statement — one round trip, one snapshot (the statement's): the
/// tally rows summed per key as three arrays, then the three lists as arrays of JSON texts.
/// Parameters: `$1` workspace, `$2..$9` the four `[lower, upper)` key ranges, `$10` owner
/// key, `$11` the key of `false`, `$12..$14` the three limits. Public for `EXPLAIN` checks.
pub fn read_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let tasks = TASKS_SQL
            .replace("$2", "$10")
            .replace("$3", "$11")
            .replace("$4", "$12");
        let activity = ACTIVITY_SQL.replace("$2", "$14");
        format!(
            "WITH t AS ( \
               SELECT key, sum(n)::int8 AS n, sum(total)::text AS total FROM crm_tally \
               WHERE workspace_id = $1 AND ( \
                 (key >= $2 AND key < $3) OR (key >= $4 AND key < $5) OR \
                 (key >= $6 AND key < $7) OR (key >= $8 AND key < $9)) \
               GROUP BY key HAVING sum(n) <> 0 OR sum(total) <> 0) \
             SELECT ARRAY(SELECT key FROM t ORDER BY key), \
                    ARRAY(SELECT n FROM t ORDER BY key), \
                    ARRAY(SELECT total FROM t ORDER BY key), \
                    ARRAY({tasks}), ARRAY({}), ARRAY({activity})",
            hot_sql("$13")
        )
    })
}

/// [`crm_core::Storage::dashboard`]; see the [module docs](self).
pub(crate) async fn read(
    pool: &sqlx::PgPool,
    ws: Uuid,
    query: &DashboardQuery,
) -> Result<DashboardData> {
    let prefixes = dash::tally_prefixes(query);
    let mut q = sqlx::query(read_sql()).bind(ws);
    for p in &prefixes {
        // No prefix is all 0xFF bytes, so each has a successor.
        let upper = crm_core::storage::kv::prefix_successor(p).unwrap_or_else(|| vec![0xFF; 64]);
        q = q.bind(p.clone()).bind(upper);
    }
    let limit = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let row = q
        .bind(encode_key(&Value::Id(query.owner.uuid())))
        .bind(encode_key(&Value::Bool(false)))
        .bind(limit(query.next_tasks))
        .bind(limit(query.hot_contacts))
        .bind(limit(query.activity))
        .fetch_one(pool)
        .await
        .map_err(db)?;
    let keys: Vec<Vec<u8>> = row.try_get(0).map_err(db)?;
    let counts: Vec<i64> = row.try_get(1).map_err(db)?;
    let totals: Vec<String> = row.try_get(2).map_err(db)?;
    let mut out = DashboardData::default();
    for ((key, count), total) in keys.into_iter().zip(counts).zip(totals) {
        let amount = match total.parse::<i128>() {
            Ok(a) => a,
            Err(_) => decode("tally", &total, |b| serde_json::from_slice::<i128>(b))?,
        };
        out.tallies.push((key, Tally { count, amount }));
    }
    let texts = |i: usize| -> Result<Vec<String>> { row.try_get(i).map_err(db) };
    for data in texts(3)? {
        out.next_tasks.push(decode("task", &data, |b| {
            Record::from_json_bytes(EntityKind::Task, b)
        })?);
    }
    for data in texts(4)? {
        out.hot_contacts.push(decode("contact", &data, |b| {
            Record::from_json_bytes(EntityKind::Contact, b)
        })?);
    }
    for data in texts(5)? {
        out.activity.push(decode("audit entry", &data, |b| {
            serde_json::from_slice::<AuditEntry>(b)
        })?);
    }
    Ok(out)
}

/// The dashboard's list statements on their own (for `EXPLAIN` checks): next tasks
/// (`$1..$4`), hot contacts and activity (`$1`, `$2`). [`read`] runs them as parts of one
/// statement.
pub fn statements() -> [String; 3] {
    [TASKS_SQL.to_owned(), hot_sql("$2"), ACTIVITY_SQL.to_owned()]
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
