//! The store's own error type, [`PgStoreError`], and its mapping into [`crm_core::Error`].

use crm_core::{Error, ErrorKind};

/// Everything that can go wrong inside the store.
///
/// At the [`crm_core::Storage`] boundary a `PgStoreError` becomes a [`crm_core::Error`] with
/// the `PgStoreError` kept as its source, so the server log shows the driver's error while
/// users only ever see the coded message. Neither the message nor the source ever contains
/// the connection URL or its password.
///
/// | cause | [`ErrorKind`] |
/// |---|---|
/// | the database cannot be reached: connection refused or lost, TLS failure, the pool's acquire timeout, the server shutting down or refusing connections (SQLSTATE class 08, 57P01–57P03, 53300), the store closed | `StorageUnavailable` (E3001) |
/// | a statement ran past the statement timeout or waited too long for a lock (57014, 55P03) | `Busy` (E4002) |
/// | a serialization failure or deadlock with a concurrent transaction (40001, 40P01): nothing was applied, the core retries | `VersionConflict` (E5002) |
/// | a stored record or audit entry does not decode | `StorageCorrupted` (E3003) |
/// | any other database error; a commit writing outside its own workspace; a failed migration | `StorageFailure` (E3002) |
///
/// A connection lost while `COMMIT` was in flight is `StorageUnavailable` and the outcome is
/// unknown to the store (PostgreSQL applied the whole transaction or none of it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgStoreError {
    /// The database or the driver reported an error.
    #[error("postgres: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the embedded migrations failed.
    #[error("migrating the schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be decoded.
    #[error("stored {what} could not be decoded")]
    Decode {
        /// What was being decoded (`"contact"`, `"audit entry"`, ...).
        what: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A record or audit entry of a commit could not be encoded.
    #[error("{what} could not be encoded")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A write or audit entry of a commit belongs to another workspace than the commit.
    #[error("a write of the commit belongs to another workspace")]
    WorkspaceMismatch,
    /// The connection URL could not be parsed (the URL itself is not repeated).
    #[error("the database URL is not valid")]
    InvalidUrl(#[source] sqlx::Error),
}

impl PgStoreError {
    /// The coded kind this error surfaces as (see the table in the type's docs).
    pub fn kind(&self) -> ErrorKind {
        match self {
            PgStoreError::Database(e) => classify(e),
            PgStoreError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => match classify(e) {
                ErrorKind::StorageUnavailable => ErrorKind::StorageUnavailable,
                _ => ErrorKind::StorageFailure,
            },
            PgStoreError::Migrate(_)
            | PgStoreError::Encode { .. }
            | PgStoreError::WorkspaceMismatch
            | PgStoreError::InvalidUrl(_) => ErrorKind::StorageFailure,
            PgStoreError::Decode { .. } => ErrorKind::StorageCorrupted,
        }
    }
}

impl From<PgStoreError> for Error {
    fn from(e: PgStoreError) -> Self {
        Error::storage(e.kind(), e)
    }
}

/// Shorthand: a driver error as a coded core error.
pub(crate) fn db(e: sqlx::Error) -> Error {
    PgStoreError::Database(e).into()
}

fn classify(e: &sqlx::Error) -> ErrorKind {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => ErrorKind::StorageUnavailable,
        sqlx::Error::Database(d) => match d.code().as_deref() {
            Some("40001" | "40P01") => ErrorKind::VersionConflict,
            Some("57014" | "55P03") => ErrorKind::Busy,
            Some(c) if c.starts_with("08") => ErrorKind::StorageUnavailable,
            Some("57P01" | "57P02" | "57P03" | "53300" | "53000") => ErrorKind::StorageUnavailable,
            _ => ErrorKind::StorageFailure,
        },
        _ => ErrorKind::StorageFailure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_unavailable_and_keep_their_source() {
        let e: Error = PgStoreError::Database(sqlx::Error::PoolTimedOut).into();
        assert_eq!(e.kind(), ErrorKind::StorageUnavailable);
        assert!(std::error::Error::source(&e).is_some());
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(db(io).kind(), ErrorKind::StorageUnavailable);
    }

    #[test]
    fn decode_failures_are_corruption() {
        let source = serde_json::from_str::<u8>("x").unwrap_err();
        let e: Error = PgStoreError::Decode {
            what: "contact",
            source,
        }
        .into();
        assert_eq!(e.kind(), ErrorKind::StorageCorrupted);
        assert!(!e.to_string().contains("contact"), "{e}");
    }
}
