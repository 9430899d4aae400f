//! The access log on redb, stored in blocks: one row per batch of entries, not one per entry.
//!
//! The access log takes an entry per record read, so its writes are the store's most frequent
//! ones. Stored one row per entry, each entry cost three B-tree inserts (the entry and its two
//! index keys), about two thirds of the access log's share of a `GET` (see `BENCHMARKS.md`,
//! "Access log"). Stored as blocks, a flush of a few thousand entries costs one insert per
//! block of up to [`BLOCK_ENTRIES`] entries plus one index key per distinct record and per
//! distinct user of each block.
//!
//! ## Layout
//!
//! | table | key | value |
//! |---|---|---|
//! | `crm_access_blocks` | `ws block-key` | the block: [`BLOCK_V1`], the entry count (u32 LE), then each entry as its length (u32 LE) and its compact form, in id order |
//! | `crm_access_blocks_by_record` | `ws record-id block-key` | `()`: the blocks holding reads of the record |
//! | `crm_access_blocks_by_user` | `ws user-id block-key` | `()`: the blocks holding reads by the user |
//!
//! Entry ids are UUIDv7 of the entry's time ([`crm_core::access_log::id_at`]), so id order is
//! time order. **The blocks of a workspace partition its ids**: a block's key is the largest
//! id it may hold, and it holds exactly the workspace's entries whose ids lie above the
//! previous block's key and at or below its own. So reading newest first is a walk over the
//! blocks in reverse key order and over each block's entries in reverse, like a walk over
//! single entries, and the cursor (`before`) finds its block with one range lookup.
//!
//! A flush's entries are normally newer than everything stored: they become new blocks,
//! keyed by their largest id. An entry that is not (a request that took its id before the
//! previous flush and queued it after, or a clock set back) belongs to an existing block,
//! which is rewritten with it. Erasure, redaction and pruning rewrite the blocks they touch
//! the same way; a block left empty is removed (its range joins the next block's). A rewritten
//! block of more than [`BLOCK_ENTRIES`] entries is split, the last part keeping the key.
//!
//! Files of format 3 and before kept one row per entry (`crm_access`,
//! `crm_access_by_record`, `crm_access_by_user`); [`upgrade_legacy`] moves them into blocks
//! when such a file is opened.

use std::ops::Bound;

use crm_core::access_log::{AccessEntry, AccessLogQuery, id_floor};
use crm_core::id::{UserId, WorkspaceId};
use crm_core::storage::kv;
use crm_core::{EntityKind, Timestamp};
use redb::{ReadTransaction, ReadableTable, Table, TableDefinition, WriteTransaction};
use uuid::Uuid;

use crate::error::{StoreError, StoreResult};

/// `[workspace][block key] -> block`.
pub const ACCESS_BLOCKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("crm_access_blocks");
/// `[workspace][record id][block key] -> ()`: the blocks holding reads of one record.
pub const ACCESS_BLOCKS_BY_RECORD: TableDefinition<&[u8], ()> =
    TableDefinition::new("crm_access_blocks_by_record");
/// `[workspace][user id][block key] -> ()`: the blocks holding one user's reads.
pub const ACCESS_BLOCKS_BY_USER: TableDefinition<&[u8], ()> =
    TableDefinition::new("crm_access_blocks_by_user");

/// Format 3 and before: `[workspace][entry id] -> entry` (compact form or JSON).
const LEGACY_ACCESS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("crm_access");
/// Format 3 and before: `[workspace][record id][entry id] -> ()`.
const LEGACY_ACCESS_BY_RECORD: TableDefinition<&[u8], ()> =
    TableDefinition::new("crm_access_by_record");
/// Format 3 and before: `[workspace][user id][entry id] -> ()`.
const LEGACY_ACCESS_BY_USER: TableDefinition<&[u8], ()> =
    TableDefinition::new("crm_access_by_user");

/// The most entries a block holds. A flush writes `ceil(n / BLOCK_ENTRIES)` blocks; a read
/// through an index decodes whole blocks (about 60 KiB at most), so reads of one record's or
/// one user's entries among many others' cost more than with one row per entry. The access
/// log is written on every read and read by an administrator now and then.
pub const BLOCK_ENTRIES: usize = 512;

/// The first byte of a block.
pub const BLOCK_V1: u8 = 1;

