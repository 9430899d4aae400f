//! Runs the real `embedded` binary, as a user would, and checks what it prints: the example is
//! documentation, and this keeps it true.

use std::path::Path;
use std::process::{Command, Output};

/// Runs the example binary with `data_dir` as its argument.
fn run_example(data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_embedded"))
        .arg(data_dir)
        .output()
        .expect("the example binary starts")
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "example failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8 output")
}

/// Asserts that `needles` appear in `haystack` in this order.
fn assert_in_order(haystack: &str, needles: &[&str]) {
    let mut rest = haystack;
    for needle in needles {
        match rest.find(needle) {
            Some(at) => rest = &rest[at + needle.len()..],
            None => panic!("missing (or out of order): {needle:?}\nin output:\n{haystack}"),
        }
    }
}

#[test]
fn tour_runs_end_to_end_and_again_on_the_same_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let out = stdout_of(&run_example(&data));

    assert!(data.join("crm.redb").is_file(), "the store file is created");
    assert_in_order(
        &out,
        &[
            "1. Opened the store at",
            "2. Workspace \"Acme Inc.\" created",
            "Ada Lovelace <ada@acme.test> (admin)",
            "Sam Seller <sam@acme.test> (sales)",
            "Rita Reader <rita@acme.test> (read_only)",
            "3. Companies and contacts",
            "Globex Corporation (Energy, Springfield)",
            "Grace Hopper, CTO at Globex Corporation <grace@globex.test> [warm]",
            "4. Deals by stage",
            "Opportunity:   Globex brochure (800.00 USD)",
            "Proposal Sent: Globex website (12000.00 USD)",
            "Won:           Initech TPS reports (3500.00 USD)",
            "5. Tasks",
            "[x] Call Grace about the proposal",
            "[ ] Send the TPS contract to Peter",
            "Sam sees 1 of 2 tasks",
            "6. Note added on Grace Hopper: status now hot, version 2",
            "7. Search \"glob\"",
            "companies: Globex Corporation",
            "contacts:  Grace Hopper, Alan Turing",
            "deals:     Globex website, Globex brochure",
            "8. Cold contacts by last name",
            "page 1: Alan Turing",
            "page 2: Milton Waddams",
            "9. Errors",
            "invalid contact: Unable to save contact (E2001)",
            "first_name: The field is required. (E2101)",
            "emails[0].email: Expected an email address. (E2104)",
            "read-only user creating a company: Unable to save company (E1002)",
            "update from a stale version: Unable to save contact (E5002)",
            "10. Audit trail (latest 5)",
            "Create note",
            "Update contact \"Grace Hopper\": last_seen, status",
            "Done.",
        ],
    );
    // Searches and lists are scoped to the workspace: Initech people do not match "glob".
    assert!(!out.contains("contacts:  Grace Hopper, Alan Turing, Peter"));

    // A second run reopens the same file and bootstraps a second, separate workspace: the
    // story (counts, search results, pages) is identical, so nothing leaked across.
    let again = stdout_of(&run_example(&data));
    let tail = |s: &str| s.lines().skip(1).collect::<Vec<_>>().join("\n");
    let strip_dates = |s: String| {
        s.lines()
            .map(|l| l.split(" (due ").next().unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        strip_dates(tail(&again)),
        strip_dates(tail(&out)),
        "second run on the same file prints the same story"
    );
}

#[test]
fn unusable_data_dir_fails_with_status_1_and_a_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A regular file where the data directory should be.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write file");

    let output = run_example(&file);
    assert_eq!(output.status.code(), Some(1), "exit status");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: "), "stderr: {stderr}");
}
