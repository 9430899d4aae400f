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

use std::sync::{Arc, Mutex};

use super::identity_suite::{id_world, login_req};
use super::suite::world_with;
use crate::error::ErrorKind;
use crate::identity::LoginRequest;
use crate::model::{
    ClientDetails, ClientInfo, ConfigurationPatch, ContactInput, RetentionPolicy, Role,
};
use crate::security::{SecurityEvents, anomaly::AnomalyConfig};
use crate::{CrmConfig, ListParams};

/// A host's real-time stream (a test double).
#[derive(Default)]
pub struct Collect(pub Mutex<Vec<SecurityEvent>>);

impl SecurityEvents for Collect {
    fn event(&self, event: &SecurityEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

fn types(events: &[SecurityEvent]) -> Vec<SecurityEventType> {
    events.iter().map(|e| e.kind).collect()
}

async fn stored(crm: &crate::Crm, ws: WorkspaceId) -> Vec<SecurityEvent> {
    crm.flush_logs().await.unwrap();
    let mut all = super::setup::stored_events(crm.storage().as_ref(), ws).await;
    all.reverse();
    all
}

fn from(ws: WorkspaceId, email: &str, password: &str, address: &str) -> LoginRequest {
    LoginRequest {
        client: ClientInfo {
            address: Some(address.into()),
            user_agent: Some("test".into()),
        },
        ..login_req(ws, email, password)
    }
}

/// Identity and user administration record their security events — with the failure
/// reason kept internal, persisted after a flush, counted, streamed — and no event payload
/// holds a password, token, hash or secret.
pub async fn security_events_are_recorded_without_secrets(f: Fixture) {
    let w = id_world(&f).await;
    let (crm, ws) = (&w.crm, w.ws);
    let before = crm.log_counts();
    // Logins: success, wrong password, unknown account, disabled.
    let ok =
        w.id.login(login_req(ws, "sales@acme.test", "sales password"))
            .await
            .unwrap();
    let bad =
        w.id.login(login_req(ws, "sales@acme.test", "not the password"))
            .await;
    assert_eq!(bad.unwrap_err().kind(), ErrorKind::InvalidCredentials);
    let unknown =
        w.id.login(login_req(ws, "ghost@acme.test", "whatever pass"))
            .await;
    assert_eq!(unknown.unwrap_err().kind(), ErrorKind::InvalidCredentials);
    // Refresh, then reuse of the old token after the grace window.
    let next =
        w.id.refresh(ok.refresh_token.expose(), &super::identity_suite::client())
            .await
            .unwrap();
    w.clock.advance(Duration::from_secs(60));
    let reused =
        w.id.refresh(ok.refresh_token.expose(), &super::identity_suite::client())
            .await;
    assert_eq!(reused.unwrap_err().kind(), ErrorKind::RefreshTokenReused);
    // Password change, reset, role change, disable and enable, logout.
    let again =
        w.id.login(login_req(ws, "sales@acme.test", "sales password"))
            .await
            .unwrap();
    let sales = crm.actor(ws, w.sales.id).await.unwrap();
    w.id.change_password(
        &sales,
        Some(again.session_id),
        "sales password",
        "new sales password",
    )
    .await
    .unwrap();
    w.id.request_password_reset(ws, "sales@acme.test", &super::identity_suite::client())
        .await
        .unwrap();
    let token = w.delivery.sent.lock().unwrap().last().unwrap().1.clone();
    w.id.confirm_password_reset(token.expose(), "reset sales password")
        .await
        .unwrap();
    w.id.login(login_req(ws, "sales@acme.test", "reset sales password"))
        .await
        .unwrap();
    let u = crm.users().get(&w.admin, w.sales.id).await.unwrap();
    let u = crm
        .users()
        .set_role(&w.admin, u.id, u.version, Role::Manager)
        .await
        .unwrap();
    let u = crm
        .users()
        .set_disabled(&w.admin, u.id, u.version, true)
        .await
        .unwrap();
    let disabled =
        w.id.login(login_req(ws, "sales@acme.test", "reset sales password"))
            .await;
    assert_eq!(disabled.unwrap_err().kind(), ErrorKind::InvalidCredentials);
    crm.users()
        .set_disabled(&w.admin, u.id, u.version, false)
        .await
        .unwrap();
    let last =
        w.id.login(login_req(ws, "sales@acme.test", "reset sales password"))
            .await
            .unwrap();
    let sales = crm.actor(ws, w.sales.id).await.unwrap();
    w.id.logout(&sales, last.session_id).await.unwrap();

    let events = stored(crm, ws).await;
    use SecurityEventType as T;
    for kind in [
        T::LoginSucceeded,
        T::LoginFailed,
        T::RefreshTokenReuse,
        T::SessionRevoked,
        T::PasswordChanged,
        T::PasswordResetRequested,
        T::PasswordResetCompleted,
        T::RoleChanged,
        T::UserDisabled,
        T::UserEnabled,
    ] {
        assert!(types(&events).contains(&kind), "{kind:?} recorded");
    }
    let reasons: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == T::LoginFailed)
        .filter_map(|e| e.detail["reason"].as_str())
        .collect();
    assert_eq!(reasons, ["wrong_password", "unknown_account", "disabled"]);
    let unknown = events
        .iter()
        .find(|e| e.detail["reason"] == "unknown_account")
        .unwrap();
    assert_eq!(unknown.email.as_deref(), Some("ghost@acme.test"));
    assert_eq!(unknown.user_id, None);
    assert_eq!(unknown.address.as_deref(), Some("127.0.0.1"));
    let role = events.iter().find(|e| e.kind == T::RoleChanged).unwrap();
    assert_eq!(role.user_id, Some(w.sales.id));
    assert_eq!(role.actor_id, Some(w.admin.user_id()));
    assert_eq!(
        (role.detail["from"].as_str(), role.detail["to"].as_str()),
        (Some("sales"), Some("manager"))
    );
    let reasons: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == T::SessionRevoked)
        .filter_map(|e| e.detail["reason"].as_str())
        .collect();
    for r in ["token_reuse", "password_changed", "user_disabled", "logout"] {
        assert!(reasons.contains(&r), "revoked for {r}");
    }
    let counts = crm.log_counts();
    let n = |c: &crate::security::LogCounts, k| c.events.iter().find(|(t, _)| *t == k).unwrap().1;
    assert_eq!(n(&counts, T::LoginFailed) - n(&before, T::LoginFailed), 3);
    assert!(n(&counts, T::Anomaly) >= 1, "the reuse is an anomaly too");
    assert!(
        events
            .iter()
            .any(|e| e.kind == T::Anomaly && e.detail["rule"] == "refresh_token_reuse")
    );

