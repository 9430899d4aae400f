//! List queries: filters, sort, keyset cursors and pages.
//!
//! A [`ListQuery`] is what the core hands a [`crate::Storage`] for a list: filters already
//! checked against the entity's [`FieldSpec`]s, permission scopes already added as filters, a
//! sort (always tie-broken by id), an optional opaque cursor and a page size. Paging is keyset:
//! the cursor holds the last row's sort value and id, so page 1,000 costs what page 1 costs and
//! a walk returns every record exactly once even while others are inserted.
//!
//! Ordering of values: within one field all values have one type; `Null` sorts after every
//! value (PostgreSQL's default: `NULLS LAST` ascending, first descending). Text sorts
//! case-insensitively.

use std::cmp::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::{Date, Timestamp};
use crate::error::{Error, ErrorKind, Result};

/// Default page size.
pub const DEFAULT_LIMIT: usize = 25;
/// Largest page size.
pub const MAX_LIMIT: usize = 100;

/// A field value as seen by filters, sorts and indexes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v")]
pub enum Value {
    /// Absent value.
    Null,
    /// Boolean.
    Bool(bool),
    /// Integer.
    Int(i64),
    /// Text (compared case-insensitively).
    Text(String),
    /// Record id.
    Id(Uuid),
    /// Instant.
    Time(Timestamp),
    /// Calendar date (ISO `YYYY-MM-DD` when serialized, e.g. inside cursors).
    Date(#[serde(with = "crate::clock::iso_date")] Date),
    /// Several values (multi-valued fields such as tags); a filter matches if any element does.
    List(Vec<Value>),
}

impl Value {
    /// Total order used for sorting: values of one type compare naturally, text
    /// case-insensitively, and `Null` after everything.
    pub fn sort_cmp(&self, other: &Value) -> Ordering {
        use Value::*;
        match (self, other) {
            (Null, Null) => Ordering::Equal,
            (Null, _) => Ordering::Greater,
            (_, Null) => Ordering::Less,
            (Bool(a), Bool(b)) => a.cmp(b),
            (Int(a), Int(b)) => a.cmp(b),
            (Text(a), Text(b)) => cmp_text(a, b),
            (Id(a), Id(b)) => a.cmp(b),
            (Time(a), Time(b)) => a.cmp(b),
            (Date(a), Date(b)) => a.cmp(b),
            (List(a), List(b)) => a.len().cmp(&b.len()),
            (a, b) => a.type_rank().cmp(&b.type_rank()),
        }
    }

    fn type_rank(&self) -> u8 {
        match self {
            Value::Bool(_) => 1,
            Value::Int(_) => 2,
            Value::Time(_) => 3,
            Value::Date(_) => 4,
            Value::Id(_) => 5,
            Value::Text(_) => 6,
            Value::List(_) => 7,
            Value::Null => 255,
        }
    }

    /// Whether this value equals `other` for filtering (text case-insensitively; a list
    /// matches if any element does).
    pub fn filter_eq(&self, other: &Value) -> bool {
        match self {
            Value::List(items) => items.iter().any(|i| i.filter_eq(other)),
            _ => self.sort_cmp(other) == Ordering::Equal,
        }
    }
}

/// Case-insensitive text comparison (each char lowercased, then by code point): the order
/// [`crate::storage::kv::encode_value`] preserves.
pub fn cmp_text(a: &str, b: &str) -> Ordering {
    a.chars()
        .flat_map(char::to_lowercase)
        .cmp(b.chars().flat_map(char::to_lowercase))
}

/// The type of a filterable or sortable field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// `true`/`false`.
    Bool,
    /// Integer.
    Int,
    /// Text.
    Text,
    /// A record id (UUID).
    Id,
    /// RFC 3339 timestamp.
    Time,
    /// ISO date.
    Date,
    /// A consent purpose name (see [`crate::privacy::consent`]), filtered by the id that
    /// stands for it.
    Purpose,
}

/// What a field of an entity supports in list queries.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    /// Field name, as in the record's JSON.
    pub name: &'static str,
    /// Value type.
    pub ty: FieldType,
    /// Usable in filters.
    pub filter: bool,
    /// Usable as sort key.
    pub sort: bool,
    /// Multi-valued (a filter matches if any element equals the value).
    pub multi: bool,
}

