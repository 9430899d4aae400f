//! What the model says about each [`EntityKind`]: its filterable and sortable fields, its
//! default sort and the indexes an ordered store keeps — and the check of a host's
//! [`ListParams`] against them.

use crate::error::{Error, ErrorKind, Result};
use crate::kind::EntityKind;
use crate::query::{
    Cursor, DEFAULT_LIMIT, FieldSpec, FieldType, Filter, FilterOp, ListParams, ListQuery,
    MAX_LIMIT, SearchQuery, Sort,
};

use FieldType as T;

const COMMON_SORTS: [FieldSpec; 2] = [
    FieldSpec::both("created_at", T::Time),
    FieldSpec::both("updated_at", T::Time),
];

impl EntityKind {
    /// The fields usable in filters and sorts.
    pub fn fields(self) -> &'static [FieldSpec] {
        const USER: &[FieldSpec] = &[
            COMMON_SORTS[0],
            COMMON_SORTS[1],
            FieldSpec::both("email", T::Text),
            FieldSpec::both("first_name", T::Text),
            FieldSpec::both("last_name", T::Text),
            FieldSpec::filter("role", T::Text),
            FieldSpec::filter("disabled", T::Bool),
        ];
        const COMPANY: &[FieldSpec] = &[
            COMMON_SORTS[0],
            COMMON_SORTS[1],
            FieldSpec::both("name", T::Text),
            FieldSpec::filter("sector", T::Text),
            FieldSpec::filter("size", T::Int),
            FieldSpec::filter("city", T::Text),
            FieldSpec::filter("country", T::Text),
            FieldSpec::filter("sales_id", T::Id),
        ];
        const CONTACT: &[FieldSpec] = &[
            COMMON_SORTS[0],
            COMMON_SORTS[1],
            FieldSpec::both("first_name", T::Text),
            FieldSpec::both("last_name", T::Text),
            FieldSpec::both("last_seen", T::Time),
            FieldSpec::filter("company_id", T::Id),
            FieldSpec::filter("sales_id", T::Id),
            FieldSpec::filter("status", T::Text),
            FieldSpec::filter("has_newsletter", T::Bool),
            FieldSpec::multi("tags", T::Id),
        ];
        const DEAL: &[FieldSpec] = &[
            COMMON_SORTS[0],
            COMMON_SORTS[1],
            FieldSpec::both("name", T::Text),
            FieldSpec::both("amount", T::Int),
            FieldSpec::both("expected_closing_date", T::Date),
            FieldSpec::both("index", T::Int),
            FieldSpec::filter("stage", T::Text),
            FieldSpec::filter("category", T::Text),
            FieldSpec::filter("company_id", T::Id),
            FieldSpec::filter("sales_id", T::Id),
            FieldSpec::filter("archived", T::Bool),
            FieldSpec::multi("contact_ids", T::Id),
        ];
        const NOTE: &[FieldSpec] = &[
            COMMON_SORTS[0],
            COMMON_SORTS[1],
            FieldSpec::both("date", T::Time),
            FieldSpec::filter("contact_id", T::Id),
            FieldSpec::filter("deal_id", T::Id),
            FieldSpec::filter("sales_id", T::Id),
        ];
        const TASK: &[FieldSpec] = &[
            COMMON_SORTS[0],
            COMMON_SORTS[1],
            FieldSpec::both("due_date", T::Date),
            FieldSpec::filter("owner_id", T::Id),
            FieldSpec::filter("completed", T::Bool),
            FieldSpec::filter("type", T::Text),
            FieldSpec::filter("priority", T::Text),
            FieldSpec::filter("contact_id", T::Id),
            FieldSpec::filter("deal_id", T::Id),
            FieldSpec::filter("company_id", T::Id),
        ];
        const TAG: &[FieldSpec] = &[
            COMMON_SORTS[0],
            COMMON_SORTS[1],
            FieldSpec::both("name", T::Text),
        ];
        const OTHER: &[FieldSpec] = &[COMMON_SORTS[0], COMMON_SORTS[1]];
        const BY_USER: &[FieldSpec] = &[
            COMMON_SORTS[0],
            COMMON_SORTS[1],
            FieldSpec::filter("user_id", T::Id),
        ];
        match self {
            EntityKind::User => USER,
            EntityKind::Company => COMPANY,
            EntityKind::Contact => CONTACT,
            EntityKind::Deal => DEAL,
            EntityKind::Note => NOTE,
            EntityKind::Task => TASK,
            EntityKind::Tag => TAG,
            EntityKind::Workspace | EntityKind::Configuration | EntityKind::Credential => OTHER,
            EntityKind::Session | EntityKind::ResetToken => BY_USER,
        }
    }

    /// The sort used when a list names none.
    pub fn default_sort(self) -> Sort {
        match self {
            EntityKind::Company | EntityKind::Tag => Sort::asc("name"),
            EntityKind::Contact => Sort::desc("last_seen"),
            EntityKind::User => Sort::asc("email"),
            EntityKind::Note => Sort::desc("date"),
            EntityKind::Task => Sort::asc("due_date"),
            _ => Sort::desc("created_at"),
        }
    }

    /// Secondary indexes an ordered key/value store should keep: each is a list of fields,
    /// the leading ones matched by equality filters and the last one the sort key (rows are
    /// ordered by it, then by id). Every sortable field has a one-field index, so every sort
    /// can be served by an index; the composite ones serve the common filtered lists.
    pub fn indexes(self) -> &'static [&'static [&'static str]] {
        match self {
            EntityKind::User => &[
                &["created_at"],
                &["updated_at"],
                &["email"],
                &["first_name"],
                &["last_name"],
            ],
            EntityKind::Company => &[
                &["created_at"],
                &["updated_at"],
                &["name"],
                &["sales_id", "name"],
            ],
            EntityKind::Contact => &[
                &["created_at"],
                &["updated_at"],
                &["first_name"],
                &["last_name"],
                &["last_seen"],
                &["company_id", "last_seen"],
                &["sales_id", "last_seen"],
                &["tags", "last_seen"],
            ],
            EntityKind::Deal => &[
                &["created_at"],
                &["updated_at"],
                &["name"],
                &["amount"],
                &["expected_closing_date"],
                &["index"],
                &["stage", "index"],
                &["company_id", "created_at"],
                &["contact_ids", "created_at"],
            ],
            EntityKind::Note => &[
                &["created_at"],
                &["updated_at"],
                &["date"],
                &["contact_id", "date"],
                &["deal_id", "date"],
            ],
            EntityKind::Task => &[
                &["created_at"],
                &["updated_at"],
                &["due_date"],
                &["owner_id", "created_at"],
                &["owner_id", "updated_at"],
                &["owner_id", "due_date"],
                &["contact_id", "due_date"],
                &["deal_id", "due_date"],
                &["company_id", "due_date"],
            ],
            EntityKind::Tag => &[&["created_at"], &["updated_at"], &["name"]],
            EntityKind::Workspace | EntityKind::Configuration | EntityKind::Credential => {
                &[&["created_at"], &["updated_at"]]
            }
            EntityKind::Session | EntityKind::ResetToken => {
                &[&["created_at"], &["updated_at"], &["user_id", "created_at"]]
            }
        }
    }
}

