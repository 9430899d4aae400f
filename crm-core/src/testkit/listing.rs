//! Keeping hand-written test lists honest.
//!
//! A `macro_rules!` macro that instantiates a generic suite for a backend (crm-core's
//! `conformance_tests!`, crm-http's `http_suite!`) cannot discover the suite's functions, so
//! it lists them by hand; a test then compares that list with what [`suite_functions`] finds
//! in the source, so that a test written but never listed (or listed but renamed away)
//! fails the build's tests instead of silently not running.

#![allow(clippy::missing_panics_doc)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The `.rs` files under `dir`, at any depth.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The module path of `file` relative to the module `dir` is (`dir/suite/records.rs` is
/// `suite::records`, `dir/suite/mod.rs` is `suite`, `dir/mod.rs` is the empty path).
pub fn module_of(dir: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(dir).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// Every `pub async fn name(<arg>: <arg_type>)` at the start of a line in the files under
/// `dir`, as `module::name` (module paths as [`module_of`] gives them).
pub fn suite_functions(dir: &Path, arg_type: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for file in rust_files(dir) {
        let text = std::fs::read_to_string(&file).unwrap();
        let module = module_of(dir, &file);
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
                .is_some_and(|(_, ty)| ty.trim() == arg_type)
            {
                found.insert(if module.is_empty() {
                    name.to_owned()
                } else {
                    format!("{module}::{name}")
                });
            }
        }
    }
    found
}

/// Compares what a macro lists with the functions found: panics naming every function
/// listed twice, found but not listed, or listed but not found. `at_least` guards against a
/// scan that finds (next to) nothing.
pub fn assert_listed(functions: &BTreeSet<String>, listed: &[String], at_least: usize) {
    assert!(
        functions.len() >= at_least,
        "the scan finds the suite (at least {at_least} functions): {functions:?}"
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
        "suite functions the macro does not run: {missing:?}"
    );
    let unknown: Vec<&String> = unique.difference(functions).collect();
    assert!(
        unknown.is_empty(),
        "the macro names what is no suite function: {unknown:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assert_listed_accepts_an_exact_list() {
        let functions: BTreeSet<String> = ["a::x".to_owned(), "b::y".to_owned()].into();
        assert_listed(&functions, &["b::y".to_owned(), "a::x".to_owned()], 2);
    }

    #[test]
    #[should_panic(expected = "does not run")]
    fn assert_listed_refuses_a_missing_function() {
        let functions: BTreeSet<String> = ["a::x".to_owned(), "b::y".to_owned()].into();
        assert_listed(&functions, &["a::x".to_owned()], 1);
    }

    #[test]
    #[should_panic(expected = "listed twice")]
    fn assert_listed_refuses_a_duplicate() {
        let functions: BTreeSet<String> = ["a::x".to_owned()].into();
        assert_listed(&functions, &["a::x".to_owned(), "a::x".to_owned()], 1);
    }

    #[test]
    #[should_panic(expected = "no suite function")]
    fn assert_listed_refuses_an_unknown_name() {
        let functions: BTreeSet<String> = ["a::x".to_owned()].into();
        assert_listed(&functions, &["a::x".to_owned(), "a::z".to_owned()], 1);
    }

    #[test]
    fn module_paths_follow_the_files() {
        let dir = Path::new("/src/testkit");
        assert_eq!(
            module_of(dir, &dir.join("suite/records.rs")),
            "suite::records"
        );
        assert_eq!(module_of(dir, &dir.join("suite/mod.rs")), "suite");
        assert_eq!(module_of(dir, &dir.join("mod.rs")), "");
        assert_eq!(module_of(dir, &dir.join("faults.rs")), "faults");
    }
}
