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
    // Logged just after the listener's line: waits for it (and fails if it never comes).
    server.wait_logged("/metrics is off");
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

fn fixture(name: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .to_str()
        .unwrap()
        .to_owned()
}

/// Sends `raw` to `addr` and answers the whole response.
async fn raw_http(addr: std::net::SocketAddr, raw: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(raw.as_bytes()).await.unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.ok();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_redirected_to_https() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (fixture("cert.pem"), fixture("key.pem"));
    let server = start(
        dir.path(),
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--redirect-http",
            "0",
        ],
        &[],
    );
    let plain = server.logged_addr("redirecting http://");
    assert_ne!(plain.port(), server.addr.port());
    let https = server.addr.port();

    let r = send(
        http()
            .get(format!(
                "http://{plain}/api/v1/contacts?q=gr%C3%A4ce&limit=5"
            ))
            .header("host", format!("localhost:{}", plain.port())),
    )
    .await;
    assert_eq!(r.status, 308, "{:?}", r.body);
    assert_eq!(
        r.headers["location"],
        format!("https://localhost:{https}/api/v1/contacts?q=gr%C3%A4ce&limit=5").as_str()
    );
    assert!(r.headers.get("strict-transport-security").is_none());
    let r = send(
        http()
            .head(format!("http://{plain}/"))
            .header("host", "crm.example.com"),
    )
    .await;
    assert_eq!(r.status, 308);
    assert_eq!(
        r.headers["location"],
        format!("https://crm.example.com:{https}/").as_str()
    );

    // Anything but GET and HEAD: the coded refusal, no redirect.
    let r = send(
        http()
            .post(format!("http://{plain}/api/v1/auth/login"))
            .json(&serde_json::json!({"email": "a@b.c", "password": "pw"})),
    )
    .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "E4005");
    assert!(r.headers.get("location").is_none());

    // Absurd Host headers are refused, never echoed into a Location.
    for host in [
        "evil.example/x",
        "user@evil.example",
        "a..b",
        "x:99999",
        &"a".repeat(300),
    ] {
        let answer = raw_http(
            plain,
            &format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{host}: {answer}");
        assert!(answer.contains("E2004"), "{answer}");
        assert!(
            !answer.to_ascii_lowercase().contains("location:"),
            "{answer}"
        );
    }
    let answer = raw_http(plain, "GET / HTTP/1.0\r\n\r\n").await;
    assert!(
        answer.starts_with("HTTP/1.0 400") || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
}

#[test]
fn the_redirect_needs_tls_served_here() {
    let dir = tempfile::tempdir().unwrap();
    let err = refused(dir.path(), &["--redirect-http", "8081"], &[]);
    assert!(err.contains("--tls-cert"), "{err}");
}

#[test]
fn an_unreadable_or_empty_database_ca_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-ca.pem");
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "just text\n").unwrap();
    for ca in [&missing, &not_pem] {
        let err = refused(
            dir.path(),
            &["--database-ca", ca.to_str().unwrap()],
            &[
                ("CRM_JWT_SECRET", SECRET),
                ("DATABASE_URL", "postgres://crm:hunter2@db.invalid/crm"),
            ],
        );
        assert!(err.contains("--database-ca"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!err.contains("hunter2"));
    }
}

