//! `conformance_tests!` lists the suite by hand (a `macro_rules!` macro cannot discover
//! functions); this test keeps the list honest. Every conformance test is a
//! `pub async fn name(f: Fixture)` somewhere under `src/testkit/`, and the macro must
//! instantiate each one exactly once, under the module it is in, and nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn testkit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testkit")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src/testkit/` (`suite/records.rs` is `suite::records`,
/// `suite/mod.rs` is `suite`).
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix(testkit_dir()).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// Every `pub async fn name(<arg>: Fixture)` under `src/testkit/`, as `module::name`.
fn suite_functions() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(&testkit_dir(), &mut files);
    let mut found = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("pub async fn ") else {
                continue;
            };
            let Some((name, args)) = rest.split_once('(') else {
                continue;
            };
            let arg = args.split(')').next().unwrap_or("");
            if arg
                .split_once(':')
                .is_some_and(|(_, ty)| ty.trim() == "Fixture")
            {
                found.insert(format!("{}::{name}", module_of(&file)));
            }
        }
    }
    found
}

/// What the macro instantiates, as `module::name`: each arm `(@arm $fixture:path; ...)`
/// calls `$crate::testkit::<module>::$name` (the `@suite` arm `suite::$module::$name`), and
/// each invocation `$crate::conformance_tests!(@arm $fixture; a, b, ...)` lists names.
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
        let arm = &call[..call.find(' ').unwrap()];
        let names = &call[call.find(';').unwrap() + 1..call.find(')').unwrap()];
        let module = arms
            .get(arm)
            .unwrap_or_else(|| panic!("no arm @{arm} in the macro"));
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            listed.push(format!("{module}::{name}"));
        }
    }
    listed
}

#[test]
fn the_macro_lists_every_suite_function_once() {
    let functions = suite_functions();
    let listed = macro_list();
    assert!(
        functions.len() > 40,
        "the scan finds the suite: {functions:?}"
    );
    let unique: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        listed.len(),
        "a test listed twice: {listed:?}"
    );
    let missing: Vec<&String> = functions.difference(&unique).collect();
    assert!(
        missing.is_empty(),
        "suite functions conformance_tests! does not run: {missing:?}"
    );
    let unknown: Vec<&String> = unique.difference(&functions).collect();
    assert!(
        unknown.is_empty(),
        "conformance_tests! names what is no suite function: {unknown:?}"
    );
}
