//! [`Crm::changes`]: the change feed ([`crate::feed`]) as one actor may see it, and the
//! signal that wakes waiting readers.
//!
//! Every entry is filtered by what the actor may read *now*: an upsert is shown only if
//! [`Records::get_many`] — the batch form of the read `GET` uses, with the same checks — hands
//! the record out, and then carries exactly that record; a deletion only if the actor may
//! read every record of its kind, or owns it. So a sales user never learns that another
//! user's task exists or changed, not even its id. A record that leaves the actor's sight
//! (a task handed to someone else) is not announced as deleted — that would reveal it — a
//! client finds out when a batch read (`ids=`) leaves it out.

use std::collections::HashMap;

use uuid::Uuid;

use super::{Actor, Crm, Records};
use crate::error::{Error, ErrorKind, FieldError, FieldIssue, Result};
use crate::feed::{ChangeCursor, ChangeEntry, ChangeOp, FEED_KINDS, Position, check_horizon};
use crate::id::{Id, UserId};
use crate::model::{EntityKind, Record};
use crate::permission::{Resource, Scope, read_scope};
use crate::service::Managed;

/// Largest page of [`Crm::changes`].
pub const MAX_CHANGES_LIMIT: usize = 1000;

/// How many feed entries one [`Crm::changes`] call reads at most, per asked item, before it
/// answers a short page (with `has_more`) rather than scan on for visible entries.
const SCAN_FACTOR: usize = 10;

/// One change as an actor sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeItem {
    /// The cursor of this entry: reading on from it returns what comes after.
    pub cursor: String,
    /// Kind of record.
    pub entity: EntityKind,
    /// Which record.
    pub id: Uuid,
    /// Upsert or delete.
    pub op: ChangeOp,
    /// The record's version after the change.
    pub version: u64,
    /// When.
    pub at: crate::Timestamp,
    /// Who.
    pub actor: Option<UserId>,
    /// For an upsert, the record as [`Records::get`] returns it now; `None` for a delete.
    pub record: Option<Record>,
}

/// A page of [`Crm::changes`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChangesPage {
    /// The visible changes, in feed order.
    pub data: Vec<ChangeItem>,
    /// Where to read on from: past every entry read, visible or not. Always present; on the
    /// last page too, so a client can store it and come back later.
    pub next_cursor: String,
    /// Whether more entries were already waiting when the page was cut.
    pub has_more: bool,
}

