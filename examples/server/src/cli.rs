//! Command-line settings: every flag also reads an environment variable (shown by `--help`).
//! The defaults are the seeds' values and safe local settings.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use crm_http::IpNetwork;

/// `crm-server`: the crm engine as a REST API (mounted at `/api/v1`).
#[derive(Debug, Parser)]
#[command(
    name = "crm-server",
    version,
    about = "The crm engine as a REST API at /api/v1, on an embedded redb store (default) or PostgreSQL (DATABASE_URL).",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings of `serve` when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the REST API (the default).
    Serve(ServeArgs),
    /// Fill the installation's workspace with realistic demo data (creating the workspace
    /// and its admin first if the store has none).
    Seed(SeedArgs),
}

/// Where the data lives: the embedded store in a data directory, or PostgreSQL.
#[derive(Clone, Args)]
pub struct StoreArgs {
    /// Data directory: the embedded store (`crm.redb`) and, in local mode, the generated JWT
    /// secret live here. Created (owner-only) if missing.
    #[arg(long, env = "CRM_DATA_DIR", default_value = "./crm-data")]
    pub data_dir: PathBuf,
    /// PostgreSQL connection URL; when set, PostgreSQL replaces the embedded store. TLS to
    /// the database follows the URL's `sslmode` (e.g. `?sslmode=verify-full`); without
    /// one, outside local mode a database on another machine is reached with
    /// `sslmode=require` (`verify-full` with `--database-ca`), never in plaintext.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// CA certificate(s) (PEM) that the PostgreSQL server's certificate must chain to;
    /// a URL without `sslmode` then connects with `verify-full`. Default: libpq's
    /// `PGSSLROOTCERT`, if set.
    #[arg(long, env = "CRM_DATABASE_CA")]
    pub database_ca: Option<PathBuf>,
    /// Largest number of PostgreSQL connections this instance opens.
    #[arg(long, env = "CRM_DB_POOL_SIZE", default_value_t = 10)]
    pub db_pool_size: u32,
    /// How long a request waits for a free PostgreSQL connection, in seconds.
    #[arg(long, env = "CRM_DB_ACQUIRE_TIMEOUT_SECS", default_value_t = 5)]
    pub db_acquire_timeout_secs: u64,
    /// PostgreSQL statement timeout in seconds (0: none).
    #[arg(long, env = "CRM_DB_STATEMENT_TIMEOUT_SECS", default_value_t = 30)]
    pub db_statement_timeout_secs: u64,
    /// Page cache of the embedded store, in MiB (redb's own default would be 1 GiB).
    #[arg(long, env = "CRM_REDB_CACHE_MB", default_value_t = 64)]
    pub redb_cache_mb: usize,
    /// Most threads for blocking work (the embedded store's reads). Default: one per core;
    /// more only add contention and starve the threads that answer requests.
    #[arg(long, env = "CRM_STORE_THREADS")]
    pub store_threads: Option<usize>,
}

impl fmt::Debug for StoreArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreArgs")
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "<redacted>"),
            )
            .field("database_ca", &self.database_ca)
            .field("db_pool_size", &self.db_pool_size)
            .field("db_acquire_timeout_secs", &self.db_acquire_timeout_secs)
            .field("db_statement_timeout_secs", &self.db_statement_timeout_secs)
            .field("redb_cache_mb", &self.redb_cache_mb)
            .field("store_threads", &self.store_threads)
            .finish()
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging settings (logs go to standard error).
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log format.
    #[arg(long, env = "CRM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter: a level (`error`, `warn`, `info`, `debug`) or `tracing` directives such
    /// as `info,crm_http=debug`. `info` logs every request.
    #[arg(long, env = "CRM_LOG", default_value = "info")]
    pub log_level: String,
}

/// The number of cores this process may use (at least 1).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

impl StoreArgs {
    /// `--database-ca`, or else the `PGSSLROOTCERT` environment variable.
    pub fn database_ca(&self) -> Option<PathBuf> {
        self.database_ca
            .clone()
            .or_else(|| std::env::var_os("PGSSLROOTCERT").map(PathBuf::from))
            .filter(|p| !p.as_os_str().is_empty())
    }

