//! Records: bootstrap, the lifecycle of every kind, validation, unknown and foreign ids, and
//! the trash (soft delete, restore, purge).

use std::collections::HashSet;
use std::time::Duration;

use super::{
    colored_tag, company, contact, contact_note, contact_task, contacts_deal, deal, deal_note,
    deal_task, employee, kind, note, prioritize, relocate, rename_tag, reprice, rewrite_note, task,
    user, world,
};
use crate::audit::{AuditAction, AuditQuery};
use crate::error::{ErrorKind, FieldIssue};
use crate::id::{CompanyId, ContactId, Id};
use crate::model::*;
use crate::query::{Deleted, ListParams};
use crate::testkit::Fixture;
use crate::{Crm, CrmConfig};

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
        .create(
            a,
            CompanyInput {
                website: Some("https://globex.test".into()),
                ..company("Globex")
            },
        )
        .await;
    assert_eq!(co.version, 1);
    assert_eq!(
        co.sales_id,
        Some(a.user_id()),
        "owner defaults to the creator"
    );
    assert_eq!(w.get(a, co.id).await, co);
    w.clock.advance(Duration::from_secs(60));
    let co2 = w.update(a, co.id, 1, relocate("Springfield")).await;
    assert_eq!(co2.version, 2);
    assert_eq!(co2.city.as_deref(), Some("Springfield"));
    assert!(co2.updated_at > co.updated_at);
    assert_eq!(w.get(a, co.id).await, co2);
    // Clearing with null.
    let co3 = w
        .update(
            a,
            co.id,
            2,
            serde_json::from_str(r#"{"city": null}"#).unwrap(),
        )
        .await;
    assert_eq!(co3.city, None);

    let ct = w
        .create(
            a,
            ContactInput {
                emails: vec![EmailEntry {
                    email: "hank@globex.test".into(),
                    kind: EmailKind::Work,
                }],
                phones: vec![PhoneEntry {
                    number: "+1 555 0100".into(),
                    kind: PhoneKind::Work,
                }],
                status: Some("warm".into()),
                ..employee(co.id, "Hank", "Scorpio")
            },
        )
        .await;
    assert_eq!(ct.company_name.as_deref(), Some("Globex"));
    let deal = w
        .create(
            a,
            DealInput {
                company_id: Some(co.id),
                contact_ids: vec![ct.id],
                amount: 1_000_000,
                ..deal("Doomsday device")
            },
        )
        .await;
    assert_eq!(deal.stage, "opportunity", "defaults to the first stage");
    let note = w.create(a, deal_note(deal.id, "Call back")).await;
    let task = w.create(a, deal_task(deal.id, "Send proposal")).await;
    assert_eq!(task.owner_id, a.user_id());
    let tag = w.create(a, colored_tag("VIP", "#FF0000")).await;
    assert_eq!(tag.color, "#ff0000");
    let n2 = w.update(a, note.id, 1, rewrite_note("Called")).await;
    assert_eq!(n2.text, "Called");
    let t2 = w.update(a, task.id, 1, prioritize(Priority::High)).await;
    assert_eq!(t2.priority, Some(Priority::High));
    let g2 = w.update(a, tag.id, 1, rename_tag("Very important")).await;
    assert_eq!(g2.name, "Very important");
    let d2 = w.update(a, deal.id, 1, reprice(5)).await;
    assert_eq!((d2.amount, d2.version), (5, 2));
    // A patch that changes nothing writes nothing.
    let same = w.update(a, deal.id, 2, reprice(5)).await;
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
    assert!(w.list::<Company>(a, &ListParams::new()).await.is_empty());
}

