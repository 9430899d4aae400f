//! The conformance tests. Each takes a fresh [`Fixture`] and panics on failure.

#![allow(missing_docs, clippy::missing_panics_doc)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::Fixture;
use crate::audit::{AuditAction, AuditQuery};
use crate::clock::{ManualClock, Timestamp};
use crate::error::{ErrorKind, FieldIssue, Result};
use crate::id::{CompanyId, ContactId, Id, UserId};
use crate::model::*;
use crate::query::{Deleted, ListParams};
use crate::{Actor, Crm, CrmConfig};

/// A workspace with one user of each role.
pub struct World {
    pub crm: Crm,
    /// A second instance on the fixture's peer storage (the same data).
    pub peer: Crm,
    pub clock: ManualClock,
    pub admin: Actor,
    pub manager: Actor,
    pub sales: Actor,
    pub sales2: Actor,
    pub reader: Actor,
}

fn user(email: &str, role: Role) -> UserInput {
    UserInput {
        email: email.into(),
        first_name: email.split('@').next().unwrap_or("").into(),
        last_name: "Test".into(),
        role: Some(role),
        avatar: None,
    }
}

/// Builds a world on the fixture's storage.
pub async fn world(f: &Fixture) -> World {
    let clock = ManualClock::new(Timestamp::parse_rfc3339("2026-01-05T09:00:00Z").unwrap());
    let crm = Crm::with_clock(
        f.storage.clone(),
        CrmConfig::default(),
        Arc::new(clock.clone()),
    );
    let peer = Crm::with_clock(f.peer(), CrmConfig::default(), Arc::new(clock.clone()));
    world_on(crm, peer, clock, "Acme").await
}

/// Builds a world on the fixture's storage with engine settings of the test's own.
pub async fn world_with(f: &Fixture, config: CrmConfig) -> World {
    let clock = ManualClock::new(Timestamp::parse_rfc3339("2026-01-05T09:00:00Z").unwrap());
    let crm = Crm::with_clock(f.storage.clone(), config.clone(), Arc::new(clock.clone()));
    let peer = Crm::with_clock(f.peer(), config, Arc::new(clock.clone()));
    world_on(crm, peer, clock, "Acme").await
}

async fn world_on(crm: Crm, peer: Crm, clock: ManualClock, name: &str) -> World {
    let (ws, admin) = crm
        .bootstrap(
            name,
            user(&format!("admin@{}.test", name.to_lowercase()), Role::Admin),
        )
        .await
        .unwrap();
    let admin = crm.actor(ws.id, admin.id).await.unwrap();
    let mk = |email: String, role| {
        let crm = crm.clone();
        let admin = admin.clone();
        async move {
            let u = crm
                .users()
                .create(&admin, user(&email, role))
                .await
                .unwrap();
            crm.actor(admin.workspace_id(), u.id).await.unwrap()
        }
    };
    let d = name.to_lowercase();
    World {
        manager: mk(format!("manager@{d}.test"), Role::Manager).await,
        sales: mk(format!("sales@{d}.test"), Role::Sales).await,
        sales2: mk(format!("sales2@{d}.test"), Role::Sales).await,
        reader: mk(format!("reader@{d}.test"), Role::ReadOnly).await,
        crm,
        peer,
        clock,
        admin,
    }
}

fn contact(first: &str, last: &str) -> ContactInput {
    ContactInput {
        first_name: first.into(),
        last_name: last.into(),
        ..Default::default()
    }
}

fn company(name: &str) -> CompanyInput {
    CompanyInput {
        name: name.into(),
        ..Default::default()
    }
}

fn kind<T: std::fmt::Debug>(r: Result<T>) -> ErrorKind {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.kind(),
    }
}

async fn audit_count(w: &World) -> usize {
    let mut n = 0;
    let mut before = None;
    loop {
        let q = AuditQuery {
            before,
            limit: Some(100),
            ..Default::default()
        };
        let page = w.crm.audit().list(&w.admin, &q).await.unwrap();
        n += page.len();
        match page.last() {
            Some(last) if page.len() == 100 => before = Some(last.id),
            _ => return n,
        }
    }
}

async fn all_contacts(w: &World, actor: &Actor, params: ListParams) -> Vec<Contact> {
    let mut out = Vec::new();
    let mut params = params;
    loop {
        let page = w.crm.contacts().list(actor, &params).await.unwrap();
        out.extend(page.data);
        match page.next_cursor {
            Some(c) => params = params.cursor(Some(c)),
            None => return out,
        }
    }
}

pub async fn bootstrap_makes_first_user_admin(f: Fixture) {
    let crm = Crm::new(f.storage.clone(), CrmConfig::default());
    let (ws, first) = crm
        .bootstrap("  Initech ", user("boss@initech.test", Role::ReadOnly))
        .await
        .unwrap();
    assert_eq!(ws.name, "Initech");
    assert_eq!(
        first.role,
        Role::Admin,
        "the first user of a workspace is its admin"
    );
    let actor = crm.actor(ws.id, first.id).await.unwrap();
    assert_eq!(actor.role(), Role::Admin);
    assert_eq!(crm.workspace(&actor).await.unwrap().id, ws.id);
    let config = crm.configuration().get(&actor).await.unwrap();
    assert!(config.deal_stages.iter().any(|s| s.value == "won"));
    assert_eq!(
        kind(crm.bootstrap(" ", user("x@y.test", Role::Admin)).await),
        ErrorKind::Validation
    );
    assert_eq!(
        kind(
            crm.bootstrap("Bad", user("not-an-email", Role::Admin))
                .await
        ),
        ErrorKind::Validation
    );
}

pub async fn workspaces_are_listed_by_id(f: Fixture) {
    let crm = Crm::new(f.storage.clone(), CrmConfig::default());
    assert!(f.storage.workspaces(10).await.unwrap().is_empty());
    let mut created = Vec::new();
    for name in ["One", "Two", "Three"] {
        let email = format!("admin@{}.test", name.to_lowercase());
        created.push(
            crm.bootstrap(name, user(&email, Role::Admin))
                .await
                .unwrap()
                .0
                .id,
        );
    }
    // A refused bootstrap leaves no workspace behind.
    assert!(
        crm.bootstrap("Bad", user("not-an-email", Role::Admin))
            .await
            .is_err()
    );
    created.sort();
    assert_eq!(f.storage.workspaces(10).await.unwrap(), created);
    assert_eq!(f.storage.workspaces(2).await.unwrap(), created[..2]);
    assert!(f.storage.workspaces(0).await.unwrap().is_empty());
    assert_eq!(f.peer().workspaces(10).await.unwrap(), created);
}

