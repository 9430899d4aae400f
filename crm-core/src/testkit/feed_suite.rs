//! Conformance tests of the change feed ([`crate::feed`]): what a commit records, cursor
//! order under concurrent writers, pruning and the horizon.

#![allow(missing_docs, clippy::missing_panics_doc)]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::Fixture;
use super::suite::{
    World, company, company_deal, contact, contact_note, contact_task, deal, employee,
    rename_company, retitle, task, world,
};
use crate::feed::{ChangeEntry, ChangeOp, Position};
use crate::id::WorkspaceId;
use crate::model::*;
use crate::service::{Managed, Records};
use crate::{Actor, Storage};

/// The record `id` as `actor` gets it through `records`.
async fn read_back<E: Managed>(records: Records<'_, E>, actor: &Actor, id: Uuid) -> Record {
    let id = crate::id::Id::from_uuid(id);
    records.get(actor, id).await.unwrap().into_record()
}

/// The whole feed of a workspace, from the beginning.
pub async fn whole_feed(s: &dyn Storage, ws: WorkspaceId) -> Vec<ChangeEntry> {
    entries_after(s, ws, Position::ZERO).await
}

/// Every entry after `after`, read in small pages.
pub async fn entries_after(s: &dyn Storage, ws: WorkspaceId, after: Position) -> Vec<ChangeEntry> {
    let mut out: Vec<ChangeEntry> = Vec::new();
    let mut at = after;
    loop {
        let page = s.changes(ws, at, 7).await.unwrap();
        let n = page.entries.len();
        for e in page.entries {
            assert!(
                e.position > at,
                "positions increase: {:?} after {:?}",
                e.position,
                at
            );
            at = e.position;
            out.push(e);
        }
        if n < 7 {
            return out;
        }
    }
}

