//! The change feed: catching up on 100,000 changes with `limit=1000` — through
//! `Crm::changes` (the path `GET /changes` takes, without the JSON and the socket), and
//! through HTTP (a client on a loopback socket walking `GET /changes`, JSON and gzip) — and
//! the wake-up latency of a waiting reader, on redb and PostgreSQL in the same run.
//!
//! `cargo bench -p crm-benches --bench feed` (PostgreSQL at 127.0.0.1:5432, or set
//! `CRM_TEST_DATABASE_URL` as for the store's tests).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_core::model::ContactInput;
use crm_core::{Actor, Crm, CrmConfig, Storage};

const CHANGES: usize = 100_000;
const PAGE: usize = 1000;

async fn seed(crm: &Crm, actor: &Actor, n: usize) -> Duration {
    // Durable creates through the engine from 64 tasks at once (group commit on redb).
    let started = Instant::now();
    let tasks = 64;
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let (crm, actor) = (crm.clone(), actor.clone());
        set.spawn(async move {
            for i in (t..n).step_by(tasks) {
                crm.contacts()
                    .create(
                        &actor,
                        ContactInput {
                            first_name: format!("F{t}"),
                            last_name: format!("L{i}"),
                            ..Default::default()
                        },
                    )
                    .await
                    .expect("seed create");
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("seed task");
    }
    started.elapsed()
}

async fn catch_up(crm: &Crm, actor: &Actor) -> (Duration, usize) {
    let started = Instant::now();
    let mut since: Option<String> = None;
    let mut n = 0;
    loop {
        let page = crm
            .changes(actor, since.as_deref(), PAGE)
            .await
            .expect("changes");
        n += page.data.len();
        if page.data.is_empty() && !page.has_more {
            return (started.elapsed(), n);
        }
        since = Some(page.next_cursor);
    }
}

/// A client walking `GET /changes` from the beginning to the end on one keep-alive
/// connection: the time, the changes read and the (decoded) JSON bytes.
async fn http_catch_up(addr: std::net::SocketAddr, token: &str) -> (Duration, usize, usize) {
    let mut conn = crm_benches::http::Conn::open(addr).await;
    let started = Instant::now();
    let mut since: Option<String> = None;
    let (mut n, mut bytes) = (0, 0);
    loop {
        let path = match &since {
            Some(c) => format!("/changes?limit={PAGE}&since={c}"),
            None => format!("/changes?limit={PAGE}"),
        };
        let (status, body) = conn.get(&path, token).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        bytes += body.len();
        let page: serde_json::Value = serde_json::from_slice(&body).expect("json");
        let got = page["data"].as_array().map_or(0, Vec::len);
        n += got;
        if got == 0 && page["has_more"] == false {
            return (started.elapsed(), n, bytes);
        }
        since = page["next_cursor"].as_str().map(str::to_owned);
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Commit (by `writer`) to a waiting reader (on `reader`) having the change in hand.
async fn wake_latency(writer: &Crm, reader: &Crm, actor: &Actor, rounds: usize) -> Vec<Duration> {
    let (mut since, _) = {
        let mut s = None;
        loop {
            let p = reader.changes(actor, s.as_deref(), PAGE).await.unwrap();
            if p.data.is_empty() && !p.has_more {
                break (Some(p.next_cursor), ());
            }
            s = Some(p.next_cursor);
        }
    };
    let mut out = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let (tx, rx) = tokio::sync::oneshot::channel::<Instant>();
        let r = reader.clone();
        let a = actor.clone();
        let from = since.clone();
        let waiter = tokio::spawn(async move {
            let mut signal = r.change_signal();
            let mut from = from;
            let mut quick = 0;
            loop {
                let p = r.changes(&a, from.as_deref(), PAGE).await.unwrap();
                if !p.data.is_empty() {
                    let _ = tx.send(Instant::now());
                    return p.next_cursor;
                }
                from = Some(p.next_cursor);
                // As GET /changes?wait= does: re-read shortly after a wake, else wait.
                if quick > 0 {
                    quick -= 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                } else if tokio::time::timeout(Duration::from_secs(1), signal.changed())
                    .await
                    .is_ok()
                {
                    quick = 20;
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let committed_at = Instant::now();
        writer
            .contacts()
            .create(
                actor,
                ContactInput {
                    first_name: format!("Wake{i}"),
                    last_name: "Poll".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let seen = rx.await.unwrap();
        since = Some(waiter.await.unwrap());
        out.push(seen.saturating_duration_since(committed_at));
    }
    out.sort();
    out
}

async fn run(name: &str, storage: Arc<dyn Storage>, peer: Arc<dyn Storage>) {
    let crm = Crm::new(storage, CrmConfig::default());
    let (actor, _) = crm_core::demo::workspace(&crm, "Feed Bench", "feed.test", 0)
        .await
        .expect("workspace");
    let seeded = seed(&crm, &actor, CHANGES).await;
    println!("{name}: seeded {CHANGES} contacts (durable creates, 64 at a time) in {seeded:.2?}");
    let mut runs = Vec::new();
    for _ in 0..3 {
        let (t, n) = catch_up(&crm, &actor).await;
        assert_eq!(n, CHANGES);
        runs.push(t);
    }
    runs.sort();
    println!(
        "{name}: catch-up of {CHANGES} changes, limit={PAGE}: median {:.2?} (runs {:?})",
        runs[1], runs
    );
    // The same through HTTP: a client on a socket walking GET /changes (JSON, gzip).
    let (app, token) =
        crm_benches::http::api(crm.clone(), &actor, actor.user_id(), "admin@feed.test").await;
    let addr = crm_benches::http::serve(app).await;
    let mut runs = Vec::new();
    for _ in 0..3 {
        let (t, n, bytes) = http_catch_up(addr, &token).await;
        assert_eq!(n, CHANGES);
        runs.push((t, bytes));
    }
    runs.sort();
    println!(
        "{name}: catch-up of {CHANGES} changes through HTTP GET /changes?limit={PAGE} (socket, gzip): median {:.2?} (runs {:?}; {:.1} MB of JSON per walk)",
        runs[1].0,
        runs.iter().map(|r| r.0).collect::<Vec<_>>(),
        runs[1].1 as f64 / 1e6
    );
    let wake_up = |what: &str, lat: &[Duration]| {
        println!(
            "{name}: wake-up, {what}: p50 {:.2?} p99 {:.2?} max {:.2?}",
            pct(lat, 0.5),
            pct(lat, 0.99),
            lat[lat.len() - 1]
        );
    };
    let lat = wake_latency(&crm, &crm, &actor, 200).await;
    wake_up("same instance (create start -> reader has it)", &lat);
    let other = Crm::new(peer, CrmConfig::default());
    let reader_actor = other
        .actor(actor.workspace_id(), actor.user_id())
        .await
        .unwrap();
    let lat = wake_latency(&other, &crm, &reader_actor, 200).await;
    wake_up("writer on another instance", &lat);
}

fn main() {
    let rt = crm_benches::runtime();
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let redb = crm_store_redb::RedbStore::open(dir.path().join("feed.redb")).expect("redb");
        let redb: Arc<dyn Storage> = Arc::new(redb);
        run("redb", redb.clone(), redb).await;
        let db = crm_store_postgres::testing::TestDatabase::create().await;
        let a: Arc<dyn Storage> = Arc::new(db.store().await);
        let b: Arc<dyn Storage> = Arc::new(db.store().await);
        run("postgres", a, b).await;
    });
}
