//! The conformance suite against the in-memory reference store: checks the core's rules
//! independently of any real backend.

use std::sync::Arc;

use crm_core::testkit::{Fixture, MemoryStore};

async fn fixture() -> Fixture {
    Fixture::new(Arc::new(MemoryStore::new()))
}

crm_core::conformance_tests!(fixture);
