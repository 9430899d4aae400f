//! # request-allocs
//!
//! Heap allocations per request of the crm-http router on redb, counted exactly: the router
//! is called in-process (no sockets, no client in the count) under a counting global
//! allocator, after a warm-up, for the requests of the load tests — GET one contact and a
//! list of 100 tasks, both with `Accept-Encoding: gzip` — and `/health` as the framework's
//! own cost. Allocations are counts, not times, so the figures repeat exactly between runs
//! and are comparable across commits whatever else the machine is doing.
//!
//! ```text
//! cargo run --release -p crm-benches --bin request-allocs [-- <requests per workload> [<workload>]]
//! ```
//!
//! The engine is configured as `crm-server serve` configures it by default (the access log
//! on; `ALLOCS_ACCESS_LOG=off` turns it off, as `serve --no-access-log` does). Each
//! workload's count includes writing its access-log entries to the store (a flush after the
//! requests), so on and off compare the whole cost. `<workload>` (`health`, `get` or `list`) runs that workload alone: under
//! `valgrind --tool=callgrind`, the difference between two request counts gives the
//! instructions per request, a figure as repeatable as the allocation counts
//! (`benches/load/README.md`).

use std::alloc::System;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use crm_benches::http::{generous_limits, identity};
use crm_core::{Crm, CrmConfig};
use crm_http::{AppState, HttpConfig};
use crm_store_redb::RedbStore;
use serde_json::{Value, json};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::ServiceExt;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// One request through the router; the answer's status and body.
async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(path);
    if method == "GET" {
        // What browsers send; the set-up's POST answers are read as plain JSON.
        req = req.header(header::ACCEPT_ENCODING, "gzip, deflate, br");
    }
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .expect("request");
    let response = app.clone().oneshot(req).await.expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, bytes.to_vec())
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let only = std::env::args().nth(2);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RedbStore::open(dir.path().join("crm.redb")).expect("redb");
    // As `crm-server serve` configures the engine by default.
    let record_access = std::env::var("ALLOCS_ACCESS_LOG").map_or(true, |v| v != "off");
    let crm = Crm::new(
        Arc::new(store),
        CrmConfig {
            record_access,
            ..CrmConfig::default()
        },
    );
    let identity = identity(crm.clone(), b"request-allocs secret, 32 bytes or more");
    let http = HttpConfig {
        rate_limits: generous_limits(),
        ..HttpConfig::default()
    };
    let app = crm_http::router(AppState::new(identity, http).expect("state"));

    let (status, body) = call(
        &app,
        "POST",
        "/auth/signup",
        None,
        Some(
            json!({"workspace_name": "Allocs", "email": "admin@allocs.test",
                    "password": "allocs password", "first_name": "Ada", "last_name": "Admin"}),
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let session: Value = serde_json::from_slice(&body).expect("json");
    let token = session["access_token"].as_str().expect("token").to_owned();
    let (_, body) = call(
        &app,
        "POST",
        "/contacts",
        Some(&token),
        Some(json!({
            "first_name": "Grace", "last_name": "Hopper", "title": "Rear Admiral",
            "background": "Compiler pioneer; COBOL; found the first actual bug.",
            "emails": [{"email": "grace@navy.test", "type": "Work"}],
            "phones": [{"number": "+1 202 555 0100", "type": "Work"}],
        })),
    )
    .await;
    let contact: Value = serde_json::from_slice(&body).expect("json");
    let contact_path = format!("/contacts/{}", contact["id"].as_str().expect("id"));
    for i in 0..100 {
        let (status, _) = call(
            &app,
            "POST",
            "/tasks",
            Some(&token),
            Some(
                json!({"text": format!("Follow up on proposal {i}"), "type": "Call",
                        "due_date": "2027-01-15"}),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }

    let workloads: [(&str, &str, &str, Option<&str>); 3] = [
        ("health", "GET /health", "/health", None),
        (
            "get",
            "GET one contact (gzip accepted)",
            &contact_path,
            Some(&token),
        ),
        (
            "list",
            "list 100 tasks (gzip accepted)",
            "/tasks?limit=100",
            Some(&token),
        ),
    ];
    println!("| request | allocations / request | bytes allocated / request | response bytes |");
    println!("|---|---:|---:|---:|");
    for (key, name, path, token) in workloads {
        if only.as_deref().is_some_and(|o| o != key) {
            continue;
        }
        // Warm-up: caches, lazily built state, the thread-local compressor.
        let mut size = 0;
        for _ in 0..50 {
            let (status, body) = call(&app, "GET", path, token, None).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            size = body.len();
        }
        crm.flush_logs().await.expect("flush");
        let region = Region::new(GLOBAL);
        for _ in 0..n {
            call(&app, "GET", path, token, None).await;
        }
        crm.flush_logs().await.expect("flush");
        let stats = region.change();
        println!(
            "| {name} | {:.1} | {:.0} | {size} |",
            stats.allocations as f64 / n as f64,
            stats.bytes_allocated as f64 / n as f64,
        );
    }
}