/// Waits until the feed shows `id` at `version`. On memory and redb an acknowledged change is
/// readable at once; on PostgreSQL once every transaction that was running when it committed
/// has ended (see `crm_store_postgres::feed`), which other tests' transactions can delay.
/// Once one entry of a commit is readable, so is every earlier commit of the same writer.
pub async fn settle(s: &dyn Storage, ws: WorkspaceId, id: Uuid, version: u64) {
    for _ in 0..30_000 {
        if whole_feed(s, ws)
            .await
            .iter()
            .any(|e| e.change.id == id && e.change.version == version)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("{id} v{version} never showed in the feed");
}

fn one(feed: &[ChangeEntry], id: Uuid) -> &ChangeEntry {
    let hits: Vec<&ChangeEntry> = feed.iter().filter(|e| e.change.id == id).collect();
    assert_eq!(hits.len(), 1, "one entry per record: {hits:?}");
    hits[0]
}

fn head(feed: &[ChangeEntry]) -> Position {
    feed.last().map_or(Position::ZERO, |e| e.position)
}

/// Each step of a record's life adds exactly its one new entry after the last cursor, with
/// the right op, version and actor, and the feed keeps only the latest entry per record.
pub async fn feed_records_each_change_once_per_record(f: Fixture) {
    let w = world(&f).await;
    let (s, ws) = (f.storage.as_ref(), w.admin.workspace_id());
    let before = whole_feed(s, ws).await;
    assert!(
        before.iter().all(|e| crate::feed::in_feed(e.change.entity)),
        "users, configuration and identity records stay out: {before:?}"
    );
    let mut cursor = head(&before);
    let c = w.create(&w.sales, contact("Ada", "Feed")).await;
    let (cid, actor) = (c.id.uuid(), w.sales.user_id());
    settle(s, ws, cid, 1).await;
    let step = |cursor: Position, op: ChangeOp, version: u64| async move {
        let new = entries_after(s, ws, cursor).await;
        assert_eq!(new.len(), 1, "{new:?}");
        let e = &new[0].change;
        assert_eq!(
            (e.entity, e.id, e.op, e.version, e.actor),
            (EntityKind::Contact, cid, op, version, Some(actor))
        );
        assert_eq!(e.owner, Some(actor));
        new[0].position
    };
    cursor = step(cursor, ChangeOp::Upsert, 1).await;
    let c2 = w.update(&w.sales, c.id, 1, retitle("Countess")).await;
    settle(s, ws, cid, c2.version).await;
    cursor = step(cursor, ChangeOp::Upsert, c2.version).await;
    w.crm.contacts().delete(&w.sales, c.id).await.unwrap();
    settle(s, ws, cid, 3).await;
    cursor = step(cursor, ChangeOp::Delete, 3).await;
    // The latest entry replaced the earlier ones.
    let all = whole_feed(s, ws).await;
    assert_eq!(one(&all, c.id.uuid()).change.version, 3);
    assert_eq!(all.len(), before.len() + 1);

    w.crm.contacts().restore(&w.admin, c.id).await.unwrap();
    settle(s, ws, cid, 4).await;
    let new = entries_after(s, ws, cursor).await;
    assert_eq!(new.len(), 1);
    assert_eq!(
        (new[0].change.op, new[0].change.version),
        (ChangeOp::Upsert, 4)
    );
    assert_eq!(new[0].change.actor, Some(w.admin.user_id()));
    cursor = new[0].position;
    w.crm.contacts().delete(&w.admin, c.id).await.unwrap();
    w.crm.contacts().purge(&w.admin, c.id).await.unwrap();
    settle(s, ws, cid, 6).await;
    let new = entries_after(s, ws, cursor).await;
    assert_eq!(new.len(), 1, "the purge replaced the soft delete: {new:?}");
    assert_eq!(
        (new[0].change.op, new[0].change.version),
        (ChangeOp::Delete, 6)
    );
    assert_eq!(
        new[0].change.owner,
        Some(w.sales.user_id()),
        "a purge keeps the owner"
    );
    // Nothing after the head.
    assert!(entries_after(s, ws, new[0].position).await.is_empty());
}

/// Merges, archives, moves, completions and derived updates are all in the feed.
pub async fn feed_covers_merge_archive_move_and_completion(f: Fixture) {
    let w = world(&f).await;
    let (s, ws) = (f.storage.as_ref(), w.admin.workspace_id());
    let a = &w.sales;
    let co = w.create(a, company("Feedco")).await;
    let winner = w.create(a, contact("Win", "Feed")).await;
    let loser = w.create(a, employee(co.id, "Lose", "Feed")).await;
    let note = w.create(a, contact_note(loser.id, "hello")).await;
    let task = w.create(a, contact_task(loser.id, "call")).await;
    let deal = w.create(a, company_deal(co.id, "Big")).await;
    settle(s, ws, deal.id.uuid(), deal.version).await;
    let cursor = head(&whole_feed(s, ws).await);
    let merged = w.merge(winner.id, loser.id).await;
    settle(s, ws, winner.id.uuid(), merged.version).await;
    let new = entries_after(s, ws, cursor).await;
    let op_of = |id: Uuid| one(&new, id).change.op;
    assert_eq!(
        op_of(loser.id.uuid()),
        ChangeOp::Delete,
        "the loser is deleted"
    );
    assert_eq!(op_of(winner.id.uuid()), ChangeOp::Upsert);
    assert_eq!(op_of(note.id.uuid()), ChangeOp::Upsert, "moved notes");
    assert_eq!(op_of(task.id.uuid()), ChangeOp::Upsert, "moved tasks");

    let cursor = head(&whole_feed(s, ws).await);
    let (tasks, deals) = (w.crm.tasks(), w.crm.deals());
    let t = tasks.get(a, task.id).await.unwrap();
    let t = tasks.complete(a, task.id, t.version, true).await.unwrap();
    let d = deals.archive(a, deal.id, deal.version).await.unwrap();
    let d = deals.unarchive(a, deal.id, d.version).await.unwrap();
    let stage = d.stage.clone();
    deals
        .move_to(a, deal.id, d.version, &stage, 0)
        .await
        .unwrap();
    let co2 = w
        .update(a, co.id, co.version, rename_company("Feedco 2"))
        .await;
    settle(s, ws, co.id.uuid(), co2.version).await;
    let new = entries_after(s, ws, cursor).await;
    assert_eq!(one(&new, task.id.uuid()).change.version, t.version);
    let deal_entry = one(&new, deal.id.uuid());
    assert_eq!(deal_entry.change.op, ChangeOp::Upsert);
    let now = w.get(a, deal.id).await;
    assert_eq!(deal_entry.change.version, now.version);
    assert_eq!(op_of_in(&new, co.id.uuid()), ChangeOp::Upsert);
    // The rename also rewrote the merged-away contact's company name: still a deletion.
    assert_eq!(one(&new, loser.id.uuid()).change.op, ChangeOp::Delete);
    for e in &new {
        assert!(crate::feed::in_feed(e.change.entity));
    }
}

fn op_of_in(feed: &[ChangeEntry], id: Uuid) -> ChangeOp {
    one(feed, id).change.op
}

/// Feeds are per workspace: a commit in one never shows in another's.
pub async fn feeds_are_per_workspace(f: Fixture) {
    let w = world(&f).await;
    let other = w.other("Other").await;
    let other_ws = other.admin.workspace_id();
    let s = f.storage.as_ref();
    let mine = w.create(&w.sales, contact("Mine", "Feed")).await;
    let theirs = other.create(&other.admin, contact("Theirs", "Feed")).await;
    settle(s, w.admin.workspace_id(), mine.id.uuid(), 1).await;
    settle(s, other_ws, theirs.id.uuid(), 1).await;
    let a = whole_feed(s, w.admin.workspace_id()).await;
    let b = whole_feed(s, other_ws).await;
    assert!(a.iter().any(|e| e.change.id == mine.id.uuid()));
    assert!(!a.iter().any(|e| e.change.id == theirs.id.uuid()));
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].change.id, theirs.id.uuid());
}

