//! The store's own error type, [`StoreError`], and its mapping into [`crm_core::Error`].

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
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// redb reported an error.
    #[error("redb: {0}")]
    Redb(#[source] redb::Error),
    /// The database file could not be opened (or reopened after a failed commit).
    #[error("opening the database: {0}")]
    Open(#[source] redb::Error),
    /// A stored value (record or audit entry) could not be decoded.
    #[error("stored {what} could not be decoded")]
    Decode {
        /// What was being decoded (`"contact"`, `"audit entry"`, ...).
        what: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// An index, search or unique entry names a record that does not exist.
    #[error("an entry of the {table} table names a missing record")]
    DanglingEntry {
        /// The table holding the entry.
        table: &'static str,
    },
    /// The file was written by a newer (or unknown) version of this crate.
    #[error(
        "the database has format version {found}; this version of crm-store-redb supports \
         version {supported}"
    )]
    UnsupportedFormat {
        /// The format version found in the file.
        found: u64,
        /// The format version this crate reads and writes.
        supported: u64,
    },
    /// A write or audit entry of a commit belongs to another workspace than the commit.
    #[error("a write of the commit belongs to another workspace")]
    WorkspaceMismatch,
    /// The store was shut down, or its writer stopped.
    #[error("the store is shut down")]
    Closed,
    /// The database is being reopened after a failed commit, or could not be reopened.
    #[error("the database is being reopened after a failed commit")]
    Recovering,
    /// A blocking task running a read panicked or was cancelled.
    #[error("storage task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
    /// The write batch this commit was part of failed with the shared cause.
    #[error("the write batch failed: {0}")]
    Batch(#[source] std::sync::Arc<StoreError>),
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

    #[test]
    fn messages_and_source_chains() {
        let json = serde_json::from_slice::<u8>(b"x").unwrap_err();
        let cases = [
            (
                StoreError::decode("contact", json),
                "stored contact could not be decoded",
            ),
            (
                StoreError::DanglingEntry { table: "unique" },
                "an entry of the unique table names a missing record",
            ),
            (
                StoreError::UnsupportedFormat {
                    found: 9,
                    supported: 2,
                },
                "the database has format version 9; this version of crm-store-redb supports \
                 version 2",
            ),
            (
                StoreError::WorkspaceMismatch,
                "a write of the commit belongs to another workspace",
            ),
            (StoreError::Closed, "the store is shut down"),
            (
                StoreError::Recovering,
                "the database is being reopened after a failed commit",
            ),
            (
                StoreError::Redb(redb::Error::DatabaseAlreadyOpen),
                "redb: Database already open. Cannot acquire lock.",
            ),
        ];
        for (e, message) in cases {
            assert_eq!(e.to_string(), message);
        }
        // A batch failure shows its shared cause, and the chain goes on to the cause's own
        // source.
        let json = serde_json::from_slice::<u8>(b"x").unwrap_err();
        let e = StoreError::Batch(std::sync::Arc::new(StoreError::decode("deal", json)));
        assert_eq!(
            e.to_string(),
            "the write batch failed: stored deal could not be decoded"
        );
        let cause = std::error::Error::source(&e).expect("the shared cause");
        assert_eq!(cause.to_string(), "stored deal could not be decoded");
        assert!(std::error::Error::source(cause).is_some(), "the JSON error");
    }
}
