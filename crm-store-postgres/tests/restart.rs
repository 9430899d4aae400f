//! The database server crashes and restarts (`pg_ctl restart -m immediate`) while several
//! tasks create contacts through one store: calls caught by it fail with a coded
//! `StorageUnavailable`, nothing acknowledged is lost, nothing is half-written, and the same
//! store works again afterwards by itself. Runs on a throwaway cluster of its own (it must
//! restart the server).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crm_core::model::ContactInput;
use crm_core::testkit::setup::{bootstrap, email};
use crm_core::{Crm, CrmConfig, ErrorKind, Storage};
use crm_store_postgres::testing::ThrowawayCluster;
use crm_store_postgres::{PgOptions, PgStore};

#[test]
fn a_server_crash_mid_workload_gives_coded_errors_loses_nothing_and_recovers() {
    let cluster = ThrowawayCluster::start().expect("start a throwaway cluster");
    let url = cluster.url().to_string();
    crm_core::testkit::run(async move {
        let store = PgStore::connect(
            PgOptions::new(&url)
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(2)),
        )
        .await
        .unwrap();
        let crm = Crm::new(Arc::new(store.clone()), CrmConfig::default());
        let (_, actor) = bootstrap(&crm, "Restart", email("admin@restart.test")).await;

        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = tokio::task::JoinSet::new();
        for w in 0..4 {
            let (crm, actor, stop) = (crm.clone(), actor.clone(), stop.clone());
            workers.spawn(async move {
                let (mut acknowledged, mut errors, mut after_error) = (Vec::new(), Vec::new(), 0);
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let input = ContactInput {
                        first_name: format!("Worker{w}"),
                        last_name: format!("Number{n}"),
                        ..Default::default()
                    };
                    match crm.contacts().create(&actor, input).await {
                        Ok(c) => {
                            acknowledged.push(c.id);
                            if !errors.is_empty() {
                                after_error += 1;
                            }
                        }
                        Err(e) => {
                            errors.push(e.kind());
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
                (acknowledged, errors, after_error)
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let cluster = tokio::task::spawn_blocking(move || {
            cluster.crash_and_restart().expect("restart");
            cluster
        })
        .await
        .unwrap();
        // The workers go on against the restarted server for a while.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        stop.store(true, Ordering::Relaxed);
        let (mut acknowledged, mut errors, mut recovered) = (Vec::new(), Vec::new(), 0);
        while let Some(r) = workers.join_next().await {
            let (a, e, after) = r.unwrap();
            acknowledged.extend(a);
            errors.extend(e);
            recovered += after;
        }
        assert!(!errors.is_empty(), "the crash failed no call");
        for kind in &errors {
            assert_eq!(*kind, ErrorKind::StorageUnavailable, "{errors:?}");
        }
        assert!(recovered > 0, "no write succeeded after the restart");

        // Nothing acknowledged is lost, nothing is half-written.
        store.ping().await.unwrap();
        for id in &acknowledged {
            crm.contacts().get(&actor, *id).await.unwrap();
        }
        let pool = store.pool();
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM crm_contact")
            .fetch_one(pool)
            .await
            .unwrap();
        assert!(stored >= acknowledged.len() as i64);
        assert!(stored <= (acknowledged.len() + errors.len()) as i64);
        let unaudited: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM crm_contact c WHERE NOT EXISTS (SELECT 1 FROM crm_audit a \
             WHERE a.workspace_id = c.workspace_id AND a.record_id = c.id)",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(unaudited, 0, "contacts without their audit entry");
        println!(
            "{} creates acknowledged, {} failed during the crash, {recovered} after it",
            acknowledged.len(),
            errors.len()
        );
        store.close().await;
        drop(cluster);
    });
}