async fn visible<E: Managed>(
    records: Records<'_, E>,
    actor: &Actor,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Record>> {
    let ids: Vec<Id<E>> = ids.iter().map(|u| Id::from_uuid(*u)).collect();
    Ok(records
        .get_many(actor, &ids)
        .await?
        .into_iter()
        .map(|r| (r.meta().id, r.into_record()))
        .collect())
}

impl Crm {
    /// A page of at most `limit` (1..=1000) changes of the actor's workspace after `since`
    /// (a cursor from an earlier page; `None`: from the beginning), filtered by what the
    /// actor may read now: an upsert only if [`Records::get_many`] (the batch form of the
    /// read `GET` uses) hands the record out, carrying exactly that record; a deletion only
    /// if the actor may read every record of its kind, or owns it. A record that leaves the
    /// actor's sight is not announced (that would reveal it): a batch read leaves it out.
    ///
    /// # Errors
    /// `InvalidQuery` naming `limit` when it is out of range; `InvalidCursor` naming `since`
    /// for a malformed cursor or one of another workspace; `CursorExpired` when the feed no
    /// longer keeps what came after `since` (resync from the beginning); storage failures.
    /// Nothing is read on a bad parameter.
    pub async fn changes(
        &self,
        actor: &Actor,
        since: Option<&str>,
        limit: usize,
    ) -> Result<ChangesPage> {
        self.changes_of_kinds(actor, since, limit, &FEED_KINDS)
            .await
    }

    /// [`Crm::changes`] restricted to some kinds of records.
    ///
    /// # Errors
    /// As [`Crm::changes`]; `InvalidQuery` naming `entities` when a kind is not in the feed
    /// or the list is empty.
    pub async fn changes_of_kinds(
        &self,
        actor: &Actor,
        since: Option<&str>,
        limit: usize,
        entities: &[EntityKind],
    ) -> Result<ChangesPage> {
        let bad = |field: &str, issue| {
            Error::new(ErrorKind::InvalidQuery).with_fields(vec![FieldError::new(field, issue)])
        };
        if !(1..=MAX_CHANGES_LIMIT).contains(&limit) {
            return Err(bad("limit", FieldIssue::OutOfRange));
        }
        if entities.is_empty() || entities.iter().any(|k| !FEED_KINDS.contains(k)) {
            return Err(bad("entities", FieldIssue::NotAllowed));
        }
        let ws = actor.workspace_id();
        let start = match since {
            Some(s) => ChangeCursor::decode(s, ws)?.position,
            None => Position::ZERO,
        };
        let cursor = |position| {
            ChangeCursor {
                workspace_id: ws,
                position,
            }
            .encode()
        };
        let mut data = Vec::new();
        let mut at = start;
        let mut scanned = 0usize;
        let mut has_more = false;
        while data.len() < limit {
            let want = limit - data.len();
            let page = self.storage().changes(ws, at, want).await?;
            check_horizon(at, &page)?;
            let full = page.entries.len() == want;
            if let Some(last) = page.entries.last() {
                at = last.position;
            }
            scanned += page.entries.len();
            data.extend(
                self.visible_items(actor, page.entries, entities, cursor)
                    .await?,
            );
            if !full {
                break;
            }
            if scanned >= limit * SCAN_FACTOR {
                has_more = true;
                break;
            }
            has_more = data.len() >= limit;
        }
        Ok(ChangesPage {
            data,
            next_cursor: cursor(at),
            has_more,
        })
    }

    /// The entries of one store page the actor may see, with their records.
    async fn visible_items(
        &self,
        actor: &Actor,
        entries: Vec<ChangeEntry>,
        entities: &[EntityKind],
        cursor: impl Fn(Position) -> String,
    ) -> Result<Vec<ChangeItem>> {
        let entries: Vec<ChangeEntry> = entries
            .into_iter()
            .filter(|e| entities.contains(&e.change.entity))
            .collect();
        let mut records: HashMap<Uuid, Record> = HashMap::new();
        for kind in FEED_KINDS {
            let ids: Vec<Uuid> = entries
                .iter()
                .filter(|e| e.change.entity == kind && e.change.op == ChangeOp::Upsert)
                .map(|e| e.change.id)
                .collect();
            if ids.is_empty() {
                continue;
            }
            records.extend(match kind {
                EntityKind::Company => visible(self.companies(), actor, &ids).await?,
                EntityKind::Contact => visible(self.contacts(), actor, &ids).await?,
                EntityKind::Deal => visible(self.deals(), actor, &ids).await?,
                EntityKind::Note => visible(self.notes(), actor, &ids).await?,
                EntityKind::Task => visible(self.tasks(), actor, &ids).await?,
                EntityKind::Tag => visible(self.tags(), actor, &ids).await?,
                _ => HashMap::new(),
            });
        }
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let c = e.change;
            let record = match c.op {
                ChangeOp::Upsert => match records.remove(&c.id) {
                    Some(r) => Some(r),
                    // Gone since, or hidden from the actor: a gone one has a later entry.
                    None => continue,
                },
                ChangeOp::Delete => {
                    let scope = Resource::of_record(c.entity)
                        .map_or(Scope::None, |r| read_scope(actor.role(), r));
                    let seen = match scope {
                        Scope::All => true,
                        Scope::Own => c.owner == Some(actor.user_id()),
                        Scope::None => false,
                    };
                    if !seen {
                        continue;
                    }
                    None
                }
            };
            out.push(ChangeItem {
                cursor: cursor(e.position),
                entity: c.entity,
                id: c.id,
                op: c.op,
                version: record.as_ref().map_or(c.version, Record::version),
                at: c.at,
                actor: c.actor,
                record,
            });
        }
        Ok(out)
    }
}

/// Entries a [`Subscription`] reads ahead at most: its whole buffer.
pub const SUBSCRIPTION_BUFFER: usize = 256;

