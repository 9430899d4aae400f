//! Arbitrary sequences of core operations — create, read, update (with a current or stale
//! version), soft delete, restore and list of contacts and tasks — by eight actors (one of
//! each role in each of two workspaces), on the redb store, each step checked against a
//! plain model: what the actor's role allows (the permission matrix, written out here
//! independently of `crm_core::permission`), which records exist in which workspace, what
//! each must contain, and which tasks each actor may see ("own only" for sales and
//! read-only: others' tasks are not found, never forbidden).
//!
//! The input is a `Vec<Operation>` decoded by `arbitrary` (as redb's fuzzer does): every
//! value is bounded by its type (an actor is a workspace and a role, a name one of four, a
//! record a pick among those the model knows), so the target reads as the model it checks.
#![no_main]

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use arbitrary::Arbitrary;
use crm_core::id::Id;
use crm_core::model::{Contact, ContactInput, ContactPatch, Role, Task, TaskInput, UserInput};
use crm_core::{Actor, Crm, CrmConfig, ErrorKind, ListParams};
use crm_store_redb::RedbStore;
use libfuzzer_sys::fuzz_target;

/// Longer scenarios add little over short ones and slow the fuzzer down.
const MAX_STEPS: usize = 130;

/// One step of a scenario, by one actor.
#[derive(Arbitrary, Debug)]
enum Operation {
    /// Create a contact with this last name.
    CreateContact { who: Who, last_name: Name },
    /// Read a contact the model knows, of either workspace.
    ReadContact { who: Who, contact: Pick },
    /// Rename a contact, naming its current version or a stale one.
    UpdateContact {
        who: Who,
        contact: Pick,
        last_name: Name,
        stale: bool,
    },
    /// Soft delete a contact.
    DeleteContact { who: Who, contact: Pick },
    /// Restore a contact from the trash (admins only).
    RestoreContact { who: Who, contact: Pick },
    /// Create a task owned by the actor.
    CreateTask { who: Who, text: u8 },
    /// Read a task the model knows: others' tasks do not exist for sales and read-only.
    ReadTask { who: Who, task: Pick },
    /// List every contact the actor may see, page by page, and its tasks.
    List { who: Who, page_size: PageSize },
}

/// An actor: a role in one of the two workspaces.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct Who {
    workspace: Workspace,
    role: AnyRole,
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Workspace {
    Alpha,
    Beta,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum AnyRole {
    Admin,
    Manager,
    Sales,
    ReadOnly,
}

/// A last name: few, so that renames often change nothing.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    Ada,
    Grace,
    Linus,
    Barbara,
}

/// One of the records the model knows (any workspace's, deleted or not).
#[derive(Arbitrary, Debug, Clone, Copy)]
struct Pick(u8);

/// A page size from 1 to 7.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct PageSize(u8);

impl Who {
    fn role(self) -> Role {
        match self.role {
            AnyRole::Admin => Role::Admin,
            AnyRole::Manager => Role::Manager,
            AnyRole::Sales => Role::Sales,
            AnyRole::ReadOnly => Role::ReadOnly,
        }
    }
    /// Its index among the actors: workspace × 4 + role.
    fn index(self) -> usize {
        self.workspace as usize * 4 + self.role as usize
    }
    /// May it write (create, update, soft delete) records?
    fn writes_records(self) -> bool {
        self.role() != Role::ReadOnly
    }
    /// May it see everyone's tasks?
    fn sees_all_tasks(self) -> bool {
        matches!(self.role(), Role::Admin | Role::Manager)
    }
}

impl Name {
    fn as_str(self) -> &'static str {
        match self {
            Name::Ada => "Ada",
            Name::Grace => "Grace",
            Name::Linus => "Linus",
            Name::Barbara => "Barbara",
        }
    }
}

impl Pick {
    /// The index it picks among `n` records, if there are any.
    fn among(self, n: usize) -> Option<usize> {
        (n > 0).then(|| usize::from(self.0) % n)
    }
}

impl PageSize {
    fn get(self) -> usize {
        1 + usize::from(self.0) % 7
    }
}

#[derive(Debug, Clone)]
struct ModelContact {
    id: uuid::Uuid,
    workspace: Workspace,
    last_name: &'static str,
    version: u64,
    deleted: bool,
}

