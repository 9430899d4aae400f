//! Security events and audit pruning: reads over a read transaction, writes over the
//! writer's write transaction (each call its own transaction, all or nothing). The access
//! log, stored in blocks, is [`crate::access`].
//!
//! Layout: `[workspace][event id] -> JSON`, with the index table
//! `[workspace][user][event id] -> ()`. Event ids are UUIDv7 of the event's time, so key
//! order is time order and pruning is a scan from the start of the workspace's range.

use std::ops::Bound;

use crm_core::Timestamp;
use crm_core::id::{UserId, WorkspaceId};
use crm_core::security::{SecurityEvent, SecurityEventQuery};
use crm_core::storage::kv;
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use uuid::Uuid;

use crate::error::{StoreError, StoreResult};
use crate::schema::{AUDIT, AUDIT_BY_RECORD};

/// `[workspace][event id] -> security event JSON`.
pub const SECURITY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("crm_security");
/// `[workspace][user id][event id] -> ()`: the events about or by one user.
pub const SECURITY_BY_USER: TableDefinition<&[u8], ()> =
    TableDefinition::new("crm_security_by_user");

/// An index table: `[workspace][subject][entry id] -> ()`.
type IndexTable = TableDefinition<'static, &'static [u8], ()>;

/// Creates the tables (at open, so that reads find them).
pub(crate) fn create_tables(txn: &WriteTransaction) -> StoreResult<()> {
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
