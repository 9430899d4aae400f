//! # crm-http
//!
//! The axum adapter of `crm`: [`router`] turns a [`crm_core::Crm`] engine and its
//! [`Identity`](crm_core::identity::Identity) layer, on any storage, into a REST API that a
//! host nests under any prefix.
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use std::sync::Arc;
//!
//! use crm_core::identity::{Identity, IdentityConfig, ResetDelivery, Secret, SecretToken};
//! use crm_core::model::User;
//! use crm_core::{Crm, CrmConfig, Storage, Timestamp};
//! use crm_http::{AppState, HttpConfig};
//!
//! struct PrintLink;
//! #[async_trait::async_trait]
//! impl ResetDelivery for PrintLink {
//!     async fn deliver(&self, user: &User, token: &SecretToken, _: Timestamp) -> crm_core::Result<()> {
//!         println!("reset link for {}: /reset?token={}", user.email, token.expose());
//!         Ok(())
//!     }
//! }
//!
//! # async fn demo(storage: Arc<dyn Storage>) -> Result<(), Box<dyn std::error::Error>> {
//! let crm = Crm::new(storage, CrmConfig::default());
//! let secret = Secret::new(std::env::var("CRM_JWT_SECRET")?.into_bytes());
//! let identity = Identity::new(crm, IdentityConfig::new(secret), Arc::new(PrintLink))?;
//! let state = AppState::new(identity, HttpConfig::default())?;
//!
//! // Mount anywhere: cookie paths follow the prefix.
//! let app = axum::Router::new().nest("/api/v1", crm_http::router(state));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! // Connect info gives the rate limiter and the logs the client address.
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # Ok(()) }
//! ```
//!
//! ## What the router does
//!
//! * **Resources.** `/companies`, `/contacts`, `/deals`, `/notes`, `/tasks`, `/tags`,
//!   `/users`: list (query string → [`crm_core::ListParams`], answered as
//!   `{"data": [...], "next_cursor": ...}`), get, create, `PATCH` with `If-Match`, soft
//!   `DELETE`, restore and purge; contact merge; deal archive, unarchive and move; task
//!   completion. Plus `/search`, `/activity`, `/audit`, `/configuration`, `/me`.
//!   Every record answer carries an `ETag` (its version); `If-None-Match` gets `304`, a
//!   stale `If-Match` `412` (`E5002`), a missing one `428`. Lists, `/dashboard`,
//!   `/me/recent` and the other collections carry a weak `ETag` (a digest of the body) and
//!   answer `304` too.
//! * **Auth** (`/auth/*`): sign-up (the installation's first workspace, or any number with
//!   [`HttpConfig::open_signup`]), login, refresh-token rotation, logout, sessions, password
//!   change and reset. Browsers get the refresh token in an `HttpOnly; Secure;
//!   SameSite=Strict` cookie scoped to the auth path, with a signed double-submit CSRF token
//!   (see [`handlers::auth`]).
//! * **Errors.** Every failure is `{"error": {"code", "message", "fields", "request_id"}}`
//!   (see [`error`]); bad JSON, wrong content types, unknown fields, oversized bodies and bad
//!   query strings are coded too.
//! * **Protection.** Rate limits on every route (per user when authenticated, per client
//!   address otherwise; `429` with `Retry-After`; `RateLimit` and `RateLimit-Policy` on
//!   every answer, in the syntax of draft-ietf-httpapi-ratelimit-headers-10, e.g.
//!   `RateLimit-Policy: "user";q=100;w=60` and `RateLimit: "user";r=97;t=2`),
//!   security headers on every response, a CORS allow-list (empty by default), gzip (of the
//!   answers worth it, see [`compression`]), request
//!   ids in responses and logs (see [`middleware`]).
//! * **Operations.** `/health`, `/ready`, `/metrics` (see [`metrics`]) and `/openapi.json`,
//!   generated from the same route table that builds the router (see [`openapi`]).

pub mod compression;
pub mod config;
pub mod error;
mod etag;
pub mod extract;
pub mod handlers;
pub mod metrics;
pub mod middleware;
pub mod openapi;
mod respond;
mod routes;
pub mod state;
pub mod views;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use config::{CookieConfig, HttpConfig, IpNetwork, SecureTransport};
pub use error::ApiError;
/// The metrics crate of [`AppState::with_registry`], re-exported so that a host registers
/// its series with the same version.
pub use prometheus_client;
pub use routes::operations;
pub use state::AppState;

/// The REST API over `state`, ready to be served or nested under a prefix.
pub fn router(state: AppState) -> Router {
    let config = state.config().clone();
    let mut router = routes::build(routes::table(), &state);
    let origins: Vec<HeaderValue> = config
        .cors_allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    if !origins.is_empty() {
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::IF_MATCH,
                    header::IF_NONE_MATCH,
                    HeaderName::from_static(handlers::auth::CSRF_HEADER),
                    HeaderName::from_static(middleware::REQUEST_ID_HEADER),
                ])
                .expose_headers([
                    header::ETAG,
                    header::LOCATION,
                    header::RETRY_AFTER,
                    HeaderName::from_static(middleware::REQUEST_ID_HEADER),
                    HeaderName::from_static("ratelimit"),
                    HeaderName::from_static("ratelimit-policy"),
                ])
                .allow_credentials(true)
                .max_age(Duration::from_secs(600)),
        );
    }
    router = router
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer((
            middleware::security_headers(state.hsts().clone()),
            axum::middleware::from_fn_with_state(state.clone(), middleware::frame),
        ));
    if config.compression {
        router = router.layer(axum::middleware::from_fn(compression::compress));
    }
    router.with_state(state)
}