    // No secret anywhere in any payload.
    let mut secrets: Vec<String> = vec![
        "sales password".into(),
        "not the password".into(),
        "whatever pass".into(),
        "new sales password".into(),
        "reset sales password".into(),
        ok.refresh_token.expose().into(),
        next.refresh_token.expose().into(),
        ok.access_token.clone(),
        token.expose().into(),
        String::from_utf8_lossy(super::identity_suite::SECRET).into_owned(),
        token.hash().0,
        ok.refresh_token.hash().0,
    ];
    // (The record's `to_json` leaves the hash out: read it from the credential itself.)
    let cred = crm
        .storage()
        .get(ws, EntityKind::Credential, w.sales.id.uuid())
        .await
        .unwrap()
        .and_then(<crate::model::Credential as crate::model::Entity>::from_record)
        .expect("the sales user has a password");
    assert!(cred.password_hash.0.len() > 20, "a real hash to look for");
    secrets.push(cred.password_hash.0);
    for e in &events {
        let text = serde_json::to_string(e).unwrap();
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "event {text} holds a secret");
        }
    }
}

/// The hook sees every event as it happens; rate-limit events are sampled for the store.
pub async fn hooks_stream_events_and_rate_limits_are_sampled(f: Fixture) {
    let hook = Arc::new(Collect::default());
    let config = CrmConfig {
        security_hooks: vec![hook.clone()],
        ..CrmConfig::default()
    };
    let w = world_with(&f, config).await;
    let ws = w.admin.workspace_id();
    for _ in 0..50 {
        w.crm.security_event(
            w.crm
                .event_for(&w.sales, SecurityEventType::RateLimited)
                .address(Some("203.0.113.50"))
                .with("policy", "api"),
        );
    }
    w.clock.advance(Duration::from_secs(61));
    w.crm.security_event(
        w.crm
            .event_for(&w.sales, SecurityEventType::RateLimited)
            .address(Some("203.0.113.50"))
            .with("policy", "api"),
    );
    assert_eq!(hook.0.lock().unwrap().len(), 51, "the stream sees all");
    let events = stored(&w.crm, ws).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == SecurityEventType::RateLimited)
            .count(),
        2,
        "one per key and minute is kept"
    );
    // Admin only, coded errors for bad pages.
    let q = SecurityEventQuery {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        w.crm
            .security_events()
            .list(&w.admin, &q)
            .await
            .unwrap()
            .len(),
        2
    );
    for who in [&w.manager, &w.sales, &w.reader] {
        let e = w.crm.security_events().list(who, &q).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Forbidden);
    }
    for limit in [0, 501] {
        let q = SecurityEventQuery {
            limit,
            ..Default::default()
        };
        let e = w
            .crm
            .security_events()
            .list(&w.admin, &q)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidQuery);
    }
}

