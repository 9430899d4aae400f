//! # load-floor
//!
//! The floor of the HTTP load test (`benches/load/run.sh`): the least a server can do to
//! answer `GET /api/v1/contacts/{id}` the way `crm-server` does. One axum handler verifies
//! the HS256 access token from `Authorization: Bearer` with `jsonwebtoken` (same secret,
//! signature, algorithm and expiry checked; issuer and audience not), takes the workspace from
//! its `ws` claim and reads the contact through [`crm_store_redb::RedbStore`] and
//! [`crm_core::Storage::get`], then answers it as JSON with its `ETag`. No sessions, users,
//! permissions, rate limits, metrics or middleware: what `crm-server` adds on top is what the
//! load test's ratio measures.
//!
//! ```text
//! CRM_JWT_SECRET=... load-floor --db <file.redb> [--bind 127.0.0.1:8081]
//! ```
//!
//! redb holds a lock on its file: run it on a store no other process has open. `GET /health`
//! answers `200` without touching storage.

use std::error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use crm_core::Storage;
use crm_core::id::WorkspaceId;
use crm_core::model::{EntityKind, Record};
use crm_store_redb::RedbStore;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use uuid::Uuid;

/// The only claim the floor needs besides `exp`: the workspace.
#[derive(Deserialize)]
struct Claims {
    ws: Uuid,
}

/// What every request shares.
struct Floor {
    store: RedbStore,
    key: DecodingKey,
    validation: Validation,
}

/// `GET /api/v1/contacts/{id}`: verify the token, read the record, answer it.
async fn get_contact(
    State(floor): State<Arc<Floor>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Ok(data) = jsonwebtoken::decode::<Claims>(token, &floor.key, &floor.validation) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let workspace = WorkspaceId::from_uuid(data.claims.ws);
    match floor.store.get(workspace, EntityKind::Contact, id).await {
        Ok(Some(Record::Contact(contact))) => match serde_json::to_vec(&contact) {
            Ok(body) => {
                let etag = HeaderValue::from_str(&format!("\"{}\"", contact.version))
                    .unwrap_or(HeaderValue::from_static("\"0\""));
                (
                    StatusCode::OK,
                    [
                        (
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        ),
                        (header::ETAG, etag),
                    ],
                    body,
                )
                    .into_response()
            }
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        },
        Ok(_) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// Command-line options.
struct Options {
    db: PathBuf,
    bind: SocketAddr,
}

fn usage() -> String {
    "usage: CRM_JWT_SECRET=... load-floor --db <file.redb> [--bind 127.0.0.1:8081]".to_string()
}

fn parse_args() -> Result<Options, String> {
    let mut db = None;
    let mut bind: SocketAddr = ([127, 0, 0, 1], 8081).into();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n{}", usage()))
        };
        match arg.as_str() {
            "--db" => db = Some(PathBuf::from(value()?)),
            "--bind" => bind = value()?.parse().map_err(|e| format!("--bind: {e}"))?,
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    Ok(Options {
        db: db.ok_or_else(usage)?,
        bind,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let options = parse_args()?;
    let secret = std::env::var("CRM_JWT_SECRET").map_err(|_| "CRM_JWT_SECRET is not set")?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_aud = false;
    let floor = Arc::new(Floor {
        store: RedbStore::open(&options.db)?,
        key: DecodingKey::from_secret(secret.as_bytes()),
        validation,
    });
    let app = Router::new()
        .route("/api/v1/contacts/{id}", get(get_contact))
        .route("/health", get(|| async { StatusCode::OK }))
        .with_state(floor);
    let listener = tokio::net::TcpListener::bind(options.bind).await?;
    eprintln!("load-floor listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
