//! The change feed: every committed change to a record, per workspace, in cursor order.
//!
//! # What is in it
//!
//! Every [`Commit`] that writes a company, contact, deal, note, task or tag records, in the
//! same atomic commit, one [`Change`] per record it touched ([`changes_of`] derives them from
//! the commit's writes; the backends persist exactly that list): the entity, the id, the op
//! ([`ChangeOp::Upsert`] or [`ChangeOp::Delete`]), the record's new version, when, who, and
//! the record's owner (used to hide deletions of records the reader may not see). A soft
//! delete, a purge and the loser of a merge are `delete`; a restore, an archive, a move, a
//! completion and every update are `upsert`. Users, the configuration and the identity
//! layer's records (sessions, credentials, reset tokens) are not in the feed.
//!
//! # Latest entry per record (CouchDB `_changes` semantics)
//!
//! The feed keeps **one entry per record**: the latest. A new change of a record removes its
//! previous entry and adds a new one at the end of the feed. So
//!
//! * the feed is as large as the number of records ever changed (not the number of changes);
//! * a reader that walks it from any cursor sees, for every record changed after that cursor,
//!   exactly one entry, carrying its latest state: the record itself is read when the entry is
//!   read (entries hold no copy of the record body). Intermediate versions a reader did not
//!   get to before the next change are skipped, never reordered: the versions one reader sees
//!   of a record always increase.
//! * Erasure is simple: no entry holds personal data, and no old copy of a record lingers.
//!
//! Delete entries (tombstones) are kept until [`crate::Storage::prune_changes`] removes the
//! old ones; it raises the workspace's *horizon*, and a cursor from before the horizon is
//! answered with [`crate::ErrorKind::CursorExpired`] (HTTP 410): the reader may have missed a
//! deletion and must resync from scratch. Reading from the beginning is always possible.
//!
//! # Positions, and why a reader never misses a change
//!
//! An entry's [`Position`] is `(tx, seq)`: `seq` numbers the entries of one commit, `tx`
//! orders commits. The contract every backend keeps: **once a reader has read an entry at
//! position `p`, every entry that becomes readable later has a position above `p`**. So a
//! reader that asks for "after my cursor" never misses a change, whatever commits
//! concurrently, and never sees one twice (an entry lives at one position; a later change of
//! the record is a new entry at a higher position).
//!
//! * In memory and on redb, `tx` is a counter incremented by the single writer, inside the
//!   write transaction; readers see whole transactions, in commit order.
//! * On PostgreSQL, `tx` is the writing transaction's id (`pg_current_xact_id()`), which is
//!   *not* in commit order. Readers therefore only read entries whose `tx` is below the `xmin`
//!   of their own statement's snapshot (`pg_snapshot_xmin(pg_current_snapshot())`): every
//!   transaction below `xmin` has ended (committed entries are visible to that snapshot,
//!   aborted ones never will be), and every transaction that can still commit — running now,
//!   or not yet started — has an id at or above `xmin`. A reader's cursor never passes `xmin`,
//!   so everything still to come lies above it. A late commit costs latency (readers wait for
//!   the oldest running transaction), never data. See `crm-store-postgres`'s `feed` module.
//!
//! When a change becomes readable: in memory and on redb, as soon as its commit is
//! acknowledged. On PostgreSQL, once every transaction that was running when it committed has
//! ended too (usually within milliseconds), so a writer does not necessarily read its own
//! change at once; readers that wait (long polls, subscriptions) retry briefly.
//!
//! Within one commit, a record touched by several writes gets one entry (the last write
//! wins); the order of a commit's entries is the order of their records' first writes.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit::AuditEntry;
use crate::clock::Timestamp;
use crate::commit::{Commit, Write};
use crate::error::{Error, ErrorKind, FieldError, FieldIssue, Result};
use crate::id::{UserId, WorkspaceId};
use crate::model::EntityKind;

/// Where an entry sits in its workspace's feed; entries are read in increasing position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Position {
    /// Orders commits (a counter, or PostgreSQL's transaction id; see the module docs).
    pub tx: u64,
    /// Orders the entries of one commit.
    pub seq: u32,
}

impl Position {
    /// Before every entry: "from the beginning".
    pub const ZERO: Position = Position { tx: 0, seq: 0 };
}

