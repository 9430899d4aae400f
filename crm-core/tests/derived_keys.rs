//! `Identity::derive_key`: the keys other layers derive from the JWT secret (crm-http's CSRF
//! key) are the same for every instance and restart that shares the secret, and independent
//! per label and per secret.

use std::sync::Arc;

use crm_core::identity::{Identity, IdentityConfig, Secret};
use crm_core::testkit::MemoryStore;
use crm_core::testkit::identity_suite::CollectingDelivery;
use crm_core::{Crm, CrmConfig};

fn identity(secret: &str) -> Identity {
    let crm = Crm::new(Arc::new(MemoryStore::new()), CrmConfig::default());
    let config = IdentityConfig::new(Secret::new(secret.as_bytes().to_vec()));
    Identity::new(crm, config, Arc::new(CollectingDelivery::default())).unwrap()
}

#[test]
fn derived_keys_depend_on_the_secret_and_the_label_only() {
    const SECRET: &str = "a test secret that is long enough for HS256!";
    // Two processes (each with its own store) sharing the secret derive the same key.
    let a = identity(SECRET);
    let b = identity(SECRET);
    assert_eq!(
        a.derive_key(b"crm-http/csrf/v1"),
        b.derive_key(b"crm-http/csrf/v1")
    );
    // Another label, or another secret: another key.
    assert_ne!(a.derive_key(b"crm-http/csrf/v1"), a.derive_key(b"other/v1"));
    let c = identity("another secret, also long enough for HS256");
    assert_ne!(
        a.derive_key(b"crm-http/csrf/v1"),
        c.derive_key(b"crm-http/csrf/v1")
    );
    // The key is not the secret itself, nor a prefix of it.
    let key = a.derive_key(b"crm-http/csrf/v1");
    assert!(
        !SECRET
            .as_bytes()
            .windows(8)
            .any(|w| key.windows(8).any(|k| k == w))
    );
}
