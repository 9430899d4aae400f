//! The access log's blocks against the memory store: random batches (most newer than what is
//! stored, some older, some repeating an id), erasures, redactions and prunes, applied to
//! both; after each step every way of reading the log answers the same on both, page by page.
//! Batches of up to 1,500 entries exercise blocks split at their size limit and late entries
//! merged into full blocks. Last, a file of format 3 (one row per entry) is upgraded into
//! blocks on open.

use crm_core::Storage;
use crm_core::Timestamp;
use crm_core::access_log::{AccessEntry, AccessLogQuery, id_at};
use crm_core::id::{UserId, WorkspaceId};
use crm_core::model::EntityKind;
use crm_core::testkit::MemoryStore;
use crm_core::testkit::run;
use crm_store_redb::RedbStore;
use redb::{ReadableDatabase, TableDefinition};
use uuid::Uuid;

/// A small deterministic generator (xorshift64*), so that a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }
}

struct World {
    workspaces: Vec<WorkspaceId>,
    users: Vec<UserId>,
    records: Vec<Uuid>,
    /// The newest time handed out so far (micros).
    now: i64,
    /// Every entry appended, so that some batches can repeat an id.
    seen: Vec<AccessEntry>,
}

impl World {
    fn new() -> Self {
        World {
            workspaces: (0..2).map(|_| WorkspaceId::generate()).collect(),
            users: (0..3).map(|_| UserId::generate()).collect(),
            records: (0..6).map(|_| Uuid::now_v7()).collect(),
            now: 1_800_000_000_000_000,
            seen: Vec::new(),
        }
    }

    fn batch(&mut self, rng: &mut Rng) -> Vec<AccessEntry> {
        let n = match rng.below(10) {
            0 => 1_000 + rng.below(500),
            1..=3 => 1 + rng.below(600),
            _ => 1 + rng.below(40),
        };
        let mut out = Vec::new();
        for _ in 0..n {
            if !self.seen.is_empty() && rng.below(50) == 0 {
                // The same entry again, changed: the later write wins.
                let mut again = self.seen[rng.below(self.seen.len() as u64) as usize].clone();
                again.route = format!("GET /again/{}", rng.below(1000));
                out.push(again);
                continue;
            }
            let at = if rng.below(8) == 0 {
                // Late: a time some way back, inside what is stored.
                self.now - rng.below(5_000_000) as i64
            } else {
                self.now += rng.below(3_000) as i64;
                self.now
            };
            let at = Timestamp::from_micros(at);
            out.push(AccessEntry {
                id: id_at(at),
                workspace_id: rng.pick(&self.workspaces),
                at,
                user_id: rng.pick(&self.users),
                entity: EntityKind::Contact,
                record_id: rng.pick(&self.records),
                route: format!("GET /contacts/{}", rng.below(1000)),
                address: (rng.below(3) > 0).then(|| format!("198.51.100.{}", rng.below(256))),
            });
        }
        self.seen.extend(out.iter().cloned());
        out
    }
}

/// Every page of `query` on `store`, following the cursor.
async fn pages(store: &dyn Storage, ws: WorkspaceId, query: &AccessLogQuery) -> Vec<AccessEntry> {
    let mut all = Vec::new();
    let mut query = query.clone();
    loop {
        let page = store.access_log(ws, &query).await.unwrap();
        let full = page.len() == query.limit;
        query.before = page.last().map(|e| e.id);
        all.extend(page);
        if !full {
            return all;
        }
    }
}

async fn assert_same_reads(memory: &MemoryStore, redb: &RedbStore, w: &World, rng: &mut Rng) {
    let mut queries = vec![AccessLogQuery {
        limit: 97,
        ..AccessLogQuery::default()
    }];
    for r in &w.records {
        queries.push(AccessLogQuery {
            record_id: Some(*r),
            limit: 1 + rng.below(60) as usize,
            ..AccessLogQuery::default()
        });
    }
    for u in &w.users {
        queries.push(AccessLogQuery {
            user_id: Some(*u),
            limit: 1 + rng.below(200) as usize,
            ..AccessLogQuery::default()
        });
    }
    let window = |rng: &mut Rng| Timestamp::from_micros(w.now - rng.below(8_000_000) as i64);
    queries.push(AccessLogQuery {
        since: Some(window(rng)),
        until: Some(window(rng)),
        limit: 50,
        ..AccessLogQuery::default()
    });
    queries.push(AccessLogQuery {
        record_id: Some(rng.pick(&w.records)),
        since: Some(window(rng)),
        limit: 13,
        ..AccessLogQuery::default()
    });
    queries.push(AccessLogQuery {
        user_id: Some(rng.pick(&w.users)),
        until: Some(window(rng)),
        limit: 500,
        ..AccessLogQuery::default()
    });
    for ws in &w.workspaces {
        for q in &queries {
            let expected = pages(memory, *ws, q).await;
            let got = pages(redb, *ws, q).await;
            assert_eq!(got.len(), expected.len(), "{q:?}");
            assert!(got == expected, "{q:?}: the entries differ");
        }
    }
}