impl ListParams {
    /// Checks the parameters against the entity's fields and builds a [`ListQuery`].
    ///
    /// # Errors
    /// [`ErrorKind::InvalidQuery`] for unknown fields, bad values or a page size outside
    /// 1..=100; [`ErrorKind::InvalidCursor`] for a bad cursor.
    pub fn to_query(&self, kind: EntityKind) -> Result<ListQuery> {
        let bad = || {
            Error::new(ErrorKind::InvalidQuery).with_context(crate::error::Operation::List, kind)
        };
        let specs = kind.fields();
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(bad());
        }
        if self.filters.len() > 20 {
            return Err(bad());
        }
        let sort = match &self.sort {
            Some(s) => Sort::parse(s),
            None => kind.default_sort(),
        };
        if !specs.iter().any(|f| f.sort && f.name == sort.field) {
            return Err(bad());
        }
        let mut filters = Vec::with_capacity(self.filters.len());
        for (name, raw) in &self.filters {
            let (base, op) = if let Some(b) = name.strip_suffix("_gte") {
                (b, "gte")
            } else if let Some(b) = name.strip_suffix("_lte") {
                (b, "lte")
            } else {
                (name.as_str(), "eq")
            };
            let spec = specs
                .iter()
                .find(|f| f.filter && f.name == base)
                .ok_or_else(bad)?;
            let op = match op {
                "gte" if !spec.multi => FilterOp::Gte(spec.parse_value(raw)?),
                "lte" if !spec.multi => FilterOp::Lte(spec.parse_value(raw)?),
                "eq" if raw.contains(',') => {
                    let vs = raw
                        .split(',')
                        .map(|r| spec.parse_value(r))
                        .collect::<Result<Vec<_>>>()?;
                    if vs.len() > MAX_LIMIT {
                        return Err(bad());
                    }
                    FilterOp::In(vs)
                }
                "eq" => FilterOp::Eq(spec.parse_value(raw)?),
                _ => return Err(bad()),
            };
            filters.push(Filter {
                field: spec.name.to_string(),
                op,
            });
        }
        let search = match &self.q {
            Some(q) => {
                if q.chars().count() > 200 {
                    return Err(bad());
                }
                let terms = crate::search::query_terms(q);
                if terms.is_empty() {
                    None
                } else {
                    Some(SearchQuery { terms })
                }
            }
            None => None,
        };
        let after = match &self.cursor {
            Some(c) => Some(
                Cursor::decode(c, &sort)
                    .map_err(|e| e.with_context(crate::error::Operation::List, kind))?,
            ),
            None => None,
        };
        Ok(ListQuery {
            filters,
            search,
            sort,
            after,
            limit,
            deleted: self.deleted.unwrap_or_default(),
        })
    }
}