impl FieldSpec {
    /// A field that can be filtered and sorted.
    pub const fn both(name: &'static str, ty: FieldType) -> Self {
        FieldSpec {
            name,
            ty,
            filter: true,
            sort: true,
            multi: false,
        }
    }
    /// A field that can only be filtered.
    pub const fn filter(name: &'static str, ty: FieldType) -> Self {
        FieldSpec {
            name,
            ty,
            filter: true,
            sort: false,
            multi: false,
        }
    }
    /// A multi-valued field that can be filtered (contains).
    pub const fn multi(name: &'static str, ty: FieldType) -> Self {
        FieldSpec {
            name,
            ty,
            filter: true,
            sort: false,
            multi: true,
        }
    }
    /// A field that can only be sorted.
    pub const fn sort(name: &'static str, ty: FieldType) -> Self {
        FieldSpec {
            name,
            ty,
            filter: false,
            sort: true,
            multi: false,
        }
    }

    /// Parses a filter value given as text (e.g. from a query string).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidQuery`] when the text is not a value of the field's type.
    pub fn parse_value(&self, raw: &str) -> Result<Value> {
        let bad = || Error::new(ErrorKind::InvalidQuery);
        if raw == "null" {
            return Ok(Value::Null);
        }
        Ok(match self.ty {
            FieldType::Bool => match raw {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(bad()),
            },
            FieldType::Int => Value::Int(raw.parse().map_err(|_| bad())?),
            FieldType::Text => {
                if raw.chars().count() > crate::validate::limits::SHORT_TEXT {
                    return Err(bad());
                }
                Value::Text(raw.to_string())
            }
            FieldType::Id => Value::Id(Uuid::parse_str(raw).map_err(|_| bad())?),
            FieldType::Time => Value::Time(Timestamp::parse_rfc3339(raw).ok_or_else(bad)?),
            // Exactly the form request bodies and responses use (YYYY-MM-DD).
            FieldType::Date => Value::Date(crate::clock::iso_date::parse(raw).ok_or_else(bad)?),
            FieldType::Purpose => Value::Id(purpose_id(raw).ok_or_else(bad)?),
        })
    }
}

/// A filter operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterOp {
    /// Equal (for multi-valued fields: contains).
    Eq(Value),
    /// Equal to one of the values.
    In(Vec<Value>),
    /// Greater than or equal (nulls never match).
    Gte(Value),
    /// Less than or equal (nulls never match).
    Lte(Value),
}

/// One filter of a list query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    /// Field name (one of the entity's filterable [`FieldSpec`]s).
    pub field: String,
    /// Operator and operand.
    pub op: FilterOp,
}

impl Filter {
    /// `field = value`.
    pub fn eq(field: &str, value: Value) -> Self {
        Filter {
            field: field.to_string(),
            op: FilterOp::Eq(value),
        }
    }

    /// Whether a record's value of the field satisfies the filter.
    pub fn matches(&self, actual: &Value) -> bool {
        match &self.op {
            FilterOp::Eq(v) => actual.filter_eq(v),
            FilterOp::In(vs) => vs.iter().any(|v| actual.filter_eq(v)),
            FilterOp::Gte(v) => {
                !matches!(actual, Value::Null) && actual.sort_cmp(v) != Ordering::Less
            }
            FilterOp::Lte(v) => {
                !matches!(actual, Value::Null) && actual.sort_cmp(v) != Ordering::Greater
            }
        }
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// A sort: one field, a direction, tie-broken by id in the same direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sort {
    /// Field name (one of the entity's sortable [`FieldSpec`]s).
    pub field: String,
    /// Direction.
    pub direction: Direction,
}

impl Sort {
    /// Ascending on `field`.
    pub fn asc(field: &str) -> Self {
        Sort {
            field: field.to_string(),
            direction: Direction::Asc,
        }
    }
    /// Descending on `field`.
    pub fn desc(field: &str) -> Self {
        Sort {
            field: field.to_string(),
            direction: Direction::Desc,
        }
    }

    /// Parses `field` or `-field` (descending).
    pub fn parse(s: &str) -> Self {
        match s.strip_prefix('-') {
            Some(f) => Sort::desc(f),
            None => Sort::asc(s),
        }
    }