/// The first byte of an access entry in the compact form; JSON, the form of files written
/// before it, starts with `{`.
const ACCESS_V1: u8 = 1;

/// Creates the tables (at open, so that reads find them).
pub(crate) fn create_tables(txn: &WriteTransaction) -> StoreResult<()> {
    txn.open_table(ACCESS_BLOCKS)?;
    txn.open_table(ACCESS_BLOCKS_BY_RECORD)?;
    txn.open_table(ACCESS_BLOCKS_BY_USER)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Entries and blocks as bytes
// ---------------------------------------------------------------------------------------

/// Appends `e`'s compact form to `out`: fields in declaration order — the tag
/// [`ACCESS_V1`], `id`, `workspace_id` (16 bytes each), `at` (microseconds, i64 little
/// endian), `user_id`, `record_id` (16 bytes each), the entity's [`EntityKind::tag`], the
/// route (u16 little-endian length, UTF-8), then the address (0, or 1 and a u8 length and
/// UTF-8). Encoding is a few copies where JSON took several thousand instructions an entry.
fn encode_entry_into(e: &AccessEntry, out: &mut Vec<u8>) {
    let route = &e.route.as_bytes()[..e.route.len().min(usize::from(u16::MAX))];
    let address = e
        .address
        .as_deref()
        .map(|a| &a.as_bytes()[..a.len().min(255)]);
    out.reserve(92 + route.len() + address.map_or(0, <[u8]>::len));
    out.push(ACCESS_V1);
    out.extend_from_slice(e.id.as_bytes());
    out.extend_from_slice(e.workspace_id.as_bytes());
    out.extend_from_slice(&e.at.as_micros().to_le_bytes());
    out.extend_from_slice(e.user_id.as_bytes());
    out.extend_from_slice(e.record_id.as_bytes());
    out.push(e.entity.tag());
    // Lengths fit: both were cut to their maximum above.
    out.extend_from_slice(&(route.len() as u16).to_le_bytes());
    out.extend_from_slice(route);
    match address {
        None => out.push(0),
        Some(a) => {
            out.push(1);
            out.push(a.len() as u8);
            out.extend_from_slice(a);
        }
    }
}

/// Appends `e` to a block's bytes: its length, then its compact form.
fn frame_entry_into(e: &AccessEntry, out: &mut Vec<u8>) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    encode_entry_into(e, out);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// An entry of its stored bytes: the compact form, or JSON (files written before it).
fn decode_entry(bytes: &[u8]) -> StoreResult<AccessEntry> {
    if bytes.first() != Some(&ACCESS_V1) {
        return serde_json::from_slice(bytes).map_err(|e| StoreError::decode("access entry", e));
    }
    decode_compact(&bytes[1..]).ok_or_else(|| malformed("malformed compact access entry"))
}

fn malformed(what: &'static str) -> StoreError {
    StoreError::decode(
        "access entry",
        <serde_json::Error as serde::de::Error>::custom(what),
    )
}

/// The fields of a compact access entry after its tag; `None` when they are malformed.
fn decode_compact(mut b: &[u8]) -> Option<AccessEntry> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = b.split_at_checked(n)?;
        *b = rest;
        Some(head)
    }
    fn uuid(b: &mut &[u8]) -> Option<Uuid> {
        Uuid::from_slice(take(b, 16)?).ok()
    }
    fn text(b: &mut &[u8], n: usize) -> Option<String> {
        String::from_utf8(take(b, n)?.to_vec()).ok()
    }
    let id = uuid(&mut b)?;
    let workspace_id = WorkspaceId::from_uuid(uuid(&mut b)?);
    let at = Timestamp::from_micros(i64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?));
    let user_id = UserId::from_uuid(uuid(&mut b)?);
    let record_id = uuid(&mut b)?;
    let tag = take(&mut b, 1)?[0];
    let entity = EntityKind::ALL.into_iter().find(|k| k.tag() == tag)?;
    let route_len = u16::from_le_bytes(take(&mut b, 2)?.try_into().ok()?);
    let route = text(&mut b, usize::from(route_len))?;
    let address = match take(&mut b, 1)?[0] {
        0 => None,
        1 => {
            let n = take(&mut b, 1)?[0];
            Some(text(&mut b, usize::from(n))?)
        }
        _ => return None,
    };
    b.is_empty().then_some(AccessEntry {
        id,
        workspace_id,
        at,
        user_id,
        entity,
        record_id,
        route,
        address,
    })
}