#[test]
fn blocks_answer_like_one_row_per_entry() {
    run(async {
        for seed in [1_u64, 42] {
            let dir = tempfile::tempdir().unwrap();
            let redb = RedbStore::open(dir.path().join("crm.redb")).unwrap();
            let memory = MemoryStore::new();
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut w = World::new();
            for step in 0..30 {
                let ws = rng.pick(&w.workspaces);
                match rng.below(10) {
                    0 => {
                        let r = rng.pick(&w.records);
                        let expected = memory.erase_access_log_for(ws, r).await.unwrap();
                        let got = redb.erase_access_log_for(ws, r).await.unwrap();
                        assert_eq!(got, expected, "seed {seed} step {step}: erase");
                    }
                    1 => {
                        let u = rng.pick(&w.users);
                        let expected = memory.redact_access_log_by(ws, u).await.unwrap();
                        let got = redb.redact_access_log_by(ws, u).await.unwrap();
                        assert_eq!(got, expected, "seed {seed} step {step}: redact");
                    }
                    2 => {
                        let before = Timestamp::from_micros(w.now - rng.below(4_000_000) as i64);
                        let limit = 1 + rng.below(700) as usize;
                        let expected = memory.prune_access_log(ws, before, limit).await.unwrap();
                        let got = redb.prune_access_log(ws, before, limit).await.unwrap();
                        assert_eq!(got, expected, "seed {seed} step {step}: prune");
                    }
                    _ => {
                        let batch = w.batch(&mut rng);
                        memory.append_access_log(&batch).await.unwrap();
                        redb.append_access_log(&batch).await.unwrap();
                    }
                }
                assert_same_reads(&memory, &redb, &w, &mut rng).await;
            }
            redb.close().await.unwrap();
        }
    });
}

#[test]
fn a_format_3_access_log_is_moved_into_blocks_on_open() {
    const META: TableDefinition<&str, u64> = TableDefinition::new("crm_meta");
    const LEGACY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("crm_access");
    const LEGACY_BY_RECORD: TableDefinition<&[u8], ()> =
        TableDefinition::new("crm_access_by_record");
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crm.redb");
        RedbStore::open(&path).unwrap().close().await.unwrap();
        let mut rng = Rng(3);
        let mut w = World::new();
        let mut entries = Vec::new();
        while entries.len() < 1_300 {
            entries.extend(w.batch(&mut rng));
        }
        let memory = MemoryStore::new();
        memory.append_access_log(&entries).await.unwrap();

        // What format 3 kept: one row per entry (JSON, as its first versions wrote) and its
        // index keys.
        {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut main = txn.open_table(LEGACY).unwrap();
                let mut by_record = txn.open_table(LEGACY_BY_RECORD).unwrap();
                for e in &entries {
                    let ws = e.workspace_id.as_bytes().as_slice();
                    let json = serde_json::to_vec(e).unwrap();
                    main.insert([ws, e.id.as_bytes()].concat().as_slice(), json.as_slice())
                        .unwrap();
                    let index = [ws, e.record_id.as_bytes(), e.id.as_bytes()].concat();
                    by_record.insert(index.as_slice(), ()).unwrap();
                }
                txn.open_table(META)
                    .unwrap()
                    .insert("format_version", 3)
                    .unwrap();
            }
            txn.commit().unwrap();
        }

        let redb = RedbStore::open(&path).unwrap();
        assert_same_reads(&memory, &redb, &w, &mut rng).await;
        redb.close().await.unwrap();
        drop(redb);
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_read().unwrap();
        let version = txn.open_table(META).unwrap().get("format_version").unwrap();
        assert_eq!(
            version.map(|v| v.value()),
            Some(crm_store_redb::FORMAT_VERSION)
        );
        assert!(
            matches!(
                txn.open_table(LEGACY),
                Err(redb::TableError::TableDoesNotExist(_))
            ),
            "the rows of format 3 are gone"
        );
    });
}
