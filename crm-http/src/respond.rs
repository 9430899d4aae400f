//! Response helpers: JSON bodies, and the steps every single-record answer shares —
//! [`Versioned`] (`ETag`, `Location`, `304`) and [`guarded`] (`If-Match`).

use std::fmt::Display;

use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use crm_core::ErrorKind;
use crm_core::model::Entity;
use serde::Serialize;

use crate::error::ApiError;
use crate::extract::{IfMatch, IfNoneMatch};

/// A JSON response with `status`.
pub(crate) fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => ApiError::from(crm_core::Error::new(ErrorKind::StorageCorrupted).with_source(e))
            .into_response(),
    }
}

/// The entity tag of a record version: `"3"`.
pub(crate) fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// `204 No Content`.
pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// The answer about one record at one version: its JSON with `ETag` (`200`), `201` with
/// `Location` when it was just created, or `304` with `ETag` and no body when the client
/// already has that version (`If-None-Match`).
#[derive(Debug)]
pub(crate) struct Versioned<T> {
    status: StatusCode,
    /// `None` for `304`.
    body: Option<T>,
    version: u64,
    location: Option<String>,
}

impl<T> Versioned<T> {
    /// `200` with `body` at `version`.
    pub(crate) fn new(body: T, version: u64) -> Self {
        Versioned {
            status: StatusCode::OK,
            body: Some(body),
            version,
            location: None,
        }
    }

    /// `304 Not Modified`: the client has `version`.
    pub(crate) fn not_modified(version: u64) -> Self {
        Versioned {
            status: StatusCode::NOT_MODIFIED,
            body: None,
            version,
            location: None,
        }
    }
}

impl<E: Entity> Versioned<E> {
    /// `200` with `record` at its version.
    pub(crate) fn of(record: E) -> Self {
        let version = record.meta().version;
        Self::new(record, version)
    }

    /// The answer of a read: `304` when `If-None-Match` names the record's version, else the
    /// record.
    pub(crate) fn read(record: E, inm: &IfNoneMatch) -> Self {
        let version = record.meta().version;
        if inm.matches(version) {
            Self::not_modified(version)
        } else {
            Self::new(record, version)
        }
    }

    /// `201 Created` with `Location`: the collection path the client posted to (`uri`, as
    /// the client sent it, so the mount prefix is kept) followed by the record's id.
    pub(crate) fn created(record: E, uri: &Uri) -> Self {
        let meta = record.meta();
        Versioned {
            status: StatusCode::CREATED,
            location: Some(location(uri, meta.id)),
            version: meta.version,
            body: Some(record),
        }
    }
}

fn location(collection: &Uri, id: impl Display) -> String {
    format!("{}/{id}", collection.path().trim_end_matches('/'))
}

impl<T: Serialize> IntoResponse for Versioned<T> {
    fn into_response(self) -> Response {
        let mut response = match &self.body {
            Some(body) => json(self.status, body),
            None => self.status.into_response(),
        };
        let headers = response.headers_mut();
        headers.insert(header::ETAG, etag(self.version));
        if let Some(v) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LOCATION, v);
        }
        response
    }
}

impl IfMatch {
    /// Checks the precondition against a record at `current` (for changes that take no
    /// version, such as a soft delete).
    ///
    /// # Errors
    /// `412` (`E5002`) when it does not hold.
    pub(crate) fn check(self, current: u64) -> Result<(), ApiError> {
        match self {
            IfMatch::Any => Ok(()),
            IfMatch::Version(v) if v == current => Ok(()),
            IfMatch::Version(_) | IfMatch::Never => Err(precondition_failed()),
        }
    }
}

/// Runs a change under `If-Match`: `change` gets the version the client based it on — the
/// tag's, or for `*` the record's current version, read with `current` — and answers the
/// changed record. The core refuses a stale version; since the client named it, that is a
/// failed precondition.
///
/// # Errors
/// `412` (`E5002`) for a stale version or a tag no version can match; `current`'s and
/// `change`'s other errors as they are.
pub(crate) async fn guarded<E: Entity>(
    if_match: IfMatch,
    current: impl AsyncFnOnce() -> crm_core::Result<E>,
    change: impl AsyncFnOnce(u64) -> crm_core::Result<E>,
) -> Result<Versioned<E>, ApiError> {
    let version = match if_match {
        IfMatch::Version(v) => v,
        IfMatch::Never => return Err(precondition_failed()),
        IfMatch::Any => current().await?.meta().version,
    };
    let record = change(version).await.map_err(|e| {
        if e.kind() == ErrorKind::VersionConflict {
            ApiError::from(e).with_status(StatusCode::PRECONDITION_FAILED)
        } else {
            e.into()
        }
    })?;
    Ok(Versioned::of(record))
}

/// A failed precondition without a core error behind it (`412`, coded `E5002`).
fn precondition_failed() -> ApiError {
    ApiError::new(ErrorKind::VersionConflict).with_status(StatusCode::PRECONDITION_FAILED)
}
