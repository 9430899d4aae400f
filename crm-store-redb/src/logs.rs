//! The access log, security events and audit pruning: reads over a read transaction, writes
//! over the writer's write transaction (each call its own transaction, all or nothing).
//!
//! Layout: `[workspace][entry id] -> JSON` for each log, with index tables
//! `[workspace][record or user][entry id] -> ()`. Entry ids are UUIDv7 of the entry's time
//! ([`crm_core::access_log::id_at`]), so key order is time order and pruning is a scan from
//! the start of the workspace's range.

use std::ops::Bound;

use crm_core::access_log::{AccessEntry, AccessLogQuery};
use crm_core::id::{UserId, WorkspaceId};
use crm_core::security::{SecurityEvent, SecurityEventQuery};
use crm_core::storage::kv;
use crm_core::{EntityKind, Timestamp};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use uuid::Uuid;

use crate::error::{StoreError, StoreResult};
use crate::schema::{AUDIT, AUDIT_BY_RECORD};

/// `[workspace][entry id] -> access entry JSON`.
pub const ACCESS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("crm_access");
/// `[workspace][record id][entry id] -> ()`: the access entries about one record.
pub const ACCESS_BY_RECORD: TableDefinition<&[u8], ()> =
    TableDefinition::new("crm_access_by_record");
/// `[workspace][user id][entry id] -> ()`: the access entries of one user's reads.
pub const ACCESS_BY_USER: TableDefinition<&[u8], ()> = TableDefinition::new("crm_access_by_user");
/// `[workspace][event id] -> security event JSON`.
pub const SECURITY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("crm_security");
/// `[workspace][user id][event id] -> ()`: the events about or by one user.
pub const SECURITY_BY_USER: TableDefinition<&[u8], ()> =
    TableDefinition::new("crm_security_by_user");

/// An index table: `[workspace][subject][entry id] -> ()`.
type IndexTable = TableDefinition<'static, &'static [u8], ()>;

/// Creates the tables (at open, so that reads find them).
pub(crate) fn create_tables(txn: &WriteTransaction) -> StoreResult<()> {
    txn.open_table(ACCESS)?;
    txn.open_table(ACCESS_BY_RECORD)?;
    txn.open_table(ACCESS_BY_USER)?;
    txn.open_table(SECURITY)?;
    txn.open_table(SECURITY_BY_USER)?;
    Ok(())
}

