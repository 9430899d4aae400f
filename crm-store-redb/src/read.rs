//! Read paths: single records, lists (index walks and search), unique lookups and the audit
//! log. Plain synchronous functions over a redb read transaction; [`crate::RedbStore`] runs
//! them on Tokio's blocking pool, never on the async executor threads.

use std::collections::HashSet;
use std::ops::Bound;

use crm_core::audit::{AuditEntry, AuditQuery};
use crm_core::id::WorkspaceId;
use crm_core::model::{EntityKind, Record};
use crm_core::query::{DEFAULT_LIMIT, Direction, ListQuery};
use crm_core::storage::kv;
use redb::{ReadTransaction, ReadableTable};
use uuid::Uuid;

use crate::error::{StoreError, StoreResult};
use crate::schema::{self, AUDIT, AUDIT_BY_RECORD, INDEXES, RECORDS, SEARCH, UNIQUE};

/// The bound just past every key starting with `prefix`.
fn upper_of(prefix: &[u8]) -> Bound<Vec<u8>> {
    kv::prefix_successor(prefix).map_or(Bound::Unbounded, Bound::Excluded)
}

fn as_slice(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Decodes a stored record.
pub(crate) fn decode_record(kind: EntityKind, bytes: &[u8]) -> StoreResult<Record> {
    Record::from_json_bytes(kind, bytes).map_err(|e| StoreError::decode(kind.noun(), e))
}

/// Loads one record from the records table (of a read or a write transaction).
pub(crate) fn load_record<T>(
    records: &T,
    kind: EntityKind,
    ws: WorkspaceId,
    id: Uuid,
) -> StoreResult<Option<Record>>
where
    T: ReadableTable<&'static [u8], &'static [u8]>,
{
    let key = schema::record_key(kind, ws, id);
    match records.get(key.as_slice())? {
        Some(v) => decode_record(kind, v.value()).map(Some),
        None => Ok(None),
    }
}

/// The id holding a unique value (of a read or a write transaction).
pub(crate) fn unique_holder<T>(
    unique: &T,
    kind: EntityKind,
    ws: WorkspaceId,
    name: &str,
    value: &str,
) -> StoreResult<Option<Uuid>>
where
    T: ReadableTable<&'static [u8], &'static [u8]>,
{
    let key = schema::unique_key(kind, ws, name, value);
    match unique.get(key.as_slice())? {
        Some(v) => Uuid::from_slice(v.value())
            .map(Some)
            .map_err(|_| StoreError::DanglingEntry { table: "unique" }),
        None => Ok(None),
    }
}

/// [`crm_core::Storage::get`].
pub(crate) fn get(
    txn: &ReadTransaction,
    ws: WorkspaceId,
    kind: EntityKind,
    id: Uuid,
) -> StoreResult<Option<Record>> {
    let records = txn.open_table(RECORDS)?;
    load_record(&records, kind, ws, id)
}

/// [`crm_core::Storage::get_many`].
pub(crate) fn get_many(
    txn: &ReadTransaction,
    ws: WorkspaceId,
    kind: EntityKind,
    ids: &[Uuid],
) -> StoreResult<Vec<Record>> {
    let records = txn.open_table(RECORDS)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(r) = load_record(&records, kind, ws, *id)? {
            out.push(r);
        }
    }
    Ok(out)
}

/// [`crm_core::Storage::find_unique`].
pub(crate) fn find_unique(
    txn: &ReadTransaction,
    ws: WorkspaceId,
    kind: EntityKind,
    key: &str,
    value: &str,
) -> StoreResult<Option<Record>> {
    let unique = txn.open_table(UNIQUE)?;
    let Some(id) = unique_holder(&unique, kind, ws, key, value)? else {
        return Ok(None);
    };
    let records = txn.open_table(RECORDS)?;
    match load_record(&records, kind, ws, id)? {
        Some(r) => Ok(Some(r)),
        None => Err(StoreError::DanglingEntry { table: "unique" }),
    }
}

