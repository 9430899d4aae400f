//! Relaxed log writes: access-log batches are committed without waiting for the disk
//! (redb's `Durability::None`), and the writer puts them on disk within
//! `MAX_UNSYNCED` (2 s) — with the next durable commit, or on its own when it has nothing
//! else to do. A child process (this test binary, re-executed with `CHILD_ENV` set) appends
//! access entries, says so once they are acknowledged, stays idle for longer than that
//! bound and says so again; the parent kills it with `SIGKILL` and reopens the file: every
//! entry is there. Then the same through a graceful close.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crm_core::Storage;
use crm_core::access_log::{AccessEntry, AccessLogQuery, id_at};
use crm_core::id::{UserId, WorkspaceId};
use crm_core::{EntityKind, Timestamp};
use crm_store_redb::RedbStore;
use uuid::Uuid;

mod common;
use common::{runtime, say};

const CHILD_ENV: &str = "CRM_REDB_RELAXED_CHILD_DB";
const TEST_NAME: &str = "idle_relaxed_log_writes_survive_sigkill";
const ENTRIES: usize = 200;

fn entries(ws: WorkspaceId, user: UserId) -> Vec<AccessEntry> {
    let at = Timestamp::from_micros(1_800_000_000_000_000);
    (0..ENTRIES)
        .map(|i| AccessEntry {
            id: id_at(at),
            workspace_id: ws,
            at,
            user_id: user,
            entity: EntityKind::Contact,
            record_id: Uuid::from_u128(i as u128 + 1),
            route: "GET /contacts/{id}".into(),
            address: None,
        })
        .collect()
}

async fn stored(store: &RedbStore, ws: WorkspaceId) -> usize {
    store
        .access_log(
            ws,
            &AccessLogQuery {
                limit: 500,
                ..AccessLogQuery::default()
            },
        )
        .await
        .unwrap()
        .len()
}

fn child(path: &Path) {
    runtime().block_on(async {
        let store = RedbStore::open(path).unwrap();
        let (ws, user) = (
            WorkspaceId::from_uuid(Uuid::now_v7()),
            UserId::from_uuid(Uuid::now_v7()),
        );
        // Two batches, the second while the first is still unsynced.
        let all = entries(ws, user);
        let (a, b) = all.split_at(ENTRIES / 2);
        store.append_access_log(a).await.unwrap();
        store.append_access_log(b).await.unwrap();
        say(&format!("@APPENDED {ws}"));
        tokio::time::sleep(Duration::from_secs(4)).await;
        say("@IDLE");
        tokio::time::sleep(Duration::from_secs(120)).await;
    });
}

#[test]
fn idle_relaxed_log_writes_survive_sigkill() {
    let Some((_dir, path)) = common::unless_child(CHILD_ENV, "crm.redb", child) else {
        return;
    };
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ws = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        // The test harness may print the test's name on the same line first.
        if let Some((_, id)) = line.split_once("@APPENDED ") {
            ws = Some(WorkspaceId::from_uuid(id.trim().parse().unwrap()));
        }
        if line.contains("@IDLE") {
            child.kill().unwrap(); // SIGKILL
            break;
        }
    }
    child.wait().unwrap();
    let ws = ws.expect("the child appended");
    runtime().block_on(async {
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(
            stored(&store, ws).await,
            ENTRIES,
            "every acknowledged entry is on disk"
        );
    });
}

#[test]
fn relaxed_log_writes_are_on_disk_after_a_graceful_close() {
    let (_dir, path) = common::temp_path("crm.redb");
    let (ws, user) = (
        WorkspaceId::from_uuid(Uuid::now_v7()),
        UserId::from_uuid(Uuid::now_v7()),
    );
    runtime().block_on(async {
        let store = RedbStore::open(&path).unwrap();
        store.append_access_log(&entries(ws, user)).await.unwrap();
        assert_eq!(stored(&store, ws).await, ENTRIES, "visible at once");
        store.close().await.unwrap();
    });
    runtime().block_on(async {
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(stored(&store, ws).await, ENTRIES);
    });
}
