//! Tables and key layout (see the [crate docs](crate#file-layout) for the overview).
//!
//! All keys are byte strings compared bytewise; the fixed-width parts (kind tag, workspace id,
//! record id) come first so that every "all X of kind K in workspace W" question is one
//! contiguous key range. Sort values inside index keys come from [`kv::encode_value`], whose
//! bytewise order is the order the core defines ([`crm_core::query::Value::sort_cmp`]).

use crm_core::id::WorkspaceId;
use crm_core::model::EntityKind;
use crm_core::storage::kv;
use redb::TableDefinition;
use uuid::Uuid;

/// Format version of the file layout (kept in the `crm_meta` table); bumped on every incompatible change of the layout.
pub const FORMAT_VERSION: u64 = 1;

/// `&str -> u64`: [`FORMAT_KEY`] and [`BATCH_SEQ_KEY`].
pub const META: TableDefinition<&str, u64> = TableDefinition::new("crm_meta");
/// Key of the format version in [`META`].
pub const FORMAT_KEY: &str = "format_version";
/// Key of the number of the last committed write batch in [`META`]. Every group commit
/// increments it inside its own transaction, so after a failed commit a reopened database
/// tells whether that batch became durable.
pub const BATCH_SEQ_KEY: &str = "batch_seq";

/// `[kind][workspace][id] -> record JSON`.
pub const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("crm_records");
/// `[kind][workspace][index no][kv::index_keys suffix] -> ()`.
pub const INDEXES: TableDefinition<&[u8], ()> = TableDefinition::new("crm_indexes");
/// `[kind][workspace][token][0x00][id] -> ()`.
pub const SEARCH: TableDefinition<&[u8], ()> = TableDefinition::new("crm_search");
/// `[kind][workspace][key name][0x00][value] -> id`.
pub const UNIQUE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("crm_unique");
/// `[workspace][audit id] -> audit entry JSON`.
pub const AUDIT: TableDefinition<&[u8], &[u8]> = TableDefinition::new("crm_audit");
/// `[workspace][record id][audit id] -> ()`: the audit entries of one record.
pub const AUDIT_BY_RECORD: TableDefinition<&[u8], ()> = TableDefinition::new("crm_audit_by_record");

/// `[kind][workspace]`: the prefix of every per-kind key.
pub fn kind_ws(kind: EntityKind, ws: WorkspaceId) -> Vec<u8> {
    let mut k = Vec::with_capacity(64);
    k.push(kind.tag());
    k.extend_from_slice(ws.as_bytes());
    k
}

/// Key of a record in [`RECORDS`].
pub fn record_key(kind: EntityKind, ws: WorkspaceId, id: Uuid) -> Vec<u8> {
    let mut k = kind_ws(kind, ws);
    k.extend_from_slice(id.as_bytes());
    k
}

/// Prefix of every [`INDEXES`] key of one index.
pub fn index_prefix(kind: EntityKind, ws: WorkspaceId, index: u8) -> Vec<u8> {
    let mut k = kind_ws(kind, ws);
    k.push(index);
    k
}

/// The [`INDEXES`] keys of a record (one per entry of [`kv::index_keys`]).
pub fn index_entries(ws: WorkspaceId, record: &crm_core::model::Record) -> Vec<Vec<u8>> {
    kv::index_keys(record)
        .into_iter()
        .map(|(n, suffix)| {
            let mut k = index_prefix(record.kind(), ws, n);
            k.extend_from_slice(&suffix);
            k
        })
        .collect()
}

/// Prefix of the [`SEARCH`] keys of tokens starting with `term`.
pub fn search_prefix(kind: EntityKind, ws: WorkspaceId, term: &str) -> Vec<u8> {
    let mut k = kind_ws(kind, ws);
    k.extend_from_slice(term.as_bytes());
    k
}

/// The [`SEARCH`] keys of a record: one per word of [`crm_core::search::tokens_of`], for the
/// searchable kinds only. Words never contain NUL (they are runs of letters and digits, or a
/// lowercased email address); one that did would be skipped rather than break the layout.
pub fn search_entries(ws: WorkspaceId, record: &crm_core::model::Record) -> Vec<Vec<u8>> {
    let kind = record.kind();
    if !kind.searchable() {
        return Vec::new();
    }
    crm_core::search::tokens_of(record)
        .into_iter()
        .filter(|t| !t.is_empty() && !t.as_bytes().contains(&0))
        .map(|t| {
            let mut k = search_prefix(kind, ws, &t);
            k.push(0);
            k.extend_from_slice(record.id().as_bytes());
            k
        })
        .collect()
}

/// Key of a unique value in [`UNIQUE`].
pub fn unique_key(kind: EntityKind, ws: WorkspaceId, name: &str, value: &str) -> Vec<u8> {
    let mut k = kind_ws(kind, ws);
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k.extend_from_slice(value.as_bytes());
    k
}

/// Key of an audit entry in [`AUDIT`].
pub fn audit_key(ws: WorkspaceId, audit_id: Uuid) -> Vec<u8> {
    let mut k = Vec::with_capacity(32);
    k.extend_from_slice(ws.as_bytes());
    k.extend_from_slice(audit_id.as_bytes());
    k
}

/// Key of an audit entry in [`AUDIT_BY_RECORD`].
pub fn audit_by_record_key(ws: WorkspaceId, record_id: Uuid, audit_id: Uuid) -> Vec<u8> {
    let mut k = Vec::with_capacity(48);
    k.extend_from_slice(ws.as_bytes());
    k.extend_from_slice(record_id.as_bytes());
    k.extend_from_slice(audit_id.as_bytes());
    k
}

/// The id in the last 16 bytes of a key (`None` if the key is shorter).
pub fn trailing_id(key: &[u8]) -> Option<Uuid> {
    let start = key.len().checked_sub(16)?;
    Uuid::from_slice(&key[start..]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_nest() {
        let ws = WorkspaceId::generate();
        let id = Uuid::now_v7();
        let rk = record_key(EntityKind::Contact, ws, id);
        assert!(rk.starts_with(&kind_ws(EntityKind::Contact, ws)));
        assert_eq!(rk.len(), 1 + 16 + 16);
        assert_eq!(trailing_id(&rk), Some(id));
        assert_eq!(trailing_id(&[1, 2]), None);
        let a = audit_by_record_key(ws, id, Uuid::nil());
        assert_eq!(trailing_id(&a), Some(Uuid::nil()));
    }
}