/// [`crm_core::Storage::list`]; see the [crate docs](crate#lists-and-search) for the
/// strategy.
pub(crate) fn list(
    txn: &ReadTransaction,
    ws: WorkspaceId,
    kind: EntityKind,
    query: &ListQuery,
    search_candidates: usize,
) -> StoreResult<Vec<Record>> {
    if query.limit == 0 {
        return Ok(Vec::new());
    }
    let records = txn.open_table(RECORDS)?;
    let candidates = search_candidates_of(txn, ws, kind, query, search_candidates)?;
    if let Some(ids) = candidates.as_ref().filter(|ids| ids.len() > LOAD_ALL_MAX) {
        // Every possible match is known but there are many: walk the sort index and load
        // only the rows whose id is a candidate (a key comparison for the others), so the
        // cost is the index keys up to the page's end plus one decode per returned row.
        let members: HashSet<Uuid> = ids.iter().copied().collect();
        if let Some(plan) = kv::plan(kind, query) {
            return walk_index(txn, &records, ws, kind, query, &plan, Some(&members));
        }
    }
    if let Some(ids) = candidates {
        // Few possible matches: load them all, filter, sort, cut.
        let mut rows = Vec::new();
        for id in ids {
            let record = load_record(&records, kind, ws, id)?
                .ok_or(StoreError::DanglingEntry { table: "search" })?;
            if kv::admits(&record, query) && kv::after_cursor(&record, query) {
                rows.push(record);
            }
        }
        kv::sort_records(&mut rows, query);
        rows.truncate(query.limit);
        return Ok(rows);
    }
    // No search, or a broad one (matches are dense, so walking the sort index fills a page
    // fast): walk the index the plan picks.
    match kv::plan(kind, query) {
        Some(plan) => walk_index(txn, &records, ws, kind, query, &plan, None),
        None => scan_all(&records, ws, kind, query),
    }
}

/// Below this many candidates, loading them beats scanning the words of further terms.
const FEW_CANDIDATES: usize = 64;

/// Up to this many known candidates are loaded and sorted in memory (each costs a decode);
/// beyond it, the sort index is walked with a membership test (each skipped row costs a key
/// read only).
const LOAD_ALL_MAX: usize = 256;

/// Every record that can match the query's search terms, or `None` if the query has no
/// terms or each of its terms is broad (more than `cap` records have a word it prefixes).
///
/// A match must have a word starting with *each* term, so it is in the candidate set of every
/// narrow term: the sets are intersected, longest term first (usually the most selective),
/// and the scan stops early once few candidates remain. Only word-index keys are read here,
/// no records.
fn search_candidates_of(
    txn: &ReadTransaction,
    ws: WorkspaceId,
    kind: EntityKind,
    query: &ListQuery,
    cap: usize,
) -> StoreResult<Option<Vec<Uuid>>> {
    let Some(search) = &query.search else {
        return Ok(None);
    };
    let mut terms: Vec<&str> = search
        .terms
        .iter()
        .map(String::as_str)
        .filter(|t| !t.is_empty())
        .collect();
    terms.sort_by_key(|t| std::cmp::Reverse(t.len()));
    let table = txn.open_table(SEARCH)?;
    let mut known: Option<Vec<Uuid>> = None;
    for term in terms {
        if known.as_ref().is_some_and(|k| k.len() <= FEW_CANDIDATES) {
            break;
        }
        let Some(ids) = candidates(&table, kind, ws, term, cap)? else {
            continue; // broad term: it does not narrow anything
        };
        known = Some(match known {
            None => ids,
            Some(prev) => {
                let these: HashSet<Uuid> = ids.into_iter().collect();
                prev.into_iter().filter(|id| these.contains(id)).collect()
            }
        });
    }
    Ok(known)
}

/// The distinct ids having a word that starts with `term`, or `None` when there are more
/// than `cap` of them (the query is broad).
fn candidates<T>(
    search: &T,
    kind: EntityKind,
    ws: WorkspaceId,
    term: &str,
    cap: usize,
) -> StoreResult<Option<Vec<Uuid>>>
where
    T: ReadableTable<&'static [u8], ()>,
{
    let lower = schema::search_prefix(kind, ws, term);
    let upper = upper_of(&lower);
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    // A record has at most a few words sharing a prefix; bound the entries read as well.
    let max_entries = cap.saturating_mul(8).max(64);
    for (n, entry) in search
        .range::<&[u8]>((Bound::Included(lower.as_slice()), as_slice(&upper)))?
        .enumerate()
    {
        if n >= max_entries {
            return Ok(None);
        }
        let (key, _) = entry?;
        let id = schema::trailing_id(key.value())
            .ok_or(StoreError::DanglingEntry { table: "search" })?;
        if seen.insert(id) {
            if ids.len() == cap {
                return Ok(None);
            }
            ids.push(id);
        }
    }
    Ok(Some(ids))
}

