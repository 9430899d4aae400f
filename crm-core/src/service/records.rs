//! Generic create/read/list/update/delete/restore/purge for every record kind.

use std::future::Future;
use std::marker::PhantomData;

use uuid::Uuid;

use super::{Actor, Crm};
use crate::audit::AuditAction;
use crate::clock::Timestamp;
use crate::error::{Error, ErrorKind, FieldError, FieldIssue, Operation, Result};
use crate::id::Id;
use crate::model::{
    Company, CompanyInput, CompanyPatch, Configuration, Contact, ContactInput, ContactPatch, Deal,
    DealInput, DealPatch, Entity, EntityKind, Meta, Note, NoteInput, NotePatch, Record, Tag,
    TagInput, TagPatch, Task, TaskInput, TaskPatch,
};
use crate::permission::{Action, Decision, Ownership, Resource, Scope, decide, read_scope};
use crate::query::{Filter, ListParams, ListQuery, Page, Value};
use crate::storage::{Commit, Write};

/// A record kind the generic service manages: how to build it from input, patch it, and
/// what extra writes a save implies.
pub trait Managed: Entity {
    /// Its permission resource.
    const RESOURCE: Resource;
    /// The field holding the owner, used to scope "own only" lists.
    const OWNER_FIELD: &'static str;
    /// Create input.
    type Input: Send + 'static;
    /// Update input.
    type Patch: Send + 'static;
    /// A new record (meta not yet set) from input.
    fn build(input: Self::Input, actor: &Actor, config: &Configuration, now: Timestamp) -> Self;
    /// Applies a patch.
    fn patch(&mut self, patch: Self::Patch, now: Timestamp);
    /// Extra reads and writes implied by saving `record` (previously `before`), added to the
    /// same commit. Runs after validation.
    fn on_save(
        _crm: &Crm,
        _actor: &Actor,
        _before: Option<&Self>,
        _record: &mut Self,
        _commit: &mut Commit,
    ) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }
}

/// The service for one record kind, e.g. `crm.contacts()`.
pub struct Records<'a, E> {
    pub(crate) crm: &'a Crm,
    _kind: PhantomData<fn() -> E>,
}

impl<'a, E: Managed> Records<'a, E> {
    pub(crate) fn new(crm: &'a Crm) -> Self {
        Records {
            crm,
            _kind: PhantomData,
        }
    }

    fn ownership(actor: &Actor, record: &E) -> Ownership {
        if record.owner() == Some(actor.user_id()) {
            Ownership::Own
        } else {
            Ownership::Others
        }
    }

    /// Checks `action` on `record`, mapping the decision to an error.
    pub(crate) fn authorize(
        actor: &Actor,
        action: Action,
        record: &E,
        op: Operation,
    ) -> Result<()> {
        match decide(
            actor.role(),
            action,
            E::RESOURCE,
            Self::ownership(actor, record),
        ) {
            Decision::Allow => Ok(()),
            Decision::Forbid => Err(Error::new(ErrorKind::Forbidden).with_context(op, E::KIND)),
            Decision::Hide => Err(Error::new(ErrorKind::NotFound).with_context(op, E::KIND)),
        }
    }

    /// Whether the actor may see `record` as it is stored: live (or, with `deleted`, in the
    /// trash) and readable under the actor's role. Hidden records are indistinguishable from
    /// missing ones.
    fn admit(actor: &Actor, record: &E, deleted: bool) -> bool {
        record.meta().deleted_at.is_some() == deleted
            && decide(
                actor.role(),
                Action::Read,
                E::RESOURCE,
                Self::ownership(actor, record),
            ) == Decision::Allow
    }

