//! What the model says about each [`EntityKind`]: its filterable and sortable fields, its
//! default sort and the indexes an ordered store keeps — and the check of a host's
//! [`ListParams`] against them.

use std::sync::OnceLock;

use super::{Declaration, FieldDef, Record};
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
    /// The declaration of the kind's record type: its fields and their properties.
    pub fn declaration(self) -> &'static Declaration {
        Record::declaration_of(self)
    }

    /// The fields usable in filters and sorts: `created_at` and `updated_at`, then each
    /// declared field's ([`FieldDef::query`]), in declaration order.
    pub fn fields(self) -> &'static [FieldSpec] {
        static FIELDS: OnceLock<Vec<Vec<FieldSpec>>> = OnceLock::new();
        let all = FIELDS.get_or_init(|| {
            EntityKind::ALL
                .iter()
                .map(|k| {
                    let mut specs = COMMON_SORTS.to_vec();
                    specs.extend(k.declaration().fields.iter().filter_map(|f| f.query));
                    specs
                })
                .collect()
        });
        let pos = EntityKind::ALL
            .iter()
            .position(|k| *k == self)
            .unwrap_or_default();
        &all[pos]
    }

    /// The fields holding personal data (what a data-subject export gathers and an erasure
    /// clears), in declaration order.
    pub fn personal_data_fields(self) -> impl Iterator<Item = &'static FieldDef> {
        self.declaration().personal_data_fields()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The filters and sorts of each kind before fields were declared (`entity!`), as
    /// `name:both|filter|multi:type` besides `created_at` and `updated_at`: the stores'
    /// columns and indexes rest on them, so the declarations must give exactly these.
    const BEFORE: &[(&str, &str)] = &[
        (
            "USER",
            "email:both:Text first_name:both:Text last_name:both:Text role:filter:Text disabled:filter:Bool",
        ),
        (
            "COMPANY",
            "name:both:Text sector:filter:Text size:filter:Int city:filter:Text country:filter:Text sales_id:filter:Id",
        ),
        (
            "CONTACT",
            "first_name:both:Text last_name:both:Text last_seen:both:Time company_id:filter:Id sales_id:filter:Id status:filter:Text has_newsletter:filter:Bool tags:multi:Id consented:multi:Purpose",
        ),
        (
            "DEAL",
            "name:both:Text amount:both:Int expected_closing_date:both:Date index:both:Int stage:filter:Text category:filter:Text company_id:filter:Id sales_id:filter:Id archived:filter:Bool contact_ids:multi:Id",
        ),
        (
            "NOTE",
            "date:both:Time contact_id:filter:Id deal_id:filter:Id sales_id:filter:Id",
        ),
        (
            "TASK",
            "due_date:both:Date owner_id:filter:Id completed:filter:Bool type:filter:Text priority:filter:Text contact_id:filter:Id deal_id:filter:Id company_id:filter:Id",
        ),
        ("TAG", "name:both:Text"),
        ("OTHER", ""),
        ("BY_USER", "user_id:filter:Id"),
    ];

    fn kinds_of(group: &str) -> Vec<EntityKind> {
        use EntityKind as K;
        match group {
            "USER" => vec![K::User],
            "COMPANY" => vec![K::Company],
            "CONTACT" => vec![K::Contact],
            "DEAL" => vec![K::Deal],
            "NOTE" => vec![K::Note],
            "TASK" => vec![K::Task],
            "TAG" => vec![K::Tag],
            "OTHER" => vec![K::Workspace, K::Configuration, K::Credential],
            "BY_USER" => vec![K::Session, K::ResetToken],
            other => panic!("{other}"),
        }
    }

    #[test]
    fn declared_fields_filter_and_sort_as_before() {
        let mut seen = Vec::new();
        for (group, specs) in BEFORE {
            let mut want: Vec<String> =
                vec!["created_at:both:Time".into(), "updated_at:both:Time".into()];
            want.extend(specs.split_whitespace().map(str::to_owned));
            want.sort();
            for kind in kinds_of(group) {
                let mut got: Vec<String> = kind
                    .fields()
                    .iter()
                    .map(|f| {
                        let how = match (f.filter, f.sort, f.multi) {
                            (true, true, false) => "both",
                            (true, false, false) => "filter",
                            (true, false, true) => "multi",
                            (false, true, false) => "sort",
                            other => panic!("{kind}: {other:?}"),
                        };
                        format!("{}:{how}:{:?}", f.name, f.ty)
                    })
                    .collect();
                got.sort();
                assert_eq!(got, want, "{kind}");
                seen.push(kind);
            }
        }
        assert_eq!(seen.len(), EntityKind::ALL.len());
    }

    #[test]
    fn indexes_use_declared_sortable_and_filterable_fields() {
        for kind in EntityKind::ALL {
            let fields = kind.fields();
            for index in kind.indexes() {
                let (sort, filters) = index.split_last().unwrap();
                assert!(
                    fields.iter().any(|f| f.name == *sort && f.sort),
                    "{kind}: {sort}"
                );
                for f in filters {
                    assert!(
                        fields.iter().any(|s| s.name == *f && s.filter),
                        "{kind}: {f}"
                    );
                }
            }
            for f in fields.iter().filter(|f| f.sort) {
                assert!(
                    kind.indexes().contains(&&[f.name][..]),
                    "{kind}: sort {} has no index",
                    f.name
                );
            }
        }
    }

    #[test]
    fn kind_facts_agree_with_the_declarations() {
        for kind in EntityKind::ALL {
            let d = kind.declaration();
            assert_eq!(d.kind, kind);
            assert_eq!(d.soft_delete, kind.soft_deletes(), "{kind}");
            assert_eq!(
                d.fields.iter().any(|f| f.search.is_some()),
                kind.searchable(),
                "{kind}"
            );
            let sort = kind.default_sort();
            assert!(
                kind.fields().iter().any(|f| f.sort && f.name == sort.field),
                "{kind}"
            );
        }
    }
}
