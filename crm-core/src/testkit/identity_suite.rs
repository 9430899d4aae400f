//! Conformance tests of the identity layer (sessions, rotation, reset) on a backend.

#![allow(missing_docs, clippy::missing_panics_doc)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Fixture;
use super::setup::{email, fast_passwords, latest_audit, with_password};
use super::suite::kind;
use crate::clock::{ManualClock, Timestamp};
use crate::error::{ErrorKind, Result};
use crate::identity::{
    ExternalTokenConfig, Identity, IdentityConfig, LoginRequest, ResetDelivery, Secret,
    SecretToken, TokenResponse,
};
use crate::model::{ClientInfo, Role, User, UserInput};
use crate::ratelimit::{Policy, Quota, RateLimitConfig};
use crate::{Actor, Crm, CrmConfig};

/// Collects delivered reset tokens (a test double for the host's email sender).
#[derive(Default)]
pub struct CollectingDelivery {
    /// Delivered (email, token) pairs.
    pub sent: Mutex<Vec<(String, SecretToken)>>,
}

#[async_trait]
impl ResetDelivery for CollectingDelivery {
    async fn deliver(
        &self,
        user: &User,
        token: &SecretToken,
        _expires_at: Timestamp,
    ) -> Result<()> {
        self.sent
            .lock()
            .unwrap()
            .push((user.email.clone(), token.clone()));
        Ok(())
    }
}

pub const SECRET: &[u8] = b"test-secret-0123456789-0123456789-abcdef";
pub const EXTERNAL_SECRET: &[u8] = b"better-auth-shared-secret-0123456789";

/// A workspace with an admin and a sales user, both with passwords.
pub struct IdWorld {
    pub id: Identity,
    /// A second instance (own `Crm`, own caches) on the fixture's peer storage.
    pub peer: Identity,
    pub crm: Crm,
    pub clock: ManualClock,
    pub delivery: Arc<CollectingDelivery>,
    pub admin: Actor,
    pub sales: User,
    pub ws: crate::id::WorkspaceId,
}

pub fn client() -> ClientInfo {
    ClientInfo {
        address: Some("127.0.0.1".into()),
        user_agent: Some("test".into()),
    }
}

pub fn login_req(ws: crate::id::WorkspaceId, email: &str, password: &str) -> LoginRequest {
    LoginRequest {
        workspace_id: ws,
        email: email.into(),
        password: password.into(),
        client: client(),
    }
}

impl IdWorld {
    /// A login to the world's workspace with `email` and `password` (from [`client`]).
    pub async fn login(&self, email: &str, password: &str) -> Result<TokenResponse> {
        self.id.login(login_req(self.ws, email, password)).await
    }

    /// Disables the sales user (as the admin); the user as it is now.
    pub async fn disable_sales(&self) -> User {
        let users = self.crm.users();
        let s = users.get(&self.admin, self.sales.id).await.unwrap();
        users
            .set_disabled(&self.admin, s.id, s.version, true)
            .await
            .unwrap()
    }

    /// A refresh of the session `tokens` were issued for, with their refresh token (from
    /// [`client`]).
    pub async fn refresh(&self, tokens: &TokenResponse) -> Result<TokenResponse> {
        self.id
            .refresh(tokens.refresh_token.expose(), &client())
            .await
    }
}