    /// Compares two rows by (sort value, id) in this sort's direction.
    pub fn cmp_rows(&self, a: (&Value, Uuid), b: (&Value, Uuid)) -> Ordering {
        let o = a.0.sort_cmp(b.0).then(a.1.cmp(&b.1));
        match self.direction {
            Direction::Asc => o,
            Direction::Desc => o.reverse(),
        }
    }

    /// The position after `last` in this sort: where the page that ends with it resumes.
    pub fn cursor_after(&self, last: &crate::model::Record) -> Cursor {
        Cursor {
            field: self.field.clone(),
            direction: self.direction,
            value: last.field(&self.field),
            id: last.id(),
        }
    }
}

/// Which soft-deleted records a list includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deleted {
    /// Only live records (the default).
    #[default]
    Exclude,
    /// Only soft-deleted records (the trash).
    Only,
    /// Both.
    Include,
}

impl Deleted {
    /// Whether a record with this `deleted_at` belongs in the list.
    pub fn admits(self, deleted: bool) -> bool {
        match self {
            Deleted::Exclude => !deleted,
            Deleted::Only => deleted,
            Deleted::Include => true,
        }
    }
}

/// The position after the last row of a page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// Sort field the cursor was issued for.
    pub field: String,
    /// Direction it was issued for.
    pub direction: Direction,
    /// Sort value of the last row.
    pub value: Value,
    /// Id of the last row.
    pub id: Uuid,
}

impl Cursor {
    /// Encodes the cursor as an opaque URL-safe string.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Decodes a cursor and checks it belongs to `sort`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidCursor`] if it is malformed or was issued for another sort.
    pub fn decode(s: &str, sort: &Sort) -> Result<Self> {
        let bad = || Error::new(ErrorKind::InvalidCursor);
        if s.len() > 4096 {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if c.field != sort.field || c.direction != sort.direction {
            return Err(bad());
        }
        Ok(c)
    }

    /// Whether a row at (value, id) comes strictly after the cursor in `sort` order.
    pub fn is_before(&self, sort: &Sort, value: &Value, id: Uuid) -> bool {
        sort.cmp_rows((&self.value, self.id), (value, id)) == Ordering::Less
    }
}

/// A normalized full-text query: every term must match the record — as a prefix of one of its
/// words or, from [`crate::search::MIN_SUBSTRING`] chars, inside one of its contact points
/// (see [`crate::search`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchQuery {
    /// Normalized terms (see [`crate::search::tokenize`]); at least one.
    pub terms: Vec<String>,
}

/// What a storage backend is asked to list. Built and checked by the core.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// Filters, all of which must match (permission scopes included).
    pub filters: Vec<Filter>,
    /// Full-text query, if any.
    pub search: Option<SearchQuery>,
    /// Sort.
    pub sort: Sort,
    /// Start after this position.
    pub after: Option<Cursor>,
    /// At most this many rows (1..=`MAX_LIMIT` from the facade; stores accept any).
    pub limit: usize,
    /// Soft-delete handling.
    pub deleted: Deleted,
}

impl ListQuery {
    /// All live records sorted by `sort`, `limit` at a time.
    pub fn new(sort: Sort, limit: usize) -> Self {
        ListQuery {
            filters: Vec::new(),
            search: None,
            sort,
            after: None,
            limit,
            deleted: Deleted::Exclude,
        }
    }
}

/// A page of results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The rows.
    pub data: Vec<T>,
    /// Cursor of the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// What a host asks for when listing: all parts optional, parsed and checked by the core.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListParams {
    /// Filters as `(field, value)` pairs; a field suffixed `_gte` / `_lte` is a range bound,
    /// and a value with commas on an `Eq` filter means "one of".
    pub filters: Vec<(String, String)>,
    /// Full-text query.
    pub q: Option<String>,
    /// Sort field, `-field` for descending.
    pub sort: Option<String>,
    /// Page size (default 25, max 100).
    pub limit: Option<usize>,
    /// Cursor from a previous page.
    pub cursor: Option<String>,
    /// Soft-delete handling (listing the trash is for admins).
    pub deleted: Option<Deleted>,
}

