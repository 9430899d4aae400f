//! The change feed's cost on a durable create: this binary, built with and without the
//! feed (the `bench-no-feed` feature), times contact creates through the engine on redb and
//! PostgreSQL; `benches/load/feed-ab.sh` builds both variants and runs them alternately,
//! then reports medians and the ratio. Everything else — the dashboard tallies, the audit
//! entry, the indexes — is in both.
//!
//! * **one at a time**: 500 creates, each awaited before the next (each one its own durable
//!   commit: an fsync on redb, a `COMMIT` on PostgreSQL): mean latency;
//! * **64 at once**: 6,400 creates from 64 tasks (group commit on redb, 10 pooled connections
//!   on PostgreSQL): creates per second.
//!
//! Prints `RESULT <variant> <store> <metric> <value>` lines.

use std::sync::Arc;
use std::time::Instant;

use crm_core::feed::Position;
use crm_core::model::ContactInput;
use crm_core::{Actor, Crm, CrmConfig, Storage};

const VARIANT: &str = if cfg!(feature = "bench-no-feed") {
    "no-feed"
} else {
    "feed"
};

fn contact(i: usize) -> ContactInput {
    ContactInput {
        first_name: format!("First{i}"),
        last_name: format!("Last{i}"),
        title: Some("Buyer".into()),
        ..Default::default()
    }
}

async fn run(name: &str, storage: Arc<dyn Storage>) {
    let crm = Crm::new(storage.clone(), CrmConfig::default());
    let (actor, _) = crm_core::demo::workspace(&crm, "AB", "ab.test", 0)
        .await
        .expect("workspace");
    let create = |crm: Crm, actor: Actor, i: usize| async move {
        crm.contacts()
            .create(&actor, contact(i))
            .await
            .expect("create");
    };
    for i in 0..200 {
        create(crm.clone(), actor.clone(), i).await;
    }
    // The variant is what it says.
    let fed = !storage
        .changes(actor.workspace_id(), Position::ZERO, 1)
        .await
        .expect("feed")
        .entries
        .is_empty();
    assert_eq!(fed, VARIANT == "feed", "{VARIANT} build");

    let n = 500;
    let started = Instant::now();
    for i in 0..n {
        create(crm.clone(), actor.clone(), 1_000 + i).await;
    }
    let mean_us = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("RESULT {VARIANT} {name} create_one_at_a_time_mean_us {mean_us:.1}");

    let (tasks, per) = (64, 100);
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let (crm, actor) = (crm.clone(), actor.clone());
        set.spawn(async move {
            for i in 0..per {
                create(crm.clone(), actor.clone(), 100_000 + t * per + i).await;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("task");
    }
    let rate = (tasks * per) as f64 / started.elapsed().as_secs_f64();
    println!("RESULT {VARIANT} {name} create_64_at_once_per_s {rate:.0}");
}

fn main() {
    let rt = crm_benches::runtime();
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let redb = crm_store_redb::RedbStore::open(dir.path().join("ab.redb")).expect("redb");
        run("redb", Arc::new(redb)).await;
        let db = crm_store_postgres::testing::TestDatabase::create().await;
        run("postgres", Arc::new(db.store().await)).await;
    });
}
