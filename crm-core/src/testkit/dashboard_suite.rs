//! Conformance tests of the dashboard ([`crate::dashboard`]): what each write does to the
//! figures, who sees what, and that the maintained tallies equal a recount after a
//! concurrent workload.

#![allow(missing_docs, clippy::missing_panics_doc)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::macros::date;
use uuid::Uuid;

use super::Fixture;
use super::setup::{bootstrap, email};
use super::suite::{World, company, reassign, reprice, tag, world};
use crate::clock::Date;
use crate::dashboard::DashboardQuery;
use crate::id::{ContactId, DealId, Id, TaskId, UserId, WorkspaceId};
use crate::mask::PersonalField;
use crate::model::*;
use crate::service::{Dashboard, Managed, Records};
use crate::storage::recount;
use crate::{Actor, Crm, Result, Storage};

/// The store's maintained answer equals the recount from its records, for each owner.
pub async fn assert_matches_recount(s: &dyn Storage, ws: WorkspaceId, owners: &[UserId]) {
    for owner in owners {
        let q = DashboardQuery::of(*owner);
        let kept = s.dashboard(ws, &q).await.unwrap();
        let counted = recount(s, ws, &q).await.unwrap();
        assert_eq!(kept.tallies, counted.tallies, "tallies of {owner}");
        assert_eq!(kept.next_tasks, counted.next_tasks, "next tasks of {owner}");
        assert_eq!(kept.hot_contacts, counted.hot_contacts, "hot contacts");
        assert_eq!(kept.activity, counted.activity, "activity");
    }
}

fn contact(first: &str, status: &str) -> ContactInput {
    ContactInput {
        first_name: first.into(),
        last_name: "Dash".into(),
        status: Some(status.into()),
        ..Default::default()
    }
}

fn deal(name: &str, stage: &str, amount: i64) -> DealInput {
    DealInput {
        name: name.into(),
        stage: Some(stage.into()),
        amount,
        ..Default::default()
    }
}

fn task(text: &str, due: Option<Date>, owner: Option<UserId>) -> TaskInput {
    TaskInput {
        text: text.into(),
        due_date: due,
        owner_id: owner,
        ..Default::default()
    }
}

fn stage(d: &Dashboard, value: &str) -> (u64, i128) {
    d.deals_by_stage
        .iter()
        .find(|s| s.stage == value)
        .map_or((0, 0), |s| (s.count, s.amount))
}

fn windows(d: &Dashboard) -> [u64; 4] {
    [
        d.tasks.overdue,
        d.tasks.today,
        d.tasks.this_week,
        d.tasks.open,
    ]
}