/// Builds the world; `external` enables external tokens for the workspace.
pub async fn id_world(f: &Fixture) -> IdWorld {
    let clock = super::suite::start();
    let crm = Crm::with_clock(
        f.storage.clone(),
        CrmConfig::default(),
        Arc::new(clock.clone()),
    );
    let delivery = Arc::new(CollectingDelivery::default());
    let mut config = IdentityConfig::new(Secret::new(SECRET));
    config.password = fast_passwords(2, 256);
    // External tokens are configured after the workspace exists (its id is needed).
    // The quota tests use their own identity; here logins are many and fast.
    config.rate_limits = RateLimitConfig::default()
        .with_quota(Policy::Login, Quota::per_minute(10_000))
        .with_quota(Policy::Refresh, Quota::per_minute(10_000))
        .with_quota(Policy::PasswordReset, Quota::per_minute(10_000));
    let bootstrap = Identity::new(crm.clone(), config.clone(), delivery.clone()).unwrap();
    let admin_input = UserInput {
        email: "admin@acme.test".into(),
        first_name: "Ada".into(),
        ..Default::default()
    };
    let (ws, tokens) = bootstrap
        .sign_up("Acme", admin_input, "admin password", ClientInfo::default())
        .await
        .unwrap();
    config.external.insert(
        ws.id,
        ExternalTokenConfig {
            issuer: Some("better-auth".into()),
            ..ExternalTokenConfig::new(Secret::new(EXTERNAL_SECRET))
        },
    );
    let peer_crm = Crm::with_clock(f.peer(), CrmConfig::default(), Arc::new(clock.clone()));
    let peer = Identity::new(peer_crm, config.clone(), delivery.clone()).unwrap();
    let id = Identity::new(crm.clone(), config, delivery.clone()).unwrap();
    let admin = crm.actor(ws.id, tokens.user.id).await.unwrap();
    let sales = with_password(
        &id,
        &admin,
        "sales@acme.test",
        Role::Sales,
        "sales password",
    )
    .await;
    IdWorld {
        id,
        peer,
        crm,
        clock,
        delivery,
        admin,
        sales,
        ws: ws.id,
    }
}

async fn login_sales(w: &IdWorld) -> TokenResponse {
    w.login("sales@acme.test", "sales password").await.unwrap()
}

pub async fn login_answers_tokens_and_one_error_for_every_failure(f: Fixture) {
    let w = id_world(&f).await;
    let t = w
        .login("  SALES@acme.test ", "sales password")
        .await
        .unwrap();
    assert_eq!(t.token_type, "Bearer");
    assert_eq!(t.expires_in, 900);
    assert_eq!(t.user.id, w.sales.id);
    assert_eq!(t.user.last_login_at, Some(w.crm.now()));
    let (actor, claims) = w.id.authenticate(&t.access_token).await.unwrap();
    assert_eq!((actor.user_id(), actor.role()), (w.sales.id, Role::Sales));
    assert_eq!(claims.sid, t.session_id.uuid());
    let wrong_pw = w.login("sales@acme.test", "nope").await.unwrap_err();
    let unknown = w.login("ghost@acme.test", "nope").await.unwrap_err();
    let other_ws =
        w.id.login(login_req(
            crate::id::WorkspaceId::generate(),
            "sales@acme.test",
            "sales password",
        ))
        .await
        .unwrap_err();
    let long =
        w.id.login(login_req(
            w.ws,
            "sales@acme.test",
            &("sales password".to_string() + &"x".repeat(100)),
        ))
        .await
        .unwrap_err();
    for e in [&wrong_pw, &unknown, &other_ws, &long] {
        assert_eq!(e.kind(), ErrorKind::InvalidCredentials);
        assert_eq!(
            e.to_string(),
            wrong_pw.to_string(),
            "the same answer whatever failed"
        );
    }
    w.disable_sales().await;
    let disabled = w
        .login("sales@acme.test", "sales password")
        .await
        .unwrap_err();
    assert_eq!(disabled.to_string(), wrong_pw.to_string());
}

pub async fn refresh_rotates_tokens(f: Fixture) {
    let w = id_world(&f).await;
    let t0 = login_sales(&w).await;
    w.clock.advance(Duration::from_secs(60));
    let t1 = w.refresh(&t0).await.unwrap();
    assert_ne!(t1.refresh_token, t0.refresh_token, "rotated");
    assert_eq!(t1.session_id, t0.session_id, "same session");
    w.id.authenticate(&t1.access_token).await.unwrap();
    w.clock.advance(Duration::from_secs(60));
    let t2 = w.refresh(&t1).await.unwrap();
    let t3 = w.refresh(&t2).await.unwrap();
    assert_ne!(t3.refresh_token, t2.refresh_token);
    let sessions =
        w.id.sessions(
            &w.crm.actor(w.ws, w.sales.id).await.unwrap(),
            Some(t0.session_id),
        )
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].current);
    assert_eq!(sessions[0].client.address.as_deref(), Some("127.0.0.1"));
    for bad in ["", "garbage", "AAAA", &"A".repeat(64), &"x".repeat(10_000)] {
        assert_eq!(
            kind(w.id.refresh(bad, &client()).await),
            ErrorKind::TokenInvalid
        );
    }
}

