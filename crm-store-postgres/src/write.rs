//! The write path: one [`Commit`] = one PostgreSQL transaction.
//!
//! Under `READ COMMITTED`, each assertion takes the row lock it needs so that it still holds
//! when the transaction commits, whatever other connections (or other instances of the host
//! application) do meanwhile:
//!
//! * `Check` and `Exists` read the row `FOR SHARE`: a concurrent update or delete of that row
//!   waits for this transaction, then finds the version it expected gone and fails.
//! * `Update` and `Delete` are conditional on the expected version (`WHERE version = $v`);
//!   zero rows affected means the record is gone (`NotFound`) or changed (`VersionConflict`).
//! * `Insert` is `ON CONFLICT DO NOTHING`: zero rows means the id exists (`VersionConflict`).
//! * Unique values are rows of `crm_unique` keyed by the value: a second claim, even by a
//!   transaction still in flight elsewhere, waits for the first and then finds it taken
//!   (`Duplicate`).
//!
//! * `FirstWorkspace` takes a transaction-scoped advisory lock ([`FIRST_WORKSPACE_LOCK`])
//!   before looking for another workspace, so of two first sign-ups racing on one database
//!   (from any instances) exactly one commits.
//!
//! Revoked sessions and written users are announced to other instances' caches by
//! notifications queued in the same transaction ([`crate::signal`]): delivered on commit only.
//!
//! Assertions run first, against the state the core decided on; then the rows that updates
//! and deletes replace are read `FOR UPDATE` (the dashboard's tallies need them, see
//! [`crate::dashboard`]); then the writes in order; then one closing statement ([`close`])
//! with the audit entries, the feed entries (see [`crate::feed`]) and the tally changes. Any
//! failure rolls the whole transaction back.

use crm_core::audit::AuditEntry;
use crm_core::error::{FieldError, FieldIssue};
use crm_core::model::{EntityKind, Record};
use crm_core::{Commit, Error, ErrorKind, Result, Write};
use sqlx::{PgConnection, Postgres, Row, Transaction};
use uuid::Uuid;

use crate::error::{PgStoreError, db};
use crate::schema::{RowValues, kind_sql, table};

