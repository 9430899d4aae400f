//! Security headers, rate limits, trusted proxies, CORS, compression, request ids,
//! health / ready / metrics, and the OpenAPI document.

use std::collections::BTreeSet;

use crm_core::ratelimit::Quota;
use serde_json::{Value, json};

use super::{Options, Server, StoreFactory, id, login};

#[track_caller]
fn assert_security_headers(r: &super::Response, what: &str) {
    let h = |n: &str| r.header(n).unwrap_or_else(|| panic!("{what}: no {n}"));
    assert!(
        h("strict-transport-security").starts_with("max-age=31536000"),
        "{what}"
    );
    assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
    assert!(
        h("content-security-policy").contains("frame-ancestors 'none'"),
        "{what}"
    );
    assert_eq!(h("x-frame-options"), "DENY", "{what}");
    assert_eq!(h("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(h("cache-control"), "no-store", "{what}");
    assert!(!h("x-request-id").is_empty(), "{what}");
}

pub async fn security_headers_on_every_response(store: StoreFactory) {
    let server = Server::with(
        store,
        Options::http(|h| {
            h.rate_limits.address = Quota::per_minute(12);
        }),
    )
    .await;
    let admin = server.bootstrap().await;
    let c = admin.contact("A", "B").await;
    let anon = server.client();
    let cases = vec![
        ("health", anon.get("/health").send().await),
        ("openapi", anon.get("/openapi.json").send().await),
        ("401", anon.get("/me").send().await),
        ("404 route", anon.get("/nowhere").send().await),
        ("list", admin.get("/contacts").send().await),
        (
            "get",
            admin
                .get(&format!("/contacts/{}", super::id(&c)))
                .send()
                .await,
        ),
        (
            "304",
            admin
                .get(&format!("/contacts/{}", super::id(&c)))
                .header("if-none-match", "\"1\"")
                .send()
                .await,
        ),
        (
            "201",
            admin.post("/tags").json(json!({"name": "t"})).send().await,
        ),
        (
            "415",
            admin
                .post("/tags")
                .raw("x", Some("text/plain"))
                .send()
                .await,
        ),
        (
            "422",
            admin.post("/tags").json(json!({"name": ""})).send().await,
        ),
        (
            "405",
            admin
                .client
                .request(reqwest::Method::PUT, "/tags")
                .send()
                .await,
        ),
        ("login", anon.login("x@y.z", "p").send().await),
    ];
    let statuses: BTreeSet<u16> = cases.iter().map(|(_, r)| r.status).collect();
    assert!(statuses.len() >= 8, "a variety of statuses: {statuses:?}");
    for (what, r) in &cases {
        assert_security_headers(r, what);
    }
    // Exhaust the address quota: the 429 carries them too.
    let mut last = anon.get("/health").send().await;
    for _ in 0..20 {
        if last.status == 429 {
            break;
        }
        last = anon.get("/health").send().await;
    }
    last.assert_error(429, "E4001");
    assert_security_headers(&last, "429");
}

pub async fn rate_limit_429_with_headers(store: StoreFactory) {
    let server = Server::with(
        store,
        Options::http(|h| {
            h.rate_limits.user = Quota::per_minute(5);
            h.rate_limits.address = Quota::per_minute(3);
        }),
    )
    .await;
    let admin = server.bootstrap().await; // address request 1
    let r = admin
        .post("/users")
        .json(json!({"email": "u2@acme.test", "password": "user password"}))
        .send()
        .await; // user request 1
    assert_eq!(r.status, 201, "{}", r.text);
    // draft-ietf-httpapi-ratelimit-headers-10: the policy's name, then its parameters.
    assert_eq!(r.header("ratelimit-policy"), Some(r#""user";q=5;w=60"#));
    assert!(
        r.header("ratelimit")
            .unwrap()
            .starts_with(r#""user";r=4;t="#),
        "{:?}",
        r.header("ratelimit")
    );
    for n in 2..=5 {
        let r = admin.get("/me").send().await;
        assert_eq!(r.status, 200, "request {n}");
    }
    let r = admin.get("/me").refused(429, "E4001").await;
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(r.header("ratelimit-policy"), Some(r#""user";q=5;w=60"#));
    assert!(
        r.header("ratelimit")
            .unwrap()
            .starts_with(r#""user";r=0;t="#),
        "{:?}",
        r.header("ratelimit")
    );

    // Another user has its own quota (login is an address request: 2).
    let other = login(
        &server,
        &admin.workspace_id,
        "u2@acme.test",
        "user password",
    )
    .await;
    assert_eq!(other.get("/me").send().await.status, 200);

    // Anonymous requests count per address.
    let anon = server.client();
    let r = anon.get("/health").send().await; // 3
    assert_eq!(r.status, 200);
    assert_eq!(r.header("ratelimit-policy"), Some(r#""address";q=3;w=60"#));
    let r = anon.get("/health").refused(429, "E4001").await;
    assert!(r.header("retry-after").is_some());
    let metrics = server.state.metrics_text();
    assert!(metrics.contains("crm_http_rate_limited_total"), "{metrics}");
    assert!(
        metrics.contains("code=\"E4001\""),
        "errors by code: {metrics}"
    );
}

pub async fn forwarded_headers_only_from_trusted_proxies(store: StoreFactory) {
    // No trusted proxy: forwarding headers are ignored.
    let (server, admin) = Server::admin(store).await;
    let c = server.client();
    let r = c
        .post("/auth/login")
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-request-id", "spoofed-id")
        .json(json!({"email": "admin@acme.test", "password": "admin password"}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_ne!(r.header("x-request-id"), Some("spoofed-id"));
    let s = super::Session::from_tokens(c, &r.body);
    let sessions = s.get("/auth/sessions").send().await;
    let current = sessions.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["current"] == true)
        .cloned()
        .unwrap();
    assert_eq!(current["client"]["address"], "127.0.0.1");
    drop(admin);

    // Loopback trusted: the forwarded client address and request id are believed, and the
    // address rate limit keys on the forwarded address.
    let server = Server::with(
        store,
        Options::http(|h| {
            h.rate_limits.address = Quota::per_minute(2);
            h.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        }),
    )
    .await;
    let c = server.client();
    let r = c
        .post("/auth/signup")
        .header("x-forwarded-for", "198.51.100.1, 203.0.113.7")
        .header("x-request-id", "proxy-id-1")
        .json(json!({"workspace_name": "Acme", "email": "admin@acme.test", "password": "pw"}))
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.header("x-request-id"), Some("proxy-id-1"));
    let s = super::Session::from_tokens(c, &r.body);
    let sessions = s.get("/auth/sessions").send().await;
    assert_eq!(sessions.body["data"][0]["client"]["address"], "203.0.113.7");
    let anon = server.client();
    for _ in 0..2 {
        let r = anon
            .get("/health")
            .header("x-forwarded-for", "192.0.2.1")
            .send()
            .await;
        assert_eq!(r.status, 200);
    }
    anon.get("/health")
        .header("x-forwarded-for", "192.0.2.1")
        .refused(429, "E4001")
        .await;
    let r = anon
        .get("/health")
        .header("x-forwarded-for", "192.0.2.2")
        .send()
        .await;
    assert_eq!(r.status, 200, "another client address has its own quota");
}

pub async fn cors_allow_list(store: StoreFactory) {
    let server = Server::start(store).await;
    let r = server
        .client()
        .get("/health")
        .header("origin", "https://app.test")
        .send()
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("access-control-allow-origin").is_none(),
        "nothing allowed by default"
    );

    let server = Server::with(
        store,
        Options::http(|h| h.cors_allowed_origins = vec!["https://app.test".into()]),
    )
    .await;
    let pre = server
        .client()
        .request(reqwest::Method::OPTIONS, "/contacts")
        .header("origin", "https://app.test")
        .header("access-control-request-method", "PATCH")
        .header(
            "access-control-request-headers",
            "authorization, if-match, content-type",
        )
        .send()
        .await;
    assert!(pre.status < 300, "{}", pre.status);
    assert_eq!(
        pre.header("access-control-allow-origin"),
        Some("https://app.test")
    );
    assert_eq!(pre.header("access-control-allow-credentials"), Some("true"));
    assert!(
        pre.header("access-control-allow-methods")
            .unwrap()
            .contains("PATCH")
    );
    let evil = server
        .client()
        .request(reqwest::Method::OPTIONS, "/contacts")
        .header("origin", "https://evil.test")
        .header("access-control-request-method", "PATCH")
        .send()
        .await;
    assert!(evil.header("access-control-allow-origin").is_none());
    let r = server
        .client()
        .get("/health")
        .header("origin", "https://app.test")
        .send()
        .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.test")
    );
    assert!(
        r.header("access-control-expose-headers")
            .unwrap()
            .to_ascii_lowercase()
            .contains("etag")
    );
}

pub async fn compression_and_request_ids(store: StoreFactory) {
    let server = Server::start(store).await;
    let c = server.client();
    let r = c
        .get("/openapi.json")
        .header("accept-encoding", "gzip")
        .send()
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let plain = c.get("/openapi.json").send().await;
    assert!(plain.header("content-encoding").is_none());
    assert!(plain.body["openapi"].is_string());
    assert!(plain.text.len() > 1000);
    // Compressed error bodies still decode to the coded error.
    let r = c
        .get("/nowhere")
        .header("accept-encoding", "gzip")
        .send()
        .await;
    assert_eq!(r.status, 404);

    // Only answers worth it are compressed: a list, not one small record.
    let admin = server.bootstrap().await;
    let mut one = Value::Null;
    for i in 0..30 {
        one = admin
            .create(
                "/contacts",
                json!({"first_name": format!("Zipped{i}"), "last_name": "Contact", "background": "x".repeat(40)}),
            )
            .await;
    }
    let r = admin
        .get(&format!("/contacts/{}", id(&one)))
        .header("accept-encoding", "gzip, deflate, br")
        .send()
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-encoding").is_none(),
        "{} bytes",
        r.raw.len()
    );
    assert!(r.raw.len() < crm_http::compression::MIN_COMPRESSED_BYTES);
    assert_eq!(r.header("vary"), Some("accept-encoding"));
    let list = "/contacts?limit=30";
    let plain = admin.get(list).send().await;
    assert!(plain.header("content-encoding").is_none());
    let zipped = admin
        .get(list)
        .header("accept-encoding", "br;q=1.0, gzip;q=0.5")
        .send()
        .await;
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert_eq!(
        zipped.header("content-length"),
        Some(zipped.raw.len().to_string().as_str())
    );
    assert!(zipped.raw.len() * 3 < plain.raw.len(), "gzip pays on lists");
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(zipped.raw.as_slice()),
        &mut unzipped,
    )
    .unwrap();
    let unzipped: Value = serde_json::from_slice(&unzipped).unwrap();
    assert_eq!(unzipped, plain.body);
    assert_eq!(unzipped["data"].as_array().unwrap().len(), 30);
    let refused = admin
        .get(list)
        .header("accept-encoding", "gzip;q=0")
        .send()
        .await;
    assert!(refused.header("content-encoding").is_none());
    assert_eq!(refused.body, plain.body);

    let ids: BTreeSet<String> = {
        let mut s = BTreeSet::new();
        for _ in 0..5 {
            let r = c.get("/health").send().await;
            let id = r.header("x-request-id").unwrap().to_owned();
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
            s.insert(id);
        }
        s
    };
    assert_eq!(ids.len(), 5, "a new id per request");
}

pub async fn health_ready_metrics(store: StoreFactory) {
    let server = Server::start(store).await;
    let c = server.client();
    let r = c.get("/health").send().await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"status": "ok"}));
    let r = c.get("/ready").send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"status": "ready"}));
    c.get("/nowhere").send().await;
    let r = c.get("/metrics").send().await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let text = r.text;
    assert!(
        text.contains(
            "crm_http_requests_total{method=\"GET\",route=\"/api/v1/health\",status=\"200\"} 1"
        ) || text
            .contains("crm_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("crm_http_request_duration_seconds_bucket{route="),
        "{text}"
    );
    assert!(text.contains("le=\"+Inf\""), "{text}");
    assert!(
        text.contains("crm_http_errors_total{route=\"unmatched\",code=\"E5001\"} 1"),
        "{text}"
    );
    assert!(text.contains("# TYPE crm_http_request_duration_seconds histogram"));

    // Storage down: ready says so (coded, no internals), health does not look.
    let down = Server::with(
        store,
        Options {
            wrap: super::Unreachable::wrap,
            ..Options::default()
        },
    )
    .await;
    let r = down.client().get("/ready").refused(503, "E3001").await;
    assert!(
        !r.text.contains("10.9.8.7") && !r.text.contains("refused"),
        "{}",
        r.text
    );
    assert_eq!(down.client().get("/health").send().await.status, 200);

    let hidden = Server::with(store, Options::http(|h| h.expose_metrics = false)).await;
    hidden.client().get("/metrics").refused(404, "E5001").await;
}

fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let path = reference.strip_prefix("#/")?;
    path.split('/').try_fold(doc, |v, seg| v.get(seg))
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    if let Some(s) = x.as_str() {
                        out.push(s.to_owned());
                    }
                } else {
                    collect_refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

pub async fn openapi_covers_every_route(store: StoreFactory) {
    let server = Server::start(store).await;
    let r = server.client().get("/openapi.json").send().await;
    assert_eq!(r.status, 200);
    let doc = r.body;

    // Structurally valid OpenAPI 3 (typed parse), every $ref resolves, operation ids unique,
    // every path parameter declared.
    let parsed: openapiv3::OpenAPI =
        serde_json::from_value(doc.clone()).expect("a valid OpenAPI 3.0 document");
    assert!(parsed.openapi.starts_with("3.0"));
    // The server is where the test harness mounts the router.
    assert_eq!(parsed.servers[0].url, "/api/v1");
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 50);
    for r in &refs {
        assert!(resolve(&doc, r).is_some(), "unresolved {r}");
    }
    let mut ids = BTreeSet::new();
    for (path, item) in parsed.paths.iter() {
        let item = item.as_item().expect("inline path items");
        for (method, op) in item.iter() {
            let id = op.operation_id.clone().expect("operationId");
            assert!(ids.insert(id.clone()), "duplicate operationId {id}");
            for seg in path.split('/').filter(|s| s.starts_with('{')) {
                let name = seg.trim_matches(|c| c == '{' || c == '}');
                assert!(
                    op.parameters.iter().any(|p| matches!(
                        p.as_item(),
                        Some(openapiv3::Parameter::Path { parameter_data, .. }) if parameter_data.name == name
                    )),
                    "{method} {path}: path parameter {name} undeclared"
                );
            }
            assert!(!op.responses.responses.is_empty(), "{method} {path}");
        }
    }

    // Every served operation is documented, and every documented one is served.
    let documented: BTreeSet<(String, String)> = parsed
        .paths
        .iter()
        .flat_map(|(p, item)| {
            item.as_item()
                .unwrap()
                .iter()
                .map(|(m, _)| (m.to_ascii_uppercase(), p.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let served: BTreeSet<(String, String)> = crm_http::operations()
        .into_iter()
        .map(|(m, p)| (m.as_str().to_owned(), p))
        .collect();
    assert_eq!(documented, served);

    // The issue's list of endpoints, each present.
    let required = [
        ("POST", "/auth/signup"),
        ("POST", "/auth/login"),
        ("POST", "/auth/refresh"),
        ("POST", "/auth/logout"),
        ("POST", "/auth/logout-all"),
        ("GET", "/auth/sessions"),
        ("DELETE", "/auth/sessions/{id}"),
        ("POST", "/auth/password"),
        ("POST", "/auth/password-reset"),
        ("POST", "/auth/password-reset/confirm"),
        ("GET", "/search"),
        ("GET", "/activity"),
        ("GET", "/audit"),
        ("GET", "/configuration"),
        ("PATCH", "/configuration"),
        ("GET", "/me"),
        ("GET", "/health"),
        ("GET", "/ready"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("POST", "/contacts/{id}/merge"),
        ("POST", "/deals/{id}/archive"),
        ("POST", "/deals/{id}/unarchive"),
        ("POST", "/deals/{id}/move"),
    ];
    for (m, p) in required {
        assert!(
            documented.contains(&(m.to_owned(), p.to_owned())),
            "{m} {p} missing"
        );
    }
    for base in super::COLLECTIONS {
        for (m, p) in [
            ("GET", base.to_owned()),
            ("POST", base.to_owned()),
            ("GET", format!("{base}/{{id}}")),
            ("PATCH", format!("{base}/{{id}}")),
        ] {
            assert!(
                documented.contains(&(m.to_owned(), p.clone())),
                "{m} {p} missing"
            );
        }
        if base != "/users" {
            for (m, p) in [
                ("DELETE", format!("{base}/{{id}}")),
                ("POST", format!("{base}/{{id}}/restore")),
            ] {
                assert!(
                    documented.contains(&(m.to_owned(), p.clone())),
                    "{m} {p} missing"
                );
            }
        }
    }

    // Every documented operation reaches a handler (not the no-such-endpoint fallback, not
    // 405), probed with a nil id and no credentials.
    let c = server.client();
    for (m, p) in &documented {
        let path = p.replace("{id}", &uuid::Uuid::nil().to_string());
        let r = c
            .request(reqwest::Method::from_bytes(m.as_bytes()).unwrap(), &path)
            .send()
            .await;
        assert_ne!(r.status, 405, "{m} {p}");
        assert_ne!(
            r.body["error"]["message"],
            crm_http::handlers::misc::NO_SUCH_ENDPOINT,
            "{m} {p} is not routed"
        );
        assert!(r.status < 500, "{m} {p}: {}", r.text);
    }
}

pub async fn plain_http_refused_when_https_is_required(store: StoreFactory) {
    // Not behind a trusted proxy: every plain-HTTP request is refused, with the security
    // headers and a coded body, and nothing is written.
    let server = Server::with(store, Options::http(|h| h.require_https = true)).await;
    let c = server.client();
    let r = c.get("/health").refused(403, "E4005").await;
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    c.post("/auth/signup")
        .header("x-forwarded-proto", "https")
        .json(json!({"workspace_name": "Acme", "email": "admin@acme.test", "password": "pw"}))
        .refused(403, "E4005")
        .await;
    assert!(server.storage.workspaces(1).await.unwrap().is_empty());

    // Behind a trusted proxy that says the client used HTTPS: served; plain HTTP through
    // the same proxy: refused.
    let server = Server::with(
        store,
        Options::http(|h| {
            h.require_https = true;
            h.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        }),
    )
    .await;
    let c = server.client();
    let r = c
        .get("/health")
        .header("x-forwarded-proto", "https")
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    c.get("/health")
        .header("x-forwarded-proto", "http")
        .refused(403, "E4005")
        .await;
}

/// Holds contact lists until the test opens the gate.
static GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);

/// Holds contact lists at [`GATE`].
struct Gated;

#[async_trait::async_trait]
impl crm_core::testkit::Hook for Gated {
    async fn before(&self, call: crm_core::testkit::Call) -> crm_core::Result<()> {
        if call == crm_core::testkit::Call::List(crm_core::model::EntityKind::Contact) {
            GATE.acquire().await.expect("gate").forget();
        }
        Ok(())
    }
}

pub async fn concurrent_requests_are_limited_but_health_never_waits(store: StoreFactory) {
    let server = Server::with(
        store,
        Options {
            http: crm_http::HttpConfig {
                max_concurrent_requests: Some(1),
                ..Options::default().http
            },
            wrap: |s| std::sync::Arc::new(crm_core::testkit::Intercepted::new(s, Gated)),
            ..Options::default()
        },
    )
    .await;
    let admin = server.bootstrap().await;
    // The only slot is taken by a contact list held at the gate.
    let held = tokio::spawn(admin.get("/contacts").send());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let waiting = tokio::spawn(admin.get("/companies").send());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "a second request ran beside the first"
    );
    // Probes do not queue.
    let health = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        server.client().get("/health").send(),
    )
    .await
    .expect("health waited for a slot");
    assert_eq!(health.status, 200);
    // Nor do logins (they wait for the password hasher, not for a slot).
    let login = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        server
            .client()
            .post("/auth/login")
            .json(serde_json::json!({"email": "admin@acme.test", "password": "admin password"}))
            .send(),
    )
    .await
    .expect("login waited for a slot");
    assert_eq!(login.status, 200, "{}", login.text);
    GATE.add_permits(1);
    assert_eq!(held.await.unwrap().status, 200);
    assert_eq!(waiting.await.unwrap().status, 200);
}
