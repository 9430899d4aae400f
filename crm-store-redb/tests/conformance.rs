//! The `crm-core` conformance suite, run against [`RedbStore`]: one fresh file per test.

use std::sync::Arc;

use crm_core::testkit::Fixture;
use crm_store_redb::RedbStore;

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RedbStore::open(dir.path().join("crm.redb")).expect("open store");
    Fixture::with_guard(Arc::new(store), dir)
}

crm_core::conformance_tests!(fixture);
