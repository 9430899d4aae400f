//! Conformance tests of the access log, security events, anomaly rules and retention.

#![allow(missing_docs, clippy::missing_panics_doc)]

use std::time::Duration;

use uuid::Uuid;

use super::Fixture;
use crate::access_log::{AccessEntry, AccessLogQuery, id_at};
use crate::clock::Timestamp;
use crate::id::{UserId, WorkspaceId};
use crate::model::EntityKind;
use crate::security::{SecurityEvent, SecurityEventQuery, SecurityEventType};

fn entry(ws: WorkspaceId, user: UserId, record: Uuid, at: Timestamp) -> AccessEntry {
    AccessEntry {
        id: id_at(at),
        workspace_id: ws,
        at,
        user_id: user,
        entity: EntityKind::Contact,
        record_id: record,
        route: "GET /contacts/{id}".into(),
        address: Some("203.0.113.7".into()),
    }
}

fn t0() -> Timestamp {
    Timestamp::parse_rfc3339("2026-02-01T08:00:00Z").unwrap()
}

fn at(ms: u64) -> Timestamp {
    t0().plus(Duration::from_millis(ms))
}

/// The store's side of the access log: append, filter, page newest first, erase by record,
/// redact by user, prune oldest first in bounded batches, per workspace.
pub async fn access_log_is_stored_queried_erased_and_pruned(f: Fixture) {
    let s = f.storage.as_ref();
    let (ws, other_ws) = (WorkspaceId::generate(), WorkspaceId::generate());
    let (alice, bob) = (UserId::generate(), UserId::generate());
    let (r1, r2) = (Uuid::now_v7(), Uuid::now_v7());
    let mut entries: Vec<AccessEntry> = (0..30)
        .map(|i| {
            let (u, r) = if i % 3 == 0 { (bob, r2) } else { (alice, r1) };
            entry(ws, u, r, at(i * 10))
        })
        .collect();
    entries.push(entry(other_ws, alice, r1, at(5)));
    s.append_access_log(&entries[..10]).await.unwrap();
    s.append_access_log(&entries[10..]).await.unwrap();
    s.append_access_log(&[]).await.unwrap();

    let q = |f: fn(&mut AccessLogQuery)| {
        let mut q = AccessLogQuery {
            limit: 100,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    let all = s.access_log(ws, &q(|_| {})).await.unwrap();
    assert_eq!(all.len(), 30, "only the workspace's own entries");
    assert!(all.windows(2).all(|p| p[0].id > p[1].id), "newest first");
    assert_eq!(all[0], entries[29], "entries come back as written");
    let mut nobody = q(|_| {});
    nobody.user_id = Some(UserId::generate());
    assert!(s.access_log(ws, &nobody).await.unwrap().is_empty());
    let mut by_bob = q(|_| {});
    by_bob.user_id = Some(bob);
    let got = s.access_log(ws, &by_bob).await.unwrap();
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|e| e.user_id == bob));
    let mut of_r1 = q(|_| {});
    of_r1.record_id = Some(r1);
    assert_eq!(s.access_log(ws, &of_r1).await.unwrap().len(), 20);
    let mut window = q(|_| {});
    window.since = Some(at(100));
    window.until = Some(at(200));
    let got = s.access_log(ws, &window).await.unwrap();
    assert_eq!(got.len(), 10, "since inclusive, until exclusive");
    assert!(got.iter().all(|e| e.at >= at(100) && e.at < at(200)));

    // Paging with the cursor visits every entry once.
    let mut seen = Vec::new();
    let mut page = AccessLogQuery {
        limit: 7,
        ..Default::default()
    };
    loop {
        let got = s.access_log(ws, &page).await.unwrap();
        seen.extend(got.iter().map(|e| e.id));
        match got.last() {
            Some(last) if got.len() == 7 => page.before = Some(last.id),
            _ => break,
        }
    }
    assert_eq!(seen, all.iter().map(|e| e.id).collect::<Vec<_>>());

    // Redaction: bob's reads keep who/what/when, lose the address.
    assert_eq!(s.redact_access_log_by(ws, bob).await.unwrap(), 10);
    assert_eq!(
        s.redact_access_log_by(ws, bob).await.unwrap(),
        0,
        "idempotent"
    );
    let got = s.access_log(ws, &by_bob).await.unwrap();
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|e| e.address.is_none()));
    let mut of_alice = q(|_| {});
    of_alice.user_id = Some(alice);
    assert!(
        s.access_log(ws, &of_alice)
            .await
            .unwrap()
            .iter()
            .all(|e| e.address.is_some()),
        "others keep theirs"
    );

    // Pruning: oldest first, bounded, per workspace.
    assert_eq!(s.prune_access_log(ws, at(100), 4).await.unwrap(), 4);
    assert_eq!(s.prune_access_log(ws, at(100), 100).await.unwrap(), 6);
    assert_eq!(s.prune_access_log(ws, at(100), 100).await.unwrap(), 0);
    let left = s.access_log(ws, &q(|_| {})).await.unwrap();
    assert_eq!(left.len(), 20);
    assert!(left.iter().all(|e| e.at >= at(100)));

    // Erasure by record: this workspace only.
    assert_eq!(s.erase_access_log_for(ws, r1).await.unwrap(), 14);
    assert_eq!(s.erase_access_log_for(ws, r1).await.unwrap(), 0);
    assert!(s.access_log(ws, &of_r1).await.unwrap().is_empty());
    assert_eq!(s.access_log(ws, &q(|_| {})).await.unwrap().len(), 6);
    assert_eq!(
        s.access_log(other_ws, &of_r1).await.unwrap().len(),
        1,
        "another workspace's entries are untouched"
    );
}