/// A block's header: [`BLOCK_V1`] and the entry count.
fn block_header(count: usize) -> [u8; 5] {
    let mut h = [BLOCK_V1, 0, 0, 0, 0];
    h[1..].copy_from_slice(&(count as u32).to_le_bytes());
    h
}

/// The bytes of a block of `entries` (in id order).
fn encode_block(entries: &[AccessEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + entries.len() * 128);
    out.extend_from_slice(&block_header(entries.len()));
    for e in entries {
        frame_entry_into(e, &mut out);
    }
    out
}

/// The entries of a block, in id order.
fn decode_block(bytes: &[u8]) -> StoreResult<Vec<AccessEntry>> {
    let (Some(&BLOCK_V1), Some(count)) = (bytes.first(), bytes.get(1..5)) else {
        return Err(malformed("malformed access block header"));
    };
    let count = u32::from_le_bytes(count.try_into().expect("four bytes")) as usize;
    let mut rest = &bytes[5..];
    let mut out = Vec::with_capacity(count.min(BLOCK_ENTRIES * 2));
    for _ in 0..count {
        let len = rest
            .get(..4)
            .map(|l| u32::from_le_bytes(l.try_into().expect("four bytes")) as usize)
            .ok_or_else(|| malformed("truncated access block"))?;
        let entry = rest
            .get(4..4 + len)
            .ok_or_else(|| malformed("truncated access block"))?;
        out.push(decode_entry(entry)?);
        rest = &rest[4 + len..];
    }
    if !rest.is_empty() {
        return Err(malformed("trailing bytes in access block"));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------

/// `[workspace][block key]`.
fn block_key(ws: WorkspaceId, key: Uuid) -> [u8; 32] {
    let mut k = [0; 32];
    k[..16].copy_from_slice(ws.as_bytes());
    k[16..].copy_from_slice(key.as_bytes());
    k
}

/// `[workspace][subject][block key]`.
fn index_key(ws: WorkspaceId, subject: &Uuid, key: Uuid) -> [u8; 48] {
    let mut k = [0; 48];
    k[..16].copy_from_slice(ws.as_bytes());
    k[16..32].copy_from_slice(subject.as_bytes());
    k[32..].copy_from_slice(key.as_bytes());
    k
}

/// The last 16 bytes of a key as an id.
fn trailing(key: &[u8], table: &'static str) -> StoreResult<Uuid> {
    crate::schema::trailing_id(key).ok_or(StoreError::DanglingEntry { table })
}

/// The range of keys that start with `prefix`, up to `upper` when given (inclusive).
fn under(prefix: &[u8], upper: Option<&[u8]>) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let hi = match upper {
        Some(u) => Bound::Included(u.to_vec()),
        None => kv::prefix_successor(prefix).map_or(Bound::Unbounded, Bound::Excluded),
    };
    (Bound::Included(prefix.to_vec()), hi)
}

/// `range` as the borrowed bounds redb takes.
fn borrowed(range: &(Bound<Vec<u8>>, Bound<Vec<u8>>)) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (
        range.0.as_ref().map(Vec::as_slice),
        range.1.as_ref().map(Vec::as_slice),
    )
}

/// The key of the block that holds (or would hold) `id`: the first block key at or above it.
/// `None` when `id` is above every block (it would start a new one).
fn block_of(
    blocks: &impl ReadableTable<&'static [u8], &'static [u8]>,
    ws: WorkspaceId,
    id: Uuid,
) -> StoreResult<Option<Uuid>> {
    let from = block_key(ws, id);
    let range = under(ws.as_bytes(), None);
    let range = (Bound::Included(from.as_slice()), borrowed(&range).1);
    match blocks.range::<&[u8]>(range)?.next() {
        Some(item) => Ok(Some(trailing(item?.0.value(), "access_blocks")?)),
        None => Ok(None),
    }
}

/// The distinct record ids and user ids of `entries`.
fn subjects(entries: &[AccessEntry]) -> (Vec<Uuid>, Vec<Uuid>) {
    distinct(entries.iter().map(|e| (e.record_id, e.user_id.uuid())))
}

