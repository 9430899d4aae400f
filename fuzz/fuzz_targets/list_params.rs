//! Arbitrary list parameters (as JSON) and cursors: parsing never panics, every refusal is a
//! coded E2xxx error, and every accepted query respects the limits.
#![no_main]

use crm_core::model::EntityKind;
use crm_core::query::{Cursor, ListParams, MAX_LIMIT};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(params) = serde_json::from_slice::<ListParams>(data) {
        for kind in EntityKind::ALL {
            match params.to_query(kind) {
                Ok(q) => {
                    assert!((1..=MAX_LIMIT).contains(&q.limit));
                    assert!(q.filters.len() <= 20);
                    assert!(kind.fields().iter().any(|f| f.sort && f.name == q.sort.field));
                    for f in &q.filters {
                        assert!(kind.fields().iter().any(|s| s.filter && s.name == f.field));
                    }
                    if let Some(s) = &q.search {
                        assert!(!s.terms.is_empty() && s.terms.len() <= crm_core::search::MAX_TERMS);
                    }
                }
                Err(e) => assert!(e.code().starts_with("E2"), "{e:?}"),
            }
        }
    }
    // The bytes as a cursor: refused with InvalidCursor, or a cursor that round-trips.
    if let Ok(text) = std::str::from_utf8(data) {
        let sort = EntityKind::Contact.default_sort();
        match Cursor::decode(text, &sort) {
            Ok(c) => assert_eq!(Cursor::decode(&c.encode(), &sort).unwrap(), c),
            Err(e) => assert_eq!(e.kind(), crm_core::ErrorKind::InvalidCursor),
        }
    }
});
