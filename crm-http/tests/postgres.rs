//! The HTTP suite on the PostgreSQL store: one fresh database per test (found or started as
//! `crm_store_postgres::testing` describes).

mod suite;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crm_store_postgres::testing::TestDatabase;

fn postgres() -> Pin<Box<dyn Future<Output = suite::StoreHandle> + Send>> {
    Box::pin(async {
        let db = TestDatabase::create().await;
        let store = db.store().await;
        suite::StoreHandle {
            storage: Arc::new(store),
            guard: Box::new(db),
        }
    })
}

http_suite!(postgres);