fn walk_index<T>(
    txn: &ReadTransaction,
    records: &T,
    ws: WorkspaceId,
    kind: EntityKind,
    query: &ListQuery,
    plan: &kv::Plan,
    members: Option<&HashSet<Uuid>>,
) -> StoreResult<Vec<Record>>
where
    T: ReadableTable<&'static [u8], &'static [u8]>,
{
    let indexes = txn.open_table(INDEXES)?;
    let index = schema::index_prefix(kind, ws, plan.index);
    let mut lower_key = index.clone();
    lower_key.extend_from_slice(&plan.prefix);
    let mut lower = Bound::Included(lower_key.clone());
    let mut upper = upper_of(&lower_key);
    if let Some(after) = &plan.after {
        let mut at = index;
        at.extend_from_slice(after);
        match plan.direction {
            Direction::Asc => lower = Bound::Excluded(at),
            Direction::Desc => upper = Bound::Excluded(at),
        }
    }
    let range = indexes.range::<&[u8]>((as_slice(&lower), as_slice(&upper)))?;
    let entries: Box<dyn Iterator<Item = _>> = match plan.direction {
        Direction::Asc => Box::new(range),
        Direction::Desc => Box::new(range.rev()),
    };
    let mut rows = Vec::new();
    for entry in entries {
        let (key, _) = entry?;
        let id = schema::trailing_id(key.value())
            .ok_or(StoreError::DanglingEntry { table: "indexes" })?;
        if members.is_some_and(|m| !m.contains(&id)) {
            continue;
        }
        let record = load_record(records, kind, ws, id)?
            .ok_or(StoreError::DanglingEntry { table: "indexes" })?;
        if kv::admits(&record, query) {
            rows.push(record);
            if rows.len() >= query.limit {
                break;
            }
        }
    }
    Ok(rows)
}

/// Fallback for a query no index serves (the core never sends one: every sortable field is
/// indexed): every record of the kind, filtered and sorted in memory.
fn scan_all<T>(
    records: &T,
    ws: WorkspaceId,
    kind: EntityKind,
    query: &ListQuery,
) -> StoreResult<Vec<Record>>
where
    T: ReadableTable<&'static [u8], &'static [u8]>,
{
    let lower = schema::kind_ws(kind, ws);
    let upper = upper_of(&lower);
    let mut rows = Vec::new();
    for entry in records.range::<&[u8]>((Bound::Included(lower.as_slice()), as_slice(&upper)))? {
        let (_, value) = entry?;
        let record = decode_record(kind, value.value())?;
        if kv::admits(&record, query) && kv::after_cursor(&record, query) {
            rows.push(record);
        }
    }
    kv::sort_records(&mut rows, query);
    rows.truncate(query.limit);
    Ok(rows)
}

fn decode_audit(bytes: &[u8]) -> StoreResult<AuditEntry> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::decode("audit entry", e))
}

/// [`crm_core::Storage::audit`]: newest first, through the per-record index when the query
/// names a record.
pub(crate) fn audit(
    txn: &ReadTransaction,
    ws: WorkspaceId,
    query: &AuditQuery,
) -> StoreResult<Vec<AuditEntry>> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let audit = txn.open_table(AUDIT)?;
    let mut prefix = ws.as_bytes().to_vec();
    if let Some(record_id) = query.record_id {
        prefix.extend_from_slice(record_id.as_bytes());
    }
    let upper = match query.before {
        Some(before) => {
            let mut k = prefix.clone();
            k.extend_from_slice(before.as_bytes());
            Bound::Excluded(k)
        }
        None => upper_of(&prefix),
    };
    let bounds = (Bound::Included(prefix.as_slice()), as_slice(&upper));
    if query.record_id.is_some() {
        let by_record = txn.open_table(AUDIT_BY_RECORD)?;
        for entry in by_record.range::<&[u8]>(bounds)?.rev() {
            let (key, _) = entry?;
            let audit_id = schema::trailing_id(key.value()).ok_or(StoreError::DanglingEntry {
                table: "audit_by_record",
            })?;
            let value = audit
                .get(schema::audit_key(ws, audit_id).as_slice())?
                .ok_or(StoreError::DanglingEntry {
                    table: "audit_by_record",
                })?;
            let e = decode_audit(value.value())?;
            if query.admits(&e) {
                out.push(e);
                if out.len() >= limit {
                    break;
                }
            }
        }
    } else {
        for entry in audit.range::<&[u8]>(bounds)?.rev() {
            let (_, value) = entry?;
            let e = decode_audit(value.value())?;
            if query.admits(&e) {
                out.push(e);
                if out.len() >= limit {
                    break;
                }
            }
        }
    }
    Ok(out)
}
