//! How records map to rows: table and column names, and the derived column values.
//!
//! The migrations (`migrations/*.sql`) create the tables; this module is the only place that
//! knows which columns a kind's table has. Both follow [`EntityKind::fields`]: one `k_<field>`
//! key column per single-valued field, one `m_<field>` member array per multi-valued field,
//! and `words`/`points` for the searchable kinds. A test checks the migrated database against
//! the model, so the two cannot drift apart silently.

use std::sync::OnceLock;

use crm_core::model::{EntityKind, Record};
use crm_core::query::Value;
use crm_core::storage::kv::encode_value;
use uuid::Uuid;

use crate::error::PgStoreError;

/// The table holding records of `kind`.
pub fn table(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Workspace => "crm_workspace",
        EntityKind::User => "crm_user",
        EntityKind::Company => "crm_company",
        EntityKind::Contact => "crm_contact",
        EntityKind::Deal => "crm_deal",
        EntityKind::Note => "crm_note",
        EntityKind::Task => "crm_task",
        EntityKind::Tag => "crm_tag",
        EntityKind::Configuration => "crm_configuration",
        EntityKind::Session => "crm_session",
        EntityKind::Credential => "crm_credential",
        EntityKind::ResetToken => "crm_reset_token",
    }
}

/// The column layout and prepared SQL texts of one kind's table.
#[derive(Debug)]
pub struct KindSql {
    /// Single-valued fields, in column order (`k_<field>`).
    pub key_fields: Vec<&'static str>,
    /// Multi-valued fields, in column order (`m_<field>`).
    pub member_fields: Vec<&'static str>,
    /// Number of columns (bind parameters per row).
    pub columns: usize,
    /// `INSERT ... ON CONFLICT DO NOTHING`, parameters in [`RowValues::bind`] order.
    pub insert: String,
    /// `UPDATE ... WHERE version = $last`, parameters in [`RowValues::bind`] order, then the
    /// expected version.
    pub update: String,
}

/// The layout of `kind`'s table (built once).
pub fn kind_sql(kind: EntityKind) -> &'static KindSql {
    static ALL: OnceLock<Vec<KindSql>> = OnceLock::new();
    let all = ALL.get_or_init(|| EntityKind::ALL.iter().map(|k| build(*k)).collect());
    let pos = EntityKind::ALL
        .iter()
        .position(|k| *k == kind)
        .expect("every kind is in EntityKind::ALL");
    &all[pos]
}

fn build(kind: EntityKind) -> KindSql {
    let key_fields: Vec<&'static str> = kind
        .fields()
        .iter()
        .filter(|f| !f.multi)
        .map(|f| f.name)
        .collect();
    let member_fields: Vec<&'static str> = kind
        .fields()
        .iter()
        .filter(|f| f.multi)
        .map(|f| f.name)
        .collect();
    let mut cols: Vec<String> = ["workspace_id", "id", "version", "deleted", "data"]
        .iter()
        .map(|c| c.to_string())
        .collect();
    cols.extend(key_fields.iter().map(|f| format!("k_{f}")));
    cols.extend(member_fields.iter().map(|f| format!("m_{f}")));
    if kind.searchable() {
        cols.push("words".into());
        cols.push("points".into());
    }
    let values: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| match c.as_str() {
            "data" => format!("${}::jsonb", i + 1),
            "words" => format!("array_to_tsvector(${}::text[])", i + 1),
            _ => format!("${}", i + 1),
        })
        .collect();
    let t = table(kind);
    let insert = format!(
        "INSERT INTO {t} ({}) VALUES ({}) ON CONFLICT (workspace_id, id) DO NOTHING",
        cols.join(", "),
        values.join(", ")
    );
    let sets: Vec<String> = cols
        .iter()
        .zip(&values)
        .skip(2)
        .map(|(c, v)| format!("{c} = {v}"))
        .collect();
    let update = format!(
        "UPDATE {t} SET {} WHERE workspace_id = $1 AND id = $2 AND version = ${}",
        sets.join(", "),
        cols.len() + 1
    );
    KindSql {
        key_fields,
        member_fields,
        columns: cols.len(),
        insert,
        update,
    }
}