impl ListParams {
    /// Empty parameters (defaults everywhere).
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a filter.
    pub fn filter(mut self, field: &str, value: impl ToString) -> Self {
        self.filters.push((field.to_string(), value.to_string()));
        self
    }
    /// Sets the full-text query.
    pub fn q(mut self, q: &str) -> Self {
        self.q = Some(q.to_string());
        self
    }
    /// Sets the sort (`field` or `-field`).
    pub fn sort(mut self, sort: &str) -> Self {
        self.sort = Some(sort.to_string());
        self
    }
    /// Sets the page size.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
    /// Sets the cursor.
    pub fn cursor(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }
    /// Sets the soft-delete handling.
    pub fn deleted(mut self, deleted: Deleted) -> Self {
        self.deleted = Some(deleted);
        self
    }
}

// Consent purposes as filter values (see [`crate::privacy::consent`]).

/// The longest purpose name.
pub const PURPOSE_MAX: usize = 22;

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_-.";

/// Whether `purpose` is a valid purpose name.
pub fn valid_purpose(purpose: &str) -> bool {
    (1..=PURPOSE_MAX).contains(&purpose.len()) && purpose.bytes().all(|b| ALPHABET.contains(&b))
}

/// The fixed id standing for a purpose in list filters: the name packed in base 40 (0 ends
/// it) into the 122 free bits of a version-8 UUID, so two purposes never share an id.
/// `None` for an invalid name.
pub fn purpose_id(purpose: &str) -> Option<Uuid> {
    if !valid_purpose(purpose) {
        return None;
    }
    let mut n: u128 = 0;
    for b in purpose.bytes() {
        let digit = ALPHABET.iter().position(|a| *a == b)? as u128 + 1;
        n = n * 40 + digit;
    }
    // 40^22 < 2^118: the value fits the 122 free bits around the version and variant.
    let mut bytes = [0u8; 16];
    // Layout: 48 bits | version 4 bits | 12 bits | variant 2 bits | 62 bits = 122 bits.
    let top48 = (n >> 74) as u64 & 0xFFFF_FFFF_FFFF;
    let mid12 = (n >> 62) as u64 & 0xFFF;
    let low62 = n as u64 & 0x3FFF_FFFF_FFFF_FFFF;
    bytes[..6].copy_from_slice(&top48.to_be_bytes()[2..]);
    let v = 0x8000 | mid12 as u16;
    bytes[6..8].copy_from_slice(&v.to_be_bytes());
    bytes[8..].copy_from_slice(&(low62 | 0x8000_0000_0000_0000).to_be_bytes());
    Some(Uuid::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_sorts_last_and_text_ignores_case() {
        assert_eq!(Value::Null.sort_cmp(&Value::Int(5)), Ordering::Greater);
        assert_eq!(
            Value::Text("b".into()).sort_cmp(&Value::Text("A".into())),
            Ordering::Greater
        );
        assert!(Value::Text("ACME".into()).filter_eq(&Value::Text("acme".into())));
    }

    #[test]
    fn cursor_round_trip_and_tampering() {
        let sort = Sort::desc("created_at");
        let c = Cursor {
            field: "created_at".into(),
            direction: Direction::Desc,
            value: Value::Int(3),
            id: Uuid::nil(),
        };
        let s = c.encode();
        assert_eq!(Cursor::decode(&s, &sort).unwrap(), c);
        assert_eq!(
            Cursor::decode(&s, &Sort::asc("created_at"))
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidCursor
        );
        assert_eq!(
            Cursor::decode("!!", &sort).unwrap_err().kind(),
            ErrorKind::InvalidCursor
        );
        assert_eq!(
            Cursor::decode("e30", &sort).unwrap_err().kind(),
            ErrorKind::InvalidCursor
        );
    }

    #[test]
    fn purpose_ids_are_distinct_versioned_and_stable() {
        let names = [
            "a",
            "b",
            "aa",
            "newsletter",
            "newsletter.",
            "marketing.email",
            "zzzzzzzzzzzzzzzzzzzzzz",
            "......................",
            ".....................",
            "0",
            "_",
        ];
        let ids: Vec<Uuid> = names.iter().map(|n| purpose_id(n).unwrap()).collect();
        for (i, a) in ids.iter().enumerate() {
            assert_eq!(a.get_version_num(), 8);
            assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
            for b in &ids[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(purpose_id("newsletter"), purpose_id("newsletter"));
        for bad in ["", "News", "a b", "ü", &"a".repeat(23)] {
            assert_eq!(purpose_id(bad), None, "{bad}");
        }
    }
}
