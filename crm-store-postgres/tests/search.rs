//! Search beyond the conformance suite's small data: with more contacts than the search
//! window, every path of the store's search (dense matches inside the window, sparse ones
//! from the GIN/trigram indexes, a window that is the whole list) must return exactly what
//! the core's matching rule accepts, page after page.

use std::collections::BTreeSet;

use crm_core::Storage;
use crm_core::demo::{Volume, seed};
use crm_core::model::{ContactInput, EmailEntry, EmailKind, EntityKind, Record};
use crm_core::query::{Deleted, ListQuery, SearchQuery, Sort};
use crm_store_postgres::testing::TestDatabase;

#[test]
fn every_search_path_returns_exactly_the_matches_in_order() {
    crm_core::testkit::run(async {
        let db = TestDatabase::create().await;
        let (store, crm, ws, actor) = db.engine("Search").await;
        let volume = Volume {
            companies: 50,
            contacts: 6_000,
            deals: 0,
            tasks: 0,
            notes: 0,
        };
        seed(&store, ws.id, &[actor.user_id()], volume, 3)
            .await
            .unwrap();
        // A few rare contacts: found only through the indexes, far apart in the sort order.
        for (n, (first, last, email)) in [
            ("Zebulon", "Quixote", "zq@rare.example"),
            ("Quentin", "Quixotic", "qq@rare.example"),
            ("Hattie", "Plain", "hattie.xqz@rare.example"),
        ]
        .into_iter()
        .enumerate()
        {
            crm.contacts()
                .create(
                    &actor,
                    ContactInput {
                        first_name: first.into(),
                        last_name: last.into(),
                        emails: vec![EmailEntry {
                            email: email.into(),
                            kind: EmailKind::Work,
                        }],
                        first_seen: Some(crm_core::Timestamp::from_micros(n as i64 * 1_000)),
                        last_seen: Some(crm_core::Timestamp::from_micros(n as i64 * 1_000)),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
        }
        store.analyze().await.unwrap();

        // Every contact, read once without search, to compute the expected answers.
        let mut everyone = Vec::new();
        let mut q = ListQuery::new(Sort::desc("last_seen"), 100);
        loop {
            let page = store.list(ws.id, EntityKind::Contact, &q).await.unwrap();
            let Some(last) = page.last() else { break };
            after(&mut q, last);
            everyone.extend(page);
        }
        assert_eq!(everyone.len(), 6_003);

        for (text, limit) in [
            ("quix", 1),       // sparse: two matches, one a page, from the index
            ("xqz", 2),        // inside an email only (trigram index)
            ("a", 25),         // dense: pages come from the window
            ("jo", 7),         // dense-ish, odd page size
            ("okafor", 50),    // a last name among ~50
            ("nobodyhere", 5), // nothing at all
        ] {
            let terms = crm_core::search::query_terms(text);
            let expected: Vec<_> = everyone
                .iter()
                .filter(|r| crm_core::search::matches(r, &terms))
                .map(|r| r.id())
                .collect();
            let mut got = Vec::new();
            let mut q = ListQuery::new(Sort::desc("last_seen"), limit);
            q.search = Some(SearchQuery {
                terms: terms.clone(),
            });
            q.deleted = Deleted::Exclude;
            loop {
                let page = store.list(ws.id, EntityKind::Contact, &q).await.unwrap();
                assert!(page.len() <= limit);
                let Some(last) = page.last() else { break };
                after(&mut q, last);
                let full = page.len() == limit;
                got.extend(page.iter().map(|r| r.id()));
                if !full {
                    break;
                }
            }
            assert_eq!(got, expected, "search {text:?}: same records, same order");
            assert_eq!(
                got.iter().collect::<BTreeSet<_>>().len(),
                got.len(),
                "no record twice"
            );
            if text == "quix" {
                assert_eq!(got.len(), 2);
            }
            if text == "xqz" {
                assert_eq!(got.len(), 1);
            }
        }
    });
}

/// Moves `q` (sorted by `last_seen`) past `last`, the last record of its page.
fn after(q: &mut ListQuery, last: &Record) {
    q.after = Some(crm_core::query::Cursor {
        field: "last_seen".into(),
        direction: q.sort.direction,
        value: last.field("last_seen"),
        id: last.id(),
    });
}
