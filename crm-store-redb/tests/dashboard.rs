//! The dashboard tables of a file written before them: a format-2 file is upgraded on open,
//! its figures built from its records.

use std::sync::Arc;

use crm_core::Storage;
use crm_core::dashboard::DashboardQuery;
use crm_core::testkit::dashboard_suite::{assert_matches_recount, workload_figures};
use crm_core::testkit::suite::world;
use crm_core::testkit::{Fixture, run};
use crm_store_redb::RedbStore;
use redb::{ReadableDatabase, TableDefinition};

const META: TableDefinition<&str, u64> = TableDefinition::new("crm_meta");

#[test]
fn format_2_files_are_upgraded_with_their_figures() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crm.redb");
        let store = RedbStore::open(&path).unwrap();
        let (ws, users, before) = {
            let f = Fixture::new(Arc::new(store.clone()));
            workload_figures(&store, &world(&f).await).await
        };
        store.close().await.unwrap();
        drop(store);

        // What a format-2 file looks like: no dashboard tables.
        {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.delete_table(TableDefinition::<&[u8], &[u8]>::new("crm_tally"))
                .unwrap();
            txn.delete_table(TableDefinition::<&[u8], ()>::new("crm_dashboard"))
                .unwrap();
            txn.open_table(META)
                .unwrap()
                .insert("format_version", 2)
                .unwrap();
            txn.commit().unwrap();
        }

        let store = RedbStore::open(&path).unwrap();
        for (u, expected) in users.iter().zip(&before) {
            let got = store.dashboard(ws, &DashboardQuery::of(*u)).await.unwrap();
            assert_eq!(&got, expected, "figures of {u} after the upgrade");
        }
        assert_matches_recount(&store, ws, &users).await;
        store.close().await.unwrap();
        drop(store);
        let db = redb::Database::create(&path).unwrap();
        let version = db
            .begin_read()
            .unwrap()
            .open_table(META)
            .unwrap()
            .get("format_version")
            .unwrap()
            .map(|v| v.value());
        assert_eq!(version, Some(crm_store_redb::FORMAT_VERSION));
    });
}
