//! Single-record operations and a 100-task list through `crm-core` on `crm-store-redb`, each
//! beside the raw redb operation it rests on, in the same process:
//!
//! | group | engine | raw floor |
//! |---|---|---|
//! | `create_contact` | `crm.contacts().create` (durable) | one write txn, one insert, commit; and the same txn writing everything the store writes for a create (record, index keys, search words, audit entry, counters: [`StoreShapedInsert`]) |
//! | `get_contact` | `crm.contacts().get` | one read txn, one get — inline and in `spawn_blocking` |
//! | `update_contact` | `crm.contacts().update` (durable) | one write txn, one overwrite, commit |
//! | `list_100_tasks` | `crm.tasks().list(limit 100)` | one read txn, a 100-value range scan — inline and in `spawn_blocking` |
//!
//! The raw values are the very bytes the store keeps for the record (its JSON), so both sides
//! move the same data. After criterion's groups, every comparison runs again *interleaved*
//! (each round times each variant back to back) and prints medians, p95 and p99 with the
//! engine/raw ratio of the medians: on a shared disk whose fsync latency drifts, that ratio is
//! the trustworthy one. Run with `cargo bench -p crm-benches --bench core_vs_redb`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crm_benches::{CoreFixture, Percentiles, Rng, StoreShapedInsert, contact_input, ms, raw_key};
use crm_core::ListParams;
use crm_core::model::{ContactPatch, Entity, Priority, TaskInput};
use uuid::Uuid;

mod common;
use common::{criterion, raw_scans, runtime};

/// Tasks in the workspace for the list benchmark (the page is the first 100 by due date).
const TASKS: usize = 1_000;