/// The distinct first and second ids of `pairs` (records and users), each sorted.
fn distinct(pairs: impl Iterator<Item = (Uuid, Uuid)>) -> (Vec<Uuid>, Vec<Uuid>) {
    let (mut records, mut users): (Vec<Uuid>, Vec<Uuid>) = pairs.unzip();
    for v in [&mut records, &mut users] {
        v.sort_unstable();
        v.dedup();
    }
    (records, users)
}

// ---------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------

/// The three tables, open for writing.
struct Tables<'t> {
    blocks: Table<'t, &'static [u8], &'static [u8]>,
    by_record: Table<'t, &'static [u8], ()>,
    by_user: Table<'t, &'static [u8], ()>,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction) -> StoreResult<Self> {
        Ok(Tables {
            blocks: txn.open_table(ACCESS_BLOCKS)?,
            by_record: txn.open_table(ACCESS_BLOCKS_BY_RECORD)?,
            by_user: txn.open_table(ACCESS_BLOCKS_BY_USER)?,
        })
    }

    /// Stores a block of already framed entries under `key`, with its index keys.
    fn put_raw(
        &mut self,
        ws: WorkspaceId,
        key: Uuid,
        value: &[u8],
        records: &[Uuid],
        users: &[Uuid],
    ) -> StoreResult<()> {
        self.blocks.insert(block_key(ws, key).as_slice(), value)?;
        for r in records {
            self.by_record
                .insert(index_key(ws, r, key).as_slice(), ())?;
        }
        for u in users {
            self.by_user.insert(index_key(ws, u, key).as_slice(), ())?;
        }
        Ok(())
    }

    /// Stores `entries` (in id order, all at or below `key` and above the previous block's
    /// key) as the block `key`, split into blocks of at most [`BLOCK_ENTRIES`] (the last part
    /// keeps `key`). Nothing is stored for no entries.
    fn put(&mut self, ws: WorkspaceId, key: Uuid, entries: &[AccessEntry]) -> StoreResult<()> {
        let parts = entries.chunks(BLOCK_ENTRIES);
        let n = parts.len();
        for (i, part) in parts.enumerate() {
            let part_key = if i + 1 == n {
                key
            } else {
                part[part.len() - 1].id
            };
            let (records, users) = subjects(part);
            self.put_raw(ws, part_key, &encode_block(part), &records, &users)?;
        }
        Ok(())
    }

    /// The entries of the block `key`.
    fn load(&self, ws: WorkspaceId, key: Uuid) -> StoreResult<Vec<AccessEntry>> {
        let value =
            self.blocks
                .get(block_key(ws, key).as_slice())?
                .ok_or(StoreError::DanglingEntry {
                    table: "access_blocks",
                })?;
        decode_block(value.value())
    }

    /// Replaces the block `key`, which held `old`, by `new` (in id order, within the block's
    /// range): the old index keys go, the new ones come.
    fn rewrite(
        &mut self,
        ws: WorkspaceId,
        key: Uuid,
        old: &[AccessEntry],
        new: &[AccessEntry],
    ) -> StoreResult<()> {
        let (records, users) = subjects(old);
        self.blocks.remove(block_key(ws, key).as_slice())?;
        for r in &records {
            self.by_record.remove(index_key(ws, r, key).as_slice())?;
        }
        for u in &users {
            self.by_user.remove(index_key(ws, u, key).as_slice())?;
        }
        self.put(ws, key, new)
    }

    /// The largest block key of `ws`.
    fn last_key(&self, ws: WorkspaceId) -> StoreResult<Option<Uuid>> {
        let range = under(ws.as_bytes(), None);
        match self.blocks.range::<&[u8]>(borrowed(&range))?.next_back() {
            Some(item) => Ok(Some(trailing(item?.0.value(), "access_blocks")?)),
            None => Ok(None),
        }
    }

    /// Adds `late` (in id order, each at or below the workspace's last block key) to the
    /// blocks whose ranges hold them; an entry whose id is stored already replaces it.
    fn merge(&mut self, ws: WorkspaceId, late: &[AccessEntry]) -> StoreResult<()> {
        let mut rest = late;
        while let Some(first) = rest.first() {
            let key = block_of(&self.blocks, ws, first.id)?.ok_or(StoreError::DanglingEntry {
                table: "access_blocks",
            })?;
            let n = rest.partition_point(|e| e.id <= key);
            let (here, later) = rest.split_at(n);
            let old = self.load(ws, key)?;
            // The new entries first, so that a stable sort and `dedup` keep them.
            let mut merged: Vec<AccessEntry> = here.iter().chain(&old).cloned().collect();
            merged.sort_by_key(|e| e.id);
            merged.dedup_by_key(|e| e.id);
            self.rewrite(ws, key, &old, &merged)?;
            rest = later;
        }
        Ok(())
    }
}

