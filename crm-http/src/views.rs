//! Recording record views (for `GET /me/recent`) off the read path.
//!
//! A successful `GET /<resource>/{id}` hands a [`View`] to a bounded in-memory queue
//! (`try_send`: it never waits; when the queue is full the view is dropped and counted) and
//! answers. A background task writes the queued views with
//! [`Storage::record_views`](crm_core::Storage::record_views) calls of at most [`BATCH`]
//! views. It wakes on the first view after a quiet spell, then gathers for [`FLUSH_EVERY`]
//! without being woken again (a busy server does not wake it once per request), takes
//! everything queued, keeps only the latest view of each record per user (what `/me/recent`
//! shows is the same), and writes. Memory stays bounded by [`QUEUE`] views. A crash loses the
//! views still queued: at most [`FLUSH_EVERY`] of them (plus one write in flight, and on a
//! store that syncs such writes late, what it has not synced: on redb up to 2 s), never a
//! record or anything else. A failed write drops its batch (recently viewed is a
//! convenience, not a record of truth).

use std::sync::OnceLock;
use std::time::Duration;

use crm_core::Crm;
use crm_core::views::View;
use tokio::sync::mpsc;

/// Views waiting to be written, at most.
pub const QUEUE: usize = 10_000;
/// Views written in one call, at most.
pub const BATCH: usize = 500;
/// How long the writer gathers views after the first one before it writes them: the longest
/// a view waits in the queue (plus the time of the write before it).
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);

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
    let mut queued: Vec<View> = Vec::with_capacity(BATCH);
    loop {
        // Sleeps until a view arrives after a quiet spell...
        if rx.recv_many(&mut queued, QUEUE).await == 0 {
            return;
        }
        // ...then gathers without being woken by each new one, and takes them all.
        tokio::time::sleep(FLUSH_EVERY).await;
        while let Ok(v) = rx.try_recv() {
            queued.push(v);
        }
        let latest = crm_core::views::latest(&queued);
        for batch in latest.chunks(BATCH) {
            if let Err(e) = crm.storage().record_views(batch).await {
                tracing::warn!(error = ?e, views = batch.len(), "recently viewed: a batch was dropped");
            }
        }
        queued.clear();
    }
}