/// `url` without its `sslmode` parameter (the test databases' URLs name one).
fn without_sslmode(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| !kv.to_ascii_lowercase().starts_with("sslmode="))
        .collect();
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_tls_is_required_off_this_machine_and_verified_with_a_ca() {
    let dir = tempfile::tempdir().unwrap();
    fn public_with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["--bind", "0.0.0.0:0", "--trusted-proxy", "127.0.0.1"];
        v.extend_from_slice(extra);
        v.extend_from_slice(&["--db-acquire-timeout-secs", "1"]);
        v
    }
    // Another machine, no sslmode: TLS required (the name never resolves, so the start
    // fails after the decision is logged), the URL and its password never printed.
    let err = refused(
        dir.path(),
        &public_with(&[]),
        &[
            ("CRM_JWT_SECRET", SECRET),
            ("DATABASE_URL", "postgres://crm:hunter2@db.invalid:5432/crm"),
        ],
    );
    assert!(err.contains("sslmode=require"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    // An explicit mode is the operator's.
    let err = refused(
        dir.path(),
        &public_with(&[]),
        &[
            ("CRM_JWT_SECRET", SECRET),
            (
                "DATABASE_URL",
                "postgres://crm@db.invalid/crm?sslmode=disable",
            ),
        ],
    );
    assert!(err.contains("sslmode=disable"), "{err}");

    // The database on this machine: unchanged, and served.
    let db = crm_store_postgres::testing::TestDatabase::create().await;
    let url = without_sslmode(db.url());
    let server = start_raw(
        dir.path(),
        &public_with(&[]),
        &[("CRM_JWT_SECRET", SECRET), ("DATABASE_URL", &url)],
    );
    assert!(
        server.log().contains("sslmode=prefer") && server.log().contains("on this machine"),
        "{}",
        server.log()
    );
    drop(server);

    // With a CA, verify-full: the test server's certificate is not signed by this CA (or
    // it offers no TLS at all), so the connection is refused instead of falling back.
    let ca = fixture("ca.pem");
    let err = refused(
        dir.path(),
        &public_with(&["--database-ca", &ca]),
        &[("CRM_JWT_SECRET", SECRET), ("DATABASE_URL", &url)],
    );
    assert!(err.contains("sslmode=verify-full"), "{err}");
    assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
    // libpq's PGSSLROOTCERT counts as a configured CA.
    let err = refused(
        dir.path(),
        &public_with(&[]),
        &[
            ("CRM_JWT_SECRET", SECRET),
            ("DATABASE_URL", &url),
            ("PGSSLROOTCERT", &ca),
        ],
    );
    assert!(err.contains("sslmode=verify-full"), "{err}");
}

/// The value of the series `series` (name and labels, exactly) in a metrics text.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{series} missing:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_process_connections_and_the_redb_writer() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[], &[]);
    let auth = signup(&server, "ada@acme.test").await;
    for i in 0..5 {
        let r = send(
            http()
                .post(server.url("/contacts"))
                .header("authorization", &auth)
                .json(&serde_json::json!({"first_name": format!("C{i}"), "last_name": "X"})),
        )
        .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    // Two more connections held open while the metrics are read.
    let idle: Vec<tokio::net::TcpStream> = vec![
        tokio::net::TcpStream::connect(server.addr).await.unwrap(),
        tokio::net::TcpStream::connect(server.addr).await.unwrap(),
    ];
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let text = send(http().get(server.url("/metrics"))).await.body;
    let text = text.as_str().unwrap();
    assert!(metric(text, "process_resident_memory_bytes") > 1e6);
    assert!(metric(text, "process_cpu_seconds_total") > 0.0);
    assert!(metric(text, "process_open_fds") >= 3.0);
    assert!(metric(text, "process_max_fds") >= metric(text, "process_open_fds"));
    // This scrape is the one request in flight; its connection and the two idle ones are open.
    assert_eq!(metric(text, "crm_http_requests_in_flight"), 1.0);
    assert!(metric(text, "crm_server_open_connections{listener=\"api\"}") >= 3.0);
    assert_eq!(metric(text, "crm_redb_write_queue_depth"), 0.0);
    assert!(metric(text, "crm_redb_write_queue_capacity") > 0.0);
    // Sign-up and the five contacts were committed in at least one batch, at most six.
    let commits = metric(text, "crm_redb_commit_batch_size_sum");
    let batches = metric(text, "crm_redb_commit_batch_size_count");
    assert!(commits >= 6.0, "{text}");
    assert!((1.0..=commits).contains(&batches));
    assert_eq!(
        metric(text, "crm_redb_commit_batch_size_bucket{le=\"+Inf\"}"),
        batches
    );
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_postgres_pool() {
    let db = crm_store_postgres::testing::TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &["--db-pool-size", "3"],
        &[("DATABASE_URL", db.url()), ("CRM_JWT_SECRET", SECRET)],
    );
    signup(&server, "ada@acme.test").await;
    let text = send(http().get(server.url("/metrics"))).await.body;
    let text = text.as_str().unwrap();
    assert_eq!(metric(text, "crm_db_pool_max_connections"), 3.0);
    let idle = metric(text, "crm_db_pool_connections{state=\"idle\"}");
    let in_use = metric(text, "crm_db_pool_connections{state=\"in_use\"}");
    assert!((1.0..=3.0).contains(&(idle + in_use)), "{text}");
    assert_eq!(metric(text, "crm_db_pool_waiting"), 0.0);
    assert!(!text.contains("crm_redb_"));
}

/// One alerting rule of `prometheus/alerts.yml`, as the test reads it.
#[derive(Debug, Default)]
struct Rule {
    alert: String,
    expr: String,
    for_: String,
    severity: String,
    summary: String,
}

/// Reads the rules of the alerts file. The file keeps to a plain YAML subset (one
/// `key: value` per line, one-line expressions), which this reader checks as it goes.
fn read_rules(text: &str) -> Vec<Rule> {
    let mut rules: Vec<Rule> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        assert!(!line.contains('\t'), "tab in {line:?}");
        if let Some(name) = t.strip_prefix("- alert:") {
            rules.push(Rule {
                alert: name.trim().to_owned(),
                ..Rule::default()
            });
            continue;
        }
        let Some(rule) = rules.last_mut() else {
            continue;
        };
        let value = |key: &str| t.strip_prefix(key).map(|v| v.trim().to_owned());
        if let Some(v) = value("expr:") {
            assert!(
                !v.starts_with('|') && !v.starts_with('>'),
                "one-line exprs only"
            );
            rule.expr = v;
        } else if let Some(v) = value("for:") {
            rule.for_ = v;
        } else if let Some(v) = value("severity:") {
            rule.severity = v;
        } else if let Some(v) = value("summary:") {
            rule.summary = v;
        }
    }
    rules
}

