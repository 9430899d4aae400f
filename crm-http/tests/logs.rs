//! The request logs carry the request id and never a secret (passwords, tokens).
//!
//! Its own test binary: it installs a process-wide tracing subscriber that records every
//! span field and event field as text.

mod suite;

use std::fmt::{Debug, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

struct Capture {
    text: Arc<Mutex<String>>,
    next: AtomicU64,
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Capture {
    fn push(&self, line: String) {
        let mut t = self.text.lock().unwrap();
        t.push_str(&line);
        t.push('\n');
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut line = format!("span {}", attrs.metadata().name());
        attrs.record(&mut Fields(&mut line));
        self.push(line);
        Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut line = String::from("record");
        values.record(&mut Fields(&mut line));
        self.push(line);
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = format!("event {}", event.metadata().level());
        event.record(&mut Fields(&mut line));
        self.push(line);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_request_ids_and_no_secrets() {
    let text = Arc::new(Mutex::new(String::new()));
    tracing::subscriber::set_global_default(Capture {
        text: text.clone(),
        next: AtomicU64::new(0),
    })
    .expect("first subscriber");

    let server = suite::Server::with(
        suite::redb,
        suite::Options {
            wrap: suite::Unreachable::wrap,
            ..suite::Options::default()
        },
    )
    .await;
    let c = server.client();
    let signup = c
        .post("/auth/signup")
        .json(json!({
            "workspace_name": "Acme", "email": "admin@acme.test",
            "password": "pw-SIGNUP-SECRET",
        }))
        .send()
        .await;
    assert_eq!(signup.status, 201, "{}", signup.text);
    let failed = c.login("admin@acme.test", "pw-WRONG-SECRET").send().await;
    assert_eq!(failed.status, 401);
    let c2 = server.client();
    let ok = c2.login("admin@acme.test", "pw-SIGNUP-SECRET").send().await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let session = suite::Session::from_tokens(c2, &ok.body);
    let refreshed = session.client.refresh_by_cookie(&session.csrf).send().await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let ready = c.get("/ready").send().await;
    assert_eq!(ready.status, 503);

    let logs = text.lock().unwrap().clone();
    for id in [&signup, &failed, &refreshed, &ready]
        .iter()
        .map(|r| r.header("x-request-id").unwrap().to_owned())
    {
        assert!(logs.contains(&id), "request id {id} not logged:\n{logs}");
    }
    // The server error is logged with its cause (for operators), the response has none.
    assert!(logs.contains("connection refused"), "{logs}");
    assert!(!ready.text.contains("connection refused"));
    for secret in [
        "pw-SIGNUP-SECRET",
        "pw-WRONG-SECRET",
        session.access.as_str(),
        session.refresh.as_str(),
        session.csrf.as_str(),
        refreshed.body["refresh_token"].as_str().unwrap(),
        refreshed.body["access_token"].as_str().unwrap(),
    ] {
        assert!(!logs.contains(secret), "a secret was logged:\n{logs}");
    }
}