/// Creates, updates, moves, archives, completions, deletes, restores, purges and a merge each
/// move exactly the figures they should; lists come in their documented orders.
pub async fn dashboard_figures_follow_every_kind_of_write(f: Fixture) {
    let w = world(&f).await;
    let (crm, admin) = (&w.crm, &w.admin);
    // The world's clock: Monday 2026-01-05, 09:00 UTC; the week ends on Saturday the 10th.
    let d = crm.dashboard(admin, None).await.unwrap();
    assert_eq!(
        (d.today, d.week_end),
        (date!(2026 - 01 - 05), date!(2026 - 01 - 10))
    );
    assert_eq!(d.counts, crate::service::RecordCounts::default());
    assert_eq!(
        d.deals_by_stage.len(),
        6,
        "every configured stage, in order"
    );
    assert_eq!(d.deals_by_stage[0].stage, "opportunity");
    assert!(d.deals_by_stage.iter().all(|s| s.count == 0));
    assert!(
        d.deals_by_stage
            .iter()
            .any(|s| s.stage == "won" && s.closed)
    );

    // Tags and a company.
    let t1 = w.create(admin, tag("vip")).await;
    w.create(admin, tag("press")).await;
    crm.tags().delete(admin, t1.id).await.unwrap();
    w.create(admin, company("Acme")).await;

    // Contacts: hot ones ordered by last seen, most recent first.
    let c1 = w.create(admin, contact("One", "hot")).await;
    w.clock.advance(Duration::from_secs(60));
    let c2 = w.create(admin, contact("Two", "hot")).await;
    w.clock.advance(Duration::from_secs(60));
    let c3 = w.create(admin, contact("Three", "warm")).await;
    let c4 = w.create(admin, contact("Four", "hot")).await;
    crm.contacts().delete(admin, c4.id).await.unwrap();
    let d = crm.dashboard(admin, None).await.unwrap();
    let hot: Vec<_> = d.hot_contacts.iter().map(|c| c.id).collect();
    assert_eq!(
        hot,
        vec![c2.id, c1.id],
        "deleted and warm contacts are not hot"
    );
    assert_eq!(
        (d.counts.contacts, d.counts.tags, d.counts.companies),
        (3, 1, 1)
    );

    // A hot note makes a contact hot and moves its last_seen forward.
    w.clock.advance(Duration::from_secs(60));
    w.create(
        admin,
        NoteInput {
            contact_id: Some(c3.id),
            text: "Call".into(),
            status: Some("hot".into()),
            ..Default::default()
        },
    )
    .await;
    let d = crm.dashboard(admin, None).await.unwrap();
    let hot: Vec<_> = d.hot_contacts.iter().map(|c| c.id).collect();
    assert_eq!(hot, vec![c3.id, c2.id, c1.id]);
    assert_eq!(d.counts.notes, 1);
    assert_eq!(d.activity[0].entity, EntityKind::Note, "newest first");
    assert!(
        d.activity
            .iter()
            .all(|a| crate::dashboard::ACTIVITY_KINDS.contains(&a.entity))
    );
    assert!(d.activity.len() <= crate::dashboard::LATEST_ACTIVITY);

    // Deals: per stage, archived ones left out of the stages but counted as deals.
    let d1 = w.create(admin, deal("D1", "opportunity", 100)).await;
    let d2 = w.create(admin, deal("D2", "opportunity", 250)).await;
    w.create(admin, deal("D3", "won", 1000)).await;
    let d4 = w.create(admin, deal("D4", "lost", 50)).await;
    let d5 = w.create(admin, deal("D5", "proposal-sent", 70)).await;
    crm.deals().archive(admin, d4.id, d4.version).await.unwrap();
    crm.deals().delete(admin, d5.id).await.unwrap();
    crm.deals()
        .move_to(admin, d2.id, d2.version, "won", 0)
        .await
        .unwrap();
    let d1 = w.update(admin, d1.id, d1.version, reprice(120)).await;
    let d = crm.dashboard(admin, None).await.unwrap();
    assert_eq!(stage(&d, "opportunity"), (1, 120));
    assert_eq!(stage(&d, "won"), (2, 1250));
    assert_eq!(stage(&d, "lost"), (0, 0));
    assert_eq!(stage(&d, "proposal-sent"), (0, 0));
    assert_eq!(d.counts.deals, 4);
    let d4 = w.get(admin, d4.id).await;
    crm.deals()
        .unarchive(admin, d4.id, d4.version)
        .await
        .unwrap();
    crm.deals().restore(admin, d5.id).await.unwrap();
    let d = crm.dashboard(admin, None).await.unwrap();
    assert_eq!(
        (stage(&d, "lost"), stage(&d, "proposal-sent")),
        ((1, 50), (1, 70))
    );
    assert_eq!(d.counts.deals, 5);
    let _ = d1;

    // Tasks: the caller's windows and next tasks; everyone's count for an admin.
    let me = Some(admin.user_id());
    let overdue = w
        .create(admin, task("overdue", Some(date!(2026 - 01 - 02)), me))
        .await;
    let today = w
        .create(admin, task("today", Some(date!(2026 - 01 - 05)), me))
        .await;
    let week = w
        .create(admin, task("week", Some(date!(2026 - 01 - 10)), me))
        .await;
    let later = w
        .create(admin, task("later", Some(date!(2026 - 01 - 11)), me))
        .await;
    let undated = w.create(admin, task("undated", None, me)).await;
    let done = w
        .create(admin, task("done", Some(date!(2026 - 01 - 03)), me))
        .await;
    let done = crm
        .tasks()
        .complete(admin, done.id, done.version, true)
        .await
        .unwrap();
    w.create(
        admin,
        task(
            "theirs",
            Some(date!(2026 - 01 - 05)),
            Some(w.sales.user_id()),
        ),
    )
    .await;
    let d = crm.dashboard(admin, None).await.unwrap();
    assert_eq!(windows(&d), [1, 1, 1, 5]);
    let next: Vec<_> = d.tasks.next.iter().map(|t| t.id).collect();
    assert_eq!(
        next,
        vec![overdue.id, today.id, week.id, later.id, undated.id]
    );
    assert_eq!(d.counts.tasks, 7);
    // The caller's date decides the windows.
    let d = crm
        .dashboard(admin, Some(date!(2026 - 01 - 11)))
        .await
        .unwrap();
    assert_eq!(
        (d.week_end, windows(&d)),
        (date!(2026 - 01 - 17), [3, 1, 0, 5])
    );

    crm.tasks()
        .complete(admin, done.id, done.version, false)
        .await
        .unwrap();
    crm.tasks().delete(admin, later.id).await.unwrap();
    crm.tasks().purge(admin, later.id).await.unwrap();
    let week = w
        .update(admin, week.id, week.version, reassign(w.sales.user_id()))
        .await;
    let today = w
        .update(
            admin,
            today.id,
            today.version,
            TaskPatch {
                due_date: Some(Some(date!(2026 - 01 - 01))),
                ..Default::default()
            },
        )
        .await;
    let d = crm.dashboard(admin, None).await.unwrap();
    assert_eq!(windows(&d), [3, 0, 0, 4]);
    assert_eq!(d.counts.tasks, 6);
    let next: Vec<_> = d.tasks.next.iter().map(|t| t.id).collect();
    assert_eq!(next, vec![today.id, overdue.id, done.id, undated.id]);
    let _ = week;

    // A merge deletes the loser: one hot contact and one contact fewer.
    crm.contacts().merge(admin, c1.id, c2.id).await.unwrap();
    let d = crm.dashboard(admin, None).await.unwrap();
    let hot: Vec<_> = d.hot_contacts.iter().map(|c| c.id).collect();
    assert_eq!(hot, vec![c3.id, c1.id]);
    assert_eq!(d.counts.contacts, 2);

    // Another workspace changes nothing here.
    let (_, admin2) = bootstrap(crm, "Other", email("admin@other.test")).await;
    w.create(&admin2, contact("Else", "hot")).await;
    w.create(&admin2, deal("Far", "won", 5)).await;
    let again = crm.dashboard(admin, None).await.unwrap();
    assert_eq!(again.counts, d.counts);
    assert_eq!(again.deals_by_stage, d.deals_by_stage);
    assert_eq!(again.hot_contacts, d.hot_contacts);
    let theirs = crm.dashboard(&admin2, None).await.unwrap();
    assert_eq!((theirs.counts.contacts, theirs.counts.deals), (1, 1));

    let users = [admin.user_id(), w.sales.user_id(), w.reader.user_id()];
    assert_matches_recount(f.storage.as_ref(), admin.workspace_id(), &users).await;
}