/// The metric names an expression uses (this project's: `crm_*` and `process_*`), after
/// checking that its brackets and quotes balance and its ranges are durations.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut stack = Vec::new();
    let mut chars = expr.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let mut closed = false;
                while let Some((_, q)) = chars.next() {
                    if q == '\\' {
                        chars.next();
                    } else if q == '"' {
                        closed = true;
                        break;
                    }
                }
                assert!(closed, "unclosed string in {expr}");
            }
            '(' | '[' | '{' => {
                stack.push(c);
                if c == '[' {
                    let end = expr[i..].find(']').expect("range end") + i;
                    let range = &expr[i + 1..end];
                    let (n, unit) = range.split_at(range.len() - 1);
                    assert!(
                        n.parse::<u32>().is_ok() && "smhd".contains(unit),
                        "bad range [{range}] in {expr}"
                    );
                }
            }
            ')' | ']' | '}' => {
                let open = stack.pop().unwrap_or_else(|| panic!("unbalanced {expr}"));
                assert_eq!(
                    (open, c),
                    match open {
                        '(' => ('(', ')'),
                        '[' => ('[', ']'),
                        _ => ('{', '}'),
                    },
                    "mismatched brackets in {expr}"
                );
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut word = String::from(c);
                while let Some((_, n)) = chars.peek() {
                    if n.is_ascii_alphanumeric() || *n == '_' || *n == ':' {
                        word.push(*n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if word.starts_with("crm_") || word.starts_with("process_") {
                    names.push(word);
                }
            }
            _ => {}
        }
    }
    assert!(stack.is_empty(), "unbalanced {expr}");
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_alert_rule_uses_metrics_the_server_exposes() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prometheus/alerts.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let rules = read_rules(&text);
    let names: Vec<&str> = rules.iter().map(|r| r.alert.as_str()).collect();
    for wanted in [
        "CrmApiLatencyHigh",
        "CrmSearchLatencyHigh",
        "CrmHealthLatencyHigh",
        "CrmStorageErrors",
        "CrmErrorCodeRateHigh",
        "CrmLoginFailuresHigh",
        "CrmRateLimitRefusalsHigh",
    ] {
        assert!(names.contains(&wanted), "{wanted} missing");
    }
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "duplicate alert names");

    // The metrics of a real server on each store (the pool's and the writer's differ).
    let dir = tempfile::tempdir().unwrap();
    let redb = start(dir.path(), &[], &[]);
    let db = crm_store_postgres::testing::TestDatabase::create().await;
    let pg_dir = tempfile::tempdir().unwrap();
    let pg = start(
        pg_dir.path(),
        &[],
        &[("DATABASE_URL", db.url()), ("CRM_JWT_SECRET", SECRET)],
    );
    let mut exposed = String::new();
    for server in [&redb, &pg] {
        let r = send(http().get(server.url("/metrics"))).await;
        exposed.push_str(r.body.as_str().unwrap());
    }
    let declared = |name: &str| {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|b| exposed.contains(&format!("# TYPE {b} histogram")));
        exposed.contains(&format!("# TYPE {name} ")) || base.is_some()
    };

    for rule in &rules {
        assert!(
            ["info", "warning", "critical"].contains(&rule.severity.as_str()),
            "{rule:?}"
        );
        assert!(
            rule.summary.starts_with('"') && rule.summary.len() > 10,
            "{rule:?}"
        );
        let (n, unit) = rule.for_.split_at(rule.for_.len().saturating_sub(1));
        assert!(n.parse::<u32>().is_ok() && "smh".contains(unit), "{rule:?}");
        let used = metric_names(&rule.expr);
        assert!(!used.is_empty(), "{rule:?} uses no crm metric");
        for name in used {
            assert!(declared(&name), "{}: {name} is not in /metrics", rule.alert);
        }
    }
    // The thresholds are the seeds'.
    let expr = |alert: &str| &rules.iter().find(|r| r.alert == alert).unwrap().expr;
    assert!(expr("CrmApiLatencyHigh").ends_with("> 0.3"));
    assert!(expr("CrmSearchLatencyHigh").ends_with("> 0.5"));
    assert!(expr("CrmHealthLatencyHigh").ends_with("> 0.1"));

    // promtool, where installed, checks the whole file (PromQL included).
    if let Ok(out) = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(&path)
        .output()
    {
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

const EXTERNAL_SECRET: &str = "the identity provider's own secret, 32+ bytes";

/// A JWT built by hand (base64url JSON, HMAC over `header.payload`), independent of the
/// crate's own JWT code. `alg` is whatever `header` says; the MAC is HS256 unless `hs512`.
fn jwt(header: serde_json::Value, claims: serde_json::Value, secret: &str, hs512: bool) -> String {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signing = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    let mac = if hs512 {
        let mut m = Hmac::<sha2::Sha512>::new_from_slice(secret.as_bytes()).unwrap();
        m.update(signing.as_bytes());
        m.finalize().into_bytes().to_vec()
    } else {
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        m.update(signing.as_bytes());
        m.finalize().into_bytes().to_vec()
    };
    format!("{signing}.{}", b64.encode(mac))
}

fn now_secs() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

async fn me(server: &Server, token: &str) -> Reply {
    server.get("/me", &format!("Bearer {token}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_tokens_of_another_identity_provider_are_accepted_strictly() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &[
            "--external-jwt-issuer",
            "better-auth",
            "--external-jwt-audience",
            "crm-api",
        ],
        &[
            ("CRM_JWT_SECRET", SECRET),
            ("CRM_EXTERNAL_JWT_SECRET", EXTERNAL_SECRET),
        ],
    );
    assert!(!server.log().contains(EXTERNAL_SECRET));
    let admin = signup(&server, "ada@acme.test").await;
    let r = server.get("/me", &admin).await;
    let ada = r.body["user"]["id"].as_str().unwrap().to_owned();

    let hs256 = serde_json::json!({"alg": "HS256", "typ": "JWT"});
    let now = now_secs();
    let good = serde_json::json!({
        "sub": ada, "iat": now, "exp": now + 300, "iss": "better-auth", "aud": "crm-api",
        "email": "ada@acme.test", "session": {"id": "abc"}
    });
    let token = jwt(hs256.clone(), good.clone(), EXTERNAL_SECRET, false);
    let r = me(&server, &token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["user"]["email"], "ada@acme.test");
    // No crm session stands behind it.
    assert_eq!(r.body["session_id"], "00000000-0000-0000-0000-000000000000");
    let r = send(
        http()
            .post(server.url("/companies"))
            .header("authorization", format!("Bearer {token}"))
            .json(&serde_json::json!({"name": "Initech"})),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);

    let with = |key: &str, value: serde_json::Value| {
        let mut c = good.clone();
        if value.is_null() {
            c.as_object_mut().unwrap().remove(key);
        } else {
            c[key] = value;
        }
        c
    };
    let refused: Vec<(&str, String, &str)> = vec![
        (
            "another secret",
            jwt(
                hs256.clone(),
                good.clone(),
                "not the provider's secret at all!!",
                false,
            ),
            "E1006",
        ),
        (
            "crm's own secret",
            jwt(hs256.clone(), good.clone(), SECRET, false),
            "E1006",
        ),
        (
            "HS512",
            jwt(
                serde_json::json!({"alg": "HS512"}),
                good.clone(),
                EXTERNAL_SECRET,
                true,
            ),
            "E1006",
        ),
        (
            "alg none",
            format!(
                "{}.",
                jwt(
                    serde_json::json!({"alg": "none"}),
                    good.clone(),
                    EXTERNAL_SECRET,
                    false
                )
                .rsplit_once('.')
                .unwrap()
                .0
            ),
            "E1006",
        ),
        (
            "RS256 header",
            jwt(
                serde_json::json!({"alg": "RS256"}),
                good.clone(),
                EXTERNAL_SECRET,
                false,
            ),
            "E1006",
        ),
        (
            "expired a second ago",
            jwt(
                hs256.clone(),
                with("exp", (now - 1).into()),
                EXTERNAL_SECRET,
                false,
            ),
            "E1005",
        ),
        (
            "no exp",
            jwt(
                hs256.clone(),
                with("exp", serde_json::Value::Null),
                EXTERNAL_SECRET,
                false,
            ),
            "E1006",
        ),
        (
            "issued in the future",
            jwt(
                hs256.clone(),
                with("iat", (now + 3600).into()),
                EXTERNAL_SECRET,
                false,
            ),
            "E1006",
        ),
        (
            "other issuer",
            jwt(
                hs256.clone(),
                with("iss", "someone-else".into()),
                EXTERNAL_SECRET,
                false,
            ),
            "E1006",
        ),
        (
            "no audience",
            jwt(
                hs256.clone(),
                with("aud", serde_json::Value::Null),
                EXTERNAL_SECRET,
                false,
            ),
            "E1006",
        ),
        (
            "other audience",
            jwt(
                hs256.clone(),
                with("aud", "other-api".into()),
                EXTERNAL_SECRET,
                false,
            ),
            "E1006",
        ),
        (
            "sub not a user id",
            jwt(
                hs256.clone(),
                with("sub", "user_123".into()),
                EXTERNAL_SECRET,
                false,
            ),
            "E1006",
        ),
        (
            "sub a number",
            jwt(
                hs256.clone(),
                with("sub", 42.into()),
                EXTERNAL_SECRET,
                false,
            ),
            "E1006",
        ),
        (
            "unknown user",
            jwt(
                hs256.clone(),
                with("sub", "0190f0e0-0000-7000-8000-000000000001".into()),
                EXTERNAL_SECRET,
                false,
            ),
            "E1001",
        ),
    ];
    for (what, token, code) in refused {
        let r = me(&server, &token).await;
        assert_eq!(r.status, 401, "{what}: {:?}", r.body);
        assert_eq!(r.body["error"]["code"], code, "{what}: {:?}", r.body);
    }
    // Unknown users are not created without provisioning.
    let r = server.get("/users", &admin).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_users_by_email_are_provisioned_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &[
            "--external-jwt-issuer",
            "better-auth",
            "--external-jwt-user-claim",
            "email",
            "--external-jwt-provision",
        ],
        &[
            ("CRM_JWT_SECRET", SECRET),
            ("CRM_EXTERNAL_JWT_SECRET", EXTERNAL_SECRET),
        ],
    );
    let admin = signup(&server, "ada@acme.test").await;
    let hs256 = serde_json::json!({"alg": "HS256", "typ": "JWT"});
    let now = now_secs();
    let claims = |email: &str, verified: bool| {
        serde_json::json!({
            "sub": "ba_user_7", "iat": now, "exp": now + 300, "iss": "better-auth",
            "email": email, "email_verified": verified, "name": "Grace Hopper"
        })
    };
    // The admin, found by e-mail (case-insensitive).
    let r = me(
        &server,
        &jwt(
            hs256.clone(),
            claims("ADA@acme.test", true),
            EXTERNAL_SECRET,
            false,
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["user"]["role"], "admin");
    // A new user: created read_only, once.
    let grace = jwt(
        hs256.clone(),
        claims("grace@acme.test", true),
        EXTERNAL_SECRET,
        false,
    );
    let (a, b) = tokio::join!(me(&server, &grace), me(&server, &grace));
    assert_eq!(
        (a.status, b.status),
        (200, 200),
        "{:?} {:?}",
        a.body,
        b.body
    );
    assert_eq!(a.body["user"]["id"], b.body["user"]["id"]);
    assert_eq!(a.body["user"]["role"], "read_only");
    assert_eq!(a.body["user"]["first_name"], "Grace");
    let r = send(
        http()
            .post(server.url("/companies"))
            .header("authorization", format!("Bearer {grace}"))
            .json(&serde_json::json!({"name": "Initech"})),
    )
    .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "E1002");
    // An unverified address is neither matched nor provisioned.
    let r = me(
        &server,
        &jwt(
            hs256.clone(),
            claims("ada@acme.test", false),
            EXTERNAL_SECRET,
            false,
        ),
    )
    .await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    let r = me(
        &server,
        &jwt(
            hs256,
            claims("mallory@acme.test", false),
            EXTERNAL_SECRET,
            false,
        ),
    )
    .await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    let r = server.get("/users", &admin).await;
    let emails: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails.len(), 2, "{emails:?}");
    assert!(emails.contains(&"grace@acme.test"));
}