impl KindSql {
    /// The `INSERT` of `n` rows at once (parameters: each row's in [`RowValues::bind`]
    /// order, one row after the other).
    pub fn insert_many(&self, n: usize) -> String {
        let (head, first) = self
            .insert
            .split_once(" VALUES (")
            .expect("the insert statement has a VALUES list");
        let (first, tail) = first
            .split_once(") ON CONFLICT")
            .expect("the insert statement ends with ON CONFLICT");
        let mut sql = format!("{head} VALUES ");
        for row in 0..n {
            if row > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            sql.push_str(&renumber(first, row * self.columns));
            sql.push(')');
        }
        sql.push_str(" ON CONFLICT");
        sql.push_str(tail);
        sql
    }
}

/// `$k` placeholders shifted by `offset`.
fn renumber(values: &str, offset: usize) -> String {
    let mut out = String::with_capacity(values.len() + 8);
    let mut chars = values.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '$' {
            let mut n = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                n.push(*d);
                chars.next();
            }
            let k: usize = n.parse().unwrap_or(0);
            out.push_str(&(k + offset).to_string());
        }
    }
    out
}

/// Every column value of a record's row, computed from the record.
pub struct RowValues {
    workspace_id: Uuid,
    id: Uuid,
    version: i64,
    deleted: bool,
    data: String,
    keys: Vec<Vec<u8>>,
    members: Vec<Vec<Uuid>>,
    search: Option<(Vec<String>, String)>,
}

impl RowValues {
    /// The row of `record`.
    ///
    /// # Errors
    /// [`PgStoreError::Encode`] if the record does not serialize.
    pub fn of(record: &Record) -> Result<Self, PgStoreError> {
        let kind = record.kind();
        let layout = kind_sql(kind);
        let data = record
            .to_json_bytes()
            .map_err(|source| PgStoreError::Encode {
                what: kind.noun(),
                source,
            })?;
        // serde_json only produces UTF-8.
        let data = String::from_utf8(data).unwrap_or_default();
        let keys = layout
            .key_fields
            .iter()
            .map(|f| encode_key(&record.field(f)))
            .collect();
        let members = layout
            .member_fields
            .iter()
            .map(|f| member_ids(&record.field(f)))
            .collect();
        let search = kind.searchable().then(|| {
            let words = crm_core::search::tokens_of(record);
            let points = crm_core::search::contact_points_of(record).join(" ");
            (words, points)
        });
        Ok(RowValues {
            workspace_id: record.workspace_id().uuid(),
            id: record.id(),
            version: i64::try_from(record.version()).unwrap_or(i64::MAX),
            deleted: record.is_deleted(),
            data,
            keys,
            members,
            search,
        })
    }

    /// Binds every column, in the order of [`KindSql::insert`] and [`KindSql::update`].
    pub fn bind<'q>(
        &'q self,
        mut q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        q = q
            .bind(self.workspace_id)
            .bind(self.id)
            .bind(self.version)
            .bind(self.deleted)
            .bind(self.data.as_str());
        for k in &self.keys {
            q = q.bind(k.as_slice());
        }
        for m in &self.members {
            q = q.bind(m.as_slice());
        }
        if let Some((words, points)) = &self.search {
            q = q.bind(words.as_slice()).bind(points.as_str());
        }
        q
    }
}

/// The key column value of a field value: its order-preserving encoding.
pub fn encode_key(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    encode_value(v, &mut out);
    out
}

/// The encoding of `Null`: the greatest key, which filters on ranges exclude.
pub const NULL_KEY: &[u8] = &[0xFF];

/// The ids of a multi-valued field.
pub fn member_ids(v: &Value) -> Vec<Uuid> {
    match v {
        Value::List(items) => items
            .iter()
            .filter_map(|i| match i {
                Value::Id(id) => Some(*id),
                _ => None,
            })
            .collect(),
        Value::Id(id) => vec![*id],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_bind_every_column_once() {
        for kind in EntityKind::ALL {
            let s = kind_sql(kind);
            let cols = 5
                + s.key_fields.len()
                + s.member_fields.len()
                + if kind.searchable() { 2 } else { 0 };
            assert!(s.insert.contains(&format!("${cols})")), "{}", s.insert);
            assert!(!s.insert.contains(&format!("${}", cols + 1)));
            assert!(s.update.ends_with(&format!("version = ${}", cols + 1)));
        }
        assert!(kind_sql(EntityKind::Contact).insert.contains("m_tags"));
        let two = kind_sql(EntityKind::Tag).insert_many(2);
        assert!(two.contains("($1, $2, $3, $4, $5::jsonb, $6, $7, $8), ($9, $10, $11, $12, $13::jsonb, $14, $15, $16) ON CONFLICT"), "{two}");
        assert!(kind_sql(EntityKind::Deal).update.contains("k_index = $"));
    }
}
