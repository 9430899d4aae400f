//! The security pass: every route tried without a token, with a tampered token, and with
//! another workspace's admin against this workspace's ids; hostile payloads (SQL, script,
//! template and control characters) in every text field, stored and returned verbatim as
//! data; deeply nested bodies. The README's security table summarizes these tests.

use reqwest::Method;
use serde_json::{Value, json};

use super::{Options, Server, Session, StoreFactory, id};

/// Routes that answer without an access token (they authenticate by other means, or not
/// at all).
const PUBLIC: [&str; 10] = [
    "/health",
    "/ready",
    "/metrics",
    "/openapi.json",
    "/auth/signup",
    "/auth/login",
    "/auth/refresh",
    "/auth/logout",
    "/auth/password-reset",
    "/auth/password-reset/confirm",
];

/// One record of every kind in the admin's workspace; `{id}` of each path maps to one.
struct Records {
    by_prefix: Vec<(&'static str, String)>,
}

impl Records {
    async fn create(admin: &Session) -> Records {
        let company = id(&admin.create("/companies", json!({"name": "Initech"})).await);
        let contact = id(&admin.contact("Peter", "Gibbons").await);
        let deal = id(&admin
            .create("/deals", json!({"name": "TPS", "amount": 100}))
            .await);
        let note = id(&admin
            .create("/notes", json!({"contact_id": contact, "text": "hello"}))
            .await);
        let task = id(&admin.create("/tasks", json!({"text": "Call"})).await);
        let tag = id(&admin
            .create("/tags", json!({"name": "vip", "color": "#ff0000"}))
            .await);
        let sessions = admin.get("/auth/sessions").send().await;
        let session = sessions.body["data"][0]["id"].as_str().unwrap().to_owned();
        Records {
            by_prefix: vec![
                ("/companies/", company),
                ("/contacts/", contact),
                ("/deals/", deal),
                ("/notes/", note),
                ("/tasks/", task),
                ("/tags/", tag),
                ("/users/", admin.user_id.clone()),
                ("/auth/sessions/", session),
            ],
        }
    }

    /// `path` with its `{id}` replaced by the matching record's id.
    fn fill(&self, path: &str) -> String {
        if !path.contains('{') {
            return path.to_owned();
        }
        let (prefix, id) = self
            .by_prefix
            .iter()
            .find(|(p, _)| path.starts_with(p))
            .unwrap_or_else(|| panic!("no record for {path}"));
        format!(
            "{prefix}{id}{}",
            &path[prefix.len()..].split_once('}').unwrap().1
        )
    }
}

/// Everything the admin can read, to compare before and after an attack.
async fn snapshot(admin: &Session) -> Vec<Value> {
    let mut out = Vec::new();
    for path in super::COLLECTIONS
        .into_iter()
        .chain(["/configuration", "/auth/sessions"])
    {
        let r = admin.get(&format!("{path}?limit=100")).send().await;
        let r = if r.status == 200 {
            r
        } else {
            admin.get(path).send().await
        };
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        out.push(r.body);
    }
    out
}

fn request(s: &super::Client, method: &Method, path: &str) -> super::Request {
    let r = s.request(method.clone(), path);
    if *method == Method::POST || *method == Method::PATCH {
        r.if_match(1).json(json!({}))
    } else {
        r
    }
}

pub async fn every_route_refuses_anonymous_tampered_and_foreign_callers(store: StoreFactory) {
    let server = Server::with(store, Options::http(|h| h.open_signup = true)).await;
    let admin = server.bootstrap().await;
    let records = Records::create(&admin).await;
    let c = server.client();
    let r = c
        .post("/auth/signup")
        .json(json!({"workspace_name": "Evil", "email": "mallory@evil.test", "password": "pw"}))
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let foreign = Session::from_tokens(c, &r.body);
    let before = snapshot(&admin).await;

    // A tampered access token: one character of the signature changed, the payload's role
    // raised, and the algorithm set to none.
    let mut sig = admin.access.clone();
    let last = sig.pop().unwrap();
    sig.push(if last == 'A' { 'B' } else { 'A' });
    let parts: Vec<&str> = admin.access.split('.').collect();
    let alg_none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]);
    let tampered = [sig, alg_none, format!("{}.{}", parts[0], parts[1])];

    let mut tried = 0;
    for (method, template) in crm_http::operations() {
        let path = records.fill(&template);
        let public = PUBLIC.contains(&template.as_str());
        let anon = server.client();
        let r = request(&anon, &method, &path).send().await;
        assert!(r.status < 500, "{method} {path} anonymous: {}", r.text);
        if !public {
            assert_eq!(
                (r.status, r.code()),
                (401, "E1001"),
                "{method} {path} without a token: {}",
                r.text
            );
        }
        for token in &tampered {
            let r = request(&anon, &method, &path).bearer(token).send().await;
            if !public {
                assert_eq!(r.status, 401, "{method} {path} tampered token: {}", r.text);
                assert!(r.code().starts_with("E1"), "{}", r.text);
            }
        }
        // Another workspace's admin against this workspace's ids: not found, never more (a
        // body that does not fit the route is refused first, alike for any id).
        if template.contains('{') {
            let r = request(&foreign.client, &method, &path)
                .bearer(&foreign.access)
                .send()
                .await;
            let body_refused = method != Method::GET
                && method != Method::DELETE
                && (r.code() == "E2004" || r.code() == "E2001");
            assert!(
                (r.status, r.code()) == (404, "E5001") || body_refused,
                "{method} {path} by another workspace: {} {}",
                r.status,
                r.text
            );
        }
        tried += 1;
    }
    assert!(tried > 40, "only {tried} routes");
    assert_eq!(
        snapshot(&admin).await,
        before,
        "an attack changed the workspace"
    );
}

