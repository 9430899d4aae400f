//! The PostgreSQL store at scale — 1M contacts, 100k companies, 200k deals, 500k tasks — each
//! operation beside the raw SQL floor it rests on, measured in the same run with `pgbench`.
//!
//! 1. **Seed** (once; reused while the database `crm_bench_scale` exists and is complete):
//!    the volume above (plus 100k notes) written through the store's own commits
//!    (`crm_core::demo`), then `ANALYZE`. The seed time is printed.
//! 2. **Engine**: through `Crm` as a host calls it — get a contact by id (random ids), list
//!    100 tasks (by due date, and one owner's), search contacts for a narrow word
//!    (`okafor`), a unique email part, and one- and two-letter prefixes (`a`, `jo`). Each
//!    call timed one by one: p50/p95/p99.
//! 3. **Floor**: the store's own SQL for the same operations run by `pgbench` (one client,
//!    per-transaction log) against the same database: p50/p95/p99 from the log.
//!
//! Needs `pgbench` (Debian: `postgresql-contrib`/`postgresql-client`) and a server reachable as
//! the store's tests find one (`CRM_TEST_DATABASE_URL`, else 127.0.0.1:5432). Run with
//! `cargo bench -p crm-benches --bench postgres_scale`; `CRM_BENCH_SCALE=0.1` seeds a tenth.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_benches::{Percentiles, ms};
use crm_core::demo::seed;
use crm_core::id::Id;
use crm_core::{Actor, Crm, CrmConfig, ListParams};
use crm_store_postgres::{PgOptions, PgStore};
use sqlx::Row;

const DB: &str = "crm_bench_scale";
const SAMPLES: usize = 400;

fn admin_url() -> String {
    std::env::var("CRM_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn db_url() -> String {
    let admin = admin_url();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{DB}")
}

/// Time `f` `SAMPLES` times (after 20 warm-up calls).
async fn time<F, Fut>(mut f: F) -> Percentiles
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for i in 0..20 {
        f(i).await;
    }
    let mut samples = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let t = Instant::now();
        f(i).await;
        samples.push(t.elapsed());
    }
    Percentiles::of(&mut samples).expect("samples")
}

/// Runs `sql` with pgbench (1 client, `SAMPLES` transactions, per-transaction log) and
/// returns the latency percentiles from the log.
fn pgbench(name: &str, sql: &str) -> Percentiles {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join(format!("{name}.sql"));
    std::fs::write(&script, sql).expect("write script");
    let url = db_url();
    let out = Command::new("pgbench")
        .current_dir(dir.path())
        .args([
            "-n",
            "-c",
            "1",
            "-t",
            &SAMPLES.to_string(),
            "-M",
            "prepared",
            "-l",
        ])
        .arg("-f")
        .arg(&script)
        .arg(&url)
        .output()
        .expect("run pgbench (install postgresql-client)");
    assert!(
        out.status.success(),
        "pgbench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut samples = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("read log dir") {
        let path = entry.expect("entry").path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("pgbench_log"))
        {
            for line in std::fs::read_to_string(&path).expect("log").lines() {
                // client_id transaction_no time_us script_no time_epoch time_us_part
                if let Some(us) = line.split_whitespace().nth(2).and_then(|v| v.parse().ok()) {
                    samples.push(Duration::from_micros(us));
                }
            }
        }
    }
    Percentiles::of(&mut samples).expect("pgbench log samples")
}

fn row(name: &str, engine: Percentiles, floor: Percentiles) {
    println!(
        "| {name} | {} | {} | {} | {} | {} | {} | {:.2}x |",
        ms(engine.p50),
        ms(engine.p95),
        ms(engine.p99),
        ms(floor.p50),
        ms(floor.p95),
        ms(floor.p99),
        engine.p95.as_secs_f64() / floor.p95.as_secs_f64()
    );
}

