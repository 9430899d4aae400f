//! Invalidation signals over PostgreSQL `LISTEN`/`NOTIFY` (see
//! [`crm_core::storage::invalidation`] for what they are for and why the caches stay
//! correct).
//!
//! * **Sending.** The write path calls `notify` inside the commit's transaction with the
//!   names [`invalidations_of`](crm_core::storage::invalidation::invalidations_of) gives:
//!   one `pg_notify` on [`CHANNEL`] per stale entry. PostgreSQL delivers notifications only
//!   when (and after) the transaction commits, so a signal never announces a change that
//!   rolled back or that readers cannot see yet.
//! * **Listening.** The first [`PgStore::subscribe_invalidations`](crate::PgStore) starts
//!   one task per store (shared by its clones) holding a connection of its own (reported as
//!   `application_name` [`LISTENER_APPLICATION_NAME`]) that listens on [`CHANNEL`] and hands
//!   every signal to the registered sinks. The task ends with the last clone of the store.
//! * **Reconnecting.** When the connection is lost (the server restarted, a proxy or an
//!   operator killed it), signals sent meanwhile are lost: the task reconnects — right away,
//!   then backing off up to 5 s while the server cannot be reached — and once it listens
//!   again reports [`Invalidation::All`], so the caches start over. While it is down, the
//!   caches' TTLs bound staleness as before.
//!
//! PostgreSQL serializes the commits of transactions that notify (a cluster-wide lock taken
//! at commit): only revocations and user writes notify — a few per second, never the
//! data writes of the CRM — so this costs nothing measurable.
//!
//! The channel is this module's own: other features' notifications (the change feed) use
//! theirs and never reach these sinks.

use std::sync::Arc;
use std::time::Duration;

use crm_core::storage::Invalidation;
use crm_core::storage::invalidation::Sinks;
use sqlx::PgConnection;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

use crate::error::db;

/// The notification channel of invalidation signals.
pub const CHANNEL: &str = "crm_invalidation";

/// The `application_name` of the listener's connection (find it in `pg_stat_activity`).
pub const LISTENER_APPLICATION_NAME: &str = "crm-invalidation-listener";

/// Longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Queues one notification per signal on [`CHANNEL`], delivered when the transaction
/// commits (PostgreSQL folds duplicates within one transaction).
///
/// # Errors
/// Storage failures (the commit then fails as a whole).
pub(crate) async fn notify(
    tx: &mut PgConnection,
    signals: &[Invalidation],
) -> crm_core::Result<()> {
    if signals.is_empty() {
        return Ok(());
    }
    let payloads: Vec<String> = signals.iter().map(Invalidation::encode).collect();
    sqlx::query("SELECT pg_notify($1, p) FROM UNNEST($2::text[]) AS u(p)")
        .bind(CHANNEL)
        .bind(&payloads)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    Ok(())
}

/// The listener of one store: the sinks, and the task feeding them (aborted on drop).
pub(crate) struct Listener {
    pub(crate) sinks: Arc<Sinks>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    /// Starts the listening task on the current runtime; `None` outside one.
    pub(crate) fn start(connect: &PgConnectOptions) -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let sinks = Arc::new(Sinks::default());
        let options = connect.clone().application_name(LISTENER_APPLICATION_NAME);
        let task = runtime.spawn(listen_forever(options, sinks.clone()));
        Some(Listener { sinks, task })
    }
}

/// Listens, delivers, and reconnects whenever the connection is lost.
async fn listen_forever(options: PgConnectOptions, sinks: Arc<Sinks>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match listen(&options).await {
            Ok(mut listener) => {
                backoff = Duration::from_millis(50);
                // Anything sent before this LISTEN took effect was not heard.
                sinks.deliver(&Invalidation::All);
                loop {
                    match listener.try_recv().await {
                        Ok(Some(n)) => {
                            if let Some(signal) = Invalidation::decode(n.payload()) {
                                sinks.deliver(&signal);
                            }
                        }
                        // Lost and already listening again (sqlx reconnects eagerly).
                        Ok(None) => sinks.deliver(&Invalidation::All),
                        Err(e) => {
                            tracing::warn!(error = %e, "invalidation listener lost its connection; reconnecting");
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "invalidation listener cannot connect; retrying");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn listen(options: &PgConnectOptions) -> Result<PgListener, sqlx::Error> {
    // A pool of one connection, used by the listener only to reconnect.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options.clone())
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
