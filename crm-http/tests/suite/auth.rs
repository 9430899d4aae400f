//! Sign-up, login, refresh rotation and reuse, cookies and CSRF, logout, sessions,
//! passwords.

use std::time::Duration;

use serde_json::json;

use super::{Client, Options, Server, Session, StoreFactory};

pub async fn signup_bootstraps_then_closes(store: StoreFactory) {
    let (server, admin) = Server::admin(store).await;
    let me = admin.get("/me").send().await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["user"]["role"], "admin");
    assert_eq!(me.body["workspace"]["name"], "Acme");
    assert_eq!(
        server.state.default_workspace().map(|w| w.to_string()),
        Some(admin.workspace_id.clone())
    );

    // A second sign-up is refused: the installation is set up.
    let second_signup = |c: Client| {
        c.post("/auth/signup")
            .json(json!({"workspace_name": "Evil", "email": "e@evil.test", "password": "pw"}))
    };
    second_signup(server.client()).refused(409, "E5006").await;

    // A restarted server (or a second instance) on the same store knows the installation's
    // workspace from storage: sign-up stays closed and logins need no workspace id.
    let restarted = Server::on(server.storage.clone(), Box::new(()), Options::default()).await;
    assert_eq!(restarted.state.default_workspace(), None);
    second_signup(restarted.client())
        .refused(409, "E5006")
        .await;
    let r = restarted
        .try_login(json!({"email": "admin@acme.test", "password": "admin password"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["user"]["role"], "admin");

    // With open sign-up, each sign-up is a new workspace whose first user is its admin.
    let open = Server::with(store, Options::http(|h| h.open_signup = true)).await;
    let a = open.bootstrap().await;
    let r = open
        .client()
        .post("/auth/signup")
        .json(json!({"workspace_name": "Beta", "email": "b@beta.test", "password": "pw"}))
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_ne!(r.body["workspace"]["id"].as_str().unwrap(), a.workspace_id);
    assert_eq!(r.body["user"]["role"], "admin");

    // Sign-up input is validated by the core.
    open.client()
        .post("/auth/signup")
        .json(json!({"workspace_name": "", "email": "not an email", "password": "pw"}))
        .refused(422, "E2001")
        .await;
}

pub async fn login_answers_tokens_and_cookies(store: StoreFactory) {
    let (server, admin) = Server::admin(store).await;
    let c = server.client();
    // The workspace defaults to the installation's.
    let r = c.login("ADMIN@acme.test", "admin password").send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 900);
    assert!(r.body["access_token"].as_str().unwrap().split('.').count() == 3);
    assert!(!r.body["refresh_token"].as_str().unwrap().is_empty());
    assert_eq!(r.body["user"]["email"], "admin@acme.test");
    assert!(r.body["user"].get("password_hash").is_none());

    let refresh = c.cookie("crm_refresh").expect("refresh cookie");
    assert_eq!(refresh.value, r.body["refresh_token"].as_str().unwrap());
    // Scoped to the auth routes under the host's mount prefix.
    assert_eq!(refresh.path, "/api/v1/auth");
    for attr in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(refresh.raw.contains(attr), "{}", refresh.raw);
    }
    let csrf = c.cookie("crm_csrf").expect("csrf cookie");
    assert_eq!(csrf.value, r.body["csrf_token"].as_str().unwrap());
    assert!(!csrf.raw.contains("HttpOnly"), "scripts must read it");
    assert!(csrf.raw.contains("Secure") && csrf.raw.contains("SameSite=Strict"));

    let s = Session::from_tokens(c, &r.body);
    assert_eq!(s.user_id, admin.user_id);
    assert_eq!(s.get("/me").send().await.status, 200);
    // Bearer is required; a forged token is refused.
    server.client().get("/me").refused(401, "E1001").await;
    server
        .client()
        .get("/me")
        .bearer("not.a.jwt")
        .refused(401, "E1006")
        .await;
    let metrics = server.state.metrics_text();
    assert!(
        metrics.contains("crm_http_logins_total{result=\"success\"} 1"),
        "{metrics}"
    );
}

pub async fn login_failures_are_uniform(store: StoreFactory) {
    let (server, admin) = Server::admin(store).await;
    let wrong = server.try_login(json!({"workspace_id": admin.workspace_id, "email": "admin@acme.test", "password": "nope"})).await;
    wrong.assert_error(401, "E1003");
    let unknown = server.try_login(json!({"workspace_id": admin.workspace_id, "email": "ghost@acme.test", "password": "nope"})).await;
    unknown.assert_error(401, "E1003");
    assert_eq!(
        wrong.body["error"]["message"],
        unknown.body["error"]["message"]
    );
    let metrics = server.state.metrics_text();
    assert!(
        metrics.contains("crm_http_logins_total{result=\"failure\"} 2"),
        "{metrics}"
    );
}