/// One workspace's part of a batch, encoded.
struct EncodedGroup {
    workspace: WorkspaceId,
    /// Each entry's id, record id and user id, in id order (one entry per id): what the
    /// writer needs besides the bytes.
    keys: Vec<(Uuid, Uuid, Uuid)>,
    /// The entries framed as in a block, one after the other.
    framed: Vec<u8>,
    /// Where each entry's frame starts in `framed`.
    starts: Vec<usize>,
}

impl EncodedGroup {
    /// The bytes of the entries `from..to`, framed as in a block.
    fn frames(&self, from: usize, to: usize) -> &[u8] {
        let end = self.starts.get(to).copied().unwrap_or(self.framed.len());
        &self.framed[self.starts[from]..end]
    }

    /// The entries `..to`, decoded again (for the rare entries merged into stored blocks).
    fn decoded(&self, to: usize) -> StoreResult<Vec<AccessEntry>> {
        (0..to)
            .map(|i| decode_entry(&self.frames(i, i + 1)[4..]))
            .collect()
    }
}

/// A batch of access entries prepared for the writer on the caller's thread: grouped by
/// workspace, sorted by id and framed as they go into a block, so that the writer, in the
/// common case, copies the bytes into one value per block.
pub(crate) struct EncodedAccess {
    groups: Vec<EncodedGroup>,
}

impl EncodedAccess {
    /// Prepares `entries` (of any workspaces, in any order; of two with the same id the later
    /// one is kept).
    pub(crate) fn new(entries: &[AccessEntry]) -> Self {
        let mut sorted: Vec<&AccessEntry> = entries.iter().collect();
        // Stable: of equal keys the later entry comes last, and is the one kept below.
        sorted.sort_by_key(|e| (e.workspace_id, e.id));
        let mut groups: Vec<EncodedGroup> = Vec::new();
        for (i, e) in sorted.iter().enumerate() {
            if sorted
                .get(i + 1)
                .is_some_and(|n| (n.workspace_id, n.id) == (e.workspace_id, e.id))
            {
                continue;
            }
            if groups.last().is_none_or(|g| g.workspace != e.workspace_id) {
                groups.push(EncodedGroup {
                    workspace: e.workspace_id,
                    keys: Vec::new(),
                    framed: Vec::with_capacity(entries.len() * 132),
                    starts: Vec::new(),
                });
            }
            let g = groups.last_mut().expect("pushed above");
            g.starts.push(g.framed.len());
            frame_entry_into(e, &mut g.framed);
            g.keys.push((e.id, e.record_id, e.user_id.uuid()));
        }
        EncodedAccess { groups }
    }

    /// How many entries the batch holds.
    fn len(&self) -> usize {
        self.groups.iter().map(|g| g.keys.len()).sum()
    }
}

/// [`crm_core::Storage::append_access_log`]: the entries of [`EncodedAccess::new`]. Entries
/// newer than a workspace's last block become new blocks, straight from their framed bytes;
/// older ones are merged into the blocks that hold their ids.
pub(crate) fn append_access(txn: &WriteTransaction, batch: &EncodedAccess) -> StoreResult<usize> {
    let mut t = Tables::open(txn)?;
    let mut value = Vec::new();
    for g in &batch.groups {
        let ws = g.workspace;
        let late = match t.last_key(ws)? {
            Some(last) => g.keys.partition_point(|(id, _, _)| *id <= last),
            None => 0,
        };
        if late > 0 {
            t.merge(ws, &g.decoded(late)?)?;
        }
        let mut from = late;
        while from < g.keys.len() {
            let to = (from + BLOCK_ENTRIES).min(g.keys.len());
            let part = &g.keys[from..to];
            value.clear();
            value.extend_from_slice(&block_header(part.len()));
            value.extend_from_slice(g.frames(from, to));
            let (records, users) = distinct(part.iter().map(|&(_, r, u)| (r, u)));
            t.put_raw(ws, part[part.len() - 1].0, &value, &records, &users)?;
            from = to;
        }
    }
    Ok(batch.len())
}

