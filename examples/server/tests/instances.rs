//! Several `crm-server` processes on one PostgreSQL database act as one server: the first
//! sign-up is decided once, one rate limit holds across them, a logout or a refresh-token
//! replay on one is enforced by all within a second, sessions refresh anywhere — and
//! `/ready` follows the database going away and coming back.

use std::path::Path;
use std::time::{Duration, Instant};

use crm_store_postgres::testing::{TestDatabase, ThrowawayCluster};
use serde_json::json;

mod common;
use common::{Reply, SECRET, Server, http, send};

/// A revocation made through one instance is enforced by the others within this.
const PROPAGATION: Duration = Duration::from_secs(1);

/// Starts `crm-server serve` on `database_url` (a pool of 4) plus `args`, and waits until it
/// listens.
fn start_on(dir: &Path, database_url: &str, args: &[&str]) -> Server {
    let mut all = vec!["--db-pool-size", "4"];
    all.extend_from_slice(args);
    common::start(
        dir,
        &all,
        &[("DATABASE_URL", database_url), ("CRM_JWT_SECRET", SECRET)],
    )
}

async fn get(server: &Server, path: &str, token: &str) -> Reply {
    server.get(path, &format!("Bearer {token}")).await
}

async fn login(server: &Server, email: &str, password: &str) -> Reply {
    let r = send(
        http()
            .post(server.url("/auth/login"))
            .json(&json!({"email": email, "password": password})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r
}

async fn refresh(server: &Server, token: &str) -> Reply {
    send(
        http()
            .post(server.url("/auth/refresh"))
            .json(&json!({ "refresh_token": token })),
    )
    .await
}

fn access(r: &Reply) -> String {
    r.body["access_token"].as_str().unwrap().to_string()
}

fn refresh_token(r: &Reply) -> String {
    r.body["refresh_token"].as_str().unwrap().to_string()
}

/// Asserts that every server refuses `token` (`401`, `code`) by `deadline`.
async fn refused_everywhere_by(servers: &[&Server], token: &str, code: &str, deadline: Instant) {
    for s in servers {
        loop {
            let r = get(s, "/companies", token).await;
            if r.status == 401 {
                assert_eq!(r.code(), code, "{:?}", r.body);
                break;
            }
            assert_eq!(r.status, 200, "{:?}", r.body);
            assert!(
                Instant::now() < deadline,
                "{} still accepts a revoked session's token",
                s.addr
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_database_act_as_one_server() {
    let db = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    // Login quota raised, so that any 429 of a login below comes from the failed-login
    // throttle.
    let grace = [
        "--refresh-grace-secs",
        "1",
        "--rate-login-per-minute",
        "1000",
    ];
    let (a, b, c) = (
        start_on(dir.path(), db.url(), &grace),
        start_on(dir.path(), db.url(), &grace),
        start_on(dir.path(), db.url(), &grace),
    );
    for s in [&a, &b, &c] {
        assert!(s.log().contains("rate_limits=\"shared\""), "{}", s.log());
    }

    // The first sign-up of a fresh database, at the same moment on all three.
    let signup = |s: &Server, n: usize| {
        send(http().post(s.url("/auth/signup")).json(&json!({
            "workspace_name": "Acme",
            "email": format!("admin{n}@acme.test"),
            "password": "admin pw",
        })))
    };
    let (ra, rb, rc) = tokio::join!(signup(&a, 0), signup(&b, 1), signup(&c, 2));
    let replies = [ra, rb, rc];
    let won: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
    assert_eq!(won.len(), 1, "exactly one first sign-up");
    for r in replies.iter().filter(|r| r.status != 201) {
        assert_eq!((r.status, r.code()), (409, "E5006"), "{:?}", r.body);
    }
    let admin_email = won[0].body["user"]["email"].as_str().unwrap().to_string();

    // A logout through A is enforced by B and C within a second.
    let t = login(&a, &admin_email, "admin pw").await;
    let token = access(&t);
    for s in [&a, &b, &c] {
        assert_eq!(get(s, "/companies", &token).await.status, 200);
    }
    let r = send(
        http()
            .post(a.url("/auth/logout"))
            .header("authorization", format!("Bearer {token}")),
    )
    .await;
    assert!(r.status < 300, "{:?}", r.body);
    refused_everywhere_by(&[&b, &c, &a], &token, "E1007", Instant::now() + PROPAGATION).await;

    // A session created through A refreshes through B; the new token works on C.
    let t = login(&a, &admin_email, "admin pw").await;
    let first_refresh = refresh_token(&t);
    let r = refresh(&b, &first_refresh).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let (current_access, current_refresh) = (access(&r), refresh_token(&r));
    assert_eq!(get(&c, "/companies", &current_access).await.status, 200);
    assert_eq!(get(&a, "/companies", &current_access).await.status, 200);

    // Replaying the replaced token after the grace window (1 s) through C revokes the
    // session on all three.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let r = refresh(&c, &first_refresh).await;
    assert_eq!((r.status, r.code()), (401, "E1008"), "{:?}", r.body);
    refused_everywhere_by(
        &[&a, &b, &c],
        &current_access,
        "E1007",
        Instant::now() + PROPAGATION,
    )
    .await;
    let r = refresh(&a, &current_refresh).await;
    assert_eq!(r.status, 401, "{:?}", r.body);

    // One user, round robin over the three: about 100 requests in a minute, not 300.
    let t = login(&b, &admin_email, "admin pw").await;
    let token = access(&t);
    let servers = [&a, &b, &c];
    let started = Instant::now();
    let (mut allowed, mut refused) = (0u32, None);
    for i in 0..300 {
        let r = get(servers[i % 3], "/companies", &token).await;
        match r.status {
            200 => allowed += 1,
            429 => refused = Some(r),
            other => panic!("unexpected {other}: {:?}", r.body),
        }
    }
    // One GCRA bucket: the burst of 100 plus one per 0.6 s that went by.
    let refill = (started.elapsed().as_secs_f64() / 0.6).ceil() as u32;
    assert!(
        allowed <= 100 + refill,
        "{allowed} of 300 allowed in {:?}",
        started.elapsed()
    );
    // The earlier requests of this user, and tokens left in other instances' leases.
    assert!(allowed >= 80, "only {allowed} of 300 allowed");
    let refused = refused.expect("some requests were refused");
    assert_eq!(refused.code(), "E4001", "{:?}", refused.body);
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert!(
        refused.headers["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with(r#""user";r=0;t="#)
    );

    // Failed logins, round robin: the throttle counts them together, so the delay after the
    // fifth failure refuses the next attempt wherever it lands (with per-instance counts,
    // each instance would need five failures of its own: the first refusal at attempt 16).
    let mut first_refusal = None;
    for attempt in 1..=16 {
        let r = send(
            http()
                .post(servers[attempt % 3].url("/auth/login"))
                .json(&json!({"email": admin_email, "password": "wrong"})),
        )
        .await;
        if r.status == 429 {
            assert_eq!(r.code(), "E4001", "{:?}", r.body);
            first_refusal = Some(attempt);
            break;
        }
        assert_eq!((r.status, r.code()), (401, "E1003"), "{:?}", r.body);
    }
    let first_refusal = first_refusal.expect("failed logins were never throttled");
    // Attempt 6 normally; 7 if the 1 s delay ran out before it (then the sixth failure
    // starts a 2 s one).
    assert!(
        (6..=7).contains(&first_refusal),
        "first throttled at attempt {first_refusal}"
    );
}

#[test]
fn ready_reports_the_database_going_away_and_recovers_by_itself() {
    // Started outside the runtime: the cluster's set-up blocks.
    let cluster = ThrowawayCluster::start().expect("a throwaway PostgreSQL cluster");
    let dir = tempfile::tempdir().unwrap();
    let server = start_on(
        dir.path(),
        cluster.url(),
        &["--db-acquire-timeout-secs", "1"],
    );
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(ready_follows(&cluster, &server));
}

async fn ready_follows(cluster: &ThrowawayCluster, server: &Server) {
    let ready = || send(http().get(server.url("/ready")));
    assert_eq!(ready().await.status, 200);
    cluster.stop().expect("stop the cluster");
    let r = ready().await;
    assert_eq!((r.status, r.code()), (503, "E3001"), "{:?}", r.body);
    assert_eq!(send(http().get(server.url("/health"))).await.status, 200);
    cluster.start_again().expect("start the cluster again");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = ready().await;
        if r.status == 200 {
            break;
        }
        assert_eq!((r.status, r.code()), (503, "E3001"), "{:?}", r.body);
        assert!(Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
