//! # load-floor
//!
//! The floors of the HTTP load tests (`benches/load/run.sh`, `benches/load/compare.sh`): the
//! least work that answers `GET /api/v1/contacts/{id}` with no project code in it. A
//! server's throughput divided by its floor's, measured in the same run, is what the load
//! tests report.
//!
//! Three modes, one per flag:
//!
//! * `--db <file.redb>` — **the redb floor** (DESIGN §16). Verifies the HS256 access token
//!   from `Authorization: Bearer` with `jsonwebtoken` (signature, algorithm, `exp`, `iss`
//!   and `aud`, as crm-server does), takes the workspace from its `ws` claim, opens a redb
//!   read transaction *on the async thread*, reads the contact's stored bytes and answers
//!   them as `application/json`, uncompressed whatever the client accepts. The table name
//!   and key layout (`[kind tag 4][workspace][id]` in `crm_records`) are written out here
//!   rather than taken from `crm-store-redb`, so that no project code runs.
//! * `--via-store <file.redb>` — **the store reference** (the floor of the earlier load
//!   tests, kept as a second, named reference): the same, but reading through
//!   [`crm_store_redb::RedbStore`] and [`crm_core::Storage::get`] (thread hop, decoding) and
//!   answering the record re-encoded as JSON with its `ETag`.
//! * `--pg <postgres URL>` — **the PostgreSQL floor**: the same token check, then one
//!   primary-key `SELECT data::text` from `crm_contact` through a sqlx pool (`--pool`,
//!   default 10 as crm-server; sqlx prepares and caches the statement per connection),
//!   answered as JSON.
//!
//! ```text
//! CRM_JWT_SECRET=... load-floor (--db <file.redb> | --via-store <file.redb> | --pg <url>)
//!     [--bind 127.0.0.1:8081] [--pool 10]
//! ```
//!
//! redb holds a lock on its file: give each process a copy of its own. `GET /health` answers
//! `200` without touching storage.

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
use redb::{ReadableDatabase, TableDefinition};
use serde::Deserialize;
use uuid::Uuid;

/// crm-store-redb's record table, written out (see the module docs).
const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("crm_records");
/// The contact kind's tag byte in record keys.
const CONTACT_TAG: u8 = 4;

/// The only claim the floor needs besides the registered ones: the workspace.
#[derive(Deserialize)]
struct Claims {
    ws: Uuid,
}

/// Where the floor reads from.
enum Source {
    Raw(redb::Database),
    Store(RedbStore),
    Postgres(sqlx::PgPool),
}

/// What every request shares.
struct Floor {
    source: Source,
    key: DecodingKey,
    validation: Validation,
}

fn json(body: impl Into<axum::body::Body>, etag: Option<HeaderValue>) -> Response {
    let mut response = Response::new(body.into());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(etag) = etag {
        headers.insert(header::ETAG, etag);
    }
    response
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
    let ws = data.claims.ws;
    match &floor.source {
        Source::Raw(db) => {
            let mut key = Vec::with_capacity(33);
            key.push(CONTACT_TAG);
            key.extend_from_slice(ws.as_bytes());
            key.extend_from_slice(id.as_bytes());
            let read = || -> Result<Option<Vec<u8>>, Box<dyn Error>> {
                let txn = db.begin_read()?;
                let table = txn.open_table(RECORDS)?;
                Ok(table.get(key.as_slice())?.map(|v| v.value().to_vec()))
            };
            match read() {
                Ok(Some(bytes)) => json(bytes, None),
                Ok(None) => StatusCode::NOT_FOUND.into_response(),
                Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
            }
        }
        Source::Store(store) => {
            let workspace = WorkspaceId::from_uuid(ws);
            match store.get(workspace, EntityKind::Contact, id).await {
                Ok(Some(Record::Contact(contact))) => match serde_json::to_vec(&contact) {
                    Ok(body) => json(
                        body,
                        HeaderValue::from_str(&format!("\"{}\"", contact.version)).ok(),
                    ),
                    Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                },
                Ok(_) => StatusCode::NOT_FOUND.into_response(),
                Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
            }
        }
        Source::Postgres(pool) => {
            let row: Result<Option<(String,)>, _> = sqlx::query_as(
                "SELECT data::text FROM crm_contact WHERE workspace_id = $1 AND id = $2",
            )
            .bind(ws)
            .bind(id)
            .fetch_optional(pool)
            .await;
            match row {
                Ok(Some((text,))) => json(text, None),
                Ok(None) => StatusCode::NOT_FOUND.into_response(),
                Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
            }
        }
    }
}

/// Which source the command line chose.
enum Choice {
    Raw(PathBuf),
    Store(PathBuf),
    Postgres(String),
}

/// Command-line options.
struct Options {
    choice: Choice,
    bind: SocketAddr,
    pool: u32,
}

fn usage() -> String {
    "usage: CRM_JWT_SECRET=... load-floor (--db <file.redb> | --via-store <file.redb> | --pg <url>) \
     [--bind 127.0.0.1:8081] [--pool 10]"
        .to_string()
}

fn parse_args() -> Result<Options, String> {
    let mut choice = None;
    let mut bind: SocketAddr = ([127, 0, 0, 1], 8081).into();
    let mut pool = 10;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n{}", usage()))
        };
        match arg.as_str() {
            "--db" => choice = Some(Choice::Raw(PathBuf::from(value()?))),
            "--via-store" => choice = Some(Choice::Store(PathBuf::from(value()?))),
            "--pg" => choice = Some(Choice::Postgres(value()?)),
            "--bind" => bind = value()?.parse().map_err(|e| format!("--bind: {e}"))?,
            "--pool" => pool = value()?.parse().map_err(|e| format!("--pool: {e}"))?,
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    Ok(Options {
        choice: choice.ok_or_else(usage)?,
        bind,
        pool,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let options = parse_args()?;
    let secret = std::env::var("CRM_JWT_SECRET").map_err(|_| "CRM_JWT_SECRET is not set")?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&["crm"]);
    validation.set_audience(&["crm"]);
    let source = match options.choice {
        Choice::Raw(path) => Source::Raw(redb::Database::open(path)?),
        Choice::Store(path) => Source::Store(RedbStore::open(path)?),
        Choice::Postgres(url) => Source::Postgres(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(options.pool.max(1))
                .connect(&url)
                .await?,
        ),
    };
    let floor = Arc::new(Floor {
        source,
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