/// Refusals of the identity layer are recorded once each: a throttled login is one
/// `login_throttled` (no `rate_limited` besides), a refresh past the `Refresh` quota one
/// `rate_limited` (policy `refresh`, sampled per address and minute, all counted) in the
/// workspace its token names; and neither these, the export and erasure events, nor any
/// other event holds a password, token, hash or secret.
pub async fn identity_refusals_are_recorded_once_and_without_secrets(f: Fixture) {
    use crate::identity::{Identity, IdentityConfig, PasswordConfig, Secret};
    use crate::ratelimit::{Policy, Quota};
    let w = id_world(&f).await;
    let (crm, ws) = (&w.crm, w.ws);
    let n = |kind: SecurityEventType| crm.log_counts().event_count(kind);
    let of = |events: &[SecurityEvent], kind: SecurityEventType| -> Vec<SecurityEvent> {
        events.iter().filter(|e| e.kind == kind).cloned().collect()
    };
    use SecurityEventType as T;
    // Five failures, then the account waits: the sixth attempt is throttled.
    for _ in 0..5 {
        let r =
            w.id.login(login_req(ws, "sales@acme.test", "guessed password"))
                .await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::InvalidCredentials);
    }
    let throttled =
        w.id.login(login_req(ws, "sales@acme.test", "sales password"))
            .await;
    assert_eq!(throttled.unwrap_err().kind(), ErrorKind::RateLimited);
    let events = stored(crm, ws).await;
    assert_eq!(of(&events, T::LoginThrottled).len(), 1, "{events:?}");
    assert_eq!(n(T::LoginThrottled), 1);
    assert!(of(&events, T::RateLimited).is_empty(), "{events:?}");
    assert_eq!(n(T::RateLimited), 0);
    let t = &of(&events, T::LoginThrottled)[0];
    assert_eq!(t.email.as_deref(), Some("sales@acme.test"));
    assert_eq!(t.address.as_deref(), Some("127.0.0.1"));
    w.clock.advance(Duration::from_secs(60));

    // Two refreshes a minute per address; the next three are refused.
    let mut config = IdentityConfig::new(Secret::new(super::identity_suite::SECRET));
    config.password = PasswordConfig {
        cost: 4,
        workers: 2,
        queue: 64,
    };
    config.rate_limits = config
        .rate_limits
        .clone()
        .with_quota(Policy::Refresh, Quota::per_minute(2));
    let strict = Identity::new(crm.clone(), config, w.delivery.clone()).unwrap();
    let first =
        w.id.login(login_req(ws, "sales@acme.test", "sales password"))
            .await
            .unwrap();
    let client = super::identity_suite::client();
    let second = strict
        .refresh(first.refresh_token.expose(), &client)
        .await
        .unwrap();
    let third = strict
        .refresh(second.refresh_token.expose(), &client)
        .await
        .unwrap();
    for _ in 0..3 {
        let r = strict.refresh(third.refresh_token.expose(), &client).await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::RateLimited);
    }
    // A token that names no workspace has none to record the refusal in.
    let r = strict.refresh("not a token", &client).await;
    assert_eq!(r.unwrap_err().kind(), ErrorKind::RateLimited);
    assert_eq!(
        n(T::RateLimited),
        3,
        "every refusal with a workspace counted"
    );
    let events = stored(crm, ws).await;
    let limited = of(&events, T::RateLimited);
    assert_eq!(limited.len(), 1, "sampled: one per address and minute");
    assert_eq!(limited[0].detail["policy"], "refresh");
    assert_eq!(limited[0].address.as_deref(), Some("127.0.0.1"));
    assert_eq!(limited[0].workspace_id, ws);
    // The refused token still works once the minute is over.
    w.clock.advance(Duration::from_secs(61));
    let fourth = strict
        .refresh(third.refresh_token.expose(), &client)
        .await
        .unwrap();

    // Export and erasure events, and a sweep of every event for secrets.
    let c = crm
        .contacts()
        .create(&w.admin, super::suite::contact("Export", "Subject"))
        .await
        .unwrap();
    crm.privacy().export_contact(&w.admin, c.id).await.unwrap();
    crm.privacy().erase_contact(&w.admin, c.id).await.unwrap();
    let events = stored(crm, ws).await;
    for kind in [T::ExportPerformed, T::ErasurePerformed] {
        assert_eq!(of(&events, kind).len(), 1, "{kind:?}");
    }
    let mut secrets: Vec<String> = vec![
        "guessed password".into(),
        "sales password".into(),
        first.access_token.clone(),
        String::from_utf8_lossy(super::identity_suite::SECRET).into_owned(),
    ];
    for t in [&first, &second, &third, &fourth] {
        secrets.push(t.refresh_token.expose().into());
        secrets.push(t.refresh_token.hash().0);
        secrets.push(t.access_token.clone());
    }
    let cred = crm
        .storage()
        .get(ws, EntityKind::Credential, w.sales.id.uuid())
        .await
        .unwrap()
        .expect("the sales user has a password");
    let cred = <crate::model::Credential as crate::model::Entity>::from_record(cred)
        .expect("a credential");
    assert!(cred.password_hash.0.len() > 20, "a real hash to look for");
    secrets.push(cred.password_hash.0);
    for e in &events {
        let text = serde_json::to_string(e).unwrap();
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "event {text} holds a secret");
        }
    }
}

