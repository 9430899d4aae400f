//! Operations of one kind: merging contacts, archiving and moving deals, notes moving a
//! contact's last seen, completing tasks, unique tag names.

use std::time::Duration;

use super::{
    company, contact, contact_note, contact_task, contacts_deal, deal, emailed_contact, kind, note,
    tag, task, world,
};
use crate::audit::{AuditAction, AuditQuery};
use crate::clock::Timestamp;
use crate::error::ErrorKind;
use crate::id::Id;
use crate::model::*;
use crate::query::{Deleted, ListParams};
use crate::testkit::Fixture;

pub async fn merge_contacts_moves_everything(f: Fixture) {
    let w = world(&f).await;
    let a = &w.sales;
    let co = w.create(a, company("Mergeco")).await;
    let tag = w.create(a, tag("lead")).await;
    let winner = w.create(a, emailed_contact("Win", "Ner", "a@x.test")).await;
    let loser = w
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
        .await;
    let note = w.create(a, contact_note(loser.id, "n")).await;
    let task = w.create(a, contact_task(loser.id, "t")).await;
    let deal = w
        .create(a, contacts_deal(vec![loser.id, winner.id], "d"))
        .await;
    assert_eq!(
        kind(w.crm.contacts().merge(&w.admin, winner.id, winner.id).await),
        ErrorKind::InvalidState
    );
    let merged = w.merge(winner.id, loser.id).await;
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
    assert_eq!(w.get(a, winner.id).await, merged);
    assert_eq!(
        kind(w.crm.contacts().get(a, loser.id).await),
        ErrorKind::NotFound,
        "the loser is gone from view"
    );
    let moved = (
        w.get(a, note.id).await.contact_id,
        w.get(a, task.id).await.contact_id,
        w.get(a, deal.id).await.contact_ids,
    );
    assert_eq!(
        moved,
        (Some(winner.id), Some(winner.id), vec![winner.id]),
        "the loser's note, task and deal name the winner"
    );
    assert_eq!(
        w.all_contacts(&w.admin, ListParams::new().deleted(Deleted::Only))
            .await
            .len(),
        1,
        "the loser stays in the trash"
    );
    let merges = w
        .audit(AuditQuery {
            actions: vec![AuditAction::Merge],
            ..Default::default()
        })
        .await;
    assert_eq!(merges.len(), 2);
    assert_eq!(
        kind(w.crm.contacts().merge(&w.admin, winner.id, loser.id).await),
        ErrorKind::NotFound
    );
}

