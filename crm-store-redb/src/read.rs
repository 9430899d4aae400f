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
use crate::schema::{
    self, AUDIT, AUDIT_BY_RECORD, FEED, FEED_HORIZON, INDEXES, RECORDS, SEARCH, UNIQUE,
};

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

/// Decodes a stored feed entry.
pub(crate) fn decode_change(bytes: &[u8]) -> StoreResult<crm_core::feed::Change> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::decode("change", e))
}

/// [`crm_core::Storage::changes`]: one range scan of the workspace's feed after `after`,
/// and its horizon, in one read transaction.
pub(crate) fn changes(
    txn: &ReadTransaction,
    ws: WorkspaceId,
    after: crm_core::feed::Position,
    limit: usize,
) -> StoreResult<crm_core::feed::FeedPage> {
    let feed = txn.open_table(FEED)?;
    let start = schema::feed_key(ws, after);
    let upper = upper_of(ws.as_bytes());
    let mut entries = Vec::with_capacity(limit.min(1024));
    for entry in feed.range::<&[u8]>((Bound::Excluded(start.as_slice()), as_slice(&upper)))? {
        if entries.len() >= limit {
            break;
        }
        let (k, v) = entry?;
        let position =
            schema::position_of(k.value()).ok_or(StoreError::DanglingEntry { table: "feed" })?;
        entries.push(crm_core::feed::ChangeEntry {
            position,
            change: decode_change(v.value())?,
        });
    }
    let horizon = txn
        .open_table(FEED_HORIZON)?
        .get(ws.as_bytes().as_slice())?
        .and_then(|v| schema::position_of(v.value()))
        .unwrap_or_default();
    Ok(crm_core::feed::FeedPage { entries, horizon })
}