pub async fn refresh_rotates_and_reuse_kills_the_session(store: StoreFactory) {
    // A zero grace window: any reuse is theft.
    let server = Server::with(
        store,
        Options {
            refresh_grace: Duration::ZERO,
            ..Options::default()
        },
    )
    .await;
    let admin = server.bootstrap().await;
    let c = server.client();
    let first = c.refresh_with(&admin.refresh).send().await;
    assert_eq!(first.status, 200, "{}", first.text);
    let rotated = first.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rotated, admin.refresh);
    let new_access = first.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(c.get("/me").bearer(&new_access).send().await.status, 200);
    tokio::time::sleep(Duration::from_millis(5)).await;

    // The old token again: reuse detected, the whole session is revoked.
    c.refresh_with(&admin.refresh).refused(401, "E1008").await;
    // The child token and both access tokens die with it.
    c.refresh_with(&rotated).refused(401, "E1007").await;
    c.get("/me").bearer(&new_access).refused(401, "E1007").await;
    admin.get("/me").refused(401, "E1007").await;

    // Inside the grace window (default 10 s), a replayed token converges on the session's
    // current token instead of killing the session (two tabs refreshing at once).
    let graceful = Server::start(store).await;
    let s = graceful.bootstrap().await;
    let c2 = graceful.client();
    let a = c2.refresh_with(&s.refresh).send().await;
    assert_eq!(a.status, 200, "{}", a.text);
    let b = c2.refresh_with(&s.refresh).send().await;
    assert_eq!(b.status, 200, "{}", b.text);
    assert_eq!(b.body["refresh_token"], a.body["refresh_token"]);
    assert_eq!(b.body["session_id"], a.body["session_id"]);

    // Unknown tokens are refused, and a refresh with nothing is unauthenticated.
    c.refresh_with("garbage").refused(401, "E1006").await;
    c.post("/auth/refresh")
        .no_cookies()
        .refused(401, "E1001")
        .await;
}

pub async fn cookie_refresh_needs_csrf(store: StoreFactory) {
    let (server, admin) = Server::admin(store).await;
    let c = admin.client.clone();

    // Cookie without the CSRF header: refused, and nothing rotated.
    let r = c.post("/auth/refresh").refused(403, "E1002").await;
    assert_eq!(r.fields(), vec!["X-CSRF-Token"]);
    // A wrong header, or a right-shaped token bound to another refresh token: refused.
    c.refresh_by_cookie("abc.def").refused(403, "E1002").await;
    let other = server
        .login_admin(&admin.workspace_id, "admin password")
        .await;
    c.refresh_by_cookie(&other.csrf).refused(403, "E1002").await;

    // With the matching header: rotated, cookies replaced.
    let r = c.refresh_by_cookie(&admin.csrf).send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    let new_refresh = c.cookie("crm_refresh").unwrap().value;
    assert_ne!(new_refresh, admin.refresh);
    assert_eq!(new_refresh, r.body["refresh_token"].as_str().unwrap());
    let new_csrf = c.cookie("crm_csrf").unwrap().value;
    assert_ne!(new_csrf, admin.csrf);
    // The old CSRF token is bound to the old refresh token.
    c.refresh_by_cookie(&admin.csrf).refused(403, "E1002").await;
    let r = c.refresh_by_cookie(&new_csrf).send().await;
    assert_eq!(r.status, 200, "{}", r.text);

    // The cookie is not sent outside the auth path (the client honours Path).
    let r = c
        .get("/me")
        .bearer(r.body["access_token"].as_str().unwrap())
        .send()
        .await;
    assert_eq!(r.status, 200);

    // Logout with the cookie also needs the header.
    let csrf = c.cookie("crm_csrf").unwrap().value;
    c.post("/auth/logout").refused(403, "E1002").await;
    let r = c
        .post("/auth/logout")
        .header("x-csrf-token", &csrf)
        .send()
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(
        c.cookie("crm_refresh").is_none(),
        "logout clears the cookie"
    );
    assert!(c.cookie("crm_csrf").is_none());
}

