//! `http_suite!` lists the HTTP suite by hand (a `macro_rules!` macro cannot discover
//! functions); this test keeps the list honest, as crm-core's `conformance_list` does for
//! `conformance_tests!` (with the same scan, `crm_core::testkit::listing`). Every HTTP test
//! is a `pub async fn name(store: StoreFactory)` in a file of `tests/suite/`, and the macro
//! must instantiate each one exactly once, as `module::name`, and nothing else.

use std::path::{Path, PathBuf};

use crm_core::testkit::listing::{assert_listed, module_of, rust_files, suite_functions};

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/suite")
}

fn suite_mod() -> String {
    std::fs::read_to_string(suite_dir().join("mod.rs")).unwrap()
}

/// The `module::name` entries of the macro's one list: `$crate::http_suite!(@tests
/// $factory; auth::a, auth::b, ...);`.
fn macro_list() -> Vec<String> {
    let text = suite_mod();
    let body = &text[text.find("macro_rules! http_suite").unwrap()..];
    let call = "$crate::http_suite!(@tests $factory;";
    let list = &body[body.find(call).unwrap() + call.len()..];
    let list = &list[..list.find(");").unwrap()];
    list.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_macro_lists_every_suite_function_once() {
    let functions = suite_functions(&suite_dir(), "StoreFactory");
    assert_listed(&functions, &macro_list(), 40);
}

#[test]
fn every_suite_file_is_a_module_of_the_suite() {
    // A file not declared in `suite/mod.rs` is never compiled: its tests would be lost
    // without a word.
    let text = suite_mod();
    let files: Vec<String> = rust_files(&suite_dir())
        .iter()
        .map(|f| module_of(&suite_dir(), f))
        .filter(|m| !m.is_empty())
        .collect();
    assert!(
        files.len() >= 9,
        "the scan finds the suite files: {files:?}"
    );
    let undeclared: Vec<&String> = files
        .iter()
        .filter(|m| !text.contains(&format!("\npub mod {m};")))
        .collect();
    assert!(
        undeclared.is_empty(),
        "files of tests/suite/ that suite/mod.rs does not declare: {undeclared:?}"
    );
}