/// Pruning removes old tombstones only and raises the horizon above them.
pub async fn pruning_removes_old_deletions_and_raises_the_horizon(f: Fixture) {
    let w = world(&f).await;
    let (s, ws) = (f.storage.as_ref(), w.admin.workspace_id());
    let gone = w.create(&w.sales, contact("Gone", "Feed")).await;
    let kept = w.create(&w.sales, contact("Kept", "Feed")).await;
    w.crm.contacts().delete(&w.sales, gone.id).await.unwrap();
    settle(s, ws, gone.id.uuid(), 2).await;
    let early = head(&whole_feed(s, ws).await);
    w.clock.advance(Duration::from_secs(3600));
    let late = w.create(&w.sales, contact("Late", "Feed")).await;
    w.crm.contacts().delete(&w.sales, late.id).await.unwrap();
    settle(s, ws, late.id.uuid(), 2).await;
    let page = s.changes(ws, Position::ZERO, 1000).await.unwrap();
    assert_eq!(page.horizon, Position::ZERO);

    let cut = crate::Timestamp::from_micros(w.crm.now().as_micros() - 1_800_000_000);
    let removed = s.prune_changes(ws, cut).await.unwrap();
    assert_eq!(removed, 1, "only the old deletion");
    let page = s.changes(ws, Position::ZERO, 1000).await.unwrap();
    assert_eq!(page.horizon, early);
    let ids: HashSet<Uuid> = page.entries.iter().map(|e| e.change.id).collect();
    assert!(!ids.contains(&gone.id.uuid()));
    assert!(ids.contains(&kept.id.uuid()));
    assert!(ids.contains(&late.id.uuid()), "a recent deletion stays");
    assert_eq!(s.prune_changes(ws, cut).await.unwrap(), 0);
}

