//! The read paths: single records, lists (filters, sorts, keyset paging, search), unique
//! lookups and the audit log. Every statement is scoped by `workspace_id` first and every
//! value is a bind parameter; SQL text only ever contains this crate's own table and column
//! names.

use std::collections::HashMap;

use crm_core::audit::{AuditAction, AuditEntry, AuditQuery};
use crm_core::model::{EntityKind, Record};
use crm_core::query::{Deleted, Direction, FilterOp, ListQuery, Value};
use crm_core::search::is_substring_term;
use crm_core::{Error, ErrorKind, Result};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgPool, Postgres, Row};
use uuid::Uuid;

use crate::error::{PgStoreError, db};
use crate::schema::{NULL_KEY, encode_key, kind_sql, member_ids, table};

fn decode(kind: EntityKind, row: &PgRow) -> Result<Record> {
    let data: &str = row.try_get(0).map_err(db)?;
    Record::from_json_bytes(kind, data.as_bytes()).map_err(|source| {
        PgStoreError::Decode {
            what: kind.noun(),
            source,
        }
        .into()
    })
}

/// [`crm_core::Storage::get`].
pub(crate) async fn get(
    pool: &PgPool,
    ws: Uuid,
    kind: EntityKind,
    id: Uuid,
) -> Result<Option<Record>> {
    let sql = format!(
        "SELECT data::text FROM {} WHERE workspace_id = $1 AND id = $2",
        table(kind)
    );
    let row = sqlx::query(&sql)
        .bind(ws)
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(db)?;
    row.map(|r| decode(kind, &r)).transpose()
}

/// [`crm_core::Storage::get_many`].
pub(crate) async fn get_many(
    pool: &PgPool,
    ws: Uuid,
    kind: EntityKind,
    ids: &[Uuid],
) -> Result<Vec<Record>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT data::text FROM {} WHERE workspace_id = $1 AND id = ANY($2)",
        table(kind)
    );
    let rows = sqlx::query(&sql)
        .bind(ws)
        .bind(ids)
        .fetch_all(pool)
        .await
        .map_err(db)?;
    let mut found = HashMap::with_capacity(rows.len());
    for r in &rows {
        let rec = decode(kind, r)?;
        found.insert(rec.id(), rec);
    }
    Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
}

/// [`crm_core::Storage::find_unique`].
pub(crate) async fn find_unique(
    pool: &PgPool,
    ws: Uuid,
    kind: EntityKind,
    key: &str,
    value: &str,
) -> Result<Option<Record>> {
    let sql = format!(
        "SELECT r.data::text FROM crm_unique u JOIN {} r \
         ON r.workspace_id = u.workspace_id AND r.id = u.record_id \
         WHERE u.workspace_id = $1 AND u.kind = $2 AND u.name = $3 AND u.value = $4",
        table(kind)
    );
    let row = sqlx::query(&sql)
        .bind(ws)
        .bind(i16::from(kind.tag()))
        .bind(key)
        .bind(value)
        .fetch_optional(pool)
        .await
        .map_err(db)?;
    row.map(|r| decode(kind, &r)).transpose()
}

/// One bind parameter of a dynamically built statement.
#[derive(Debug, Clone)]
pub(crate) enum Param {
    Uuid(Uuid),
    Uuids(Vec<Uuid>),
    Bytes(Vec<u8>),
    BytesList(Vec<Vec<u8>>),
    Text(String),
    Texts(Vec<String>),
    SmallInts(Vec<i16>),
    Int(i64),
}

/// A statement under construction: SQL text plus its parameters, numbered as pushed.
#[derive(Debug, Default)]
pub(crate) struct Statement {
    pub(crate) sql: String,
    pub(crate) params: Vec<Param>,
    /// For searches: the windowed statements tried first.
    pub(crate) window: Option<Window>,
}

