//! The writer thread and its group commit (see the [crate docs](crate#group-commit)).
//!
//! One dedicated OS thread owns every redb write transaction. Callers hand it [`Job`]s over
//! a bounded channel; it drains up to `max_batch` of them, checks and applies each commit in
//! one write transaction, commits that transaction once and only then answers each caller.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crm_core::audit::AuditEntry;
use crm_core::id::WorkspaceId;
use crm_core::model::{EntityKind, Record};
use crm_core::storage::{Commit, Write};
use crm_core::{Error, ErrorKind, FieldError, FieldIssue};
use redb::{Database, ReadableDatabase, ReadableTable, Table, WriteTransaction};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::error::{StoreError, StoreResult};
use crate::read::{load_record, unique_holder};
use crate::schema::{
    self, AUDIT, AUDIT_BY_RECORD, BATCH_SEQ_KEY, DASHBOARD, FEED, FEED_AT, FEED_HORIZON,
    FEED_TX_KEY, FORMAT_KEY, FORMAT_VERSION, INDEXES, META, OLDEST_UPGRADABLE_FORMAT, RECENT,
    RECENT_BY_TIME, RECORDS, SEARCH, TALLY, UNIQUE,
};

/// Opens (or reopens) the database file.
pub(crate) type Opener =
    Box<dyn Fn() -> Result<Database, redb::DatabaseError> + Send + Sync + 'static>;

/// How long a reopen after a failed commit waits for in-flight reads to let go of the old
/// database handle.
const READERS_GRACE: Duration = Duration::from_secs(30);

/// Pauses between further reopen attempts after a failed commit.
const REOPEN_RETRIES: [Duration; 3] = [
    Duration::from_millis(20),
    Duration::from_millis(100),
    Duration::from_millis(500),
];

/// The longest the writes of relaxed commits ([`ApplyJob::relaxed`]: the access log and
/// recently viewed) stay in memory without being on disk. Past it, the next relaxed commit
/// is durable, and a writer with nothing else to do makes them durable with an empty
/// durable commit.
pub(crate) const MAX_UNSYNCED: Duration = Duration::from_secs(2);

/// What the writer thread is asked to do.
pub(crate) enum Msg {
    /// Apply a commit.
    Commit(Job),
    /// A reader found no database handle (a reopen after a failed commit did not succeed):
    /// try reopening now rather than at the next commit.
    Reopen,
    /// Prune the change feed of a workspace (its own write transaction).
    Prune(PruneJob),
    /// Record views (recently viewed; its own write transaction).
    Views(ViewsJob),
    /// Any other write in its own transaction (the logs, see [`crate::logs`]).
    Apply(ApplyJob),
}

/// Work done in one write transaction of its own, answering a count.
pub(crate) type Work = Box<dyn FnOnce(&WriteTransaction) -> StoreResult<usize> + Send>;

/// A write in its own transaction: committed when it returns `Ok`, aborted otherwise.
pub(crate) struct ApplyJob {
    pub(crate) work: Work,
    pub(crate) reply: oneshot::Sender<crm_core::Result<usize>>,
    /// Committed without waiting for the disk (redb's `Durability::None`): for logs whose
    /// documented loss on a crash is a few seconds. The writes reach the disk with the next
    /// durable commit, at most [`MAX_UNSYNCED`] later.
    pub(crate) relaxed: bool,
}

/// A batch of views to record.
pub(crate) struct ViewsJob {
    pub(crate) views: Vec<crm_core::views::View>,
    pub(crate) reply: oneshot::Sender<crm_core::Result<()>>,
}

/// A request to prune old deletions from a workspace's feed.
pub(crate) struct PruneJob {
    pub(crate) workspace: WorkspaceId,
    pub(crate) deleted_before: crm_core::Timestamp,
    pub(crate) reply: oneshot::Sender<crm_core::Result<usize>>,
}

/// One caller's commit and where to send its outcome.
pub(crate) struct Job {
    pub(crate) commit: Commit,
    pub(crate) reply: oneshot::Sender<crm_core::Result<()>>,
}

/// The database handle shared by readers and the writer. `None` while the writer reopens the
/// file after a failed commit, or after the store was closed.
pub(crate) struct Shared {
    db: RwLock<Option<Arc<Database>>>,
    /// Group-commit batch sizes, for [`crate::RedbStore::writer_stats`].
    pub(crate) batches: BatchSizes,
}

/// Upper bounds of the batch-size histogram of [`crate::WriterStats`].
pub const BATCH_SIZE_BOUNDS: [u64; 10] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

/// Counts of batch sizes (lock-free: the writer thread adds, metrics readers load).
#[derive(Default)]
pub(crate) struct BatchSizes {
    buckets: [AtomicU64; BATCH_SIZE_BOUNDS.len()],
    count: AtomicU64,
    sum: AtomicU64,
}