#[test]
fn bad_external_token_settings_stop_the_server() {
    let dir = tempfile::tempdir().unwrap();
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 3] = [
        (
            &[],
            &[("CRM_EXTERNAL_JWT_SECRET", "short")],
            "CRM_EXTERNAL_JWT_SECRET",
        ),
        (&[], &[("CRM_EXTERNAL_JWT_SECRET", SECRET)], "must differ"),
        (
            &["--external-jwt-issuer", "x"],
            &[],
            "CRM_EXTERNAL_JWT_SECRET",
        ),
    ];
    for (args, env, says) in cases {
        let mut all = vec!["--bind", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut env = env.to_vec();
        env.push(("CRM_JWT_SECRET", SECRET));
        let err = refused(dir.path(), &all, &env);
        assert!(err.contains(says), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!err.contains("short\n") && !err.contains(SECRET));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_fields_are_masked_for_read_only_on_every_read_path() {
    masking_on(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_fields_are_masked_for_read_only_on_postgres_too() {
    let db = crm_store_postgres::testing::TestDatabase::create().await;
    masking_on(&[("DATABASE_URL", db.url()), ("CRM_JWT_SECRET", SECRET)]).await;
}

/// The masking scenario on the store `env` selects (its own search index included).
async fn masking_on(env: &[(&str, &str)]) {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[], env);
    let admin = signup(&server, "ada@acme.test").await;
    let post = |path: &str, body: serde_json::Value| {
        http()
            .post(server.url(path))
            .header("authorization", &admin)
            .json(&body)
    };
    let r = send(post(
        "/users",
        json!({"email": "rita@acme.test", "role": "read_only", "password": "reader pw"}),
    ))
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let company = send(post(
        "/companies",
        json!({"name": "Initech", "phone_number": "+1 (520) 555-0100", "address": "1 Main St",
               "zipcode": "85001", "city": "Phoenix", "tax_identifier": "US-98-7654321"}),
    ))
    .await;
    assert_eq!(company.status, 201, "{:?}", company.body);
    let contact = send(post(
        "/contacts",
        json!({"first_name": "Jane", "last_name": "Doe",
               "emails": [{"email": "jdoe1975@example.com", "type": "Work"}],
               "phones": [{"number": "+1 520 555 0199", "type": "Work"}]}),
    ))
    .await;
    assert_eq!(contact.status, 201, "{:?}", contact.body);
    let contact_id = contact.body["id"].as_str().unwrap().to_owned();
    let company_id = company.body["id"].as_str().unwrap().to_owned();

    // Mask every kind of personal field for read_only.
    let config = server.get("/configuration", &admin).await;
    assert_eq!(config.body["masked_fields"], json!([]));
    let etag = config.headers["etag"].to_str().unwrap().to_owned();
    let r = send(
        http()
            .patch(server.url("/configuration"))
            .header("authorization", &admin)
            .header("if-match", etag)
            .json(&json!({"masked_fields": ["emails", "phone_numbers", "addresses", "tax_identifier"]})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    let reader = {
        let r = send(http().post(server.url("/auth/login")).json(&json!({
            "email": "rita@acme.test", "password": "reader pw"
        })))
        .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        format!("Bearer {}", r.body["access_token"].as_str().unwrap())
    };
    let get = |auth: &str, path: &str| {
        let req = http().get(server.url(path)).header("authorization", auth);
        async move { send(req).await.body }
    };
    let masked_contact = |c: &serde_json::Value| {
        assert_eq!(c["emails"][0]["email"], "j***@example.com", "{c}");
        assert_eq!(c["phones"][0]["number"], "+1 ••• ••• 0199", "{c}");
        assert_eq!(c["first_name"], "Jane");
    };
    let masked_company = |c: &serde_json::Value| {
        assert_eq!(c["phone_number"], "+1 ••• ••• 0100", "{c}");
        assert_eq!(c["address"], "•••", "{c}");
        assert_eq!(c["zipcode"], "•••", "{c}");
        assert_eq!(c["tax_identifier"], "•••21", "{c}");
        assert_eq!(c["city"], "Phoenix");
    };
    // get, list, list with q, /search.
    masked_contact(&get(&reader, &format!("/contacts/{contact_id}")).await);
    masked_company(&get(&reader, &format!("/companies/{company_id}")).await);
    masked_contact(&get(&reader, "/contacts").await["data"][0]);
    masked_company(&get(&reader, "/companies").await["data"][0]);
    masked_contact(&get(&reader, "/contacts?q=jane").await["data"][0]);
    let found = get(&reader, "/search?q=doe").await;
    masked_contact(&found["contacts"][0]);
    masked_company(&get(&reader, "/search?q=initech").await["companies"][0]);

    // Found by the hidden values only by those who may see them.
    for q in [
        "jdoe1975",
        "doe1975",
        "5550199",
        "0199",
        "85001",
        "5205550100",
    ] {
        let reader_hits = get(&reader, &format!("/search?q={q}")).await;
        let admin_hits = get(&admin, &format!("/search?q={q}")).await;
        let n = |v: &serde_json::Value| {
            v["contacts"].as_array().unwrap().len() + v["companies"].as_array().unwrap().len()
        };
        assert_eq!(n(&admin_hits), 1, "admin, {q}: {admin_hits}");
        // The last four digits stay visible, so they still find the record.
        let expected = usize::from(q == "0199");
        assert_eq!(n(&reader_hits), expected, "reader, {q}: {reader_hits}");
    }
    let r = get(&reader, "/contacts?q=jdoe1975%40example.com").await;
    assert_eq!(r["data"].as_array().unwrap().len(), 0, "{r}");
    let r = get(&admin, "/contacts?q=jdoe1975%40example.com").await;
    assert_eq!(r["data"].as_array().unwrap().len(), 1, "{r}");

    // Other roles see everything, and the stored record is unchanged.
    let c = get(&admin, &format!("/contacts/{contact_id}")).await;
    assert_eq!(c["emails"][0]["email"], "jdoe1975@example.com");
    assert_eq!(c["phones"][0]["number"], "+1 520 555 0199");
    let c = get(&admin, &format!("/companies/{company_id}")).await;
    assert_eq!(c["tax_identifier"], "US-98-7654321");
}

#[test]
fn help_lists_the_new_settings() {
    let out = std::process::Command::new(BIN)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for v in [
        "CRM_METRICS_TOKEN",
        "CRM_METRICS_BIND",
        "CRM_REDIRECT_HTTP",
        "CRM_DATABASE_CA",
        "CRM_EXTERNAL_JWT_SECRET",
        "CRM_EXTERNAL_JWT_ISSUER",
        "CRM_EXTERNAL_JWT_AUDIENCE",
        "CRM_EXTERNAL_JWT_USER_CLAIM",
        "CRM_EXTERNAL_JWT_PROVISION",
        "--metrics-bind",
        "--redirect-http",
        "--database-ca",
        "--external-jwt-provision",
    ] {
        assert!(help.contains(v), "{v} missing from --help:\n{help}");
    }
}