impl Statement {
    /// Adds a parameter and returns its placeholder (`$n`).
    pub(crate) fn param(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.params.len())
    }

    /// The statement with its parameters bound.
    pub(crate) fn query(&self) -> Query<'_, Postgres, PgArguments> {
        self.query_text(&self.sql)
    }

    /// Another SQL text taking the same parameters, with them bound.
    pub(crate) fn query_text<'s>(&'s self, sql: &'s str) -> Query<'s, Postgres, PgArguments> {
        let mut q = sqlx::query(sql);
        for p in &self.params {
            q = match p {
                Param::Uuid(v) => q.bind(*v),
                Param::Uuids(v) => q.bind(v.as_slice()),
                Param::Bytes(v) => q.bind(v.as_slice()),
                Param::BytesList(v) => q.bind(v.as_slice()),
                Param::Text(v) => q.bind(v.as_str()),
                Param::Texts(v) => q.bind(v.as_slice()),
                Param::SmallInts(v) => q.bind(v.as_slice()),
                Param::Int(v) => q.bind(*v),
            };
        }
        q
    }
}

/// The `SELECT` serving a list query (public within the crate for the `EXPLAIN` tests).
///
/// Filters become conditions on the `k_`/`m_` columns, compared as encoded keys so that the
/// semantics are the core's exactly (text case-insensitive, `Null` greatest and never in a
/// range). The sort is `ORDER BY k_<sort>, id` in the query's direction, and the cursor a
/// row comparison `(k_<sort>, id) > (value, id)`, which the `(workspace_id, [equality
/// fields,] k_<sort>, id)` indexes serve as a range scan: page 1,000 costs what page 1 costs.
/// Search terms become GIN prefix matches on `words` (`'term':*`) or, for terms of at least
/// [`MIN_SUBSTRING`](crm_core::search::MIN_SUBSTRING) chars, that or a trigram `points LIKE
/// '%term%'`, written in disjunctive form so that PostgreSQL can combine the bitmaps; nothing
/// ranks or counts the matches. How a search runs is explained at [`list`].
///
/// # Errors
/// `InvalidQuery` for a filter or sort on a field the kind does not have (the core checks
/// queries first; this is the store refusing to guess).
pub(crate) fn list_statement(ws: Uuid, kind: EntityKind, query: &ListQuery) -> Result<Statement> {
    let layout = kind_sql(kind);
    let key_col = |field: &str| -> Result<String> {
        layout
            .key_fields
            .iter()
            .find(|f| **f == field)
            .map(|f| format!("k_{f}"))
            .ok_or_else(|| Error::new(ErrorKind::InvalidQuery))
    };
    let mut st = Statement::default();
    let mut conds = vec![format!("workspace_id = {}", st.param(Param::Uuid(ws)))];
    match query.deleted {
        Deleted::Exclude => conds.push("NOT deleted".into()),
        Deleted::Only => conds.push("deleted".into()),
        Deleted::Include => {}
    }
    for f in &query.filters {
        if let Some(m) = layout.member_fields.iter().find(|m| **m == f.field) {
            let col = format!("m_{m}");
            conds.push(match &f.op {
                FilterOp::Eq(v) => {
                    let ids = member_ids(v);
                    if ids.len() == 1 && matches!(v, Value::Id(_)) {
                        format!("{col} @> {}", st.param(Param::Uuids(ids)))
                    } else {
                        "false".into()
                    }
                }
                FilterOp::In(vs) => {
                    let ids: Vec<Uuid> = vs.iter().flat_map(member_ids).collect();
                    format!("{col} && {}", st.param(Param::Uuids(ids)))
                }
                // A list compares greater than any scalar (Value::sort_cmp).
                FilterOp::Gte(_) => "true".into(),
                FilterOp::Lte(_) => "false".into(),
            });
            continue;
        }
        let col = key_col(&f.field)?;
        conds.push(match &f.op {
            FilterOp::Eq(Value::List(_)) => "false".into(),
            FilterOp::Eq(v) => format!("{col} = {}", st.param(Param::Bytes(encode_key(v)))),
            FilterOp::In(vs) => format!(
                "{col} = ANY({})",
                st.param(Param::BytesList(vs.iter().map(encode_key).collect()))
            ),
            FilterOp::Gte(v) => format!(
                "{col} >= {} AND {col} <> {}",
                st.param(Param::Bytes(encode_key(v))),
                st.param(Param::Bytes(NULL_KEY.to_vec()))
            ),
            FilterOp::Lte(v) => format!(
                "{col} <= {} AND {col} <> {}",
                st.param(Param::Bytes(encode_key(v))),
                st.param(Param::Bytes(NULL_KEY.to_vec()))
            ),
        });
    }
    let mut search_conds = Vec::new();
    let mut search_params = Vec::new();
    if let Some(search) = &query.search {
        if !kind.searchable() {
            return Err(Error::new(ErrorKind::InvalidQuery));
        }
        let (short, long): (Vec<&String>, Vec<&String>) =
            search.terms.iter().partition(|t| !is_substring_term(t));
        let likes: Vec<String> = long
            .iter()
            .map(|t| st.param(Param::Text(format!("%{}%", escape_like(t)))))
            .collect();
        search_params.extend(likes.iter().cloned());
        let mut words_query = |terms: Vec<&String>, st: &mut Statement| {
            let tsq = terms
                .iter()
                .map(|t| prefix_lexeme(t))
                .collect::<Vec<_>>()
                .join(" & ");
            let p = st.param(Param::Text(tsq));
            search_params.push(p.clone());
            format!("words @@ {p}::tsquery")
        };
        if long.len() <= MAX_EXPANDED_TERMS {
            // Disjunctive form: one disjunct per choice of which long terms match inside a
            // contact point; the others, with the short terms, make one tsquery. PostgreSQL
            // then combines the GIN and trigram bitmaps (a conjunction of ORs it would
            // rather filter row by row).
            let mut disjuncts = Vec::new();
            for mask in 0..(1_usize << long.len()) {
                let mut parts = Vec::new();
                let as_words: Vec<&String> = short
                    .iter()
                    .copied()
                    .chain(
                        long.iter()
                            .enumerate()
                            .filter(|(i, _)| mask & (1 << i) == 0)
                            .map(|(_, t)| *t),
                    )
                    .collect();
                if !as_words.is_empty() {
                    parts.push(words_query(as_words, &mut st));
                }
                for (i, like) in likes.iter().enumerate() {
                    if mask & (1 << i) != 0 {
                        parts.push(format!("points LIKE {like}"));
                    }
                }
                disjuncts.push(format!("({})", parts.join(" AND ")));
            }
            search_conds.push(format!("({})", disjuncts.join(" OR ")));
        } else {
            if !short.is_empty() {
                search_conds.push(words_query(short.clone(), &mut st));
            }
            for (t, like) in long.iter().zip(&likes) {
                let w = words_query(vec![*t], &mut st);
                search_conds.push(format!("({w} OR points LIKE {like})"));
            }
        }
    }
    let sort_col = key_col(&query.sort.field)?;
    let (dir, cmp) = match query.sort.direction {
        Direction::Asc => ("ASC", ">"),
        Direction::Desc => ("DESC", "<"),
    };
    if let Some(c) = &query.after {
        conds.push(format!(
            "({sort_col}, id) {cmp} ({}, {})",
            st.param(Param::Bytes(encode_key(&c.value))),
            st.param(Param::Uuid(c.id))
        ));
    }
    let limit = st.param(Param::Int(i64::try_from(query.limit).unwrap_or(i64::MAX)));
    let t = table(kind);
    let order = format!("ORDER BY {sort_col} {dir}, id {dir}");
    let all_conds = conds
        .iter()
        .chain(&search_conds)
        .cloned()
        .collect::<Vec<_>>()
        .join(" AND ");
    st.sql = format!("SELECT data::text FROM {t} WHERE {all_conds} {order} LIMIT {limit}");
    if !search_conds.is_empty() {
        let conds = conds.join(" AND ");
        let search = search_conds.join(" AND ");
        st.window = Some(Window {
            sql: format!(
                "SELECT data::text FROM (SELECT data, words, points, {sort_col}, id FROM {t} \
                 WHERE {conds} {order} LIMIT {SEARCH_WINDOW}) AS w \
                 WHERE {search} {order} LIMIT {limit}"
            ),
            exhausted_sql: format!(
                "SELECT count(*) < {SEARCH_WINDOW} FROM (SELECT 1 FROM {t} WHERE {conds} \
                 {order} LIMIT {SEARCH_WINDOW}) AS w \
                 WHERE {limit}::bigint IS NOT NULL AND {search_params_used}",
                search_params_used = search_params
                    .iter()
                    .map(|p| format!("{p}::text IS NOT NULL"))
                    .collect::<Vec<_>>()
                    .join(" AND ")
            ),
        });
    }
    Ok(st)
}