    /// `--store-threads`, or its default: one per core, at least 2.
    pub fn store_threads(&self) -> usize {
        self.store_threads.unwrap_or_else(|| cores().max(2)).max(1)
    }
}

impl ServeArgs {
    /// `--max-concurrent-requests`, or its default (8 per core); `None` for no limit.
    pub fn request_limit(&self) -> Option<usize> {
        match self.max_concurrent_requests {
            Some(0) => None,
            Some(n) => Some(n),
            None => Some(8 * cores()),
        }
    }
}

/// Settings of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on. A loopback address is local mode: plain HTTP is fine and a JWT
    /// secret is generated if none is given. Any other address requires HTTPS: TLS served
    /// here (`--tls-cert`/`--tls-key`) or a trusted proxy that terminates it.
    #[arg(long, env = "CRM_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// TLS certificate chain (PEM); with `--tls-key`, the server speaks HTTPS itself.
    #[arg(long, env = "CRM_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "CRM_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Also listen for plain HTTP on this port (same address as `--bind`), answering `GET`
    /// and `HEAD` with `308` to the `https://` URL and anything else with `403` (`E4005`).
    /// Needs `--tls-cert`: the redirect goes to this server's HTTPS port.
    #[arg(long, env = "CRM_REDIRECT_HTTP", requires = "tls_cert")]
    pub redirect_http: Option<u16>,
    /// Serve `/metrics` on this address instead of the API's (e.g. `127.0.0.1:9464`, kept
    /// internal). Otherwise, outside local mode, the API's `/metrics` needs the bearer token
    /// of `CRM_METRICS_TOKEN` (environment only, 32+ characters), and without a token it is
    /// not served at all.
    #[arg(long, env = "CRM_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,
    /// Tokens of another identity provider.
    #[command(flatten)]
    pub external: crate::external::ExternalArgs,
    /// Proxies (addresses or CIDR networks, comma-separated) whose `X-Forwarded-For`,
    /// `X-Forwarded-Proto` and `X-Request-Id` are believed.
    #[arg(
        long = "trusted-proxy",
        env = "CRM_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<IpNetwork>,
    /// Origins allowed to call the API from a browser (comma-separated; default none).
    #[arg(long = "cors-origin", env = "CRM_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "CRM_BODY_LIMIT", default_value_t = crm_http::config::DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
    /// Most API requests worked on at once; more wait their turn, and `/health` never
    /// waits, so it stays fast under any load. Default: 8 per core; 0: no limit.
    #[arg(long, env = "CRM_MAX_CONCURRENT_REQUESTS")]
    pub max_concurrent_requests: Option<usize>,
    /// Let anyone create a new workspace by signing up (default: only the first one).
    #[arg(long, env = "CRM_OPEN_SIGNUP")]
    pub open_signup: bool,
    /// Requests per minute per signed-in user.
    #[arg(long, env = "CRM_RATE_USER_PER_MINUTE", default_value_t = 100)]
    pub rate_user_per_minute: u32,
    /// Unauthenticated requests per minute per client address.
    #[arg(long, env = "CRM_RATE_ADDRESS_PER_MINUTE", default_value_t = 60)]
    pub rate_address_per_minute: u32,
    /// Login attempts per minute per client address.
    #[arg(long, env = "CRM_RATE_LOGIN_PER_MINUTE", default_value_t = 10)]
    pub rate_login_per_minute: u32,
    /// Token refreshes per minute per client address.
    #[arg(long, env = "CRM_RATE_REFRESH_PER_MINUTE", default_value_t = 30)]
    pub rate_refresh_per_minute: u32,
    /// Password-reset requests per hour per client address and per email.
    #[arg(long, env = "CRM_RATE_RESET_PER_HOUR", default_value_t = 5)]
    pub rate_reset_per_hour: u32,
    /// Keep rate limits and the failed-login throttle in this process even on PostgreSQL. By
    /// default, with DATABASE_URL, every instance on the database shares one set of limits
    /// (leased from the database in small batches) and one count of failed logins; with this
    /// flag each instance enforces its own copy.
    #[arg(long, env = "CRM_LOCAL_RATE_LIMITS")]
    pub local_rate_limits: bool,
    /// Seconds a replaced refresh token still answers the session's current token (two tabs
    /// refreshing at once); a replay after that revokes the session.
    #[arg(long, env = "CRM_REFRESH_GRACE_SECS", default_value_t = 10)]
    pub refresh_grace_secs: u64,
    /// bcrypt cost of new password hashes (12 as the seeds ask; 4..=31).
    #[arg(long, env = "CRM_BCRYPT_COST", default_value_t = 12)]
    pub bcrypt_cost: u32,
    /// How long a client has to send a request's headers (and, over HTTPS, to finish the
    /// TLS handshake), in seconds; slower connections are closed.
    #[arg(long, env = "CRM_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// How long shutdown waits for in-flight requests, in seconds.
    #[arg(long, env = "CRM_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,
    /// Do not keep the access log (who read which records; on by default).
    #[arg(long, env = "CRM_NO_ACCESS_LOG")]
    pub no_access_log: bool,
    /// Seconds between retention runs (purging the trash, old logs and ended sessions per
    /// each workspace's retention policy); the first runs at start-up. 0: never.
    #[arg(long, env = "CRM_RETENTION_INTERVAL", default_value_t = 3600)]
    pub retention_interval: u64,
    /// Start of the password-reset link printed for each reset request (the token is
    /// appended). The server prints links on standard output instead of mailing them.
    #[arg(
        long,
        env = "CRM_RESET_LINK",
        default_value = "http://localhost:8080/reset-password?token="
    )]
    pub reset_link: String,
}

