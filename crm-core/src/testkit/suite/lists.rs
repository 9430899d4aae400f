//! Lists: word-prefix and substring search, filters and sorts, keyset paging that returns
//! every record once (also under concurrent inserts), refused queries and cursors.

use std::collections::HashSet;
use std::time::Duration;

use uuid::Uuid;

use super::{company, contact, deal, employee, kind, rename_company, retitle, task, world};
use crate::clock::Timestamp;
use crate::error::ErrorKind;
use crate::id::ContactId;
use crate::model::*;
use crate::query::ListParams;
use crate::testkit::Fixture;

pub async fn search_matches_word_prefixes(f: Fixture) {
    let w = world(&f).await;
    let a = &w.sales;
    let acme = w
        .create(
            a,
            CompanyInput {
                city: Some("Tucson".into()),
                phone_number: Some("+1 (520) 555-0199".into()),
                ..company("Acme Rockets")
            },
        )
        .await;
    let john = w
        .create(
            a,
            ContactInput {
                company_id: Some(acme.id),
                title: Some("Chief Engineer".into()),
                emails: vec![EmailEntry {
                    email: "john.smith@acme.test".into(),
                    kind: EmailKind::Work,
                }],
                phones: vec![PhoneEntry {
                    number: "+44 20 7946 0958".into(),
                    kind: PhoneKind::Work,
                }],
                ..contact("John", "Smith")
            },
        )
        .await;
    let joanna = w.create(a, contact("Joanna", "Smithers")).await;
    let bob = w.create(a, contact("Bob", "Jones")).await;
    let gone = w.create(a, contact("Johnny", "Deleted")).await;
    w.crm.contacts().delete(a, gone.id).await.unwrap();
    w.create(
        a,
        DealInput {
            description: Some("Annual contract".into()),
            ..deal("Rocket fuel supply")
        },
    )
    .await;

    let ids = |cs: Vec<Contact>| cs.into_iter().map(|c| c.id).collect::<HashSet<_>>();
    let q = |s: &str| ListParams::new().q(s);
    // (query, the contacts it finds, why)
    let cases: [(&str, Vec<ContactId>, &str); 11] = [
        ("jo", vec![john.id, joanna.id, bob.id], "word prefixes"),
        ("smith", vec![john.id, joanna.id], "word prefixes"),
        ("JO SMITHE", vec![joanna.id], "every term must match"),
        ("acme", vec![john.id], "company name and email domain"),
        ("chief", vec![john.id], "the title"),
        ("john.smith@acme", vec![john.id], "an email address"),
        ("442079", vec![john.id], "phone digits"),
        (
            "mith",
            vec![john.id],
            "inside an email address (john.smith@), never inside a name (Smithers)",
        ),
        (
            "mi",
            vec![],
            "two chars match word prefixes only, not inside emails",
        ),
        ("cme", vec![john.id], "inside the email domain"),
        ("johnny", vec![], "deleted records are not found"),
    ];
    for (query, found, why) in cases {
        assert_eq!(
            ids(w.all_contacts(a, q(query)).await),
            found.into_iter().collect::<HashSet<_>>(),
            "{query}: {why}"
        );
    }
    assert!(
        w.list::<Company>(a, &q("cme")).await.is_empty(),
        "company names are prefix-only"
    );
    let companies = w.list::<Company>(a, &q("tucs")).await;
    assert_eq!(companies.len(), 1);
    for digits in ["5550199", "0199"] {
        let found = w.list::<Company>(a, &q(digits)).await;
        assert_eq!(
            found.iter().map(|c| c.id).collect::<Vec<_>>(),
            [acme.id],
            "digits inside the phone number: {digits}"
        );
    }
    let deals = w.list::<Deal>(a, &q("annual")).await;
    assert_eq!(deals.len(), 1);
    let all = w.crm.search(&w.reader, "rock", 5).await.unwrap();
    assert_eq!(
        (all.companies.len(), all.contacts.len(), all.deals.len()),
        (1, 1, 1),
        "John works at Acme Rockets"
    );
    // Search combines with filters and paging.
    let filtered = w
        .all_contacts(a, q("smith").filter("company_id", acme.id))
        .await;
    assert_eq!(ids(filtered), HashSet::from([john.id]));
    let mut seen = Vec::new();
    let mut p = q("smith").limit(1);
    loop {
        let page = w.crm.contacts().list(a, &p).await.unwrap();
        seen.extend(page.data.iter().map(|c| c.id));
        match page.next_cursor {
            Some(c) => p = p.cursor(Some(c)),
            None => break,
        }
    }
    assert_eq!(seen.len(), 2);
    assert_eq!(
        kind(w.crm.search(a, "  ", 5).await),
        ErrorKind::InvalidQuery
    );
    assert_eq!(
        kind(w.crm.tasks().list(a, &q("x")).await),
        ErrorKind::InvalidQuery,
        "tasks are not searchable"
    );
}