pub async fn hostile_payloads_are_stored_and_returned_as_data(store: StoreFactory) {
    let (_server, admin) = Server::admin(store).await;
    let payloads = [
        "Robert'); DROP TABLE crm_contact;--",
        "<script>alert(document.cookie)</script>",
        "\" OR 1=1 --",
        "{{7*7}} ${jndi:ldap://x/a} %s%n",
        "tab\there \u{202e}rtl \u{7}bell \\ back",
        "' UNION SELECT password_hash FROM crm_credential --",
    ];
    for p in payloads {
        let contact = admin
            .create(
                "/contacts",
                json!({"first_name": p, "last_name": p, "title": p, "background": p,
                       "emails": [{"email": "x@y.test", "type": "Work"}]}),
            )
            .await;
        let company = admin
            .create(
                "/companies",
                json!({"name": p, "description": p, "city": p}),
            )
            .await;
        let note = admin
            .create("/notes", json!({"contact_id": id(&contact), "text": p}))
            .await;
        let task = admin.create("/tasks", json!({"text": p})).await;
        for (path, fields) in [
            (
                format!("/contacts/{}", id(&contact)),
                &["first_name", "last_name", "title", "background"][..],
            ),
            (
                format!("/companies/{}", id(&company)),
                &["name", "description", "city"][..],
            ),
            (format!("/notes/{}", id(&note)), &["text"][..]),
            (format!("/tasks/{}", id(&task)), &["text"][..]),
        ] {
            let r = admin.get(&path).send().await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.header("content-type"), Some("application/json"));
            for f in fields {
                assert_eq!(r.body[*f], p, "{path} {f}");
            }
        }
    }
    // Every payload is listed and searchable as plain words; nothing was dropped.
    let all = admin.get("/contacts?limit=100").send().await;
    assert_eq!(all.body["data"].as_array().unwrap().len(), payloads.len());
    let r = admin.get("/contacts?q=robert").send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"][0]["first_name"], payloads[0]);
    let r = admin.get("/contacts?q=%27%20OR%201%3D1").send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Payloads in query strings are data too.
    for q in [
        "sort=last_name;DROP",
        "status=%27%20OR%20%271%27=%271",
        "q=%00",
    ] {
        let r = admin.get(&format!("/contacts?{q}")).send().await;
        assert!(
            r.status == 200 || (400..500).contains(&r.status),
            "{q}: {}",
            r.text
        );
        if r.status != 200 {
            assert!(r.code().starts_with("E2"), "{q}: {}", r.text);
        }
    }

    // NUL characters cannot be stored by every store (PostgreSQL refuses them): refused
    // as a field error, the same on every store.
    let r = admin
        .post("/contacts")
        .json(json!({"first_name": "nul\u{0}here", "last_name": "B"}))
        .refused(422, "E2001")
        .await;
    assert_eq!(r.body["error"]["fields"][0]["code"], "E2104", "{}", r.text);

    // Deeply nested and wide bodies: coded refusals, nothing stored.
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let body = format!(r#"{{"first_name": "A", "last_name": "B", "title": {deep}}}"#);
    let r = admin
        .post("/contacts")
        .raw(body, Some("application/json"))
        .send()
        .await;
    assert!((400..500).contains(&r.status), "{}", r.text);
    assert!(
        r.code().starts_with("E2") || r.code().starts_with("E4"),
        "{}",
        r.text
    );
    let wide: Vec<Value> = (0..50_000)
        .map(|i| json!({"email": format!("{i}@x.test")}))
        .collect();
    let r = admin
        .post("/contacts")
        .json(json!({"first_name": "A", "last_name": "B", "emails": wide}))
        .send()
        .await;
    assert!((400..500).contains(&r.status), "{}", r.text);
    let all = admin.get("/contacts?limit=100").send().await;
    assert_eq!(all.body["data"].as_array().unwrap().len(), payloads.len());
}