/// Up to this many terms of [`MIN_SUBSTRING`](crm_core::search::MIN_SUBSTRING)+ chars, a
/// search condition is written in disjunctive form (2^n disjuncts); beyond, as a conjunction.
const MAX_EXPANDED_TERMS: usize = 3;

/// Rows of the sort order a search first looks through (see [`list`]).
pub(crate) const SEARCH_WINDOW: usize = 2_048;

/// The two extra statements of a search (see [`list`]); they take the same parameters as the
/// main statement.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    /// The matches among the first [`SEARCH_WINDOW`] rows of the sort order.
    pub(crate) sql: String,
    /// Whether the sort order has fewer than [`SEARCH_WINDOW`] rows (then the window was
    /// everything, and its matches are all the matches).
    pub(crate) exhausted_sql: String,
}

/// `'term':*` — a quoted tsquery lexeme matched as a prefix. Terms are runs of letters and
/// digits; quotes and backslashes are escaped all the same.
fn prefix_lexeme(term: &str) -> String {
    let escaped = term.replace('\\', "\\\\").replace('\'', "''");
    format!("'{escaped}':*")
}

/// Escapes `LIKE` wildcards (the default escape character is `\`).
fn escape_like(term: &str) -> String {
    let mut out = String::with_capacity(term.len());
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// [`crm_core::Storage::list`].
///
/// A search cannot rely on the planner alone: PostgreSQL estimates a word it has no
/// statistics for (a rare name, an email part) at 0.5% of the rows, and may then walk the
/// sort index through all of them looking for matches that are not there. So a search runs
/// in up to three steps, each bounded:
///
/// 1. the matches among the first [`SEARCH_WINDOW`] rows of the sort order (a walk that stops
///    as soon as the page is full: dense matches, such as a one-letter prefix, end here);
/// 2. if the page is not full, whether those rows were all there is (then it is complete);
/// 3. otherwise the matches are sparse (under `limit` in [`SEARCH_WINDOW`] rows): they are
///    collected from the GIN/trigram indexes (plain index walks and sequential scans turned
///    off for this one statement) and sorted.
pub(crate) async fn list(
    pool: &PgPool,
    ws: Uuid,
    kind: EntityKind,
    query: &ListQuery,
) -> Result<Vec<Record>> {
    if query.limit == 0 {
        return Ok(Vec::new());
    }
    let st = list_statement(ws, kind, query)?;
    let rows = match &st.window {
        None => st.query().fetch_all(pool).await.map_err(db)?,
        Some(window) => {
            let rows = st
                .query_text(&window.sql)
                .fetch_all(pool)
                .await
                .map_err(db)?;
            if rows.len() >= query.limit {
                rows
            } else {
                let exhausted: bool = st
                    .query_text(&window.exhausted_sql)
                    .fetch_one(pool)
                    .await
                    .and_then(|r| r.try_get(0))
                    .map_err(db)?;
                if exhausted {
                    rows
                } else {
                    let mut tx = pool.begin().await.map_err(db)?;
                    sqlx::query("SET LOCAL enable_indexscan = off")
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    sqlx::query("SET LOCAL enable_seqscan = off")
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    let rows = st.query().fetch_all(&mut *tx).await.map_err(db)?;
                    tx.commit().await.map_err(db)?;
                    rows
                }
            }
        }
    };
    rows.iter().map(|r| decode(kind, r)).collect()
}

/// The stored name of an audit action (its serde name).
pub(crate) fn action_name(action: AuditAction) -> String {
    match serde_json::to_value(action) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{action:?}"),
    }
}