async fn setup() -> (Crm, Actor, Vec<uuid::Uuid>, Id<crm_core::model::User>) {
    let admin = sqlx::PgPool::connect(&admin_url()).await.expect("admin");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(DB)
            .fetch_one(&admin)
            .await
            .expect("query");
    let store = if exists {
        PgStore::connect(PgOptions::new(db_url()))
            .await
            .expect("connect")
    } else {
        sqlx::query(&format!("CREATE DATABASE {DB}"))
            .execute(&admin)
            .await
            .expect("create database");
        PgStore::connect(PgOptions::new(db_url()))
            .await
            .expect("connect")
    };
    let crm = Crm::new(Arc::new(store.clone()), CrmConfig::default());
    let pool = store.pool();
    let ready: Option<String> =
        sqlx::query_scalar("SELECT obj_description('crm_contact'::regclass, 'pg_class')")
            .fetch_one(pool)
            .await
            .expect("comment");
    let v = crm_benches::scaled_volume();
    let marker = format!("bench seed {v:?}");
    if ready.as_deref() != Some(marker.as_str()) {
        // Start from scratch: drop and recreate the database.
        store.close().await;
        sqlx::query(&format!("DROP DATABASE {DB} WITH (FORCE)"))
            .execute(&admin)
            .await
            .expect("drop");
        sqlx::query(&format!("CREATE DATABASE {DB}"))
            .execute(&admin)
            .await
            .expect("create");
        let store = PgStore::connect(PgOptions::new(db_url()))
            .await
            .expect("connect");
        let crm = Crm::new(Arc::new(store.clone()), CrmConfig::default());
        let (actor, owners) = crm_core::demo::workspace(&crm, "Scale", "scale.test", 9)
            .await
            .expect("workspace and users");
        let t = Instant::now();
        seed(&store, actor.workspace_id(), &owners, v, 42)
            .await
            .expect("seed");
        println!("seeded {v:?} in {:.0} s", t.elapsed().as_secs_f64());
        store.analyze().await.expect("analyze");
        sqlx::query(&format!("COMMENT ON TABLE crm_contact IS '{marker}'"))
            .execute(store.pool())
            .await
            .expect("mark");
        store.close().await;
        return Box::pin(setup()).await;
    }
    let (ws, admin_id): (uuid::Uuid, uuid::Uuid) = {
        let r = sqlx::query("SELECT workspace_id, id FROM crm_user WHERE k_email = $1")
            .bind(crm_store_postgres::schema::encode_key(
                &crm_core::query::Value::Text("admin@scale.test".into()),
            ))
            .fetch_one(pool)
            .await
            .expect("admin user");
        (r.get(0), r.get(1))
    };
    let actor = crm
        .actor(Id::from_uuid(ws), Id::from_uuid(admin_id))
        .await
        .expect("actor");
    let ids: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM crm_contact TABLESAMPLE SYSTEM (1) LIMIT 1000")
            .fetch_all(pool)
            .await
            .expect("sample ids");
    sqlx::query("DROP TABLE IF EXISTS bench_ids")
        .execute(pool)
        .await
        .expect("drop ids");
    sqlx::query("CREATE TABLE bench_ids (n int PRIMARY KEY, id uuid NOT NULL)")
        .execute(pool)
        .await
        .expect("ids table");
    sqlx::query("INSERT INTO bench_ids SELECT ord::int, id FROM UNNEST($1::uuid[]) WITH ORDINALITY AS u(id, ord)")
        .bind(&ids)
        .execute(pool)
        .await
        .expect("ids");
    (crm, actor, ids, Id::from_uuid(admin_id))
}

