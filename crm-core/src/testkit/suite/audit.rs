//! The audit trail (atomic with each change, nothing for a failure, filters) and the
//! activity feed.

use std::time::Duration;

use super::{company, contact, contact_note, deal, kind, relocate, retitle, task, world};
use crate::audit::{AuditAction, AuditQuery};
use crate::error::ErrorKind;
use crate::model::*;
use crate::testkit::Fixture;

pub async fn audit_is_atomic_with_changes(f: Fixture) {
    let w = world(&f).await;
    let c = w.create(&w.sales, contact("Audit", "Me")).await;
    w.clock.advance(Duration::from_secs(5));
    w.update(&w.sales, c.id, 1, retitle("Boss")).await;
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
    let n = w.audit_count().await;
    w.update_error(&w.sales, c.id, 1, ContactPatch::default())
        .await;
    w.create_error(&w.reader, contact("No", "Entry")).await;
    w.create_error(&w.sales, contact("", "")).await;
    assert_eq!(w.audit_count().await, n);
    // Filters by kind and action.
    let creates = w
        .audit(AuditQuery {
            entities: vec![EntityKind::User],
            actions: vec![AuditAction::Create],
            limit: Some(100),
            ..Default::default()
        })
        .await;
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
    let co = w.create(&w.sales, company("Feedco")).await;
    let ct = w.create(&w.sales, contact("Fee", "Der")).await;
    let d = w.create(&w.sales, deal("Big one")).await;
    w.create(&w.sales, contact_note(ct.id, "met")).await;
    w.create(&w.sales, task("private")).await;
    w.update(&w.sales, co.id, 1, relocate("X")).await;
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