/// The `SELECT` serving an audit query (newest first, keyset on the time-ordered id).
pub(crate) fn audit_statement(ws: Uuid, query: &AuditQuery) -> Statement {
    let mut st = Statement::default();
    let mut conds = vec![format!("workspace_id = {}", st.param(Param::Uuid(ws)))];
    if let Some(r) = query.record_id {
        conds.push(format!("record_id = {}", st.param(Param::Uuid(r))));
    }
    if let Some(a) = query.actor_id {
        conds.push(format!(
            "(data->>'actor_id') = {}",
            st.param(Param::Text(a.uuid().to_string()))
        ));
    }
    if !query.entities.is_empty() {
        let tags = query.entities.iter().map(|e| i16::from(e.tag())).collect();
        conds.push(format!(
            "entity = ANY({})",
            st.param(Param::SmallInts(tags))
        ));
    }
    if !query.actions.is_empty() {
        let names = query.actions.iter().map(|a| action_name(*a)).collect();
        conds.push(format!("action = ANY({})", st.param(Param::Texts(names))));
    }
    if let Some(before) = query.before {
        conds.push(format!("id < {}", st.param(Param::Uuid(before.uuid()))));
    }
    let limit = query.limit.unwrap_or(crm_core::query::DEFAULT_LIMIT);
    let limit = st.param(Param::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
    st.sql = format!(
        "SELECT data::text FROM crm_audit WHERE {} ORDER BY id DESC LIMIT {limit}",
        conds.join(" AND ")
    );
    st
}

/// [`crm_core::Storage::audit`].
pub(crate) async fn audit(pool: &PgPool, ws: Uuid, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
    let st = audit_statement(ws, query);
    let rows = st.query().fetch_all(pool).await.map_err(db)?;
    rows.iter()
        .map(|r| {
            let data: &str = r.try_get(0).map_err(db)?;
            serde_json::from_str(data).map_err(|source| {
                PgStoreError::Decode {
                    what: "audit entry",
                    source,
                }
                .into()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexemes_and_patterns_are_quoted() {
        assert_eq!(prefix_lexeme("smi"), "'smi':*");
        assert_eq!(prefix_lexeme("o'n"), "'o''n':*");
        assert_eq!(escape_like("a%b_c\\"), "a\\%b\\_c\\\\");
    }

    #[test]
    fn search_conditions_are_disjunctive_over_substring_terms() {
        let mut q = ListQuery::new(crm_core::query::Sort::asc("last_name"), 10);
        q.search = Some(crm_core::query::SearchQuery {
            terms: vec!["ab".into(), "cde".into()],
        });
        let st = list_statement(Uuid::nil(), EntityKind::Contact, &q).unwrap();
        // ab & cde as words, or ab as a word with cde inside a contact point.
        assert!(
            st.sql
                .contains("((words @@ $3::tsquery) OR (words @@ $4::tsquery AND points LIKE $2))"),
            "{}",
            st.sql
        );
        let texts: Vec<&str> = st
            .params
            .iter()
            .filter_map(|p| match p {
                Param::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["%cde%", "'ab':* & 'cde':*", "'ab':*"]);
        let w = st.window.as_ref().unwrap();
        for n in 1..=st.params.len() {
            let p = format!("${n}");
            assert!(w.sql.contains(&p) && w.exhausted_sql.contains(&p), "{p}");
        }
    }

    #[test]
    fn unknown_fields_are_refused_not_interpolated() {
        let mut q = ListQuery::new(crm_core::query::Sort::asc("name; DROP TABLE x"), 10);
        let e = list_statement(Uuid::nil(), EntityKind::Company, &q).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidQuery);
        q.sort = crm_core::query::Sort::asc("name");
        let st = list_statement(Uuid::nil(), EntityKind::Company, &q).unwrap();
        assert!(st.sql.contains("ORDER BY k_name ASC, id ASC"), "{}", st.sql);
    }
}
