//! [`AppState`]: what the router's handlers share.

use std::sync::{Arc, RwLock};

use axum::http::HeaderValue;

use crm_core::id::WorkspaceId;
use crm_core::identity::Identity;
use crm_core::ratelimit::{CoreClock, InProcessLimiter, RateLimiter};
use crm_core::{Crm, Result};

use crate::config::HttpConfig;
use crate::metrics::Metrics;
use prometheus_client::registry::Registry;

/// HKDF label of the CSRF key derived from the JWT secret (see [`Identity::derive_key`]).
const CSRF_KEY_LABEL: &[u8] = b"crm-http/csrf/v1";

struct Inner {
    identity: Identity,
    config: HttpConfig,
    limiter: Arc<dyn RateLimiter>,
    metrics: Metrics,
    csrf_key: Vec<u8>,
    /// `Strict-Transport-Security`, built once from the configuration.
    hsts: HeaderValue,
    default_workspace: RwLock<Option<WorkspaceId>>,
    /// Slots of [`HttpConfig::max_concurrent_requests`], if limited.
    slots: Option<Arc<tokio::sync::Semaphore>>,
    /// Serializes closed sign-ups, so two racing requests cannot both create "the first"
    /// workspace.
    signup: tokio::sync::Mutex<()>,
    /// The registry `/metrics` renders: the adapter's series and the host's (see
    /// [`AppState::with_registry`]).
    registry: RwLock<Registry>,
    /// Views waiting to be recorded (recently viewed).
    views: crate::views::ViewLog,
}

/// The state of [`crate::router`]: the identity layer (and through it the [`Crm`] engine),
/// the settings, the rate limiter and the metrics. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.inner.config)
            .field("default_workspace", &self.default_workspace())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over `identity` (which holds the engine) with an in-process rate limiter built
    /// from `config.rate_limits`, on the engine's clock.
    ///
    /// # Errors
    /// `Validation` for invalid quotas.
    pub fn new(identity: Identity, config: HttpConfig) -> Result<Self> {
        let limiter = InProcessLimiter::with_clock(
            config.rate_limits.clone(),
            CoreClock::new(identity.crm().clock()),
        )?;
        Self::with_limiter(identity, config, Arc::new(limiter))
    }

    /// State with a given rate limiter (e.g. one shared by several instances, or the one the
    /// identity layer uses).
    ///
    /// # Errors
    /// None today; the `Result` leaves room for settings that can be invalid.
    pub fn with_limiter(
        identity: Identity,
        config: HttpConfig,
        limiter: Arc<dyn RateLimiter>,
    ) -> Result<Self> {
        // Derived from the JWT secret unless configured: the same on every instance and
        // after a restart, so a browser's CSRF token stays valid as long as its session.
        let csrf_key = match &config.csrf_secret {
            Some(s) => s.expose().to_vec(),
            None => identity.derive_key(CSRF_KEY_LABEL).to_vec(),
        };
        let slots = config
            .max_concurrent_requests
            .map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1))));
        let hsts = HeaderValue::from_str(&format!(
            "max-age={}; includeSubDomains",
            config.hsts_max_age_secs
        ))
        .expect("digits and ASCII make a valid header value");
        let mut registry = Registry::default();
        let metrics = Metrics::new(&mut registry);
        Ok(AppState {
            inner: Arc::new(Inner {
                slots,
                hsts,
                identity,
                config,
                limiter,
                metrics,
                csrf_key,
                default_workspace: RwLock::new(None),
                signup: tokio::sync::Mutex::new(()),
                registry: RwLock::new(registry),
                views: crate::views::ViewLog::default(),
            }),
        })
    }

    /// Names the installation's workspace: login and password-reset requests that name no
    /// workspace use it, and sign-up is closed (unless [`HttpConfig::open_signup`]) because
    /// the installation is set up. Without it, the first successful sign-up sets it.
    #[must_use]
    pub fn with_default_workspace(self, workspace: WorkspaceId) -> Self {
        if let Ok(mut w) = self.inner.default_workspace.write() {
            *w = Some(workspace);
        }
        self
    }

    /// The workspace used when a request names none (see
    /// [`AppState::with_default_workspace`]).
    pub fn default_workspace(&self) -> Option<WorkspaceId> {
        self.inner.default_workspace.read().ok().and_then(|w| *w)
    }

    /// The installation's workspace: the one named by
    /// [`AppState::with_default_workspace`] or claimed by sign-up, else the oldest workspace
    /// in storage (found once, then remembered). This is how an installation that restarts,
    /// or runs several instances on one database, keeps sign-up closed and keeps logins that
    /// name no workspace working.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn installation_workspace(&self) -> Result<Option<WorkspaceId>> {
        if let Some(ws) = self.default_workspace() {
            return Ok(Some(ws));
        }
        let Some(first) = self.crm().storage().workspaces(1).await?.into_iter().next() else {
            return Ok(None);
        };
        self.claim_first_workspace(first);
        Ok(self.default_workspace())
    }

    /// Records the first workspace created by sign-up; answers whether it was the first.
    pub(crate) fn claim_first_workspace(&self, workspace: WorkspaceId) -> bool {
        match self.inner.default_workspace.write() {
            Ok(mut w) if w.is_none() => {
                *w = Some(workspace);
                true
            }
            _ => false,
        }
    }

    /// Waits for a request slot, if requests are limited (see
    /// [`HttpConfig::max_concurrent_requests`]); the slot is held until the permit drops.
    pub(crate) async fn request_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        match &self.inner.slots {
            Some(s) => s.clone().acquire_owned().await.ok(),
            None => None,
        }
    }

    pub(crate) fn views(&self) -> &crate::views::ViewLog {
        &self.inner.views
    }

    pub(crate) fn signup_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.inner.signup
    }

    /// The identity layer.
    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// The engine.
    pub fn crm(&self) -> &Crm {
        self.inner.identity.crm()
    }

    /// The settings.
    pub fn config(&self) -> &HttpConfig {
        &self.inner.config
    }

    /// The rate limiter.
    pub fn limiter(&self) -> &Arc<dyn RateLimiter> {
        &self.inner.limiter
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Gives `f` the metrics registry, for series of the host's own (process resources,
    /// connections, the store's pool): it can register metrics it keeps and updates, or a
    /// [`Collector`](prometheus_client::collector::Collector) that reads its values on each
    /// scrape (which must then be quick). Their series follow the adapter's own in every
    /// rendering; names must not clash with the adapter's (`crm_http_*`).
    ///
    /// ```
    /// # fn demo(state: &crm_http::AppState) {
    /// use prometheus_client::metrics::counter::Counter;
    ///
    /// let jobs = Counter::<u64>::default();
    /// state.with_registry(|r| r.register("host_jobs", "Jobs the host ran", jobs.clone()));
    /// jobs.inc(); // `host_jobs_total 1` in /metrics
    /// # }
    /// ```
    pub fn with_registry<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        let mut registry = self
            .inner
            .registry
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut registry)
    }

    /// The metrics in the Prometheus text format (what `GET /metrics` answers): the
    /// adapter's series, then the host's.
    pub fn metrics_text(&self) -> String {
        let registry = self
            .inner
            .registry
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        crate::metrics::render(&registry)
    }

    pub(crate) fn hsts(&self) -> &HeaderValue {
        &self.inner.hsts
    }

    pub(crate) fn csrf_key(&self) -> &[u8] {
        &self.inner.csrf_key
    }
}