pub async fn cursor_walk_returns_every_record_once(f: Fixture) {
    let w = world(&f).await;
    let names = ["ann", "Bob", "cy", "Dee", "ed", "Fay", "gus"];
    let mut created = HashSet::new();
    for i in 0..45 {
        w.clock.advance(Duration::from_secs(1 + (i % 3)));
        let c = w
            .create(
                &w.sales,
                ContactInput {
                    status: [None, Some("hot".to_string()), Some("cold".to_string())]
                        [i as usize % 3]
                        .clone(),
                    ..contact(names[i as usize % names.len()], &format!("N{:02}", i % 10))
                },
            )
            .await;
        created.insert(c.id);
    }
    for sort in [
        "first_name",
        "-first_name",
        "last_name",
        "-last_seen",
        "created_at",
        "-updated_at",
    ] {
        for limit in [1, 7, 25, 100] {
            let walked = w
                .all_contacts(&w.reader, ListParams::new().sort(sort).limit(limit))
                .await;
            let ids: Vec<ContactId> = walked.iter().map(|c| c.id).collect();
            assert_eq!(ids.len(), created.len(), "sort {sort} limit {limit}");
            assert_eq!(ids.iter().copied().collect::<HashSet<_>>(), created);
            let field = sort.trim_start_matches('-');
            let vals: Vec<crate::query::Value> = walked.iter().map(|c| c.field(field)).collect();
            for pair in vals.windows(2) {
                let o = pair[0].sort_cmp(&pair[1]);
                if sort.starts_with('-') {
                    assert_ne!(o, std::cmp::Ordering::Less, "{sort}")
                } else {
                    assert_ne!(o, std::cmp::Ordering::Greater, "{sort}")
                }
            }
        }
    }
    let hot = w
        .all_contacts(
            &w.reader,
            ListParams::new().filter("status", "hot").limit(4),
        )
        .await;
    assert_eq!(hot.len(), 15);
    assert!(hot.iter().all(|c| c.status.as_deref() == Some("hot")));
}

