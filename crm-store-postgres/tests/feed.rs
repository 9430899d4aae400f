//! The change feed under concurrent writers on several connection pools (several instances
//! of the host application on one database), and what migration 0003 does to records that
//! predate the feed.

use std::sync::Arc;

use crm_core::Storage;
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
