//! The unit of work a [`crate::Storage`] applies atomically: a [`Commit`] of [`Write`]s and
//! the audit entries of the change. The core builds them (and the change feed reads them,
//! [`crate::feed::changes_of`]); a backend applies all of a commit or nothing. Re-exported as
//! `crate::storage::{Commit, Write}`.

use uuid::Uuid;

use crate::audit::AuditEntry;
use crate::kind::EntityKind;
use crate::model::{Record, UserId, WorkspaceId};

/// One write or assertion inside a [`Commit`].
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Insert a new record. Fails with [`crate::ErrorKind::VersionConflict`] if the id exists,
    /// [`crate::ErrorKind::Duplicate`] if a unique key is taken.
    Insert(Record),
    /// Replace a record whose stored version is `expected_version`. The record carries its
    /// new version (set by the core). Fails with `NotFound` if absent, `VersionConflict` if the
    /// version differs, `Duplicate` if a unique key is taken by another record.
    Update {
        /// The new state.
        record: Record,
        /// The version the change was computed from.
        expected_version: u64,
    },
    /// Permanently delete a record whose stored version is `expected_version`.
    Delete {
        /// Kind.
        kind: EntityKind,
        /// Id.
        id: Uuid,
        /// The version the decision was made on.
        expected_version: u64,
    },
    /// Assert that a record still has `expected_version` (a read the change depends on).
    /// Fails with `VersionConflict` (or `NotFound`).
    Check {
        /// Kind.
        kind: EntityKind,
        /// Id.
        id: Uuid,
        /// Version that was read.
        expected_version: u64,
    },
    /// Assert that a referenced record exists and is not soft deleted. Fails with a
    /// [`crate::ErrorKind::Validation`] error naming `field` as an unknown reference.
    Exists {
        /// Kind.
        kind: EntityKind,
        /// Id.
        id: Uuid,
        /// The referring field, for the error.
        field: &'static str,
    },
    /// Assert that the installation holds no workspace other than the commit's own: "this
    /// commit creates the first workspace". Sign-up uses it when sign-up closes after the
    /// first workspace, so two instances racing on a fresh database cannot both create one.
    /// Checked against committed state *and* commits in flight: a backend decides it
    /// atomically with the rest of the commit (PostgreSQL: a transaction-scoped advisory
    /// lock, then the check; redb: the single writer; the memory store: its lock). Fails
    /// with [`crate::ErrorKind::AlreadyInitialized`].
    FirstWorkspace,
    /// Replaces the stored audit entry that has this entry's id (same workspace, same record)
    /// with this copy: erasure's redaction of personal data (see [`crate::privacy`]). No
    /// effect when the entry is absent (retention may have pruned it). Never fails an
    /// assertion.
    RedactAudit(AuditEntry),
    /// Removes the record from every user's recently viewed lists in the workspace (see
    /// [`crate::views`]). Never fails an assertion.
    ForgetViews {
        /// Kind.
        kind: EntityKind,
        /// Id.
        id: Uuid,
    },
    /// Removes every recently viewed list of one user in the workspace (anonymization).
    /// Never fails an assertion.
    ForgetViewer {
        /// The user.
        user: UserId,
    },
}

/// An atomic unit of work in one workspace: all writes and audit entries, or nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    /// The workspace every write belongs to.
    pub workspace_id: WorkspaceId,
    /// Writes and assertions, applied in order after all assertions pass.
    pub writes: Vec<Write>,
    /// Audit entries recorded with the change.
    pub audit: Vec<AuditEntry>,
}

impl Commit {
    /// An empty commit for a workspace.
    pub fn new(workspace_id: WorkspaceId) -> Self {
        Commit {
            workspace_id,
            writes: Vec::new(),
            audit: Vec::new(),
        }
    }
}