fn key(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// How a log entry is stored as a value of its main table.
trait LogValue: Sized {
    /// The stored bytes.
    fn encode(&self) -> Vec<u8>;
    /// The entry of stored bytes (`what` names it in errors).
    fn decode(what: &'static str, bytes: &[u8]) -> StoreResult<Self>;
}

/// Security events and audit entries are stored as JSON (they are few beside reads).
macro_rules! json_log_value {
    ($($t:ty),*) => {$(
        impl LogValue for $t {
            fn encode(&self) -> Vec<u8> {
                serde_json::to_vec(self).expect("log entries serialize")
            }
            fn decode(what: &'static str, bytes: &[u8]) -> StoreResult<Self> {
                serde_json::from_slice(bytes).map_err(|e| StoreError::decode(what, e))
            }
        }
    )*};
}
json_log_value!(SecurityEvent, crm_core::audit::AuditEntry);

/// The first byte of an access entry in the compact form; JSON, the form of files written
/// before it, starts with `{`.
const ACCESS_V1: u8 = 1;

/// Access entries are one a record read: a compact binary form, fields in declaration
/// order — the tag [`ACCESS_V1`], `id`, `workspace_id` (16 bytes each), `at` (microseconds,
/// i64 little endian), `user_id`, `record_id` (16 bytes each), the entity's
/// [`EntityKind::tag`], the route (u16 little-endian length, UTF-8), then the address (0,
/// or 1 and a u8 length and UTF-8). Encoding is a few copies where JSON took several
/// thousand instructions an entry. Entries stored as JSON by earlier versions still decode.
impl LogValue for AccessEntry {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        encode_access_into(self, &mut out);
        out
    }

    fn decode(what: &'static str, bytes: &[u8]) -> StoreResult<Self> {
        if bytes.first() != Some(&ACCESS_V1) {
            return serde_json::from_slice(bytes).map_err(|e| StoreError::decode(what, e));
        }
        decode_access_v1(&bytes[1..]).ok_or_else(|| {
            StoreError::decode(
                what,
                <serde_json::Error as serde::de::Error>::custom("malformed compact access entry"),
            )
        })
    }
}

/// Appends `e`'s compact form (see [`LogValue for AccessEntry`](LogValue)) to `out`.
fn encode_access_into(e: &AccessEntry, out: &mut Vec<u8>) {
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

/// The fields of a compact access entry after its tag; `None` when they are malformed.
fn decode_access_v1(mut b: &[u8]) -> Option<AccessEntry> {
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

fn upper(prefix: &[u8], before: Option<Uuid>) -> Bound<Vec<u8>> {
    match before {
        Some(b) => Bound::Excluded(key(&[prefix, b.as_bytes()])),
        None => kv::prefix_successor(prefix).map_or(Bound::Unbounded, Bound::Excluded),
    }
}

/// Walks `index` (or `main` when `index` is `None`) newest first under `prefix`, strictly
/// before `before`, decoding each entry from `main` and keeping those `admit` accepts, up to
/// `limit`.
#[allow(clippy::too_many_arguments)]
fn walk<T: LogValue>(
    txn: &ReadTransaction,
    main: TableDefinition<&[u8], &[u8]>,
    index: Option<(IndexTable, &[u8])>,
    ws: WorkspaceId,
    before: Option<Uuid>,
    limit: usize,
    what: &'static str,
    admit: impl Fn(&T) -> bool,
) -> StoreResult<Vec<T>> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let main_table = txn.open_table(main)?;
    match index {
        Some((index, subject)) => {
            let prefix = key(&[ws.as_bytes(), subject]);
            let hi = upper(&prefix, before);
            let table = txn.open_table(index)?;
            let range = (
                Bound::Included(prefix.as_slice()),
                match &hi {
                    Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
                    _ => Bound::Unbounded,
                },
            );
            for item in table.range::<&[u8]>(range)?.rev() {
                let (k, _) = item?;
                let id = crate::schema::trailing_id(k.value())
                    .ok_or(StoreError::DanglingEntry { table: what })?;
                let value = main_table
                    .get(key(&[ws.as_bytes(), id.as_bytes()]).as_slice())?
                    .ok_or(StoreError::DanglingEntry { table: what })?;
                let e = T::decode(what, value.value())?;
                if admit(&e) {
                    out.push(e);
                    if out.len() >= limit {
                        break;
                    }
                }
            }
        }
        None => {
            let prefix = ws.as_bytes().to_vec();
            let hi = upper(&prefix, before);
            let range = (
                Bound::Included(prefix.as_slice()),
                match &hi {
                    Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
                    _ => Bound::Unbounded,
                },
            );
            for item in main_table.range::<&[u8]>(range)?.rev() {
                let (_, v) = item?;
                let e = T::decode(what, v.value())?;
                if admit(&e) {
                    out.push(e);
                    if out.len() >= limit {
                        break;
                    }
                }
            }
        }
    }
    Ok(out)
}

/// [`crm_core::Storage::access_log`].
pub(crate) fn access_log(
    txn: &ReadTransaction,
    ws: WorkspaceId,
    query: &AccessLogQuery,
) -> StoreResult<Vec<AccessEntry>> {
    let (record, user);
    let index = if let Some(r) = query.record_id {
        record = r;
        Some((ACCESS_BY_RECORD, record.as_bytes().as_slice()))
    } else if let Some(u) = query.user_id {
        user = u;
        Some((ACCESS_BY_USER, user.as_bytes().as_slice()))
    } else {
        None
    };
    walk(
        txn,
        ACCESS,
        index,
        ws,
        query.before,
        query.limit,
        "access entry",
        |e: &AccessEntry| query.admits(e),
    )
}

/// [`crm_core::Storage::security_events`].
pub(crate) fn security_events(
    txn: &ReadTransaction,
    ws: WorkspaceId,
    query: &SecurityEventQuery,
) -> StoreResult<Vec<SecurityEvent>> {
    let user;
    let index = match query.user_id {
        Some(u) => {
            user = u;
            Some((SECURITY_BY_USER, user.as_bytes().as_slice()))
        }
        None => None,
    };
    walk(
        txn,
        SECURITY,
        index,
        ws,
        query.before,
        query.limit,
        "security event",
        |e: &SecurityEvent| query.admits(e),
    )
}

/// Length of a main-table key: `[workspace][entry id]`.
const MAIN_KEY: usize = 32;
/// Length of an index key: `[workspace][subject][entry id]`.
const INDEX_KEY: usize = 48;

/// A batch of access entries encoded for the writer: per entry, its main key, its two index
/// keys and its value, one after the other in one buffer. Encoding happens on the caller's
/// thread and copies each entry once, instead of cloning the entries for the writer and
/// allocating four buffers an entry there.
pub(crate) struct EncodedAccess {
    bytes: Vec<u8>,
    /// Where each entry's part of `bytes` starts; it ends where the next one starts.
    starts: Vec<usize>,
}

impl EncodedAccess {
    /// Encodes `entries`.
    pub(crate) fn new(entries: &[AccessEntry]) -> Self {
        let mut bytes = Vec::with_capacity(entries.len() * (MAIN_KEY + 2 * INDEX_KEY + 128));
        let mut starts = Vec::with_capacity(entries.len());
        for e in entries {
            starts.push(bytes.len());
            let (ws, id) = (e.workspace_id.as_bytes(), e.id.as_bytes());
            for part in [
                ws,
                id,
                ws,
                e.record_id.as_bytes(),
                id,
                ws,
                e.user_id.as_bytes(),
                id,
            ] {
                bytes.extend_from_slice(part);
            }
            encode_access_into(e, &mut bytes);
        }
        EncodedAccess { bytes, starts }
    }

    /// Each entry's main key, record-index key, user-index key and value.
    fn rows(&self) -> impl Iterator<Item = (&[u8], &[u8], &[u8], &[u8])> {
        let ends = self
            .starts
            .iter()
            .skip(1)
            .copied()
            .chain([self.bytes.len()]);
        self.starts.iter().zip(ends).map(|(&start, end)| {
            let row = &self.bytes[start..end];
            let (main, rest) = row.split_at(MAIN_KEY);
            let (by_record, rest) = rest.split_at(INDEX_KEY);
            let (by_user, value) = rest.split_at(INDEX_KEY);
            (main, by_record, by_user, value)
        })
    }
}

/// [`crm_core::Storage::append_access_log`]: the entries of [`EncodedAccess::new`]. Each
/// table's keys go in in key order (the index keys sorted first), so that consecutive
/// inserts touch neighbouring pages.
pub(crate) fn append_access(txn: &WriteTransaction, batch: &EncodedAccess) -> StoreResult<usize> {
    let mut main = txn.open_table(ACCESS)?;
    let mut by_record = txn.open_table(ACCESS_BY_RECORD)?;
    let mut by_user = txn.open_table(ACCESS_BY_USER)?;
    let (mut records, mut users) = (Vec::new(), Vec::new());
    for (key, record, user, value) in batch.rows() {
        main.insert(key, value)?;
        records.push(record);
        users.push(user);
    }
    records.sort_unstable();
    users.sort_unstable();
    for key in records {
        by_record.insert(key, ())?;
    }
    for key in users {
        by_user.insert(key, ())?;
    }
    Ok(batch.starts.len())
}

/// [`crm_core::Storage::append_security_events`].
pub(crate) fn append_security(
    txn: &WriteTransaction,
    events: &[SecurityEvent],
) -> StoreResult<usize> {
    let mut main = txn.open_table(SECURITY)?;
    let mut by_user = txn.open_table(SECURITY_BY_USER)?;
    for e in events {
        let (ws, id) = (e.workspace_id.as_bytes(), e.id.as_bytes());
        main.insert(key(&[ws, id]).as_slice(), e.encode().as_slice())?;
        for u in users_of(e) {
            by_user.insert(key(&[ws, u.as_bytes(), id]).as_slice(), ())?;
        }
    }
    Ok(events.len())
}

fn users_of(e: &SecurityEvent) -> Vec<UserId> {
    let mut users: Vec<UserId> = e.user_id.into_iter().chain(e.actor_id).collect();
    users.dedup();
    users
}

/// The keys under `prefix` in an index table.
fn index_keys(
    table: &impl ReadableTable<&'static [u8], ()>,
    prefix: &[u8],
) -> StoreResult<Vec<Vec<u8>>> {
    let hi = upper(prefix, None);
    let range = (
        Bound::Included(prefix),
        match &hi {
            Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
            _ => Bound::Unbounded,
        },
    );
    table
        .range::<&[u8]>(range)?
        .map(|item| item.map(|(k, _)| k.value().to_vec()).map_err(Into::into))
        .collect()
}

/// [`crm_core::Storage::erase_access_log_for`].
pub(crate) fn erase_access_for(
    txn: &WriteTransaction,
    ws: WorkspaceId,
    record: Uuid,
) -> StoreResult<usize> {
    let mut main = txn.open_table(ACCESS)?;
    let mut by_record = txn.open_table(ACCESS_BY_RECORD)?;
    let mut by_user = txn.open_table(ACCESS_BY_USER)?;
    let keys = index_keys(&by_record, &key(&[ws.as_bytes(), record.as_bytes()]))?;
    for k in &keys {
        let id = crate::schema::trailing_id(k).ok_or(StoreError::DanglingEntry {
            table: "access_by_record",
        })?;
        let removed = main.remove(key(&[ws.as_bytes(), id.as_bytes()]).as_slice())?;
        if let Some(v) = removed {
            let e = AccessEntry::decode("access entry", v.value())?;
            by_user
                .remove(key(&[ws.as_bytes(), e.user_id.as_bytes(), id.as_bytes()]).as_slice())?;
        }
        by_record.remove(k.as_slice())?;
    }
    Ok(keys.len())
}

/// [`crm_core::Storage::redact_access_log_by`].
pub(crate) fn redact_access_by(
    txn: &WriteTransaction,
    ws: WorkspaceId,
    user: UserId,
) -> StoreResult<usize> {
    let mut main = txn.open_table(ACCESS)?;
    let by_user = txn.open_table(ACCESS_BY_USER)?;
    let mut n = 0;
    for k in index_keys(&by_user, &key(&[ws.as_bytes(), user.as_bytes()]))? {
        let id = crate::schema::trailing_id(&k).ok_or(StoreError::DanglingEntry {
            table: "access_by_user",
        })?;
        let main_key = key(&[ws.as_bytes(), id.as_bytes()]);
        let found = main.get(main_key.as_slice())?.map(|v| v.value().to_vec());
        if let Some(bytes) = found {
            let mut e = AccessEntry::decode("access entry", &bytes)?;
            if e.address.take().is_some() {
                main.insert(main_key.as_slice(), e.encode().as_slice())?;
                n += 1;
            }
        }
    }
    Ok(n)
}

/// [`crm_core::Storage::redact_security_events_for`].
pub(crate) fn redact_security_for(
    txn: &WriteTransaction,
    ws: WorkspaceId,
    user: UserId,
) -> StoreResult<usize> {
    let mut main = txn.open_table(SECURITY)?;
    let by_user = txn.open_table(SECURITY_BY_USER)?;
    let mut n = 0;
    for k in index_keys(&by_user, &key(&[ws.as_bytes(), user.as_bytes()]))? {
        let id = crate::schema::trailing_id(&k).ok_or(StoreError::DanglingEntry {
            table: "security_by_user",
        })?;
        let main_key = key(&[ws.as_bytes(), id.as_bytes()]);
        let found = main.get(main_key.as_slice())?.map(|v| v.value().to_vec());
        if let Some(bytes) = found {
            let mut e = SecurityEvent::decode("security event", &bytes)?;
            if e.address.is_some() || e.email.is_some() {
                e.address = None;
                e.email = None;
                main.insert(main_key.as_slice(), e.encode().as_slice())?;
                n += 1;
            }
        }
    }
    Ok(n)
}

/// The oldest entries of a workspace in `table` made before `before`, at most `limit`, as
/// (key, JSON): a scan from the start of the range that stops at the first one kept.
fn oldest<T: LogValue>(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    ws: WorkspaceId,
    before: Timestamp,
    limit: usize,
    what: &'static str,
    at: impl Fn(&T) -> Timestamp,
) -> StoreResult<Vec<(Vec<u8>, T)>> {
    let prefix = ws.as_bytes().to_vec();
    let hi = upper(&prefix, None);
    let range = (
        Bound::Included(prefix.as_slice()),
        match &hi {
            Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
            _ => Bound::Unbounded,
        },
    );
    let mut out = Vec::new();
    for item in table.range::<&[u8]>(range)? {
        if out.len() >= limit {
            break;
        }
        let (k, v) = item?;
        let e = T::decode(what, v.value())?;
        if at(&e) >= before {
            break;
        }
        out.push((k.value().to_vec(), e));
    }
    Ok(out)
}

/// [`crm_core::Storage::prune_access_log`].
pub(crate) fn prune_access(
    txn: &WriteTransaction,
    ws: WorkspaceId,
    before: Timestamp,
    limit: usize,
) -> StoreResult<usize> {
    let mut main = txn.open_table(ACCESS)?;
    let mut by_record = txn.open_table(ACCESS_BY_RECORD)?;
    let mut by_user = txn.open_table(ACCESS_BY_USER)?;
    let doomed = oldest(
        &main,
        ws,
        before,
        limit,
        "access entry",
        |e: &AccessEntry| e.at,
    )?;
    for (k, e) in &doomed {
        let (w, id) = (ws.as_bytes(), e.id.as_bytes());
        main.remove(k.as_slice())?;
        by_record.remove(key(&[w, e.record_id.as_bytes(), id]).as_slice())?;
        by_user.remove(key(&[w, e.user_id.as_bytes(), id]).as_slice())?;
    }
    Ok(doomed.len())
}

/// [`crm_core::Storage::prune_security_events`].
pub(crate) fn prune_security(
    txn: &WriteTransaction,
    ws: WorkspaceId,
    before: Timestamp,
    limit: usize,
) -> StoreResult<usize> {
    let mut main = txn.open_table(SECURITY)?;
    let mut by_user = txn.open_table(SECURITY_BY_USER)?;
    let doomed = oldest(
        &main,
        ws,
        before,
        limit,
        "security event",
        |e: &SecurityEvent| e.at,
    )?;
    for (k, e) in &doomed {
        main.remove(k.as_slice())?;
        for u in users_of(e) {
            by_user.remove(key(&[ws.as_bytes(), u.as_bytes(), e.id.as_bytes()]).as_slice())?;
        }
    }
    Ok(doomed.len())
}

/// [`crm_core::Storage::prune_audit`].
pub(crate) fn prune_audit(
    txn: &WriteTransaction,
    ws: WorkspaceId,
    before: Timestamp,
    limit: usize,
) -> StoreResult<usize> {
    let mut main = txn.open_table(AUDIT)?;
    let mut by_record = txn.open_table(AUDIT_BY_RECORD)?;
    let doomed = oldest(
        &main,
        ws,
        before,
        limit,
        "audit entry",
        |e: &crm_core::audit::AuditEntry| e.at,
    )?;
    for (k, e) in &doomed {
        main.remove(k.as_slice())?;
        by_record
            .remove(crate::schema::audit_by_record_key(ws, e.record_id, e.id.uuid()).as_slice())?;
    }
    Ok(doomed.len())
}

#[cfg(test)]
mod codec_tests {
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

    #[test]
    fn access_entries_round_trip_in_the_compact_form() {
        for address in [None, Some("203.0.113.0"), Some("2001:db8::")] {
            let e = entry(address);
            let bytes = e.encode();
            assert_eq!(bytes[0], ACCESS_V1);
            assert_eq!(AccessEntry::decode("access entry", &bytes).unwrap(), e);
        }
        for kind in EntityKind::ALL {
            let e = AccessEntry {
                entity: kind,
                ..entry(None)
            };
            assert_eq!(AccessEntry::decode("access entry", &e.encode()).unwrap(), e);
        }
    }

    #[test]
    fn access_entries_stored_as_json_by_earlier_versions_still_decode() {
        let e = entry(Some("198.51.100.0"));
        let json = serde_json::to_vec(&e).unwrap();
        assert_eq!(AccessEntry::decode("access entry", &json).unwrap(), e);
    }

    #[test]
    fn a_malformed_compact_entry_is_a_decode_error() {
        let bytes = entry(Some("198.51.100.0")).encode();
        for cut in [1, 20, bytes.len() - 1] {
            let err = AccessEntry::decode("access entry", &bytes[..cut]).unwrap_err();
            assert!(matches!(err, StoreError::Decode { .. }), "{err:?}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(AccessEntry::decode("access entry", &extra).is_err());
        let mut bad_kind = bytes;
        bad_kind[1 + 16 + 16 + 8 + 16 + 16] = 250;
        assert!(AccessEntry::decode("access entry", &bad_kind).is_err());
    }
}
