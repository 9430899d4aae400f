//! Erasure, checked below the API: after the conformance suite's erasure story, no row of any
//! table of the database (records, indexes' source columns, search vectors, unique values,
//! the audit log, the change feed, recently viewed, the access log, ...) holds any of the
//! story's markers; only the audit log, the feed and the security events (the erasure and
//! export events) still name the erased id.

use std::sync::Arc;

use crm_core::testkit::Fixture;
use crm_core::testkit::privacy_suite::{MARKERS, erasure_story};
use crm_store_postgres::testing::{TestDatabase, texts};

#[test]
fn erased_contact_is_in_no_table() {
    crm_core::testkit::run(async {
        let db = TestDatabase::create().await;
        let store = Arc::new(db.store().await);
        let pool = store.pool().clone();
        let f = Fixture::new(store);
        // Before: the markers are stored (so the scan below can see them).
        let tables: Vec<String> = texts(
            &pool,
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() \
             AND tablename <> '_sqlx_migrations'",
            None,
        )
        .await;
        assert!(tables.iter().any(|t| t == "crm_contact"));
        assert!(tables.iter().any(|t| t == "crm_audit"));
        let story = erasure_story(&f).await;
        let mut scanned = 0;
        for t in &tables {
            // Every row of the table as text, lowercased; the table name is from the catalog.
            let rows: Vec<String> = texts(
                &pool,
                &format!("SELECT lower(x::text) FROM \"{t}\" AS x"),
                None,
            )
            .await;
            scanned += rows.len();
            for row in rows {
                for m in MARKERS {
                    assert!(!row.contains(m), "{t} still holds {m}: {row}");
                }
                assert!(
                    !row.contains(&story.contact.uuid().to_string())
                        || t == "crm_audit"
                        || t == "crm_feed"
                        || t == "crm_security_events",
                    "{t} still names the erased id: {row}"
                );
            }
        }
        assert!(scanned > 20, "only {scanned} rows scanned");
        drop(f);
    });
}
