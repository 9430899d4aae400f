//! Helpers shared by the tests that re-execute themselves as a child process
//! (`crash.rs`, `relaxed_logs.rs`).

use std::io::Write as _;

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
