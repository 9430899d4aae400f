//! Recording record views (for `GET /me/recent`) off the read path.
//!
//! A successful `GET /<resource>/{id}` hands a [`View`] to a bounded in-memory queue
//! (`try_send`: it never waits; when the queue is full the view is dropped and counted) and
//! answers. A background task drains the queue and writes the views with one
//! [`Storage::record_views`](crm_core::Storage::record_views) call per batch: whatever is
//! queued once a batch is full, or every [`FLUSH_EVERY`]. Memory stays bounded by
//! [`QUEUE`] views. A crash loses the views still queued: at most [`FLUSH_EVERY`] of them
//! (plus one write in flight), never a record or anything else. A failed write drops its
//! batch (recently viewed is a convenience, not a record of truth).

use std::sync::OnceLock;
use std::time::Duration;

use crm_core::Crm;
use crm_core::views::View;
use tokio::sync::mpsc;

/// Views waiting to be written, at most.
pub const QUEUE: usize = 10_000;
/// Views written in one call, at most.
pub const BATCH: usize = 500;
/// The longest a view waits in the queue.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The queue and its writer task (started on first use, inside the runtime).
#[derive(Default)]
pub(crate) struct ViewLog {
    tx: OnceLock<mpsc::Sender<View>>,
}

impl ViewLog {
    /// Queues a view; never waits. Returns whether it was queued.
    pub(crate) fn record(&self, crm: &Crm, view: View) -> bool {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(writer(crm.clone(), rx));
            tx
        });
        tx.try_send(view).is_ok()
    }
}

async fn writer(crm: Crm, mut rx: mpsc::Receiver<View>) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let Some(first) = rx.recv().await else {
            return;
        };
        batch.push(first);
        let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(v)) => batch.push(v),
                Ok(None) | Err(_) => break,
            }
        }
        if let Err(e) = crm.storage().record_views(&batch).await {
            tracing::warn!(error = ?e, views = batch.len(), "recently viewed: a batch was dropped");
        }
        batch.clear();
    }
}
