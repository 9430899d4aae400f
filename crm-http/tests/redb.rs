//! The HTTP suite on the embedded redb store: one fresh file per test.

mod suite;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crm_store_redb::RedbStore;

fn redb() -> Pin<Box<dyn Future<Output = suite::StoreHandle> + Send>> {
    Box::pin(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = RedbStore::open(dir.path().join("crm.redb")).expect("open store");
        suite::StoreHandle {
            storage: Arc::new(store),
            guard: Box::new(dir),
        }
    })
}

http_suite!(redb);
