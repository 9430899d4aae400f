//! The real `crm-server` binary, started on a free port and driven over HTTP(S): local mode
//! on redb (seed, sign-in, CRUD, restart with the same data and secret, graceful shutdown
//! with a request in flight), PostgreSQL through `DATABASE_URL`, HTTPS with rustls, and the
//! refusals outside local mode.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

mod common;
use common::{BIN, Reply, SECRET, Server, command, http, send, start, start_raw};

async fn login(server: &Server, email: &str, password: &str) -> Reply {
    send(
        http()
            .post(server.url("/auth/login"))
            .json(&json!({"email": email, "password": password})),
    )
    .await
}

/// The `Cookie` header a browser sends back after this reply's `Set-Cookie` headers.
fn session_cookies(reply: &Reply) -> String {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ")
}

fn bearer(reply: &Reply) -> String {
    format!("Bearer {}", reply.body["access_token"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_mode_on_redb_seeds_serves_restarts_and_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    // Seed a small workspace (the store is created in ./crm-data).
    let out = command(
        dir.path(),
        &[
            "seed",
            "--admin-password",
            "demo pass",
            "--bcrypt-cost",
            "4",
            "--companies",
            "20",
            "--contacts",
            "130",
            "--deals",
            "10",
            "--tasks",
            "10",
            "--notes",
            "10",
        ],
        &[],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = dir.path().join("crm-data");
    assert!(data.join("crm.redb").is_file());

    let mut server = start(dir.path(), &[], &[]);
    assert!(
        server.log().contains("no CRM_JWT_SECRET set"),
        "{}",
        server.log()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("jwt-secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the secret file is owner-only");
    }

    // The seeded admin signs in; sign-up is closed.
    let r = send(http().post(server.url("/auth/signup")).json(&json!({
        "workspace_name": "Other", "email": "x@other.test", "password": "pw"
    })))
    .await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "E5006");
    let session = login(&server, "admin@example.com", "demo pass").await;
    assert_eq!(session.status, 200, "{:?}", session.body);
    let auth = bearer(&session);

    // Page through every seeded contact.
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut url = server.url("/contacts?limit=100");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = send(http().get(url).header("authorization", &auth)).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        seen += page.body["data"].as_array().unwrap().len();
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, 130);

    // Create, then stop with SIGTERM: exit status 0.
    let created = send(
        http()
            .post(server.url("/contacts"))
            .header("authorization", &auth)
            .json(&json!({"first_name": "Grace", "last_name": "Hopper"})),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.headers["etag"], "\"1\"");
    assert_eq!(created.headers["x-content-type-options"], "nosniff");
    let id = created.body["id"].as_str().unwrap().to_owned();
    // A browser session: the refresh cookie and the CSRF token the page holds.
    let browser = login(&server, "admin@example.com", "demo pass").await;
    assert_eq!(browser.status, 200, "{:?}", browser.body);
    let cookies = session_cookies(&browser);
    let csrf = browser.body["csrf_token"].as_str().unwrap().to_owned();
    let status = server.terminate();
    assert!(status.success(), "{status}\n{}", server.log());
    assert!(server.log().contains("stopped"));

    // Restarted on the same directory: the same secret (the old token still works), the
    // same data, sign-up still closed.
    let mut server = start_raw(
        dir.path(),
        &["serve", "--bind", "127.0.0.1:0", "--bcrypt-cost", "12"],
        &[],
    );
    let r = server.get(&format!("/contacts/{id}"), &auth).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["last_name"], "Hopper");

    // The browser session survives the restart: its cookie and CSRF token still refresh
    // (the CSRF key is derived from the JWT secret, not drawn afresh per process).
    let refreshed = send(
        http()
            .post(server.url("/auth/refresh"))
            .header("cookie", &cookies)
            .header("x-csrf-token", &csrf),
    )
    .await;
    assert_eq!(refreshed.status, 200, "{:?}", refreshed.body);
    assert_ne!(
        refreshed.body["refresh_token"],
        browser.body["refresh_token"]
    );
    // A forged CSRF token is still refused.
    let forged = send(
        http()
            .post(server.url("/auth/refresh"))
            .header("cookie", session_cookies(&refreshed))
            .header("x-csrf-token", format!("{}x", &csrf[..csrf.len() - 1])),
    )
    .await;
    assert_eq!(forged.status, 403, "{:?}", forged.body);
    assert_eq!(forged.body["error"]["code"], "E1002");

    // Graceful shutdown with a request in flight: this login re-hashes the cost-4 password
    // at cost 12 (hundreds of milliseconds); SIGTERM arrives meanwhile and the request still
    // completes before the process exits 0.
    let url = server.url("/auth/login");
    let in_flight = tokio::spawn(async move {
        send(
            http()
                .post(url)
                .json(&json!({"email": "admin@example.com", "password": "demo pass"})),
        )
        .await
        .status
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status = server.terminate();
    assert_eq!(in_flight.await.unwrap(), 200, "{}", server.log());
    assert!(status.success(), "{status}\n{}", server.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_links_go_to_stdout_not_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &["--reset-link", "https://crm.test/reset?t="],
        &[],
    );
    let r = send(http().post(server.url("/auth/signup")).json(&json!({
        "workspace_name": "Acme", "email": "ada@acme.test", "password": "pw"
    })))
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = send(
        http()
            .post(server.url("/auth/password-reset"))
            .json(&json!({"email": "ada@acme.test"})),
    )
    .await;
    assert!(r.status < 300, "{:?}", r.body);
    let deadline = Instant::now() + Duration::from_secs(10);
    let token = loop {
        let out = server.stdout.lock().unwrap().clone();
        if let Some(rest) = out.split("https://crm.test/reset?t=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no reset link printed");
        std::thread::sleep(Duration::from_millis(25));
    };
    assert!(token.len() > 20);
    assert!(!server.log().contains(&token), "the token reached the log");
    let r = send(
        http()
            .post(server.url("/auth/password-reset/confirm"))
            .json(&json!({"token": token, "new_password": "new pw"})),
    )
    .await;
    assert!(r.status < 300, "{:?}", r.body);
    assert_eq!(login(&server, "ada@acme.test", "new pw").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_through_database_url() {
    let db = crm_store_postgres::testing::TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(
        dir.path(),
        &["--db-pool-size", "4"],
        &[("DATABASE_URL", db.url()), ("CRM_JWT_SECRET", SECRET)],
    );
    assert!(
        server.log().contains("store=\"postgres\""),
        "{}",
        server.log()
    );
    assert!(
        !server.log().contains(db.url()),
        "the database URL reached the log"
    );
    let r = send(http().post(server.url("/auth/signup")).json(&json!({
        "workspace_name": "Acme", "email": "ada@acme.test", "password": "pw"
    })))
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let auth = bearer(&r);
    let r = send(
        http()
            .post(server.url("/companies"))
            .header("authorization", &auth)
            .json(&json!({"name": "Initech"})),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = server.get("/companies?q=init", &auth).await;
    assert_eq!(r.body["data"][0]["name"], "Initech", "{:?}", r.body);
    let r = send(http().get(server.url("/ready"))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // No data directory is needed with an explicit secret.
    assert!(!dir.path().join("crm-data").join("jwt-secret").exists());
    let status = server.terminate();
    assert!(status.success(), "{status}\n{}", server.log());
}

#[test]
fn outside_local_mode_the_server_refuses_to_start_unsafely() {
    let dir = tempfile::tempdir().unwrap();
    // Plain HTTP on a public address with nobody terminating TLS.
    let out = command(
        dir.path(),
        &["--bind", "0.0.0.0:0"],
        &[("CRM_JWT_SECRET", SECRET)],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls-cert"), "{err}");
    // No generated secret outside local mode.
    let out = command(
        dir.path(),
        &["--bind", "0.0.0.0:0", "--trusted-proxy", "127.0.0.1"],
        &[],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CRM_JWT_SECRET"), "{err}");
    assert!(!dir.path().join("crm-data").join("jwt-secret").exists());
    // A short secret is refused, and not echoed.
    let out = command(dir.path(), &[], &[("CRM_JWT_SECRET", "tiny-secret")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("tiny-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_only_forwarded_https_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_raw(
        dir.path(),
        &["--bind", "0.0.0.0:0", "--trusted-proxy", "127.0.0.1"],
        &[("CRM_JWT_SECRET", SECRET)],
    );
    let url = format!("http://127.0.0.1:{}/api/v1/health", server.addr.port());
    let r = send(http().get(&url)).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["error"]["code"], "E4005");
    let r = send(http().get(&url).header("x-forwarded-proto", "https")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_rustls() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let cert = fixtures.join("cert.pem");
    let key = fixtures.join("key.pem");
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    assert!(server.log().contains("https://"), "{}", server.log());

    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(fixtures.join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
    tls.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tls.read_to_string(&mut response).await.ok();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response
            .to_lowercase()
            .contains("strict-transport-security")
    );

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = http()
        .get(format!("http://{}/api/v1/health", server.addr))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status().as_u16() != 200);
}

#[test]
fn help_lists_every_setting_with_its_variable() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for v in [
        "CRM_BIND",
        "CRM_DATA_DIR",
        "DATABASE_URL",
        "CRM_DB_POOL_SIZE",
        "CRM_BODY_LIMIT",
        "CRM_RATE_USER_PER_MINUTE",
        "CRM_TLS_CERT",
        "CRM_TRUSTED_PROXIES",
        "CRM_LOG_FORMAT",
    ] {
        assert!(help.contains(v), "{v} missing from --help:\n{help}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_do_not_send_their_headers_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--header-timeout-secs", "1"], &[]);
    // Headers started but never finished.
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = vec![0u8; 4096];
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the slow connection was left open");
    assert!(started.elapsed() >= Duration::from_millis(500));
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    // Everyone else is served as usual.
    let r = send(http().get(server.url("/health"))).await;
    assert_eq!(r.status, 200);
}
