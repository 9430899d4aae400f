//! [`AppState`]: what the router's handlers share.

use std::sync::{Arc, RwLock};

use crm_core::id::WorkspaceId;
use crm_core::identity::Identity;
use crm_core::ratelimit::{CoreClock, InProcessLimiter, RateLimiter};
use crm_core::{Crm, Result};

use crate::config::HttpConfig;
use crate::metrics::Metrics;

struct Inner {
    identity: Identity,
    config: HttpConfig,
    limiter: Arc<dyn RateLimiter>,
    metrics: Metrics,
    csrf_key: Vec<u8>,
    default_workspace: RwLock<Option<WorkspaceId>>,
    /// Slots of [`HttpConfig::max_concurrent_requests`], if limited.
    slots: Option<Arc<tokio::sync::Semaphore>>,
    /// Serializes closed sign-ups, so two racing requests cannot both create "the first"
    /// workspace.
    signup: tokio::sync::Mutex<()>,
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
    /// `Validation` for invalid quotas; `StorageFailure` when no random key for CSRF tokens
    /// can be drawn.
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
    /// `StorageFailure` when no random key for CSRF tokens can be drawn.
    pub fn with_limiter(
        identity: Identity,
        config: HttpConfig,
        limiter: Arc<dyn RateLimiter>,
    ) -> Result<Self> {
        let csrf_key = match &config.csrf_secret {
            Some(s) => s.expose().to_vec(),
            None => {
                let mut key = vec![0u8; 32];
                getrandom::fill(&mut key).map_err(|e| {
                    crm_core::Error::new(crm_core::ErrorKind::StorageFailure)
                        .with_source(e.to_string())
                })?;
                key
            }
        };
        let slots = config
            .max_concurrent_requests
            .map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1))));
        Ok(AppState {
            inner: Arc::new(Inner {
                slots,
                identity,
                config,
                limiter,
                metrics: Metrics::default(),
                csrf_key,
                default_workspace: RwLock::new(None),
                signup: tokio::sync::Mutex::new(()),
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

    /// The metrics in the Prometheus text format (what `GET /metrics` answers).
    pub fn metrics_text(&self) -> String {
        self.inner.metrics.render()
    }

    pub(crate) fn csrf_key(&self) -> &[u8] {
        &self.inner.csrf_key
    }
}
