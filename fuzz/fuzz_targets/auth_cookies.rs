//! Refresh cookies, CSRF tokens, refresh tokens in bodies and bearer tokens — each one a
//! genuine value with fuzz-chosen bytes replaced, or raw fuzz bytes — sent to the adapter's
//! refresh, logout and `/me` routes (in process, in-memory store). Nothing but the genuine
//! value is accepted: every such request is refused with a coded E1xxx/E2xxx error, and no
//! refusal rotates or ends the genuine session (checked by refreshing it for real every
//! so often).
#![no_main]

use std::sync::{Mutex, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, header};
use libfuzzer_sys::fuzz_target;

#[path = "common/app.rs"]
mod app;
use app::runtime;

struct Genuine {
    app: Router,
    refresh: String,
    csrf: String,
    bearer: String,
    checks: u64,
}

async fn call(app: &Router, req: Request<Body>) -> (u16, HeaderMap, serde_json::Value) {
    let (status, headers, body) = app::call(app, req).await;
    (status, headers, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

fn cookie(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned()
}

/// A refresh request; `None` when a forged value cannot be a header value at all.
fn refresh_request(cookies: Option<String>, csrf: Option<&str>, body: serde_json::Value) -> Option<Request<Body>> {
    let mut b = Request::builder()
        .method("POST")
        .uri("/api/v1/auth/refresh")
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(c) = cookies {
        b = b.header(header::COOKIE, axum::http::HeaderValue::from_str(&c).ok()?);
    }
    if let Some(t) = csrf {
        b = b.header("x-csrf-token", axum::http::HeaderValue::from_str(t).ok()?);
    }
    b.body(Body::from(body.to_string())).ok()
}

async fn build() -> Genuine {
    let (app, headers, v) = app::app_with_admin(std::time::Duration::ZERO).await;
    Genuine {
        refresh: cookie(&headers, "crm_refresh"),
        csrf: cookie(&headers, "crm_csrf"),
        bearer: v["access_token"].as_str().unwrap().to_owned(),
        app,
        checks: 0,
    }
}

/// What a cookie or header parser makes of a value: the part before any `;`, without the
/// surrounding whitespace. A "forgery" equal to the genuine value after this is not one.
fn effective(value: &str) -> &str {
    value.split(';').next().unwrap_or_default().trim()
}

/// `genuine` with bytes replaced at fuzz-chosen positions (pairs of position, byte).
fn mutate(genuine: &str, edits: &[u8]) -> String {
    let mut bytes = genuine.as_bytes().to_vec();
    for pair in edits.chunks_exact(2) {
        if bytes.is_empty() {
            break;
        }
        let at = pair[0] as usize % (bytes.len() + 1);
        if at == bytes.len() {
            bytes.push(pair[1]);
        } else {
            bytes[at] = pair[1];
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn refused(status: u16, v: &serde_json::Value, what: &str) {
    assert!((400..500).contains(&status), "{what}: accepted ({status}) {v}");
    let code = v["error"]["code"].as_str().unwrap_or_else(|| panic!("{what}: {v}"));
    assert!(code.starts_with("E1") || code.starts_with("E2"), "{what}: {code}");
}

fuzz_target!(|data: &[u8]| {
    static STATE: OnceLock<Mutex<Option<Genuine>>> = OnceLock::new();
    if data.is_empty() {
        return;
    }
    let rt = runtime();
    let mut guard = STATE.get_or_init(|| Mutex::new(None)).lock().unwrap();
    if guard.is_none() {
        *guard = Some(rt.block_on(build()));
    }
    let g = guard.as_mut().unwrap();
    let edits = &data[1..];
    let raw = String::from_utf8_lossy(edits).into_owned();
    rt.block_on(async {
        match data[0] % 6 {
            // A forged refresh cookie with the genuine CSRF token.
            0 => {
                let forged = mutate(&g.refresh, edits);
                if effective(&forged) != g.refresh {
                    if let Some(req) = refresh_request(
                        Some(format!("crm_refresh={forged}; crm_csrf={}", g.csrf)),
                        Some(&g.csrf),
                        serde_json::json!({}),
                    ) {
                        let (s, _, v) = call(&g.app, req).await;
                        refused(s, &v, "forged refresh cookie");
                    }
                }
            }
            // The genuine refresh cookie with a forged (or missing) CSRF token.
            1 | 2 => {
                let forged = if data[0] % 6 == 1 { mutate(&g.csrf, edits) } else { raw.clone() };
                if effective(&forged) != g.csrf {
                    let path = if data[0] % 2 == 0 { "refresh" } else { "logout" };
                    // The CSRF cookie may be forged too, or left out when it cannot be one.
                    let cookies = if axum::http::HeaderValue::from_str(&forged).is_ok() && !forged.contains(';') {
                        format!("crm_refresh={}; crm_csrf={forged}", g.refresh)
                    } else {
                        format!("crm_refresh={}", g.refresh)
                    };
                    let header = axum::http::HeaderValue::from_str(&forged).is_ok() && !forged.is_empty();
                    if let Some(mut req) =
                        refresh_request(Some(cookies), header.then_some(forged.as_str()), serde_json::json!({}))
                    {
                        *req.uri_mut() = format!("/api/v1/auth/{path}").parse().unwrap();
                        let (s, _, v) = call(&g.app, req).await;
                        refused(s, &v, "forged CSRF token");
                    }
                }
            }
            // A forged refresh token in the body.
            3 => {
                let forged = mutate(&g.refresh, edits);
                if forged.trim() != g.refresh {
                    let req = refresh_request(None, None, serde_json::json!({"refresh_token": forged})).unwrap();
                    let (s, _, v) = call(&g.app, req).await;
                    refused(s, &v, "forged body refresh token");
                }
            }
            // A forged bearer token.
            4 => {
                let forged = mutate(&g.bearer, edits);
                if forged.trim() != g.bearer {
                    if let Ok(auth) = axum::http::HeaderValue::from_str(&format!("Bearer {forged}")) {
                        let req = Request::builder()
                            .uri("/api/v1/me")
                            .header(header::AUTHORIZATION, auth)
                            .body(Body::empty())
                            .unwrap();
                        let (s, _, v) = call(&g.app, req).await;
                        refused(s, &v, "forged bearer token");
                    }
                }
            }
            // Raw bytes as the whole Cookie header, no CSRF token.
            _ => {
                if let Ok(value) = axum::http::HeaderValue::from_bytes(edits) {
                    let mut req = refresh_request(None, None, serde_json::json!({})).unwrap();
                    req.headers_mut().insert(header::COOKIE, value);
                    let (s, _, v) = call(&g.app, req).await;
                    refused(s, &v, "raw cookie header");
                }
            }
        }
        // Now and then, the genuine pair still works: no refusal consumed or ended the session.
        g.checks += 1;
        if g.checks % 256 == 0 {
            let req = refresh_request(
                Some(format!("crm_refresh={}; crm_csrf={}", g.refresh, g.csrf)),
                Some(&g.csrf),
                serde_json::json!({}),
            )
            .unwrap();
            let (s, headers, v) = call(&g.app, req).await;
            assert_eq!(s, 200, "the genuine session was harmed: {v}");
            g.refresh = cookie(&headers, "crm_refresh");
            g.csrf = cookie(&headers, "crm_csrf");
            g.bearer = v["access_token"].as_str().unwrap().to_owned();
        }
    });
});
