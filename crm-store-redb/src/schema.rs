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
pub const FORMAT_VERSION: u64 = 4;
/// The oldest format version that [`crate::RedbStore::open`] upgrades in place: version 3
/// added the dashboard tables, [`TALLY`] and [`DASHBOARD`], built from the records on upgrade;
/// version 4 moved the access log into blocks ([`crate::access`]).
pub const OLDEST_UPGRADABLE_FORMAT: u64 = 2;

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
/// `[kind][workspace][word][0x00][id] -> ()` and
/// `[kind][workspace][`[`SUBSTRING_MARKER`]`][contact-point suffix][0x00][id] -> ()`: see
/// [`search_entries`].
pub const SEARCH: TableDefinition<&[u8], ()> = TableDefinition::new("crm_search");
/// `[kind][workspace][key name][0x00][value] -> id`.
pub const UNIQUE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("crm_unique");
/// `[workspace][audit id] -> audit entry JSON`.
pub const AUDIT: TableDefinition<&[u8], &[u8]> = TableDefinition::new("crm_audit");
/// `[workspace][record id][audit id] -> ()`: the audit entries of one record.
pub const AUDIT_BY_RECORD: TableDefinition<&[u8], ()> = TableDefinition::new("crm_audit_by_record");

/// Key of the number of the last commit that recorded feed entries in [`META`]: the `tx` of
/// feed positions (see [`crm_core::feed`]). Incremented by the single writer inside each write
/// transaction, so positions follow commit order.
pub const FEED_TX_KEY: &str = "feed_tx";
/// `[workspace][tx u64 BE][seq u32 BE] -> change JSON`: the change feed, one entry per record.
pub const FEED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("crm_feed");
/// `[workspace][kind][id] -> [tx][seq]`: where each record's feed entry is.
pub const FEED_AT: TableDefinition<&[u8], &[u8]> = TableDefinition::new("crm_feed_at");
/// `[workspace] -> [tx][seq]`: the feed's horizon (entries at or below may be pruned).
pub const FEED_HORIZON: TableDefinition<&[u8], &[u8]> = TableDefinition::new("crm_feed_horizon");

/// `[workspace][user][kind][record] -> latest view time (i64 micros, BE)`: recently viewed.
pub const RECENT: TableDefinition<&[u8], &[u8]> = TableDefinition::new("crm_recent");
/// `[workspace][user][kind][view time, order-preserving][record] -> ()`: the same views in
/// time order.
pub const RECENT_BY_TIME: TableDefinition<&[u8], ()> = TableDefinition::new("crm_recent_by_time");

/// `[workspace][tally key] -> tally (24 bytes)`: the dashboard's maintained figures (see
/// [`crm_core::dashboard`]; key [`TallyKey::encode`](crm_core::dashboard::TallyKey::encode),
/// value [`Tally::to_bytes`](crm_core::dashboard::Tally::to_bytes)). A tally that falls to
/// zero has no row.
pub const TALLY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("crm_tally");
/// `[workspace][entry] -> ()`: the dashboard's ordered lists (open tasks per owner, hot
/// contacts, activity): [`crm_core::dashboard::entries`] and
/// [`crm_core::dashboard::activity_entry`].
pub const DASHBOARD: TableDefinition<&[u8], ()> = TableDefinition::new("crm_dashboard");

/// `[workspace][suffix]`: a key of [`TALLY`] or [`DASHBOARD`].
pub fn ws_key(ws: WorkspaceId, suffix: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(16 + suffix.len());
    k.extend_from_slice(ws.as_bytes());
    k.extend_from_slice(suffix);
    k
}

/// `[workspace][user][kind]`: the prefix of one user's views of one kind.
pub fn recent_prefix(ws: WorkspaceId, user: Uuid, kind: EntityKind) -> Vec<u8> {
    let mut k = Vec::with_capacity(57);
    k.extend_from_slice(ws.as_bytes());
    k.extend_from_slice(user.as_bytes());
    k.push(kind.tag());
    k
}

/// Order-preserving bytes of a time.
pub fn time_bytes(t: crm_core::Timestamp) -> [u8; 8] {
    ((t.as_micros() as u64) ^ (1 << 63)).to_be_bytes()
}

/// The time of [`time_bytes`].
pub fn time_of(b: &[u8]) -> Option<crm_core::Timestamp> {
    let v = u64::from_be_bytes(b.try_into().ok()?) ^ (1 << 63);
    Some(crm_core::Timestamp::from_micros(v as i64))
}

/// The 12 position bytes of a feed key (big-endian, so bytewise order is position order).
pub fn position_bytes(p: crm_core::feed::Position) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[..8].copy_from_slice(&p.tx.to_be_bytes());
    b[8..].copy_from_slice(&p.seq.to_be_bytes());
    b
}

/// The position in the last 12 bytes of a feed key or value.
pub fn position_of(bytes: &[u8]) -> Option<crm_core::feed::Position> {
    let start = bytes.len().checked_sub(12)?;
    let b = &bytes[start..];
    Some(crm_core::feed::Position {
        tx: u64::from_be_bytes(b[..8].try_into().ok()?),
        seq: u32::from_be_bytes(b[8..].try_into().ok()?),
    })
}

/// Key of a feed entry in [`FEED`].
pub fn feed_key(ws: WorkspaceId, p: crm_core::feed::Position) -> Vec<u8> {
    let mut k = Vec::with_capacity(28);
    k.extend_from_slice(ws.as_bytes());
    k.extend_from_slice(&position_bytes(p));
    k
}

