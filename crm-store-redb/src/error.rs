//! The store's own error type, [`StoreError`], and its mapping into [`crm_core::Error`].

use std::fmt;

use crm_core::{Error, ErrorKind};

/// Everything that can go wrong inside the store.
///
/// At the [`crm_core::Storage`] boundary a `StoreError` becomes a [`crm_core::Error`] of one of
/// the storage kinds (E3xxx), with the `StoreError` kept as the source, so that the server log
/// shows the redb error while users only ever see the coded message:
///
/// | cause | [`ErrorKind`] |
/// |---|---|
/// | the file is locked by another process, cannot be opened (I/O error, permissions), the database was closed, an earlier I/O error left it unusable, it is being reopened after a failed commit, the store is shut down | `StorageUnavailable` (E3001) |
/// | any other redb error while reading or committing; a commit writing outside its own workspace | `StorageFailure` (E3002) |
/// | a stored record or audit entry does not decode, an index entry points nowhere, redb reports corruption, the file has an unknown format version | `StorageCorrupted` (E3003) |
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// redb reported an error.
    Redb(redb::Error),
    /// The database file could not be opened (or reopened after a failed commit).
    Open(redb::Error),
    /// A stored value (record or audit entry) could not be decoded.
    Decode {
        /// What was being decoded (`"contact"`, `"audit entry"`, ...).
        what: &'static str,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// An index, search or unique entry names a record that does not exist.
    DanglingEntry {
        /// The table holding the entry.
        table: &'static str,
    },
    /// The file was written by a newer (or unknown) version of this crate.
    UnsupportedFormat {
        /// The format version found in the file.
        found: u64,
        /// The format version this crate reads and writes.
        supported: u64,
    },
    /// A write or audit entry of a commit belongs to another workspace than the commit.
    WorkspaceMismatch,
    /// The store was shut down, or its writer stopped.
    Closed,
    /// The database is being reopened after a failed commit, or could not be reopened.
    Recovering,
    /// A blocking task running a read panicked or was cancelled.
    Task(tokio::task::JoinError),
    /// The write batch this commit was part of failed with the shared cause.
    Batch(std::sync::Arc<StoreError>),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Redb(e) => write!(f, "redb: {e}"),
            StoreError::Open(e) => write!(f, "opening the database: {e}"),
            StoreError::Decode { what, .. } => write!(f, "stored {what} could not be decoded"),
            StoreError::DanglingEntry { table } => {
                write!(f, "an entry of the {table} table names a missing record")
            }
            StoreError::UnsupportedFormat { found, supported } => write!(
                f,
                "the database has format version {found}; this version of crm-store-redb \
                 supports version {supported}"
            ),
            StoreError::WorkspaceMismatch => {
                f.write_str("a write of the commit belongs to another workspace")
            }
            StoreError::Closed => f.write_str("the store is shut down"),
            StoreError::Recovering => {
                f.write_str("the database is being reopened after a failed commit")
            }
            StoreError::Task(e) => write!(f, "storage task failed: {e}"),
            StoreError::Batch(cause) => write!(f, "the write batch failed: {cause}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Redb(e) | StoreError::Open(e) => Some(e),
            StoreError::Decode { source, .. } => Some(source),
            StoreError::Task(e) => Some(e),
            StoreError::Batch(cause) => Some(cause.as_ref()),
            _ => None,
        }
    }
}

impl StoreError {
    /// The [`ErrorKind`] this error maps to (see the table above).
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Redb(e) => redb_kind(e),
            StoreError::Open(e) => match redb_kind(e) {
                ErrorKind::StorageCorrupted => ErrorKind::StorageCorrupted,
                _ => ErrorKind::StorageUnavailable,
            },
            StoreError::Decode { .. }
            | StoreError::DanglingEntry { .. }
            | StoreError::UnsupportedFormat { .. } => ErrorKind::StorageCorrupted,
            StoreError::WorkspaceMismatch | StoreError::Task(_) => ErrorKind::StorageFailure,
            StoreError::Closed | StoreError::Recovering => ErrorKind::StorageUnavailable,
            StoreError::Batch(cause) => cause.kind(),
        }
    }

    pub(crate) fn decode(what: &'static str, source: serde_json::Error) -> Self {
        StoreError::Decode { what, source }
    }
}

fn redb_kind(e: &redb::Error) -> ErrorKind {
    match e {
        redb::Error::DatabaseAlreadyOpen
        | redb::Error::LockProtocolMismatch
        | redb::Error::RepairAborted
        | redb::Error::UpgradeRequired(_)
        | redb::Error::PreviousIo
        | redb::Error::DatabaseClosed => ErrorKind::StorageUnavailable,
        redb::Error::Corrupted(_)
        | redb::Error::TableTypeMismatch { .. }
        | redb::Error::TableIsMultimap(_)
        | redb::Error::TableIsNotMultimap(_)
        | redb::Error::TypeDefinitionChanged { .. } => ErrorKind::StorageCorrupted,
        _ => ErrorKind::StorageFailure,
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::storage(e.kind(), e)
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {
        $(impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Redb(e.into())
            }
        })*
    };
}

from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Shorthand inside the crate.
pub(crate) type StoreResult<T> = std::result::Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_sources() {
        let e: Error = StoreError::Redb(redb::Error::DatabaseAlreadyOpen).into();
        assert_eq!(e.kind(), ErrorKind::StorageUnavailable);
        assert!(std::error::Error::source(&e).is_some());
        let json = serde_json::from_slice::<u8>(b"x").unwrap_err();
        let e: Error = StoreError::decode("contact", json).into();
        assert_eq!(e.kind(), ErrorKind::StorageCorrupted);
        let src = std::error::Error::source(&e).unwrap();
        assert!(
            std::error::Error::source(src).is_some(),
            "the JSON error is kept"
        );
        let e: Error = StoreError::Redb(redb::Error::Corrupted("x".into())).into();
        assert_eq!(e.kind(), ErrorKind::StorageCorrupted);
        assert_eq!(
            Error::from(StoreError::Closed).kind(),
            ErrorKind::StorageUnavailable
        );
    }
}
