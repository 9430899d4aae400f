//! `/security-events`, `/access-log`, the security counters in `/metrics`, and the
//! retention policy through `/configuration`.

use serde_json::{Value, json};

use crm_core::ratelimit::{Quota, RateLimitConfig};

use super::{Options, Server, StoreFactory, generous_limits, login};

fn types(body: &Value) -> Vec<String> {
    super::data_field(body, "type")
}

pub async fn security_events_record_logins_refusals_and_csrf(store: StoreFactory) {
    let (server, admin) = Server::admin(store).await;
    let sales = admin.add_role(&server, "sales").await;
    let wrong = server.try_login(json!({"workspace_id": admin.workspace_id, "email": "admin@acme.test", "password": "wrong password"})).await;
    wrong.assert_error(401, "E1003");
    // A refusal (403), a hidden record (404), a failed CSRF check.
    sales.get("/security-events").refused(403, "E1002").await;
    let task = admin
        .create("/tasks", json!({ "text": "The admin's own task" }))
        .await;
    let task_id = task["id"].as_str().unwrap();
    let r = sales.get(&format!("/tasks/{task_id}")).send().await;
    assert_eq!(r.status, 404, "{}", r.text);
    admin
        .client
        .post("/auth/refresh")
        .refused(403, "E1002")
        .await;

    let r = admin.get("/security-events?limit=100").send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    let all = types(&r.body);
    for t in [
        "login_succeeded",
        "login_failed",
        "access_refused",
        "csrf_failed",
    ] {
        assert!(all.iter().any(|x| x == t), "{t} in {all:?}");
    }
    let data = r.body["data"].as_array().unwrap();
    let failed = data.iter().find(|e| e["type"] == "login_failed").unwrap();
    assert_eq!(failed["detail"]["reason"], "wrong_password");
    assert_eq!(failed["address"], "127.0.0.1");
    assert!(
        !r.text.contains("wrong password"),
        "no password in any event"
    );
    let refused: Vec<&Value> = data
        .iter()
        .filter(|e| e["type"] == "access_refused")
        .collect();
    assert!(
        refused
            .iter()
            .any(|e| e["detail"]["status"] == 403 && e["user_id"] == sales.user_id.as_str()),
        "{refused:?}"
    );
    assert!(
        refused.iter().any(|e| e["detail"]["status"] == 404
            && e["detail"]["hidden"] == true
            && e["detail"]["record_id"] == task_id),
        "the hidden 404 is recorded as what it is: {refused:?}"
    );
    // Filters and paging.
    let r = admin.get("/security-events?type=login_failed").send().await;
    assert_eq!(types(&r.body), ["login_failed"]);
    let r = admin
        .get(&format!(
            "/security-events?user_id={}&limit=1",
            sales.user_id
        ))
        .send()
        .await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    let cursor = r.body["next_cursor"].as_str().unwrap().to_owned();
    let r = admin
        .get(&format!(
            "/security-events?user_id={}&cursor={cursor}",
            sales.user_id
        ))
        .send()
        .await;
    assert!(!r.body["data"].as_array().unwrap().is_empty());
    admin
        .assert_bad_filters(
            "/security-events",
            &[
                ("type=nonsense", "type"),
                ("type=", "type"),
                ("user_id=x", "user_id"),
                ("since=yesterday", "since"),
                ("limit=0", "limit"),
                ("limit=501", "limit"),
                ("limit=ten", "limit"),
                ("cursor=zz", "cursor"),
                ("other=1", "other"),
            ],
        )
        .await;
    let metrics = server.state.metrics_text();
    assert!(
        metrics.contains("crm_security_events_total{type=\"login_failed\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("crm_anomalies_total{rule=\"credential_stuffing\"} 0"));
}

pub async fn access_log_records_reads_with_route_and_address(store: StoreFactory) {
    let server = Server::with(
        store,
        Options {
            record_access: true,
            ..Options::default()
        },
    )
    .await;
    let admin = server.bootstrap().await;
    let sales = admin.add_role(&server, "sales").await;
    let c = sales.contact("Grace", "Hopper").await;
    let id = c["id"].as_str().unwrap();
    assert_eq!(
        sales.get(&format!("/contacts/{id}")).send().await.status,
        200
    );
    assert_eq!(sales.get("/contacts").send().await.status, 200);
    assert_eq!(sales.get("/search?q=grace").send().await.status, 200);

    let r = admin
        .get(&format!("/access-log?record_id={id}"))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let data = r.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3, "get, list and search: {data:?}");
    let routes: Vec<&str> = data.iter().map(|e| e["route"].as_str().unwrap()).collect();
    assert!(
        routes
            .iter()
            .any(|r| r.starts_with("GET ") && r.ends_with("/contacts/{id}")),
        "{routes:?}"
    );
    assert!(routes.iter().any(|r| r.ends_with("/search")), "{routes:?}");
    for e in data {
        assert_eq!(e["user_id"], sales.user_id.as_str());
        assert_eq!(e["entity"], "contact");
        assert_eq!(e["address"], "127.0.0.1");
    }
    let r = admin
        .get(&format!("/access-log?user_id={}&limit=2", sales.user_id))
        .send()
        .await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);
    assert!(r.body["next_cursor"].is_string());
    let r = admin
        .get("/access-log?since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z")
        .send()
        .await;
    assert_eq!(r.body["data"], json!([]));
    sales
        .get("/access-log")
        .send()
        .await
        .assert_error(403, "E1002");
    admin
        .assert_bad_filters(
            "/access-log",
            &[
                ("record_id=1", "record_id"),
                ("user_id=x", "user_id"),
                ("since=bad", "since"),
                ("until=soon", "until"),
                ("cursor=zz", "cursor"),
                ("limit=-1", "limit"),
                ("limit=501", "limit"),
                ("type=x", "type"),
            ],
        )
        .await;
    let r = admin
        .get("/access-log?since=2001-01-01T00:00:00Z&until=2000-01-01T00:00:00Z")
        .send()
        .await;
    r.assert_error(400, "E2003");
    let _ = login;
}

