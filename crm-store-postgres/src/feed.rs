//! The change feed on PostgreSQL (`crm_feed`, migration 0003; semantics in
//! [`crm_core::feed`]).
//!
//! # Writing
//!
//! A commit's [`changes_of`](crm_core::feed::changes_of) go into `crm_feed` in the commit's
//! own transaction, one upsert per record (the table keeps one row per record: its latest
//! change), positioned at `(tx, seq)` where `tx` is `pg_current_xact_id()` — the writing
//! transaction's 64-bit id — and `seq` the entry's index in the commit.
//!
//! # Reading, and why no reader ever misses a change
//!
//! Transaction ids are handed out when a transaction first writes, not when it commits: a
//! transaction with id 10 can commit after one with id 11. A reader that had read past 11
//! and then never looked below it again would miss 10 — the problem with any sequence value
//! taken before `COMMIT`. So a read returns only rows with
//!
//! ```text
//! tx < pg_snapshot_xmin(pg_current_snapshot())
//! ```
//!
//! evaluated in the read statement itself (`pg_current_snapshot()` is the statement's active
//! snapshot). `xmin` is the oldest transaction id still running when the snapshot was taken,
//! over the whole cluster. Hence:
//!
//! 1. every transaction with an id below `xmin` has ended: if it committed, the snapshot sees
//!    its rows; if it aborted, its rows never existed. Nothing below `xmin` can appear later;
//! 2. every transaction that can still write a row — running now, or starting later — has an
//!    id of at least `xmin` (ids only grow);
//! 3. the reader's cursor is the position of a row it read, so it is below `xmin`.
//!
//! So every row that becomes readable after a read has a position above anything that read
//! returned: a reader walking `(tx, seq) > cursor` sees every change once, and a record's
//! newer entry (its row moved to the newer transaction's id) always comes after the older
//! one it may have read. Rows are read in `(tx, seq)` order through the
//! `(workspace_id, tx, seq)` index.
//!
//! The price is latency, not data: while a transaction is running (anywhere in the cluster),
//! rows of later transactions wait behind it. Commits here are short; a long-running
//! transaction in another application on the same cluster delays the feed (never loses
//! anything) until it ends. Writers never wait for each other or for readers: there is no
//! feed-wide lock, only the row of the record itself, which the record's own write already
//! locks.
//!
//! The horizon (`crm_feed_horizon`) is read *after* the entries, so a prune that removed
//! entries the page would have held is always seen (the answer is then `CursorExpired`, never
//! a silent gap).

use crm_core::feed::{Change, ChangeEntry, ChangeOp, FeedPage, Position};
use crm_core::id::{UserId, WorkspaceId};
use crm_core::model::EntityKind;
use crm_core::{Result, Timestamp};
use sqlx::Row;
use uuid::Uuid;

use crate::error::db;

fn op_code(op: ChangeOp) -> i16 {
    match op {
        ChangeOp::Upsert => 0,
        ChangeOp::Delete => 1,
    }
}

fn kind_of(tag: i16) -> Option<EntityKind> {
    EntityKind::ALL
        .into_iter()
        .find(|k| i16::from(k.tag()) == tag)
}

/// A commit's feed entries as the arrays of one `INSERT ... ON CONFLICT` (one entry per
/// record: a record's new entry replaces its previous one), the last part but one of the
/// commit's closing statement ([`crate::write`]).
pub(crate) struct FeedRows {
    entities: Vec<i16>,
    ids: Vec<Uuid>,
    seqs: Vec<i32>,
    ops: Vec<i16>,
    versions: Vec<i64>,
    ats: Vec<i64>,
    actors: Vec<Option<Uuid>>,
    owners: Vec<Option<Uuid>>,
}

impl FeedRows {
    /// The statement, `$1` the workspace and each `?` a parameter [`FeedRows::bind`] binds.
    pub(crate) const SQL: &'static str = "INSERT INTO crm_feed \
         (workspace_id, entity, record_id, tx, seq, op, version, at_micros, actor_id, owner_id) \
         SELECT $1, e, r, pg_current_xact_id()::text::bigint, s, o, v, a, ac, ow \
         FROM UNNEST(?::int2[], ?::uuid[], ?::int4[], ?::int2[], ?::int8[], ?::int8[], \
                     ?::uuid[], ?::uuid[]) AS u(e, r, s, o, v, a, ac, ow) \
         ON CONFLICT (workspace_id, entity, record_id) DO UPDATE SET \
         tx = EXCLUDED.tx, seq = EXCLUDED.seq, op = EXCLUDED.op, version = EXCLUDED.version, \
         at_micros = EXCLUDED.at_micros, actor_id = EXCLUDED.actor_id, \
         owner_id = EXCLUDED.owner_id";

