//! Wake-ups for readers of the change feed across instances: PostgreSQL `LISTEN`/`NOTIFY` on
//! the channel [`CHANNEL`] (its own channel; other signals of the store use others).
//!
//! A signal only says "the feed of this workspace may have grown"; readers then read the
//! feed ([`crate::feed`]), which stays the only source of truth. So losing a signal costs
//! latency, never a change, and the design can afford to be cheap:
//!
//! * **Sending never slows a writer.** A commit that wrote feed entries hands its workspace
//!   id to a bounded queue (`try_send`: when full, the id is dropped — readers re-read
//!   periodically anyway) and returns. A background task drains the queue, coalesces the ids
//!   and sends one `pg_notify` per workspace, outside any commit's transaction (a `NOTIFY`
//!   inside the transaction would take PostgreSQL's notification-queue lock in every commit).
//! * **Listening** starts when the first reader asks (`Storage::watch_changes`): one dedicated
//!   connection (sqlx's `PgListener`, which reconnects by itself) per store. On a
//!   notification every registered waker is called at once, and again every 100 ms for the
//!   next half second — a fresh commit becomes readable only once the transactions running
//!   beside it have ended (see [`crate::feed`]) — and every second in any case, so even a
//!   notification lost to a reconnect delays a reader by a second at most.
//!
//! Both tasks end when the last handle of the store is dropped.

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// The `NOTIFY` channel of the change feed. The payload is the workspace id.
pub const CHANNEL: &str = "crm_feed_changes";

/// Workspace ids waiting to be notified; beyond this, ids are dropped (readers re-read).
const QUEUE: usize = 1024;
/// How often the listener wakes readers after a notification, and for how long.
const FOLLOW_UP: Duration = Duration::from_millis(100);
const FOLLOW_UP_FOR: Duration = Duration::from_millis(500);
/// How often the listener wakes readers whatever happens.
const SAFETY: Duration = Duration::from_secs(1);

type Waker = Arc<dyn Fn() + Send + Sync>;
type Wakers = Mutex<Vec<Waker>>;

/// The signalling state of one store (shared by its clones).
pub(crate) struct Signals {
    pool: sqlx::PgPool,
    notify: OnceLock<mpsc::Sender<Uuid>>,
    wakers: Arc<Wakers>,
    listening: OnceLock<oneshot::Sender<()>>,
}

impl Signals {
    pub(crate) fn new(pool: sqlx::PgPool) -> Self {
        Signals {
            pool,
            notify: OnceLock::new(),
            wakers: Arc::default(),
            listening: OnceLock::new(),
        }
    }

    /// Tells the other instances that `workspace`'s feed grew. Never waits.
    pub(crate) fn after_commit(&self, workspace: Uuid) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let tx = self.notify.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            runtime.spawn(notifier(self.pool.clone(), rx));
            tx
        });
        let _ = tx.try_send(workspace);
    }

    /// Calls `wake` whenever any instance (this one included) commits feed entries, and at
    /// least every second. Starts the listener on first use.
    pub(crate) fn watch(&self, wake: Waker) {
        self.wakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(wake);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.listening.get_or_init(|| {
            let (stop, stopped) = oneshot::channel();
            runtime.spawn(listener(
                self.pool.clone(),
                Arc::downgrade(&self.wakers),
                stopped,
            ));
            stop
        });
    }
}

/// Sends the queued notifications, one per workspace per round.
async fn notifier(pool: sqlx::PgPool, mut rx: mpsc::Receiver<Uuid>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(ws) if !batch.contains(&ws) => batch.push(ws),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        for ws in batch {
            // A failed notification only delays readers (they re-read every second).
            let _ = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(ws.to_string())
                .execute(&pool)
                .await;
        }
    }
}

fn wake_all(wakers: &Weak<Wakers>) -> bool {
    let Some(wakers) = wakers.upgrade() else {
        return false;
    };
    let list: Vec<Waker> = wakers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    for w in list {
        w();
    }
    true
}

/// Listens on [`CHANNEL`] until `stopped` (the store is gone).
async fn listener(pool: sqlx::PgPool, wakers: Weak<Wakers>, mut stopped: oneshot::Receiver<()>) {
    let mut listener = loop {
        if let Ok(mut l) = sqlx::postgres::PgListener::connect_with(&pool).await
            && l.listen(CHANNEL).await.is_ok()
        {
            break l;
        }
        tokio::select! {
            _ = &mut stopped => return,
            () = tokio::time::sleep(SAFETY) => {
                if !wake_all(&wakers) {
                    return;
                }
            }
        }
    };
    let mut tick = tokio::time::interval(FOLLOW_UP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_notice: Option<tokio::time::Instant> = None;
    let mut last_wake = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            n = listener.recv() => {
                // An error means the connection was lost (PgListener reconnects on the next
                // call; notifications sent meanwhile are lost): wake readers to re-read.
                if n.is_err() {
                    tokio::time::sleep(FOLLOW_UP).await;
                }
                last_notice = Some(tokio::time::Instant::now());
                last_wake = tokio::time::Instant::now();
                if !wake_all(&wakers) {
                    return;
                }
            }
            _ = tick.tick() => {
                let recent = last_notice.is_some_and(|t| t.elapsed() < FOLLOW_UP_FOR);
                if recent || last_wake.elapsed() >= SAFETY {
                    last_wake = tokio::time::Instant::now();
                    if !wake_all(&wakers) {
                        return;
                    }
                }
            }
        }
    }
}
