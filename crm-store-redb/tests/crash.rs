//! Crash safety: a child process writes through the whole `Crm` facade with several
//! concurrent tasks and prints each id only after `commit` acknowledged it; the parent kills
//! it with `SIGKILL` mid-stream, reopens the file and checks that every acknowledged record
//! is there, intact, and that every record present is complete (found through its indexes,
//! its search words and its audit entry) — nothing half-written. Two rounds, so the second
//! child also writes to a file repaired after a kill.
//!
//! The child is this same test binary, re-executed with `CHILD_ENV` set and `--exact`.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_core::audit::{AuditAction, AuditQuery};
use crm_core::id::{CompanyId, UserId, WorkspaceId};
use crm_core::model::{Company, CompanyInput, CompanyPatch};
use crm_core::query::ListParams;
use crm_core::testkit::setup::{bootstrap, named};
use crm_core::{Actor, Crm, CrmConfig};
use crm_store_redb::{RedbOptions, RedbStore};

mod common;
use common::{runtime, say};

const CHILD_ENV: &str = "CRM_REDB_CRASH_CHILD_DB";
const TEST_NAME: &str = "acknowledged_commits_survive_sigkill";
const WRITERS: usize = 8;
const ACKS_BEFORE_KILL: usize = 300;

/// The child: writes until killed (or for two minutes at most).
fn child(path: &Path) {
    runtime().block_on(async {
        let store = Arc::new(RedbStore::open(path).unwrap());
        let crm = Crm::new(store, CrmConfig::default());
        let (ws, actor) = bootstrap(&crm, "Crash", named("admin@crash.test", "Ada", "Admin")).await;
        say(&format!("@WS {} {}", ws.id, actor.user_id()));
        for w in 0..WRITERS {
            let crm = crm.clone();
            let actor = actor.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let name = format!("Crash a{w}n{i}");
                    let c = crm
                        .companies()
                        .create(
                            &actor,
                            CompanyInput {
                                name: name.clone(),
                                city: Some("Tucson".into()),
                                ..Default::default()
                            },
                        )
                        .await
                        .unwrap();
                    say(&format!("@ACK {} {name}", c.id));
                    if i % 4 == 0 {
                        let renamed = format!("Moved b{w}n{i}");
                        crm.companies()
                            .update(
                                &actor,
                                c.id,
                                c.version,
                                CompanyPatch {
                                    name: Some(renamed.clone()),
                                    ..Default::default()
                                },
                            )
                            .await
                            .unwrap();
                        say(&format!("@UPD {} {renamed}", c.id));
                    }
                }
            });
        }
        tokio::time::sleep(Duration::from_secs(120)).await;
    });
}

/// What the parent learned from one child.
struct Round {
    ws: WorkspaceId,
    admin: UserId,
    /// Acknowledged creations: id -> name.
    created: HashMap<CompanyId, String>,
    /// Acknowledged renames: id -> new name.
    renamed: HashMap<CompanyId, String>,
}

fn run_child(path: &Path) -> Round {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut round = Round {
        ws: WorkspaceId::from_uuid(uuid::Uuid::nil()),
        admin: UserId::from_uuid(uuid::Uuid::nil()),
        created: HashMap::new(),
        renamed: HashMap::new(),
    };
    let started = Instant::now();
    let mut killed = false;
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        // A line cut by the kill was never a complete acknowledgement.
        let Some(l) = line.strip_suffix('\n') else {
            break;
        };
        // libtest may print its "test ... " prefix on the same line as the first message.
        let l = l.find('@').map_or(l, |at| &l[at + 1..]);
        let mut parts = l.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("WS"), Some(ws), Some(admin)) => {
                round.ws = ws.parse().unwrap();
                round.admin = admin.parse().unwrap();
            }
            (Some("ACK"), Some(id), Some(name)) => {
                round.created.insert(id.parse().unwrap(), name.to_string());
            }
            (Some("UPD"), Some(id), Some(name)) => {
                round.renamed.insert(id.parse().unwrap(), name.to_string());
            }
            _ => {} // the test harness's own output
        }
        if !killed && round.created.len() >= ACKS_BEFORE_KILL {
            child.kill().unwrap(); // SIGKILL
            killed = true;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the child is too slow"
        );
    }
    let status = child.wait().unwrap();
    assert!(
        killed,
        "the child ended by itself ({status}) after {} acks",
        round.created.len()
    );
    assert!(!status.success());
    round
}

