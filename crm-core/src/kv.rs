//! Helpers for ordered key/value backends (redb and the like).
//!
//! * [`encode_value`]: an order-preserving byte encoding of [`Value`]s, so that bytewise key
//!   order equals [`Value::sort_cmp`] order (text lowercased, `Null` last).
//! * [`index_keys`]: the secondary index entries of a record, for every index in
//!   [`EntityKind::indexes`]; multi-valued fields yield one entry per element.
//! * [`plan`]: picks the index serving a [`ListQuery`] (longest equality prefix, then the sort
//!   field) and gives the key range to scan; remaining conditions are checked with
//!   [`admits`].
//!
//! Key layouts are the backend's business; these functions produce the *suffixes* that must
//! sort correctly. A backend prepends its own table/kind/workspace prefix.

use crate::model::{EntityKind, Record};
use crate::query::{Direction, FilterOp, ListQuery, Value};

const TAG_BOOL: u8 = 0x10;
const TAG_INT: u8 = 0x20;
const TAG_TIME: u8 = 0x30;
const TAG_DATE: u8 = 0x40;
const TAG_ID: u8 = 0x50;
const TAG_TEXT: u8 = 0x60;
const TAG_NULL: u8 = 0xFF;

/// Appends the order-preserving encoding of a scalar value. Lists are not encodable (index
/// each element instead); they encode as `Null`.
pub fn encode_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null | Value::List(_) => out.push(TAG_NULL),
        Value::Bool(b) => out.extend([TAG_BOOL, u8::from(*b)]),
        Value::Int(i) => {
            out.push(TAG_INT);
            out.extend(((*i as u64) ^ (1 << 63)).to_be_bytes());
        }
        Value::Time(t) => {
            out.push(TAG_TIME);
            out.extend(((t.as_micros() as u64) ^ (1 << 63)).to_be_bytes());
        }
        Value::Date(d) => {
            out.push(TAG_DATE);
            out.extend(((d.to_julian_day() as u32) ^ (1 << 31)).to_be_bytes());
        }
        Value::Id(id) => {
            out.push(TAG_ID);
            out.extend(id.as_bytes());
        }
        Value::Text(s) => {
            out.push(TAG_TEXT);
            for c in s.chars().flat_map(char::to_lowercase) {
                let mut buf = [0u8; 4];
                for &b in c.encode_utf8(&mut buf).as_bytes() {
                    if b == 0 {
                        out.extend([0x00, 0xFF]);
                    } else {
                        out.push(b);
                    }
                }
            }
            out.extend([0x00, 0x01]);
        }
    }
}

/// The smallest byte string greater than every string starting with `prefix`
/// (`None` if there is none, i.e. the prefix is all `0xFF`).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut p = prefix.to_vec();
    while let Some(last) = p.pop() {
        if last < 0xFF {
            p.push(last + 1);
            return Some(p);
        }
    }
    None
}

/// One secondary index entry of a record: `(index number, key suffix)` where the suffix is
/// the encoded indexed values followed by the record id's 16 bytes.
pub fn index_keys(record: &Record) -> Vec<(u8, Vec<u8>)> {
    let kind = record.kind();
    let id = record.id();
    let mut out = Vec::new();
    for (n, fields) in kind.indexes().iter().enumerate() {
        let mut prefixes: Vec<Vec<u8>> = vec![Vec::new()];
        for f in fields.iter() {
            let v = record.field(f);
            let elems: Vec<Value> = match v {
                Value::List(items) => items,
                other => vec![other],
            };
            let mut next = Vec::with_capacity(prefixes.len() * elems.len());
            for p in &prefixes {
                for e in &elems {
                    let mut k = p.clone();
                    encode_value(e, &mut k);
                    next.push(k);
                }
            }
            prefixes = next;
        }
        for mut k in prefixes {
            k.extend(id.as_bytes());
            out.push((n as u8, k));
        }
    }
    out
}