/// Settings of `seed`.
#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// Name of the workspace, if the store has none yet.
    #[arg(long, env = "CRM_SEED_WORKSPACE", default_value = "Demo")]
    pub workspace_name: String,
    /// Email of the workspace's admin: created with `--admin-password` if the store has no
    /// workspace yet; otherwise an existing user of the installation's workspace, recorded
    /// as the author of the demo data.
    #[arg(
        long,
        env = "CRM_SEED_ADMIN_EMAIL",
        default_value = "admin@example.com"
    )]
    pub admin_email: String,
    /// Password of the new admin (needed only when the store has no workspace yet).
    #[arg(long, env = "CRM_SEED_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// bcrypt cost of the new admin's password hash.
    #[arg(long, env = "CRM_BCRYPT_COST", default_value_t = 12)]
    pub bcrypt_cost: u32,
    /// Companies to add.
    #[arg(long, default_value_t = 1_000)]
    pub companies: usize,
    /// Contacts to add.
    #[arg(long, default_value_t = 10_000)]
    pub contacts: usize,
    /// Deals to add.
    #[arg(long, default_value_t = 2_000)]
    pub deals: usize,
    /// Tasks to add.
    #[arg(long, default_value_t = 5_000)]
    pub tasks: usize,
    /// Notes to add.
    #[arg(long, default_value_t = 20_000)]
    pub notes: usize,
    /// Seed of the generator (the same seed gives the same names and values).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_is_the_default_and_flags_parse() {
        let cli = Cli::try_parse_from([
            "crm-server",
            "--bind",
            "0.0.0.0:9000",
            "--trusted-proxy",
            "10.0.0.0/8,127.0.0.1",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.bind.port(), 9000);
        assert_eq!(cli.serve.trusted_proxies.len(), 2);
        assert_eq!(cli.serve.rate_user_per_minute, 100);
        let cli = Cli::try_parse_from(["crm-server", "seed", "--contacts", "5"]).unwrap();
        match cli.command {
            Some(Command::Seed(s)) => assert_eq!(s.contacts, 5),
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["crm-server", "--tls-cert", "c.pem"]).is_err());
        assert!(Cli::try_parse_from(["crm-server", "--trusted-proxy", "nope"]).is_err());
    }

    #[test]
    fn database_urls_do_not_print() {
        let cli = Cli::try_parse_from([
            "crm-server",
            "--database-url",
            "postgres://crm:hunter2@db/crm",
        ])
        .unwrap();
        assert!(!format!("{cli:?}").contains("hunter2"));
    }
}