/// Applies `commit` atomically on the pool.
pub(crate) async fn commit(pool: &sqlx::PgPool, commit: Commit) -> Result<()> {
    let ws = commit.workspace_id.uuid();
    let outside = commit.writes.iter().any(|w| match w {
        Write::Insert(r) | Write::Update { record: r, .. } => r.workspace_id().uuid() != ws,
        _ => false,
    }) || commit.audit.iter().any(|a| a.workspace_id.uuid() != ws);
    if outside {
        return Err(PgStoreError::WorkspaceMismatch.into());
    }
    // Encode everything before touching the database.
    let mut rows = Vec::new();
    for w in &commit.writes {
        if let Write::Insert(r) | Write::Update { record: r, .. } = w {
            rows.push(RowValues::of(r)?);
        }
    }
    let audit = AuditRows::of(&commit.audit)?;
    let signals = crm_core::storage::invalidation::invalidations_of(&commit);
    let changes = crm_core::feed::changes_of(&commit);

    let mut tx: Transaction<'_, Postgres> = pool.begin().await.map_err(db)?;
    if commit
        .writes
        .iter()
        .any(|w| matches!(w, Write::FirstWorkspace))
    {
        first_workspace(&mut tx, ws).await?;
    }
    for w in &commit.writes {
        let (kind, id) = match w {
            Write::Check { kind, id, .. } | Write::Exists { kind, id, .. } => (*kind, *id),
            _ => continue,
        };
        let found = locked_version(&mut tx, ws, kind, id).await?;
        match (w, found) {
            (Write::Check { .. }, None) => return Err(Error::not_found(kind)),
            (
                Write::Check {
                    expected_version, ..
                },
                Some((v, _)),
            ) if v != *expected_version => {
                return Err(Error::new(ErrorKind::VersionConflict));
            }
            (Write::Exists { field, .. }, None | Some((_, true))) => {
                return Err(Error::validation(vec![FieldError::new(
                    *field,
                    FieldIssue::UnknownReference,
                )]));
            }
            _ => {}
        }
    }
    // The states the updates and deletes replace, locked, for the dashboard's tallies.
    let replaced = crate::dashboard::replaced_states(&mut tx, ws, &commit.writes).await?;
    let mut rows = rows.iter();
    let mut writes = commit.writes.iter().peekable();
    while let Some(w) = writes.next() {
        match w {
            Write::Insert(record) if !has_unique_keys(record.kind()) => {
                // A run of inserts of one kind (a bulk import, a merge's moves) goes out as
                // multi-row INSERTs.
                let kind = record.kind();
                let mut batch = vec![rows.next().expect("one row per insert")];
                while let Some(Write::Insert(next)) = writes.peek() {
                    if next.kind() != kind {
                        break;
                    }
                    writes.next();
                    batch.push(rows.next().expect("one row per insert"));
                }
                insert_rows(&mut tx, kind, &batch).await?;
            }
            Write::Insert(record) => {
                let row = rows.next().expect("one row per insert");
                insert_rows(&mut tx, record.kind(), &[row]).await?;
                claim_unique_keys(&mut tx, ws, record, false).await?;
            }
            Write::Update {
                record,
                expected_version,
            } => {
                let row = rows.next().expect("one row per update");
                let sql = &kind_sql(record.kind()).update;
                let n = row
                    .bind(sqlx::query(sql))
                    .bind(version_param(*expected_version))
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?
                    .rows_affected();
                if n == 0 {
                    return Err(missing_or_stale(&mut tx, ws, record.kind(), record.id()).await);
                }
                claim_unique_keys(&mut tx, ws, record, true).await?;
            }
            Write::Delete {
                kind,
                id,
                expected_version,
            } => {
                let sql = format!(
                    "DELETE FROM {} WHERE workspace_id = $1 AND id = $2 AND version = $3",
                    table(*kind)
                );
                let n = sqlx::query(&sql)
                    .bind(ws)
                    .bind(*id)
                    .bind(version_param(*expected_version))
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?
                    .rows_affected();
                if n == 0 {
                    return Err(missing_or_stale(&mut tx, ws, *kind, *id).await);
                }
                if has_unique_keys(*kind) {
                    release_unique_keys(&mut tx, ws, *kind, *id).await?;
                }
            }
            Write::RedactAudit(entry) => {
                if entry.workspace_id.uuid() != ws {
                    return Err(PgStoreError::WorkspaceMismatch.into());
                }
                let data = serde_json::to_string(entry).map_err(|source| PgStoreError::Encode {
                    what: "audit entry",
                    source,
                })?;
                sqlx::query(
                    "UPDATE crm_audit SET data = $3::jsonb WHERE workspace_id = $1 AND id = $2",
                )
                .bind(ws)
                .bind(entry.id.uuid())
                .bind(data)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            Write::ForgetViews { kind, id } => {
                sqlx::query(
                    "DELETE FROM crm_recent WHERE workspace_id = $1 AND entity = $2 AND record_id = $3",
                )
                .bind(ws)
                .bind(i16::from(kind.tag()))
                .bind(*id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            Write::ForgetViewer { user } => {
                sqlx::query("DELETE FROM crm_recent WHERE workspace_id = $1 AND user_id = $2")
                    .bind(ws)
                    .bind(user.uuid())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            Write::Check { .. } | Write::Exists { .. } | Write::FirstWorkspace => {}
        }
    }
    crate::signal::notify(&mut tx, &signals).await?;
    // (The `bench-no-feed` build, for the feed's A/B benchmark only, records none.)
    let feed = crate::feed::FeedRows::of(&changes).filter(|_| !cfg!(feature = "bench-no-feed"));
    let tally =
        crate::dashboard::TallyRows::of(crate::dashboard::deltas_of(&commit.writes, replaced));
    close(&mut tx, ws, &audit, feed.as_ref(), tally.as_ref()).await?;
    tx.commit().await.map_err(db)
}

/// Key of the transaction-scoped advisory lock that serializes "first workspace" commits
/// (`Write::FirstWorkspace`) across every connection and instance on the database. An
/// arbitrary constant: the bytes of `b"crmfirst"`.
pub const FIRST_WORKSPACE_LOCK: i64 = i64::from_be_bytes(*b"crmfirst");

/// [`Write::FirstWorkspace`]: takes the advisory lock (held until this transaction ends),
/// then looks for another workspace. Under `READ COMMITTED` each statement sees everything
/// committed before it started, and a competing first-workspace transaction releases the
/// lock only when it has committed or rolled back: whoever gets the lock second sees the
/// first one's workspace and fails.
async fn first_workspace(tx: &mut PgConnection, ws: Uuid) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(FIRST_WORKSPACE_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let other: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM crm_workspace WHERE workspace_id <> $1 LIMIT 1")
            .bind(ws)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
    if other.is_some() {
        return Err(Error::new(ErrorKind::AlreadyInitialized));
    }
    Ok(())
}

/// Inserts rows of one kind, as few statements as the bind-parameter limit allows. Any id
/// already present is a `VersionConflict` (and the transaction is abandoned).
async fn insert_rows(tx: &mut PgConnection, kind: EntityKind, rows: &[&RowValues]) -> Result<()> {
    let layout = kind_sql(kind);
    let per_row = layout.columns;
    // PostgreSQL takes at most 65,535 parameters per statement.
    let chunk = (65_535 / per_row).max(1);
    for part in rows.chunks(chunk) {
        let sql = if part.len() == 1 {
            std::borrow::Cow::Borrowed(layout.insert.as_str())
        } else {
            std::borrow::Cow::Owned(layout.insert_many(part.len()))
        };
        let mut q = sqlx::query(&sql);
        for row in part {
            q = row.bind(q);
        }
        let n = q.execute(&mut *tx).await.map_err(db)?.rows_affected();
        if n != part.len() as u64 {
            return Err(Error::new(ErrorKind::VersionConflict));
        }
    }
    Ok(())
}

/// Versions are `u64` in the core and `bigint` here; no record reaches 2^63 updates.
fn version_param(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The version and soft-delete flag of a row, locked `FOR SHARE` until the transaction ends.
async fn locked_version(
    tx: &mut PgConnection,
    ws: Uuid,
    kind: EntityKind,
    id: Uuid,
) -> Result<Option<(u64, bool)>> {
    let sql = format!(
        "SELECT version, deleted FROM {} WHERE workspace_id = $1 AND id = $2 FOR SHARE",
        table(kind)
    );
    let row = sqlx::query(&sql)
        .bind(ws)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
    row.map(|r| {
        let v: i64 = r.try_get(0).map_err(db)?;
        let deleted: bool = r.try_get(1).map_err(db)?;
        Ok((u64::try_from(v).unwrap_or(0), deleted))
    })
    .transpose()
}

/// Why a conditional update or delete touched no row.
async fn missing_or_stale(tx: &mut PgConnection, ws: Uuid, kind: EntityKind, id: Uuid) -> Error {
    match locked_version(tx, ws, kind, id).await {
        Ok(None) => Error::not_found(kind),
        Ok(Some(_)) => Error::new(ErrorKind::VersionConflict),
        Err(e) => e,
    }
}

/// Kinds whose records can hold unique values ([`Record::unique_keys`]).
fn has_unique_keys(kind: EntityKind) -> bool {
    matches!(
        kind,
        EntityKind::User | EntityKind::Tag | EntityKind::Session | EntityKind::ResetToken
    )
}

async fn release_unique_keys(
    tx: &mut PgConnection,
    ws: Uuid,
    kind: EntityKind,
    id: Uuid,
) -> Result<()> {
    sqlx::query("DELETE FROM crm_unique WHERE workspace_id = $1 AND kind = $2 AND record_id = $3")
        .bind(ws)
        .bind(i16::from(kind.tag()))
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    Ok(())
}

/// Makes the unique values held by `record` exactly its current [`Record::unique_keys`]:
/// releases the ones it no longer has, keeps the ones it still has, claims the new ones.
async fn claim_unique_keys(
    tx: &mut PgConnection,
    ws: Uuid,
    record: &Record,
    replace: bool,
) -> Result<()> {
    let kind = record.kind();
    if !has_unique_keys(kind) {
        return Ok(());
    }
    let mut keys = record.unique_keys();
    keys.sort();
    keys.dedup();
    let names: Vec<&str> = keys.iter().map(|(n, _)| *n).collect();
    let values: Vec<&str> = keys.iter().map(|(_, v)| v.as_str()).collect();
    if replace {
        sqlx::query(
            "DELETE FROM crm_unique WHERE workspace_id = $1 AND kind = $2 AND record_id = $3 \
             AND (name, value) NOT IN (SELECT n, v FROM UNNEST($4::text[], $5::text[]) AS u(n, v))",
        )
        .bind(ws)
        .bind(i16::from(kind.tag()))
        .bind(record.id())
        .bind(&names)
        .bind(&values)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    if keys.is_empty() {
        return Ok(());
    }
    // All values in one statement. A value this record already holds comes back through the
    // no-op update; one held by another record (even by a transaction still in flight, which
    // this waits for) does not come back at all.
    let claimed = sqlx::query(
        "INSERT INTO crm_unique (workspace_id, kind, name, value, record_id) \
         SELECT $1, $2, n, v, $3 FROM UNNEST($4::text[], $5::text[]) AS u(n, v) \
         ON CONFLICT (workspace_id, kind, name, value) DO UPDATE SET record_id = EXCLUDED.record_id \
         WHERE crm_unique.record_id = EXCLUDED.record_id \
         RETURNING name, value",
    )
    .bind(ws)
    .bind(i16::from(kind.tag()))
    .bind(record.id())
    .bind(&names)
    .bind(&values)
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    if claimed.len() < keys.len() {
        let got: Vec<(String, String)> = claimed
            .iter()
            .filter_map(|r| Some((r.try_get(0).ok()?, r.try_get(1).ok()?)))
            .collect();
        let taken = keys
            .iter()
            .find(|(n, v)| !got.iter().any(|(gn, gv)| gn == n && gv == v))
            .map_or("value", |(n, _)| *n);
        return Err(Error::duplicate(taken));
    }
    Ok(())
}

/// The audit entries of a commit, as column arrays for one `INSERT ... SELECT UNNEST`.
struct AuditRows {
    ids: Vec<Uuid>,
    entities: Vec<i16>,
    records: Vec<Uuid>,
    actions: Vec<String>,
    data: Vec<String>,
}

impl AuditRows {
    fn of(entries: &[AuditEntry]) -> Result<Self> {
        let mut rows = AuditRows {
            ids: Vec::with_capacity(entries.len()),
            entities: Vec::with_capacity(entries.len()),
            records: Vec::with_capacity(entries.len()),
            actions: Vec::with_capacity(entries.len()),
            data: Vec::with_capacity(entries.len()),
        };
        for e in entries {
            let encode = |source| PgStoreError::Encode {
                what: "audit entry",
                source,
            };
            rows.ids.push(e.id.uuid());
            rows.entities.push(i16::from(e.entity.tag()));
            rows.records.push(e.record_id);
            rows.actions.push(crate::read::action_name(e.action));
            rows.data.push(serde_json::to_string(e).map_err(encode)?);
        }
        Ok(rows)
    }

    /// The statement, `$1` the workspace and each `?` a parameter [`AuditRows::bind`] binds.
    const SQL: &'static str = "INSERT INTO crm_audit (workspace_id, id, entity, record_id, action, data) \
         SELECT $1, i, e, r, a, d::jsonb \
         FROM UNNEST(?::uuid[], ?::int2[], ?::uuid[], ?::text[], ?::text[]) AS u(i, e, r, a, d)";

    /// Binds the parameters of [`AuditRows::SQL`], in order.
    fn bind<'q>(&'q self, q: PgQuery<'q>) -> PgQuery<'q> {
        q.bind(&self.ids)
            .bind(&self.entities)
            .bind(&self.records)
            .bind(&self.actions)
            .bind(&self.data)
    }
}

/// A query with its binds, as the parts of [`close`] take and give it.
pub(crate) type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// The commit's last writes — its audit entries, its feed entries and its tally changes, in
/// that order — as one statement of data-modifying CTEs (one round trip instead of three;
/// each part is left out when it has no rows). The parts write different tables and read
/// nothing the others write, so running them in one statement, on one snapshot, changes
/// nothing but the round trips. The tallies come last, as they did as statements: their
/// rows stay locked as briefly as possible.
async fn close(
    tx: &mut PgConnection,
    ws: Uuid,
    audit: &AuditRows,
    feed: Option<&crate::feed::FeedRows>,
    tally: Option<&crate::dashboard::TallyRows>,
) -> Result<()> {
    let mut parts: Vec<&str> = Vec::with_capacity(3);
    if !audit.ids.is_empty() {
        parts.push(AuditRows::SQL);
    }
    if feed.is_some() {
        parts.push(crate::feed::FeedRows::SQL);
    }
    if tally.is_some() {
        parts.push(crate::dashboard::TallyRows::SQL);
    }
    let Some((last, ctes)) = parts.split_last() else {
        return Ok(());
    };
    let mut sql = String::with_capacity(2048);
    for (i, part) in ctes.iter().enumerate() {
        sql.push_str(if i == 0 { "WITH " } else { ", " });
        sql.push_str(&format!("w{i} AS ({part})"));
    }
    if !ctes.is_empty() {
        sql.push(' ');
    }
    sql.push_str(last);
    let sql = number_parameters(&sql, 2);
    let mut q = sqlx::query(&sql).bind(ws);
    if !audit.ids.is_empty() {
        q = audit.bind(q);
    }
    if let Some(feed) = feed {
        q = feed.bind(q);
    }
    if let Some(tally) = tally {
        q = tally.bind(q);
    }
    q.execute(&mut *tx).await.map_err(db)?;
    Ok(())
}

/// `sql` with each `?` replaced by the next parameter number, from `$first` on (the parts'
/// statements hold no other `?`).
fn number_parameters(sql: &str, first: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 64);
    let mut n = first;
    for (i, piece) in sql.split('?').enumerate() {
        if i > 0 {
            out.push_str(&format!("${n}"));
            n += 1;
        }
        out.push_str(piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_numbered_in_order_from_the_first() {
        assert_eq!(
            number_parameters("SELECT ?::int, $1, ?::text", 2),
            "SELECT $2::int, $1, $3::text"
        );
        assert_eq!(number_parameters("no parameters", 2), "no parameters");
        let all = [
            AuditRows::SQL,
            crate::feed::FeedRows::SQL,
            crate::dashboard::TallyRows::SQL,
        ]
        .concat();
        // 5 + 8 + 5 parameters after the workspace.
        assert!(number_parameters(&all, 2).contains("$19"));
        assert!(!number_parameters(&all, 2).contains("$20"));
    }
}
