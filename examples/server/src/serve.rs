//! `crm-server serve`: builds the engine on the chosen store, mounts the [`crm_http`] router
//! at `/api/v1`, and serves it over HTTP or HTTPS until SIGINT or SIGTERM.
//!
//! Connections are served by hyper (HTTP/1.1, over rustls with `--tls-cert`); a client has
//! `--header-timeout-secs` to send its request headers, so idle half-open connections
//! cannot pile up. Shutdown is graceful: the listener closes at once, in-flight requests
//! finish (up to `--shutdown-timeout-secs`), idle keep-alive connections are closed, then
//! the store is closed (redb commits every queued write first) and the process exits with
//! status 0.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use crm_core::identity::{Identity, IdentityConfig, PasswordConfig, ResetDelivery, SecretToken};
use crm_core::model::User;
use crm_core::ratelimit::{
    CoreClock, InProcessLimiter, LoginThrottle, LoginThrottler, Quota, RateLimitConfig, RateLimiter,
};
use crm_core::{Crm, CrmConfig, Timestamp};
use crm_http::{AppState, HttpConfig, SecureTransport};
use crm_store_postgres::{PgLoginThrottle, PgRateLimiter};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::Service;

use crate::BoxError;
use crate::cli::ServeArgs;
use crate::resources::Connections;
use crate::secret;
use crate::store::OpenStore;

/// Where the router is mounted.
pub const API_PREFIX: &str = "/api/v1";

/// Prints password-reset links on standard output (never in the logs) — the stand-in for
/// the mail a real deployment would send.
#[derive(Debug, Clone)]
pub struct PrintResetLink {
    /// The link's start; the token is appended.
    pub link: String,
}

#[async_trait::async_trait]
impl ResetDelivery for PrintResetLink {
    async fn deliver(
        &self,
        user: &User,
        token: &SecretToken,
        expires_at: Timestamp,
    ) -> crm_core::Result<()> {
        println!(
            "password reset for {}: {}{} (valid until {})",
            user.email,
            self.link,
            token.expose(),
            expires_at
        );
        Ok(())
    }
}

/// The rate limits of the settings.
pub fn rate_limits(args: &ServeArgs) -> RateLimitConfig {
    RateLimitConfig {
        user: Quota::per_minute(args.rate_user_per_minute),
        address: Quota::per_minute(args.rate_address_per_minute),
        login: Quota::per_minute(args.rate_login_per_minute),
        refresh: Quota::per_minute(args.rate_refresh_per_minute),
        password_reset: Quota::per_hour(args.rate_reset_per_hour),
        ..RateLimitConfig::default()
    }
}

