//! The change feed under concurrent writers on several connection pools (several instances
//! of the host application on one database), and what migration 0003 does to records that
//! predate the feed.

use std::sync::Arc;

use crm_core::Storage;
use crm_core::testkit::setup::{bootstrap, named};
use crm_core::testkit::{feed_suite, run};
use crm_store_postgres::testing::TestDatabase;

/// Eight writers spread over four pools commit while a reader on a fifth polls without
/// pause: every acknowledged change is seen, once, in version order (see
/// `feed_suite::readers_miss_nothing_under_concurrent_writers`).
#[test]
fn readers_miss_nothing_with_writers_on_four_pools() {
    run(async {
        let db = TestDatabase::create().await;
        let mut stores: Vec<Arc<dyn Storage>> = Vec::new();
        for _ in 0..5 {
            stores.push(Arc::new(db.store().await));
        }
        feed_suite::readers_miss_nothing_under_concurrent_writers(stores).await;
    });
}

/// A commit that writes feed entries is announced on the feed's own NOTIFY channel, with its
/// workspace as the payload, to every listener of the database (other instances).
#[test]
fn commits_are_announced_on_the_feed_channel() {
    run(async {
        let db = TestDatabase::create().await;
        let store = db.store().await;
        let mut listener = sqlx::postgres::PgListener::connect_with(store.pool())
            .await
            .unwrap();
        listener
            .listen(crm_store_postgres::feed_signal::CHANNEL)
            .await
            .unwrap();
        let crm = crm_core::Crm::new(Arc::new(store), crm_core::CrmConfig::default());
        let (ws, actor) = bootstrap(&crm, "Signals", named("admin@signals.test", "A", "S")).await;
        crm.contacts()
            .create(
                &actor,
                crm_core::model::ContactInput {
                    first_name: "N".into(),
                    last_name: "S".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let n = tokio::time::timeout(std::time::Duration::from_secs(30), listener.recv())
            .await
            .expect("a notification")
            .unwrap();
        assert_eq!(n.channel(), crm_store_postgres::feed_signal::CHANNEL);
        assert_eq!(n.payload(), ws.id.uuid().to_string());
    });
}