fn failed(ws: WorkspaceId, at: Timestamp, email: &str, address: &str) -> SecurityEvent {
    SecurityEvent::new(ws, SecurityEventType::LoginFailed, at)
        .email(email)
        .address(Some(address))
        .with("reason", "wrong_password")
}

fn anomalies(events: &[SecurityEvent], rule: &str) -> usize {
    events
        .iter()
        .filter(|e| e.kind == SecurityEventType::Anomaly && e.detail["rule"] == rule)
        .count()
}

/// Each anomaly rule fires on its pattern (once per window), and ordinary use fires none.
pub async fn anomaly_rules_fire_on_attacks_and_not_on_normal_use(f: Fixture) {
    let config = CrmConfig {
        record_access: true,
        ..CrmConfig::default()
    };
    let w = world_with(&f, config).await;
    let (crm, ws) = (&w.crm, w.admin.workspace_id());
    let rules = AnomalyConfig::default();
    let step = Duration::from_secs(20);

    // Normal use: a few typos from one address, several people mistyping from an office.
    for i in 0..4 {
        crm.security_event(failed(ws, crm.now(), "ada@acme.test", "198.51.100.1"));
        crm.security_event(failed(
            ws,
            crm.now(),
            &format!("user{i}@acme.test"),
            "198.51.100.2",
        ));
        w.clock.advance(step);
    }
    // Normal reading: 40 records a minute for ten minutes.
    let ids: Vec<Uuid> = (0..400).map(|_| Uuid::now_v7()).collect();
    for minute in 0..10 {
        crm.log_access(
            &w.sales,
            EntityKind::Contact,
            &ids[minute * 40..(minute + 1) * 40],
        );
        w.clock.advance(Duration::from_secs(60));
    }
    let events = stored(crm, ws).await;
    for rule in crate::security::anomaly::RULES {
        assert_eq!(anomalies(&events, rule), 0, "{rule} quiet in normal use");
    }

    // Credential stuffing: one account, many addresses.
    for i in 0..rules.stuffing_failures + 5 {
        crm.security_event(failed(
            ws,
            crm.now(),
            "ada@acme.test",
            &format!("203.0.113.{}", i % 4),
        ));
        w.clock.advance(Duration::from_secs(5));
    }
    // Spraying: one address, many accounts.
    for i in 0..rules.spraying_accounts + 5 {
        crm.security_event(failed(
            ws,
            crm.now(),
            &format!("victim{i}@acme.test"),
            "192.0.2.66",
        ));
        w.clock.advance(Duration::from_secs(5));
    }
    // Bulk reading: one minute far above the user's usual pace.
    let many: Vec<Uuid> = (0..rules.bulk_factor as usize * 40 + 1)
        .map(|_| Uuid::now_v7())
        .collect();
    w.clock.advance(Duration::from_secs(60));
    crm.log_access(&w.sales, EntityKind::Contact, &many);
    // Reuse of a refresh token.
    crm.security_event(
        SecurityEvent::new(ws, SecurityEventType::RefreshTokenReuse, crm.now())
            .user(w.sales.user_id()),
    );
    let events = stored(crm, ws).await;
    assert_eq!(
        anomalies(&events, "credential_stuffing"),
        1,
        "once per window"
    );
    assert_eq!(anomalies(&events, "password_spraying"), 1);
    assert_eq!(anomalies(&events, "bulk_reading"), 1);
    assert_eq!(anomalies(&events, "refresh_token_reuse"), 1);
    let bulk = events
        .iter()
        .find(|e| e.detail["rule"] == "bulk_reading")
        .unwrap();
    assert_eq!(bulk.user_id, Some(w.sales.user_id()));
    let counts = crm.log_counts();
    for rule in [
        "credential_stuffing",
        "password_spraying",
        "bulk_reading",
        "refresh_token_reuse",
    ] {
        assert_eq!(
            counts.anomalies.iter().find(|(r, _)| *r == rule).unwrap().1,
            1
        );
    }
}