pub async fn retention_is_set_through_the_configuration(store: StoreFactory) {
    let (_server, admin) = Server::admin(store).await;
    let r = admin.get("/configuration").send().await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["retention"],
        json!({
            "trash_days": 30, "audit_days": null, "access_log_days": 365,
            "security_event_days": 365, "session_days": 30, "webhook_delivery_days": 30,
            "client_details": "stored",
        })
    );
    let etag = r.etag().unwrap();
    for (bad, status, field) in [
        (json!({ "trash_days": -1 }), 422, "retention.trash_days"),
        (json!({ "audit_days": 100000 }), 422, "retention.audit_days"),
        (
            json!({ "security_event_days": -365 }),
            422,
            "retention.security_event_days",
        ),
        (
            json!({ "webhook_delivery_days": 0 }),
            422,
            "retention.webhook_delivery_days",
        ),
        (
            json!({ "access_log_days": 1e40 }),
            400,
            "retention.access_log_days",
        ),
        (
            json!({ "session_days": "long" }),
            400,
            "retention.session_days",
        ),
        (json!({ "forever": true }), 400, "retention.forever"),
        (
            json!({ "client_details": "some" }),
            400,
            "retention.client_details",
        ),
    ] {
        let r = admin
            .patch("/configuration")
            .header("if-match", &etag)
            .json(json!({ "retention": bad }))
            .send()
            .await;
        assert_eq!(r.status, status, "{bad}: {}", r.text);
        assert_eq!(r.fields(), [field], "{bad}");
    }
    let again = admin.get("/configuration").send().await;
    assert_eq!(again.etag().unwrap(), etag, "nothing changed");
    let r = admin
        .patch("/configuration")
        .header("if-match", &etag)
        .json(json!({ "retention": { "trash_days": 7, "audit_days": 3650, "client_details": "truncated" } }))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["retention"]["trash_days"], 7);
    assert_eq!(r.body["retention"]["audit_days"], 3650);
    assert_eq!(r.body["retention"]["access_log_days"], 365);
    assert_eq!(r.body["retention"]["client_details"], "truncated");
}