pub async fn validation_reports_every_field_and_writes_nothing(f: Fixture) {
    let w = world(&f).await;
    let before = w.audit_count().await;
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
                amount: -1,
                stage: Some("nowhere".into()),
                ..deal("")
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
        w.create_error(&w.sales, note("orphan")).await,
        ErrorKind::Validation
    );
    assert_eq!(
        w.create_error(&w.sales, task("")).await,
        ErrorKind::Validation
    );
    assert_eq!(
        w.create_error(&w.sales, colored_tag("t", "red")).await,
        ErrorKind::Validation
    );
    assert_eq!(
        w.create_error(
            &w.sales,
            CompanyInput {
                size: Some(7),
                website: Some("ftp://x".into()),
                ..company("A")
            }
        )
        .await,
        ErrorKind::Validation
    );
    // A failed update leaves the record as it was.
    let c = w.create(&w.sales, contact("Ok", "Fine")).await;
    assert_eq!(
        w.update_error(
            &w.sales,
            c.id,
            1,
            ContactPatch {
                first_name: Some("".into()),
                ..Default::default()
            }
        )
        .await,
        ErrorKind::Validation
    );
    assert_eq!(w.get(&w.sales, c.id).await, c);
    assert_eq!(
        w.audit_count().await,
        before + 1,
        "only the one successful create was audited"
    );
    assert_eq!(w.all_contacts(&w.sales, ListParams::new()).await.len(), 1);
}

pub async fn unknown_and_foreign_ids_are_not_found(f: Fixture) {
    let w = world(&f).await;
    let other = w.other("Other").await;
    let theirs = w.create(&other.admin, contact("Their", "Contact")).await;
    let their_co = w.create(&other.admin, company("Theirs")).await;
    for id in [theirs.id, ContactId::generate()] {
        assert_eq!(
            kind(w.crm.contacts().get(&w.admin, id).await),
            ErrorKind::NotFound
        );
        assert_eq!(
            w.update_error(&w.admin, id, 1, ContactPatch::default())
                .await,
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
        .create(&w.admin, employee(their_co.id, "A", "B"))
        .await
        .unwrap_err();
    assert_eq!(err.fields()[0].issue, FieldIssue::UnknownReference);
    // Their record is untouched.
    assert_eq!(w.get(&other.admin, theirs.id).await, theirs);
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

pub async fn soft_delete_restore_and_purge(f: Fixture) {
    let w = world(&f).await;
    let a = &w.sales;
    let c = w.create(a, contact("Trash", "Can")).await;
    let d = w.create(a, contacts_deal(vec![c.id], "Linked")).await;
    let n = w.create(a, contact_note(c.id, "hello")).await;
    let t = w.create(a, contact_task(c.id, "call")).await;
    assert_eq!(
        kind(w.crm.contacts().restore(&w.admin, c.id).await),
        ErrorKind::InvalidState,
        "restore needs a deleted record: a live one is not in the trash (409)"
    );
    assert_eq!(
        kind(w.crm.contacts().purge(&w.admin, c.id).await),
        ErrorKind::InvalidState,
        "purge needs a deleted record: a live one is not in the trash (409)"
    );
    w.crm.contacts().delete(a, c.id).await.unwrap();
    assert!(w.list::<Contact>(a, &ListParams::new()).await.is_empty());
    assert_eq!(
        w.update_error(a, c.id, 3, ContactPatch::default()).await,
        ErrorKind::NotFound
    );
    // A deleted record cannot be referenced.
    assert_eq!(
        w.create_error(a, contact_note(c.id, "x")).await,
        ErrorKind::Validation
    );
    let trash = w
        .list::<Contact>(&w.admin, &ListParams::new().deleted(Deleted::Only))
        .await;
    assert_eq!(trash.len(), 1);
    let restored = w.crm.contacts().restore(&w.admin, c.id).await.unwrap();
    assert_eq!(restored.deleted_at, None);
    w.get(a, c.id).await;
    w.crm.contacts().delete(a, c.id).await.unwrap();
    w.crm.contacts().purge(&w.admin, c.id).await.unwrap();
    assert!(
        w.all_contacts(&w.admin, ListParams::new().deleted(Deleted::Include))
            .await
            .is_empty()
    );
    assert_eq!(
        kind(w.crm.notes().get(a, n.id).await),
        ErrorKind::NotFound,
        "its notes are purged with it"
    );
    assert_eq!(
        w.get(a, t.id).await.contact_id,
        None,
        "references are cleared"
    );
    assert!(w.get(a, d.id).await.contact_ids.is_empty());
    let purges = w
        .audit(AuditQuery {
            actions: vec![AuditAction::Purge],
            ..Default::default()
        })
        .await;
    assert_eq!(purges.len(), 2, "the contact and its note");
}
