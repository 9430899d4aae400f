//! The last resort of the test setup: with no server to use, tests start their own cluster
//! with the installed `initdb`/`pg_ctl`. This starts one, runs the store on it, and checks
//! that dropping it stops the server and removes its directory.

use crm_core::Storage;
use crm_store_postgres::testing::ThrowawayCluster;
use crm_store_postgres::{PgOptions, PgStore};

#[test]
fn a_throwaway_cluster_serves_the_store_and_disappears_when_dropped() {
    let cluster = ThrowawayCluster::start().expect("start a throwaway cluster");
    let url = cluster.url().to_string();
    let dir = cluster.dir().to_path_buf();
    assert!(dir.exists());
    crm_core::testkit::run(async {
        let store = PgStore::connect(PgOptions::new(&url)).await.unwrap();
        store.ping().await.unwrap();
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'crm_contact'",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(tables, 1, "migrated");
        store.close().await;
    });
    drop(cluster);
    assert!(!dir.exists(), "directory removed");
    crm_core::testkit::run(async {
        let e = PgStore::connect(
            PgOptions::new(&url).acquire_timeout(std::time::Duration::from_millis(300)),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), crm_core::ErrorKind::StorageUnavailable);
    });
}