    /// Loads a record visible to the actor (soft-deleted ones only if `deleted` is true).
    pub(crate) async fn load(
        &self,
        actor: &Actor,
        id: Uuid,
        deleted: bool,
        op: Operation,
    ) -> Result<E> {
        let not_found = || Error::new(ErrorKind::NotFound).with_context(op, E::KIND);
        let record = self
            .crm
            .storage()
            .get(actor.workspace_id(), E::KIND, id)
            .await
            .map_err(|e| e.with_context(op, E::KIND))?
            .and_then(E::from_record)
            .ok_or_else(not_found)?;
        if Self::admit(actor, &record, deleted) {
            Ok(record)
        } else {
            if record.meta().deleted_at.is_some() == deleted {
                // It exists and is live (or in the trash, as asked), but the permission
                // model hides it: the caller gets the same 404 as for a missing record, the
                // security log records what it is.
                self.crm.security_event(
                    self.crm
                        .event_for(actor, crate::security::SecurityEventType::AccessRefused)
                        .with("status", 404)
                        .with("hidden", true)
                        .with("entity", E::KIND.noun())
                        .with("record_id", id.to_string())
                        .with(
                            "route",
                            actor.origin().map_or("embedded", |o| o.route.as_str()),
                        ),
                );
            }
            Err(not_found())
        }
    }

    /// One live record.
    ///
    /// # Errors
    /// `NotFound` if it does not exist, is deleted, is in another workspace or hidden from
    /// the actor; storage failures.
    pub async fn get(&self, actor: &Actor, id: Id<E>) -> Result<E> {
        let record = self.load(actor, id.uuid(), false, Operation::Load).await?;
        let mut shown = self.crm.present_all(actor, vec![record], None).await?;
        shown
            .pop()
            .ok_or_else(|| Error::new(ErrorKind::NotFound).with_context(Operation::Load, E::KIND))
    }