fn event(ws: WorkspaceId, kind: SecurityEventType, user: UserId, ms: u64) -> SecurityEvent {
    SecurityEvent::new(ws, kind, at(ms))
        .user(user)
        .address(Some("198.51.100.4"))
        .email("someone@example.test")
        .with("reason", "wrong_password")
}

/// The store's side of security events: append, filter by type, user and time, page newest
/// first, redact a user's personal data, prune oldest first, per workspace.
pub async fn security_events_are_stored_queried_redacted_and_pruned(f: Fixture) {
    let s = f.storage.as_ref();
    let (ws, other_ws) = (WorkspaceId::generate(), WorkspaceId::generate());
    let (alice, bob, admin) = (UserId::generate(), UserId::generate(), UserId::generate());
    let mut events = Vec::new();
    for i in 0..20 {
        let kind = if i % 2 == 0 {
            SecurityEventType::LoginFailed
        } else {
            SecurityEventType::LoginSucceeded
        };
        events.push(event(ws, kind, if i < 15 { alice } else { bob }, i * 10));
    }
    events.push(
        SecurityEvent::new(ws, SecurityEventType::RoleChanged, at(500))
            .user(bob)
            .actor(admin)
            .with("from", "sales")
            .with("to", "manager"),
    );
    events.push(event(other_ws, SecurityEventType::LoginFailed, alice, 1));
    s.append_security_events(&events).await.unwrap();
    s.append_security_events(&[]).await.unwrap();

    let base = SecurityEventQuery {
        limit: 100,
        ..Default::default()
    };
    let all = s.security_events(ws, &base).await.unwrap();
    assert_eq!(all.len(), 21);
    assert!(all.windows(2).all(|p| p[0].id > p[1].id), "newest first");
    assert_eq!(all[0], events[20], "events come back as written");
    assert_eq!(all[1], events[19]);
    let failed = SecurityEventQuery {
        kind: Some(SecurityEventType::LoginFailed),
        ..base.clone()
    };
    let got = s.security_events(ws, &failed).await.unwrap();
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|e| e.kind == SecurityEventType::LoginFailed));
    let about_bob = SecurityEventQuery {
        user_id: Some(bob),
        ..base.clone()
    };
    assert_eq!(s.security_events(ws, &about_bob).await.unwrap().len(), 6);
    let by_admin = SecurityEventQuery {
        user_id: Some(admin),
        ..base.clone()
    };
    assert_eq!(
        s.security_events(ws, &by_admin).await.unwrap().len(),
        1,
        "the user filter matches the actor too"
    );
    let since = SecurityEventQuery {
        since: Some(at(150)),
        ..base.clone()
    };
    assert_eq!(s.security_events(ws, &since).await.unwrap().len(), 6);
    let mut page = SecurityEventQuery {
        limit: 6,
        ..Default::default()
    };
    let mut seen = Vec::new();
    loop {
        let got = s.security_events(ws, &page).await.unwrap();
        seen.extend(got.iter().map(|e| e.id));
        match got.last() {
            Some(last) if got.len() == 6 => page.before = Some(last.id),
            _ => break,
        }
    }
    assert_eq!(seen, all.iter().map(|e| e.id).collect::<Vec<_>>());

    // Redaction of bob: address and login name gone, the facts stay.
    assert_eq!(s.redact_security_events_for(ws, bob).await.unwrap(), 5);
    assert_eq!(s.redact_security_events_for(ws, bob).await.unwrap(), 0);
    let got = s.security_events(ws, &about_bob).await.unwrap();
    assert_eq!(got.len(), 6);
    for e in &got {
        assert!(e.address.is_none() && e.email.is_none());
    }
    assert_eq!(got[1].detail["reason"], "wrong_password");
    assert!(
        s.security_events(other_ws, &base).await.unwrap()[0]
            .address
            .is_some()
    );

    // Pruning.
    assert_eq!(s.prune_security_events(ws, at(95), 3).await.unwrap(), 3);
    assert_eq!(s.prune_security_events(ws, at(95), 100).await.unwrap(), 7);
    assert_eq!(s.prune_security_events(ws, at(95), 100).await.unwrap(), 0);
    assert_eq!(s.security_events(ws, &base).await.unwrap().len(), 11);
    assert_eq!(s.security_events(other_ws, &base).await.unwrap().len(), 1);
}
