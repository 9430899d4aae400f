//! Failure injection: a redb storage backend that fails writes or fsyncs on demand, to check
//! what a failed group commit leaves behind (see the crate docs' "What a failure leaves
//! behind").

use std::fs::OpenOptions;
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crm_core::id::WorkspaceId;
use crm_core::model::{EntityKind, Record};
use crm_core::{Commit, ErrorKind, Storage, Timestamp, Write};
use redb::backends::FileBackend;
use redb::{BackendError, Database, StorageBackend};

use crate::writer::Opener;
use crate::{RedbOptions, RedbStore};

/// How many upcoming calls of an operation fail (`u32::MAX`: all of them).
#[derive(Debug, Default)]
struct Faults {
    writes: AtomicU32,
    syncs: AtomicU32,
}

fn trip(counter: &AtomicU32) -> io::Result<()> {
    let tripped = counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
            0 => None,
            u32::MAX => Some(u32::MAX),
            n => Some(n - 1),
        })
        .is_ok();
    if tripped {
        Err(io::Error::other("injected fault"))
    } else {
        Ok(())
    }
}

#[derive(Debug)]
struct Flaky {
    inner: FileBackend,
    faults: Arc<Faults>,
}

impl StorageBackend for Flaky {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        trip(&self.faults.writes)?;
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        trip(&self.faults.syncs)?;
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        trip(&self.faults.writes)?;
        self.inner.write(offset, data)
    }
    fn close(&self) -> io::Result<()> {
        self.inner.close()
    }
    fn try_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(s, e)
    }
    fn try_lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(s, e)
    }
    fn lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(s, e)
    }
    fn lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(s, e)
    }
    fn unlock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(s, e)
    }
    fn query_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(s, e)
    }
}

fn flaky_store(path: &Path, faults: &Arc<Faults>) -> RedbStore {
    let file_path: PathBuf = path.to_path_buf();
    let faults = faults.clone();
    let opener: Opener = Box::new(move || {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&file_path)?;
        let backend = Flaky {
            inner: FileBackend::new(file)?,
            faults: faults.clone(),
        };
        Database::builder().create_with_backend(backend)
    });
    RedbStore::open_inner(path.to_path_buf(), opener, &RedbOptions::default()).unwrap()
}

fn tag(ws: WorkspaceId, name: &str) -> Record {
    Record::Tag(crm_core::testkit::setup::stored_tag(
        ws,
        name,
        Timestamp::EPOCH,
    ))
}

fn insert(r: &Record) -> Commit {
    Commit {
        workspace_id: r.workspace_id(),
        writes: vec![Write::Insert(r.clone())],
        audit: Vec::new(),
    }
}

async fn present(s: &RedbStore, r: &Record) -> bool {
    s.get(r.workspace_id(), EntityKind::Tag, r.id())
        .await
        .unwrap()
        .is_some()
}

/// Pings until the store answers again (the writer reopened the file).
async fn wait_available(s: &RedbStore) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = s.ping().await {
        assert_eq!(e.kind(), ErrorKind::StorageUnavailable, "{e:?}");
        assert!(Instant::now() < deadline, "the store does not recover");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_fails_the_batch_and_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let s = flaky_store(&dir.path().join("f.redb"), &faults);
    let ws = WorkspaceId::generate();
    let before = tag(ws, "before");
    s.commit(insert(&before)).await.unwrap();

    faults.writes.store(1, Ordering::SeqCst);
    let lost = tag(ws, "lost");
    let err = s.commit(insert(&lost)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageFailure, "{err:?}");
    assert!(std::error::Error::source(&err).is_some());

    wait_available(&s).await;
    assert!(present(&s, &before).await);
    assert!(
        !present(&s, &lost).await,
        "a failed commit left data behind"
    );
    assert_eq!(
        s.find_unique(ws, EntityKind::Tag, "name", "lost")
            .await
            .unwrap(),
        None
    );
    let after = tag(ws, "after");
    s.commit(insert(&after)).await.unwrap();
    assert!(present(&s, &after).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_answers_what_actually_happened() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let s = flaky_store(&dir.path().join("f.redb"), &faults);
    let ws = WorkspaceId::generate();
    // Depending on where the fsync fails, the batch may or may not have reached the file;
    // both happen over a few rounds.
    for i in 0..5 {
        faults.syncs.store(1, Ordering::SeqCst);
        let r = tag(ws, &format!("maybe {i}"));
        let outcome = s.commit(insert(&r)).await;
        wait_available(&s).await;
        assert_eq!(faults.syncs.load(Ordering::SeqCst), 0, "the fault was hit");
        // Acknowledged if and only if it is there.
        assert_eq!(outcome.is_ok(), present(&s, &r).await, "{outcome:?}");
        if let Err(e) = outcome {
            assert_eq!(e.kind(), ErrorKind::StorageFailure);
        }
    }
    let r = tag(ws, "sure");
    s.commit(insert(&r)).await.unwrap();
    assert!(present(&s, &r).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lasting_fault_makes_the_store_unavailable_until_it_passes() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let s = flaky_store(&dir.path().join("f.redb"), &faults);
    let ws = WorkspaceId::generate();
    let kept = tag(ws, "kept");
    s.commit(insert(&kept)).await.unwrap();

    faults.writes.store(u32::MAX, Ordering::SeqCst);
    faults.syncs.store(u32::MAX, Ordering::SeqCst);
    let lost = tag(ws, "lost");
    let err = s.commit(insert(&lost)).await.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::StorageFailure | ErrorKind::StorageUnavailable
        ),
        "{err:?}"
    );
    // While the file cannot be reopened, everything is unavailable, nothing panics.
    let err = s.commit(insert(&tag(ws, "also lost"))).await.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::StorageFailure | ErrorKind::StorageUnavailable
        ),
        "{err:?}"
    );

    faults.writes.store(0, Ordering::SeqCst);
    faults.syncs.store(0, Ordering::SeqCst);
    wait_available(&s).await;
    assert!(present(&s, &kept).await);
    assert!(!present(&s, &lost).await);
    let back = tag(ws, "back");
    s.commit(insert(&back)).await.unwrap();
    assert!(present(&s, &back).await);
}