impl BatchSizes {
    fn record(&self, size: usize) {
        let size = u64::try_from(size).unwrap_or(u64::MAX);
        if let Some(i) = BATCH_SIZE_BOUNDS.iter().position(|b| size <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum.fetch_add(size, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Cumulative counts per bound, the number of batches and the commits in them.
    pub(crate) fn snapshot(&self) -> (Vec<(u64, u64)>, u64, u64) {
        let mut running = 0;
        let buckets = BATCH_SIZE_BOUNDS
            .iter()
            .zip(&self.buckets)
            .map(|(bound, n)| {
                running += n.load(Ordering::Relaxed);
                (*bound, running)
            })
            .collect();
        (
            buckets,
            self.count.load(Ordering::Relaxed),
            self.sum.load(Ordering::Relaxed),
        )
    }
}

impl Shared {
    pub(crate) fn new(db: Database) -> Self {
        Shared {
            db: RwLock::new(Some(Arc::new(db))),
            batches: BatchSizes::default(),
        }
    }

    /// The current handle, or `Recovering` when there is none.
    pub(crate) fn db(&self) -> StoreResult<Arc<Database>> {
        self.db
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or(StoreError::Recovering)
    }

    /// Drops the shared handle (the file closes once in-flight reads finish).
    pub(crate) fn take(&self) -> Option<Arc<Database>> {
        self.db
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    fn put(&self, db: Arc<Database>) {
        *self
            .db
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(db);
    }
}

/// Creates missing tables, checks the format version (upgrading a file of
/// [`OLDEST_UPGRADABLE_FORMAT`] or later in place, in one write transaction: a crash midway
/// leaves the file as it was) and returns the last batch number.
///
/// # Errors
/// `UnsupportedFormat` for a file of another format version; redb errors.
pub(crate) fn prepare_database(db: &Database) -> StoreResult<u64> {
    // Check before writing anything, so that an unknown format is never touched.
    let mut upgrade_from = None;
    {
        let txn = db.begin_read()?;
        match txn.open_table(META) {
            Ok(meta) => match meta.get(FORMAT_KEY)?.map(|v| v.value()) {
                Some(found) if (OLDEST_UPGRADABLE_FORMAT..FORMAT_VERSION).contains(&found) => {
                    upgrade_from = Some(found);
                }
                Some(found) if found != FORMAT_VERSION => {
                    return Err(StoreError::UnsupportedFormat {
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
                _ => {}
            },
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let txn = db.begin_write()?;
    let seq;
    {
        if upgrade_from.is_some_and(|f| f < 3) {
            build_dashboard_tables(&txn)?;
        }
        if upgrade_from.is_some_and(|f| f < 4) {
            crate::access::upgrade_legacy(&txn)?;
        }
        let mut meta = txn.open_table(META)?;
        if upgrade_from.is_some() || meta.get(FORMAT_KEY)?.is_none() {
            meta.insert(FORMAT_KEY, FORMAT_VERSION)?;
        }
        seq = meta.get(BATCH_SEQ_KEY)?.map_or(0, |v| v.value());
        txn.open_table(RECORDS)?;
        txn.open_table(INDEXES)?;
        txn.open_table(SEARCH)?;
        txn.open_table(UNIQUE)?;
        txn.open_table(AUDIT)?;
        txn.open_table(AUDIT_BY_RECORD)?;
        txn.open_table(FEED)?;
        txn.open_table(FEED_AT)?;
        txn.open_table(FEED_HORIZON)?;
        txn.open_table(RECENT)?;
        txn.open_table(RECENT_BY_TIME)?;
        txn.open_table(TALLY)?;
        txn.open_table(DASHBOARD)?;
        crate::logs::create_tables(&txn)?;
        crate::access::create_tables(&txn)?;
    }
    txn.commit()?;
    Ok(seq)
}

/// The format-2 upgrade: fills the dashboard tables from every stored record and audit entry,
/// in the upgrade's own write transaction (a crash midway leaves the file at format 2, and the
/// next open starts over).
fn build_dashboard_tables(txn: &WriteTransaction) -> StoreResult<()> {
    let records = txn.open_table(RECORDS)?;
    let audit = txn.open_table(AUDIT)?;
    let mut tally = txn.open_table(TALLY)?;
    let mut index = txn.open_table(DASHBOARD)?;
    let mut sums: std::collections::BTreeMap<Vec<u8>, crm_core::dashboard::Tally> =
        std::collections::BTreeMap::new();
    for entry in records.iter()? {
        let (k, v) = entry?;
        let key = k.value();
        let (Some(&tag), Some(ws)) = (key.first(), key.get(1..17)) else {
            continue;
        };
        let Some(kind) = EntityKind::ALL.into_iter().find(|k| k.tag() == tag) else {
            continue;
        };
        if !crm_core::feed::in_feed(kind) {
            continue;
        }
        let ws = WorkspaceId::from_uuid(
            Uuid::from_slice(ws).map_err(|_| StoreError::DanglingEntry { table: "records" })?,
        );
        let record = crate::read::decode_record(kind, v.value())?;
        for (key, t) in crm_core::dashboard::contributions(&record) {
            sums.entry(schema::ws_key(ws, &key.encode()))
                .or_default()
                .add(t);
        }
        for e in crm_core::dashboard::entries(&record) {
            index.insert(schema::ws_key(ws, &e).as_slice(), ())?;
        }
    }
    for (k, t) in sums {
        if !t.is_zero() {
            tally.insert(k.as_slice(), t.to_bytes().as_slice())?;
        }
    }
    for entry in audit.iter()? {
        let (_, v) = entry?;
        let e: AuditEntry = serde_json::from_slice(v.value())
            .map_err(|err| StoreError::decode("audit entry", err))?;
        if let Some(suffix) = crm_core::dashboard::activity_entry(&e) {
            index.insert(schema::ws_key(e.workspace_id, &suffix).as_slice(), ())?;
        }
    }
    Ok(())
}

fn read_seq(db: &Database) -> StoreResult<u64> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META)?;
    Ok(meta.get(BATCH_SEQ_KEY)?.map_or(0, |v| v.value()))
}

/// The writer thread's state.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    opener: Opener,
    rx: mpsc::Receiver<Msg>,
    max_batch: usize,
    /// Number of the last batch known to be committed.
    seq: u64,
    /// When the oldest relaxed commit not yet followed by a durable one was made.
    unsynced_since: Option<Instant>,
}

/// What became of one commit of a batch, before the transaction commits.
enum Outcome {
    /// Passed its checks; its writes are in the transaction.
    Applied,
    /// Failed a check; nothing of it touched the transaction.
    Rejected(Error),
}

impl Writer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        opener: Opener,
        rx: mpsc::Receiver<Msg>,
        max_batch: usize,
        seq: u64,
    ) -> Self {
        Writer {
            shared,
            opener,
            rx,
            max_batch: max_batch.max(1),
            seq,
            unsynced_since: None,
        }
    }

    /// The next message; while relaxed commits wait for the disk, waits at most until they
    /// are [`MAX_UNSYNCED`] old and makes them durable first. `None` once every sender is
    /// gone (then nothing is left unsynced).
    fn next_message(&mut self) -> Option<Msg> {
        use tokio::sync::mpsc::error::TryRecvError;
        loop {
            let Some(since) = self.unsynced_since else {
                return self.rx.blocking_recv();
            };
            match self.rx.try_recv() {
                Ok(msg) => return Some(msg),
                Err(TryRecvError::Disconnected) => {
                    self.sync();
                    return None;
                }
                Err(TryRecvError::Empty) if since.elapsed() >= MAX_UNSYNCED => {
                    self.sync();
                    if self.unsynced_since.is_some() {
                        // The file is unavailable (a reopen pending): try again shortly,
                        // without spinning.
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
                Err(TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Makes `txn` a relaxed commit while the oldest unsynced write is young enough (then it
    /// stays durable, which puts every relaxed commit before it on disk too). Whether it did.
    fn relax(&self, txn: &mut WriteTransaction) -> bool {
        self.unsynced_since
            .is_none_or(|t| t.elapsed() < MAX_UNSYNCED)
            && txn.set_durability(redb::Durability::None).is_ok()
    }

    /// Notes a successful commit: a durable one puts everything before it on disk.
    fn committed(&mut self, relaxed: bool) {
        if relaxed {
            self.unsynced_since.get_or_insert_with(Instant::now);
        } else {
            self.unsynced_since = None;
        }
    }

    /// An empty durable commit, which puts the relaxed commits before it on disk. On failure
    /// they stay pending and the next durable commit tries again.
    fn sync(&mut self) {
        let Ok((db, txn)) = self.begin() else {
            return;
        };
        if txn.commit().is_ok() {
            self.committed(false);
        }
        drop(db);
    }

    /// Serves batches until every sender is gone and the queue is drained.
    pub(crate) fn run(mut self) {
        while let Some(first) = self.next_message() {
            let mut batch = Vec::new();
            let mut prunes = Vec::new();
            let mut views = Vec::new();
            let mut applies = Vec::new();
            let mut reopen = false;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Commit(job) => batch.push(job),
                    Msg::Reopen => reopen = true,
                    Msg::Prune(job) => prunes.push(job),
                    Msg::Views(job) => views.push(job),
                    Msg::Apply(job) => applies.push(job),
                }
                if batch.len() < self.max_batch {
                    next = self.rx.try_recv().ok();
                }
            }
            if reopen && self.shared.db().is_err() {
                let _ = self.reopen();
            }
            for job in prunes {
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    self.prune(job.workspace, job.deleted_before)
                }))
                .unwrap_or(Err(StoreError::Closed));
                let _ = job.reply.send(outcome.map_err(Error::from));
            }
            for job in views {
                let outcome =
                    std::panic::catch_unwind(AssertUnwindSafe(|| self.record_views(&job.views)))
                        .unwrap_or(Err(StoreError::Closed));
                let _ = job.reply.send(outcome.map_err(Error::from));
            }
            for job in applies {
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    self.apply(job.work, job.relaxed)
                }))
                .unwrap_or(Err(StoreError::Closed));
                let _ = job.reply.send(outcome.map_err(Error::from));
            }
            if batch.is_empty() {
                continue;
            }
            self.shared.batches.record(batch.len());
            // A bug must not take the writer down with it: the callers of the batch see their
            // reply dropped (a storage failure), and the file is reopened, since the state of
            // a transaction that panicked is unknown.
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| self.process(batch)));
            if result.is_err() {
                let _ = self.reopen();
            }
        }
    }

    fn process(&mut self, batch: Vec<Job>) {
        let (db, txn) = match self.begin() {
            Ok(pair) => pair,
            Err(e) => return fail_all(batch, e),
        };
        let next = self.seq + 1;
        let outcomes = match stage(&txn, &batch, next) {
            Ok(outcomes) => outcomes,
            Err(e) => {
                if txn.abort().is_err() {
                    drop(db);
                    let _ = self.reopen();
                }
                return fail_all(batch, e);
            }
        };
        if !outcomes.iter().any(|o| matches!(o, Outcome::Applied)) {
            // Nothing to make durable: skip the fsync.
            if txn.abort().is_err() {
                drop(db);
                let _ = self.reopen();
            }
            return reply_all(batch, outcomes);
        }
        match txn.commit() {
            Ok(()) => {
                self.seq = next;
                self.committed(false);
                reply_all(batch, outcomes);
            }
            Err(e) => {
                // redb: the commit applied fully or not at all, but may have become durable
                // anyway. Reopen (which repairs) and read the batch number to know which;
                // retry a little, so that a passing fault does not leave the answer unknown.
                drop(db);
                let mut reopened = self.reopen().is_ok();
                for pause in REOPEN_RETRIES {
                    if reopened {
                        break;
                    }
                    std::thread::sleep(pause);
                    reopened = self.reopen().is_ok();
                }
                let durable = reopened && self.seq == next;
                if durable {
                    reply_all(batch, outcomes);
                } else {
                    fail_all(batch, e.into());
                }
            }
        }
    }

    /// Removes the workspace's deletions older than `before` from its feed in one write
    /// transaction, raising its horizon; a failure leaves the feed as it was (the transaction
    /// is not committed).
    fn prune(&mut self, ws: WorkspaceId, before: crm_core::Timestamp) -> StoreResult<usize> {
        let (db, txn) = self.begin()?;
        let removed = {
            let mut feed = txn.open_table(FEED)?;
            let mut feed_at = txn.open_table(FEED_AT)?;
            let mut horizons = txn.open_table(FEED_HORIZON)?;
            let prefix = ws.as_bytes().to_vec();
            let mut doomed: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            let mut top = None;
            for entry in feed.range::<&[u8]>(prefix.as_slice()..)? {
                let (k, v) = entry?;
                if !k.value().starts_with(&prefix) {
                    break;
                }
                let change = crate::read::decode_change(v.value())?;
                if change.op == crm_core::feed::ChangeOp::Delete && change.at < before {
                    doomed.push((
                        k.value().to_vec(),
                        schema::feed_at_key(ws, change.entity, change.id),
                    ));
                    top = schema::position_of(k.value());
                }
            }
            for (k, at) in &doomed {
                feed.remove(k.as_slice())?;
                feed_at.remove(at.as_slice())?;
            }
            if let Some(top) = top {
                let old = horizons
                    .get(prefix.as_slice())?
                    .and_then(|v| schema::position_of(v.value()))
                    .unwrap_or_default();
                let new = schema::position_bytes(old.max(top));
                horizons.insert(prefix.as_slice(), new.as_slice())?;
            }
            doomed.len()
        };
        if removed == 0 {
            txn.abort()?;
        } else {
            txn.commit()?;
        }
        drop(db);
        Ok(removed)
    }

    /// Runs `work` in a write transaction of its own and commits it (nothing on failure).
    fn apply(&mut self, work: Work, relaxed: bool) -> StoreResult<usize> {
        let (db, mut txn) = self.begin()?;
        let relaxed = relaxed && self.relax(&mut txn);
        match work(&txn) {
            Ok(n) => {
                txn.commit()?;
                drop(db);
                self.committed(relaxed);
                Ok(n)
            }
            Err(e) => {
                let _ = txn.abort();
                Err(e)
            }
        }
    }

    /// Records views in one write transaction (see [`crm_core::views`]): each record once
    /// per list at its latest view, at most `RECENT_LIMIT` per list.
    fn record_views(&mut self, views: &[crm_core::views::View]) -> StoreResult<()> {
        let (db, mut txn) = self.begin()?;
        // Recently viewed is a convenience whose documented loss on a crash is a few
        // seconds: a relaxed commit.
        let relaxed = self.relax(&mut txn);
        {
            let mut recent = txn.open_table(RECENT)?;
            let mut by_time = txn.open_table(RECENT_BY_TIME)?;
            let mut lists = BTreeSet::new();
            for v in crm_core::views::latest(views) {
                let prefix = schema::recent_prefix(v.workspace_id, v.user_id.uuid(), v.entity);
                let mut key = prefix.clone();
                key.extend_from_slice(v.record_id.as_bytes());
                let old = recent
                    .get(key.as_slice())?
                    .and_then(|t| schema::time_of(t.value()));
                if old.is_some_and(|o| o >= v.at) {
                    continue;
                }
                if let Some(o) = old {
                    let mut k = prefix.clone();
                    k.extend_from_slice(&schema::time_bytes(o));
                    k.extend_from_slice(v.record_id.as_bytes());
                    by_time.remove(k.as_slice())?;
                }
                recent.insert(key.as_slice(), schema::time_bytes(v.at).as_slice())?;
                let mut k = prefix.clone();
                k.extend_from_slice(&schema::time_bytes(v.at));
                k.extend_from_slice(v.record_id.as_bytes());
                by_time.insert(k.as_slice(), ())?;
                lists.insert(prefix);
            }
            for prefix in lists {
                let upper = crm_core::storage::kv::prefix_successor(&prefix).unwrap_or_default();
                let keys: Vec<Vec<u8>> = by_time
                    .range::<&[u8]>(prefix.as_slice()..upper.as_slice())?
                    .map(|e| e.map(|(k, _)| k.value().to_vec()))
                    .collect::<Result<_, _>>()?;
                let excess = keys.len().saturating_sub(crm_core::views::RECENT_LIMIT);
                // Oldest first: the excess is the start of the range.
                for k in &keys[..excess] {
                    by_time.remove(k.as_slice())?;
                    let mut rk = prefix.clone();
                    rk.extend_from_slice(&k[k.len() - 16..]);
                    recent.remove(rk.as_slice())?;
                }
            }
        }
        txn.commit()?;
        drop(db);
        self.committed(relaxed);
        Ok(())
    }

    /// A write transaction, reopening the file first if there is no handle (a failed reopen
    /// earlier) or redb refuses to begin one (an earlier failure it did not report).
    fn begin(&mut self) -> StoreResult<(Arc<Database>, WriteTransaction)> {
        if let Ok(db) = self.shared.db() {
            match db.begin_write() {
                Ok(txn) => return Ok((db, txn)),
                Err(e) => {
                    let e = StoreError::from(e);
                    if e.kind() != ErrorKind::StorageUnavailable {
                        // Not a broken handle; reopening would not help.
                        return Err(e);
                    }
                }
            }
        }
        let db = self.reopen()?;
        let txn = db.begin_write()?;
        Ok((db, txn))
    }

    /// Closes the database and opens it again (redb repairs what a failed commit left
    /// behind), updating the known batch number. Readers get `StorageUnavailable` meanwhile.
    fn reopen(&mut self) -> StoreResult<Arc<Database>> {
        if let Some(mut old) = self.shared.take() {
            let deadline = Instant::now() + READERS_GRACE;
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => {
                        // Errors here only say the old handle was already broken.
                        let _ = db.close();
                        break;
                    }
                    Err(still_shared) if Instant::now() < deadline => {
                        old = still_shared;
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(still_shared) => {
                        // A read that does not end: keep serving with the old handle and let
                        // the next batch try again.
                        self.shared.put(still_shared);
                        return Err(StoreError::Recovering);
                    }
                }
            }
        }
        let db = (self.opener)().map_err(|e| StoreError::Open(e.into()))?;
        self.seq = read_seq(&db)?;
        let db = Arc::new(db);
        self.shared.put(db.clone());
        Ok(db)
    }
}

