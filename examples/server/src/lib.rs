//! # crm-server
//!
//! The standalone server: the whole crm engine as a REST API (the [`crm_http`] router,
//! mounted at `/api/v1`), on the embedded redb store or on PostgreSQL. Run it with
//!
//! ```text
//! cargo run --release -p crm-server                      # http://127.0.0.1:8080, data in ./crm-data
//! DATABASE_URL=postgres://... cargo run --release -p crm-server
//! cargo run --release -p crm-server -- seed --admin-password 'demo pass' --contacts 100000
//! cargo run --release -p crm-server -- --help            # every setting, with its variable
//! ```
//!
//! The pieces, each its own module: [`cli`] (settings from flags and environment variables),
//! [`store`] (opening the chosen store, closing it on shutdown), [`dbtls`] (TLS to
//! PostgreSQL), [`secret`] (the JWT secret: environment, or generated once in local mode),
//! [`external`] (another identity provider's tokens), [`tls`] (HTTPS with rustls),
//! [`redirect`] (plain HTTP to HTTPS), [`metrics`] (who may read `/metrics`),
//! [`resources`] (process, connection and store series in `/metrics`), [`refusal`] (coded
//! errors of the small listeners), [`serve`] (the HTTP server, graceful shutdown), [`seed`]
//! (demo data) and [`logging`].
//!
//! **Local mode** is a loopback `--bind` address (the default): plain HTTP, and a JWT secret
//! generated on first start into the data directory (owner-only) with a warning. Outside it,
//! `CRM_JWT_SECRET` is required, and plain HTTP is refused (`403`, `E4005`) unless it comes
//! from a `--trusted-proxy` that says `X-Forwarded-Proto: https`; with `--tls-cert` and
//! `--tls-key` the server speaks HTTPS itself.

pub mod cli;
pub mod dbtls;
pub mod external;
pub mod logging;
pub mod metrics;
pub mod redirect;
pub mod refusal;
pub mod resources;
pub mod secret;
pub mod seed;
pub mod serve;
pub mod store;
pub mod tls;

/// A start-up or command failure, with a message for the operator (never a secret).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An error and its sources, joined with `: ` — for operators' messages. crm errors show
/// only their user-facing message; their sources (driver errors) say what went wrong.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}