fn main() {
    let rt = runtime();
    let fx = rt.block_on(CoreFixture::new());
    let raw = fx.raw_table("raw.redb");
    let (crm, actor) = (&fx.crm, &fx.actor);
    let mut rng = Rng::new(42);

    // A contact to read and update, and its stored bytes for the raw side.
    let contact = rt
        .block_on(crm.contacts().create(actor, contact_input(&mut rng, &[])))
        .expect("create contact");
    let bytes = contact
        .clone()
        .into_record()
        .to_json_bytes()
        .expect("record JSON");
    let key = raw_key(contact.id.uuid());
    raw.insert(&key, &bytes);
    // The same create as raw key/values in the store's table layout (separate file, so the
    // single-insert floor's table stays as small as the engine's).
    let shaped = StoreShapedInsert::of(&contact.clone().into_record(), Some(actor.user_id()));
    let shaped_raw = fx.raw_table("shaped.redb");
    println!(
        "contact value: {} bytes of JSON; a store-shaped create writes {} key/values",
        bytes.len(),
        shaped.entries()
    );

    let mut c = criterion();

    {
        let mut g = c.benchmark_group("create_contact");
        g.bench_function("core", |b| {
            b.to_async(&rt).iter(|| {
                let input = contact_input(&mut Rng::new(7), &[]);
                async move { crm.contacts().create(actor, input).await.expect("create") }
            })
        });
        g.bench_function("raw_redb", |b| {
            b.iter(|| raw.insert(&raw_key(Uuid::now_v7()), black_box(&bytes)))
        });
        g.bench_function("raw_redb_store_shaped", |b| {
            b.iter(|| shaped_raw.insert_store_shaped(black_box(&shaped), Uuid::now_v7()))
        });
        g.finish();
    }

    {
        let mut g = c.benchmark_group("get_contact");
        g.bench_function("core", |b| {
            b.to_async(&rt)
                .iter(|| async { crm.contacts().get(actor, contact.id).await.expect("get") })
        });
        g.bench_function("raw_redb_inline", |b| {
            b.iter(|| raw.get(black_box(&key)).expect("present"))
        });
        g.bench_function("raw_redb_spawn_blocking", |b| {
            b.to_async(&rt).iter(|| {
                let (raw, key) = (raw.clone(), key.clone());
                async move {
                    tokio::task::spawn_blocking(move || raw.get(&key).expect("present"))
                        .await
                        .expect("join")
                }
            })
        });
        g.finish();
    }

    {
        let mut g = c.benchmark_group("update_contact");
        let version = AtomicU64::new(contact.version);
        let n = AtomicU64::new(0);
        g.bench_function("core", |b| {
            b.to_async(&rt).iter(|| async {
                let patch = ContactPatch {
                    title: Some(Some(format!("Title {}", n.fetch_add(1, Ordering::Relaxed)))),
                    ..Default::default()
                };
                let v = version.load(Ordering::Relaxed);
                let updated = crm
                    .contacts()
                    .update(actor, contact.id, v, patch)
                    .await
                    .expect("update");
                version.store(updated.version, Ordering::Relaxed);
            })
        });
        g.bench_function("raw_redb", |b| {
            b.iter(|| raw.insert(black_box(&key), black_box(&bytes)))
        });
        g.finish();
    }

    // A workspace with TASKS tasks; the engine lists the first 100 by due date, the raw side
    // scans 100 consecutive task values.
    let today = crm.now();
    rt.block_on(async {
        for i in 0..TASKS {
            crm.tasks()
                .create(
                    actor,
                    TaskInput {
                        text: format!("Follow up with lead #{i} about the renewal"),
                        task_type: Some("Call".into()),
                        due_date: Some(
                            today
                                .plus(Duration::from_secs(3600 * (i as u64 % 500)))
                                .date(),
                        ),
                        priority: Some(Priority::Medium),
                        ..Default::default()
                    },
                )
                .await
                .expect("create task");
        }
    });
    let page = rt
        .block_on(crm.tasks().list(actor, &ListParams::new().limit(100)))
        .expect("list");
    assert_eq!(page.data.len(), 100);
    let task_raw = fx.raw_table("tasks.redb");
    let all_tasks: Vec<(Vec<u8>, Vec<u8>)> = page
        .data
        .iter()
        .cycle()
        .take(TASKS)
        .map(|t| {
            (
                raw_key(Uuid::now_v7()),
                t.clone()
                    .into_record()
                    .to_json_bytes()
                    .expect("record JSON"),
            )
        })
        .collect();
    task_raw.insert_many(all_tasks);
    let start = raw_key(Uuid::nil());

    {
        let mut g = c.benchmark_group("list_100_tasks");
        let params = ListParams::new().limit(100);
        g.bench_function("core", |b| {
            b.to_async(&rt).iter(|| async {
                let page = crm.tasks().list(actor, &params).await.expect("list");
                assert_eq!(page.data.len(), 100);
                page
            })
        });
        raw_scans(&mut g, &rt, &task_raw, &start, 100, "raw_redb");
        g.finish();
    }

    c.final_summary();

    // Interleaved medians: the shared disk's fsync latency drifts a lot within seconds, so
    // criterion's groups (seconds apart) can compare an engine op measured in a slow patch
    // with a raw op measured in a fast one. Here each round times every variant back to
    // back (order alternating), and the medians are compared.
    println!();
    println!("interleaved rounds (each round times every variant back to back)");
    println!(
        "{:<42} {:>6} {:>10} {:>10} {:>10}  p50 ratio engine / this",
        "operation", "rounds", "p50", "p95", "p99"
    );
    rt.block_on(async {
        let mut rng = Rng::new(9);
        let shaped = &shaped;

        // Durable creates.
        let mut t = [vec![], vec![], vec![]];
        for round in 0..DURABLE_ROUNDS {
            let input = contact_input(&mut rng, &[]);
            let raw_one = || timed(|| raw.insert(&raw_key(Uuid::now_v7()), &bytes));
            let raw_shaped = || timed(|| shaped_raw.insert_store_shaped(shaped, Uuid::now_v7()));
            if round % 2 == 1 {
                t[1].push(raw_one());
                t[2].push(raw_shaped());
            }
            let started = Instant::now();
            crm.contacts().create(actor, input).await.expect("create");
            t[0].push(started.elapsed());
            if round % 2 == 0 {
                t[1].push(raw_one());
                t[2].push(raw_shaped());
            }
        }
        report(
            "create_contact",
            &mut t,
            &["core", "raw_redb (1 insert)", "raw_redb_store_shaped"],
        );

        // Durable updates of one contact.
        let mut current = crm.contacts().get(actor, contact.id).await.expect("get");
        let mut t = [vec![], vec![]];
        for round in 0..DURABLE_ROUNDS {
            let patch = ContactPatch {
                title: Some(Some(format!("Interleaved {round}"))),
                ..Default::default()
            };
            if round % 2 == 1 {
                t[1].push(timed(|| raw.insert(&key, &bytes)));
            }
            let started = Instant::now();
            current = crm
                .contacts()
                .update(actor, current.id, current.version, patch)
                .await
                .expect("update");
            t[0].push(started.elapsed());
            if round % 2 == 0 {
                t[1].push(timed(|| raw.insert(&key, &bytes)));
            }
        }
        report(
            "update_contact",
            &mut t,
            &["core", "raw_redb (1 overwrite)"],
        );

        // Reads by id.
        let mut t = [vec![], vec![], vec![]];
        for _ in 0..READ_ROUNDS {
            let started = Instant::now();
            crm.contacts().get(actor, contact.id).await.expect("get");
            t[0].push(started.elapsed());
            t[1].push(timed(|| {
                black_box(raw.get(&key));
            }));
            let (r, k) = (raw.clone(), key.clone());
            t[2].push(timed_blocking(move || r.get(&k)).await);
        }
        report(
            "get_contact",
            &mut t,
            &["core", "raw_redb_inline", "raw_redb_spawn_blocking"],
        );

        // A page of 100 tasks.
        let params = ListParams::new().limit(100);
        let mut t = [vec![], vec![], vec![]];
        for _ in 0..READ_ROUNDS {
            let started = Instant::now();
            let page = crm.tasks().list(actor, &params).await.expect("list");
            t[0].push(started.elapsed());
            assert_eq!(page.data.len(), 100);
            t[1].push(timed(|| {
                black_box(task_raw.scan(&start, 100));
            }));
            let (r, s) = (task_raw.clone(), start.clone());
            t[2].push(timed_blocking(move || r.scan(&s, 100)).await);
        }
        report(
            "list_100_tasks",
            &mut t,
            &["core", "raw_redb_inline", "raw_redb_spawn_blocking"],
        );
    });
}

