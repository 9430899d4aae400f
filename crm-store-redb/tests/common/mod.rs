//! Helpers shared by the tests that re-execute themselves as a child process
//! (`crash.rs`, `relaxed_logs.rs`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// A two-worker runtime, as a small server would run.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Prints a line for the parent and flushes it; a closed pipe means the parent is gone:
/// the child stops.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(1);
    }
}

/// A fresh temp dir (to keep while the file is used) and the path of `file` in it.
pub fn temp_path(file: &str) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file);
    (dir, path)
}

/// The start of a test that re-executes itself as a child process: in the child (`env` set
/// to the store's path) it runs `child` on that path and answers `None`, and the test ends
/// there; in the test itself it answers [`temp_path`] of `file`, for the child to use.
pub fn unless_child(
    env: &str,
    file: &str,
    child: impl FnOnce(&Path),
) -> Option<(TempDir, PathBuf)> {
    if let Some(path) = std::env::var_os(env) {
        child(Path::new(&path));
        return None;
    }
    Some(temp_path(file))
}