/// Many writers on several store handles commit while a reader polls without pause: the
/// reader sees every inserted record exactly once unless a later version replaced it, never
/// two entries of one version, every record's versions in increasing order, and each
/// record's final version. `stores` are independent handles on the same data (one for an
/// embedded store; several connection pools on a database server).
pub async fn readers_miss_nothing_under_concurrent_writers(stores: Vec<Arc<dyn Storage>>) {
    let f = Fixture::new(stores[0].clone());
    let w: World = world(&f).await;
    let ws = w.admin.workspace_id();
    let start = head(&whole_feed(f.storage.as_ref(), ws).await);
    // Set once every writer is done: (id, final version) of every record made.
    let expected: Arc<std::sync::Mutex<Option<HashMap<Uuid, u64>>>> = Arc::default();

    let reader = {
        let s = stores[stores.len() - 1].clone();
        let expected = expected.clone();
        tokio::spawn(async move {
            let mut seen: Vec<ChangeEntry> = Vec::new();
            let mut last: HashMap<Uuid, u64> = HashMap::new();
            let mut at = start;
            let mut idle_after_done = 0u32;
            loop {
                // Read what is expected before the page: a page read after the writers were
                // done that completes the picture is the end.
                let target = expected.lock().unwrap().clone();
                let page = s.changes(ws, at, 50).await.unwrap();
                let empty = page.entries.is_empty();
                for e in page.entries {
                    assert!(e.position > at);
                    at = e.position;
                    last.insert(e.change.id, e.change.version);
                    seen.push(e);
                }
                if let Some(target) = target {
                    if target.iter().all(|(id, v)| last.get(id) == Some(v)) {
                        return seen;
                    }
                    // A guard against hanging (another database's long transaction can hold
                    // PostgreSQL's xmin back for a while, so this is generous): give up and
                    // let the assertions say what is missing.
                    if empty {
                        idle_after_done += 1;
                        if idle_after_done > 60_000 {
                            return seen;
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                tokio::task::yield_now().await;
            }
        })
    };

    let writers = 8;
    let per_writer = 25;
    let mut handles = Vec::new();
    for n in 0..writers {
        let s = stores[n % stores.len()].clone();
        let crm = crate::Crm::with_clock(s, crate::CrmConfig::default(), Arc::new(w.clock.clone()));
        let actor = if n % 2 == 0 {
            w.sales.clone()
        } else {
            w.admin.clone()
        };
        handles.push(tokio::spawn(async move {
            // (id, final version) of every record this writer made.
            let mut made: Vec<(Uuid, u64)> = Vec::new();
            for i in 0..per_writer {
                let c = crm
                    .contacts()
                    .create(&actor, contact(&format!("w{n}i{i}"), "Feed"))
                    .await
                    .unwrap();
                let mut version = c.version;
                if i % 3 == 0 {
                    let u = crm
                        .contacts()
                        .update(&actor, c.id, version, retitle(format!("t{i}")))
                        .await
                        .unwrap();
                    version = u.version;
                }
                made.push((c.id.uuid(), version));
            }
            made
        }));
    }
    let mut made: HashMap<Uuid, u64> = HashMap::new();
    for h in handles {
        made.extend(h.await.unwrap());
    }
    *expected.lock().unwrap() = Some(made.clone());
    let seen = reader.await.unwrap();

    let mut versions: HashMap<Uuid, Vec<u64>> = HashMap::new();
    for e in &seen {
        versions
            .entry(e.change.id)
            .or_default()
            .push(e.change.version);
    }
    assert_eq!(versions.len(), made.len(), "every record seen");
    for (id, final_version) in &made {
        let v = &versions[id];
        assert!(
            v.windows(2).all(|p| p[0] < p[1]),
            "versions of {id} in order, each once: {v:?}"
        );
        assert_eq!(
            v.last(),
            Some(final_version),
            "the final version of {id} is seen"
        );
        if *final_version == 1 {
            assert_eq!(v, &[1], "a record changed once is seen exactly once");
        }
    }
}

/// Every item of a walk of [`crate::Crm::changes`] from `since` to the end, in pages of
/// `limit`; checks that `next_cursor` is always there and that the end is stable.
pub async fn walk_changes(
    crm: &crate::Crm,
    actor: &crate::Actor,
    since: Option<String>,
    limit: usize,
) -> (Vec<crate::service::ChangeItem>, String) {
    let mut out = Vec::new();
    let mut since = since;
    loop {
        let page = crm.changes(actor, since.as_deref(), limit).await.unwrap();
        assert!(page.data.len() <= limit);
        let done = page.data.is_empty() && !page.has_more;
        out.extend(page.data);
        if done {
            let again = crm
                .changes(actor, Some(&page.next_cursor), limit)
                .await
                .unwrap();
            assert!(again.data.is_empty());
            assert_eq!(again.next_cursor, page.next_cursor, "the end is stable");
            return (out, page.next_cursor);
        }
        since = Some(page.next_cursor);
    }
}

/// `Crm::changes` shows each actor only what it may read now, upserts carrying the record
/// exactly as `get` returns it; another user's task never shows, not even its deletion.
pub async fn changes_show_only_what_the_actor_may_read(f: Fixture) {
    let w = world(&f).await;
    let (s, ws) = (f.storage.as_ref(), w.admin.workspace_id());
    let mine = w.create(&w.sales, task("mine")).await;
    let theirs = w.create(&w.sales2, task("theirs")).await;
    let c = w.create(&w.admin, contact("Shared", "Feed")).await;
    settle(s, ws, c.id.uuid(), 1).await;

    let (seen, _) = walk_changes(&w.crm, &w.sales, None, 2).await;
    let ids: Vec<Uuid> = seen.iter().map(|i| i.id).collect();
    assert!(ids.contains(&mine.id.uuid()) && ids.contains(&c.id.uuid()));
    assert!(
        !ids.contains(&theirs.id.uuid()),
        "another user's task stays hidden"
    );
    for item in &seen {
        let record = item.record.clone().expect("upserts carry the record");
        let got = match item.entity {
            EntityKind::Task => read_back(w.crm.tasks(), &w.sales, item.id).await,
            _ => read_back(w.crm.contacts(), &w.sales, item.id).await,
        };
        assert_eq!(record, got, "the record as get returns it");
        assert_eq!(item.version, got.version());
    }
    let (all, _) = walk_changes(&w.crm, &w.admin, None, 1000).await;
    assert!(
        all.iter().any(|i| i.id == theirs.id.uuid()),
        "admins see every task"
    );

    // A deletion of another user's task is hidden too; of one's own, shown.
    let (_, cursor) = walk_changes(&w.crm, &w.sales, None, 1000).await;
    w.crm.tasks().delete(&w.sales2, theirs.id).await.unwrap();
    w.crm.tasks().delete(&w.sales, mine.id).await.unwrap();
    settle(s, ws, mine.id.uuid(), 2).await;
    let (after, _) = walk_changes(&w.crm, &w.sales, Some(cursor.clone()), 1).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(
        (after[0].id, after[0].op),
        (mine.id.uuid(), ChangeOp::Delete)
    );
    assert!(after[0].record.is_none());
    let (sales2, _) = walk_changes(&w.crm, &w.sales2, None, 1000).await;
    assert!(
        sales2
            .iter()
            .any(|i| i.id == theirs.id.uuid() && i.op == ChangeOp::Delete)
    );
    assert!(!sales2.iter().any(|i| i.id == mine.id.uuid()));
}

/// Paging, kinds, bad parameters and the expired cursor.
pub async fn changes_page_filter_and_refuse_bad_parameters(f: Fixture) {
    use crate::error::ErrorKind;
    let w = world(&f).await;
    let (s, ws) = (f.storage.as_ref(), w.admin.workspace_id());
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(w.create(&w.sales, contact(&format!("P{i}"), "Feed")).await);
    }
    let deal = w.create(&w.sales, deal("D")).await;
    settle(s, ws, deal.id.uuid(), deal.version).await;
    let (items, end) = walk_changes(&w.crm, &w.sales, None, 2).await;
    let ids: Vec<Uuid> = items.iter().map(|i| i.id).collect();
    for c in &made {
        assert_eq!(ids.iter().filter(|i| **i == c.id.uuid()).count(), 1);
    }
    let deals = w
        .crm
        .changes_of_kinds(&w.sales, None, 100, &[EntityKind::Deal])
        .await
        .unwrap();
    assert_eq!(deals.data.len(), 1);
    assert_eq!(deals.data[0].id, deal.id.uuid());
    // Reading on from an item's own cursor gives what came after it.
    let from_item = w
        .crm
        .changes(&w.sales, Some(&items[items.len() - 2].cursor), 100)
        .await
        .unwrap();
    assert_eq!(from_item.data.len(), 1);

    let err = |r: crate::Result<crate::service::ChangesPage>| {
        let e = r.unwrap_err();
        (e.kind(), e.fields().first().map(|f| f.field.clone()))
    };
    for limit in [0, 1001] {
        assert_eq!(
            err(w.crm.changes(&w.sales, None, limit).await),
            (ErrorKind::InvalidQuery, Some("limit".into()))
        );
    }
    assert_eq!(
        err(w.crm.changes(&w.sales, Some("nope"), 10).await),
        (ErrorKind::InvalidCursor, Some("since".into()))
    );
    assert_eq!(
        err(w
            .crm
            .changes_of_kinds(&w.sales, None, 10, &[EntityKind::User])
            .await),
        (ErrorKind::InvalidQuery, Some("entities".into()))
    );
    // A cursor of another workspace.
    let stranger = w.other("Elsewhere").await.admin;
    assert_eq!(
        err(w.crm.changes(&stranger, Some(&end), 10).await),
        (ErrorKind::InvalidCursor, Some("since".into()))
    );

    // Pruning a deletion the reader has not read yet expires its cursor; from the beginning
    // still works.
    w.crm.contacts().delete(&w.sales, made[0].id).await.unwrap();
    settle(s, ws, made[0].id.uuid(), 2).await;
    w.clock.advance(Duration::from_secs(10));
    s.prune_changes(ws, w.crm.now()).await.unwrap();
    assert_eq!(
        err(w.crm.changes(&w.sales, Some(&end), 10).await),
        (ErrorKind::CursorExpired, Some("since".into()))
    );
    assert!(w.crm.changes(&w.sales, None, 10).await.is_ok());
}

/// A subscription sees every commit of this instance and of another one (the peer: another
/// pool on PostgreSQL), in feed order, and resumes from its cursor without loss or repeat.
pub async fn subscriptions_see_every_instance_and_resume(f: Fixture) {
    let w = world(&f).await;
    let ws = w.admin.workspace_id();
    let mut sub = w.crm.subscribe(ws, None).unwrap();
    let mut made = Vec::new();
    for i in 0..6 {
        let crm = if i % 2 == 0 { &w.crm } else { &w.peer };
        made.push(
            crm.contacts()
                .create(&w.sales, contact(&format!("S{i}"), "Feed"))
                .await
                .unwrap()
                .id
                .uuid(),
        );
    }
    let mut seen = Vec::new();
    let mut last = Position::ZERO;
    while seen.len() < made.len() {
        let e = tokio::time::timeout(Duration::from_secs(30), sub.next())
            .await
            .expect("the subscription is woken")
            .unwrap();
        assert!(e.position > last);
        last = e.position;
        seen.push(e.change.id);
    }
    let mut sorted = seen.clone();
    sorted.sort();
    let mut want = made.clone();
    want.sort();
    assert_eq!(sorted, want, "every change once");
    let cursor = sub.cursor();
    drop(sub);

    // Commits while nobody listens are there on resubscription, and only those.
    let later = w
        .peer
        .contacts()
        .create(&w.sales, contact("Later", "Feed"))
        .await
        .unwrap();
    let mut sub = w.crm.subscribe(ws, Some(&cursor)).unwrap();
    let e = tokio::time::timeout(Duration::from_secs(30), sub.next())
        .await
        .expect("resumed")
        .unwrap();
    assert_eq!(e.change.id, later.id.uuid());
    assert!(w.crm.subscribe(ws, Some("garbage")).is_err());
}

/// Recently viewed: per user and kind, each record once at its latest view, newest first,
/// at most 100; `Crm::recent` leaves out what the user may no longer see.
pub async fn recently_viewed_keeps_the_latest_hundred(f: Fixture) {
    use crate::views::View;
    let w = world(&f).await;
    let (s, ws) = (f.storage.as_ref(), w.admin.workspace_id());
    let t0 = w.crm.now().as_micros();
    let view = |user: &crate::Actor, entity, id: Uuid, at: i64| View {
        workspace_id: ws,
        user_id: user.user_id(),
        entity,
        record_id: id,
        at: crate::Timestamp::from_micros(t0 + at),
    };
    let ids: Vec<Uuid> = (0..105).map(|_| Uuid::now_v7()).collect();
    // Two batches, the first view of ids[0] superseded by a later one.
    let mut first: Vec<View> = ids[..60]
        .iter()
        .enumerate()
        .map(|(i, id)| view(&w.sales, EntityKind::Contact, *id, i as i64))
        .collect();
    first.push(view(&w.sales2, EntityKind::Contact, ids[0], 5));
    s.record_views(&first).await.unwrap();
    let second: Vec<View> = ids[60..]
        .iter()
        .enumerate()
        .map(|(i, id)| view(&w.sales, EntityKind::Contact, *id, 100 + i as i64))
        .chain([view(&w.sales, EntityKind::Contact, ids[0], 1000)])
        .collect();
    s.record_views(&second).await.unwrap();
    let got = s
        .recent_views(ws, w.sales.user_id(), EntityKind::Contact, 1000)
        .await
        .unwrap();
    assert_eq!(got.len(), 100, "at most 100 kept");
    assert_eq!(got[0].0, ids[0], "a new view moves a record to the front");
    assert!(got.windows(2).all(|p| p[0].1 >= p[1].1), "newest first");
    let kept: HashSet<Uuid> = got.iter().map(|(id, _)| *id).collect();
    assert_eq!(kept.len(), 100, "each record once");
    for old in &ids[1..6] {
        assert!(!kept.contains(old), "the oldest fell off");
    }
    // Lists are per user and kind.
    let other = s
        .recent_views(ws, w.sales2.user_id(), EntityKind::Contact, 100)
        .await
        .unwrap();
    assert_eq!(other.len(), 1);
    assert!(
        s.recent_views(ws, w.sales.user_id(), EntityKind::Deal, 100)
            .await
            .unwrap()
            .is_empty()
    );

    // Through the engine: real records, newest first, deleted and hidden ones left out.
    let a = w.create(&w.sales, contact("Seen", "Feed")).await;
    let b = w.create(&w.sales, contact("Gone", "Feed")).await;
    let theirs = w.create(&w.sales2, task("x")).await;
    s.record_views(&[
        view(&w.sales, EntityKind::Contact, a.id.uuid(), 5000),
        view(&w.sales, EntityKind::Contact, b.id.uuid(), 5001),
        view(&w.sales, EntityKind::Task, theirs.id.uuid(), 5002),
    ])
    .await
    .unwrap();
    w.crm.contacts().delete(&w.sales, b.id).await.unwrap();
    let recent = w
        .crm
        .recent(&w.sales, EntityKind::Contact, 100)
        .await
        .unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].id(), a.id.uuid());
    assert!(
        w.crm
            .recent(&w.sales, EntityKind::Task, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(w.crm.recent(&w.sales, EntityKind::User, 10).await.is_err());
    assert!(
        w.crm
            .recent(&w.sales, EntityKind::Contact, 101)
            .await
            .is_err()
    );
}
