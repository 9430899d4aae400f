//! The `crm-core` conformance suite, run against [`PgStore`]: one fresh database per test.
//!
//! Each fixture also hands the suite a peer — a second `PgStore` with its own pool on the
//! same database — so the concurrency tests race two instances of the host application.

use std::sync::Arc;

use crm_core::testkit::Fixture;
use crm_store_postgres::testing::TestDatabase;

async fn fixture() -> Fixture {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let peer = db.store().await;
    Fixture::with_peer(Arc::new(store), Arc::new(peer), db)
}

crm_core::conformance_tests!(fixture);