fn fail_all(batch: Vec<Job>, cause: StoreError) {
    // Every caller gets its own error; all of them keep the one cause as their source.
    let kind = cause.kind();
    let cause = Arc::new(cause);
    for job in batch {
        let _ = job
            .reply
            .send(Err(Error::storage(kind, StoreError::Batch(cause.clone()))));
    }
}

fn reply_all(batch: Vec<Job>, outcomes: Vec<Outcome>) {
    for (job, outcome) in batch.into_iter().zip(outcomes) {
        let _ = job.reply.send(match outcome {
            Outcome::Applied => Ok(()),
            Outcome::Rejected(e) => Err(e),
        });
    }
}

/// The tables a batch writes, opened once per transaction.
struct Tables<'txn> {
    records: Table<'txn, &'static [u8], &'static [u8]>,
    indexes: Table<'txn, &'static [u8], ()>,
    search: Table<'txn, &'static [u8], ()>,
    unique: Table<'txn, &'static [u8], &'static [u8]>,
    audit: Table<'txn, &'static [u8], &'static [u8]>,
    audit_by_record: Table<'txn, &'static [u8], ()>,
    feed: Table<'txn, &'static [u8], &'static [u8]>,
    feed_at: Table<'txn, &'static [u8], &'static [u8]>,
    tally: Table<'txn, &'static [u8], &'static [u8]>,
    dashboard: Table<'txn, &'static [u8], ()>,
    recent: Table<'txn, &'static [u8], &'static [u8]>,
    recent_by_time: Table<'txn, &'static [u8], ()>,
    /// The `tx` of the last commit that recorded feed entries.
    feed_tx: u64,
}

