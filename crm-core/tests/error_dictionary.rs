//! The error dictionary (`docs/errors.md`) is generated from the code; this test fails when
//! the committed file is out of date or when two error kinds share a code. Run with
//! `UPDATE_ERROR_DOCS=1` to rewrite the file.

use std::collections::HashSet;
use std::fmt::{Debug, Display};
use std::hash::Hash;

use crm_core::error::{ErrorKind, FieldIssue, dictionary_markdown};

/// Asserts that `key` tells all of `items` apart (`code` names the shared code on failure).
fn assert_distinct<T: Copy + Debug, K: Eq + Hash, C: Display>(
    items: &[T],
    key: impl Fn(T) -> K,
    code: impl Fn(T) -> C,
) {
    let mut seen = HashSet::new();
    for &item in items {
        assert!(
            seen.insert(key(item)),
            "{item:?} shares code {}",
            code(item)
        );
    }
}

#[test]
fn codes_are_unique() {
    assert_distinct(ErrorKind::ALL, ErrorKind::number, ErrorKind::code);
    assert_distinct(FieldIssue::ALL, FieldIssue::code, FieldIssue::code);
    for issue in FieldIssue::ALL {
        assert!(!ErrorKind::ALL.iter().any(|k| k.code() == issue.code()));
    }
}

#[test]
fn committed_dictionary_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/errors.md");
    let generated = dictionary_markdown();
    if std::env::var_os("UPDATE_ERROR_DOCS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/errors.md is out of date: run `UPDATE_ERROR_DOCS=1 cargo test -p crm-core --test error_dictionary`"
    );
}