/// Open tasks are the caller's own; task counts are all tasks for admins and managers and
/// the caller's own for sales and read-only users; hot contacts are masked for read-only
/// users as every read is.
pub async fn dashboard_shows_what_the_caller_may_read(f: Fixture) {
    let w = world(&f).await;
    let crm = &w.crm;
    let (admin, sales) = (&w.admin, &w.sales);
    w.create(admin, task("admin's", Some(date!(2026 - 01 - 04)), None))
        .await;
    let mine = w
        .create(sales, task("mine", Some(date!(2026 - 01 - 05)), None))
        .await;
    w.create(&w.sales2, task("other sales'", None, None)).await;
    w.create(
        admin,
        ContactInput {
            emails: vec![EmailEntry {
                email: "grace@example.com".into(),
                kind: EmailKind::Work,
            }],
            ..contact("Grace", "hot")
        },
    )
    .await;
    let config = crm.configuration().get(admin).await.unwrap();
    crm.configuration()
        .update(
            admin,
            config.version,
            ConfigurationPatch {
                masked_fields: Some(vec![PersonalField::Emails]),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let d = crm.dashboard(sales, None).await.unwrap();
    assert_eq!(d.counts.tasks, 1, "a sales user counts only its own tasks");
    assert_eq!(windows(&d), [0, 1, 0, 1]);
    assert_eq!(
        d.tasks.next.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![mine.id]
    );
    assert_eq!(d.counts.contacts, 1);
    assert_eq!(d.hot_contacts[0].emails[0].email, "grace@example.com");
    for boss in [admin, &w.manager] {
        let d = crm.dashboard(boss, None).await.unwrap();
        assert_eq!(d.counts.tasks, 3, "admins and managers count every task");
    }
    let d = crm.dashboard(admin, None).await.unwrap();
    assert_eq!(
        windows(&d),
        [1, 0, 0, 1],
        "the agenda is the caller's own, also for admins"
    );
    let d = crm.dashboard(&w.reader, None).await.unwrap();
    assert_eq!((d.counts.tasks, d.tasks.open), (0, 0));
    assert!(d.tasks.next.is_empty());
    assert_eq!(
        d.hot_contacts[0].emails[0].email, "g***@example.com",
        "masked as GET masks"
    );
    assert_eq!(d.counts.contacts, 1);
}

/// A small deterministic generator (xorshift), so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

#[derive(Default)]
struct Pool {
    contacts: Vec<ContactId>,
    deals: Vec<DealId>,
    tasks: Vec<TaskId>,
}

const STAGES: [&str; 6] = [
    "opportunity",
    "proposal-sent",
    "in-negociation",
    "won",
    "lost",
    "delayed",
];
const STATUSES: [&str; 4] = ["cold", "warm", "hot", "in-contract"];

/// One random step; races with the other workers may make it fail (conflicts, records gone
/// meanwhile, nothing to do), which is fine: only what commits counts.
/// Deletes (`op` 0), restores (1) or purges (2) the record `id` through `records`.
async fn trash_op<E: Managed>(
    records: Records<'_, E>,
    actor: &Actor,
    id: Uuid,
    op: usize,
) -> Result<()> {
    let id = Id::from_uuid(id);
    match op {
        0 => records.delete(actor, id).await,
        1 => records.restore(actor, id).await.map(|_| ()),
        _ => records.purge(actor, id).await,
    }
}

async fn step(crm: &Crm, actor: &Actor, owners: &[UserId], pool: &Mutex<Pool>, rng: &mut Rng) {
    let pick = |v: &[Uuid], rng: &mut Rng| (!v.is_empty()).then(|| v[rng.below(v.len())]);
    let day = |rng: &mut Rng| {
        (rng.below(5) != 0).then(|| {
            date!(2026 - 01 - 05)
                .checked_add(time::Duration::days(rng.below(21) as i64 - 10))
                .unwrap()
        })
    };
    let (contacts, deals, tasks) = {
        let p = pool.lock().unwrap();
        (
            p.contacts.iter().map(|c| c.uuid()).collect::<Vec<_>>(),
            p.deals.iter().map(|c| c.uuid()).collect::<Vec<_>>(),
            p.tasks.iter().map(|c| c.uuid()).collect::<Vec<_>>(),
        )
    };
    match rng.below(14) {
        0 | 1 => {
            let status = STATUSES[rng.below(4)];
            if let Ok(c) = crm.contacts().create(actor, contact("Race", status)).await {
                pool.lock().unwrap().contacts.push(c.id);
            }
        }
        2 | 3 => {
            let input = deal("Race", STAGES[rng.below(6)], rng.below(10_000) as i64);
            if let Ok(d) = crm.deals().create(actor, input).await {
                pool.lock().unwrap().deals.push(d.id);
            }
        }
        4 | 5 => {
            let owner = owners[rng.below(owners.len())];
            if let Ok(t) = crm
                .tasks()
                .create(actor, task("Race", day(rng), Some(owner)))
                .await
            {
                pool.lock().unwrap().tasks.push(t.id);
            }
        }
        6 => {
            if let Some(id) = pick(&tasks, rng)
                && let Ok(t) = crm.tasks().get(actor, Id::from_uuid(id)).await
            {
                let _ = crm
                    .tasks()
                    .complete(actor, t.id, t.version, !t.completed)
                    .await;
            }
        }
        7 => {
            if let Some(id) = pick(&deals, rng)
                && let Ok(d) = crm.deals().get(actor, Id::from_uuid(id)).await
            {
                let _ = if d.archived_at.is_some() {
                    crm.deals().unarchive(actor, d.id, d.version).await
                } else if rng.below(2) == 0 {
                    crm.deals().archive(actor, d.id, d.version).await
                } else {
                    crm.deals()
                        .move_to(actor, d.id, d.version, STAGES[rng.below(6)], 0)
                        .await
                };
            }
        }
        8 => {
            if let Some(id) = pick(&deals, rng)
                && let Ok(d) = crm.deals().get(actor, Id::from_uuid(id)).await
            {
                let patch = DealPatch {
                    amount: Some(rng.below(10_000) as i64),
                    ..Default::default()
                };
                let _ = crm.deals().update(actor, d.id, d.version, patch).await;
            }
        }
        9 => {
            if let Some(id) = pick(&tasks, rng)
                && let Ok(t) = crm.tasks().get(actor, Id::from_uuid(id)).await
            {
                let patch = TaskPatch {
                    due_date: Some(day(rng)),
                    owner_id: Some(owners[rng.below(owners.len())]),
                    ..Default::default()
                };
                let _ = crm.tasks().update(actor, t.id, t.version, patch).await;
            }
        }
        10 => {
            if let Some(id) = pick(&contacts, rng) {
                let note = NoteInput {
                    contact_id: Some(Id::from_uuid(id)),
                    text: "Race".into(),
                    status: Some(STATUSES[rng.below(4)].into()),
                    ..Default::default()
                };
                let _ = crm.notes().create(actor, note).await;
            }
        }
        11 => {
            // Delete, restore or purge something.
            let which = rng.below(3);
            let ids = [&contacts, &deals, &tasks][which];
            if let Some(id) = pick(ids, rng) {
                let op = rng.below(3);
                let _ = match which {
                    0 => trash_op(crm.contacts(), actor, id, op).await,
                    1 => trash_op(crm.deals(), actor, id, op).await,
                    _ => trash_op(crm.tasks(), actor, id, op).await,
                };
            }
        }
        12 => {
            if let (Some(a), Some(b)) = (pick(&contacts, rng), pick(&contacts, rng)) {
                let _ = crm
                    .contacts()
                    .merge(actor, Id::from_uuid(a), Id::from_uuid(b))
                    .await;
            }
        }
        _ => {
            if let Some(id) = pick(&contacts, rng)
                && let Ok(c) = crm.contacts().get(actor, Id::from_uuid(id)).await
            {
                let patch = ContactPatch {
                    status: Some(Some(STATUSES[rng.below(4)].into())),
                    sales_id: Some(Some(owners[rng.below(owners.len())])),
                    ..Default::default()
                };
                let _ = crm.contacts().update(actor, c.id, c.version, patch).await;
            }
        }
    }
}

/// Eight workers (half of them through a second instance on the peer storage) create,
/// update, move, archive, complete, delete, restore, purge and merge at once; afterwards
/// every maintained figure equals the recount from the records, for every user, and the
/// engine's figures agree with the records listed one by one.
pub async fn dashboard_is_exact_after_concurrent_writes(f: Fixture) {
    let w = world(&f).await;
    let owners = concurrent_workload(&w).await;
    let ws = w.admin.workspace_id();
    let mut users = owners.to_vec();
    users.push(w.reader.user_id());
    assert_matches_recount(f.storage.as_ref(), ws, &users).await;
    assert_matches_recount(f.peer().as_ref(), ws, &users).await;

    check_engine_figures(&w).await;
}

/// Runs [`concurrent_workload`] in `w` and reads, straight from `store`, the figures of its
/// owners and of the reader: what an upgrade or a refill of the tallies must give back. The
/// workspace, those users and their figures.
pub async fn workload_figures(
    store: &dyn Storage,
    w: &World,
) -> (
    WorkspaceId,
    Vec<UserId>,
    Vec<crate::dashboard::DashboardData>,
) {
    let mut users = concurrent_workload(w).await.to_vec();
    users.push(w.reader.user_id());
    let ws = w.admin.workspace_id();
    let mut figures = Vec::new();
    for u in &users {
        figures.push(store.dashboard(ws, &DashboardQuery::of(*u)).await.unwrap());
    }
    (ws, users, figures)
}

/// Eight workers (half of them on the world's peer instance) write at random — creates,
/// updates, moves, archives, completions, deletes, restores, purges, merges — 30 steps each;
/// returns the users owning the tasks and contacts written.
pub async fn concurrent_workload(w: &World) -> [UserId; 3] {
    let owners = [w.admin.user_id(), w.manager.user_id(), w.sales.user_id()];
    let pool = Arc::new(Mutex::new(Pool::default()));
    let mut set = tokio::task::JoinSet::new();
    for n in 0..8u64 {
        let crm = if n % 2 == 0 {
            w.crm.clone()
        } else {
            w.peer.clone()
        };
        let actor = if n % 4 == 3 {
            w.manager.clone()
        } else {
            w.admin.clone()
        };
        let pool = pool.clone();
        set.spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (n + 1).wrapping_mul(0x1234_5678_9ABC));
            for _ in 0..30 {
                step(&crm, &actor, &owners, &pool, &mut rng).await;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    owners
}

/// The engine's figures against the records, listed one by one.
async fn check_engine_figures(w: &World) {
    let ws = w.admin.workspace_id();
    let d = w.crm.dashboard(&w.admin, None).await.unwrap();
    assert!(
        d.counts.contacts + d.counts.deals + d.counts.tasks > 20,
        "the workload wrote: {:?}",
        d.counts
    );
    let all = |kind| {
        let crm = w.crm.clone();
        async move {
            let mut q =
                crate::query::ListQuery::new(crate::query::Sort::asc("created_at"), 100_000);
            q.deleted = crate::query::Deleted::Exclude;
            crm.storage().list(ws, kind, &q).await.unwrap()
        }
    };
    let deals: Vec<Deal> = all(EntityKind::Deal)
        .await
        .into_iter()
        .filter_map(Deal::from_record)
        .collect();
    let tasks: Vec<Task> = all(EntityKind::Task)
        .await
        .into_iter()
        .filter_map(Task::from_record)
        .collect();
    assert_eq!(d.counts.deals, deals.len() as u64);
    assert_eq!(d.counts.tasks, tasks.len() as u64);
    assert_eq!(
        d.counts.contacts,
        all(EntityKind::Contact).await.len() as u64
    );
    assert_eq!(d.counts.notes, all(EntityKind::Note).await.len() as u64);
    for s in &d.deals_by_stage {
        let on_board = deals
            .iter()
            .filter(|x| x.stage == s.stage && x.archived_at.is_none());
        let (n, sum) = on_board.fold((0u64, 0i128), |(n, sum), x| {
            (n + 1, sum + i128::from(x.amount))
        });
        assert_eq!((s.count, s.amount), (n, sum), "stage {}", s.stage);
    }
    let open_of = |u: UserId| {
        tasks
            .iter()
            .filter(|t| t.owner_id == u && !t.completed)
            .count() as u64
    };
    assert_eq!(d.tasks.open, open_of(w.admin.user_id()));
    let sales = w.crm.dashboard(&w.sales, None).await.unwrap();
    assert_eq!(sales.tasks.open, open_of(w.sales.user_id()));
    assert_eq!(
        sales.counts.tasks,
        tasks
            .iter()
            .filter(|t| t.owner_id == w.sales.user_id())
            .count() as u64
    );
    let overdue = tasks
        .iter()
        .filter(|t| t.owner_id == w.admin.user_id() && !t.completed)
        .filter(|t| t.due_date.is_some_and(|d| d < date!(2026 - 01 - 05)))
        .count() as u64;
    assert_eq!(d.tasks.overdue, overdue);
}