/// [`crm_core::Storage::erase_access_log_for`]: removes every read of `record`.
pub(crate) fn erase_access_for(
    txn: &WriteTransaction,
    ws: WorkspaceId,
    record: Uuid,
) -> StoreResult<usize> {
    edit_blocks_of(txn, ws, Subject::Record(record), |entries| {
        let before = entries.len();
        entries.retain(|e| e.record_id != record);
        before - entries.len()
    })
}

/// [`crm_core::Storage::redact_access_log_by`]: drops the address of every read by `user`.
pub(crate) fn redact_access_by(
    txn: &WriteTransaction,
    ws: WorkspaceId,
    user: UserId,
) -> StoreResult<usize> {
    edit_blocks_of(txn, ws, Subject::User(user), |entries| {
        entries
            .iter_mut()
            .filter(|e| e.user_id == user)
            .map(|e| usize::from(e.address.take().is_some()))
            .sum()
    })
}

/// Whose blocks [`edit_blocks_of`] edits.
enum Subject {
    Record(Uuid),
    User(UserId),
}

/// Applies `edit` to the entries of each block that holds entries of `subject`, rewriting
/// the blocks it changes (`edit` returns how many entries it changed or removed); returns the
/// sum.
fn edit_blocks_of(
    txn: &WriteTransaction,
    ws: WorkspaceId,
    subject: Subject,
    mut edit: impl FnMut(&mut Vec<AccessEntry>) -> usize,
) -> StoreResult<usize> {
    let mut t = Tables::open(txn)?;
    let keys = match subject {
        Subject::Record(r) => subject_blocks(&t.by_record, ws, &r)?,
        Subject::User(u) => subject_blocks(&t.by_user, ws, &u.uuid())?,
    };
    let mut changed = 0;
    for key in keys {
        let old = t.load(ws, key)?;
        let mut new = old.clone();
        let n = edit(&mut new);
        if n > 0 {
            t.rewrite(ws, key, &old, &new)?;
            changed += n;
        }
    }
    Ok(changed)
}

/// [`crm_core::Storage::prune_access_log`]: removes the workspace's oldest entries made
/// before `before`, at most `limit`: a walk from its first block that stops at the first
/// entry kept.
pub(crate) fn prune_access(
    txn: &WriteTransaction,
    ws: WorkspaceId,
    before: Timestamp,
    limit: usize,
) -> StoreResult<usize> {
    let mut t = Tables::open(txn)?;
    let mut doomed = Vec::new();
    let mut left = limit;
    {
        let range = under(ws.as_bytes(), None);
        for item in t.blocks.range::<&[u8]>(borrowed(&range))? {
            if left == 0 {
                break;
            }
            let (k, v) = item?;
            let entries = decode_block(v.value())?;
            let n = entries
                .iter()
                .take(left)
                .take_while(|e| e.at < before)
                .count();
            let stop = n < entries.len();
            left -= n;
            if n > 0 {
                doomed.push((trailing(k.value(), "access_blocks")?, entries, n));
            }
            if stop {
                break;
            }
        }
    }
    let mut removed = 0;
    for (key, entries, n) in doomed {
        t.rewrite(ws, key, &entries, &entries[n..])?;
        removed += n;
    }
    Ok(removed)
}