async fn all_companies(crm: &Crm, actor: &Actor, params: ListParams) -> Vec<Company> {
    let mut out = Vec::new();
    let mut params = params.limit(100);
    loop {
        let page = crm.companies().list(actor, &params).await.unwrap();
        out.extend(page.data);
        match page.next_cursor {
            Some(c) => params = params.cursor(Some(c)),
            None => return out,
        }
    }
}

fn ids(cs: &[Company]) -> HashSet<CompanyId> {
    cs.iter().map(|c| c.id).collect()
}

/// Checks one round's workspace in a reopened store.
async fn verify(store: RedbStore, round: &Round, thorough: bool) {
    let crm = Crm::new(Arc::new(store), CrmConfig::default());
    let actor = crm.actor(round.ws, round.admin).await.unwrap();

    // Every acknowledged record is there, with an acknowledged rename applied.
    for (id, name) in &round.created {
        let c = crm.companies().get(&actor, *id).await.unwrap();
        match round.renamed.get(id) {
            Some(new) => assert_eq!(&c.name, new),
            // The rename may have committed without being acknowledged.
            None => assert!(c.name == *name || c.name.starts_with("Moved "), "{c:?}"),
        }
        assert_eq!(c.city.as_deref(), Some("Tucson"));
    }

    // The indexes agree with each other and hold every acknowledged record.
    let by_name = all_companies(&crm, &actor, ListParams::new().sort("name")).await;
    let by_created = all_companies(&crm, &actor, ListParams::new().sort("-created_at")).await;
    assert_eq!(by_name.len(), ids(&by_name).len(), "no duplicates");
    assert_eq!(ids(&by_name), ids(&by_created));
    let present = ids(&by_name);
    eprintln!(
        "acknowledged {} creations and {} renames; {} records present",
        round.created.len(),
        round.renamed.len(),
        present.len()
    );
    assert!(round.created.keys().all(|id| present.contains(id)));
    assert!(present.len() >= round.created.len());

    // The search index holds exactly the records present, under their current words.
    let crashed: HashSet<_> = by_name
        .iter()
        .filter(|c| c.name.starts_with("Crash "))
        .map(|c| c.id)
        .collect();
    let found = all_companies(&crm, &actor, ListParams::new().q("crash")).await;
    assert_eq!(ids(&found), crashed);
    let found = all_companies(&crm, &actor, ListParams::new().q("tucson")).await;
    assert_eq!(ids(&found), present);
    if thorough {
        for c in &by_name {
            let word = c.name.split(' ').nth(1).unwrap();
            let hits = crm
                .companies()
                .list(&actor, &ListParams::new().q(word).limit(100))
                .await
                .unwrap()
                .data;
            assert!(ids(&hits).contains(&c.id), "{c:?} not found by {word}");
            // Its audit trail is complete: the creation, and the rename if it happened.
            let trail = crm
                .audit()
                .list(
                    &actor,
                    &AuditQuery {
                        record_id: Some(c.id.uuid()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            let actions: Vec<_> = trail.iter().map(|e| e.action).collect();
            let want = if c.version == 2 {
                vec![AuditAction::Update, AuditAction::Create]
            } else {
                vec![AuditAction::Create]
            };
            assert_eq!(actions, want, "{c:?}");
        }
    }
}

#[test]
fn acknowledged_commits_survive_sigkill() {
    let Some((_dir, path)) = common::unless_child(CHILD_ENV, "crash.redb", child) else {
        return;
    };
    let first = run_child(&path);
    let rt = runtime();
    rt.block_on(verify(RedbStore::open(&path).unwrap(), &first, true));
    // Again on the repaired file; the first round must still be intact afterwards.
    let second = run_child(&path);
    rt.block_on(async {
        verify(RedbStore::open(&path).unwrap(), &second, true).await;
        // The broad-search path (index walk) sees the same records.
        let narrow_cap = RedbOptions {
            search_candidates: 8,
            ..Default::default()
        };
        verify(
            RedbStore::open_with(&path, narrow_cap).unwrap(),
            &first,
            false,
        )
        .await;
    });
}