fn main() {
    let rt = crm_benches::runtime();
    rt.block_on(async {
        let (crm, actor, ids, admin_id) = setup().await;
        let ws = actor.workspace_id().uuid();
        let counts = sqlx::query(
            "SELECT (SELECT count(*) FROM crm_contact), (SELECT count(*) FROM crm_company), \
             (SELECT count(*) FROM crm_deal), (SELECT count(*) FROM crm_task)",
        )
        .fetch_one(
            &sqlx::PgPool::connect(&db_url()).await.expect("pool"),
        )
        .await
        .expect("counts");
        println!(
            "contacts {} companies {} deals {} tasks {}",
            counts.get::<i64, _>(0),
            counts.get::<i64, _>(1),
            counts.get::<i64, _>(2),
            counts.get::<i64, _>(3)
        );
        println!("| operation | engine p50 | p95 | p99 | SQL floor p50 | p95 | p99 | p95 ratio |");
        println!("|---|---|---|---|---|---|---|---|");
        let ws_lit = format!("'{ws}'::uuid");

        // Get one contact by id.
        let engine = time(|i| {
            let (crm, actor) = (crm.clone(), actor.clone());
            let id = Id::from_uuid(ids[i % ids.len()]);
            async move {
                crm.contacts().get(&actor, id).await.expect("get");
            }
        })
        .await;
        let floor = pgbench(
            "get",
            &format!(
                "\\set n random(1, {})\nSELECT data::text FROM crm_contact WHERE workspace_id = {ws_lit} AND id = (SELECT id FROM bench_ids WHERE n = :n);\n",
                ids.len()
            ),
        );
        row("get contact by id", engine, floor);

        // List 100 tasks by due date, everyone's and one owner's.
        let engine = time(|_| {
            let (crm, actor) = (crm.clone(), actor.clone());
            async move {
                let p = ListParams::new().limit(100).sort("due_date");
                assert_eq!(crm.tasks().list(&actor, &p).await.expect("list").data.len(), 100);
            }
        })
        .await;
        let floor = pgbench(
            "tasks",
            &format!("SELECT data::text FROM crm_task WHERE workspace_id = {ws_lit} AND NOT deleted ORDER BY k_due_date ASC, id ASC LIMIT 101;\n"),
        );
        row("list 100 tasks (due date)", engine, floor);
        let owner_key = crm_store_postgres::schema::encode_key(&crm_core::query::Value::Id(
            admin_id.uuid(),
        ));
        let owner_hex: String = owner_key.iter().map(|b| format!("{b:02x}")).collect();
        let engine = time(|_| {
            let (crm, actor) = (crm.clone(), actor.clone());
            async move {
                let p = ListParams::new()
                    .limit(100)
                    .sort("due_date")
                    .filter("owner_id", admin_id.uuid().to_string());
                crm.tasks().list(&actor, &p).await.expect("list");
            }
        })
        .await;
        let floor = pgbench(
            "owner_tasks",
            &format!("SELECT data::text FROM crm_task WHERE workspace_id = {ws_lit} AND NOT deleted AND k_owner_id = '\\x{owner_hex}'::bytea ORDER BY k_due_date ASC, id ASC LIMIT 101;\n"),
        );
        row("list 100 tasks of one owner", engine, floor);

        // Search contacts (default sort: last_seen desc, 25 a page).
        // The floor of a search is the store's own statements for it, in pgbench: the
        // windowed walk (dense matches end there); for sparse matches also the exhaustion
        // check and the index-collected matches (bitmap scans only), as the store runs them.
        let window = |cond: &str| {
            format!(
                "SELECT data::text FROM (SELECT data, words, points, k_last_seen, id FROM crm_contact \
                 WHERE workspace_id = {ws_lit} AND NOT deleted ORDER BY k_last_seen DESC, id DESC LIMIT 2048) AS w \
                 WHERE {cond} ORDER BY k_last_seen DESC, id DESC LIMIT 26;\n"
            )
        };
        let sparse = |cond: &str| {
            format!(
                "{}SELECT count(*) < 2048 FROM (SELECT 1 FROM crm_contact WHERE workspace_id = {ws_lit} \
                 AND NOT deleted ORDER BY k_last_seen DESC, id DESC LIMIT 2048) AS w;\n\
                 BEGIN;\nSET LOCAL enable_indexscan = off;\nSET LOCAL enable_seqscan = off;\n\
                 SELECT data::text FROM crm_contact WHERE workspace_id = {ws_lit} AND NOT deleted AND {cond} \
                 ORDER BY k_last_seen DESC, id DESC LIMIT 26;\nCOMMIT;\n",
                window(cond)
            )
        };
        for (label, q, cond, dense) in [
            ("search narrow word `okafor` (~2% of contacts)", "okafor", "(words @@ '''okafor'':*'::tsquery OR points LIKE '%okafor%')", true),
            ("search rare email part `okafor12345` (no match)", "okafor12345", "(words @@ '''okafor12345'':*'::tsquery OR points LIKE '%okafor12345%')", false),
            ("search two terms `xavier okafor` (~0.04%)", "xavier okafor", "((words @@ '''xavier'':* & ''okafor'':*'::tsquery) OR (words @@ '''okafor'':*'::tsquery AND points LIKE '%xavier%') OR (words @@ '''xavier'':*'::tsquery AND points LIKE '%okafor%') OR (points LIKE '%xavier%' AND points LIKE '%okafor%'))", false),
            ("search one letter `a`", "a", "words @@ '''a'':*'::tsquery", true),
            ("search two letters `jo`", "jo", "words @@ '''jo'':*'::tsquery", true),
        ] {
            let engine = time(|_| {
                let (crm, actor) = (crm.clone(), actor.clone());
                async move {
                    crm.contacts()
                        .list(&actor, &ListParams::new().q(q))
                        .await
                        .expect("search");
                }
            })
            .await;
            let script = if dense { window(cond) } else { sparse(cond) };
            let floor = pgbench("search", &script);
            row(label, engine, floor);
        }
    });
}