/// A login from an address none of the user's sessions came from is an anomaly; the first
/// login and logins from known addresses are not.
pub async fn a_login_from_a_new_address_is_an_anomaly(f: Fixture) {
    let w = id_world(&f).await;
    let ws = w.ws;
    let login = |address: &'static str| {
        w.id.login(from(ws, "sales@acme.test", "sales password", address))
    };
    login("198.51.100.7").await.unwrap();
    login("198.51.100.7").await.unwrap();
    let events = stored(&w.crm, ws).await;
    assert_eq!(anomalies(&events, "new_address"), 0);
    login("203.0.113.99").await.unwrap();
    let events = stored(&w.crm, ws).await;
    assert_eq!(anomalies(&events, "new_address"), 1);
    let a = events
        .iter()
        .find(|e| e.detail["rule"] == "new_address")
        .unwrap();
    assert_eq!(a.user_id, Some(w.sales.id));
    assert_eq!(a.address.as_deref(), Some("203.0.113.99"));
}

/// With the access log on, every read (single, batch, list, search, users) is persisted
/// after a flush with who, what, route and address; admins read it with filters; the
/// workspace's client-details policy decides what address is kept.
pub async fn reads_are_persisted_in_the_access_log(f: Fixture) {
    let config = CrmConfig {
        record_access: true,
        ..CrmConfig::default()
    };
    let w = world_with(&f, config).await;
    let (crm, ws) = (&w.crm, w.admin.workspace_id());
    let sales = w
        .sales
        .clone()
        .with_origin("GET /contacts/{id}", Some("203.0.113.21".into()));
    let c = w
        .create(&sales, super::suite::contact("Grace", "Hopper"))
        .await;
    w.get(&sales, c.id).await;
    crm.contacts()
        .list(&w.manager, &ListParams::new())
        .await
        .unwrap();
    crm.search(&w.admin, "grace", 10).await.unwrap();
    crm.users()
        .list(&w.admin, &ListParams::new())
        .await
        .unwrap();
    let report = crm.flush_logs().await.unwrap();
    assert!(report.access_entries >= 4);
    assert_eq!(
        crm.flush_logs().await.unwrap().access_entries,
        0,
        "flushed once"
    );
    let q = AccessLogQuery {
        record_id: Some(c.id.uuid()),
        limit: 100,
        ..Default::default()
    };
    let about = crm.access_log().list(&w.admin, &q).await.unwrap();
    assert_eq!(about.len(), 3, "get, list and search each read it");
    let get = about
        .iter()
        .find(|e| e.user_id == w.sales.user_id())
        .unwrap();
    assert_eq!(get.route, "GET /contacts/{id}");
    assert_eq!(get.address.as_deref(), Some("203.0.113.21"));
    assert_eq!(get.entity, EntityKind::Contact);
    let users = AccessLogQuery {
        user_id: Some(w.admin.user_id()),
        limit: 100,
        ..Default::default()
    };
    let by_admin = crm.access_log().list(&w.admin, &users).await.unwrap();
    assert!(by_admin.iter().any(|e| e.entity == EntityKind::User));
    for who in [&w.manager, &w.sales, &w.reader] {
        let e = crm.access_log().list(who, &q).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Forbidden);
    }
    let bad = AccessLogQuery {
        since: Some(crm.now()),
        until: Some(Timestamp::EPOCH),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        crm.access_log()
            .list(&w.admin, &bad)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidQuery
    );

    // Data minimisation: truncated, then none.
    for (details, expected) in [
        (ClientDetails::Truncated, Some("203.0.113.0")),
        (ClientDetails::None, None),
    ] {
        let config = crm.configuration().get(&w.admin).await.unwrap();
        crm.configuration()
            .update(
                &w.admin,
                config.version,
                ConfigurationPatch {
                    retention: Some(RetentionPolicy {
                        client_details: details,
                        ..RetentionPolicy::default()
                    }),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        w.clock.advance(Duration::from_secs(1));
        w.get(&sales, c.id).await;
        crm.flush_logs().await.unwrap();
        let newest = crm
            .access_log()
            .list(
                &w.admin,
                &AccessLogQuery {
                    limit: 1,
                    ..q.clone()
                },
            )
            .await
            .unwrap();
        assert_eq!(newest[0].address.as_deref(), expected, "{details:?}");
    }
    let _ = ws;
}

async fn audit_len(crm: &crate::Crm, admin: &crate::Actor) -> usize {
    let mut n = 0;
    let mut before = None;
    loop {
        let q = crate::audit::AuditQuery {
            before,
            limit: Some(100),
            ..Default::default()
        };
        let page = crm.audit().list(admin, &q).await.unwrap();
        n += page.len();
        match page.last() {
            Some(last) if page.len() == 100 => before = Some(last.id),
            _ => return n,
        }
    }
}

/// Retention, with the manual clock: trash past its days is purged through the purge path
/// (audited, a `delete` in the change feed), old log entries and ended sessions and used
/// reset tokens go, recent ones stay, the audit trail is kept unless limited, one summary
/// audit entry per run; bad settings are refused and change nothing.
pub async fn retention_removes_what_is_past_its_period(f: Fixture) {
    let config = CrmConfig {
        record_access: true,
        ..CrmConfig::default()
    };
    let w = world_with(&f, config).await;
    let (crm, ws) = (&w.crm, w.admin.workspace_id());
    let day = Duration::from_secs(86_400);
    let contact = |name: &str| ContactInput {
        first_name: name.into(),
        last_name: "Kept".into(),
        ..Default::default()
    };
    let old = w.create(&w.admin, contact("Old")).await;
    let young = w.create(&w.admin, contact("Young")).await;
    let live = w.create(&w.admin, contact("Live")).await;
    crm.contacts().delete(&w.admin, old.id).await.unwrap();
    w.get(&w.sales, live.id).await;
    crm.security_event(
        crm.event_for(&w.sales, SecurityEventType::AccessRefused)
            .with("status", 403),
    );
    crm.flush_logs().await.unwrap();

    // Bad settings: coded, nothing changed.
    let config = crm.configuration().get(&w.admin).await.unwrap();
    let policy = RetentionPolicy::default;
    for (bad, field) in [
        (
            RetentionPolicy {
                trash_days: -1,
                ..policy()
            },
            "retention.trash_days",
        ),
        (
            RetentionPolicy {
                access_log_days: 0,
                ..policy()
            },
            "retention.access_log_days",
        ),
        (
            RetentionPolicy {
                audit_days: Some(1_000_000),
                ..policy()
            },
            "retention.audit_days",
        ),
        (
            RetentionPolicy {
                security_event_days: i64::MAX,
                ..policy()
            },
            "retention.security_event_days",
        ),
        (
            RetentionPolicy {
                session_days: i64::MIN,
                ..policy()
            },
            "retention.session_days",
        ),
        // Validated like the others, although no webhook delivery exists to prune yet.
        (
            RetentionPolicy {
                webhook_delivery_days: -30,
                ..policy()
            },
            "retention.webhook_delivery_days",
        ),
        (
            RetentionPolicy {
                webhook_delivery_days: crate::model::MAX_DAYS + 1,
                ..policy()
            },
            "retention.webhook_delivery_days",
        ),
    ] {
        let e = crm
            .configuration()
            .update(
                &w.admin,
                config.version,
                ConfigurationPatch {
                    retention: Some(bad),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation);
        let fields: Vec<&str> = e.fields().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, [field]);
    }
    assert_eq!(crm.configuration().get(&w.admin).await.unwrap(), config);

    // 20 days on: nothing is due.
    w.clock.advance(day * 20);
    crm.contacts().delete(&w.admin, young.id).await.unwrap();
    let r = crm.apply_retention(crm.now()).await.unwrap();
    assert_eq!((r.trash, r.access_log, r.security_events), (0, 0, 0));
    // 31 days after the first deletion: the old contact goes, the young one stays.
    w.clock.advance(day * 11);
    let audit_before = audit_len(crm, &w.admin).await;
    let r = crm.apply_retention(crm.now()).await.unwrap();
    assert_eq!(r.trash, 1);
    assert_eq!(r.audit, 0, "the audit trail is kept forever by default");
    assert_eq!(
        crm.storage()
            .get(ws, EntityKind::Contact, old.id.uuid())
            .await
            .unwrap(),
        None
    );
    assert!(
        crm.storage()
            .get(ws, EntityKind::Contact, young.id.uuid())
            .await
            .unwrap()
            .is_some()
    );
    let audit = crm
        .audit()
        .list(
            &w.admin,
            &crate::audit::AuditQuery {
                limit: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let summary = audit
        .iter()
        .find(|e| e.label == "retention")
        .expect("a summary entry");
    assert_eq!(summary.actor_id, None);
    assert!(
        summary
            .changes
            .iter()
            .any(|c| c.field == "removed.trash" && c.after == 1)
    );
    assert!(
        summary.changes.iter().all(|c| !c.field.contains("webhook")),
        "no webhook deliveries exist: nothing claims to prune them"
    );
    assert!(
        audit
            .iter()
            .any(|e| e.record_id == old.id.uuid() && e.action == crate::audit::AuditAction::Purge),
        "the purge itself is audited"
    );
    assert!(audit_len(crm, &w.admin).await > audit_before);
    // The purge reaches the change feed as a delete (PostgreSQL shows it once older
    // transactions ended: wait for it as the feed suite does).
    super::feed_suite::settle(f.storage.as_ref(), ws, old.id.uuid(), old.version + 2).await;
    let feed = super::feed_suite::whole_feed(f.storage.as_ref(), ws).await;
    assert!(
        feed.iter()
            .any(|c| c.change.id == old.id.uuid() && c.change.op == crate::feed::ChangeOp::Delete),
        "the purge reaches the change feed"
    );

    // A year on: the access log and security events of the first day go.
    let access = |crm: &crate::Crm| {
        let crm = crm.clone();
        async move {
            super::setup::stored_access(crm.storage().as_ref(), ws)
                .await
                .len()
        }
    };
    w.get(&w.sales, live.id).await;
    crm.flush_logs().await.unwrap();
    let logged = access(crm).await;
    assert!(logged >= 2);
    w.clock.advance(day * 340);
    let r = crm.apply_retention(crm.now()).await.unwrap();
    assert!(
        r.access_log >= 1 && r.access_log < logged,
        "the first day's reads go: {r:?}"
    );
    assert!(r.security_events >= 1);
    assert_eq!(access(crm).await, logged - r.access_log);

    // Audit limited to 10 days: older entries go, in batches.
    let config = crm.configuration().get(&w.admin).await.unwrap();
    crm.configuration()
        .update(
            &w.admin,
            config.version,
            ConfigurationPatch {
                retention: Some(RetentionPolicy {
                    audit_days: Some(10),
                    ..RetentionPolicy::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    w.clock.advance(day * 11);
    let r = crm.apply_retention(crm.now()).await.unwrap();
    assert!(r.audit > 0);
    let left = crm
        .audit()
        .list(
            &w.admin,
            &crate::audit::AuditQuery {
                limit: Some(100),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        left.iter()
            .all(|e| e.at >= Timestamp::from_micros(crm.now().as_micros() - 10 * 86_400_000_000))
    );
    assert!(
        left.iter().any(|e| e.label == "retention"),
        "this run's summary stays"
    );
}

/// Sessions: an ended session's address is truncated, and it is removed `session_days`
/// after it ended; used reset tokens too.
pub async fn retention_truncates_then_removes_ended_sessions(f: Fixture) {
    let w = id_world(&f).await;
    let (crm, ws) = (&w.crm, w.ws);
    let day = Duration::from_secs(86_400);
    let t =
        w.id.login(from(
            ws,
            "sales@acme.test",
            "sales password",
            "198.51.100.77",
        ))
        .await
        .unwrap();
    let keep =
        w.id.login(from(
            ws,
            "sales@acme.test",
            "sales password",
            "198.51.100.78",
        ))
        .await
        .unwrap();
    w.id.request_password_reset(ws, "sales@acme.test", &super::identity_suite::client())
        .await
        .unwrap();
    let sales = crm.actor(ws, w.sales.id).await.unwrap();
    w.id.logout(&sales, t.session_id).await.unwrap();
    let session = |id: crate::model::SessionId| {
        let crm = crm.clone();
        async move {
            crm.storage()
                .get(ws, EntityKind::Session, id.uuid())
                .await
                .unwrap()
                .and_then(<crate::model::Session as crate::model::Entity>::from_record)
        }
    };
    // The audit trail of a session holds only the network of its address.
    let entries = crm
        .storage()
        .audit(
            ws,
            &crate::audit::AuditQuery {
                record_id: Some(t.session_id.uuid()),
                limit: Some(10),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let text = serde_json::to_string(&entries).unwrap();
    assert!(!entries.is_empty());
    assert!(!text.contains("198.51.100.77"), "{text}");
    let r = crm.apply_retention(crm.now()).await.unwrap();
    assert_eq!(r.sessions_truncated, 1);
    assert_eq!(
        session(t.session_id)
            .await
            .unwrap()
            .client
            .address
            .as_deref(),
        Some("198.51.100.0")
    );
    assert_eq!(
        session(keep.session_id)
            .await
            .unwrap()
            .client
            .address
            .as_deref(),
        Some("198.51.100.78"),
        "an active session keeps its address"
    );
    w.clock.advance(day * 31);
    let r = crm.apply_retention(crm.now()).await.unwrap();
    assert_eq!(r.sessions, 1, "{r:?}");
    assert_eq!(r.reset_tokens, 1, "the expired reset token goes");
    assert!(session(t.session_id).await.is_none());

    // A workspace that stores no client details: new sessions have none.
    let config = crm.configuration().get(&w.admin).await.unwrap();
    crm.configuration()
        .update(
            &w.admin,
            config.version,
            ConfigurationPatch {
                retention: Some(RetentionPolicy {
                    client_details: ClientDetails::None,
                    ..RetentionPolicy::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let bare =
        w.id.login(from(
            ws,
            "sales@acme.test",
            "sales password",
            "198.51.100.79",
        ))
        .await
        .unwrap();
    let s = session(bare.session_id).await.unwrap();
    assert_eq!(s.client, ClientInfo::default());
}