/// What happened to a record, as far as a reader of the feed is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    /// Created or changed (also restored, archived, moved, completed): read it again.
    Upsert,
    /// Soft deleted, purged, or merged away: drop it.
    Delete,
}

impl ChangeOp {
    /// `"upsert"` or `"delete"`.
    pub const fn name(self) -> &'static str {
        match self {
            ChangeOp::Upsert => "upsert",
            ChangeOp::Delete => "delete",
        }
    }
}

/// One change of one record, as a commit records it. Holds no field of the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Kind of record.
    pub entity: EntityKind,
    /// Which record.
    pub id: Uuid,
    /// Upsert or delete.
    pub op: ChangeOp,
    /// The record's version after the change (for a purge: the last version plus one).
    pub version: u64,
    /// When the change was made.
    pub at: Timestamp,
    /// Who made it (none for system changes).
    pub actor: Option<UserId>,
    /// The record's owner after the change (before it, for a purge), if the kind has owners.
    pub owner: Option<UserId>,
}

/// A [`Change`] at its place in the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEntry {
    /// Its position.
    pub position: Position,
    /// The change.
    pub change: Change,
}

/// One page of a workspace's feed as a store returns it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeedPage {
    /// Entries after the asked position, in position order, at most the asked number.
    pub entries: Vec<ChangeEntry>,
    /// Entries at or below this position may have been pruned ([`Position::ZERO`]: none).
    /// Read in the same snapshot as `entries`.
    pub horizon: Position,
}

/// The kinds whose changes go to the feed (the record resources; the same names as
/// `/audit` uses).
pub const FEED_KINDS: [EntityKind; 6] = EntityKind::RECORDS;

/// Whether changes of `kind` go to the feed.
pub fn in_feed(kind: EntityKind) -> bool {
    FEED_KINDS.contains(&kind)
}

/// The field holding a kind's owner, if it has one.
fn owner_field(kind: EntityKind) -> Option<&'static str> {
    match kind {
        EntityKind::Task => Some("owner_id"),
        EntityKind::Company | EntityKind::Contact | EntityKind::Deal | EntityKind::Note => {
            Some("sales_id")
        }
        _ => None,
    }
}

/// The feed entries a commit records: one per record of a [`FEED_KINDS`] kind it inserts,
/// updates or deletes (see the [module docs](self)). Who and when come from the commit's
/// audit entries (the entry of the record, else the commit's first); a commit without audit
/// entries is a system change at the record's `updated_at`.
///
/// Backends store exactly this list, in this order, with `seq` = the index in it.
pub fn changes_of(commit: &Commit) -> Vec<Change> {
    let audit_of = |kind: EntityKind, id: Uuid| -> Option<&AuditEntry> {
        commit
            .audit
            .iter()
            .rev()
            .find(|a| a.entity == kind && a.record_id == id)
    };
    let first = commit.audit.first();
    let who = |kind, id| audit_of(kind, id).or(first).and_then(|a| a.actor_id);
    let mut out: Vec<Change> = Vec::new();
    for w in &commit.writes {
        let change = match w {
            Write::Insert(r) | Write::Update { record: r, .. } if in_feed(r.kind()) => Change {
                entity: r.kind(),
                id: r.id(),
                op: if r.is_deleted() {
                    ChangeOp::Delete
                } else {
                    ChangeOp::Upsert
                },
                version: r.version(),
                at: audit_of(r.kind(), r.id())
                    .or(first)
                    .map_or(r.meta().updated_at, |a| a.at),
                actor: who(r.kind(), r.id()),
                owner: r.owner(),
            },
            Write::Delete {
                kind,
                id,
                expected_version,
            } if in_feed(*kind) => {
                let audit = audit_of(*kind, *id);
                Change {
                    entity: *kind,
                    id: *id,
                    op: ChangeOp::Delete,
                    version: expected_version.saturating_add(1),
                    at: audit.or(first).map_or(Timestamp::EPOCH, |a| a.at),
                    actor: who(*kind, *id),
                    owner: audit.and_then(|a| purged_owner(*kind, a)),
                }
            }
            _ => continue,
        };
        match out
            .iter_mut()
            .find(|c| c.entity == change.entity && c.id == change.id)
        {
            Some(slot) => *slot = change,
            None => out.push(change),
        }
    }
    out
}