impl<'txn> Tables<'txn> {
    fn open(txn: &'txn WriteTransaction) -> StoreResult<Self> {
        Ok(Tables {
            records: txn.open_table(RECORDS)?,
            indexes: txn.open_table(INDEXES)?,
            search: txn.open_table(SEARCH)?,
            unique: txn.open_table(UNIQUE)?,
            audit: txn.open_table(AUDIT)?,
            audit_by_record: txn.open_table(AUDIT_BY_RECORD)?,
            feed: txn.open_table(FEED)?,
            feed_at: txn.open_table(FEED_AT)?,
            tally: txn.open_table(TALLY)?,
            dashboard: txn.open_table(DASHBOARD)?,
            recent: txn.open_table(RECENT)?,
            recent_by_time: txn.open_table(RECENT_BY_TIME)?,
            feed_tx: txn
                .open_table(META)?
                .get(FEED_TX_KEY)?
                .map_or(0, |v| v.value()),
        })
    }
}

/// Checks and applies every commit of the batch inside `txn`, in order, and records the
/// batch number. A storage error while *writing* fails the whole batch (the transaction may
/// hold part of a commit); the caller aborts it.
fn stage(txn: &WriteTransaction, batch: &[Job], seq: u64) -> StoreResult<Vec<Outcome>> {
    let mut t = Tables::open(txn)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        outcomes.push(match check(&t, &job.commit) {
            Ok(prepared) => {
                apply(&mut t, &job.commit, prepared)?;
                Outcome::Applied
            }
            Err(e) => Outcome::Rejected(e),
        });
    }
    if outcomes.iter().any(|o| matches!(o, Outcome::Applied)) {
        let feed_tx = t.feed_tx;
        drop(t);
        let mut meta = txn.open_table(META)?;
        meta.insert(BATCH_SEQ_KEY, seq)?;
        meta.insert(FEED_TX_KEY, feed_tx)?;
    }
    Ok(outcomes)
}