/// A host's stream of a workspace's committed changes, from [`Crm::subscribe`]: every entry
/// of the feed after its cursor, in order, from every instance on the same database — not
/// filtered by any user's permissions (it is the host's own view).
///
/// It reads the feed itself (a [`ChangeSignal`](super::ChangeSignal) only wakes it), holding
/// at most [`SUBSCRIPTION_BUFFER`] entries: writers never wait for a subscriber, and a slow
/// one just reads further behind. A subscriber that stops, crashes or restarts resumes with
/// [`Crm::subscribe`] from its last [`Subscription::cursor`] and loses nothing (unless the
/// feed was pruned past it: `CursorExpired`).
pub struct Subscription {
    crm: Crm,
    workspace: crate::id::WorkspaceId,
    at: Position,
    buffer: std::collections::VecDeque<ChangeEntry>,
    signal: super::ChangeSignal,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("workspace", &self.workspace)
            .field("at", &self.at)
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// The next committed change, waiting for one if there is none yet.
    ///
    /// # Errors
    /// `CursorExpired` if the feed was pruned past the subscription's position (resubscribe
    /// from the beginning); storage failures (the subscription stays usable: call again).
    pub async fn next(&mut self) -> Result<ChangeEntry> {
        loop {
            if let Some(entry) = self.buffer.pop_front() {
                self.at = entry.position;
                return Ok(entry);
            }
            let page = self
                .crm
                .storage()
                .changes(self.workspace, self.at, SUBSCRIPTION_BUFFER)
                .await?;
            check_horizon(self.at, &page)?;
            if page.entries.is_empty() {
                self.signal.changed().await;
            } else {
                self.buffer.extend(page.entries);
            }
        }
    }

    /// The cursor after the last change [`Subscription::next`] returned: store it to resume.
    pub fn cursor(&self) -> String {
        ChangeCursor {
            workspace_id: self.workspace,
            position: self.at,
        }
        .encode()
    }
}

impl Crm {
    /// Subscribes to a workspace's committed changes after `since` (a
    /// [`Subscription::cursor`] or a `/changes` cursor; `None`: from the beginning). See
    /// [`Subscription`]. Call it from within the host's runtime (on PostgreSQL the first
    /// subscription starts the store's listener).
    ///
    /// # Errors
    /// `InvalidCursor` for a malformed cursor or one of another workspace.
    pub fn subscribe(
        &self,
        workspace: crate::id::WorkspaceId,
        since: Option<&str>,
    ) -> Result<Subscription> {
        let at = match since {
            Some(s) => ChangeCursor::decode(s, workspace)?.position,
            None => Position::ZERO,
        };
        Ok(Subscription {
            crm: self.clone(),
            workspace,
            at,
            buffer: std::collections::VecDeque::new(),
            signal: self.change_signal(),
        })
    }
}

impl Crm {
    /// The actor's recently viewed records of `kind` (one of the record resources), newest
    /// first, at most `limit` (1..=100): what [`crate::Storage::recent_views`] keeps, read
    /// through [`Records::get_many`] — records since deleted or no longer visible are left out.
    ///
    /// # Errors
    /// `InvalidQuery` naming `entity` or `limit`; storage failures.
    pub async fn recent(
        &self,
        actor: &Actor,
        kind: EntityKind,
        limit: usize,
    ) -> Result<Vec<Record>> {
        if !FEED_KINDS.contains(&kind) {
            return Err(Error::new(ErrorKind::InvalidQuery)
                .with_fields(vec![FieldError::new("entity", FieldIssue::NotAllowed)]));
        }
        if !(1..=crate::views::RECENT_LIMIT).contains(&limit) {
            return Err(Error::new(ErrorKind::InvalidQuery)
                .with_fields(vec![FieldError::new("limit", FieldIssue::OutOfRange)]));
        }
        let ids: Vec<Uuid> = self
            .storage()
            .recent_views(actor.workspace_id(), actor.user_id(), kind, limit)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let found = match kind {
            EntityKind::Company => visible(self.companies(), actor, &ids).await?,
            EntityKind::Contact => visible(self.contacts(), actor, &ids).await?,
            EntityKind::Deal => visible(self.deals(), actor, &ids).await?,
            EntityKind::Note => visible(self.notes(), actor, &ids).await?,
            EntityKind::Task => visible(self.tasks(), actor, &ids).await?,
            _ => visible(self.tags(), actor, &ids).await?,
        };
        let mut found = found;
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }
}