/// Runs the server until a shutdown signal; see the [module docs](self).
///
/// # Errors
/// Invalid settings, a store that cannot be opened, an address that cannot be bound, or a
/// store that fails to close cleanly.
pub async fn run(args: ServeArgs) -> Result<(), BoxError> {
    crate::logging::init(&args.log)?;
    let local = args.bind.ip().is_loopback();
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
        _ => None,
    };
    let require_https = !local && tls.is_none();
    if require_https && args.trusted_proxies.is_empty() {
        return Err(format!(
            "{} is not a loopback address, so plain HTTP is refused: give --tls-cert and --tls-key, \
             or --trusted-proxy for the TLS-terminating proxy in front of this server",
            args.bind
        )
        .into());
    }
    let metrics_token = crate::metrics::token(std::env::var(crate::metrics::TOKEN_ENV).ok())?;
    if args.store.database_url.is_some()
        && let Some(ca) = args.store.database_ca()
    {
        crate::dbtls::check_ca(&ca)?;
    }
    let (jwt_secret, origin) =
        secret::load(std::env::var(secret::ENV).ok(), &args.store.data_dir, local)?;
    if origin != secret::Origin::Environment {
        tracing::warn!(
            file = %args.store.data_dir.join(secret::FILE).display(),
            generated = origin == secret::Origin::Generated,
            "no {} set: using the local secret file (local mode only; set the variable in production)",
            secret::ENV
        );
    }

    let exposure = crate::metrics::plan(local, metrics_token.is_some(), args.metrics_bind);
    // Bound before the store opens, so a taken address fails fast.
    let metrics_listener = match exposure {
        crate::metrics::Exposure::Listener(addr) => Some(crate::metrics::bind(addr).await?),
        _ => None,
    };

    let external = crate::external::config(
        std::env::var(crate::external::SECRET_ENV).ok(),
        &jwt_secret,
        &args.external,
    )?;

    let store = OpenStore::open(&args.store, local).await?;
    let crm = Crm::new(store.storage(), CrmConfig::default());
    let limits = rate_limits(&args);
    let mut identity_config = IdentityConfig::new(jwt_secret);
    identity_config.password = PasswordConfig {
        cost: args.bcrypt_cost,
        ..PasswordConfig::default()
    };
    identity_config.rate_limits = limits.clone();
    if let Some(external) = external {
        tracing::info!(
            issuer = external.issuer.as_deref().unwrap_or("(any)"),
            audience = external.audience.as_deref().unwrap_or("(any)"),
            user_claim = ?external.user_claim,
            provision = external.provision,
            "accepting external identity tokens (HS256)"
        );
        identity_config.external_default = Some(external);
    }
    identity_config.refresh_grace = Duration::from_secs(args.refresh_grace_secs);
    let delivery = Arc::new(PrintResetLink {
        link: args.reset_link.clone(),
    });
    // One limiter for the identity layer and the router: shared through PostgreSQL unless
    // asked to stay local, else in this process.
    let limiter: Arc<dyn RateLimiter> = match &store {
        OpenStore::Postgres(pg) if !args.local_rate_limits => Arc::new(
            PgRateLimiter::new(pg, limits.clone())
                .map_err(|e| format!("rate limits: {}", crate::chain(&e)))?,
        ),
        _ => Arc::new(
            InProcessLimiter::with_clock(limits.clone(), CoreClock::new(crm.clock()))
                .map_err(|e| format!("rate limits: {}", crate::chain(&e)))?,
        ),
    };
    let shared_limits = matches!(store, OpenStore::Postgres(_)) && !args.local_rate_limits;
    // The login throttle's failure counts: shared the same way.
    let throttle: Arc<dyn LoginThrottler> = match &store {
        OpenStore::Postgres(pg) if shared_limits => Arc::new(
            PgLoginThrottle::new(pg, identity_config.login_throttle.clone())
                .map_err(|e| format!("login throttle: {}", crate::chain(&e)))?,
        ),
        _ => Arc::new(
            LoginThrottle::new(identity_config.login_throttle.clone())
                .map_err(|e| format!("login throttle: {}", crate::chain(&e)))?,
        ),
    };
    let identity = Identity::with_limits(crm, identity_config, delivery, limiter.clone(), throttle)
        .map_err(|e| format!("identity settings: {}", crate::chain(&e)))?;
    let http = HttpConfig {
        body_limit: args.body_limit,
        open_signup: args.open_signup,
        trusted_proxies: args.trusted_proxies.clone(),
        cors_allowed_origins: args.cors_origins.clone(),
        rate_limits: limits,
        require_https,
        max_concurrent_requests: args.request_limit(),
        expose_metrics: matches!(
            exposure,
            crate::metrics::Exposure::Public | crate::metrics::Exposure::Token
        ),
        metrics_token: metrics_token.clone(),
        ..HttpConfig::default()
    };
    let state = AppState::with_limiter(identity, http, limiter)
        .map_err(|e| format!("HTTP settings: {}", crate::chain(&e)))?;
    match state.installation_workspace().await {
        Ok(Some(ws)) => tracing::info!(workspace = %ws, "installation workspace found"),
        Ok(None) => tracing::info!(
            "no workspace yet: POST {API_PREFIX}/auth/signup creates it and its first admin"
        ),
        Err(e) => tracing::warn!(error = %crate::chain(&e), "storage not reachable at start"),
    }
    let app = Router::new().nest(API_PREFIX, crm_http::router(state.clone()));
    let (api_conns, redirect_conns, metrics_conns) = (
        Connections::default(),
        Connections::default(),
        Connections::default(),
    );
    let series = crate::resources::ServerSeries {
        listeners: vec![
            ("api", api_conns.clone()),
            ("redirect", redirect_conns.clone()),
            ("metrics", metrics_conns.clone()),
        ],
        store: store.clone(),
    };
    state.with_registry(|r| r.register_collector(Box::new(series)));

    let listener = TcpListener::bind(args.bind)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.bind))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        store = store.name(),
        rate_limits = if shared_limits { "shared" } else { "local" },
        %addr,
        local,
        "crm-server listening on {scheme}://{addr}{API_PREFIX}"
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stop_tx.send(true);
    });
    match (exposure, metrics_listener) {
        (_, Some(listener)) => {
            let at = listener.local_addr()?;
            if !at.ip().is_loopback() && metrics_token.is_none() {
                tracing::warn!(%at, "the metrics listener is not on a loopback address and needs no token: keep it off public networks, or set {}", crate::metrics::TOKEN_ENV);
            }
            tracing::info!(%at, token = metrics_token.is_some(), "metrics served on http://{at}/metrics");
            tokio::spawn(serve(
                listener,
                crate::metrics::router(state.clone(), metrics_token),
                None,
                stop_rx.clone(),
                Duration::from_secs(args.shutdown_timeout_secs),
                Duration::from_secs(args.header_timeout_secs.max(1)),
                metrics_conns,
            ));
        }
        (crate::metrics::Exposure::Off, None) => tracing::warn!(
            "{API_PREFIX}/metrics is off: outside local mode it needs {} (a bearer token) or --metrics-bind",
            crate::metrics::TOKEN_ENV
        ),
        (crate::metrics::Exposure::Token, None) => {
            tracing::info!(
                "{API_PREFIX}/metrics requires the bearer token of {}",
                crate::metrics::TOKEN_ENV
            );
        }
        _ => {}
    }
    let drain = Duration::from_secs(args.shutdown_timeout_secs);
    let header_timeout = Duration::from_secs(args.header_timeout_secs.max(1));
    if let Some(port) = args.redirect_http {
        let at = SocketAddr::new(args.bind.ip(), port);
        let plain = TcpListener::bind(at)
            .await
            .map_err(|e| format!("cannot listen on --redirect-http {at}: {e}"))?;
        let at = plain.local_addr()?;
        tracing::info!(%at, "redirecting http://{at} to https on port {}", addr.port());
        tokio::spawn(serve(
            plain,
            crate::redirect::router(addr.port()),
            None,
            stop_rx.clone(),
            drain,
            header_timeout,
            redirect_conns,
        ));
    }
    serve(
        listener,
        app,
        tls,
        stop_rx,
        drain,
        header_timeout,
        api_conns,
    )
    .await;
    store
        .close()
        .await
        .map_err(|e| format!("closing the store: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves when `stop` turns true.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The accept loop, for HTTP and HTTPS alike: each connection is served by hyper (HTTP/1.1)
/// on a task of its own, with `header_timeout` to send its request headers (a slow client
/// cannot hold a connection open without sending a request). Every request carries the
/// peer address, and [`SecureTransport`] when it came over TLS. When `stop` turns true the
/// listener closes, idle connections are closed, and in-flight requests get `drain` to
/// finish.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: watch::Receiver<bool>,
    drain: Duration,
    header_timeout: Duration,
    connections: Connections,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop_accepting = std::pin::pin!(stopped(stop));
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop_accepting => break,
        };
        let _ = tcp.set_nodelay(true);
        let (app, tls, watcher) = (app.clone(), tls.clone(), graceful.watcher());
        let open = connections.open();
        tokio::spawn(async move {
            let _open = open;
            match tls {
                None => connection(tcp, app, peer, false, watcher, header_timeout).await,
                Some(acceptor) => {
                    match tokio::time::timeout(header_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            connection(stream, app, peer, true, watcher, header_timeout).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown timeout: abandoning unfinished requests");
    }
}

/// Serves one connection until the client closes it, it times out, or shutdown.
async fn connection<I>(
    io: I,
    app: Router,
    peer: SocketAddr,
    secure: bool,
    watcher: hyper_util::server::graceful::Watcher,
    header_timeout: Duration,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
        let mut app = app.clone();
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        if secure {
            req.extensions_mut().insert(SecureTransport);
        }
        async move { Ok::<_, Infallible>(app.call(req).await.unwrap_or_else(|e| match e {})) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
