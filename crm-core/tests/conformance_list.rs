//! `conformance_tests!` lists the suite by hand (a `macro_rules!` macro cannot discover
//! functions); this test keeps the list honest. Every conformance test is a
//! `pub async fn name(f: Fixture)` somewhere under `src/testkit/`, and the macro must
//! instantiate each one exactly once, under the module it is in, and nothing else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crm_core::testkit::listing::{assert_listed, suite_functions};

fn testkit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testkit")
}

/// What the macro instantiates, as `module::name`: each arm `(@arm $fixture:path; ...)`
/// calls `$crate::testkit::<module>::$name` (the `@suite` arm `suite::$module::$name`, the
/// `@in` arm `$module::$name`), and each invocation
/// `$crate::conformance_tests!(@arm $fixture; a, b, ...)` lists names (`@in module
/// $fixture; ...`: names in `module`).
fn macro_list() -> Vec<String> {
    let text = std::fs::read_to_string(testkit_dir().join("mod.rs")).unwrap();
    let body = &text[text.find("macro_rules! conformance_tests").unwrap()..];
    // The module each arm's tests live in.
    let mut arms = BTreeMap::new();
    for (at, _) in body.match_indices("    (@") {
        let arm = &body[at + 6..];
        let name = &arm[..arm.find(' ').unwrap()];
        let end = arm.find("\n    };").unwrap();
        let call = &arm[..end];
        let before = &call[..call.find("::$name(").unwrap()];
        let path =
            &before[before.rfind("$crate::testkit::").unwrap() + "$crate::testkit::".len()..];
        arms.insert(name.to_owned(), path.replace("::$module", ""));
    }
    let mut listed = Vec::new();
    for (at, _) in body.match_indices("$crate::conformance_tests!(@") {
        let call = &body[at + "$crate::conformance_tests!(@".len()..];
        let (arm, rest) = call.split_once(' ').unwrap();
        let names = &call[call.find(';').unwrap() + 1..call.find(')').unwrap()];
        let module = arms
            .get(arm)
            .unwrap_or_else(|| panic!("no arm @{arm} in the macro"));
        // `@in` names its module first.
        let module = match module.as_str() {
            "$module" => &rest[..rest.find(' ').unwrap()],
            other => other,
        };
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            listed.push(format!("{module}::{name}"));
        }
    }
    listed
}

#[test]
fn the_macro_lists_every_suite_function_once() {
    // Every `pub async fn name(<arg>: Fixture)` under `src/testkit/`, as `module::name`.
    let functions = suite_functions(&testkit_dir(), "Fixture");
    assert_listed(&functions, &macro_list(), 41);
}