/// A commit that passed its checks, with its values already serialized.
struct Prepared {
    /// JSON of each `Insert`/`Update` record, in write order.
    records: Vec<Vec<u8>>,
    /// JSON of each audit entry, in order.
    audit: Vec<Vec<u8>>,
    /// The commit's feed entries ([`crm_core::feed::changes_of`]) with their JSON.
    changes: Vec<(crm_core::feed::Change, Vec<u8>)>,
    /// JSON of each `RedactAudit` entry, in write order.
    redactions: Vec<Vec<u8>>,
}

fn versioned(
    t: &Tables<'_>,
    ws: WorkspaceId,
    kind: EntityKind,
    id: Uuid,
    expected: u64,
) -> Result<(), Error> {
    match load_record(&t.records, kind, ws, id)? {
        None => Err(Error::not_found(kind)),
        Some(r) if r.version() != expected => Err(Error::new(ErrorKind::VersionConflict)),
        Some(_) => Ok(()),
    }
}

/// Checks every assertion of a commit against the transaction's current state (which
/// includes the commits of the batch applied before it) and serializes its values. Only
/// reads: whatever it returns, the transaction is untouched, so a failure (including a
/// storage error reading a record) rejects this commit alone.
fn check(t: &Tables<'_>, commit: &Commit) -> Result<Prepared, Error> {
    let ws = commit.workspace_id;
    let mut prepared = Prepared {
        records: Vec::new(),
        audit: Vec::with_capacity(commit.audit.len()),
        changes: Vec::new(),
        redactions: Vec::new(),
    };
    // Unique values claimed by this commit, so that two of its records cannot take the same.
    let mut claims: HashMap<(EntityKind, &'static str, String), Uuid> = HashMap::new();
    for w in &commit.writes {
        match w {
            Write::Insert(record) => {
                if record.workspace_id() != ws {
                    return Err(StoreError::WorkspaceMismatch.into());
                }
                let key = schema::record_key(record.kind(), ws, record.id());
                if t.records
                    .get(key.as_slice())
                    .map_err(StoreError::from)?
                    .is_some()
                {
                    return Err(Error::new(ErrorKind::VersionConflict));
                }
                unique_free(t, ws, record, &mut claims)?;
            }
            Write::Update {
                record,
                expected_version,
            } => {
                if record.workspace_id() != ws {
                    return Err(StoreError::WorkspaceMismatch.into());
                }
                versioned(t, ws, record.kind(), record.id(), *expected_version)?;
                unique_free(t, ws, record, &mut claims)?;
            }
            Write::Delete {
                kind,
                id,
                expected_version,
            }
            | Write::Check {
                kind,
                id,
                expected_version,
            } => versioned(t, ws, *kind, *id, *expected_version)?,
            Write::Exists { kind, id, field } => match load_record(&t.records, *kind, ws, *id)? {
                Some(r) if !r.is_deleted() => {}
                _ => {
                    return Err(Error::validation(vec![FieldError::new(
                        *field,
                        FieldIssue::UnknownReference,
                    )]));
                }
            },
            // The single writer applies commits one after another, so no other workspace can
            // appear between this check and the commit.
            Write::FirstWorkspace => {
                if other_workspace_exists(t, ws)? {
                    return Err(Error::new(ErrorKind::AlreadyInitialized));
                }
            }
            Write::RedactAudit(entry) => {
                if entry.workspace_id != ws {
                    return Err(StoreError::WorkspaceMismatch.into());
                }
                prepared.redactions.push(
                    serde_json::to_vec(entry)
                        .map_err(|e| Error::storage(ErrorKind::StorageFailure, e))?,
                );
            }
            Write::ForgetViews { .. } | Write::ForgetViewer { .. } => {}
        }
        if let Write::Insert(record) | Write::Update { record, .. } = w {
            let json = record
                .to_json_bytes()
                .map_err(|e| Error::storage(ErrorKind::StorageFailure, e))?;
            prepared.records.push(json);
        }
    }
    for entry in &commit.audit {
        if entry.workspace_id != ws {
            return Err(StoreError::WorkspaceMismatch.into());
        }
        prepared.audit.push(
            serde_json::to_vec(entry).map_err(|e| Error::storage(ErrorKind::StorageFailure, e))?,
        );
    }
    // (The `bench-no-feed` build, for the feed's A/B benchmark only, records none.)
    let changes = if cfg!(feature = "bench-no-feed") {
        Vec::new()
    } else {
        crm_core::feed::changes_of(commit)
    };
    for change in changes {
        let json = serde_json::to_vec(&change)
            .map_err(|e| Error::storage(ErrorKind::StorageFailure, e))?;
        prepared.changes.push((change, json));
    }
    Ok(prepared)
}

/// Whether the transaction's state holds a workspace other than `ws`.
fn other_workspace_exists(t: &Tables<'_>, ws: WorkspaceId) -> Result<bool, Error> {
    use std::ops::Bound;
    let lower = vec![EntityKind::Workspace.tag()];
    let upper = crm_core::storage::kv::prefix_successor(&lower);
    let upper = upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    let range = t
        .records
        .range::<&[u8]>((Bound::Included(lower.as_slice()), upper))
        .map_err(StoreError::from)?;
    for entry in range {
        let (key, _) = entry.map_err(StoreError::from)?;
        if schema::trailing_id(key.value()) != Some(ws.uuid()) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn unique_free(
    t: &Tables<'_>,
    ws: WorkspaceId,
    record: &Record,
    claims: &mut HashMap<(EntityKind, &'static str, String), Uuid>,
) -> Result<(), Error> {
    for (name, value) in record.unique_keys() {
        if let Some(holder) = unique_holder(&t.unique, record.kind(), ws, name, &value)?
            && holder != record.id()
        {
            return Err(Error::duplicate(name));
        }
        match claims.entry((record.kind(), name, value)) {
            Entry::Occupied(o) if *o.get() != record.id() => return Err(Error::duplicate(name)),
            Entry::Occupied(_) => {}
            Entry::Vacant(v) => {
                v.insert(record.id());
            }
        }
    }
    Ok(())
}

/// Applies a checked commit's writes and audit entries.
fn apply(t: &mut Tables<'_>, commit: &Commit, prepared: Prepared) -> StoreResult<()> {
    let ws = commit.workspace_id;
    let mut json = prepared.records.into_iter();
    let mut redactions = prepared.redactions.into_iter();
    for w in &commit.writes {
        match w {
            Write::Insert(record) | Write::Update { record, .. } => {
                let bytes = json.next().unwrap_or_default();
                put_record(t, ws, record, &bytes)?;
            }
            Write::Delete { kind, id, .. } => delete_record(t, ws, *kind, *id)?,
            Write::RedactAudit(entry) => {
                let bytes = redactions.next().unwrap_or_default();
                let key = schema::audit_key(ws, entry.id.uuid());
                if t.audit.get(key.as_slice())?.is_some() {
                    t.audit.insert(key.as_slice(), bytes.as_slice())?;
                }
            }
            Write::ForgetViews { kind, id } => forget_views(t, ws, None, Some((*kind, *id)))?,
            Write::ForgetViewer { user } => forget_views(t, ws, Some(user.uuid()), None)?,
            Write::Check { .. } | Write::Exists { .. } | Write::FirstWorkspace => {}
        }
    }
    for (entry, bytes) in commit.audit.iter().zip(prepared.audit) {
        put_audit(t, ws, entry, &bytes)?;
    }
    if !prepared.changes.is_empty() {
        // The single writer numbers commits in the order they become visible.
        t.feed_tx += 1;
        for (seq, (change, json)) in prepared.changes.iter().enumerate() {
            let position = crm_core::feed::Position {
                tx: t.feed_tx,
                seq: u32::try_from(seq).unwrap_or(u32::MAX),
            };
            let at = schema::feed_at_key(ws, change.entity, change.id);
            let old = t
                .feed_at
                .insert(at.as_slice(), schema::position_bytes(position).as_slice())?
                .and_then(|v| schema::position_of(v.value()));
            if let Some(old) = old {
                t.feed.remove(schema::feed_key(ws, old).as_slice())?;
            }
            t.feed
                .insert(schema::feed_key(ws, position).as_slice(), json.as_slice())?;
        }
    }
    Ok(())
}

/// The derived entries of a record: index keys, search keys, unique values and dashboard
/// entries.
struct Derived {
    index: BTreeSet<Vec<u8>>,
    search: BTreeSet<Vec<u8>>,
    unique: Vec<(&'static str, String)>,
    dashboard: BTreeSet<Vec<u8>>,
}

impl Derived {
    fn of(ws: WorkspaceId, record: Option<&Record>) -> Self {
        match record {
            Some(r) => Derived {
                index: schema::index_entries(ws, r).into_iter().collect(),
                search: schema::search_entries(ws, r).into_iter().collect(),
                unique: r.unique_keys(),
                dashboard: crm_core::dashboard::entries(r)
                    .iter()
                    .map(|e| schema::ws_key(ws, e))
                    .collect(),
            },
            None => Derived {
                index: BTreeSet::new(),
                search: BTreeSet::new(),
                unique: Vec::new(),
                dashboard: BTreeSet::new(),
            },
        }
    }
}

/// Applies the dashboard tally changes of one write (see [`crm_core::dashboard`]): a read,
/// an add and a write per changed tally, inside the batch's transaction; a tally that falls
/// to zero loses its row.
fn apply_tallies(
    t: &mut Tables<'_>,
    ws: WorkspaceId,
    old: Option<&Record>,
    new: Option<&Record>,
) -> StoreResult<()> {
    let mut deltas = crm_core::dashboard::TallyDeltas::new();
    deltas.add(old, new);
    for (key, delta) in deltas.into_rows() {
        let key = schema::ws_key(ws, &key);
        let mut sum = match t.tally.get(key.as_slice())? {
            Some(v) => crm_core::dashboard::Tally::from_bytes(v.value())
                .ok_or(StoreError::DanglingEntry { table: "tally" })?,
            None => crm_core::dashboard::Tally::default(),
        };
        sum.add(delta);
        if sum.is_zero() {
            t.tally.remove(key.as_slice())?;
        } else {
            t.tally.insert(key.as_slice(), sum.to_bytes().as_slice())?;
        }
    }
    Ok(())
}

/// Moves the derived entries from `old` to `new` (either may be absent), touching only the
/// entries that differ, and applies the change to the dashboard tallies.
fn rederive(
    t: &mut Tables<'_>,
    ws: WorkspaceId,
    kind: EntityKind,
    id: Uuid,
    old: Option<&Record>,
    new: Option<&Record>,
) -> StoreResult<()> {
    apply_tallies(t, ws, old, new)?;
    let (old, new) = (Derived::of(ws, old), Derived::of(ws, new));
    for k in old.index.difference(&new.index) {
        t.indexes.remove(k.as_slice())?;
    }
    for k in new.index.difference(&old.index) {
        t.indexes.insert(k.as_slice(), ())?;
    }
    for k in old.search.difference(&new.search) {
        t.search.remove(k.as_slice())?;
    }
    for k in new.search.difference(&old.search) {
        t.search.insert(k.as_slice(), ())?;
    }
    for (name, value) in &old.unique {
        if new.unique.contains(&(*name, value.clone())) {
            continue;
        }
        // Release only what this record holds.
        if unique_holder(&t.unique, kind, ws, name, value)? == Some(id) {
            t.unique
                .remove(schema::unique_key(kind, ws, name, value).as_slice())?;
        }
    }
    for (name, value) in &new.unique {
        t.unique.insert(
            schema::unique_key(kind, ws, name, value).as_slice(),
            id.as_bytes().as_slice(),
        )?;
    }
    for k in old.dashboard.difference(&new.dashboard) {
        t.dashboard.remove(k.as_slice())?;
    }
    for k in new.dashboard.difference(&old.dashboard) {
        t.dashboard.insert(k.as_slice(), ())?;
    }
    Ok(())
}

fn put_record(
    t: &mut Tables<'_>,
    ws: WorkspaceId,
    record: &Record,
    json: &[u8],
) -> StoreResult<()> {
    let (kind, id) = (record.kind(), record.id());
    // The state as of now in the transaction: earlier writes of the batch included.
    let old = load_record(&t.records, kind, ws, id)?;
    rederive(t, ws, kind, id, old.as_ref(), Some(record))?;
    t.records
        .insert(schema::record_key(kind, ws, id).as_slice(), json)?;
    Ok(())
}

fn delete_record(
    t: &mut Tables<'_>,
    ws: WorkspaceId,
    kind: EntityKind,
    id: Uuid,
) -> StoreResult<()> {
    let old = load_record(&t.records, kind, ws, id)?;
    rederive(t, ws, kind, id, old.as_ref(), None)?;
    t.records
        .remove(schema::record_key(kind, ws, id).as_slice())?;
    Ok(())
}

/// Removes recently viewed entries of the workspace: every entry of `user`, or the entries
/// of one record in every user's lists.
fn forget_views(
    t: &mut Tables<'_>,
    ws: WorkspaceId,
    user: Option<Uuid>,
    record: Option<(EntityKind, Uuid)>,
) -> StoreResult<()> {
    let mut prefix = ws.as_bytes().to_vec();
    if let Some(u) = user {
        prefix.extend_from_slice(u.as_bytes());
    }
    let upper = crm_core::storage::kv::prefix_successor(&prefix).unwrap_or_default();
    // `[ws 16][user 16][kind 1][record 16]`
    let mut doomed: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for entry in t
        .recent
        .range::<&[u8]>(prefix.as_slice()..upper.as_slice())?
    {
        let (key, at) = entry?;
        let key = key.value();
        if key.len() != 49 {
            continue;
        }
        if let Some((kind, id)) = record
            && (key[32] != kind.tag() || &key[33..] != id.as_bytes())
        {
            continue;
        }
        let mut by_time = key[..33].to_vec();
        by_time.extend_from_slice(at.value());
        by_time.extend_from_slice(&key[33..]);
        doomed.push((key.to_vec(), by_time));
    }
    for (key, by_time) in doomed {
        t.recent.remove(key.as_slice())?;
        t.recent_by_time.remove(by_time.as_slice())?;
    }
    Ok(())
}

fn put_audit(
    t: &mut Tables<'_>,
    ws: WorkspaceId,
    entry: &AuditEntry,
    json: &[u8],
) -> StoreResult<()> {
    let audit_id = entry.id.uuid();
    t.audit
        .insert(schema::audit_key(ws, audit_id).as_slice(), json)?;
    t.audit_by_record.insert(
        schema::audit_by_record_key(ws, entry.record_id, audit_id).as_slice(),
        (),
    )?;
    if let Some(suffix) = crm_core::dashboard::activity_entry(entry) {
        t.dashboard
            .insert(schema::ws_key(ws, &suffix).as_slice(), ())?;
    }
    Ok(())
}