/// The keys of the blocks indexed under `subject` in `index`, oldest first.
fn subject_blocks(
    index: &impl ReadableTable<&'static [u8], ()>,
    ws: WorkspaceId,
    subject: &Uuid,
) -> StoreResult<Vec<Uuid>> {
    let prefix = [ws.as_bytes().as_slice(), subject.as_bytes()].concat();
    let range = under(&prefix, None);
    index
        .range::<&[u8]>(borrowed(&range))?
        .map(|item| trailing(item?.0.value(), "access_blocks_index"))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

/// How far an entry's id may stand from its time, in microseconds, for the bounds a read
/// derives from `since` and `until` (the filters themselves are exact). Ids of this version
/// are made from the entry's time ([`crm_core::access_log::id_at`]); earlier versions made
/// them from the system clock as the entry was made, within this of its time.
const ID_SLACK_MICROS: i64 = 1_000_000;

/// The smallest id of a moment `slack` microseconds from `at`.
fn id_floor_near(at: Timestamp, slack: i64) -> Uuid {
    id_floor(Timestamp::from_micros(at.as_micros().saturating_add(slack)))
}

/// [`crm_core::Storage::access_log`]: newest first. Walks the workspace's blocks (or, for
/// one record or one user, the blocks its index names) in reverse key order from the block
/// that holds the cursor, and stops at `limit` entries or at the first block older than
/// `since`.
pub(crate) fn access_log(
    txn: &ReadTransaction,
    ws: WorkspaceId,
    query: &AccessLogQuery,
) -> StoreResult<Vec<AccessEntry>> {
    let mut out = Vec::new();
    if query.limit == 0 {
        return Ok(out);
    }
    let blocks = txn.open_table(ACCESS_BLOCKS)?;
    // Entries before `until` have ids below the floor of a moment after it (ids are made
    // from their entries' times, see `id_at`; [`ID_SLACK_MICROS`] covers ids of earlier
    // versions, made from the system clock): the cursor is the lower of the two.
    let cursor = match (
        query.before,
        query.until.map(|u| id_floor_near(u, ID_SLACK_MICROS)),
    ) {
        (Some(b), Some(u)) => Some(b.min(u)),
        (b, u) => b.or(u),
    };
    // The newest block that may hold an entry below the cursor: the one holding the cursor.
    let top = match cursor {
        Some(c) => block_of(&blocks, ws, c)?,
        None => None,
    };
    let oldest = query.since.map(|s| id_floor_near(s, -ID_SLACK_MICROS));
    let subject = query
        .record_id
        .map(|r| (ACCESS_BLOCKS_BY_RECORD, r))
        .or(query.user_id.map(|u| (ACCESS_BLOCKS_BY_USER, u.uuid())));
    let index = subject
        .map(|(index, _)| txn.open_table(index))
        .transpose()?;
    let keys: Box<dyn Iterator<Item = StoreResult<Uuid>>> = match (subject, &index) {
        (Some((_, subject)), Some(index)) => {
            let prefix = [ws.as_bytes().as_slice(), subject.as_bytes()].concat();
            let upper = top.map(|t| index_key(ws, &subject, t));
            let range = under(&prefix, upper.as_ref().map(<[u8; 48]>::as_slice));
            Box::new(
                index
                    .range::<&[u8]>(borrowed(&range))?
                    .rev()
                    .map(|item| trailing(item?.0.value(), "access_blocks_index")),
            )
        }
        _ => {
            let upper = top.map(|t| block_key(ws, t));
            let range = under(ws.as_bytes(), upper.as_ref().map(<[u8; 32]>::as_slice));
            Box::new(
                blocks
                    .range::<&[u8]>(borrowed(&range))?
                    .rev()
                    .map(|item| trailing(item?.0.value(), "access_blocks")),
            )
        }
    };
    for key in keys {
        let key = key?;
        // Every entry of this block and of older ones was made before `since`.
        if oldest.is_some_and(|o| key < o) {
            break;
        }
        let value =
            blocks
                .get(block_key(ws, key).as_slice())?
                .ok_or(StoreError::DanglingEntry {
                    table: "access_blocks",
                })?;
        for e in decode_block(value.value())?.into_iter().rev() {
            if query.admits(&e) {
                out.push(e);
                if out.len() >= query.limit {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Upgrade
// ---------------------------------------------------------------------------------------

/// Moves the access log of a file of format 3 or before (one row per entry) into blocks and
/// removes the old tables, in the upgrade's write transaction.
pub(crate) fn upgrade_legacy(txn: &WriteTransaction) -> StoreResult<()> {
    {
        let legacy = txn.open_table(LEGACY_ACCESS)?;
        let mut t = Tables::open(txn)?;
        let mut part: Vec<AccessEntry> = Vec::with_capacity(BLOCK_ENTRIES);
        // Rows are in `[workspace][id]` order: each workspace's entries come in id order.
        for item in legacy.iter()? {
            let (_, v) = item?;
            let e = decode_entry(v.value())?;
            if part.len() == BLOCK_ENTRIES
                || part
                    .last()
                    .is_some_and(|p| p.workspace_id != e.workspace_id)
            {
                flush_part(&mut t, &mut part)?;
            }
            part.push(e);
        }
        flush_part(&mut t, &mut part)?;
    }
    txn.delete_table(LEGACY_ACCESS)?;
    txn.delete_table(LEGACY_ACCESS_BY_RECORD)?;
    txn.delete_table(LEGACY_ACCESS_BY_USER)?;
    Ok(())
}

/// Stores `part` (one workspace's entries in id order, newer than its blocks) as a new block.
fn flush_part(t: &mut Tables<'_>, part: &mut Vec<AccessEntry>) -> StoreResult<()> {
    if let Some(last) = part.last() {
        t.put(last.workspace_id, last.id, part)?;
    }
    part.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(address: Option<&str>) -> AccessEntry {
        let at = Timestamp::from_micros(1_800_000_000_123_456);
        AccessEntry {
            id: crm_core::access_log::id_at(at),
            workspace_id: WorkspaceId::from_uuid(Uuid::now_v7()),
            at,
            user_id: UserId::from_uuid(Uuid::now_v7()),
            entity: EntityKind::Contact,
            record_id: Uuid::now_v7(),
            route: "GET /contacts/{id}".to_owned(),
            address: address.map(str::to_owned),
        }
    }

    fn compact(e: &AccessEntry) -> Vec<u8> {
        let mut out = Vec::new();
        encode_entry_into(e, &mut out);
        out
    }

    #[test]
    fn access_entries_round_trip_in_the_compact_form() {
        for address in [None, Some("203.0.113.0"), Some("2001:db8::")] {
            let e = entry(address);
            let bytes = compact(&e);
            assert_eq!(bytes[0], ACCESS_V1);
            assert_eq!(decode_entry(&bytes).unwrap(), e);
        }
        for kind in EntityKind::ALL {
            let e = AccessEntry {
                entity: kind,
                ..entry(None)
            };
            assert_eq!(decode_entry(&compact(&e)).unwrap(), e);
        }
    }

    #[test]
    fn access_entries_stored_as_json_by_earlier_versions_still_decode() {
        let e = entry(Some("198.51.100.0"));
        let json = serde_json::to_vec(&e).unwrap();
        assert_eq!(decode_entry(&json).unwrap(), e);
    }

    #[test]
    fn a_malformed_compact_entry_is_a_decode_error() {
        let bytes = compact(&entry(Some("198.51.100.0")));
        for cut in [1, 20, bytes.len() - 1] {
            let err = decode_entry(&bytes[..cut]).unwrap_err();
            assert!(matches!(err, StoreError::Decode { .. }), "{err:?}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode_entry(&extra).is_err());
        let mut bad_kind = bytes;
        bad_kind[1 + 16 + 16 + 8 + 16 + 16] = 250;
        assert!(decode_entry(&bad_kind).is_err());
    }

    #[test]
    fn blocks_round_trip_and_a_damaged_block_is_a_decode_error() {
        let entries = vec![entry(None), entry(Some("203.0.113.0")), entry(None)];
        let bytes = encode_block(&entries);
        assert_eq!(bytes[0], BLOCK_V1);
        assert_eq!(decode_block(&bytes).unwrap(), entries);
        assert_eq!(decode_block(&encode_block(&[])).unwrap(), vec![]);
        for cut in [0, 3, 5, 40, bytes.len() - 1] {
            let err = decode_block(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(err, StoreError::Decode { .. }),
                "cut {cut}: {err:?}"
            );
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode_block(&extra).is_err());
        let mut too_many = bytes;
        too_many[1] = 4;
        assert!(decode_block(&too_many).is_err());
    }

    #[test]
    fn the_writers_framing_is_a_blocks_framing() {
        let mut entries: Vec<AccessEntry> = (0..5).map(|_| entry(None)).collect();
        let ws = entries[0].workspace_id;
        for e in &mut entries {
            e.workspace_id = ws;
        }
        let batch = EncodedAccess::new(&entries);
        let g = &batch.groups[0];
        let mut value = block_header(g.keys.len()).to_vec();
        value.extend_from_slice(&g.framed);
        // `entry` makes ids in order, so `entries` is in id order already.
        assert_eq!(value, encode_block(&entries));
        assert_eq!(g.decoded(g.keys.len()).unwrap(), entries);
    }
}