pub async fn logout_ends_the_session(store: StoreFactory) {
    let (server, admin) = Server::admin(store).await;
    let r = admin.post("/auth/logout").send().await;
    assert_eq!(r.status, 204, "{}", r.text);
    admin.get("/me").refused(401, "E1007").await;
    admin
        .client
        .refresh_with(&admin.refresh)
        .refused(401, "E1007")
        .await;

    // Logout by refresh token in the body (no bearer, no CSRF needed).
    let s = server
        .login_admin(&admin.workspace_id, "admin password")
        .await;
    let r = server
        .client()
        .post("/auth/logout")
        .json(json!({"refresh_token": s.refresh}))
        .send()
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    s.get("/me").refused(401, "E1007").await;
    // Nothing to log out with.
    server
        .client()
        .post("/auth/logout")
        .refused(401, "E1001")
        .await;
}

pub async fn logout_all_and_sessions(store: StoreFactory) {
    let (server, admin) = Server::admin(store).await;
    let second = server
        .login_admin(&admin.workspace_id, "admin password")
        .await;
    let r = admin.get("/auth/sessions").send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    let list = r.body["data"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    let other = list.iter().find(|s| s["current"] == false).unwrap();

    // Revoke the other session by id.
    let r = admin
        .delete(&format!("/auth/sessions/{}", other["id"].as_str().unwrap()))
        .send()
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    second.get("/me").refused(401, "E1007").await;
    assert_eq!(
        admin.get("/auth/sessions").send().await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Another user's (or an unknown) session is not found.
    admin
        .delete(&format!("/auth/sessions/{}", uuid::Uuid::now_v7()))
        .refused(404, "E5001")
        .await;

    let third = server
        .login_admin(&admin.workspace_id, "admin password")
        .await;
    let r = admin.post("/auth/logout-all").send().await;
    assert_eq!(r.status, 204, "{}", r.text);
    admin.get("/me").refused(401, "E1007").await;
    third.get("/me").refused(401, "E1007").await;
}

pub async fn password_change_and_reset(store: StoreFactory) {
    let (server, admin) = Server::admin(store).await;
    let other = server
        .login_admin(&admin.workspace_id, "admin password")
        .await;
    admin
        .post("/auth/password")
        .json(json!({"current_password": "wrong", "new_password": "next"}))
        .refused(403, "E1010")
        .await;
    let r = admin
        .post("/auth/password")
        .json(json!({"current_password": "admin password", "new_password": "second password"}))
        .send()
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    // This session survives, the other one ends; the new password works.
    assert_eq!(admin.get("/me").send().await.status, 200);
    other.get("/me").refused(401, "E1007").await;
    server
        .login_admin(&admin.workspace_id, "second password")
        .await;

    // Reset: the same answer for a known and an unknown email.
    let known = server
        .client()
        .request_reset("admin@acme.test")
        .send()
        .await;
    let unknown = server
        .client()
        .request_reset("nobody@acme.test")
        .send()
        .await;
    assert_eq!(known.status, 202);
    assert_eq!(unknown.status, 202);
    assert_eq!(known.text, unknown.text);
    let token = {
        let outbox = server.outbox.0.lock().unwrap();
        assert_eq!(outbox.len(), 1, "only the known email gets a token");
        outbox[0].1.clone()
    };
    let r = server
        .client()
        .confirm_reset(&token, "third password")
        .send()
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    admin.get("/me").refused(401, "E1007").await;
    server
        .login_admin(&admin.workspace_id, "third password")
        .await;
    // Single use.
    server
        .client()
        .confirm_reset(&token, "fourth")
        .refused(401, "E1009")
        .await;
}

pub async fn disabled_user_is_locked_out(store: StoreFactory) {
    let (server, admin) = Server::admin(store).await;
    let sales = admin.add_user(&server, "sam@acme.test", "sales").await;
    assert_eq!(sales.get("/me").send().await.status, 200);
    let user = admin.get(&format!("/users/{}", sales.user_id)).send().await;
    let v = super::version(&user.body);
    let r = admin
        .post(&format!("/users/{}/disable", sales.user_id))
        .if_match(v)
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["disabled"], true);
    let me = sales.get("/me").send().await;
    assert_eq!(me.status, 401, "{}", me.text);
    server
        .client()
        .login("sam@acme.test", "user password")
        .refused(401, "E1003")
        .await;
    // Admins cannot disable themselves (nor the last admin).
    let me = admin.get("/me").send().await;
    let v = super::version(&me.body["user"]);
    let r = admin
        .post(&format!("/users/{}/disable", admin.user_id))
        .if_match(v)
        .refused(403, "E1002")
        .await;
    assert_eq!(r.fields(), vec!["disabled"]);
}