/// [`crm_core::Storage::recent_views`]: a reverse scan of the user's list.
pub(crate) fn recent_views(
    txn: &ReadTransaction,
    ws: WorkspaceId,
    user: Uuid,
    kind: EntityKind,
    limit: usize,
) -> StoreResult<Vec<(Uuid, crm_core::Timestamp)>> {
    let by_time = txn.open_table(schema::RECENT_BY_TIME)?;
    let prefix = schema::recent_prefix(ws, user, kind);
    let upper = upper_of(&prefix);
    let mut out = Vec::new();
    for entry in by_time
        .range::<&[u8]>((Bound::Included(prefix.as_slice()), as_slice(&upper)))?
        .rev()
    {
        if out.len() >= limit {
            break;
        }
        let (k, _) = entry?;
        let k = k.value();
        let bad = || StoreError::DanglingEntry { table: "recent" };
        let at = schema::time_of(&k[prefix.len()..prefix.len() + 8]).ok_or_else(bad)?;
        out.push((schema::trailing_id(k).ok_or_else(bad)?, at));
    }
    Ok(out)
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

/// [`crm_core::Storage::workspaces`]: the workspace records' keys are
/// `[workspace tag][id][id]`, so one range over the tag lists them in id order.
pub(crate) fn workspaces(txn: &ReadTransaction, limit: usize) -> StoreResult<Vec<WorkspaceId>> {
    let records = txn.open_table(RECORDS)?;
    let lower = vec![EntityKind::Workspace.tag()];
    let upper = upper_of(&lower);
    let mut out = Vec::new();
    for entry in records.range::<&[u8]>((Bound::Included(lower.as_slice()), as_slice(&upper)))? {
        if out.len() >= limit {
            break;
        }
        let (key, _) = entry?;
        let id = schema::trailing_id(key.value())
            .ok_or(StoreError::DanglingEntry { table: "records" })?;
        out.push(WorkspaceId::from_uuid(id));
    }
    Ok(out)
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

/// Below this many candidates, loading them beats scanning the search keys of further terms.
const FEW_CANDIDATES: usize = 64;

/// Up to this many known candidates are loaded and sorted in memory (each costs a decode);
/// beyond it, the sort index is walked with a membership test (each skipped row costs a key
/// read only).
const LOAD_ALL_MAX: usize = 256;

/// Every record that can match the query's search terms, or `None` if the query has no
/// terms or each of its terms is broad (more than `cap` records match it).
///
/// A match must match *each* term (a word it prefixes or, for a term of
/// [`MIN_SUBSTRING`](crm_core::search::MIN_SUBSTRING)+ chars, a contact point containing it),
/// so it is in the candidate set of every narrow term: the sets are intersected, longest term
/// first (usually the most selective), and the scan stops early once few candidates remain.
/// Only search-index keys are read here, no records.
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

/// The distinct ids of the records `term` matches — having a word that starts with `term`
/// or, if `term` has [`MIN_SUBSTRING`](crm_core::search::MIN_SUBSTRING)+ chars, a contact
/// point containing it (a contact-point suffix starting with it) — or `None` when there are
/// more than `cap` of them (the query is broad).
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
    let mut ranges = vec![schema::search_prefix(kind, ws, term)];
    if crm_core::search::is_substring_term(term) {
        ranges.push(schema::substring_prefix(kind, ws, term));
    }
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    // A record has at most a few words or suffixes sharing a prefix; bound the entries read
    // as well (over both ranges).
    let max_entries = cap.saturating_mul(8).max(64);
    let mut n = 0;
    for lower in ranges {
        let upper = upper_of(&lower);
        for entry in search.range::<&[u8]>((Bound::Included(lower.as_slice()), as_slice(&upper)))? {
            if n >= max_entries {
                return Ok(None);
            }
            n += 1;
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

/// [`crm_core::Storage::dashboard`]: the tally rows under the query's prefixes and the three
/// lists, from the dashboard tables, in this one read transaction (one snapshot).
pub(crate) fn dashboard(
    txn: &ReadTransaction,
    ws: WorkspaceId,
    query: &crm_core::dashboard::DashboardQuery,
) -> StoreResult<crm_core::dashboard::DashboardData> {
    use crm_core::dashboard::{self as dash, Tally};
    let tally = txn.open_table(schema::TALLY)?;
    let index = txn.open_table(schema::DASHBOARD)?;
    let records = txn.open_table(RECORDS)?;
    let mut out = dash::DashboardData::default();
    let ws_len = ws.as_bytes().len();
    for prefix in dash::tally_prefixes(query) {
        let lower = schema::ws_key(ws, &prefix);
        let upper = upper_of(&lower);
        for entry in tally.range::<&[u8]>((Bound::Included(lower.as_slice()), as_slice(&upper)))? {
            let (k, v) = entry?;
            let t =
                Tally::from_bytes(v.value()).ok_or(StoreError::DanglingEntry { table: "tally" })?;
            out.tallies.push((k.value()[ws_len..].to_vec(), t));
        }
    }
    // The prefixes are disjoint but not given in key order.
    out.tallies.sort_by(|a, b| a.0.cmp(&b.0));
    // Ids of the first `n` entries under `prefix`, forwards or backwards.
    let ids = |prefix: &[u8], n: usize, backwards: bool| -> StoreResult<Vec<Uuid>> {
        let lower = schema::ws_key(ws, prefix);
        let upper = upper_of(&lower);
        let range = index.range::<&[u8]>((Bound::Included(lower.as_slice()), as_slice(&upper)))?;
        let mut out = Vec::new();
        let mut take = |key: &[u8]| -> StoreResult<bool> {
            out.push(
                schema::trailing_id(key).ok_or(StoreError::DanglingEntry { table: "dashboard" })?,
            );
            Ok(out.len() < n)
        };
        if n > 0 {
            if backwards {
                for e in range.rev() {
                    if !take(e?.0.value())? {
                        break;
                    }
                }
            } else {
                for e in range {
                    if !take(e?.0.value())? {
                        break;
                    }
                }
            }
        }
        Ok(out)
    };
    let load = |kind: EntityKind, ids: Vec<Uuid>| -> StoreResult<Vec<Record>> {
        ids.into_iter()
            .map(|id| {
                load_record(&records, kind, ws, id)?
                    .ok_or(StoreError::DanglingEntry { table: "dashboard" })
            })
            .collect()
    };
    out.next_tasks = load(
        EntityKind::Task,
        ids(
            &dash::next_tasks_prefix(query.owner),
            query.next_tasks,
            false,
        )?,
    )?;
    out.hot_contacts = load(
        EntityKind::Contact,
        ids(&dash::HOT_PREFIX, query.hot_contacts, true)?,
    )?;
    let audit = txn.open_table(AUDIT)?;
    for audit_id in ids(&dash::ACTIVITY_PREFIX, query.activity, true)? {
        let v = audit
            .get(schema::audit_key(ws, audit_id).as_slice())?
            .ok_or(StoreError::DanglingEntry { table: "dashboard" })?;
        out.activity.push(decode_audit(v.value())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! Contact-point search on every path (narrow, mixed, broad), against the reference store,
    //! also after contact points change and records are deleted.

    use std::collections::HashSet;

    use crm_core::id::WorkspaceId;
    use crm_core::model::{
        Company, EmailEntry, EmailKind, Entity, EntityKind, PhoneEntry, PhoneKind, Record,
    };
    use crm_core::query::{Deleted, ListQuery, SearchQuery, Sort};
    use crm_core::testkit::MemoryStore;
    use crm_core::testkit::setup::{bumped, stored_company, stored_contact, walk};
    use crm_core::{Commit, Storage, Timestamp, Write};

    use crate::{RedbOptions, RedbStore};

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_micros(1_767_600_000_000_000 + secs * 1_000_000)
    }

    fn contact(ws: WorkspaceId, i: i64, first: &str, last: &str) -> Record {
        stored_contact(ws, first, last, t(i)).into_record()
    }

    fn company(ws: WorkspaceId, i: i64, name: &str, phone: Option<String>) -> Record {
        Company {
            phone_number: phone,
            ..stored_company(ws, name, t(i))
        }
        .into_record()
    }

    fn email(address: String) -> EmailEntry {
        EmailEntry {
            email: address,
            kind: EmailKind::Work,
        }
    }

    fn phone(number: String) -> PhoneEntry {
        PhoneEntry {
            number,
            kind: PhoneKind::Work,
        }
    }

    const QUERIES: [&str; 22] = [
        "mith",
        "cme",
        "mi",
        "smi",
        "ohn",
        "ith cme",
        "lobex",
        "nitech",
        "test",
        "est",
        "555",
        "5550",
        "0199",
        "2055",
        "7946",
        "946",
        "46",
        "john mith",
        "jo 555",
        "zzz",
        "5559",
        "ex",
    ];

    async fn assert_same(model: &MemoryStore, stores: &[RedbStore], ws: WorkspaceId) -> usize {
        let mut found = 0;
        for q in QUERIES {
            for (kind, sort) in [
                (EntityKind::Contact, Sort::asc("last_name")),
                (EntityKind::Contact, Sort::desc("created_at")),
                (EntityKind::Company, Sort::asc("name")),
            ] {
                for deleted in [Deleted::Exclude, Deleted::Include] {
                    let query = ListQuery {
                        search: Some(SearchQuery {
                            terms: crm_core::search::query_terms(q),
                        }),
                        deleted,
                        ..ListQuery::new(sort.clone(), 7)
                    };
                    let want = walk(model, ws, kind, &query).await;
                    found += want.len();
                    let set: HashSet<_> = want.iter().collect();
                    assert_eq!(set.len(), want.len());
                    for s in stores {
                        let got = walk(s, ws, kind, &query).await;
                        assert_eq!(got, want, "{q} {kind:?} {sort:?} {deleted:?}");
                    }
                }
            }
        }
        found
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn contact_points_match_inside_on_every_path() {
        let dir = tempfile::tempdir().unwrap();
        // Default cap: narrow terms; 20: some narrow, some broad; 2: nearly all broad.
        let stores: Vec<RedbStore> = [5_000, 20, 2]
            .into_iter()
            .map(|cap| {
                RedbStore::open_with(
                    dir.path().join(format!("s{cap}.redb")),
                    RedbOptions {
                        search_candidates: cap,
                        ..Default::default()
                    },
                )
                .unwrap()
            })
            .collect();
        let model = MemoryStore::new();
        let ws = WorkspaceId::generate();
        let other = WorkspaceId::generate();
        let all = |c: Commit| {
            let (model, stores) = (&model, &stores);
            async move {
                model.commit(c.clone()).await.unwrap();
                for s in stores {
                    s.commit(c.clone()).await.unwrap();
                }
            }
        };
        let firsts = ["John", "Joanna", "Smitty", "Ann", "Bob"];
        let lasts = ["Smith", "Smithers", "Acme", "Jones"];
        let domains = ["acme", "globex", "initech", "mi"];
        let mut records = Vec::new();
        for i in 0..120_i64 {
            let n = i as usize;
            let mut r = contact(ws, i, firsts[n % 5], lasts[n % 4]);
            if let Record::Contact(c) = &mut r {
                if !n.is_multiple_of(3) {
                    c.emails.push(email(format!(
                        "{}.{}{i}@{}.test",
                        firsts[n % 5],
                        lasts[(n / 5) % 4],
                        domains[n % 4]
                    )));
                }
                if n.is_multiple_of(2) {
                    c.phones
                        .push(phone(format!("+1 (520) 555-{:04}", (n * 37) % 10_000)));
                }
            }
            records.push(r);
        }
        for i in 0..60_i64 {
            let n = i as usize;
            let name = ["Acme Rockets", "Globex", "Smith & Co"][n % 3];
            let number = (!n.is_multiple_of(3)).then(|| format!("+44 20 7946 {:04}", n * 13));
            records.push(company(ws, i, name, number));
        }
        for chunk in records.chunks(16) {
            all(Commit {
                workspace_id: ws,
                writes: chunk.iter().cloned().map(Write::Insert).collect(),
                audit: Vec::new(),
            })
            .await;
        }
        // Noise in another workspace, which no search of `ws` may show.
        let mut noise = contact(other, 0, "John", "Smith");
        if let Record::Contact(c) = &mut noise {
            c.emails.push(email("john.smith@acme.test".into()));
        }
        all(Commit {
            workspace_id: other,
            writes: vec![Write::Insert(noise)],
            audit: Vec::new(),
        })
        .await;
        let before = assert_same(&model, &stores, ws).await;
        assert!(before > 1_000, "the queries are not degenerate ({before})");

        // New contact points, lost ones, soft and hard deletes: the old suffix entries go.
        let mut writes = Vec::new();
        for (n, r) in records.iter().enumerate() {
            let next = match n % 5 {
                0 => bumped(r, |r| match r {
                    Record::Contact(c) => {
                        c.emails = vec![email(format!("new.mail{n}@smithco.test"))];
                        c.phones.clear();
                    }
                    Record::Company(c) => c.phone_number = Some("555 0199".into()),
                    _ => unreachable!(),
                }),
                1 => bumped(r, |r| {
                    let mut m = r.meta();
                    m.deleted_at = Some(m.updated_at);
                    r.set_meta(m);
                }),
                2 => {
                    writes.push(Write::Delete {
                        kind: r.kind(),
                        id: r.id(),
                        expected_version: 1,
                    });
                    continue;
                }
                _ => continue,
            };
            writes.push(Write::Update {
                record: next,
                expected_version: 1,
            });
        }
        all(Commit {
            workspace_id: ws,
            writes,
            audit: Vec::new(),
        })
        .await;
        let after = assert_same(&model, &stores, ws).await;
        assert!(after > 500, "the queries are not degenerate ({after})");
        for s in &stores {
            s.close().await.unwrap();
        }
    }
}