    /// Several live records in one read, in the order asked: the batch form of
    /// [`Records::get`], through the same checks — records that are missing, deleted, in
    /// another workspace or hidden from the actor are left out (a repeated id once) — and
    /// the same masking of personal fields.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn get_many(&self, actor: &Actor, ids: &[Id<E>]) -> Result<Vec<E>> {
        let mut uuids: Vec<Uuid> = Vec::with_capacity(ids.len());
        for id in ids {
            if !uuids.contains(&id.uuid()) {
                uuids.push(id.uuid());
            }
        }
        let rows = self
            .crm
            .storage()
            .get_many(actor.workspace_id(), E::KIND, &uuids)
            .await
            .map_err(|e| e.with_context(Operation::Load, E::KIND))?;
        let rows: Vec<E> = rows
            .into_iter()
            .filter_map(E::from_record)
            .filter(|r| Self::admit(actor, r, false))
            .collect();
        self.crm.present_all(actor, rows, None).await
    }

    /// A page of records matching `params` (filters, `q`, sort, limit, cursor).
    ///
    /// # Errors
    /// `InvalidQuery`/`InvalidCursor` for bad parameters, `Forbidden` for the trash without
    /// the right to restore; storage failures.
    pub async fn list(&self, actor: &Actor, params: &ListParams) -> Result<Page<E>> {
        let mut query = params.to_query(E::KIND)?;
        if E::KIND == EntityKind::Contact {
            crate::model::consent::rewrite_query(&mut query);
        }
        if query.search.is_some() && !E::KIND.searchable() {
            return Err(Error::new(ErrorKind::InvalidQuery).with_context(Operation::List, E::KIND));
        }
        if query.deleted != crate::query::Deleted::Exclude
            && read_scope(actor.role(), E::RESOURCE) != Scope::None
            && crate::permission::scope(actor.role(), Action::Restore, E::RESOURCE) != Scope::All
        {
            return Err(Error::new(ErrorKind::Forbidden).with_context(Operation::List, E::KIND));
        }
        self.list_query(actor, &mut query).await
    }

    /// Runs a checked query, adding the actor's read scope.
    pub(crate) async fn list_query(&self, actor: &Actor, query: &mut ListQuery) -> Result<Page<E>> {
        let page = self
            .crm
            .list_scoped(actor, E::KIND, E::RESOURCE, E::OWNER_FIELD, query)
            .await?;
        let data = page.data.into_iter().filter_map(E::from_record).collect();
        Ok(Page {
            data: self
                .crm
                .present_all(actor, data, query.search.as_ref())
                .await?,
            next_cursor: page.next_cursor,
        })
    }

    /// Validation and reference checks shared by create and update; returns the commit with
    /// the reference assertions in it.
    async fn check(&self, actor: &Actor, record: &E, config: &Configuration) -> Result<Commit> {
        let mut errors: Vec<FieldError> = record.validate(config);
        let mut commit = Commit::new(actor.workspace_id());
        for r in record.references() {
            let target = self
                .crm
                .storage()
                .get(actor.workspace_id(), r.kind, r.id)
                .await?;
            if target.is_none_or(|t| t.is_deleted()) {
                if !errors
                    .iter()
                    .any(|e| e.field == r.field && e.issue == FieldIssue::UnknownReference)
                {
                    errors.push(FieldError::new(r.field, FieldIssue::UnknownReference));
                }
            } else {
                commit.writes.push(Write::Exists {
                    kind: r.kind,
                    id: r.id,
                    field: r.field,
                });
            }
        }
        if errors.is_empty() {
            Ok(commit)
        } else {
            Err(Error::validation(errors))
        }
    }

    /// Creates a record.
    ///
    /// # Errors
    /// `Validation` listing every failing field (including unknown references), `Forbidden`,
    /// `Duplicate` for taken unique values; storage failures. Nothing is written on error.
    pub async fn create(&self, actor: &Actor, input: E::Input) -> Result<E> {
        let config = self.crm.load_config(actor.workspace_id()).await?;
        let now = self.crm.now();
        let mut record = E::build(input, actor, &config, now);
        record.normalize();
        record.set_meta(Meta {
            id: record.meta().id,
            workspace_id: actor.workspace_id(),
            created_at: now,
            updated_at: now,
            version: 1,
            deleted_at: None,
        });
        // Creating is never hidden: a refusal is a plain 403.
        if Self::authorize(actor, Action::Create, &record, Operation::Save).is_err() {
            return Err(Error::new(ErrorKind::Forbidden).with_context(Operation::Save, E::KIND));
        }
        let base = self
            .check(actor, &record, &config)
            .await
            .map_err(|e| e.with_context(Operation::Save, E::KIND))?;
        self.crm
            .retrying(|| {
                let mut commit = base.clone();
                let mut record = record.clone();
                async move {
                    E::on_save(self.crm, actor, None, &mut record, &mut commit).await?;
                    let after = record.clone().into_record();
                    commit.audit.push(self.crm.audit_entry(
                        Some(actor),
                        AuditAction::Create,
                        None,
                        Some(&after),
                    ));
                    commit.writes.insert(0, Write::Insert(after));
                    self.crm.commit(commit).await?;
                    Ok(record)
                }
            })
            .await
            .map_err(|e| e.with_context(Operation::Save, E::KIND))
    }

    /// Updates a record from the version the caller read.
    ///
    /// # Errors
    /// `VersionConflict` if the record changed since `expected_version`, `NotFound`,
    /// `Forbidden`, `Validation`, `Duplicate`; storage failures. Nothing is written on error.
    pub async fn update(
        &self,
        actor: &Actor,
        id: Id<E>,
        expected_version: u64,
        patch: E::Patch,
    ) -> Result<E> {
        let current = self.load(actor, id.uuid(), false, Operation::Save).await?;
        Self::authorize(actor, Action::Update, &current, Operation::Save)?;
        if current.meta().version != expected_version {
            return Err(
                Error::new(ErrorKind::VersionConflict).with_context(Operation::Save, E::KIND)
            );
        }
        let config = self.crm.load_config(actor.workspace_id()).await?;
        let now = self.crm.now();
        let mut record = current.clone();
        record.patch(patch, now);
        record.normalize();
        // The new state must be within the actor's rights too (e.g. a task handed to someone
        // else by a sales user).
        Self::authorize(actor, Action::Update, &record, Operation::Save)
            .map_err(|_| Error::new(ErrorKind::Forbidden).with_context(Operation::Save, E::KIND))?;
        let mut commit = self
            .check(actor, &record, &config)
            .await
            .map_err(|e| e.with_context(Operation::Save, E::KIND))?;
        E::on_save(self.crm, actor, Some(&current), &mut record, &mut commit)
            .await
            .map_err(|e| e.with_context(Operation::Save, E::KIND))?;
        self.commit_update(actor, current, record, commit, now)
            .await
    }

    /// [`Records::commit_change`] of an update (a save).
    pub(crate) async fn commit_update(
        &self,
        actor: &Actor,
        current: E,
        record: E,
        commit: Commit,
        now: Timestamp,
    ) -> Result<E> {
        self.commit_change(
            actor,
            current,
            record,
            AuditAction::Update,
            commit,
            now,
            Operation::Save,
        )
        .await
    }

    /// Writes `record` over `current` (version + 1) with its audit entry, unless nothing
    /// changed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn commit_change(
        &self,
        actor: &Actor,
        current: E,
        mut record: E,
        action: AuditAction,
        mut commit: Commit,
        now: Timestamp,
        op: Operation,
    ) -> Result<E> {
        let before = current.clone().into_record();
        if crate::audit::diff(Some(&before), Some(&record.clone().into_record())).is_empty()
            && commit
                .writes
                .iter()
                .all(|w| matches!(w, Write::Exists { .. }))
        {
            return Ok(current);
        }
        let mut meta = record.meta();
        meta.version = current.meta().version + 1;
        meta.updated_at = now;
        record.set_meta(meta);
        let after = record.clone().into_record();
        commit.audit.push(
            self.crm
                .audit_entry(Some(actor), action, Some(&before), Some(&after)),
        );
        commit.writes.insert(
            0,
            Write::Update {
                record: after,
                expected_version: current.meta().version,
            },
        );
        self.crm
            .commit(commit)
            .await
            .map_err(|e| e.with_context(op, E::KIND))?;
        Ok(record)
    }

    /// Soft deletes a record (it goes to the trash; admins can restore it).
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`; storage failures.
    pub async fn delete(&self, actor: &Actor, id: Id<E>) -> Result<()> {
        self.set_deleted(actor, id, true).await.map(|_| ())
    }

    /// Restores a soft-deleted record (admins).
    ///
    /// # Errors
    /// `InvalidState` if it is not in the trash but live (and visible to the actor), `NotFound`
    /// if it does not exist at all (for the actor), `Forbidden`, `Duplicate` if its unique
    /// value was taken meanwhile; storage failures.
    pub async fn restore(&self, actor: &Actor, id: Id<E>) -> Result<E> {
        self.set_deleted(actor, id, false).await
    }

    /// Moves a record into (`deleted`) or out of the trash, with its audit entry.
    async fn set_deleted(&self, actor: &Actor, id: Id<E>, deleted: bool) -> Result<E> {
        let (op, action, audit) = if deleted {
            (Operation::Delete, Action::Delete, AuditAction::Delete)
        } else {
            (Operation::Restore, Action::Restore, AuditAction::Restore)
        };
        self.crm
            .retrying(|| async {
                // Deleting needs a live record, restoring one in the trash.
                let current = match self.load(actor, id.uuid(), !deleted, op).await {
                    Err(e) if !deleted => {
                        return Err(self.outside_trash(actor, id, op, action, e).await);
                    }
                    loaded => loaded?,
                };
                Self::authorize(actor, action, &current, op)?;
                let now = self.crm.now();
                let mut record = current.clone();
                let mut meta = record.meta();
                meta.deleted_at = deleted.then_some(now);
                record.set_meta(meta);
                let commit = Commit::new(actor.workspace_id());
                self.commit_change(actor, current, record, audit, commit, now, op)
                    .await
            })
            .await
    }

    /// The error of a trash operation (restore, purge) whose record `load` did not find in
    /// the trash (`missing`): `InvalidState` when the record is live and the actor may see
    /// it — it exists, it is only not in the trash — after the permission check of `action`
    /// (a role without the right still gets `Forbidden`); otherwise `missing` as it was.
    async fn outside_trash(
        &self,
        actor: &Actor,
        id: Id<E>,
        op: Operation,
        action: Action,
        missing: Error,
    ) -> Error {
        if missing.kind() != ErrorKind::NotFound {
            return missing;
        }
        match self.load(actor, id.uuid(), false, op).await {
            Ok(live) => match Self::authorize(actor, action, &live, op) {
                Err(e) => e,
                Ok(()) => Error::new(ErrorKind::InvalidState).with_context(op, E::KIND),
            },
            Err(_) => missing,
        }
    }

    /// Permanently deletes a soft-deleted record (admins), with what hangs on it: notes of a
    /// contact or deal are purged too, and references from other records are cleared.
    ///
    /// # Errors
    /// `InvalidState` if it is not in the trash but live (and visible to the actor), `NotFound`
    /// if it does not exist at all (for the actor), `Forbidden`; storage failures.
    pub async fn purge(&self, actor: &Actor, id: Id<E>) -> Result<()> {
        self.crm
            .retrying(|| async {
                let current = match self.load(actor, id.uuid(), true, Operation::Delete).await {
                    Err(e) => {
                        return Err(self
                            .outside_trash(actor, id, Operation::Delete, Action::Purge, e)
                            .await);
                    }
                    Ok(current) => current,
                };
                Self::authorize(actor, Action::Purge, &current, Operation::Delete)?;
                let before = current.clone().into_record();
                let mut commit = Commit::new(actor.workspace_id());
                commit.writes.push(Write::Delete {
                    kind: E::KIND,
                    id: id.uuid(),
                    expected_version: current.meta().version,
                });
                commit.audit.push(self.crm.audit_entry(
                    Some(actor),
                    AuditAction::Purge,
                    Some(&before),
                    None,
                ));
                self.crm
                    .detach_referrers(actor, E::KIND, id.uuid(), &mut commit, |commit, note| {
                        commit.audit.push(self.crm.audit_entry(
                            Some(actor),
                            AuditAction::Purge,
                            Some(note),
                            None,
                        ));
                    })
                    .await?;
                self.crm
                    .commit(commit)
                    .await
                    .map_err(|e| e.with_context(Operation::Delete, E::KIND))
            })
            .await
    }
}

/// Which (kind, field) pairs point at records of `kind`.
pub(crate) fn referrers(kind: EntityKind) -> &'static [(EntityKind, &'static str)] {
    match kind {
        EntityKind::Company => &[
            (EntityKind::Contact, "company_id"),
            (EntityKind::Deal, "company_id"),
            (EntityKind::Task, "company_id"),
        ],
        EntityKind::Contact => &[
            (EntityKind::Note, "contact_id"),
            (EntityKind::Task, "contact_id"),
            (EntityKind::Deal, "contact_ids"),
        ],
        EntityKind::Deal => &[(EntityKind::Note, "deal_id"), (EntityKind::Task, "deal_id")],
        EntityKind::Tag => &[(EntityKind::Contact, "tags")],
        _ => &[],
    }
}

/// Replaces (or with `None` removes) a reference to `from` in `field` of a record.
pub(crate) fn unlink(mut record: Record, field: &str, from: Uuid, to: Option<Uuid>) -> Record {
    fn swap<T>(slot: &mut Option<Id<T>>, from: Uuid, to: Option<Uuid>) {
        if slot.is_some_and(|s| s.uuid() == from) {
            *slot = to.map(Id::from_uuid);
        }
    }
    fn swap_list<T>(list: &mut Vec<Id<T>>, from: Uuid, to: Option<Uuid>) {
        let mut out: Vec<Id<T>> = Vec::with_capacity(list.len());
        for id in list.drain(..) {
            let id = if id.uuid() == from {
                match to {
                    Some(t) => Id::from_uuid(t),
                    None => continue,
                }
            } else {
                id
            };
            if !out.contains(&id) {
                out.push(id);
            }
        }
        *list = out;
    }
    match (&mut record, field) {
        (Record::Contact(c), "company_id") => {
            swap(&mut c.company_id, from, to);
            if c.company_id.is_none() {
                c.company_name = None;
            }
        }
        (Record::Contact(c), "tags") => swap_list(&mut c.tags, from, to),
        (Record::Deal(d), "company_id") => swap(&mut d.company_id, from, to),
        (Record::Deal(d), "contact_ids") => swap_list(&mut d.contact_ids, from, to),
        (Record::Task(t), "company_id") => swap(&mut t.company_id, from, to),
        (Record::Task(t), "contact_id") => swap(&mut t.contact_id, from, to),
        (Record::Task(t), "deal_id") => swap(&mut t.deal_id, from, to),
        (Record::Note(n), "contact_id") => swap(&mut n.contact_id, from, to),
        (Record::Note(n), "deal_id") => swap(&mut n.deal_id, from, to),
        _ => {}
    }
    record
}

impl Crm {
    /// Runs a checked query restricted to the actor's read scope, one row more than asked
    /// to learn whether a next page exists.
    pub(crate) async fn list_scoped(
        &self,
        actor: &Actor,
        kind: EntityKind,
        resource: Resource,
        owner_field: &str,
        query: &mut ListQuery,
    ) -> Result<Page<Record>> {
        match read_scope(actor.role(), resource) {
            Scope::All => {}
            Scope::Own => query
                .filters
                .push(Filter::eq(owner_field, Value::Id(actor.user_id().uuid()))),
            Scope::None => {
                return Err(Error::new(ErrorKind::Forbidden).with_context(Operation::List, kind));
            }
        }
        let limit = query.limit;
        query.limit = limit + 1;
        let rows = self.storage().list(actor.workspace_id(), kind, query).await;
        query.limit = limit;
        let mut data = rows.map_err(|e| e.with_context(Operation::List, kind))?;
        let next_cursor = if data.len() > limit {
            data.truncate(limit);
            data.last()
                .map(|last| query.sort.cursor_after(last).encode())
        } else {
            None
        };
        Ok(Page { data, next_cursor })
    }

    /// Every record of `kind` (soft-deleted included) matching `filter`, read in pages
    /// without permission scoping (internal bookkeeping).
    pub(crate) async fn all_matching(
        &self,
        actor: &Actor,
        kind: EntityKind,
        filter: Filter,
    ) -> Result<Vec<Record>> {
        self.all_matching_in(actor.workspace_id(), kind, filter)
            .await
    }

    /// The records of type `E` (soft-deleted included) whose `field` is `value`: see
    /// [`Crm::all_matching`].
    pub(crate) async fn all_where<E: Entity>(
        &self,
        workspace: crate::id::WorkspaceId,
        field: &str,
        value: Value,
    ) -> Result<Vec<E>> {
        Ok(self
            .all_matching_in(workspace, E::KIND, Filter::eq(field, value))
            .await?
            .into_iter()
            .filter_map(E::from_record)
            .collect())
    }

    /// [`Crm::all_matching`] by workspace id.
    pub(crate) async fn all_matching_in(
        &self,
        workspace: crate::id::WorkspaceId,
        kind: EntityKind,
        filter: Filter,
    ) -> Result<Vec<Record>> {
        let mut query = ListQuery::new(crate::query::Sort::asc("created_at"), 500);
        query.filters.push(filter);
        query.deleted = crate::query::Deleted::Include;
        self.list_all(workspace, kind, query).await
    }

    /// Every record `query` finds, read `query.limit` at a time, each page resuming after
    /// the last row of the one before.
    pub(crate) async fn list_all(
        &self,
        workspace: crate::id::WorkspaceId,
        kind: EntityKind,
        mut query: ListQuery,
    ) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        loop {
            let rows = self.storage().list(workspace, kind, &query).await?;
            let full = rows.len() == query.limit;
            if let Some(last) = rows.last() {
                query.after = Some(query.sort.cursor_after(last));
            }
            out.extend(rows);
            if !full {
                return Ok(out);
            }
        }
    }

    /// Adds to `commit` what removing the record `id` of `kind` implies for the records that
    /// refer to it ([`referrers`]): a referring note is deleted (and handed to
    /// `deleted_note`), any other referrer is updated to no longer name it.
    pub(crate) async fn detach_referrers(
        &self,
        actor: &Actor,
        kind: EntityKind,
        id: Uuid,
        commit: &mut Commit,
        mut deleted_note: impl FnMut(&mut Commit, &Record) + Send,
    ) -> Result<()> {
        for &(referrer, field) in referrers(kind) {
            let rows = self
                .all_matching(actor, referrer, Filter::eq(field, Value::Id(id)))
                .await?;
            for row in rows {
                if referrer == EntityKind::Note {
                    commit.writes.push(Write::Delete {
                        kind: referrer,
                        id: row.id(),
                        expected_version: row.version(),
                    });
                    deleted_note(commit, &row);
                } else {
                    let changed = unlink(row.clone(), field, id, None);
                    self.push_update(commit, actor, &row, changed, AuditAction::Update);
                }
            }
        }
        Ok(())
    }

    /// Adds a version-checked update of `before` to `after` (version + 1) with its audit entry.
    pub(crate) fn push_update(
        &self,
        commit: &mut Commit,
        actor: &Actor,
        before: &Record,
        mut after: Record,
        action: AuditAction,
    ) {
        let mut meta = after.meta();
        meta.version = before.version() + 1;
        meta.updated_at = self.now();
        after.set_meta(meta);
        commit
            .audit
            .push(self.audit_entry(Some(actor), action, Some(before), Some(&after)));
        commit.writes.push(Write::Update {
            record: after,
            expected_version: before.version(),
        });
    }
}

impl Managed for Company {
    const RESOURCE: Resource = Resource::Company;
    const OWNER_FIELD: &'static str = "sales_id";
    type Input = CompanyInput;
    type Patch = CompanyPatch;
    fn build(mut input: CompanyInput, actor: &Actor, _: &Configuration, _: Timestamp) -> Self {
        input.sales_id = input.sales_id.or(Some(actor.user_id()));
        Company::from_input(input)
    }
    fn patch(&mut self, patch: CompanyPatch, _: Timestamp) {
        self.apply(patch);
    }
    async fn on_save(
        crm: &Crm,
        actor: &Actor,
        before: Option<&Self>,
        record: &mut Self,
        commit: &mut Commit,
    ) -> Result<()> {
        // Contacts carry their company's name for search: follow a rename.
        let Some(before) = before else { return Ok(()) };
        if before.name == record.name {
            return Ok(());
        }
        let rows = crm
            .all_matching(
                actor,
                EntityKind::Contact,
                Filter::eq("company_id", Value::Id(record.id.uuid())),
            )
            .await?;
        for row in rows {
            if let Record::Contact(mut c) = row.clone() {
                c.company_name = Some(record.name.clone());
                // Derived data: same version, so nobody's pending edit of the contact conflicts.
                commit.writes.push(Write::Update {
                    record: Record::Contact(c),
                    expected_version: row.version(),
                });
            }
        }
        Ok(())
    }
}

impl Managed for Tag {
    const RESOURCE: Resource = Resource::Tag;
    const OWNER_FIELD: &'static str = "sales_id";
    type Input = TagInput;
    type Patch = TagPatch;
    fn build(input: TagInput, _: &Actor, _: &Configuration, _: Timestamp) -> Self {
        Tag::from_input(input)
    }
    fn patch(&mut self, patch: TagPatch, _: Timestamp) {
        self.apply(patch);
    }
}

impl Managed for Task {
    const RESOURCE: Resource = Resource::Task;
    const OWNER_FIELD: &'static str = "owner_id";
    type Input = TaskInput;
    type Patch = TaskPatch;
    fn build(input: TaskInput, actor: &Actor, _: &Configuration, _: Timestamp) -> Self {
        Task::from_input(input, actor.user_id())
    }
    fn patch(&mut self, patch: TaskPatch, now: Timestamp) {
        self.apply_at(patch, now);
    }
}

impl Records<'_, Task> {
    /// Marks a task done or not done (stamps `done_date`).
    ///
    /// # Errors
    /// As [`Records::update`].
    pub async fn complete(
        &self,
        actor: &Actor,
        id: Id<Task>,
        expected_version: u64,
        done: bool,
    ) -> Result<Task> {
        self.update(
            actor,
            id,
            expected_version,
            TaskPatch {
                completed: Some(done),
                ..Default::default()
            },
        )
        .await
    }
}

impl Managed for Note {
    const RESOURCE: Resource = Resource::Note;
    const OWNER_FIELD: &'static str = "sales_id";
    type Input = NoteInput;
    type Patch = NotePatch;
    fn build(input: NoteInput, actor: &Actor, _: &Configuration, now: Timestamp) -> Self {
        Note::from_input(input, now, actor.user_id())
    }
    fn patch(&mut self, patch: NotePatch, _: Timestamp) {
        self.apply(patch);
    }
    async fn on_save(
        crm: &Crm,
        actor: &Actor,
        before: Option<&Self>,
        record: &mut Self,
        commit: &mut Commit,
    ) -> Result<()> {
        // A new contact note moves the contact's last_seen forward (and sets its status).
        let (None, Some(contact_id)) = (before, record.contact_id) else {
            return Ok(());
        };
        let Some(row) = crm
            .storage()
            .get(actor.workspace_id(), EntityKind::Contact, contact_id.uuid())
            .await?
        else {
            return Ok(());
        };
        let Record::Contact(mut contact) = row.clone() else {
            return Ok(());
        };
        contact.last_seen = contact.last_seen.max(crm.now());
        if record.status.is_some() {
            contact.status.clone_from(&record.status);
        }
        commit.writes.retain(|w| {
            !matches!(
                w,
                Write::Exists {
                    kind: EntityKind::Contact,
                    ..
                }
            )
        });
        crm.push_update(
            commit,
            actor,
            &row,
            Record::Contact(contact),
            crate::audit::AuditAction::Update,
        );
        Ok(())
    }
}

impl Managed for Contact {
    const RESOURCE: Resource = Resource::Contact;
    const OWNER_FIELD: &'static str = "sales_id";
    type Input = ContactInput;
    type Patch = ContactPatch;
    fn build(mut input: ContactInput, actor: &Actor, _: &Configuration, now: Timestamp) -> Self {
        input.sales_id = input.sales_id.or(Some(actor.user_id()));
        Contact::from_input(input, now)
    }
    fn patch(&mut self, patch: ContactPatch, _: Timestamp) {
        self.apply(patch);
    }
    async fn on_save(
        crm: &Crm,
        actor: &Actor,
        before: Option<&Self>,
        record: &mut Self,
        _commit: &mut Commit,
    ) -> Result<()> {
        crate::model::consent::follow_has_newsletter(before, record, crm.now());
        if before.is_some_and(|b| {
            b.company_id == record.company_id
                && b.company_name.is_some() == record.company_id.is_some()
        }) {
            return Ok(());
        }
        record.company_name = match record.company_id {
            Some(c) => crm
                .storage()
                .get(actor.workspace_id(), EntityKind::Company, c.uuid())
                .await?
                .map(|r| r.label()),
            None => None,
        };
        Ok(())
    }
}

impl Managed for Deal {
    const RESOURCE: Resource = Resource::Deal;
    const OWNER_FIELD: &'static str = "sales_id";
    type Input = DealInput;
    type Patch = DealPatch;
    fn build(mut input: DealInput, actor: &Actor, config: &Configuration, _: Timestamp) -> Self {
        input.sales_id = input.sales_id.or(Some(actor.user_id()));
        let first = config
            .deal_stages
            .first()
            .map(|s| s.value.clone())
            .unwrap_or_default();
        Deal::from_input(input, first)
    }
    fn patch(&mut self, patch: DealPatch, _: Timestamp) {
        self.apply(patch);
    }
    async fn on_save(
        crm: &Crm,
        actor: &Actor,
        before: Option<&Self>,
        record: &mut Self,
        _commit: &mut Commit,
    ) -> Result<()> {
        // New deals, and deals changing stage through an update, go to the end of the stage.
        if before.is_some_and(|b| b.stage == record.stage) {
            return Ok(());
        }
        record.index = super::deals::end_of_stage(crm, actor, &record.stage).await?;
        Ok(())
    }
}