/// How to serve a list query from an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Index number in [`EntityKind::indexes`].
    pub index: u8,
    /// Key suffix every row of the scan starts with (the encoded equality values).
    pub prefix: Vec<u8>,
    /// Scan direction.
    pub direction: Direction,
    /// Exclusive start position (suffix) from the cursor, if any: rows must come strictly
    /// after it in scan direction.
    pub after: Option<Vec<u8>>,
}

/// Chooses the index for a query: among indexes whose last field is the sort field and
/// whose leading fields all have single-value equality filters, the longest one. Every
/// sortable field has a one-field index, so a checked query always has a plan.
pub fn plan(kind: EntityKind, query: &ListQuery) -> Option<Plan> {
    let eq_value = |field: &str| {
        query.filters.iter().find_map(|f| match &f.op {
            FilterOp::Eq(v) if f.field == field && !matches!(v, Value::List(_)) => Some(v.clone()),
            _ => None,
        })
    };
    let mut best: Option<(usize, u8, Vec<u8>)> = None;
    for (n, fields) in kind.indexes().iter().enumerate() {
        let Some((last, lead)) = fields.split_last() else {
            continue;
        };
        if *last != query.sort.field {
            continue;
        }
        let mut prefix = Vec::new();
        let mut ok = true;
        for f in lead {
            match eq_value(f) {
                Some(v) => encode_value(&v, &mut prefix),
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if ok && best.as_ref().is_none_or(|(len, _, _)| lead.len() > *len) {
            best = Some((lead.len(), n as u8, prefix));
        }
    }
    let (_, index, prefix) = best?;
    let after = query.after.as_ref().map(|c| {
        let mut k = prefix.clone();
        encode_value(&c.value, &mut k);
        k.extend(c.id.as_bytes());
        k
    });
    Some(Plan {
        index,
        prefix,
        direction: query.sort.direction,
        after,
    })
}

/// Whether a record passes the query's filters, search terms and soft-delete rule (not the
/// cursor: index scans start after it).
pub fn admits(record: &Record, query: &ListQuery) -> bool {
    query.deleted.admits(record.is_deleted())
        && query
            .filters
            .iter()
            .all(|f| f.matches(&record.field(&f.field)))
        && query
            .search
            .as_ref()
            .is_none_or(|s| crate::search::matches(record, &s.terms))
}

/// Whether a record comes strictly after the query's cursor.
pub fn after_cursor(record: &Record, query: &ListQuery) -> bool {
    query
        .after
        .as_ref()
        .is_none_or(|c| c.is_before(&query.sort, &record.field(&query.sort.field), record.id()))
}

/// Sorts records by the query's sort (ties by id).
pub fn sort_records(records: &mut [Record], query: &ListQuery) {
    let f = &query.sort.field;
    records.sort_by(|a, b| {
        query
            .sort
            .cmp_rows((&a.field(f), a.id()), (&b.field(f), b.id()))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;

    fn enc(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode_value(v, &mut out);
        out
    }

    #[test]
    fn encoding_preserves_order() {
        let vals = [
            Value::Int(i64::MIN),
            Value::Int(-1),
            Value::Int(0),
            Value::Int(7),
            Value::Int(i64::MAX),
        ];
        for w in vals.windows(2) {
            assert!(enc(&w[0]) < enc(&w[1]));
        }
        assert!(enc(&Value::Text("ab".into())) < enc(&Value::Text("ABC".into())));
        assert!(enc(&Value::Text("a".into())) < enc(&Value::Text("a\0".into())));
        assert!(
            enc(&Value::Time(Timestamp::from_micros(-5)))
                < enc(&Value::Time(Timestamp::from_micros(3)))
        );
        assert!(enc(&Value::Int(5)) < enc(&Value::Null));
    }

    #[test]
    fn successor_bounds_the_prefix() {
        assert_eq!(prefix_successor(&[1, 2, 0xFF]), Some(vec![1, 3]));
        assert_eq!(prefix_successor(&[0xFF]), None);
    }
}
