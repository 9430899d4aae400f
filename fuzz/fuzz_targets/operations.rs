//! Arbitrary sequences of core operations — create, read, update (with a current or stale
//! version), soft delete, restore and list of contacts and tasks — by eight actors (one of
//! each role in each of two workspaces), on the redb store, each step checked against a
//! plain model: what the actor's role allows (the permission matrix, written out here
//! independently of `crm_core::permission`), which records exist in which workspace, what
//! each must contain, and which tasks each actor may see ("own only" for sales and
//! read-only: others' tasks are not found, never forbidden).
#![no_main]

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use crm_core::id::Id;
use crm_core::model::{Contact, ContactInput, ContactPatch, Role, Task, TaskInput, UserInput};
use crm_core::{Actor, Crm, CrmConfig, ErrorKind, ListParams};
use crm_store_redb::RedbStore;
use libfuzzer_sys::fuzz_target;

const ROLES: [Role; 4] = [Role::Admin, Role::Manager, Role::Sales, Role::ReadOnly];
const NAMES: [&str; 4] = ["Ada", "Grace", "Linus", "Barbara"];

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

#[derive(Debug, Clone)]
struct ModelContact {
    id: uuid::Uuid,
    ws: usize,
    last_name: String,
    version: u64,
    deleted: bool,
}

#[derive(Debug, Clone)]
struct ModelTask {
    id: uuid::Uuid,
    ws: usize,
    owner: usize,
    text: String,
    deleted: bool,
}