pub async fn reuse_inside_grace_converges(f: Fixture) {
    let w = id_world(&f).await;
    let t0 = login_sales(&w).await;
    let t1 = w.refresh(&t0).await.unwrap();
    w.clock.advance(Duration::from_secs(5));
    // A second tab presenting the old token inside the grace window gets the same current
    // token, even through another instance.
    let again = w
        .peer
        .refresh(t0.refresh_token.expose(), &client())
        .await
        .unwrap();
    assert_eq!(again.refresh_token, t1.refresh_token, "no new branch");
    // Even after the session moved on once more, the old token converges on the newest one.
    let t2 = w.refresh(&t1).await.unwrap();
    let converged = w.refresh(&t0).await.unwrap();
    assert_eq!(converged.refresh_token, t2.refresh_token);
    w.refresh(&t2).await.unwrap();
}

pub async fn reuse_after_grace_revokes_the_family(f: Fixture) {
    let w = id_world(&f).await;
    let t0 = login_sales(&w).await;
    let t1 = w.refresh(&t0).await.unwrap();
    let t2 = w.refresh(&t1).await.unwrap();
    w.clock.advance(Duration::from_secs(11));
    let err = w.refresh(&t0).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RefreshTokenReused);
    assert_eq!(err.code(), "E1008");
    // The whole family is dead, the newest token and access tokens included.
    assert_eq!(kind(w.refresh(&t2).await), ErrorKind::SessionRevoked);
    assert_eq!(
        kind(w.id.authenticate(&t2.access_token).await),
        ErrorKind::SessionRevoked
    );
    // Other sessions of the user are untouched.
    let other = login_sales(&w).await;
    w.refresh(&other).await.unwrap();
}

pub async fn concurrent_refreshes_get_one_child(f: Fixture) {
    let w = id_world(&f).await;
    let t0 = login_sales(&w).await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let id = if i % 2 == 0 { &w.id } else { &w.peer }.clone();
        let token = t0.refresh_token.expose().to_string();
        set.spawn(async move { id.refresh(&token, &client()).await });
    }
    let mut children = std::collections::HashSet::new();
    while let Some(r) = set.join_next().await {
        children.insert(r.unwrap().unwrap().refresh_token.expose().to_string());
    }
    assert_eq!(children.len(), 1, "all 20 got the same child");
    let session = w
        .crm
        .storage()
        .get(
            w.ws,
            crate::model::EntityKind::Session,
            t0.session_id.uuid(),
        )
        .await
        .unwrap()
        .unwrap();
    let crate::model::Record::Session(s) = session else {
        panic!()
    };
    assert_eq!(s.generation, 1, "the session advanced once");
}

pub async fn sessions_expire_unless_refreshed(f: Fixture) {
    let w = id_world(&f).await;
    let day = Duration::from_secs(24 * 3600);
    let kept = login_sales(&w).await;
    let idle = login_sales(&w).await;
    let mut current = kept;
    for _ in 0..4 {
        w.clock.advance(day * 10);
        current = w.refresh(&current).await.unwrap();
    }
    // 40 days later the refreshed session lives; the idle one died after 30.
    assert_eq!(kind(w.refresh(&idle).await), ErrorKind::SessionRevoked);
    w.clock.advance(day * 29);
    current = w.refresh(&current).await.unwrap();
    w.clock.advance(day * 31);
    assert_eq!(kind(w.refresh(&current).await), ErrorKind::SessionRevoked);
    // Access tokens expire after 15 minutes.
    let fresh = login_sales(&w).await;
    w.clock.advance(Duration::from_secs(15 * 60));
    assert_eq!(
        kind(w.id.authenticate(&fresh.access_token).await),
        ErrorKind::TokenExpired
    );
}