pub async fn crud_lifecycle_of_every_kind(f: Fixture) {
    let w = world(&f).await;
    let a = &w.sales;
    let co = w
        .crm
        .companies()
        .create(
            a,
            CompanyInput {
                name: "Globex".into(),
                website: Some("https://globex.test".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(co.version, 1);
    assert_eq!(
        co.sales_id,
        Some(a.user_id()),
        "owner defaults to the creator"
    );
    assert_eq!(w.crm.companies().get(a, co.id).await.unwrap(), co);
    w.clock.advance(Duration::from_secs(60));
    let co2 = w
        .crm
        .companies()
        .update(
            a,
            co.id,
            1,
            CompanyPatch {
                city: Some(Some("Springfield".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(co2.version, 2);
    assert_eq!(co2.city.as_deref(), Some("Springfield"));
    assert!(co2.updated_at > co.updated_at);
    assert_eq!(w.crm.companies().get(a, co.id).await.unwrap(), co2);
    // Clearing with null.
    let co3 = w
        .crm
        .companies()
        .update(
            a,
            co.id,
            2,
            serde_json::from_str(r#"{"city": null}"#).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(co3.city, None);

    let ct = w
        .crm
        .contacts()
        .create(
            a,
            ContactInput {
                company_id: Some(co.id),
                emails: vec![EmailEntry {
                    email: "hank@globex.test".into(),
                    kind: EmailKind::Work,
                }],
                phones: vec![PhoneEntry {
                    number: "+1 555 0100".into(),
                    kind: PhoneKind::Work,
                }],
                status: Some("warm".into()),
                ..contact("Hank", "Scorpio")
            },
        )
        .await
        .unwrap();
    assert_eq!(ct.company_name.as_deref(), Some("Globex"));
    let deal = w
        .crm
        .deals()
        .create(
            a,
            DealInput {
                name: "Doomsday device".into(),
                company_id: Some(co.id),
                contact_ids: vec![ct.id],
                amount: 1_000_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(deal.stage, "opportunity", "defaults to the first stage");
    let note = w
        .crm
        .notes()
        .create(
            a,
            NoteInput {
                deal_id: Some(deal.id),
                text: "Call back".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let task = w
        .crm
        .tasks()
        .create(
            a,
            TaskInput {
                text: "Send proposal".into(),
                deal_id: Some(deal.id),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(task.owner_id, a.user_id());
    let tag = w
        .crm
        .tags()
        .create(
            a,
            TagInput {
                name: "VIP".into(),
                color: Some("#FF0000".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(tag.color, "#ff0000");
    let n2 = w
        .crm
        .notes()
        .update(
            a,
            note.id,
            1,
            NotePatch {
                text: Some("Called".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(n2.text, "Called");
    let t2 = w
        .crm
        .tasks()
        .update(
            a,
            task.id,
            1,
            TaskPatch {
                priority: Some(Some(Priority::High)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(t2.priority, Some(Priority::High));
    let g2 = w
        .crm
        .tags()
        .update(
            a,
            tag.id,
            1,
            TagPatch {
                name: Some("Very important".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(g2.name, "Very important");
    let d2 = w
        .crm
        .deals()
        .update(
            a,
            deal.id,
            1,
            DealPatch {
                amount: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((d2.amount, d2.version), (5, 2));
    // A patch that changes nothing writes nothing.
    let same = w
        .crm
        .deals()
        .update(
            a,
            deal.id,
            2,
            DealPatch {
                amount: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(same.version, 2);

    w.crm.tags().delete(a, tag.id).await.unwrap();
    assert_eq!(kind(w.crm.tags().get(a, tag.id).await), ErrorKind::NotFound);
    w.crm.tasks().delete(a, task.id).await.unwrap();
    w.crm.notes().delete(a, note.id).await.unwrap();
    w.crm.deals().delete(a, deal.id).await.unwrap();
    w.crm.contacts().delete(a, ct.id).await.unwrap();
    w.crm.companies().delete(a, co.id).await.unwrap();
    assert_eq!(
        kind(w.crm.companies().get(a, co.id).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(w.crm.companies().delete(a, co.id).await),
        ErrorKind::NotFound
    );
    assert!(
        w.crm
            .companies()
            .list(a, &ListParams::new())
            .await
            .unwrap()
            .data
            .is_empty()
    );
}

pub async fn validation_reports_every_field_and_writes_nothing(f: Fixture) {
    let w = world(&f).await;
    let before = audit_count(&w).await;
    let err = w
        .crm
        .contacts()
        .create(
            &w.sales,
            ContactInput {
                first_name: "   ".into(),
                last_name: "x".repeat(201),
                emails: vec![EmailEntry {
                    email: "nope".into(),
                    kind: EmailKind::Home,
                }],
                phones: vec![PhoneEntry {
                    number: "call me".into(),
                    kind: PhoneKind::Other,
                }],
                company_id: Some(CompanyId::generate()),
                status: Some("lukewarm".into()),
                linkedin_url: Some("javascript:alert(1)".into()),
                tags: (0..51).map(|_| Id::generate()).collect(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    assert_eq!(err.to_string(), "Unable to save contact (E2001)");
    let fields: HashSet<(&str, FieldIssue)> = err
        .fields()
        .iter()
        .map(|f| (f.field.as_str(), f.issue))
        .collect();
    for expected in [
        ("first_name", FieldIssue::Required),
        ("last_name", FieldIssue::TooLong),
        ("emails[0].email", FieldIssue::InvalidFormat),
        ("phones[0].number", FieldIssue::InvalidFormat),
        ("company_id", FieldIssue::UnknownReference),
        ("status", FieldIssue::NotAllowed),
        ("linkedin_url", FieldIssue::InvalidFormat),
        ("tags", FieldIssue::TooMany),
    ] {
        assert!(
            fields.contains(&expected),
            "missing {expected:?} in {fields:?}"
        );
    }
    for field in err.fields() {
        assert!(
            !field.message.contains("nope") && !field.message.contains("lukewarm"),
            "messages never echo input"
        );
    }
    let err = w
        .crm
        .deals()
        .create(
            &w.sales,
            DealInput {
                name: "".into(),
                amount: -1,
                stage: Some("nowhere".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    let fields: Vec<&str> = err.fields().iter().map(|f| f.field.as_str()).collect();
    assert!(
        fields.contains(&"name") && fields.contains(&"amount") && fields.contains(&"stage"),
        "{fields:?}"
    );
    assert_eq!(
        kind(
            w.crm
                .notes()
                .create(
                    &w.sales,
                    NoteInput {
                        text: "orphan".into(),
                        ..Default::default()
                    }
                )
                .await
        ),
        ErrorKind::Validation
    );
    assert_eq!(
        kind(
            w.crm
                .tasks()
                .create(
                    &w.sales,
                    TaskInput {
                        text: "".into(),
                        ..Default::default()
                    }
                )
                .await
        ),
        ErrorKind::Validation
    );
    assert_eq!(
        kind(
            w.crm
                .tags()
                .create(
                    &w.sales,
                    TagInput {
                        name: "t".into(),
                        color: Some("red".into())
                    }
                )
                .await
        ),
        ErrorKind::Validation
    );
    assert_eq!(
        kind(
            w.crm
                .companies()
                .create(
                    &w.sales,
                    CompanyInput {
                        name: "A".into(),
                        size: Some(7),
                        website: Some("ftp://x".into()),
                        ..Default::default()
                    }
                )
                .await
        ),
        ErrorKind::Validation
    );
    // A failed update leaves the record as it was.
    let c = w
        .crm
        .contacts()
        .create(&w.sales, contact("Ok", "Fine"))
        .await
        .unwrap();
    assert_eq!(
        kind(
            w.crm
                .contacts()
                .update(
                    &w.sales,
                    c.id,
                    1,
                    ContactPatch {
                        first_name: Some("".into()),
                        ..Default::default()
                    }
                )
                .await
        ),
        ErrorKind::Validation
    );
    assert_eq!(w.crm.contacts().get(&w.sales, c.id).await.unwrap(), c);
    assert_eq!(
        audit_count(&w).await,
        before + 1,
        "only the one successful create was audited"
    );
    assert_eq!(
        w.crm
            .contacts()
            .list(&w.sales, &ListParams::new())
            .await
            .unwrap()
            .data
            .len(),
        1
    );
}

pub async fn unknown_and_foreign_ids_are_not_found(f: Fixture) {
    let w = world(&f).await;
    let other = world_on(w.crm.clone(), w.peer.clone(), w.clock.clone(), "Other").await;
    let theirs = w
        .crm
        .contacts()
        .create(&other.admin, contact("Their", "Contact"))
        .await
        .unwrap();
    let their_co = w
        .crm
        .companies()
        .create(&other.admin, company("Theirs"))
        .await
        .unwrap();
    for id in [theirs.id, ContactId::generate()] {
        assert_eq!(
            kind(w.crm.contacts().get(&w.admin, id).await),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind(
                w.crm
                    .contacts()
                    .update(&w.admin, id, 1, ContactPatch::default())
                    .await
            ),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind(w.crm.contacts().delete(&w.admin, id).await),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind(w.crm.contacts().restore(&w.admin, id).await),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind(w.crm.contacts().purge(&w.admin, id).await),
            ErrorKind::NotFound
        );
    }
    // Referencing another workspace's record is an unknown reference.
    let err = w
        .crm
        .contacts()
        .create(
            &w.admin,
            ContactInput {
                company_id: Some(their_co.id),
                ..contact("A", "B")
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.fields()[0].issue, FieldIssue::UnknownReference);
    // Their record is untouched.
    assert_eq!(
        w.crm.contacts().get(&other.admin, theirs.id).await.unwrap(),
        theirs
    );
    // An actor of one workspace cannot be resolved in another.
    assert_eq!(
        kind(
            w.crm
                .actor(other.admin.workspace_id(), w.admin.user_id())
                .await
        ),
        ErrorKind::Unauthenticated
    );
    assert_eq!(
        kind(w.crm.users().get(&w.admin, other.admin.user_id()).await),
        ErrorKind::NotFound
    );
}

pub async fn stale_version_is_a_conflict(f: Fixture) {
    let w = world(&f).await;
    let c = w
        .crm
        .contacts()
        .create(&w.sales, contact("Ver", "Sion"))
        .await
        .unwrap();
    let c2 = w
        .crm
        .contacts()
        .update(
            &w.sales,
            c.id,
            1,
            ContactPatch {
                title: Some(Some("CEO".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let err = w
        .crm
        .contacts()
        .update(
            &w.sales,
            c.id,
            1,
            ContactPatch {
                title: Some(Some("CTO".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::VersionConflict);
    assert_eq!(err.http_status(), 409);
    assert_eq!(w.crm.contacts().get(&w.sales, c.id).await.unwrap(), c2);
    assert_eq!(
        kind(
            w.crm
                .configuration()
                .update(&w.admin, 99, ConfigurationPatch::default())
                .await
        ),
        ErrorKind::VersionConflict
    );
}

pub async fn concurrent_updates_exactly_one_wins(f: Fixture) {
    let w = world(&f).await;
    let c = w
        .crm
        .contacts()
        .create(&w.sales, contact("Race", "Condition"))
        .await
        .unwrap();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..16 {
        // Half through each instance (the same one unless the backend has a peer).
        let crm = if i % 2 == 0 { &w.crm } else { &w.peer }.clone();
        let actor = w.sales.clone();
        set.spawn(async move {
            crm.contacts()
                .update(
                    &actor,
                    c.id,
                    1,
                    ContactPatch {
                        title: Some(Some(format!("title {i}"))),
                        ..Default::default()
                    },
                )
                .await
        });
    }
    let mut ok = 0;
    while let Some(r) = set.join_next().await {
        match r.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.kind(), ErrorKind::VersionConflict),
        }
    }
    assert_eq!(ok, 1, "exactly one of the concurrent updates wins");
    assert_eq!(
        w.crm.contacts().get(&w.sales, c.id).await.unwrap().version,
        2
    );
    let q = AuditQuery {
        record_id: Some(c.id.uuid()),
        ..Default::default()
    };
    assert_eq!(
        w.crm.audit().list(&w.admin, &q).await.unwrap().len(),
        2,
        "create + the one winning update"
    );
}

pub async fn permission_matrix_is_enforced(f: Fixture) {
    let w = world(&f).await;
    let crm = &w.crm;
    // Records: everyone reads; read_only cannot write.
    let c = crm
        .contacts()
        .create(&w.sales, contact("Shared", "Record"))
        .await
        .unwrap();
    for a in [&w.admin, &w.manager, &w.sales, &w.reader] {
        crm.contacts().get(a, c.id).await.unwrap();
        crm.companies().list(a, &ListParams::new()).await.unwrap();
        crm.users().list(a, &ListParams::new()).await.unwrap();
        crm.configuration().get(a).await.unwrap();
        crm.activity().list(a, None, 10).await.unwrap();
    }
    assert_eq!(
        kind(crm.contacts().create(&w.reader, contact("No", "Way")).await),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(crm.companies().create(&w.reader, company("Nope")).await),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(
            crm.tags()
                .create(
                    &w.reader,
                    TagInput {
                        name: "x".into(),
                        color: None
                    }
                )
                .await
        ),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(
            crm.contacts()
                .update(&w.reader, c.id, 1, ContactPatch::default())
                .await
        ),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(crm.contacts().delete(&w.reader, c.id).await),
        ErrorKind::Forbidden
    );
    let c = crm
        .contacts()
        .update(
            &w.manager,
            c.id,
            1,
            ContactPatch {
                title: Some(Some("M".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // Restore and purge: admin only; merge: admin and manager; trash listing follows restore.
    crm.contacts().delete(&w.sales, c.id).await.unwrap();
    for a in [&w.manager, &w.sales, &w.reader] {
        assert_eq!(
            kind(crm.contacts().restore(a, c.id).await),
            ErrorKind::Forbidden,
            "{:?}",
            a.role()
        );
        assert_eq!(
            kind(crm.contacts().purge(a, c.id).await),
            ErrorKind::Forbidden
        );
        assert_eq!(
            kind(
                crm.contacts()
                    .list(a, &ListParams::new().deleted(Deleted::Only))
                    .await
            ),
            ErrorKind::Forbidden
        );
    }
    assert_eq!(
        crm.contacts()
            .list(&w.admin, &ListParams::new().deleted(Deleted::Only))
            .await
            .unwrap()
            .data
            .len(),
        1
    );
    crm.contacts().restore(&w.admin, c.id).await.unwrap();
    let other = crm
        .contacts()
        .create(&w.sales, contact("Dup", "Record"))
        .await
        .unwrap();
    for a in [&w.sales, &w.reader] {
        assert_eq!(
            kind(crm.contacts().merge(a, c.id, other.id).await),
            ErrorKind::Forbidden
        );
    }
    crm.contacts()
        .merge(&w.manager, c.id, other.id)
        .await
        .unwrap();
    // Audit: admin and manager.
    crm.audit()
        .list(&w.admin, &AuditQuery::default())
        .await
        .unwrap();
    crm.audit()
        .list(&w.manager, &AuditQuery::default())
        .await
        .unwrap();
    assert_eq!(
        kind(crm.audit().list(&w.sales, &AuditQuery::default()).await),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(crm.audit().list(&w.reader, &AuditQuery::default()).await),
        ErrorKind::Forbidden
    );
    // Configuration: admin only.
    for a in [&w.manager, &w.sales, &w.reader] {
        assert_eq!(
            kind(
                crm.configuration()
                    .update(a, 1, ConfigurationPatch::default())
                    .await
            ),
            ErrorKind::Forbidden
        );
    }
    // Users: admins administer; everyone updates their own profile only.
    for a in [&w.manager, &w.sales, &w.reader] {
        assert_eq!(
            kind(
                crm.users()
                    .create(a, user("new@acme.test", Role::Sales))
                    .await
            ),
            ErrorKind::Forbidden
        );
        let target = crm.users().get(a, w.sales2.user_id()).await.unwrap();
        assert_eq!(
            kind(
                crm.users()
                    .set_role(a, target.id, target.version, Role::Admin)
                    .await
            ),
            ErrorKind::Forbidden
        );
        assert_eq!(
            kind(
                crm.users()
                    .set_disabled(a, target.id, target.version, true)
                    .await
            ),
            ErrorKind::Forbidden
        );
        assert_eq!(
            kind(
                crm.users()
                    .update_profile(
                        a,
                        target.id,
                        target.version,
                        UserPatch {
                            first_name: Some("X".into()),
                            ..Default::default()
                        }
                    )
                    .await
            ),
            ErrorKind::Forbidden
        );
        let me = crm.users().get(a, a.user_id()).await.unwrap();
        crm.users()
            .update_profile(
                a,
                me.id,
                me.version,
                UserPatch {
                    last_name: Some("Renamed".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    let target = crm.users().get(&w.admin, w.sales2.user_id()).await.unwrap();
    crm.users()
        .update_profile(
            &w.admin,
            target.id,
            target.version,
            UserPatch {
                first_name: Some("Y".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

pub async fn tasks_are_own_only_for_sales_and_read_only(f: Fixture) {
    let w = world(&f).await;
    let crm = &w.crm;
    let mine = crm
        .tasks()
        .create(
            &w.sales,
            TaskInput {
                text: "mine".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let theirs = crm
        .tasks()
        .create(
            &w.sales2,
            TaskInput {
                text: "theirs".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let readers = crm
        .tasks()
        .create(
            &w.manager,
            TaskInput {
                text: "for reader".into(),
                owner_id: Some(w.reader.user_id()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let listed: Vec<_> = crm
        .tasks()
        .list(&w.sales, &ListParams::new())
        .await
        .unwrap()
        .data
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(listed, vec![mine.id]);
    // Asking for someone else's tasks by filter still shows only one's own.
    let filtered = crm
        .tasks()
        .list(
            &w.sales,
            &ListParams::new().filter("owner_id", w.sales2.user_id()),
        )
        .await
        .unwrap();
    assert!(filtered.data.is_empty());
    // Others' tasks do not exist: 404, not 403.
    assert_eq!(
        kind(crm.tasks().get(&w.sales, theirs.id).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(
            crm.tasks()
                .update(&w.sales, theirs.id, 1, TaskPatch::default())
                .await
        ),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(crm.tasks().delete(&w.sales, theirs.id).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(crm.tasks().complete(&w.sales, theirs.id, 1, true).await),
        ErrorKind::NotFound
    );
    // Sales cannot hand tasks to others, nor create them for others.
    assert_eq!(
        kind(
            crm.tasks()
                .update(
                    &w.sales,
                    mine.id,
                    1,
                    TaskPatch {
                        owner_id: Some(w.sales2.user_id()),
                        ..Default::default()
                    }
                )
                .await
        ),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(
            crm.tasks()
                .create(
                    &w.sales,
                    TaskInput {
                        text: "x".into(),
                        owner_id: Some(w.sales2.user_id()),
                        ..Default::default()
                    }
                )
                .await
        ),
        ErrorKind::Forbidden
    );
    // Read-only users read their own tasks and nothing else, and change none.
    assert_eq!(
        crm.tasks()
            .list(&w.reader, &ListParams::new())
            .await
            .unwrap()
            .data
            .len(),
        1
    );
    crm.tasks().get(&w.reader, readers.id).await.unwrap();
    assert_eq!(
        kind(crm.tasks().get(&w.reader, mine.id).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(crm.tasks().complete(&w.reader, readers.id, 1, true).await),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(
            crm.tasks()
                .create(
                    &w.reader,
                    TaskInput {
                        text: "x".into(),
                        ..Default::default()
                    }
                )
                .await
        ),
        ErrorKind::Forbidden
    );
    // Managers and admins see everyone's.
    assert_eq!(
        crm.tasks()
            .list(&w.manager, &ListParams::new())
            .await
            .unwrap()
            .data
            .len(),
        3
    );
    crm.tasks()
        .update(
            &w.admin,
            theirs.id,
            1,
            TaskPatch {
                text: Some("edited by admin".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

pub async fn workspaces_are_isolated(f: Fixture) {
    let a = world(&f).await;
    let b = world_on(a.crm.clone(), a.peer.clone(), a.clock.clone(), "Beta").await;
    let ca = a
        .crm
        .contacts()
        .create(&a.admin, contact("Alpha", "Person"))
        .await
        .unwrap();
    let cb = b
        .crm
        .contacts()
        .create(&b.admin, contact("Alpha", "Person"))
        .await
        .unwrap();
    b.crm
        .companies()
        .create(&b.admin, company("Alpha Corp"))
        .await
        .unwrap();
    b.crm
        .tasks()
        .create(
            &b.admin,
            TaskInput {
                text: "beta task".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let la = a
        .crm
        .contacts()
        .list(&a.admin, &ListParams::new())
        .await
        .unwrap()
        .data;
    assert_eq!(la.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ca.id]);
    assert!(
        a.crm
            .companies()
            .list(&a.admin, &ListParams::new())
            .await
            .unwrap()
            .data
            .is_empty()
    );
    assert!(
        a.crm
            .tasks()
            .list(&a.admin, &ListParams::new())
            .await
            .unwrap()
            .data
            .is_empty()
    );
    let s = a.crm.search(&a.admin, "alpha", 10).await.unwrap();
    assert_eq!(s.contacts.len(), 1);
    assert!(s.companies.is_empty());
    assert_eq!(
        kind(a.crm.contacts().get(&a.admin, cb.id).await),
        ErrorKind::NotFound
    );
    let audit = a
        .crm
        .audit()
        .list(
            &a.admin,
            &AuditQuery {
                limit: Some(100),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .all(|e| e.workspace_id == a.admin.workspace_id())
    );
    assert!(audit.iter().all(|e| e.record_id != cb.id.uuid()));
    // Same email in two workspaces is fine; users lists are separate.
    assert_eq!(
        a.crm
            .users()
            .list(&a.admin, &ListParams::new())
            .await
            .unwrap()
            .data
            .len(),
        5
    );
}

pub async fn audit_is_atomic_with_changes(f: Fixture) {
    let w = world(&f).await;
    let c = w
        .crm
        .contacts()
        .create(&w.sales, contact("Audit", "Me"))
        .await
        .unwrap();
    w.clock.advance(Duration::from_secs(5));
    w.crm
        .contacts()
        .update(
            &w.sales,
            c.id,
            1,
            ContactPatch {
                title: Some(Some("Boss".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    w.crm.contacts().delete(&w.sales, c.id).await.unwrap();
    w.crm.contacts().restore(&w.admin, c.id).await.unwrap();
    let entries = w
        .crm
        .audit()
        .list(
            &w.manager,
            &AuditQuery {
                record_id: Some(c.id.uuid()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let actions: Vec<AuditAction> = entries.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        vec![
            AuditAction::Restore,
            AuditAction::Delete,
            AuditAction::Update,
            AuditAction::Create
        ],
        "newest first"
    );
    let update = &entries[2];
    assert_eq!(update.actor_id, Some(w.sales.user_id()));
    assert_eq!(update.changes.len(), 1);
    assert_eq!(update.changes[0].field, "title");
    assert_eq!(update.changes[0].before, serde_json::Value::Null);
    assert_eq!(update.changes[0].after, serde_json::json!("Boss"));
    assert!(
        entries[3]
            .changes
            .iter()
            .any(|ch| ch.field == "first_name" && ch.after == serde_json::json!("Audit"))
    );
    // Failed operations leave no entry.
    let n = audit_count(&w).await;
    let _ = w
        .crm
        .contacts()
        .update(&w.sales, c.id, 1, ContactPatch::default())
        .await
        .unwrap_err();
    let _ = w
        .crm
        .contacts()
        .create(&w.reader, contact("No", "Entry"))
        .await
        .unwrap_err();
    let _ = w
        .crm
        .contacts()
        .create(&w.sales, contact("", ""))
        .await
        .unwrap_err();
    assert_eq!(audit_count(&w).await, n);
    // Filters by kind and action.
    let creates = w
        .crm
        .audit()
        .list(
            &w.admin,
            &AuditQuery {
                entities: vec![EntityKind::User],
                actions: vec![AuditAction::Create],
                limit: Some(100),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(creates.len(), 5);
    assert_eq!(
        kind(
            w.crm
                .audit()
                .list(
                    &w.admin,
                    &AuditQuery {
                        limit: Some(0),
                        ..Default::default()
                    }
                )
                .await
        ),
        ErrorKind::InvalidQuery
    );
}

pub async fn activity_feed_lists_creations(f: Fixture) {
    let w = world(&f).await;
    let co = w
        .crm
        .companies()
        .create(&w.sales, company("Feedco"))
        .await
        .unwrap();
    let ct = w
        .crm
        .contacts()
        .create(&w.sales, contact("Fee", "Der"))
        .await
        .unwrap();
    let d = w
        .crm
        .deals()
        .create(
            &w.sales,
            DealInput {
                name: "Big one".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    w.crm
        .notes()
        .create(
            &w.sales,
            NoteInput {
                contact_id: Some(ct.id),
                text: "met".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    w.crm
        .tasks()
        .create(
            &w.sales,
            TaskInput {
                text: "private".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    w.crm
        .companies()
        .update(
            &w.sales,
            co.id,
            1,
            CompanyPatch {
                city: Some(Some("X".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let feed = w.crm.activity().list(&w.reader, None, 10).await.unwrap();
    let kinds: Vec<EntityKind> = feed.iter().map(|i| i.entity).collect();
    assert_eq!(
        kinds,
        vec![
            EntityKind::Note,
            EntityKind::Deal,
            EntityKind::Contact,
            EntityKind::Company
        ]
    );
    assert_eq!(feed[1].label, d.name);
    assert_eq!(feed[2].record_id, ct.id.uuid());
    let older = w
        .crm
        .activity()
        .list(&w.reader, Some(feed[1].audit_id), 10)
        .await
        .unwrap();
    assert_eq!(older.len(), 2);
}

pub async fn search_matches_word_prefixes(f: Fixture) {
    let w = world(&f).await;
    let a = &w.sales;
    let acme = w
        .crm
        .companies()
        .create(
            a,
            CompanyInput {
                name: "Acme Rockets".into(),
                city: Some("Tucson".into()),
                phone_number: Some("+1 (520) 555-0199".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let john = w
        .crm
        .contacts()
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
        .await
        .unwrap();
    let joanna = w
        .crm
        .contacts()
        .create(a, contact("Joanna", "Smithers"))
        .await
        .unwrap();
    let bob = w
        .crm
        .contacts()
        .create(a, contact("Bob", "Jones"))
        .await
        .unwrap();
    let gone = w
        .crm
        .contacts()
        .create(a, contact("Johnny", "Deleted"))
        .await
        .unwrap();
    w.crm.contacts().delete(a, gone.id).await.unwrap();
    w.crm
        .deals()
        .create(
            a,
            DealInput {
                name: "Rocket fuel supply".into(),
                description: Some("Annual contract".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let ids = |cs: Vec<Contact>| cs.into_iter().map(|c| c.id).collect::<HashSet<_>>();
    let q = |s: &str| ListParams::new().q(s);
    assert_eq!(
        ids(all_contacts(&w, a, q("jo")).await),
        HashSet::from([john.id, joanna.id, bob.id])
    );
    assert_eq!(
        ids(all_contacts(&w, a, q("smith")).await),
        HashSet::from([john.id, joanna.id])
    );
    assert_eq!(
        ids(all_contacts(&w, a, q("JO SMITHE")).await),
        HashSet::from([joanna.id]),
        "every term must match"
    );
    assert_eq!(
        ids(all_contacts(&w, a, q("acme")).await),
        HashSet::from([john.id]),
        "company name and email domain"
    );
    assert_eq!(
        ids(all_contacts(&w, a, q("chief")).await),
        HashSet::from([john.id])
    );
    assert_eq!(
        ids(all_contacts(&w, a, q("john.smith@acme")).await),
        HashSet::from([john.id])
    );
    assert_eq!(
        ids(all_contacts(&w, a, q("442079")).await),
        HashSet::from([john.id]),
        "phone digits"
    );
    assert_eq!(
        ids(all_contacts(&w, a, q("mith")).await),
        HashSet::from([john.id]),
        "inside an email address (john.smith@), never inside a name (Smithers)"
    );
    assert!(
        all_contacts(&w, a, q("mi")).await.is_empty(),
        "two chars match word prefixes only, not inside emails"
    );
    assert_eq!(
        ids(all_contacts(&w, a, q("cme")).await),
        HashSet::from([john.id]),
        "inside the email domain"
    );
    assert!(
        w.crm
            .companies()
            .list(a, &q("cme"))
            .await
            .unwrap()
            .data
            .is_empty(),
        "company names are prefix-only"
    );
    assert!(
        all_contacts(&w, a, q("johnny")).await.is_empty(),
        "deleted records are not found"
    );
    let companies = w.crm.companies().list(a, &q("tucs")).await.unwrap().data;
    assert_eq!(companies.len(), 1);
    for digits in ["5550199", "0199"] {
        let found = w.crm.companies().list(a, &q(digits)).await.unwrap().data;
        assert_eq!(
            found.iter().map(|c| c.id).collect::<Vec<_>>(),
            [acme.id],
            "digits inside the phone number: {digits}"
        );
    }
    let deals = w.crm.deals().list(a, &q("annual")).await.unwrap().data;
    assert_eq!(deals.len(), 1);
    let all = w.crm.search(&w.reader, "rock", 5).await.unwrap();
    assert_eq!(
        (all.companies.len(), all.contacts.len(), all.deals.len()),
        (1, 1, 1),
        "John works at Acme Rockets"
    );
    // Search combines with filters and paging.
    let filtered = all_contacts(&w, a, q("smith").filter("company_id", acme.id)).await;
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
            .crm
            .contacts()
            .create(
                &w.sales,
                ContactInput {
                    status: [None, Some("hot".to_string()), Some("cold".to_string())]
                        [i as usize % 3]
                        .clone(),
                    ..contact(names[i as usize % names.len()], &format!("N{:02}", i % 10))
                },
            )
            .await
            .unwrap();
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
            let walked =
                all_contacts(&w, &w.reader, ListParams::new().sort(sort).limit(limit)).await;
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
    let hot = all_contacts(
        &w,
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
            w.crm
                .contacts()
                .create(&w.sales, contact(&format!("Orig{i:02}"), "Walker"))
                .await
                .unwrap()
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

pub async fn soft_delete_restore_and_purge(f: Fixture) {
    let w = world(&f).await;
    let a = &w.sales;
    let c = w
        .crm
        .contacts()
        .create(a, contact("Trash", "Can"))
        .await
        .unwrap();
    let d = w
        .crm
        .deals()
        .create(
            a,
            DealInput {
                name: "Linked".into(),
                contact_ids: vec![c.id],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let n = w
        .crm
        .notes()
        .create(
            a,
            NoteInput {
                contact_id: Some(c.id),
                text: "hello".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let t = w
        .crm
        .tasks()
        .create(
            a,
            TaskInput {
                text: "call".into(),
                contact_id: Some(c.id),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        kind(w.crm.contacts().restore(&w.admin, c.id).await),
        ErrorKind::NotFound,
        "restore needs a deleted record"
    );
    assert_eq!(
        kind(w.crm.contacts().purge(&w.admin, c.id).await),
        ErrorKind::NotFound,
        "purge needs a deleted record"
    );
    w.crm.contacts().delete(a, c.id).await.unwrap();
    assert!(
        w.crm
            .contacts()
            .list(a, &ListParams::new())
            .await
            .unwrap()
            .data
            .is_empty()
    );
    assert_eq!(
        kind(
            w.crm
                .contacts()
                .update(a, c.id, 3, ContactPatch::default())
                .await
        ),
        ErrorKind::NotFound
    );
    // A deleted record cannot be referenced.
    assert_eq!(
        kind(
            w.crm
                .notes()
                .create(
                    a,
                    NoteInput {
                        contact_id: Some(c.id),
                        text: "x".into(),
                        ..Default::default()
                    }
                )
                .await
        ),
        ErrorKind::Validation
    );
    let trash = w
        .crm
        .contacts()
        .list(&w.admin, &ListParams::new().deleted(Deleted::Only))
        .await
        .unwrap()
        .data;
    assert_eq!(trash.len(), 1);
    let restored = w.crm.contacts().restore(&w.admin, c.id).await.unwrap();
    assert_eq!(restored.deleted_at, None);
    w.crm.contacts().get(a, c.id).await.unwrap();
    w.crm.contacts().delete(a, c.id).await.unwrap();
    w.crm.contacts().purge(&w.admin, c.id).await.unwrap();
    assert!(
        w.crm
            .contacts()
            .list(&w.admin, &ListParams::new().deleted(Deleted::Include))
            .await
            .unwrap()
            .data
            .is_empty()
    );
    assert_eq!(
        kind(w.crm.notes().get(a, n.id).await),
        ErrorKind::NotFound,
        "its notes are purged with it"
    );
    assert_eq!(
        w.crm.tasks().get(a, t.id).await.unwrap().contact_id,
        None,
        "references are cleared"
    );
    assert!(
        w.crm
            .deals()
            .get(a, d.id)
            .await
            .unwrap()
            .contact_ids
            .is_empty()
    );
    let purges = w
        .crm
        .audit()
        .list(
            &w.admin,
            &AuditQuery {
                actions: vec![AuditAction::Purge],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(purges.len(), 2, "the contact and its note");
}

pub async fn merge_contacts_moves_everything(f: Fixture) {
    let w = world(&f).await;
    let a = &w.sales;
    let co = w
        .crm
        .companies()
        .create(a, company("Mergeco"))
        .await
        .unwrap();
    let tag = w
        .crm
        .tags()
        .create(
            a,
            TagInput {
                name: "lead".into(),
                color: None,
            },
        )
        .await
        .unwrap();
    let winner = w
        .crm
        .contacts()
        .create(
            a,
            ContactInput {
                emails: vec![EmailEntry {
                    email: "a@x.test".into(),
                    kind: EmailKind::Work,
                }],
                ..contact("Win", "Ner")
            },
        )
        .await
        .unwrap();
    let loser = w
        .crm
        .contacts()
        .create(
            a,
            ContactInput {
                title: Some("CFO".into()),
                company_id: Some(co.id),
                tags: vec![tag.id],
                emails: vec![
                    EmailEntry {
                        email: "A@x.test".into(),
                        kind: EmailKind::Work,
                    },
                    EmailEntry {
                        email: "b@x.test".into(),
                        kind: EmailKind::Home,
                    },
                ],
                ..contact("Lo", "Ser")
            },
        )
        .await
        .unwrap();
    let note = w
        .crm
        .notes()
        .create(
            a,
            NoteInput {
                contact_id: Some(loser.id),
                text: "n".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let task = w
        .crm
        .tasks()
        .create(
            a,
            TaskInput {
                text: "t".into(),
                contact_id: Some(loser.id),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let deal = w
        .crm
        .deals()
        .create(
            a,
            DealInput {
                name: "d".into(),
                contact_ids: vec![loser.id, winner.id],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        kind(w.crm.contacts().merge(&w.admin, winner.id, winner.id).await),
        ErrorKind::InvalidState
    );
    let merged = w
        .crm
        .contacts()
        .merge(&w.admin, winner.id, loser.id)
        .await
        .unwrap();
    assert_eq!(merged.first_name, "Win", "the winner's values win");
    assert_eq!(
        merged.title.as_deref(),
        Some("CFO"),
        "empty fields are filled from the loser"
    );
    assert_eq!(merged.company_id, Some(co.id));
    assert_eq!(merged.company_name.as_deref(), Some("Mergeco"));
    assert_eq!(
        merged.emails.len(),
        2,
        "emails are unioned case-insensitively"
    );
    assert_eq!(merged.tags, vec![tag.id]);
    assert_eq!(w.crm.contacts().get(a, winner.id).await.unwrap(), merged);
    assert_eq!(
        kind(w.crm.contacts().get(a, loser.id).await),
        ErrorKind::NotFound,
        "the loser is gone from view"
    );
    assert_eq!(
        w.crm.notes().get(a, note.id).await.unwrap().contact_id,
        Some(winner.id)
    );
    assert_eq!(
        w.crm.tasks().get(a, task.id).await.unwrap().contact_id,
        Some(winner.id)
    );
    assert_eq!(
        w.crm.deals().get(a, deal.id).await.unwrap().contact_ids,
        vec![winner.id]
    );
    assert_eq!(
        w.crm
            .contacts()
            .list(&w.admin, &ListParams::new().deleted(Deleted::Only))
            .await
            .unwrap()
            .data
            .len(),
        1,
        "the loser stays in the trash"
    );
    let merges = w
        .crm
        .audit()
        .list(
            &w.admin,
            &AuditQuery {
                actions: vec![AuditAction::Merge],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(merges.len(), 2);
    assert_eq!(
        kind(w.crm.contacts().merge(&w.admin, winner.id, loser.id).await),
        ErrorKind::NotFound
    );
}

pub async fn deals_archive_and_move(f: Fixture) {
    let w = world(&f).await;
    let a = &w.sales;
    let mut ids = Vec::new();
    for name in ["d0", "d1", "d2"] {
        ids.push(
            w.crm
                .deals()
                .create(
                    a,
                    DealInput {
                        name: name.into(),
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
                .id,
        );
    }
    let board = |stage: &'static str| {
        let crm = w.crm.clone();
        let a = a.clone();
        async move {
            crm.deals()
                .list(
                    &a,
                    &ListParams::new()
                        .filter("stage", stage)
                        .filter("archived", false)
                        .sort("index"),
                )
                .await
                .unwrap()
                .data
                .into_iter()
                .map(|d| d.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(board("opportunity").await, ["d0", "d1", "d2"]);
    let d2 = w.crm.deals().get(a, ids[2]).await.unwrap();
    let moved = w
        .crm
        .deals()
        .move_to(a, d2.id, d2.version, "opportunity", 0)
        .await
        .unwrap();
    assert_eq!(moved.version, d2.version + 1);
    assert_eq!(board("opportunity").await, ["d2", "d0", "d1"]);
    let d0 = w.crm.deals().get(a, ids[0]).await.unwrap();
    w.crm
        .deals()
        .move_to(a, d0.id, d0.version, "won", 5)
        .await
        .unwrap();
    assert_eq!(board("opportunity").await, ["d2", "d1"]);
    assert_eq!(board("won").await, ["d0"]);
    // Repeated moves into the same slot eventually renumber the stage; order stays right.
    for _ in 0..15 {
        let d1 = w.crm.deals().get(a, ids[1]).await.unwrap();
        w.crm
            .deals()
            .move_to(a, d1.id, d1.version, "opportunity", 1)
            .await
            .unwrap();
        let d2 = w.crm.deals().get(a, ids[2]).await.unwrap();
        w.crm
            .deals()
            .move_to(a, d2.id, d2.version, "opportunity", 1)
            .await
            .unwrap();
    }
    assert_eq!(board("opportunity").await, ["d1", "d2"]);
    assert_eq!(
        kind(w.crm.deals().move_to(a, ids[1], 1, "opportunity", 0).await),
        ErrorKind::VersionConflict
    );
    let d1 = w.crm.deals().get(a, ids[1]).await.unwrap();
    assert_eq!(
        kind(
            w.crm
                .deals()
                .move_to(a, d1.id, d1.version, "no-such-stage", 0)
                .await
        ),
        ErrorKind::Validation
    );
    let archived = w.crm.deals().archive(a, d1.id, d1.version).await.unwrap();
    assert!(archived.archived_at.is_some());
    assert_eq!(board("opportunity").await, ["d2"]);
    w.crm.deals().get(a, d1.id).await.unwrap();
    assert_eq!(
        kind(w.crm.deals().archive(a, d1.id, archived.version).await),
        ErrorKind::InvalidState
    );
    assert_eq!(
        kind(
            w.crm
                .deals()
                .move_to(a, d1.id, archived.version, "won", 0)
                .await
        ),
        ErrorKind::InvalidState
    );
    assert_eq!(
        kind(
            w.crm
                .deals()
                .archive(&w.reader, d1.id, archived.version)
                .await
        ),
        ErrorKind::Forbidden
    );
    let back = w
        .crm
        .deals()
        .unarchive(a, d1.id, archived.version)
        .await
        .unwrap();
    assert!(back.archived_at.is_none());
    assert_eq!(
        board("opportunity").await,
        ["d2", "d1"],
        "unarchived deals go to the end of their stage"
    );
}

pub async fn contact_notes_move_last_seen(f: Fixture) {
    let w = world(&f).await;
    let c = w
        .crm
        .contacts()
        .create(&w.sales, contact("Seen", "Often"))
        .await
        .unwrap();
    w.clock.advance(Duration::from_secs(3600));
    let note = w
        .crm
        .notes()
        .create(
            &w.sales,
            NoteInput {
                contact_id: Some(c.id),
                text: "Coffee".into(),
                status: Some("hot".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(note.sales_id, Some(w.sales.user_id()));
    let after = w.crm.contacts().get(&w.sales, c.id).await.unwrap();
    assert_eq!(after.last_seen, w.crm.now());
    assert!(after.last_seen > c.last_seen);
    assert_eq!(after.status.as_deref(), Some("hot"));
    assert_eq!(after.version, 2);
    let notes = w
        .crm
        .notes()
        .list(&w.reader, &ListParams::new().filter("contact_id", c.id))
        .await
        .unwrap()
        .data;
    assert_eq!(notes.len(), 1);
    assert_eq!(
        kind(
            w.crm
                .notes()
                .create(
                    &w.sales,
                    NoteInput {
                        contact_id: Some(c.id),
                        deal_id: Some(Id::generate()),
                        text: "both".into(),
                        ..Default::default()
                    }
                )
                .await
        ),
        ErrorKind::Validation
    );
}

pub async fn tasks_complete_and_reopen(f: Fixture) {
    let w = world(&f).await;
    let due = Timestamp::parse_rfc3339("2026-02-01T00:00:00Z")
        .unwrap()
        .date();
    let t = w
        .crm
        .tasks()
        .create(
            &w.sales,
            TaskInput {
                text: "Follow up".into(),
                task_type: Some("Call".into()),
                due_date: Some(due),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!t.completed);
    w.clock.advance(Duration::from_secs(10));
    let done = w
        .crm
        .tasks()
        .complete(&w.sales, t.id, 1, true)
        .await
        .unwrap();
    assert!(done.completed);
    assert_eq!(done.done_date, Some(w.crm.now()));
    let open = w
        .crm
        .tasks()
        .list(&w.sales, &ListParams::new().filter("completed", false))
        .await
        .unwrap();
    assert!(open.data.is_empty());
    let reopened = w
        .crm
        .tasks()
        .complete(&w.sales, t.id, 2, false)
        .await
        .unwrap();
    assert_eq!((reopened.completed, reopened.done_date), (false, None));
    assert_eq!(
        kind(
            w.crm
                .tasks()
                .create(
                    &w.sales,
                    TaskInput {
                        text: "x".into(),
                        task_type: Some("Juggling".into()),
                        ..Default::default()
                    }
                )
                .await
        ),
        ErrorKind::Validation
    );
}

pub async fn tag_names_are_unique(f: Fixture) {
    let w = world(&f).await;
    let t = w
        .crm
        .tags()
        .create(
            &w.sales,
            TagInput {
                name: "Hot Lead".into(),
                color: None,
            },
        )
        .await
        .unwrap();
    let err = w
        .crm
        .tags()
        .create(
            &w.sales,
            TagInput {
                name: " hot lead ".into(),
                color: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Duplicate);
    assert_eq!(err.fields()[0].field, "name");
    w.crm.tags().delete(&w.sales, t.id).await.unwrap();
    let again = w
        .crm
        .tags()
        .create(
            &w.sales,
            TagInput {
                name: "HOT LEAD".into(),
                color: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        kind(w.crm.tags().restore(&w.admin, t.id).await),
        ErrorKind::Duplicate,
        "restoring would duplicate a live name"
    );
    w.crm.tags().delete(&w.sales, again.id).await.unwrap();
    w.crm.tags().restore(&w.admin, t.id).await.unwrap();
    let c = w
        .crm
        .contacts()
        .create(
            &w.sales,
            ContactInput {
                tags: vec![t.id, t.id],
                ..contact("Tag", "Ged")
            },
        )
        .await
        .unwrap();
    assert_eq!(c.tags, vec![t.id], "duplicates are dropped");
    let tagged = w
        .crm
        .contacts()
        .list(&w.sales, &ListParams::new().filter("tags", t.id))
        .await
        .unwrap()
        .data;
    assert_eq!(tagged.len(), 1);
}

pub async fn user_rules_and_last_admin(f: Fixture) {
    let w = world(&f).await;
    let crm = &w.crm;
    let err = crm
        .users()
        .create(&w.admin, user("SALES@acme.test", Role::Sales))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Duplicate,
        "emails are unique case-insensitively"
    );
    assert_eq!(err.fields()[0].field, "email");
    assert_eq!(
        crm.users()
            .find_by_email(&w.reader, "Sales@Acme.test")
            .await
            .unwrap()
            .id,
        w.sales.user_id()
    );
    let created = crm
        .users()
        .create(
            &w.admin,
            UserInput {
                email: "plain@acme.test".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(created.role, Role::Sales, "role defaults to sales");
    let me = crm.users().get(&w.admin, w.admin.user_id()).await.unwrap();
    let err = crm
        .users()
        .set_role(&w.admin, me.id, me.version, Role::Sales)
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.fields()[0].issue),
        (ErrorKind::Validation, FieldIssue::ReadOnly),
        "nobody changes their own role"
    );
    assert_eq!(
        kind(
            crm.users()
                .set_disabled(&w.admin, me.id, me.version, true)
                .await
        ),
        ErrorKind::Validation
    );
    // Promote the manager; the change applies to its next request.
    let m = crm
        .users()
        .get(&w.admin, w.manager.user_id())
        .await
        .unwrap();
    let m = crm
        .users()
        .set_role(&w.admin, m.id, m.version, Role::Admin)
        .await
        .unwrap();
    let new_admin = crm.actor(m.workspace_id, m.id).await.unwrap();
    assert_eq!(new_admin.role(), Role::Admin);
    // Two admins: one may demote the other.
    let me = crm
        .users()
        .set_role(&new_admin, me.id, me.version, Role::Manager)
        .await
        .unwrap();
    assert_eq!(me.role, Role::Manager);
    // Now `m` is the last active admin: even an actor still holding an admin snapshot from
    // before its demotion cannot demote or disable it.
    let err = crm
        .users()
        .set_role(&w.admin, m.id, m.version, Role::Sales)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LastAdmin);
    assert_eq!(err.to_string(), "Unable to save user (E5004)");
    assert_eq!(
        kind(
            crm.users()
                .set_disabled(&w.admin, m.id, m.version, true)
                .await
        ),
        ErrorKind::LastAdmin
    );
    assert_eq!(
        crm.users().get(&new_admin, m.id).await.unwrap(),
        m,
        "nothing changed"
    );
    // Disabling an ordinary user works and takes effect at once.
    let s = crm
        .users()
        .get(&new_admin, w.sales.user_id())
        .await
        .unwrap();
    let s = crm
        .users()
        .set_disabled(&new_admin, s.id, s.version, true)
        .await
        .unwrap();
    assert_eq!(
        kind(crm.actor(s.workspace_id, s.id).await),
        ErrorKind::AccountDisabled
    );
    let s = crm
        .users()
        .set_disabled(&new_admin, s.id, s.version, false)
        .await
        .unwrap();
    crm.actor(s.workspace_id, s.id).await.unwrap();
    // A stale version is a conflict for user changes too.
    assert_eq!(
        kind(
            crm.users()
                .set_role(&new_admin, s.id, 1, Role::Manager)
                .await
        ),
        ErrorKind::VersionConflict
    );
}

pub async fn concurrent_demotions_keep_an_admin(f: Fixture) {
    let w = world(&f).await;
    let crm = &w.crm;
    let m = crm
        .users()
        .get(&w.admin, w.manager.user_id())
        .await
        .unwrap();
    let m = crm
        .users()
        .set_role(&w.admin, m.id, m.version, Role::Admin)
        .await
        .unwrap();
    let second = crm.actor(m.workspace_id, m.id).await.unwrap();
    let first = crm.users().get(&w.admin, w.admin.user_id()).await.unwrap();
    for _ in 0..3 {
        // The two admins act through two instances (one, unless the backend has a peer).
        let (users, peer_users) = (crm.users(), w.peer.users());
        let (a, b) = tokio::join!(
            users.set_role(&w.admin, m.id, m.version, Role::Sales),
            peer_users.set_role(&second, first.id, first.version, Role::Sales),
        );
        let oks = [a.is_ok(), b.is_ok()].iter().filter(|x| **x).count();
        let admins = crm
            .users()
            .list(&w.reader, &ListParams::new().filter("role", "admin"))
            .await
            .unwrap()
            .data;
        assert!(!admins.is_empty(), "an admin always remains");
        assert!(oks <= 1);
        if oks == 1 {
            for e in [a, b].into_iter().filter_map(|r| r.err()) {
                assert!(
                    matches!(e.kind(), ErrorKind::VersionConflict | ErrorKind::LastAdmin),
                    "{e:?}"
                );
            }
            return;
        }
    }
    panic!("one of the demotions should succeed");
}

pub async fn configuration_is_admin_only_and_validated(f: Fixture) {
    let w = world(&f).await;
    let cfg = w.crm.configuration().get(&w.reader).await.unwrap();
    let err = w
        .crm
        .configuration()
        .update(
            &w.admin,
            cfg.version,
            ConfigurationPatch {
                deal_stages: Some(vec![]),
                currency: Some("dollars".into()),
                note_statuses: Some(vec![NoteStatus {
                    value: "x".into(),
                    label: "X".into(),
                    color: "blue".into(),
                }]),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    let fields: Vec<&str> = err.fields().iter().map(|f| f.field.as_str()).collect();
    assert!(
        fields.contains(&"deal_stages")
            && fields.contains(&"currency")
            && fields.contains(&"note_statuses[0].color"),
        "{fields:?}"
    );
    let stages = vec![
        DealStage {
            value: "new".into(),
            label: "New".into(),
        },
        DealStage {
            value: "done".into(),
            label: "Done".into(),
        },
    ];
    let cfg2 = w
        .crm
        .configuration()
        .update(
            &w.admin,
            cfg.version,
            ConfigurationPatch {
                deal_stages: Some(stages),
                deal_pipeline_closed: Some(vec!["done".into()]),
                currency: Some("EUR".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(cfg2.version, cfg.version + 1);
    let d = w
        .crm
        .deals()
        .create(
            &w.sales,
            DealInput {
                name: "x".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(d.stage, "new");
    assert_eq!(
        kind(
            w.crm
                .deals()
                .create(
                    &w.sales,
                    DealInput {
                        name: "y".into(),
                        stage: Some("won".into()),
                        ..Default::default()
                    }
                )
                .await
        ),
        ErrorKind::Validation
    );
}

pub async fn list_filters_sorts_and_bad_queries(f: Fixture) {
    let w = world(&f).await;
    let a = &w.sales;
    let co = w
        .crm
        .companies()
        .create(a, company("Filterco"))
        .await
        .unwrap();
    for i in 0..6 {
        w.crm
            .contacts()
            .create(
                a,
                ContactInput {
                    company_id: (i % 2 == 0).then_some(co.id),
                    has_newsletter: i < 2,
                    ..contact(&format!("F{i}"), "L")
                },
            )
            .await
            .unwrap();
    }
    let by_company = w
        .crm
        .contacts()
        .list(a, &ListParams::new().filter("company_id", co.id))
        .await
        .unwrap()
        .data;
    assert_eq!(by_company.len(), 3);
    let news = w
        .crm
        .contacts()
        .list(a, &ListParams::new().filter("has_newsletter", true))
        .await
        .unwrap()
        .data;
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
        w.crm
            .tasks()
            .create(
                a,
                TaskInput {
                    text: format!("t{i}"),
                    due_date: Some(day(d)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    w.crm
        .tasks()
        .create(
            a,
            TaskInput {
                text: "undated".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let ranged = w
        .crm
        .tasks()
        .list(
            a,
            &ListParams::new()
                .filter("due_date_gte", "2026-03-02")
                .filter("due_date_lte", "2026-03-09"),
        )
        .await
        .unwrap()
        .data;
    assert_eq!(
        ranged.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(),
        ["t1", "t2"]
    );
    let all = w
        .crm
        .tasks()
        .list(a, &ListParams::new().sort("due_date"))
        .await
        .unwrap()
        .data;
    assert_eq!(
        all.last().unwrap().text,
        "undated",
        "nulls sort last ascending"
    );
    let all = w
        .crm
        .tasks()
        .list(a, &ListParams::new().sort("-due_date"))
        .await
        .unwrap()
        .data;
    assert_eq!(all.first().unwrap().text, "undated", "and first descending");
    let multi = w
        .crm
        .contacts()
        .list(a, &ListParams::new().filter("first_name", "f1,F3"))
        .await
        .unwrap()
        .data;
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
    let co = w
        .crm
        .companies()
        .create(&w.sales, company("Oldname"))
        .await
        .unwrap();
    let c = w
        .crm
        .contacts()
        .create(
            &w.sales,
            ContactInput {
                company_id: Some(co.id),
                ..contact("Emp", "Loyee")
            },
        )
        .await
        .unwrap();
    assert_eq!(
        w.crm
            .contacts()
            .list(&w.sales, &ListParams::new().q("oldn"))
            .await
            .unwrap()
            .data
            .len(),
        1
    );
    w.crm
        .companies()
        .update(
            &w.sales,
            co.id,
            1,
            CompanyPatch {
                name: Some("Newname".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        w.crm
            .contacts()
            .list(&w.sales, &ListParams::new().q("oldn"))
            .await
            .unwrap()
            .data
            .is_empty()
    );
    let found = w
        .crm
        .contacts()
        .list(&w.sales, &ListParams::new().q("newn"))
        .await
        .unwrap()
        .data;
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].version, c.version,
        "derived data does not bump the contact's version"
    );
    // A pending edit of the contact made from the old version still goes through.
    w.crm
        .contacts()
        .update(
            &w.sales,
            c.id,
            c.version,
            ContactPatch {
                title: Some(Some("x".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

pub async fn disabled_user_cannot_act(f: Fixture) {
    let w = world(&f).await;
    let s = w
        .crm
        .users()
        .get(&w.admin, w.sales.user_id())
        .await
        .unwrap();
    w.crm
        .users()
        .set_disabled(&w.admin, s.id, s.version, true)
        .await
        .unwrap();
    assert_eq!(
        kind(w.crm.actor(s.workspace_id, s.id).await),
        ErrorKind::AccountDisabled
    );
    assert_eq!(
        kind(w.crm.actor(s.workspace_id, UserId::generate()).await),
        ErrorKind::Unauthenticated
    );
    let still_listed = w
        .crm
        .users()
        .list(&w.admin, &ListParams::new().filter("disabled", true))
        .await
        .unwrap()
        .data;
    assert_eq!(still_listed.len(), 1, "users are disabled, never deleted");
}
