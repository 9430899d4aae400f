//! Arbitrary contact records (as JSON): validation never panics, and a record it accepts
//! really is within the limits (required names present and short enough, every email and
//! phone well formed).
#![no_main]

use crm_core::Timestamp;
use crm_core::id::WorkspaceId;
use crm_core::model::{Configuration, Contact, Entity};
use crm_core::validate::{is_email, is_phone, limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut contact) = serde_json::from_slice::<Contact>(data) else { return };
    contact.normalize();
    let config = Configuration::defaults(WorkspaceId::generate(), Timestamp::EPOCH);
    let errors = contact.validate(&config);
    for e in &errors {
        assert!(e.code.starts_with("E21"));
    }
    if errors.is_empty() {
        for name in [&contact.first_name, &contact.last_name] {
            assert!(!name.trim().is_empty());
            assert!(name.chars().count() <= limits::SHORT_TEXT);
        }
        assert!(contact.emails.iter().all(|e| is_email(&e.email)));
        assert!(contact.phones.iter().all(|p| is_phone(&p.number)));
        assert!(contact.emails.len() <= limits::LIST_ITEMS && contact.tags.len() <= limits::LIST_ITEMS);
    }
    // Searching it never panics either.
    let _ = crm_core::search::tokens_of(&contact.into_record());
});