pub async fn logout_disable_and_password_change_end_sessions(f: Fixture) {
    let w = id_world(&f).await;
    let a = login_sales(&w).await;
    let b = login_sales(&w).await;
    let actor = w.crm.actor(w.ws, w.sales.id).await.unwrap();
    // Logout ends that session at once, access token included.
    w.id.logout(&actor, a.session_id).await.unwrap();
    assert_eq!(
        kind(w.id.authenticate(&a.access_token).await),
        ErrorKind::SessionRevoked
    );
    assert_eq!(kind(w.refresh(&a).await), ErrorKind::SessionRevoked);
    w.id.authenticate(&b.access_token).await.unwrap();
    // Password change keeps the current session and ends the others.
    let c = login_sales(&w).await;
    assert_eq!(
        kind(
            w.id.change_password(&actor, Some(b.session_id), "wrong", "new one")
                .await
        ),
        ErrorKind::WrongPassword
    );
    w.id.change_password(&actor, Some(b.session_id), "sales password", "new one")
        .await
        .unwrap();
    w.id.authenticate(&b.access_token).await.unwrap();
    assert_eq!(
        kind(w.id.authenticate(&c.access_token).await),
        ErrorKind::SessionRevoked
    );
    assert_eq!(kind(w.refresh(&c).await), ErrorKind::SessionRevoked);
    assert_eq!(
        kind(w.login("sales@acme.test", "sales password").await),
        ErrorKind::InvalidCredentials
    );
    let d = w.login("sales@acme.test", "new one").await.unwrap();
    // Log out everywhere.
    w.id.logout_all(&actor).await.unwrap();
    for t in [&b, &d] {
        assert_eq!(
            kind(w.id.authenticate(&t.access_token).await),
            ErrorKind::SessionRevoked
        );
    }
    // Disabling ends everything and refuses even unexpired tokens.
    let e = w.login("sales@acme.test", "new one").await.unwrap();
    let s = w.disable_sales().await;
    assert!(w.id.authenticate(&e.access_token).await.is_err());
    assert!(w.refresh(&e).await.is_err());
    // Role changes apply to the next request.
    let s = w
        .crm
        .users()
        .set_disabled(&w.admin, s.id, s.version, false)
        .await
        .unwrap();
    let g = w.login("sales@acme.test", "new one").await.unwrap();
    w.crm
        .users()
        .set_role(&w.admin, s.id, s.version, Role::Manager)
        .await
        .unwrap();
    assert_eq!(
        w.id.authenticate(&g.access_token).await.unwrap().0.role(),
        Role::Manager
    );
    // Someone else's session is not yours to revoke.
    assert_eq!(
        kind(w.id.revoke_session(&w.admin, g.session_id).await),
        ErrorKind::NotFound
    );
}

pub async fn password_reset_is_single_use_and_expires(f: Fixture) {
    let w = id_world(&f).await;
    let live = login_sales(&w).await;
    w.id.request_password_reset(w.ws, "ghost@acme.test", &client())
        .await
        .unwrap();
    assert!(
        w.delivery.sent.lock().unwrap().is_empty(),
        "nothing is sent for unknown emails, same answer"
    );
    w.id.request_password_reset(w.ws, "SALES@acme.test", &client())
        .await
        .unwrap();
    let token = w.delivery.sent.lock().unwrap().pop().unwrap().1;
    assert_eq!(
        kind(w.id.confirm_password_reset("garbage", "x").await),
        ErrorKind::ResetTokenInvalid
    );
    w.id.confirm_password_reset(token.expose(), "reset password")
        .await
        .unwrap();
    assert_eq!(
        kind(w.id.confirm_password_reset(token.expose(), "again").await),
        ErrorKind::ResetTokenInvalid,
        "single use"
    );
    assert_eq!(
        kind(w.id.authenticate(&live.access_token).await),
        ErrorKind::SessionRevoked,
        "reset ends every session"
    );
    w.login("sales@acme.test", "reset password").await.unwrap();
    // Expiry after one hour.
    w.id.request_password_reset(w.ws, "sales@acme.test", &client())
        .await
        .unwrap();
    let token = w.delivery.sent.lock().unwrap().pop().unwrap().1;
    w.clock.advance(Duration::from_secs(3601));
    assert_eq!(
        kind(w.id.confirm_password_reset(token.expose(), "late").await),
        ErrorKind::ResetTokenInvalid
    );
    w.login("sales@acme.test", "reset password").await.unwrap();
    // Two concurrent confirmations: exactly one wins.
    w.id.request_password_reset(w.ws, "sales@acme.test", &client())
        .await
        .unwrap();
    let token = w.delivery.sent.lock().unwrap().pop().unwrap().1;
    let (a, b) = tokio::join!(
        w.id.confirm_password_reset(token.expose(), "one"),
        w.id.confirm_password_reset(token.expose(), "two")
    );
    assert_eq!([a.is_ok(), b.is_ok()].iter().filter(|x| **x).count(), 1);
}

