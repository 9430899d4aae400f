//! The `Storage` trait exercised directly on [`RedbStore`]: every write kind, every failure
//! leaving the store as it was, unique keys, index ordering and cursors (checked against the
//! reference `MemoryStore`), search on both of its paths, the audit log, group commit under
//! concurrency, persistence across reopen, and bad files.

use std::collections::HashSet;
use std::sync::Arc;

use crm_core::audit::{AuditAction, AuditEntry, AuditQuery};
use crm_core::id::{AuditId, CompanyId, ContactId, DealId, WorkspaceId};
use crm_core::model::{Deal, EntityKind, Record};
use crm_core::query::{Deleted, Filter, FilterOp, ListQuery, SearchQuery, Sort, Value};
use crm_core::testkit::MemoryStore;
use crm_core::testkit::setup::{bumped, stored_company, stored_tag, walk};
use crm_core::{Commit, ErrorKind, FieldIssue, Storage, Timestamp, Write};
use crm_store_redb::{RedbOptions, RedbStore};
use tempfile::TempDir;
use uuid::Uuid;

// ---------------------------------------------------------------- fixtures

fn open() -> (TempDir, RedbStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path().join("crm.redb")).unwrap();
    (dir, store)
}

fn t(secs: i64) -> Timestamp {
    Timestamp::from_micros(1_767_600_000_000_000 + secs * 1_000_000)
}

fn tag(ws: WorkspaceId, name: &str) -> Record {
    Record::Tag(stored_tag(ws, name, t(0)))
}

fn company(ws: WorkspaceId, name: &str) -> Record {
    Record::Company(stored_company(ws, name, t(0)))
}

fn rename(r: &Record, name: &str) -> Record {
    bumped(r, |r| match r {
        Record::Tag(t) => t.name = name.into(),
        Record::Company(c) => c.name = name.into(),
        Record::Deal(d) => d.name = name.into(),
        _ => unreachable!(),
    })
}

fn soft_deleted(r: &Record) -> Record {
    bumped(r, |r| {
        let mut m = r.meta();
        m.deleted_at = Some(m.updated_at);
        r.set_meta(m);
    })
}

fn entry(r: &Record, action: AuditAction) -> AuditEntry {
    AuditEntry {
        id: AuditId::generate(),
        workspace_id: r.workspace_id(),
        at: r.meta().updated_at,
        actor_id: None,
        entity: r.kind(),
        record_id: r.id(),
        label: r.label(),
        action,
        changes: Vec::new(),
    }
}

fn commit(ws: WorkspaceId, writes: Vec<Write>) -> Commit {
    Commit {
        workspace_id: ws,
        writes,
        audit: Vec::new(),
    }
}

fn insert(r: &Record) -> Commit {
    Commit {
        workspace_id: r.workspace_id(),
        writes: vec![Write::Insert(r.clone())],
        audit: vec![entry(r, AuditAction::Create)],
    }
}

fn update(r: &Record, expected_version: u64) -> Write {
    Write::Update {
        record: r.clone(),
        expected_version,
    }
}

/// A hard delete of the record `id` at `expected_version`.
fn delete(kind: EntityKind, id: Uuid, expected_version: u64) -> Write {
    Write::Delete {
        kind,
        id,
        expected_version,
    }
}

fn search(q: &str) -> Option<SearchQuery> {
    Some(SearchQuery {
        terms: crm_core::search::query_terms(q),
    })
}