/// Key of a record's entry position in [`FEED_AT`].
pub fn feed_at_key(ws: WorkspaceId, kind: EntityKind, id: Uuid) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.extend_from_slice(ws.as_bytes());
    k.push(kind.tag());
    k.extend_from_slice(id.as_bytes());
    k
}

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

/// First byte of the [`SEARCH`] keys of contact-point suffixes, right after
/// `[kind][workspace]`. No word starts with it (words are runs of letters and digits; 0x01 is
/// neither, nor the first byte of any multi-byte UTF-8 char), so the two key namespaces never
/// overlap.
pub const SUBSTRING_MARKER: u8 = 0x01;

/// Prefix of the [`SEARCH`] keys of words starting with `term`.
pub fn search_prefix(kind: EntityKind, ws: WorkspaceId, term: &str) -> Vec<u8> {
    let mut k = kind_ws(kind, ws);
    k.extend_from_slice(term.as_bytes());
    k
}

/// Prefix of the [`SEARCH`] keys of contact-point suffixes starting with `term`: their records
/// are those having a contact point that contains `term`, when `term` has at least
/// [`MIN_SUBSTRING`](crm_core::search::MIN_SUBSTRING) chars.
pub fn substring_prefix(kind: EntityKind, ws: WorkspaceId, term: &str) -> Vec<u8> {
    let mut k = kind_ws(kind, ws);
    k.push(SUBSTRING_MARKER);
    k.extend_from_slice(term.as_bytes());
    k
}

/// The [`SEARCH`] keys of a record, for the searchable kinds only:
///
/// * one [`search_prefix`] key per word of [`crm_core::search::tokens_of`], so that "`term` is
///   a prefix of a word" is a range scan;
/// * one [`substring_prefix`] key per suffix of at least
///   [`MIN_SUBSTRING`](crm_core::search::MIN_SUBSTRING) chars of each contact point of
///   [`crm_core::search::contact_points_of`] (so at most `MAX_WORD - MIN_SUBSTRING + 1` per
///   point), so that "`term` of at least `MIN_SUBSTRING` chars is a substring of a contact
///   point" — that is, a prefix of one of its suffixes — is a range scan too.
///
/// Both end with `0x00` and the record id. Words and points never contain NUL nor start with
/// [`SUBSTRING_MARKER`] (they are runs of letters and digits); one that did would be skipped
/// rather than break the layout.
pub fn search_entries(ws: WorkspaceId, record: &crm_core::model::Record) -> Vec<Vec<u8>> {
    let kind = record.kind();
    if !kind.searchable() {
        return Vec::new();
    }
    let fits = |t: &String| {
        !t.is_empty() && !t.as_bytes().contains(&0) && !t.starts_with(char::from(SUBSTRING_MARKER))
    };
    let entry = |mut k: Vec<u8>| {
        k.push(0);
        k.extend_from_slice(record.id().as_bytes());
        k
    };
    let mut out: Vec<Vec<u8>> = crm_core::search::tokens_of(record)
        .iter()
        .filter(|t| fits(t))
        .map(|t| entry(search_prefix(kind, ws, t)))
        .collect();
    for point in crm_core::search::contact_points_of(record)
        .iter()
        .filter(|p| fits(p))
    {
        for (start, _) in point.char_indices() {
            let suffix = &point[start..];
            if !crm_core::search::is_substring_term(suffix) {
                break;
            }
            out.push(entry(substring_prefix(kind, ws, suffix)));
        }
    }
    // Two points may share a suffix (`john` in `john` and `ajohn`): one key each.
    out.sort_unstable();
    out.dedup();
    out
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

    #[test]
    fn search_entries_hold_words_and_contact_point_suffixes() {
        use crm_core::model::{Company, Entity};

        let ws = WorkspaceId::generate();
        let record = Company {
            phone_number: Some("+1 (520) 555-0199".into()),
            ..crm_core::testkit::setup::stored_company(ws, "Acme", crm_core::Timestamp::EPOCH)
        }
        .into_record();
        let base = kind_ws(EntityKind::Company, ws);
        let (mut words, mut suffixes) = (Vec::new(), Vec::new());
        for k in search_entries(ws, &record) {
            assert!(k.starts_with(&base));
            assert_eq!(trailing_id(&k), Some(record.id()));
            let (text, nul) = (&k[base.len()..k.len() - 17], k[k.len() - 17]);
            assert_eq!(nul, 0);
            match text.split_first() {
                Some((&SUBSTRING_MARKER, rest)) => {
                    suffixes.push(String::from_utf8(rest.to_vec()).unwrap());
                }
                _ => words.push(String::from_utf8(text.to_vec()).unwrap()),
            }
        }
        words.sort_unstable();
        assert_eq!(words, ["0199", "1", "15205550199", "520", "555", "acme"]);
        suffixes.sort_unstable_by_key(|s| std::cmp::Reverse(s.len()));
        assert_eq!(
            suffixes,
            [
                "15205550199",
                "5205550199",
                "205550199",
                "05550199",
                "5550199",
                "550199",
                "50199",
                "0199",
                "199"
            ]
        );
        assert!(
            substring_prefix(EntityKind::Company, ws, "199")
                .starts_with(&[base.as_slice(), &[SUBSTRING_MARKER]].concat())
        );
    }
}