/// Rounds of the interleaved durable-write comparison.
const DURABLE_ROUNDS: usize = 300;
/// Rounds of the interleaved read comparison.
const READ_ROUNDS: usize = 2_000;

/// How long `f` takes.
fn timed(f: impl FnOnce()) -> Duration {
    let started = Instant::now();
    f();
    started.elapsed()
}

/// How long `f` takes on the blocking pool, the hop there and back included.
async fn timed_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Duration {
    let started = Instant::now();
    tokio::task::spawn_blocking(f).await.expect("join");
    started.elapsed()
}

/// Prints one row per variant; the first variant is the engine, the ratio column divides
/// its median by each variant's.
fn report(op: &str, samples: &mut [Vec<Duration>], names: &[&str]) {
    let stats: Vec<Percentiles> = samples
        .iter_mut()
        .map(|s| Percentiles::of(s).expect("samples"))
        .collect();
    for (p, name) in stats.iter().zip(names) {
        let ratio = stats[0].p50.as_secs_f64() / p.p50.as_secs_f64();
        println!(
            "{:<42} {:>6} {:>10} {:>10} {:>10}  {ratio:.2}",
            format!("{op}/{name}"),
            p.count,
            ms(p.p50),
            ms(p.p95),
            ms(p.p99)
        );
    }
}