/// The owner a purged record had, from its purge's audit entry (the before-values).
fn purged_owner(kind: EntityKind, audit: &AuditEntry) -> Option<UserId> {
    let field = owner_field(kind)?;
    let change = audit.changes.iter().find(|c| c.field == field)?;
    let id = change.before.as_str()?.parse::<Uuid>().ok()?;
    Some(UserId::from_uuid(id))
}

/// A reader's place in one workspace's feed, as clients hold it: an opaque string naming
/// the workspace and a [`Position`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeCursor {
    /// The workspace the cursor belongs to.
    pub workspace_id: WorkspaceId,
    /// The position of the last entry read.
    pub position: Position,
}

const CURSOR_FORMAT: u8 = 1;
const CURSOR_LEN: usize = 1 + 16 + 8 + 4;

impl ChangeCursor {
    /// The opaque string form (URL-safe base64, 39 chars).
    pub fn encode(&self) -> String {
        use base64::Engine;
        let mut bytes = Vec::with_capacity(CURSOR_LEN);
        bytes.push(CURSOR_FORMAT);
        bytes.extend_from_slice(self.workspace_id.uuid().as_bytes());
        bytes.extend_from_slice(&self.position.tx.to_be_bytes());
        bytes.extend_from_slice(&self.position.seq.to_be_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Parses a cursor of `workspace`'s feed.
    ///
    /// # Errors
    /// `InvalidCursor` naming the `since` parameter when the string is not a cursor, or is a
    /// cursor of another workspace.
    pub fn decode(s: &str, workspace: WorkspaceId) -> Result<ChangeCursor> {
        use base64::Engine;
        let bad = || {
            Error::new(ErrorKind::InvalidCursor).with_fields(vec![FieldError::with_message(
                "since",
                FieldIssue::InvalidFormat,
                "The cursor is malformed or belongs to another workspace.",
            )])
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.as_bytes())
            .map_err(|_| bad())?;
        if bytes.len() != CURSOR_LEN || bytes[0] != CURSOR_FORMAT {
            return Err(bad());
        }
        let ws = Uuid::from_slice(&bytes[1..17]).map_err(|_| bad())?;
        if ws != workspace.uuid() {
            return Err(bad());
        }
        let tx = u64::from_be_bytes(bytes[17..25].try_into().map_err(|_| bad())?);
        let seq = u32::from_be_bytes(bytes[25..29].try_into().map_err(|_| bad())?);
        Ok(ChangeCursor {
            workspace_id: workspace,
            position: Position { tx, seq },
        })
    }
}

/// Checks a store's page against the reader's position: a reader that is behind the
/// horizon may have missed pruned deletions.
///
/// # Errors
/// `CursorExpired` when `after` is a real position (not [`Position::ZERO`]) below the
/// page's horizon.
pub fn check_horizon(after: Position, page: &FeedPage) -> Result<()> {
    if after != Position::ZERO && after < page.horizon {
        return Err(Error::new(ErrorKind::CursorExpired).with_fields(vec![
            FieldError::with_message(
                "since",
                FieldIssue::OutOfRange,
                "The cursor is older than the feed keeps; resync from the beginning.",
            ),
        ]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_stay_in_their_workspace() {
        let ws = WorkspaceId::generate();
        let c = ChangeCursor {
            workspace_id: ws,
            position: Position {
                tx: 1 << 40,
                seq: 7,
            },
        };
        let s = c.encode();
        assert_eq!(ChangeCursor::decode(&s, ws).unwrap(), c);
        let other = ChangeCursor::decode(&s, WorkspaceId::generate()).unwrap_err();
        assert_eq!(other.kind(), ErrorKind::InvalidCursor);
        assert_eq!(other.fields()[0].field, "since");
        for bad in ["", "x", "!!!!", &s[1..]] {
            assert_eq!(
                ChangeCursor::decode(bad, ws).unwrap_err().kind(),
                ErrorKind::InvalidCursor
            );
        }
    }

    #[test]
    fn positions_order_by_commit_then_entry() {
        let p = |tx, seq| Position { tx, seq };
        assert!(p(1, 9) < p(2, 0));
        assert!(p(2, 0) < p(2, 1));
        assert!(Position::ZERO < p(0, 1));
    }
}