pub async fn deals_archive_and_move(f: Fixture) {
    let w = world(&f).await;
    let a = &w.sales;
    let deals = w.crm.deals();
    let mut ids = Vec::new();
    for name in ["d0", "d1", "d2"] {
        ids.push(w.create(a, deal(name)).await.id);
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
    let d2 = deals.get(a, ids[2]).await.unwrap();
    let moved = deals
        .move_to(a, d2.id, d2.version, "opportunity", 0)
        .await
        .unwrap();
    assert_eq!(moved.version, d2.version + 1);
    assert_eq!(board("opportunity").await, ["d2", "d0", "d1"]);
    let d0 = deals.get(a, ids[0]).await.unwrap();
    deals.move_to(a, d0.id, d0.version, "won", 5).await.unwrap();
    assert_eq!(board("opportunity").await, ["d2", "d1"]);
    assert_eq!(board("won").await, ["d0"]);
    // Repeated moves into the same slot eventually renumber the stage; order stays right.
    for _ in 0..15 {
        for id in [ids[1], ids[2]] {
            let d = deals.get(a, id).await.unwrap();
            deals
                .move_to(a, d.id, d.version, "opportunity", 1)
                .await
                .unwrap();
        }
    }
    assert_eq!(board("opportunity").await, ["d1", "d2"]);
    assert_eq!(
        kind(deals.move_to(a, ids[1], 1, "opportunity", 0).await),
        ErrorKind::VersionConflict
    );
    let d1 = deals.get(a, ids[1]).await.unwrap();
    assert_eq!(
        kind(
            deals
                .move_to(a, d1.id, d1.version, "no-such-stage", 0)
                .await
        ),
        ErrorKind::Validation
    );
    let archived = deals.archive(a, d1.id, d1.version).await.unwrap();
    assert!(archived.archived_at.is_some());
    assert_eq!(board("opportunity").await, ["d2"]);
    deals.get(a, d1.id).await.unwrap();
    assert_eq!(
        kind(deals.archive(a, d1.id, archived.version).await),
        ErrorKind::InvalidState
    );
    assert_eq!(
        kind(deals.move_to(a, d1.id, archived.version, "won", 0).await),
        ErrorKind::InvalidState
    );
    assert_eq!(
        kind(deals.archive(&w.reader, d1.id, archived.version).await),
        ErrorKind::Forbidden
    );
    let back = deals.unarchive(a, d1.id, archived.version).await.unwrap();
    assert!(back.archived_at.is_none());
    assert_eq!(
        board("opportunity").await,
        ["d2", "d1"],
        "unarchived deals go to the end of their stage"
    );
}

pub async fn contact_notes_move_last_seen(f: Fixture) {
    let w = world(&f).await;
    let c = w.create(&w.sales, contact("Seen", "Often")).await;
    w.clock.advance(Duration::from_secs(3600));
    let note = w
        .create(
            &w.sales,
            NoteInput {
                contact_id: Some(c.id),
                status: Some("hot".into()),
                ..note("Coffee")
            },
        )
        .await;
    assert_eq!(note.sales_id, Some(w.sales.user_id()));
    let after = w.get(&w.sales, c.id).await;
    assert_eq!(after.last_seen, w.crm.now());
    assert!(after.last_seen > c.last_seen);
    assert_eq!(after.status.as_deref(), Some("hot"));
    assert_eq!(after.version, 2);
    let notes = w
        .list::<Note>(&w.reader, &ListParams::new().filter("contact_id", c.id))
        .await;
    assert_eq!(notes.len(), 1);
    assert_eq!(
        w.create_error(
            &w.sales,
            NoteInput {
                contact_id: Some(c.id),
                deal_id: Some(Id::generate()),
                ..super::note("both")
            }
        )
        .await,
        ErrorKind::Validation
    );
}

pub async fn tasks_complete_and_reopen(f: Fixture) {
    let w = world(&f).await;
    let tasks = w.crm.tasks();
    let due = Timestamp::parse_rfc3339("2026-02-01T00:00:00Z")
        .unwrap()
        .date();
    let t = w
        .create(
            &w.sales,
            TaskInput {
                task_type: Some("Call".into()),
                due_date: Some(due),
                ..task("Follow up")
            },
        )
        .await;
    assert!(!t.completed);
    w.clock.advance(Duration::from_secs(10));
    let done = tasks.complete(&w.sales, t.id, 1, true).await.unwrap();
    assert!(done.completed);
    assert_eq!(done.done_date, Some(w.crm.now()));
    let open = tasks
        .list(&w.sales, &ListParams::new().filter("completed", false))
        .await
        .unwrap();
    assert!(open.data.is_empty());
    let reopened = tasks.complete(&w.sales, t.id, 2, false).await.unwrap();
    assert_eq!((reopened.completed, reopened.done_date), (false, None));
    let juggling = TaskInput {
        task_type: Some("Juggling".into()),
        ..task("x")
    };
    assert_eq!(
        w.create_error(&w.sales, juggling).await,
        ErrorKind::Validation,
        "a task type the configuration does not list is refused"
    );
}

pub async fn tag_names_are_unique(f: Fixture) {
    let w = world(&f).await;
    let t = w.create(&w.sales, tag("Hot Lead")).await;
    let err = w
        .crm
        .tags()
        .create(&w.sales, tag(" hot lead "))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Duplicate);
    assert_eq!(err.fields()[0].field, "name");
    w.crm.tags().delete(&w.sales, t.id).await.unwrap();
    let again = w.create(&w.sales, tag("HOT LEAD")).await;
    assert_eq!(
        kind(w.crm.tags().restore(&w.admin, t.id).await),
        ErrorKind::Duplicate,
        "restoring would duplicate a live name"
    );
    w.crm.tags().delete(&w.sales, again.id).await.unwrap();
    w.crm.tags().restore(&w.admin, t.id).await.unwrap();
    let c = w
        .create(
            &w.sales,
            ContactInput {
                tags: vec![t.id, t.id],
                ..contact("Tag", "Ged")
            },
        )
        .await;
    assert_eq!(c.tags, vec![t.id], "duplicates are dropped");
    let tagged = w
        .list::<Contact>(&w.sales, &ListParams::new().filter("tags", t.id))
        .await;
    assert_eq!(tagged.len(), 1);
}
