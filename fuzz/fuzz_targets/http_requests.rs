//! Arbitrary requests to every route of the HTTP adapter (in process, over the in-memory
//! reference store): any method's path parameters, query string, body and content type, with
//! a genuine, a garbage or no bearer token. Every answer is a success or a coded error —
//! `{"error": {"code": "E....", "request_id": ...}}` with a 4xx status — never a 5xx, a
//! panic or a bare framework text, and it always carries the security headers.
#![no_main]

use std::sync::{Mutex, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use libfuzzer_sys::fuzz_target;

#[path = "common/app.rs"]
mod app;
use app::{call, json_req, runtime};

/// The app under test, the admin's bearer token and some real record ids; rebuilt every
/// `REBUILD` inputs so that the store does not grow without bound.
struct World {
    app: Router,
    bearer: String,
    ids: Vec<String>,
    used: usize,
}

const REBUILD: usize = 2_000;

async fn build() -> World {
    let (app, _, v) = app::app_with_admin(std::time::Duration::from_secs(10)).await;
    let bearer = format!("Bearer {}", v["access_token"].as_str().unwrap());
    let mut ids = vec![v["user"]["id"].as_str().unwrap().to_owned()];
    for (path, body) in [
        ("companies", serde_json::json!({"name": "Initech"})),
        ("contacts", serde_json::json!({"first_name": "Peter", "last_name": "Gibbons"})),
        ("contacts", serde_json::json!({"first_name": "Milton", "last_name": "Waddams"})),
        ("deals", serde_json::json!({"name": "TPS", "amount": 100})),
        ("tags", serde_json::json!({"name": "vip", "color": "#ff0000"})),
        ("tasks", serde_json::json!({"text": "Call back"})),
    ] {
        let (_, _, out) = call(&app, json_req("POST", &format!("/api/v1/{path}"), Some(&bearer), body)).await;
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let (_, _, out) = call(
        &app,
        json_req("POST", "/api/v1/notes", Some(&bearer), serde_json::json!({"contact_id": ids[2], "text": "hi"})),
    )
    .await;
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    ids.push(v["id"].as_str().unwrap().to_owned());
    World { app, bearer, ids, used: 0 }
}

/// Percent-encodes everything but a few URI characters; `%` itself passes through, so
/// malformed escapes reach the server too.
fn uri_part(bytes: &[u8], keep: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    static WORLD: OnceLock<Mutex<Option<World>>> = OnceLock::new();
    static OPS: OnceLock<Vec<(axum::http::Method, String)>> = OnceLock::new();
    if data.len() < 3 {
        return;
    }
    let ops = OPS.get_or_init(crm_http::operations);
    let rt = runtime();
    let mut guard = WORLD.get_or_init(|| Mutex::new(None)).lock().unwrap();
    if guard.as_ref().is_none_or(|w| w.used >= REBUILD) {
        *guard = Some(rt.block_on(build()));
    }
    let world = guard.as_mut().unwrap();
    world.used += 1;

    let (method, template) = &ops[data[0] as usize % ops.len()];
    let flags = data[1];
    let choice = data[2] as usize;
    let mut parts = data[3..].splitn(3, |b| *b == 0);
    let param = parts.next().unwrap_or_default();
    let query = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();

    // Path parameters: a real id, or the fuzz bytes.
    let mut path = String::from("/api/v1");
    for segment in template.split('/').filter(|s| !s.is_empty()) {
        path.push('/');
        if segment.starts_with('{') {
            if flags & 1 == 0 {
                path.push_str(&world.ids[choice % world.ids.len()]);
            } else {
                path.push_str(&uri_part(param, b"-._~"));
            }
        } else {
            path.push_str(segment);
        }
    }
    let mut uri = path;
    if !query.is_empty() {
        uri.push('?');
        uri.push_str(&uri_part(query, b"-._~&=%+,:"));
    }
    let mut req = Request::builder().method(method.clone()).uri(&uri);
    req = match (flags >> 1) & 3 {
        0 | 1 => req.header(header::AUTHORIZATION, &world.bearer),
        2 => req.header(header::AUTHORIZATION, format!("Bearer {}", String::from_utf8_lossy(param))),
        _ => req,
    };
    req = match (flags >> 3) & 3 {
        0 | 1 => req.header(header::CONTENT_TYPE, "application/json"),
        2 => req.header(header::CONTENT_TYPE, "text/plain"),
        _ => req,
    };
    if flags & 0x20 != 0 {
        req = req.header(header::IF_MATCH, format!("\"{}\"", choice % 4));
    }
    if flags & 0x40 != 0 {
        req = req.header(header::IF_NONE_MATCH, "\"1\"");
    }
    let Ok(req) = req.body(Body::from(body.to_vec())) else { return };
    let (status, headers, out) = rt.block_on(call(&world.app, req));

    assert!(status < 500, "{method} {uri} -> {status}: {}", String::from_utf8_lossy(&out));
    assert_eq!(
        headers.get("x-content-type-options").map(|v| v.as_bytes()),
        Some(&b"nosniff"[..]),
        "{method} {uri}"
    );
    assert!(headers.contains_key("x-request-id"));
    if status >= 400 {
        let v: serde_json::Value = serde_json::from_slice(&out)
            .unwrap_or_else(|_| panic!("{method} {uri} -> {status}: not JSON: {}", String::from_utf8_lossy(&out)));
        let code = v["error"]["code"].as_str().unwrap_or_else(|| panic!("no code: {v}"));
        assert!(
            code.len() == 5 && code.starts_with('E') && code[1..].bytes().all(|b| b.is_ascii_digit()),
            "{code}"
        );
        assert!(v["error"]["request_id"].is_string(), "{v}");
        assert!(!v["error"]["message"].as_str().unwrap_or("").is_empty(), "{v}");
    }
});