    /// The rows of `changes`; `None` for none.
    pub(crate) fn of(changes: &[Change]) -> Option<Self> {
        if changes.is_empty() {
            return None;
        }
        let n = changes.len();
        let mut rows = FeedRows {
            entities: Vec::with_capacity(n),
            ids: Vec::with_capacity(n),
            seqs: Vec::with_capacity(n),
            ops: Vec::with_capacity(n),
            versions: Vec::with_capacity(n),
            ats: Vec::with_capacity(n),
            actors: Vec::with_capacity(n),
            owners: Vec::with_capacity(n),
        };
        for (seq, c) in changes.iter().enumerate() {
            rows.entities.push(i16::from(c.entity.tag()));
            rows.ids.push(c.id);
            rows.seqs.push(i32::try_from(seq).unwrap_or(i32::MAX));
            rows.ops.push(op_code(c.op));
            rows.versions
                .push(i64::try_from(c.version).unwrap_or(i64::MAX));
            rows.ats.push(c.at.as_micros());
            rows.actors.push(c.actor.map(UserId::uuid));
            rows.owners.push(c.owner.map(UserId::uuid));
        }
        Some(rows)
    }

    /// Binds the parameters of [`FeedRows::SQL`], in order.
    pub(crate) fn bind<'q>(&'q self, q: crate::write::PgQuery<'q>) -> crate::write::PgQuery<'q> {
        q.bind(&self.entities)
            .bind(&self.ids)
            .bind(&self.seqs)
            .bind(&self.ops)
            .bind(&self.versions)
            .bind(&self.ats)
            .bind(&self.actors)
            .bind(&self.owners)
    }
}

fn i64_to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// [`crm_core::Storage::changes`]; see the [module docs](self).
pub(crate) async fn changes(
    pool: &sqlx::PgPool,
    ws: WorkspaceId,
    after: Position,
    limit: usize,
) -> Result<FeedPage> {
    let rows = sqlx::query(
        "SELECT tx, seq, entity, record_id, op, version, at_micros, actor_id, owner_id \
         FROM crm_feed \
         WHERE workspace_id = $1 AND (tx, seq) > ($2, $3) \
           AND tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
         ORDER BY tx, seq LIMIT $4",
    )
    .bind(ws.uuid())
    .bind(i64::try_from(after.tx).unwrap_or(i64::MAX))
    .bind(i32::try_from(after.seq).unwrap_or(i32::MAX))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let mut entries = Vec::with_capacity(rows.len());
    for r in rows {
        let tag: i16 = r.try_get(2).map_err(db)?;
        let Some(entity) = kind_of(tag) else {
            continue;
        };
        let op: i16 = r.try_get(4).map_err(db)?;
        entries.push(ChangeEntry {
            position: Position {
                tx: i64_to_u64(r.try_get(0).map_err(db)?),
                seq: u32::try_from(r.try_get::<i32, _>(1).map_err(db)?).unwrap_or(0),
            },
            change: Change {
                entity,
                id: r.try_get(3).map_err(db)?,
                op: if op == 1 {
                    ChangeOp::Delete
                } else {
                    ChangeOp::Upsert
                },
                version: i64_to_u64(r.try_get(5).map_err(db)?),
                at: Timestamp::from_micros(r.try_get(6).map_err(db)?),
                actor: r
                    .try_get::<Option<Uuid>, _>(7)
                    .map_err(db)?
                    .map(UserId::from_uuid),
                owner: r
                    .try_get::<Option<Uuid>, _>(8)
                    .map_err(db)?
                    .map(UserId::from_uuid),
            },
        });
    }
    // After the entries (see the module docs).
    let horizon = sqlx::query("SELECT tx, seq FROM crm_feed_horizon WHERE workspace_id = $1")
        .bind(ws.uuid())
        .fetch_optional(pool)
        .await
        .map_err(db)?
        .map(|r| -> Result<Position> {
            Ok(Position {
                tx: i64_to_u64(r.try_get(0).map_err(db)?),
                seq: u32::try_from(r.try_get::<i32, _>(1).map_err(db)?).unwrap_or(0),
            })
        })
        .transpose()?
        .unwrap_or_default();
    Ok(FeedPage { entries, horizon })
}

/// [`crm_core::Storage::prune_changes`]: one transaction deleting the old deletions and
/// raising the horizon to the highest position deleted.
pub(crate) async fn prune(
    pool: &sqlx::PgPool,
    ws: WorkspaceId,
    deleted_before: Timestamp,
) -> Result<usize> {
    let mut tx = pool.begin().await.map_err(db)?;
    let removed = sqlx::query(
        "DELETE FROM crm_feed WHERE workspace_id = $1 AND op = 1 AND at_micros < $2 \
         RETURNING tx, seq",
    )
    .bind(ws.uuid())
    .bind(deleted_before.as_micros())
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    let mut top: Option<(i64, i32)> = None;
    for r in &removed {
        let p: (i64, i32) = (r.try_get(0).map_err(db)?, r.try_get(1).map_err(db)?);
        top = top.max(Some(p));
    }
    if let Some((t, s)) = top {
        sqlx::query(
            "INSERT INTO crm_feed_horizon (workspace_id, tx, seq) VALUES ($1, $2, $3) \
             ON CONFLICT (workspace_id) DO UPDATE SET tx = EXCLUDED.tx, seq = EXCLUDED.seq \
             WHERE (crm_feed_horizon.tx, crm_feed_horizon.seq) < (EXCLUDED.tx, EXCLUDED.seq)",
        )
        .bind(ws.uuid())
        .bind(t)
        .bind(s)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(removed.len())
}