/// May `role` write (create, update, soft delete) contacts?
fn writes_records(role: Role) -> bool {
    role != Role::ReadOnly
}
/// May `role` see everyone's tasks?
fn sees_all_tasks(role: Role) -> bool {
    matches!(role, Role::Admin | Role::Manager)
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 400 {
        return;
    }
    let rt = runtime();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path().join("crm.redb")).unwrap();
        let crm = Crm::new(Arc::new(store.clone()), CrmConfig::default());
        // Two workspaces, each with one user of every role; actor index = ws * 4 + role.
        let mut actors: Vec<Actor> = Vec::new();
        for ws_name in ["Alpha", "Beta"] {
            let (ws, admin) = crm
                .bootstrap(
                    ws_name,
                    UserInput {
                        email: format!("admin@{}.test", ws_name.to_lowercase()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            let admin = crm.actor(ws.id, admin.id).await.unwrap();
            actors.push(admin.clone());
            for role in &ROLES[1..] {
                let u = crm
                    .users()
                    .create(
                        &admin,
                        UserInput {
                            email: format!("{role:?}@{}.test", ws_name.to_lowercase()).to_lowercase(),
                            role: Some(*role),
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
                actors.push(crm.actor(ws.id, u.id).await.unwrap());
            }
        }
        let role = |a: usize| ROLES[a % 4];
        let ws_of = |a: usize| a / 4;
        let mut contacts: Vec<ModelContact> = Vec::new();
        let mut tasks: Vec<ModelTask> = Vec::new();

        for step in data.chunks_exact(3) {
            let a = step[0] as usize % actors.len();
            let actor = &actors[a];
            let arg = step[2] as usize;
            match step[1] % 8 {
                // Create a contact.
                0 => {
                    let last = NAMES[arg % NAMES.len()].to_owned();
                    let r = crm
                        .contacts()
                        .create(
                            actor,
                            ContactInput { first_name: "F".into(), last_name: last.clone(), ..Default::default() },
                        )
                        .await;
                    if writes_records(role(a)) {
                        let c = r.unwrap();
                        assert_eq!((c.last_name.as_str(), c.version), (last.as_str(), 1));
                        contacts.push(ModelContact { id: c.id.uuid(), ws: ws_of(a), last_name: last, version: 1, deleted: false });
                    } else {
                        assert_eq!(r.unwrap_err().kind(), ErrorKind::Forbidden);
                    }
                }
                // Read a contact (any workspace's id).
                1 if !contacts.is_empty() => {
                    let m = contacts[arg % contacts.len()].clone();
                    let r = crm.contacts().get(actor, Id::<Contact>::from_uuid(m.id)).await;
                    if m.ws == ws_of(a) && !m.deleted {
                        let c = r.unwrap();
                        assert_eq!((c.last_name.as_str(), c.version), (m.last_name.as_str(), m.version));
                    } else {
                        assert_eq!(r.unwrap_err().kind(), ErrorKind::NotFound, "{m:?}");
                    }
                }
                // Update a contact with its current version (even arg) or a stale one.
                2 if !contacts.is_empty() => {
                    let i = arg % contacts.len();
                    let m = contacts[i].clone();
                    let stale = arg % 2 == 1;
                    let version = if stale { m.version + 1 } else { m.version };
                    let last = NAMES[(arg / 2) % NAMES.len()].to_owned();
                    let patch = ContactPatch { last_name: Some(last.clone()), ..Default::default() };
                    let r = crm.contacts().update(actor, Id::from_uuid(m.id), version, patch).await;
                    if m.ws != ws_of(a) || m.deleted {
                        assert_eq!(r.unwrap_err().kind(), ErrorKind::NotFound, "{m:?}");
                    } else if !writes_records(role(a)) {
                        assert_eq!(r.unwrap_err().kind(), ErrorKind::Forbidden);
                    } else if stale {
                        assert_eq!(r.unwrap_err().kind(), ErrorKind::VersionConflict);
                    } else {
                        // A patch that changes nothing is not a new version.
                        let c = r.unwrap();
                        let bump = u64::from(last != m.last_name);
                        assert_eq!(c.version, m.version + bump);
                        contacts[i].version = c.version;
                        contacts[i].last_name = last;
                    }
                }
                // Soft delete a contact.
                3 if !contacts.is_empty() => {
                    let i = arg % contacts.len();
                    let m = contacts[i].clone();
                    let r = crm.contacts().delete(actor, Id::<Contact>::from_uuid(m.id)).await;
                    if m.ws != ws_of(a) || m.deleted {
                        assert_eq!(r.unwrap_err().kind(), ErrorKind::NotFound, "{m:?}");
                    } else if !writes_records(role(a)) {
                        assert_eq!(r.unwrap_err().kind(), ErrorKind::Forbidden);
                    } else {
                        r.unwrap();
                        contacts[i].deleted = true;
                    }
                }
                // Restore a contact (admins only).
                4 if !contacts.is_empty() => {
                    let i = arg % contacts.len();
                    let m = contacts[i].clone();
                    let r = crm.contacts().restore(actor, Id::<Contact>::from_uuid(m.id)).await;
                    if m.ws != ws_of(a) {
                        assert_eq!(r.unwrap_err().kind(), ErrorKind::NotFound, "{m:?}");
                    } else if role(a) != Role::Admin {
                        let k = r.unwrap_err().kind();
                        assert!(matches!(k, ErrorKind::Forbidden | ErrorKind::NotFound), "{k:?}");
                    } else if !m.deleted {
                        // Restoring looks in the trash only: a live record is not there.
                        assert_eq!(r.unwrap_err().kind(), ErrorKind::InvalidState);
                    } else {
                        let c = r.unwrap();
                        contacts[i].deleted = false;
                        contacts[i].version = c.version;
                    }
                }
                // Create a task owned by the actor.
                5 => {
                    let text = format!("task {arg}");
                    let r = crm
                        .tasks()
                        .create(actor, TaskInput { text: text.clone(), ..Default::default() })
                        .await;
                    if writes_records(role(a)) {
                        let t = r.unwrap();
                        assert_eq!(t.owner_id, actor.user_id());
                        tasks.push(ModelTask { id: t.id.uuid(), ws: ws_of(a), owner: a, text, deleted: false });
                    } else {
                        assert_eq!(r.unwrap_err().kind(), ErrorKind::Forbidden);
                    }
                }
                // Read a task: others' tasks do not exist for sales and read-only.
                6 if !tasks.is_empty() => {
                    let m = tasks[arg % tasks.len()].clone();
                    let r = crm.tasks().get(actor, Id::<Task>::from_uuid(m.id)).await;
                    let visible = m.ws == ws_of(a) && !m.deleted && (sees_all_tasks(role(a)) || m.owner == a);
                    if visible {
                        assert_eq!(r.unwrap().text, m.text);
                    } else {
                        assert_eq!(r.unwrap_err().kind(), ErrorKind::NotFound, "{m:?}");
                    }
                }
                // List everything the actor may see, page by page, against the model.
                _ => {
                    let mut seen = BTreeMap::new();
                    let mut params = ListParams::new().limit(1 + arg % 7);
                    loop {
                        let page = crm.contacts().list(actor, &params).await.unwrap();
                        for c in page.data {
                            assert!(seen.insert(c.id.uuid(), c.last_name).is_none(), "a contact twice");
                        }
                        match page.next_cursor {
                            Some(c) => params = params.cursor(Some(c)),
                            None => break,
                        }
                    }
                    let expected: BTreeMap<_, _> = contacts
                        .iter()
                        .filter(|m| m.ws == ws_of(a) && !m.deleted)
                        .map(|m| (m.id, m.last_name.clone()))
                        .collect();
                    assert_eq!(seen, expected);
                    let listed = crm.tasks().list(actor, &ListParams::new().limit(100)).await.unwrap();
                    let mut got: Vec<_> = listed.data.iter().map(|t| t.id.uuid()).collect();
                    let mut want: Vec<_> = tasks
                        .iter()
                        .filter(|m| m.ws == ws_of(a) && !m.deleted && (sees_all_tasks(role(a)) || m.owner == a))
                        .map(|m| m.id)
                        .take(100)
                        .collect();
                    got.sort();
                    want.sort();
                    if want.len() < 100 {
                        assert_eq!(got, want);
                    }
                }
            }
        }
        store.close().await.unwrap();
    });
});