/// Every refusal is one event, with the client's address: a throttled login is one
/// `login_throttled` (the 429 it answers is not recorded again as a rate limit), a refresh
/// past the identity layer's quota one `rate_limited` with policy `refresh`, a failed CSRF
/// check one `csrf_failed`; a refusal of the HTTP layer's own limiter stays recorded.
pub async fn refusals_are_recorded_once_with_their_address(store: StoreFactory) {
    let server = Server::with(
        store,
        Options {
            identity_limits: RateLimitConfig {
                refresh: Quota::per_minute(2),
                ..generous_limits()
            },
            ..Options::default()
        },
    )
    .await;
    let admin = server.bootstrap().await;
    admin.add_role(&server, "sales").await;
    let attempt = |password: &'static str| {
        server
            .client()
            .post("/auth/login")
            .json(json!({"workspace_id": admin.workspace_id, "email": "sales@acme.test", "password": password}))
            .send()
    };
    for _ in 0..5 {
        attempt("guessed password").await.assert_error(401, "E1003");
    }
    attempt("user password").await.assert_error(429, "E4001");
    // The refresh cookie without the CSRF header.
    admin
        .client
        .post("/auth/refresh")
        .send()
        .await
        .assert_error(403, "E1002");
    // Two refreshes a minute; the third is refused.
    let other = server.client();
    let mut token = admin.refresh.clone();
    for n in 1..=3 {
        let r = other
            .post("/auth/refresh")
            .json(json!({ "refresh_token": token }))
            .send()
            .await;
        if n == 3 {
            r.assert_error(429, "E4001");
        } else {
            assert_eq!(r.status, 200, "{}", r.text);
            token = r.body["refresh_token"].as_str().unwrap().to_owned();
        }
    }

    let r = admin.get("/security-events?limit=500").send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    let data = r.body["data"].as_array().unwrap();
    let of = |t: &str| -> Vec<&Value> { data.iter().filter(|e| e["type"] == t).collect() };
    let throttled = of("login_throttled");
    assert_eq!(throttled.len(), 1, "{throttled:?}");
    assert_eq!(throttled[0]["email"], "sales@acme.test");
    assert_eq!(throttled[0]["address"], "127.0.0.1");
    let limited = of("rate_limited");
    assert_eq!(
        limited.len(),
        1,
        "only the refresh was rate limited: {limited:?}"
    );
    assert_eq!(limited[0]["detail"]["policy"], "refresh");
    assert_eq!(limited[0]["address"], "127.0.0.1");
    let csrf = of("csrf_failed");
    assert_eq!(csrf.len(), 1, "{csrf:?}");
    assert_eq!(csrf[0]["address"], "127.0.0.1", "{csrf:?}");
    assert_eq!(csrf[0]["workspace_id"], admin.workspace_id.as_str());
    for secret in ["guessed password", "user password", &admin.refresh, &token] {
        assert!(!r.text.contains(secret), "no secret in any event");
    }
    let metrics = server.state.metrics_text();
    for (t, n) in [
        ("login_throttled", 1),
        ("rate_limited", 1),
        ("csrf_failed", 1),
    ] {
        let line = format!("crm_security_events_total{{type=\"{t}\"}} {n}\n");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }

    // The HTTP layer's own limiter: one request a minute per address (sign-up was it).
    let strict = Server::with(
        store,
        Options::http(|h| {
            h.rate_limits = RateLimitConfig {
                address: Quota::per_minute(1),
                ..generous_limits()
            };
        }),
    )
    .await;
    let admin = strict.bootstrap().await;
    strict
        .client()
        .get("/health")
        .send()
        .await
        .assert_error(429, "E4001");
    let r = admin.get("/security-events?type=rate_limited").send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    let data = r.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{data:?}");
    assert_eq!(data[0]["detail"]["policy"], "address");
    assert_eq!(data[0]["address"], "127.0.0.1");
}