#[derive(Debug, Clone)]
struct ModelTask {
    id: uuid::Uuid,
    workspace: Workspace,
    owner: usize,
    text: String,
    deleted: bool,
}

/// What must be true: every record made so far, as the rules say it must be.
#[derive(Default)]
struct Model {
    contacts: Vec<ModelContact>,
    tasks: Vec<ModelTask>,
}

impl Model {
    /// The contacts `who` may see.
    fn contacts_of(&self, who: Who) -> BTreeMap<uuid::Uuid, String> {
        self.contacts
            .iter()
            .filter(|m| m.workspace == who.workspace && !m.deleted)
            .map(|m| (m.id, m.last_name.to_owned()))
            .collect()
    }
    /// Whether `who` may see the task.
    fn sees_task(&self, who: Who, m: &ModelTask) -> bool {
        m.workspace == who.workspace
            && !m.deleted
            && (who.sees_all_tasks() || m.owner == who.index())
    }
}

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

/// Two workspaces, each with one user of every role, in [`Who::index`] order.
async fn actors(crm: &Crm) -> Vec<Actor> {
    let mut actors = Vec::new();
    for ws_name in ["Alpha", "Beta"] {
        let domain = ws_name.to_lowercase();
        let email = format!("admin@{domain}.test");
        let (ws, admin) = crm
            .bootstrap(
                ws_name,
                UserInput {
                    email,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let admin = crm.actor(ws.id, admin.id).await.unwrap();
        actors.push(admin.clone());
        for role in [Role::Manager, Role::Sales, Role::ReadOnly] {
            let email = format!("{role:?}@{domain}.test").to_lowercase();
            let input = UserInput {
                email,
                role: Some(role),
                ..Default::default()
            };
            let u = crm.users().create(&admin, input).await.unwrap();
            actors.push(crm.actor(ws.id, u.id).await.unwrap());
        }
    }
    actors
}

/// Runs one operation and checks its outcome against the model, which it then updates.
async fn step(crm: &Crm, actors: &[Actor], model: &mut Model, op: Operation) {
    match op {
        Operation::CreateContact { who, last_name } => {
            let input = ContactInput {
                first_name: "F".into(),
                last_name: last_name.as_str().into(),
                ..Default::default()
            };
            let r = crm.contacts().create(&actors[who.index()], input).await;
            if who.writes_records() {
                let c = r.unwrap();
                assert_eq!((c.last_name.as_str(), c.version), (last_name.as_str(), 1));
                model.contacts.push(ModelContact {
                    id: c.id.uuid(),
                    workspace: who.workspace,
                    last_name: last_name.as_str(),
                    version: 1,
                    deleted: false,
                });
            } else {
                assert_eq!(r.unwrap_err().kind(), ErrorKind::Forbidden);
            }
        }
        Operation::ReadContact { who, contact } => {
            let Some(i) = contact.among(model.contacts.len()) else {
                return;
            };
            let m = &model.contacts[i];
            let r = crm
                .contacts()
                .get(&actors[who.index()], Id::<Contact>::from_uuid(m.id))
                .await;
            if m.workspace == who.workspace && !m.deleted {
                let c = r.unwrap();
                assert_eq!((c.last_name.as_str(), c.version), (m.last_name, m.version));
            } else {
                assert_eq!(r.unwrap_err().kind(), ErrorKind::NotFound, "{m:?}");
            }
        }
        Operation::UpdateContact {
            who,
            contact,
            last_name,
            stale,
        } => {
            let Some(i) = contact.among(model.contacts.len()) else {
                return;
            };
            let m = &mut model.contacts[i];
            let version = if stale { m.version + 1 } else { m.version };
            let patch = ContactPatch {
                last_name: Some(last_name.as_str().into()),
                ..Default::default()
            };
            let r = crm
                .contacts()
                .update(&actors[who.index()], Id::from_uuid(m.id), version, patch)
                .await;
            if m.workspace != who.workspace || m.deleted {
                assert_eq!(r.unwrap_err().kind(), ErrorKind::NotFound, "{m:?}");
            } else if !who.writes_records() {
                assert_eq!(r.unwrap_err().kind(), ErrorKind::Forbidden);
            } else if stale {
                assert_eq!(r.unwrap_err().kind(), ErrorKind::VersionConflict);
            } else {
                // A patch that changes nothing is not a new version.
                let c = r.unwrap();
                let bump = u64::from(last_name.as_str() != m.last_name);
                assert_eq!(c.version, m.version + bump);
                m.version = c.version;
                m.last_name = last_name.as_str();
            }
        }
        Operation::DeleteContact { who, contact } => {
            let Some(i) = contact.among(model.contacts.len()) else {
                return;
            };
            let m = &mut model.contacts[i];
            let r = crm
                .contacts()
                .delete(&actors[who.index()], Id::<Contact>::from_uuid(m.id))
                .await;
            if m.workspace != who.workspace || m.deleted {
                assert_eq!(r.unwrap_err().kind(), ErrorKind::NotFound, "{m:?}");
            } else if !who.writes_records() {
                assert_eq!(r.unwrap_err().kind(), ErrorKind::Forbidden);
            } else {
                r.unwrap();
                m.deleted = true;
            }
        }
        Operation::RestoreContact { who, contact } => {
            let Some(i) = contact.among(model.contacts.len()) else {
                return;
            };
            let m = &mut model.contacts[i];
            let r = crm
                .contacts()
                .restore(&actors[who.index()], Id::<Contact>::from_uuid(m.id))
                .await;
            if m.workspace != who.workspace {
                assert_eq!(r.unwrap_err().kind(), ErrorKind::NotFound, "{m:?}");
            } else if who.role() != Role::Admin {
                let k = r.unwrap_err().kind();
                assert!(
                    matches!(k, ErrorKind::Forbidden | ErrorKind::NotFound),
                    "{k:?}"
                );
            } else if !m.deleted {
                // Restoring looks in the trash only: a live record is not there.
                assert_eq!(r.unwrap_err().kind(), ErrorKind::InvalidState);
            } else {
                let c = r.unwrap();
                m.deleted = false;
                m.version = c.version;
            }
        }
        Operation::CreateTask { who, text } => {
            let text = format!("task {text}");
            let actor = &actors[who.index()];
            let r = crm
                .tasks()
                .create(
                    actor,
                    TaskInput {
                        text: text.clone(),
                        ..Default::default()
                    },
                )
                .await;
            if who.writes_records() {
                let t = r.unwrap();
                assert_eq!(t.owner_id, actor.user_id());
                model.tasks.push(ModelTask {
                    id: t.id.uuid(),
                    workspace: who.workspace,
                    owner: who.index(),
                    text,
                    deleted: false,
                });
            } else {
                assert_eq!(r.unwrap_err().kind(), ErrorKind::Forbidden);
            }
        }
        Operation::ReadTask { who, task } => {
            let Some(i) = task.among(model.tasks.len()) else {
                return;
            };
            let m = &model.tasks[i];
            let r = crm
                .tasks()
                .get(&actors[who.index()], Id::<Task>::from_uuid(m.id))
                .await;
            if model.sees_task(who, m) {
                assert_eq!(r.unwrap().text, m.text);
            } else {
                assert_eq!(r.unwrap_err().kind(), ErrorKind::NotFound, "{m:?}");
            }
        }
        Operation::List { who, page_size } => {
            let actor = &actors[who.index()];
            let mut seen = BTreeMap::new();
            let mut params = ListParams::new().limit(page_size.get());
            loop {
                let page = crm.contacts().list(actor, &params).await.unwrap();
                for c in page.data {
                    assert!(
                        seen.insert(c.id.uuid(), c.last_name).is_none(),
                        "a contact twice"
                    );
                }
                match page.next_cursor {
                    Some(c) => params = params.cursor(Some(c)),
                    None => break,
                }
            }
            assert_eq!(seen, model.contacts_of(who));
            let listed = crm
                .tasks()
                .list(actor, &ListParams::new().limit(100))
                .await
                .unwrap();
            let mut got: Vec<_> = listed.data.iter().map(|t| t.id.uuid()).collect();
            let mut want: Vec<_> = model
                .tasks
                .iter()
                .filter(|m| model.sees_task(who, m))
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

fuzz_target!(|ops: Vec<Operation>| {
    if ops.len() > MAX_STEPS {
        return;
    }
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path().join("crm.redb")).unwrap();
        let crm = Crm::new(Arc::new(store.clone()), CrmConfig::default());
        let actors = actors(&crm).await;
        let mut model = Model::default();
        for op in ops {
            step(&crm, &actors, &mut model, op).await;
        }
        store.close().await.unwrap();
    });
});
