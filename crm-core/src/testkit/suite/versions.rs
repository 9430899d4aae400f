//! Optimistic concurrency: a stale version is a conflict, and of racing updates exactly one
//! wins (also across two instances on one database).

use super::{contact, kind, retitle, world};
use crate::audit::AuditQuery;
use crate::error::ErrorKind;
use crate::model::*;
use crate::testkit::Fixture;

pub async fn stale_version_is_a_conflict(f: Fixture) {
    let w = world(&f).await;
    let c = w.create(&w.sales, contact("Ver", "Sion")).await;
    let c2 = w.update(&w.sales, c.id, 1, retitle("CEO")).await;
    let err = w
        .crm
        .contacts()
        .update(&w.sales, c.id, 1, retitle("CTO"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::VersionConflict);
    assert_eq!(err.http_status(), 409);
    assert_eq!(w.get(&w.sales, c.id).await, c2);
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
    let c = w.create(&w.sales, contact("Race", "Condition")).await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..16 {
        // Half through each instance (the same one unless the backend has a peer).
        let crm = if i % 2 == 0 { &w.crm } else { &w.peer }.clone();
        let actor = w.sales.clone();
        set.spawn(async move {
            crm.contacts()
                .update(&actor, c.id, 1, retitle(format!("title {i}")))
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
    assert_eq!(w.get(&w.sales, c.id).await.version, 2);
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