pub async fn imported_hashes_are_upgraded_at_login(f: Fixture) {
    let w = id_world(&f).await;
    // A Supabase/Atomic CRM export: bcrypt $2a$ at cost 10 of the raw password.
    let parts = bcrypt::hash_with_result("imported pw", 5).unwrap();
    let exported = parts.format_for_version(bcrypt::Version::TwoA);
    let user =
        w.id.import_user(&w.admin, email("old@acme.test"), &exported)
            .await
            .unwrap();
    assert_eq!(
        kind(
            w.id.import_user(&w.admin, email("bad@acme.test"), "md5:abc")
                .await
        ),
        ErrorKind::Validation
    );
    w.login("old@acme.test", "imported pw").await.unwrap();
    let stored = w
        .crm
        .storage()
        .get(w.ws, crate::model::EntityKind::Credential, user.id.uuid())
        .await
        .unwrap()
        .unwrap();
    let crate::model::Record::Credential(c) = stored else {
        panic!()
    };
    assert!(
        c.password_hash.0.starts_with("$crm-sha256$$2b$04$"),
        "rehashed in our format at the configured cost"
    );
    w.login("old@acme.test", "imported pw").await.unwrap();
    assert!(!format!("{c:?}").contains("$2b$"), "hashes never print");
}

fn b64(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn sign(header: serde_json::Value, claims: serde_json::Value, key: &[u8]) -> String {
    let msg = format!("{}.{}", b64(&header), b64(&claims));
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(msg.as_bytes());
    format!(
        "{msg}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

pub async fn forged_and_malformed_tokens_are_refused(f: Fixture) {
    let w = id_world(&f).await;
    let t = login_sales(&w).await;
    let (_, good) = w.id.authenticate(&t.access_token).await.unwrap();
    let now = w.crm.now().as_micros() / 1_000_000;
    let claims = serde_json::to_value(&good).unwrap();
    let hs = serde_json::json!({"alg": "HS256", "typ": "JWT"});
    let with = |k: &str, v: serde_json::Value| {
        let mut c = claims.clone();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = claims.clone();
        c.as_object_mut().unwrap().remove(k);
        c
    };
    let other_ws = crate::id::WorkspaceId::generate();
    let cases: Vec<(&str, String, ErrorKind)> = vec![
        ("malformed", "not.a.jwt".into(), ErrorKind::TokenInvalid),
        ("empty", String::new(), ErrorKind::TokenInvalid),
        (
            "wrong signature",
            sign(
                hs.clone(),
                claims.clone(),
                b"another secret of enough length!!",
            ),
            ErrorKind::TokenInvalid,
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&serde_json::json!({"alg": "none"})),
                b64(&claims)
            ),
            ErrorKind::TokenInvalid,
        ),
        (
            "RS256 header, HMAC-signed with the secret",
            sign(serde_json::json!({"alg": "RS256"}), claims.clone(), SECRET),
            ErrorKind::TokenInvalid,
        ),
        (
            "HS512",
            sign(serde_json::json!({"alg": "HS512"}), claims.clone(), SECRET),
            ErrorKind::TokenInvalid,
        ),
        (
            "expired",
            sign(hs.clone(), with("exp", serde_json::json!(now - 1)), SECRET),
            ErrorKind::TokenExpired,
        ),
        (
            "issued in the future",
            sign(
                hs.clone(),
                with("iat", serde_json::json!(now + 3600)),
                SECRET,
            ),
            ErrorKind::TokenInvalid,
        ),
        (
            "wrong issuer",
            sign(hs.clone(), with("iss", serde_json::json!("evil")), SECRET),
            ErrorKind::TokenInvalid,
        ),
        (
            "wrong audience",
            sign(hs.clone(), with("aud", serde_json::json!("other")), SECRET),
            ErrorKind::TokenInvalid,
        ),
        (
            "no exp",
            sign(hs.clone(), without("exp"), SECRET),
            ErrorKind::TokenInvalid,
        ),
        (
            "no sub",
            sign(hs.clone(), without("sub"), SECRET),
            ErrorKind::TokenInvalid,
        ),
        (
            "exp as string",
            sign(
                hs.clone(),
                with("exp", serde_json::json!("tomorrow")),
                SECRET,
            ),
            ErrorKind::TokenInvalid,
        ),
        (
            "sub as number",
            sign(hs.clone(), with("sub", serde_json::json!(42)), SECRET),
            ErrorKind::TokenInvalid,
        ),
        (
            "role unknown",
            sign(hs.clone(), with("role", serde_json::json!("root")), SECRET),
            ErrorKind::TokenInvalid,
        ),
        (
            "extra claim",
            sign(hs.clone(), with("admin", serde_json::json!(true)), SECRET),
            ErrorKind::TokenInvalid,
        ),
        (
            "another workspace's session",
            sign(
                hs.clone(),
                with("ws", serde_json::json!(other_ws.uuid())),
                SECRET,
            ),
            ErrorKind::SessionRevoked,
        ),
        (
            "unknown session",
            sign(
                hs.clone(),
                with("sid", serde_json::json!(uuid::Uuid::now_v7())),
                SECRET,
            ),
            ErrorKind::SessionRevoked,
        ),
    ];
    let audit_before = latest_audit(&w.crm, &w.admin).await.len();
    for (name, token, expected) in cases {
        let err = w.id.authenticate(&token).await.unwrap_err();
        assert_eq!(err.kind(), expected, "{name}");
        assert!(err.code().starts_with("E1"), "{name}");
        assert!(
            !err.to_string().contains("HS256") && !err.to_string().contains("signature"),
            "{name}: no internals in messages"
        );
    }
    // A forged token naming a real user of the workspace still needs the secret.
    let forged = sign(
        hs,
        with("sub", serde_json::json!(w.admin.user_id().uuid())),
        b"guessed secret guessed secret!!!",
    );
    assert_eq!(
        kind(w.id.authenticate(&forged).await),
        ErrorKind::TokenInvalid
    );
    let audit_after = latest_audit(&w.crm, &w.admin).await.len();
    assert_eq!(audit_before, audit_after, "nothing changed");
    w.id.authenticate(&t.access_token).await.unwrap();
}

pub async fn external_tokens_map_to_users(f: Fixture) {
    let w = id_world(&f).await;
    let now = w.crm.now().as_micros() / 1_000_000;
    let hs = serde_json::json!({"alg": "HS256", "typ": "JWT"});
    let claims = serde_json::json!({"sub": w.sales.id.uuid(), "iat": now, "exp": now + 300, "iss": "better-auth"});
    let actor =
        w.id.authenticate_external(w.ws, &sign(hs.clone(), claims.clone(), EXTERNAL_SECRET))
            .await
            .unwrap();
    assert_eq!(actor.user_id(), w.sales.id);
    // The claims with one of them changed.
    let changed = |name: &str, value: serde_json::Value| {
        let mut c = claims.clone();
        c[name] = value;
        c
    };
    let refused = [
        (
            "another key",
            claims.clone(),
            SECRET,
            ErrorKind::TokenInvalid,
        ),
        (
            "another issuer",
            changed("iss", serde_json::json!("other")),
            EXTERNAL_SECRET,
            ErrorKind::TokenInvalid,
        ),
        (
            "expired",
            changed("exp", serde_json::json!(now - 1)),
            EXTERNAL_SECRET,
            ErrorKind::TokenExpired,
        ),
        (
            "an unknown user",
            changed("sub", serde_json::json!(uuid::Uuid::now_v7())),
            EXTERNAL_SECRET,
            ErrorKind::Unauthenticated,
        ),
    ];
    for (what, bad, key, expected) in refused {
        let token = sign(hs.clone(), bad, key);
        assert_eq!(
            kind(w.id.authenticate_external(w.ws, &token).await),
            expected,
            "{what}"
        );
    }
    // Not configured for another workspace.
    assert_eq!(
        kind(
            w.id.authenticate_external(
                crate::id::WorkspaceId::generate(),
                &sign(hs, claims, EXTERNAL_SECRET)
            )
            .await
        ),
        ErrorKind::TokenInvalid
    );
}

pub async fn login_is_throttled_and_limited_but_reset_is_not(f: Fixture) {
    let w = id_world(&f).await;
    for _ in 0..5 {
        assert_eq!(
            kind(w.login("sales@acme.test", "guess").await),
            ErrorKind::InvalidCredentials
        );
    }
    // Past five failures the account waits, even with the right password.
    let err = w
        .login("sales@acme.test", "sales password")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after_secs(), Some(1));
    // The owner can still reset the password.
    w.id.request_password_reset(w.ws, "sales@acme.test", &client())
        .await
        .unwrap();
    assert_eq!(w.delivery.sent.lock().unwrap().len(), 1);
    w.clock.advance(Duration::from_secs(1));
    w.login("sales@acme.test", "sales password").await.unwrap();
    // Success clears the counters.
    assert_eq!(
        kind(w.login("sales@acme.test", "guess").await),
        ErrorKind::InvalidCredentials
    );
    w.login("sales@acme.test", "sales password").await.unwrap();

    // The default quotas: 10 logins a minute per address.
    let mut config = IdentityConfig::new(Secret::new(SECRET));
    config.password = fast_passwords(2, 64);
    let strict = Identity::new(w.crm.clone(), config, w.delivery.clone()).unwrap();
    for _ in 0..10 {
        strict
            .login(login_req(w.ws, "sales@acme.test", "sales password"))
            .await
            .unwrap();
    }
    let err = strict
        .login(login_req(w.ws, "sales@acme.test", "sales password"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert!(err.retry_after_secs().unwrap() >= 1);
    let mut elsewhere = login_req(w.ws, "sales@acme.test", "sales password");
    elsewhere.client.address = Some("10.9.8.7".into());
    strict.login(elsewhere).await.unwrap();
    // Five resets an hour per email, whatever the address.
    for i in 0..5 {
        let c = ClientInfo {
            address: Some(format!("10.0.0.{i}")),
            user_agent: None,
        };
        strict
            .request_password_reset(w.ws, "admin@acme.test", &c)
            .await
            .unwrap();
    }
    let c = ClientInfo {
        address: Some("10.0.0.99".into()),
        user_agent: None,
    };
    assert_eq!(
        kind(
            strict
                .request_password_reset(w.ws, "admin@acme.test", &c)
                .await
        ),
        ErrorKind::RateLimited
    );
}

/// Two identity instances (one on the storage, one on its peer) with no workspace yet.
fn fresh_pair(f: &Fixture) -> (Identity, Identity) {
    let mut config = IdentityConfig::new(Secret::new(SECRET));
    config.password = fast_passwords(2, 256);
    let delivery = Arc::new(CollectingDelivery::default());
    let one = Identity::new(
        Crm::new(f.storage.clone(), CrmConfig::default()),
        config.clone(),
        delivery.clone(),
    )
    .unwrap();
    let two = Identity::new(Crm::new(f.peer(), CrmConfig::default()), config, delivery).unwrap();
    (one, two)
}

/// Racing first sign-ups (half through a second instance on the peer storage): the storage
/// lets exactly one create the installation's workspace; the others fail with
/// `AlreadyInitialized` and leave nothing behind. Open sign-up (`sign_up`) is unaffected.
pub async fn first_sign_up_is_decided_by_storage(f: Fixture) {
    let (one, two) = fresh_pair(&f);
    let admin = |n: usize| UserInput {
        email: format!("admin{n}@acme.test"),
        first_name: "Ada".into(),
        ..Default::default()
    };
    let mut racing = Vec::new();
    for n in 0..6 {
        let id = if n % 2 == 0 { one.clone() } else { two.clone() };
        let input = admin(n);
        racing.push(tokio::spawn(async move {
            id.sign_up_first("Acme", input, "admin password", ClientInfo::default())
                .await
        }));
    }
    let mut won = Vec::new();
    for r in racing {
        match r.await.unwrap() {
            Ok((ws, _)) => won.push(ws.id),
            Err(e) => assert_eq!(e.kind(), ErrorKind::AlreadyInitialized, "{e:?}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one first sign-up wins");
    assert_eq!(f.storage.workspaces(10).await.unwrap(), won);
    assert_eq!(f.peer().workspaces(10).await.unwrap(), won);
    // Later first sign-ups keep failing, on either instance.
    for id in [&one, &two] {
        let late = id
            .sign_up_first("Late", admin(9), "pw", ClientInfo::default())
            .await;
        assert_eq!(kind(late), ErrorKind::AlreadyInitialized);
    }
    assert_eq!(f.storage.workspaces(10).await.unwrap(), won);
    // Open sign-up does not assert it.
    let (second, _) = one
        .sign_up("Other", admin(10), "pw", ClientInfo::default())
        .await
        .unwrap();
    assert_eq!(f.storage.workspaces(10).await.unwrap().len(), 2);
    assert!(f.storage.workspaces(10).await.unwrap().contains(&second.id));
}