async fn audit_all(s: &dyn Storage, ws: WorkspaceId) -> Vec<AuditEntry> {
    s.audit(
        ws,
        &AuditQuery {
            limit: Some(10_000),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

// ---------------------------------------------------------------- writes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_kind_succeeds() {
    let (_dir, s) = open();
    let ws = WorkspaceId::generate();
    let acme = company(ws, "Acme");
    let tag1 = tag(ws, "vip");
    s.commit(insert(&acme)).await.unwrap();
    s.commit(insert(&tag1)).await.unwrap();
    assert_eq!(
        s.get(ws, EntityKind::Company, acme.id()).await.unwrap(),
        Some(acme.clone())
    );
    assert_eq!(
        s.get_many(ws, EntityKind::Tag, &[Uuid::nil(), tag1.id()])
            .await
            .unwrap(),
        vec![tag1.clone()]
    );

    // Update + Check + Exists in one commit.
    let acme2 = rename(&acme, "Acme Rockets");
    s.commit(commit(
        ws,
        vec![
            update(&acme2, 1),
            Write::Check {
                kind: EntityKind::Tag,
                id: tag1.id(),
                expected_version: 1,
            },
            Write::Exists {
                kind: EntityKind::Tag,
                id: tag1.id(),
                field: "tags[0]",
            },
        ],
    ))
    .await
    .unwrap();
    let got = s.get(ws, EntityKind::Company, acme.id()).await.unwrap();
    assert_eq!(got, Some(acme2.clone()));
    let rockets = ListQuery {
        search: search("rock"),
        ..ListQuery::new(Sort::asc("name"), 10)
    };
    assert_eq!(
        walk(&s, ws, EntityKind::Company, &rockets).await,
        vec![acme.id()]
    );

    // Delete removes the record and every derived entry.
    s.commit(commit(ws, vec![delete(EntityKind::Company, acme.id(), 2)]))
        .await
        .unwrap();
    assert_eq!(
        s.get(ws, EntityKind::Company, acme.id()).await.unwrap(),
        None
    );
    assert!(walk(&s, ws, EntityKind::Company, &rockets).await.is_empty());
    let by_name = ListQuery::new(Sort::asc("name"), 10);
    assert!(walk(&s, ws, EntityKind::Company, &by_name).await.is_empty());
    s.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_commits_change_nothing() {
    let (_dir, s) = open();
    let ws = WorkspaceId::generate();
    let other_ws = WorkspaceId::generate();
    let acme = company(ws, "Acme");
    let vip = tag(ws, "VIP");
    let gone = soft_deleted(&tag(ws, "gone"));
    for r in [&acme, &vip, &gone] {
        s.commit(insert(r)).await.unwrap();
    }
    let before_audit = audit_all(&s, ws).await;

    let fresh = company(ws, "Fresh Corp");
    let cases: Vec<(Write, ErrorKind)> = vec![
        (Write::Insert(acme.clone()), ErrorKind::VersionConflict),
        (update(&rename(&acme, "X"), 7), ErrorKind::VersionConflict),
        (
            update(&rename(&company(ws, "Missing"), "Y"), 1),
            ErrorKind::NotFound,
        ),
        (
            delete(EntityKind::Company, acme.id(), 3),
            ErrorKind::VersionConflict,
        ),
        (
            delete(EntityKind::Company, Uuid::now_v7(), 1),
            ErrorKind::NotFound,
        ),
        (
            Write::Check {
                kind: EntityKind::Tag,
                id: vip.id(),
                expected_version: 2,
            },
            ErrorKind::VersionConflict,
        ),
        (
            Write::Check {
                kind: EntityKind::Tag,
                id: Uuid::now_v7(),
                expected_version: 1,
            },
            ErrorKind::NotFound,
        ),
        (
            Write::Exists {
                kind: EntityKind::Company,
                id: Uuid::now_v7(),
                field: "company_id",
            },
            ErrorKind::Validation,
        ),
        (
            Write::Exists {
                kind: EntityKind::Tag,
                id: gone.id(),
                field: "tags[1]",
            },
            ErrorKind::Validation,
        ),
        (
            // The same tag id exists only in `ws`: in another workspace it is missing.
            Write::Exists {
                kind: EntityKind::Company,
                id: acme.id(),
                field: "company_id",
            },
            ErrorKind::Validation,
        ),
        (Write::Insert(tag(ws, "vip")), ErrorKind::Duplicate),
        (
            Write::Insert(company(other_ws, "Elsewhere")),
            ErrorKind::StorageFailure,
        ),
    ];
    for (i, (bad, want)) in cases.into_iter().enumerate() {
        let target_ws = if i == 9 { other_ws } else { ws };
        // A good write first: it must not survive the bad one.
        let fresh_here = if i == 9 {
            company(other_ws, "Fresh Corp")
        } else {
            fresh.clone()
        };
        let mut c = commit(target_ws, vec![Write::Insert(fresh_here.clone()), bad]);
        c.audit.push(entry(&fresh_here, AuditAction::Create));
        let err = s.commit(c).await.unwrap_err();
        assert_eq!(err.kind(), want, "case {i}: {err:?}");
        if want == ErrorKind::Validation {
            assert_eq!(err.fields().len(), 1);
            assert_eq!(err.fields()[0].issue, FieldIssue::UnknownReference);
        }
        if want == ErrorKind::Duplicate {
            assert_eq!(err.fields()[0].field, "name");
        }
        assert_eq!(
            s.get(target_ws, EntityKind::Company, fresh_here.id())
                .await
                .unwrap(),
            None,
            "case {i}"
        );
    }
    // Audit entries of another workspace are refused too.
    let mut c = insert(&fresh);
    c.audit[0].workspace_id = other_ws;
    assert_eq!(
        s.commit(c).await.unwrap_err().kind(),
        ErrorKind::StorageFailure
    );

    // Nothing changed: records, indexes, search, unique keys, audit.
    assert_eq!(
        s.get(ws, EntityKind::Company, acme.id()).await.unwrap(),
        Some(acme.clone())
    );
    assert_eq!(
        walk(
            &s,
            ws,
            EntityKind::Company,
            &ListQuery::new(Sort::asc("name"), 5)
        )
        .await,
        vec![acme.id()]
    );
    let fresh_search = ListQuery {
        search: search("fresh"),
        ..ListQuery::new(Sort::asc("name"), 5)
    };
    assert!(
        walk(&s, ws, EntityKind::Company, &fresh_search)
            .await
            .is_empty()
    );
    assert_eq!(audit_all(&s, ws).await, before_audit);
    assert!(audit_all(&s, other_ws).await.is_empty());
    assert_eq!(
        s.find_unique(ws, EntityKind::Tag, "name", "vip")
            .await
            .unwrap()
            .map(|r| r.id()),
        Some(vip.id())
    );
    // And the store still works.
    s.commit(insert(&fresh)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_keys_follow_updates_and_soft_deletes() {
    let (_dir, s) = open();
    let ws = WorkspaceId::generate();
    let red = tag(ws, "Red");
    s.commit(insert(&red)).await.unwrap();
    let find = |v: &'static str| {
        let s = s.clone();
        async move {
            s.find_unique(ws, EntityKind::Tag, "name", v)
                .await
                .unwrap()
                .map(|r| r.id())
        }
    };
    assert_eq!(find("red").await, Some(red.id()));
    assert_eq!(
        s.commit(insert(&tag(ws, "RED"))).await.unwrap_err().kind(),
        ErrorKind::Duplicate
    );
    // Another workspace has its own names.
    s.commit(insert(&tag(WorkspaceId::generate(), "red")))
        .await
        .unwrap();

    // Renaming releases the old name and takes the new one.
    let crimson = rename(&red, "Crimson");
    s.commit(commit(ws, vec![update(&crimson, 1)]))
        .await
        .unwrap();
    assert_eq!(find("red").await, None);
    assert_eq!(find("crimson").await, Some(red.id()));
    let red2 = tag(ws, "red");
    s.commit(insert(&red2)).await.unwrap();

    // An update keeping its own name is fine; taking another's is not.
    s.commit(commit(ws, vec![update(&bumped(&crimson, |_| {}), 2)]))
        .await
        .unwrap();
    let err = s
        .commit(commit(ws, vec![update(&rename(&red2, "crimson"), 1)]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Duplicate);

    // Soft delete frees the name; restoring checks again.
    let deleted = soft_deleted(&red2);
    s.commit(commit(ws, vec![update(&deleted, 1)]))
        .await
        .unwrap();
    assert_eq!(find("red").await, None);
    let red3 = tag(ws, "Red");
    s.commit(insert(&red3)).await.unwrap();
    let restored = bumped(&deleted, |r| {
        let mut m = r.meta();
        m.deleted_at = None;
        r.set_meta(m);
    });
    assert_eq!(
        s.commit(commit(ws, vec![update(&restored, 2)]))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Duplicate
    );

    // Two records of one commit cannot claim the same value.
    let (a, b) = (tag(ws, "twin"), tag(ws, "Twin"));
    let err = s
        .commit(commit(ws, vec![Write::Insert(a.clone()), Write::Insert(b)]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Duplicate);
    assert_eq!(find("twin").await, None);

    // Hard delete frees it too.
    s.commit(insert(&a)).await.unwrap();
    s.commit(commit(ws, vec![delete(EntityKind::Tag, a.id(), 1)]))
        .await
        .unwrap();
    assert_eq!(find("twin").await, None);
}

// ---------------------------------------------------------------- lists, checked against the model

struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next(items.len() as u64) as usize]
    }
}

const NAMES: [&str; 10] = [
    "Alpha",
    "alpha",
    "Alphabet soup",
    "Beta",
    "gamma ray",
    "Gamma",
    "Échec et mat",
    "delta",
    "Zeta alpha",
    "z",
];
const STAGES: [&str; 3] = ["lead", "won", "lost"];

fn deal(ws: WorkspaceId, rng: &mut Rng, companies: &[CompanyId], contacts: &[ContactId]) -> Record {
    let i = rng.next(1000) as i64;
    Record::Deal(Deal {
        id: DealId::generate(),
        workspace_id: ws,
        name: (*rng.pick(&NAMES)).to_string(),
        company_id: rng
            .pick(&[None, Some(companies[0]), Some(companies[1])])
            .to_owned(),
        contact_ids: (0..rng.next(3))
            .map(|_| *rng.pick(contacts))
            .collect::<Vec<_>>(),
        category: rng.pick(&[None, Some("consulting".to_string())]).clone(),
        stage: (*rng.pick(&STAGES)).to_string(),
        description: rng
            .pick(&[
                None,
                Some("Annual contract".to_string()),
                Some("alpine".into()),
            ])
            .clone(),
        amount: rng.next(5) as i64 * 100 - 100,
        expected_closing_date: rng.pick(&[None, Some(t(i * 86_400).date())]).to_owned(),
        index: rng.next(4) as i64,
        archived_at: None,
        sales_id: None,
        created_at: t(rng.next(20) as i64),
        updated_at: t(rng.next(20) as i64),
        version: 1,
        deleted_at: rng
            .pick(&[None, None, None, None, None, Some(t(5))])
            .to_owned(),
    })
}

fn queries(companies: &[CompanyId], contacts: &[ContactId]) -> Vec<ListQuery> {
    let sorts = [
        Sort::asc("name"),
        Sort::desc("name"),
        Sort::asc("amount"),
        Sort::desc("expected_closing_date"),
        Sort::asc("expected_closing_date"),
        Sort::asc("index"),
        Sort::desc("created_at"),
        Sort::asc("updated_at"),
    ];
    let filters: Vec<Vec<Filter>> = vec![
        vec![],
        vec![Filter::eq("stage", Value::Text("WON".into()))],
        vec![Filter::eq("company_id", Value::Id(companies[0].uuid()))],
        vec![Filter::eq("company_id", Value::Null)],
        vec![Filter::eq("contact_ids", Value::Id(contacts[1].uuid()))],
        vec![
            Filter {
                field: "amount".into(),
                op: FilterOp::Gte(Value::Int(0)),
            },
            Filter {
                field: "stage".into(),
                op: FilterOp::In(vec![Value::Text("lead".into()), Value::Text("lost".into())]),
            },
        ],
    ];
    let searches = [
        None,
        search("al"),
        search("alpha"),
        search("annual alp"),
        search("zzz"),
    ];
    let mut out = Vec::new();
    for (n, sort) in sorts.iter().enumerate() {
        for (m, f) in filters.iter().enumerate() {
            for (k, s) in searches.iter().enumerate() {
                let limit = [1, 3, 7, 100][(n + m + k) % 4];
                let deleted = [Deleted::Exclude, Deleted::Include, Deleted::Only][(n + k) % 3];
                out.push(ListQuery {
                    filters: f.clone(),
                    search: s.clone(),
                    sort: sort.clone(),
                    after: None,
                    limit,
                    deleted,
                });
            }
        }
    }
    out
}

async fn assert_same_lists(
    model: &MemoryStore,
    stores: &[&RedbStore],
    ws: WorkspaceId,
    queries: &[ListQuery],
) {
    let mut nonempty = 0;
    for q in queries {
        let want = walk(model, ws, EntityKind::Deal, q).await;
        nonempty += usize::from(!want.is_empty());
        let set: HashSet<_> = want.iter().collect();
        assert_eq!(set.len(), want.len(), "the model returns each record once");
        for s in stores {
            let got = walk(*s, ws, EntityKind::Deal, q).await;
            assert_eq!(got, want, "{q:?}");
        }
    }
    assert!(
        nonempty * 2 > queries.len(),
        "the queries are not degenerate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_match_the_reference_store() {
    let dir = tempfile::tempdir().unwrap();
    let plain = RedbStore::open(dir.path().join("a.redb")).unwrap();
    // A tiny candidate cap sends most searches down the broad path (index walk).
    let broad = RedbStore::open_with(
        dir.path().join("b.redb"),
        RedbOptions {
            search_candidates: 2,
            max_batch: 3,
            ..Default::default()
        },
    )
    .unwrap();
    // A middling cap mixes narrow terms (intersected) with broad ones (skipped).
    let mixed = RedbStore::open_with(
        dir.path().join("c.redb"),
        RedbOptions {
            search_candidates: 20,
            ..Default::default()
        },
    )
    .unwrap();
    let model = MemoryStore::new();
    let ws = WorkspaceId::generate();
    let other = WorkspaceId::generate();
    let companies = [CompanyId::generate(), CompanyId::generate()];
    let contacts = [
        ContactId::generate(),
        ContactId::generate(),
        ContactId::generate(),
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let all = |c: Commit| {
        let (model, plain, broad, mixed) = (&model, &plain, &broad, &mixed);
        async move {
            let a = model.commit(c.clone()).await.map_err(|e| e.kind());
            let b = plain.commit(c.clone()).await.map_err(|e| e.kind());
            let d = broad.commit(c.clone()).await.map_err(|e| e.kind());
            assert_eq!(a, mixed.commit(c).await.map_err(|e| e.kind()));
            assert_eq!(a, b);
            assert_eq!(a, d);
        }
    };
    let mut deals = Vec::new();
    for chunk in 0..12 {
        let mut c = Commit::new(ws);
        for _ in 0..10 {
            let d = deal(ws, &mut rng, &companies, &contacts);
            c.writes.push(Write::Insert(d.clone()));
            deals.push(d);
        }
        all(c).await;
        // Noise in another workspace, which no list of `ws` may show.
        let mut c = Commit::new(other);
        c.writes
            .push(Write::Insert(deal(other, &mut rng, &companies, &contacts)));
        if chunk % 3 == 0 {
            all(c).await;
        }
    }
    let qs = queries(&companies, &contacts);
    assert_same_lists(&model, &[&plain, &broad, &mixed], ws, &qs).await;

    // Change a third of them (names, amounts, stages, links, soft delete), purge some.
    let mut c = Commit::new(ws);
    for (i, d) in deals.iter().enumerate() {
        match i % 6 {
            0 => {
                let name = NAMES[rng.next(NAMES.len() as u64) as usize];
                c.writes.push(update(&rename(d, name), 1));
            }
            1 => c.writes.push(update(
                &bumped(d, |r| {
                    if let Record::Deal(d) = r {
                        d.amount = -d.amount;
                        d.stage = "won".into();
                        d.contact_ids = vec![contacts[1]];
                        d.company_id = None;
                        d.expected_closing_date = None;
                    }
                }),
                1,
            )),
            2 if i % 4 == 0 => c.writes.push(delete(EntityKind::Deal, d.id(), 1)),
            3 => c.writes.push(update(&soft_deleted(d), 1)),
            _ => {}
        }
    }
    all(c).await;
    assert_same_lists(&model, &[&plain, &broad, &mixed], ws, &qs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_pages_by_prefix_on_both_paths() {
    let dir = tempfile::tempdir().unwrap();
    let ws = WorkspaceId::generate();
    for cap in [2_000, 5] {
        let s = RedbStore::open_with(
            dir.path().join(format!("s{cap}.redb")),
            RedbOptions {
                search_candidates: cap,
                ..Default::default()
            },
        )
        .unwrap();
        let mut ids = Vec::new();
        for i in 0..40 {
            let name = format!("Rocket {} {}", ["Labs", "labyrinth", "Lake"][i % 3], i);
            let r = company(ws, &name);
            ids.push((name.to_lowercase(), r.id()));
            s.commit(insert(&r)).await.unwrap();
        }
        s.commit(insert(&company(ws, "Unrelated"))).await.unwrap();
        let q = ListQuery {
            search: search("lab rock"),
            ..ListQuery::new(Sort::asc("name"), 4)
        };
        let got = walk(&s, ws, EntityKind::Company, &q).await;
        let mut want: Vec<_> = ids
            .iter()
            .filter(|(n, _)| n.contains(" lab"))
            .cloned()
            .collect();
        want.sort();
        assert_eq!(
            got,
            want.iter().map(|(_, id)| *id).collect::<Vec<_>>(),
            "cap {cap}"
        );
        let q = ListQuery {
            search: search("nothing"),
            ..ListQuery::new(Sort::asc("name"), 4)
        };
        assert!(walk(&s, ws, EntityKind::Company, &q).await.is_empty());
    }
}

/// More known candidates than are loaded at once (256): the sort index is walked with a
/// membership test. Same rows, same order and same cursors as the reference store, also
/// with a filter and a second term, in both directions, and after deletions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_known_candidates_walk_the_sort_index() {
    let (_dir, s) = open();
    let model = MemoryStore::new();
    let ws = WorkspaceId::generate();
    let mut rockets = Vec::new();
    for i in 0..700 {
        let name = match i % 7 {
            0..=3 => format!("Rocket {} Works {i}", ["Alpha", "beta", "Gamma"][i % 3]),
            4 => format!("Rockwell Parts {i}"),
            _ => format!("Unrelated Goods {i}"),
        };
        let mut r = company(ws, &name);
        if let Record::Company(c) = &mut r {
            c.city = Some(["Paris", "Lyon"][i % 2].to_string());
            c.created_at = t(i as i64 % 50);
        }
        if i % 7 <= 3 {
            rockets.push(r.clone());
        }
        s.commit(insert(&r)).await.unwrap();
        model.commit(insert(&r)).await.unwrap();
    }
    for r in rockets.iter().step_by(9) {
        let gone = soft_deleted(r);
        s.commit(commit(ws, vec![update(&gone, r.version())]))
            .await
            .unwrap();
        model
            .commit(commit(ws, vec![update(&gone, r.version())]))
            .await
            .unwrap();
    }
    let paris = Filter {
        field: "city".into(),
        op: FilterOp::Eq(Value::Text("paris".into())),
    };
    let mut checked = 0;
    for q in ["rocket", "rock", "rocket works", "roc gam"] {
        for sort in [
            Sort::asc("name"),
            Sort::desc("name"),
            Sort::desc("created_at"),
        ] {
            for filters in [vec![], vec![paris.clone()]] {
                for deleted in [Deleted::Exclude, Deleted::Include] {
                    let query = ListQuery {
                        search: search(q),
                        filters: filters.clone(),
                        deleted,
                        ..ListQuery::new(sort.clone(), 7)
                    };
                    let want = walk(&model, ws, EntityKind::Company, &query).await;
                    let got = walk(&s, ws, EntityKind::Company, &query).await;
                    assert_eq!(got, want, "{q} {sort:?} {filters:?} {deleted:?}");
                    checked += want.len();
                }
            }
        }
    }
    assert!(checked > 3_000, "the queries return many rows ({checked})");
}

// ---------------------------------------------------------------- audit

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_queries_match_the_reference_store() {
    let (_dir, s) = open();
    let model = MemoryStore::new();
    let ws = WorkspaceId::generate();
    let mut records = Vec::new();
    for i in 0..12 {
        let r = if i % 2 == 0 {
            company(ws, &format!("Co {i}"))
        } else {
            tag(ws, &format!("tag {i}"))
        };
        let c = insert(&r);
        s.commit(c.clone()).await.unwrap();
        model.commit(c).await.unwrap();
        records.push(r);
    }
    for (i, r) in records.iter().enumerate().take(6) {
        let next = rename(r, &format!("renamed {i}"));
        let mut c = commit(ws, vec![update(&next, 1)]);
        c.audit.push(entry(&next, AuditAction::Update));
        c.audit.push(entry(&next, AuditAction::Move));
        s.commit(c.clone()).await.unwrap();
        model.commit(c).await.unwrap();
    }
    let mut queries = vec![
        AuditQuery::default(),
        AuditQuery {
            limit: Some(5),
            ..Default::default()
        },
        AuditQuery {
            record_id: Some(records[2].id()),
            ..Default::default()
        },
        AuditQuery {
            record_id: Some(records[2].id()),
            actions: vec![AuditAction::Move],
            ..Default::default()
        },
        AuditQuery {
            entities: vec![EntityKind::Tag],
            limit: Some(3),
            ..Default::default()
        },
        AuditQuery {
            actions: vec![AuditAction::Update, AuditAction::Create],
            ..Default::default()
        },
        AuditQuery {
            record_id: Some(Uuid::now_v7()),
            ..Default::default()
        },
    ];
    let all = model.audit(ws, &AuditQuery::default()).await.unwrap();
    assert_eq!(all.len(), 24, "default limit is 25, there are 24");
    queries.push(AuditQuery {
        before: Some(all[4].id),
        limit: Some(4),
        ..Default::default()
    });
    queries.push(AuditQuery {
        before: Some(all[4].id),
        record_id: Some(all[9].record_id),
        ..Default::default()
    });
    for q in &queries {
        assert_eq!(
            s.audit(ws, q).await.unwrap(),
            model.audit(ws, q).await.unwrap(),
            "{q:?}"
        );
    }
    // Paging with `before` visits every entry once, newest first.
    let mut seen = Vec::new();
    let mut q = AuditQuery {
        limit: Some(5),
        ..Default::default()
    };
    loop {
        let page = s.audit(ws, &q).await.unwrap();
        seen.extend(page.iter().map(|e| e.id));
        match page.last() {
            Some(last) if page.len() == 5 => q.before = Some(last.id),
            _ => break,
        }
    }
    assert_eq!(seen, all.iter().map(|e| e.id).collect::<Vec<_>>());
    assert!(
        s.audit(WorkspaceId::generate(), &AuditQuery::default())
            .await
            .unwrap()
            .is_empty()
    );
}

// ---------------------------------------------------------------- group commit

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_committers_are_all_acknowledged() {
    let (_dir, s) = open();
    let ws = WorkspaceId::generate();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for j in 0..5 {
                let r = company(ws, &format!("Concurrent {i} {j}"));
                s.commit(insert(&r)).await.unwrap();
                ids.push(r.id());
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    assert_eq!(ids.len(), 320);
    let got = s.get_many(ws, EntityKind::Company, &ids).await.unwrap();
    assert_eq!(got.iter().map(Record::id).collect::<Vec<_>>(), ids);
    let listed: HashSet<_> = walk(
        &s,
        ws,
        EntityKind::Company,
        &ListQuery::new(Sort::asc("name"), 100),
    )
    .await
    .into_iter()
    .collect();
    assert_eq!(listed, ids.iter().copied().collect());
    assert_eq!(audit_all(&s, ws).await.len(), 320);

    // Group commit happened: fewer write transactions than commits.
    let path = s.path().to_path_buf();
    s.close().await.unwrap();
    let db = redb::Database::create(&path).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    let meta = txn
        .open_table(redb::TableDefinition::<&str, u64>::new("crm_meta"))
        .unwrap();
    let batches = meta.get("batch_seq").unwrap().unwrap().value();
    assert!(batches < 320, "{batches} batches for 320 commits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_conflicting_commits_in_one_batch_exactly_one_wins() {
    let (_dir, s) = open();
    let ws = WorkspaceId::generate();
    let base = company(ws, "Contended");
    s.commit(insert(&base)).await.unwrap();
    let vip = tag(ws, "only-one");
    let mut tasks = Vec::new();
    for i in 0..64 {
        let s = s.clone();
        let next = rename(&base, &format!("Winner {i}"));
        let claim = tag(ws, "ONLY-ONE");
        tasks.push(tokio::spawn(async move {
            let update = s
                .commit(commit(ws, vec![update(&next, 1)]))
                .await
                .map_err(|e| e.kind());
            let claim = s.commit(insert(&claim)).await.map_err(|e| e.kind());
            (update, claim)
        }));
    }
    let _ = vip;
    let (mut updates, mut claims) = (0, 0);
    for t in tasks {
        let (u, c) = t.await.unwrap();
        match u {
            Ok(()) => updates += 1,
            Err(k) => assert_eq!(k, ErrorKind::VersionConflict),
        }
        match c {
            Ok(()) => claims += 1,
            Err(k) => assert_eq!(k, ErrorKind::Duplicate),
        }
    }
    assert_eq!((updates, claims), (1, 1));
    let stored = s
        .get(ws, EntityKind::Company, base.id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.version(), 2);
    // The one audit entry of the winner and the one tag, nothing of the losers.
    assert_eq!(audit_all(&s, ws).await.len(), 2);
}

// ---------------------------------------------------------------- persistence and lifecycle

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopen_and_close_is_graceful() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.redb");
    let ws = WorkspaceId::generate();
    let acme = company(ws, "Acme Persistent");
    let red = tag(ws, "red");
    let mut acked = Vec::new();
    {
        let s = RedbStore::open(&path).unwrap();
        assert_eq!(s.path(), path.as_path());
        // The file is locked while open.
        assert_eq!(
            RedbStore::open(&path).unwrap_err().kind(),
            ErrorKind::StorageUnavailable
        );
        s.commit(insert(&acme)).await.unwrap();
        s.commit(insert(&red)).await.unwrap();
        // Commits racing with close: each is either acknowledged (and durable) or refused
        // as unavailable, never lost after an `Ok`.
        let racing: Vec<_> = (0..40)
            .map(|i| {
                let s = s.clone();
                let r = company(ws, &format!("Racing {i}"));
                tokio::spawn(async move { (s.commit(insert(&r)).await, r) })
            })
            .collect();
        tokio::task::yield_now().await;
        s.close().await.unwrap();
        for task in racing {
            let (outcome, r) = task.await.unwrap();
            match outcome {
                Ok(()) => acked.push(r.id()),
                Err(e) => assert_eq!(e.kind(), ErrorKind::StorageUnavailable, "{e:?}"),
            }
        }
        s.close().await.unwrap();
        assert_eq!(
            s.commit(insert(&company(ws, "late")))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::StorageUnavailable
        );
        assert_eq!(
            s.ping().await.unwrap_err().kind(),
            ErrorKind::StorageUnavailable
        );
        assert_eq!(
            s.get(ws, EntityKind::Company, acme.id())
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::StorageUnavailable
        );
    }
    let s = RedbStore::open(&path).unwrap();
    assert_eq!(
        s.get(ws, EntityKind::Company, acme.id()).await.unwrap(),
        Some(acme.clone())
    );
    let q = ListQuery {
        search: search("persis"),
        ..ListQuery::new(Sort::asc("name"), 10)
    };
    assert_eq!(walk(&s, ws, EntityKind::Company, &q).await, vec![acme.id()]);
    assert_eq!(
        s.find_unique(ws, EntityKind::Tag, "name", "red")
            .await
            .unwrap(),
        Some(red.clone())
    );
    let got = s.get_many(ws, EntityKind::Company, &acked).await.unwrap();
    assert_eq!(
        got.len(),
        acked.len(),
        "every acknowledged commit survived close"
    );
    assert_eq!(audit_all(&s, ws).await.len(), 2 + acked.len());
    drop(s);
    // Dropping the last handle releases the file at once.
    let s = RedbStore::open(&path).unwrap();
    s.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_are_refused_and_bad_records_are_errors() {
    let dir = tempfile::tempdir().unwrap();

    // Not a database at all.
    let junk = dir.path().join("junk.redb");
    std::fs::write(&junk, vec![0x42; 8192]).unwrap();
    let err = RedbStore::open(&junk).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::StorageUnavailable | ErrorKind::StorageCorrupted
        ),
        "{err:?}"
    );

    // A database of a future format version.
    let future = dir.path().join("future.redb");
    {
        let db = redb::Database::create(&future).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn
                .open_table(redb::TableDefinition::<&str, u64>::new("crm_meta"))
                .unwrap();
            meta.insert("format_version", 99).unwrap();
        }
        txn.commit().unwrap();
    }
    let err = RedbStore::open(&future).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageCorrupted);

    // A record that does not decode: an error, not a panic.
    let path = dir.path().join("bad-record.redb");
    let ws = WorkspaceId::generate();
    let acme = company(ws, "Acme");
    {
        let s = RedbStore::open(&path).unwrap();
        s.commit(insert(&acme)).await.unwrap();
        s.close().await.unwrap();
    }
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut records = txn
                .open_table(redb::TableDefinition::<&[u8], &[u8]>::new("crm_records"))
                .unwrap();
            let mut key = vec![EntityKind::Company.tag()];
            key.extend_from_slice(ws.as_bytes());
            key.extend_from_slice(acme.id().as_bytes());
            records
                .insert(key.as_slice(), b"{not json".as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let s = RedbStore::open(&path).unwrap();
    let err = s.get(ws, EntityKind::Company, acme.id()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageCorrupted);
    assert!(std::error::Error::source(&err).is_some());
    let err = s
        .list(
            ws,
            EntityKind::Company,
            &ListQuery::new(Sort::asc("name"), 10),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageCorrupted);
    // A commit that needs the broken record fails; others still go through.
    let err = s
        .commit(commit(ws, vec![update(&rename(&acme, "x"), 1)]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageCorrupted);
    s.commit(insert(&company(ws, "Fine"))).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usable_as_a_shared_trait_object() {
    let (_dir, s) = open();
    let storage: Arc<dyn Storage> = Arc::new(s);
    let ws = WorkspaceId::generate();
    let r = company(ws, "Dyn");
    storage.commit(insert(&r)).await.unwrap();
    assert!(
        storage
            .get(ws, EntityKind::Company, r.id())
            .await
            .unwrap()
            .is_some()
    );
}

/// Point reads answer the same inline (the default) and on the blocking pool, for single
/// ids, small batches (inline) and large ones (always on the pool), on a current-thread
/// runtime too.
#[tokio::test(flavor = "current_thread")]
async fn point_reads_answer_the_same_inline_and_on_the_blocking_pool() {
    let dir = tempfile::tempdir().unwrap();
    let inline = RedbStore::open(dir.path().join("inline.redb")).unwrap();
    let pooled = RedbStore::open_with(
        dir.path().join("pooled.redb"),
        RedbOptions {
            inline_point_reads: false,
            ..Default::default()
        },
    )
    .unwrap();
    let ws = WorkspaceId::generate();
    let mut c = Commit::new(ws);
    let mut tags = Vec::new();
    for i in 0..(crm_store_redb::INLINE_MANY_MAX + 8) {
        let r = tag(ws, &format!("tag {i}"));
        c.writes.push(Write::Insert(r.clone()));
        tags.push(r);
    }
    inline.commit(c.clone()).await.unwrap();
    pooled.commit(c).await.unwrap();
    let ids: Vec<Uuid> = tags.iter().map(Record::id).collect();
    let missing = Uuid::now_v7();
    for store in [&inline, &pooled] {
        for r in &tags {
            let got = store.get(ws, EntityKind::Tag, r.id()).await.unwrap();
            assert_eq!(got.as_ref(), Some(r));
        }
        assert_eq!(store.get(ws, EntityKind::Tag, missing).await.unwrap(), None);
        // Another workspace sees nothing.
        let other = WorkspaceId::generate();
        assert_eq!(
            store.get(other, EntityKind::Tag, ids[0]).await.unwrap(),
            None
        );
        let small: Vec<Uuid> = [ids[3], missing, ids[1]].to_vec();
        let got = store.get_many(ws, EntityKind::Tag, &small).await.unwrap();
        assert_eq!(got, vec![tags[3].clone(), tags[1].clone()]);
        let mut large = ids.clone();
        large.reverse();
        let got = store.get_many(ws, EntityKind::Tag, &large).await.unwrap();
        let want: Vec<Record> = tags.iter().rev().cloned().collect();
        assert_eq!(got, want);
    }
}
