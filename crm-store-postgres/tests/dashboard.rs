//! Migration 0004 fills the dashboard's tallies of the records already stored: run again on
//! a populated database, it rebuilds exactly the figures the commits maintained.

use std::sync::Arc;

use crm_core::Storage;
use crm_core::dashboard::DashboardQuery;
use crm_core::testkit::dashboard_suite::{assert_matches_recount, workload_figures};
use crm_core::testkit::suite::world;
use crm_core::testkit::{Fixture, run};
use crm_store_postgres::testing::TestDatabase;

#[test]
fn the_migration_fill_agrees_with_the_maintained_figures() {
    run(async {
        let db = TestDatabase::create().await;
        let store = db.store().await;
        let f = Fixture::with_peer(Arc::new(store.clone()), Arc::new(db.store().await), ());
        let (ws, users, before) = workload_figures(&store, &world(&f).await).await;
        sqlx::raw_sql(include_str!("../migrations/0004_dashboard.sql"))
            .execute(store.pool())
            .await
            .unwrap();
        let spread: i64 = sqlx::query_scalar("SELECT count(*) FROM crm_tally WHERE slot <> 0")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(spread, 0, "the fill rebuilt every row");
        for (u, expected) in users.iter().zip(&before) {
            let got = store.dashboard(ws, &DashboardQuery::of(*u)).await.unwrap();
            assert_eq!(&got, expected, "figures of {u} after the fill");
        }
        assert_matches_recount(&store, ws, &users).await;
    });
}
