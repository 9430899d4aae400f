//! The real binary's operational hardening: who may read `/metrics`, the HTTPS redirect
//! listener, TLS to PostgreSQL, the resource metrics and the alert rules, external identity
//! tokens.

mod common;

use common::*;

const METRICS_TOKEN: &str = "metrics-token-0123456789abcdefghijklmnop";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_token_outside_local_mode() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_raw(
        dir.path(),
        &["--bind", "0.0.0.0:0", "--trusted-proxy", "127.0.0.1"],
        &[
            ("CRM_JWT_SECRET", SECRET),
            ("CRM_METRICS_TOKEN", METRICS_TOKEN),
        ],
    );
    assert!(
        !server.log().contains(METRICS_TOKEN),
        "the token reached the log"
    );
    let url = format!("http://127.0.0.1:{}/api/v1/metrics", server.addr.port());
    let r = send(http().get(&url).header("x-forwarded-proto", "https")).await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "E1001");
    let wrong = format!("Bearer {}x", &METRICS_TOKEN[..METRICS_TOKEN.len() - 1]);
    let r = send(
        http()
            .get(&url)
            .header("x-forwarded-proto", "https")
            .header("authorization", wrong),
    )
    .await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    let r = send(
        http()
            .get(&url)
            .header("x-forwarded-proto", "https")
            .header("authorization", format!("Bearer {METRICS_TOKEN}")),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body.as_str().unwrap().contains("crm_http_requests_total"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_their_own_listener_leave_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_raw(
        dir.path(),
        &[
            "--bind",
            "0.0.0.0:0",
            "--trusted-proxy",
            "127.0.0.1",
            "--metrics-bind",
            "127.0.0.1:0",
        ],
        &[("CRM_JWT_SECRET", SECRET)],
    );
    let api = format!("http://127.0.0.1:{}/api/v1", server.addr.port());
    let r = send(
        http()
            .get(format!("{api}/health"))
            .header("x-forwarded-proto", "https"),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = send(
        http()
            .get(format!("{api}/metrics"))
            .header("x-forwarded-proto", "https"),
    )
    .await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    let at = server.logged_addr("metrics served on http://");
    let r = send(http().get(format!("http://{at}/metrics"))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let text = r.body.as_str().unwrap();
    assert!(text.contains("/health\",status=\"200\"} 1"), "{text}");
    let r = send(http().get(format!("http://{at}/api/v1/contacts"))).await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_token_or_listener_public_metrics_are_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_raw(
        dir.path(),
        &["--bind", "0.0.0.0:0", "--trusted-proxy", "127.0.0.1"],
        &[("CRM_JWT_SECRET", SECRET)],
    );
    assert!(server.log().contains("/metrics is off"), "{}", server.log());
    let url = format!("http://127.0.0.1:{}/api/v1/metrics", server.addr.port());
    let r = send(http().get(&url).header("x-forwarded-proto", "https")).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    // In local mode they stay public.
    let other = tempfile::tempdir().unwrap();
    let local = start(other.path(), &[], &[("CRM_JWT_SECRET", SECRET)]);
    let r = send(http().get(local.url("/metrics"))).await;
    assert_eq!(r.status, 200);
}

#[test]
fn a_malformed_metrics_token_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        "short-token",
        "a token with spaces that is long enough to pass",
    ] {
        let err = refused(
            dir.path(),
            &["--bind", "127.0.0.1:0"],
            &[("CRM_JWT_SECRET", SECRET), ("CRM_METRICS_TOKEN", bad)],
        );
        assert!(err.contains("CRM_METRICS_TOKEN"), "{err}");
        assert!(!err.contains(bad), "the token was echoed: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}
