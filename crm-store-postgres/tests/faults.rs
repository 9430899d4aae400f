//! Connection loss: the store's connections are terminated (`pg_terminate_backend`) again and
//! again while several tasks create and update contacts. Calls caught by it fail with a coded
//! `StorageUnavailable`; nothing is half-written (every contact has exactly its audit
//! entries, every acknowledged write is there); and the same store works again afterwards
//! without being rebuilt.

use std::sync::Arc;
use std::time::Duration;

use crm_core::model::{ContactInput, ContactPatch};
use crm_core::{ErrorKind, Storage};
use crm_store_postgres::testing::TestDatabase;
use sqlx::Row;

/// A contact with just a name.
fn person(first_name: String, last_name: String) -> ContactInput {
    ContactInput {
        first_name,
        last_name,
        ..Default::default()
    }
}

#[test]
fn terminated_connections_give_coded_errors_no_partial_writes_and_recovery() {
    crm_core::testkit::run(async {
        let db = TestDatabase::create().await;
        let (store, crm, _, actor) = db.engine("Faults").await;

        let killer_store = db.store().await;
        let db_name = db.name().to_string();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let killer = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut killed = 0_i64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(40)).await;
                    let row = sqlx::query(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                         WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
                    )
                    .bind(&db_name)
                    .fetch_one(killer_store.pool())
                    .await
                    .unwrap();
                    killed += row.get::<i64, _>(0);
                }
                killed
            })
        };

        let mut workers = tokio::task::JoinSet::new();
        for w in 0..6 {
            let (crm, actor) = (crm.clone(), actor.clone());
            workers.spawn(async move {
                let mut acknowledged = Vec::new();
                let mut errors = Vec::new();
                for n in 0..40 {
                    let created = crm
                        .contacts()
                        .create(&actor, person(format!("Worker{w}"), format!("Number{n}")))
                        .await;
                    let c = match created {
                        Ok(c) => c,
                        Err(e) => {
                            errors.push(e.kind());
                            continue;
                        }
                    };
                    let updated = crm
                        .contacts()
                        .update(
                            &actor,
                            c.id,
                            c.version,
                            ContactPatch {
                                title: Some(Some("Updated".into())),
                                ..Default::default()
                            },
                        )
                        .await;
                    match updated {
                        Ok(u) => acknowledged.push((u.id, u.version)),
                        Err(e) => {
                            errors.push(e.kind());
                            acknowledged.push((c.id, c.version));
                        }
                    }
                }
                (acknowledged, errors)
            });
        }
        let mut acknowledged = Vec::new();
        let mut errors = Vec::new();
        while let Some(r) = workers.join_next().await {
            let (a, e) = r.unwrap();
            acknowledged.extend(a);
            errors.extend(e);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let killed = killer.await.unwrap();

        assert!(killed > 0, "the killer terminated no connection");
        assert!(
            !errors.is_empty(),
            "{killed} connections were terminated but no call failed"
        );
        for kind in &errors {
            assert_eq!(*kind, ErrorKind::StorageUnavailable, "{errors:?}");
        }
        // Every acknowledged write is there, at least at the acknowledged version (an update
        // whose COMMIT was cut off may or may not have landed: outcome unknown, never partial).
        for (id, version) in &acknowledged {
            let c = crm.contacts().get(&actor, *id).await.unwrap();
            assert!(c.version >= *version);
        }
        // No partial writes: each contact has exactly one create entry and one update entry
        // per version after the first, and no entry points at a missing contact.
        let pool = store.pool();
        let orphans: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM crm_audit a WHERE a.entity = 4 AND NOT EXISTS \
             (SELECT 1 FROM crm_contact c WHERE c.workspace_id = a.workspace_id AND c.id = a.record_id)",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(orphans, 0, "audit entries without their contact");
        let mismatched: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM crm_contact c WHERE c.version <> \
             (SELECT count(*) FROM crm_audit a WHERE a.workspace_id = c.workspace_id AND a.record_id = c.id)",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(
            mismatched, 0,
            "contacts whose audit entries do not match their versions"
        );
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM crm_contact")
            .fetch_one(pool)
            .await
            .unwrap();
        let acknowledged_creates = acknowledged.len() as i64;
        assert!(stored >= acknowledged_creates);
        assert!(stored <= acknowledged_creates + errors.len() as i64);

        // Recovery: the same store and engine work again, without being rebuilt.
        store.ping().await.unwrap();
        for n in 0..5 {
            crm.contacts()
                .create(&actor, person("After".into(), format!("Recovery{n}")))
                .await
                .unwrap();
        }
        println!(
            "terminated {killed} connections; {} calls failed (all E3001), {} contacts acknowledged",
            errors.len(),
            acknowledged.len()
        );
    });
}