pub async fn cursor_walk_is_stable_under_inserts(f: Fixture) {
    let w = world(&f).await;
    let mut original = HashSet::new();
    for i in 0..40 {
        original.insert(
            w.create(&w.sales, contact(&format!("Orig{i:02}"), "Walker"))
                .await
                .id,
        );
    }
    let writer = {
        let crm = w.crm.clone();
        let actor = w.sales.clone();
        tokio::spawn(async move {
            for i in 0..40 {
                crm.contacts()
                    .create(&actor, contact(&format!("New{i:02}"), "Inserted"))
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    for sort in ["first_name", "-created_at"] {
        let mut seen = Vec::new();
        let mut p = ListParams::new().sort(sort).limit(3);
        loop {
            let page = w.crm.contacts().list(&w.reader, &p).await.unwrap();
            seen.extend(page.data.iter().map(|c| c.id));
            tokio::task::yield_now().await;
            match page.next_cursor {
                Some(c) => p = p.cursor(Some(c)),
                None => break,
            }
        }
        let unique: HashSet<_> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "no record twice ({sort})");
        assert!(
            original.is_subset(&unique),
            "every pre-existing record once ({sort})"
        );
    }
    writer.await.unwrap();
}

pub async fn list_filters_sorts_and_bad_queries(f: Fixture) {
    let w = world(&f).await;
    let a = &w.sales;
    let co = w.create(a, company("Filterco")).await;
    for i in 0..6 {
        w.create(
            a,
            ContactInput {
                company_id: (i % 2 == 0).then_some(co.id),
                has_newsletter: i < 2,
                ..contact(&format!("F{i}"), "L")
            },
        )
        .await;
    }
    let by_company = w
        .list::<Contact>(a, &ListParams::new().filter("company_id", co.id))
        .await;
    assert_eq!(by_company.len(), 3);
    let news = w
        .list::<Contact>(a, &ListParams::new().filter("has_newsletter", true))
        .await;
    assert_eq!(news.len(), 2);
    let day = |d: &str| {
        Timestamp::parse_rfc3339(&format!("{d}T00:00:00Z"))
            .unwrap()
            .date()
    };
    for (i, d) in ["2026-03-01", "2026-03-05", "2026-03-09"]
        .iter()
        .enumerate()
    {
        w.create(
            a,
            TaskInput {
                due_date: Some(day(d)),
                ..task(format!("t{i}"))
            },
        )
        .await;
    }
    w.create(a, task("undated")).await;
    let ranged = w
        .list::<Task>(
            a,
            &ListParams::new()
                .filter("due_date_gte", "2026-03-02")
                .filter("due_date_lte", "2026-03-09"),
        )
        .await;
    assert_eq!(
        ranged.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(),
        ["t1", "t2"]
    );
    let all = w.list::<Task>(a, &ListParams::new().sort("due_date")).await;
    assert_eq!(
        all.last().unwrap().text,
        "undated",
        "nulls sort last ascending"
    );
    let all = w
        .list::<Task>(a, &ListParams::new().sort("-due_date"))
        .await;
    assert_eq!(all.first().unwrap().text, "undated", "and first descending");
    let multi = w
        .list::<Contact>(a, &ListParams::new().filter("first_name", "f1,F3"))
        .await;
    assert_eq!(
        multi.len(),
        2,
        "one-of filters compare text case-insensitively"
    );
    assert_eq!(
        kind(
            w.crm
                .contacts()
                .list(a, &ListParams::new().filter("background", "x"))
                .await
        ),
        ErrorKind::InvalidQuery
    );
    let inlist = w
        .crm
        .tasks()
        .list(a, &ListParams::new().filter("type", "Call,Email"))
        .await
        .unwrap();
    assert!(inlist.data.is_empty());
    for bad in [
        ListParams::new().filter("password", "x"),
        ListParams::new().filter("has_newsletter", "maybe"),
        ListParams::new().filter("company_id", "not-a-uuid"),
        ListParams::new().sort("background"),
        ListParams::new().limit(0),
        ListParams::new().limit(101),
        ListParams::new().filter("tags_gte", Uuid::nil()),
    ] {
        assert_eq!(
            kind(w.crm.contacts().list(a, &bad).await),
            ErrorKind::InvalidQuery,
            "{bad:?}"
        );
    }
    for bad in ["", "garbage", "eyJmaWVsZCI6ImZpcnN0X25hbWUifQ"] {
        assert_eq!(
            kind(
                w.crm
                    .contacts()
                    .list(a, &ListParams::new().cursor(Some(bad.into())))
                    .await
            ),
            ErrorKind::InvalidCursor
        );
    }
    let page = w
        .crm
        .contacts()
        .list(a, &ListParams::new().limit(2).sort("first_name"))
        .await
        .unwrap();
    let err = w
        .crm
        .contacts()
        .list(
            a,
            &ListParams::new()
                .limit(2)
                .sort("last_name")
                .cursor(page.next_cursor),
        )
        .await;
    assert_eq!(
        kind(err),
        ErrorKind::InvalidCursor,
        "a cursor belongs to its sort"
    );
}

pub async fn company_rename_follows_into_contact_search(f: Fixture) {
    let w = world(&f).await;
    let co = w.create(&w.sales, company("Oldname")).await;
    let c = w.create(&w.sales, employee(co.id, "Emp", "Loyee")).await;
    assert_eq!(
        w.all_contacts(&w.sales, ListParams::new().q("oldn"))
            .await
            .len(),
        1
    );
    w.update(&w.sales, co.id, 1, rename_company("Newname"))
        .await;
    assert!(
        w.all_contacts(&w.sales, ListParams::new().q("oldn"))
            .await
            .is_empty()
    );
    let found = w
        .list::<Contact>(&w.sales, &ListParams::new().q("newn"))
        .await;
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].version, c.version,
        "derived data does not bump the contact's version"
    );
    // A pending edit of the contact made from the old version still goes through.
    w.update(&w.sales, c.id, c.version, retitle("x")).await;
}
