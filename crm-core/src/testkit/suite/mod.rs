//! The conformance suite by theme, and the test world its tests build on.
//!
//! Every test is a `pub async fn name(f: Fixture)` that takes a fresh [`Fixture`] and
//! panics on failure; [`crate::conformance_tests!`] lists each one (a test of crm-core
//! checks that it lists every such function in `src/testkit/`).
//!
//! | module | what it checks |
//! |---|---|
//! | [`records`] | bootstrap, create/read/update/delete of every kind, validation, unknown and foreign ids, soft delete, restore and purge |
//! | [`versions`] | optimistic concurrency: stale versions, racing updates |
//! | [`permissions`] | the role matrix, own-only tasks, workspace isolation |
//! | [`audit`] | the audit trail and the activity feed |
//! | [`lists`] | search, filters, sorts, keyset paging (also under inserts), bad queries |
//! | [`workflows`] | merge, deal archive and move, notes and last seen, task completion, unique tags |
//! | [`team`] | users, roles, the last admin, disabling, workspace configuration |
//!
//! The set-up lives here: [`world`] builds a workspace with a user of each role, and
//! [`World::create`] with the input builders ([`contact`], [`company`], [`deal`], [`task`],
//! [`note`], [`tag`], [`user`], [`contact_note`], [`contact_task`]) makes the records a test needs in one line each;
//! [`World::update`] changes one (with [`retitle`], say); [`World::create_error`] and
//! [`World::update_error`] give the kind of error a refused one fails with:
//!
//! ```
//! # use std::sync::Arc;
//! use crm_core::model::ContactInput;
//! use crm_core::testkit::suite::{company, contact, world};
//! use crm_core::testkit::{Fixture, MemoryStore};
//!
//! # crm_core::testkit::run(async {
//! let f = Fixture::new(Arc::new(MemoryStore::new()));
//! let w = world(&f).await;
//! let co = w.create(&w.sales, company("Globex")).await;
//! let input = ContactInput { company_id: Some(co.id), ..contact("Hank", "Scorpio") };
//! let hank = w.create(&w.sales, input).await;
//! assert_eq!(hank.company_name.as_deref(), Some("Globex"));
//! # });
//! ```

#![allow(missing_docs, clippy::missing_panics_doc)]

pub mod audit;
pub mod lists;
pub mod permissions;
pub mod records;
pub mod team;
pub mod versions;
pub mod workflows;

use std::sync::Arc;

use super::Fixture;
use crate::audit::{AuditEntry, AuditQuery};
use crate::clock::{ManualClock, Timestamp};
use crate::error::{ErrorKind, Result};
use crate::id::{CompanyId, ContactId, DealId, Id, UserId};
use crate::model::*;
use crate::query::ListParams;
use crate::service::{Managed, Records};
use crate::{Actor, Crm, CrmConfig};

/// A workspace with one user of each role.
pub struct World {
    pub crm: Crm,
    /// A second instance on the fixture's peer storage (the same data).
    pub peer: Crm,
    pub clock: ManualClock,
    pub admin: Actor,
    pub manager: Actor,
    pub sales: Actor,
    pub sales2: Actor,
    pub reader: Actor,
}

/// The instant every test world starts at (a Monday morning).
pub fn start() -> ManualClock {
    ManualClock::new(Timestamp::parse_rfc3339("2026-01-05T09:00:00Z").unwrap())
}

/// Builds a world ("Acme") on the fixture's storage, on a manual clock at [`start`].
pub async fn world(f: &Fixture) -> World {
    let clock = start();
    let crm = Crm::with_clock(
        f.storage.clone(),
        CrmConfig::default(),
        Arc::new(clock.clone()),
    );
    let peer = Crm::with_clock(f.peer(), CrmConfig::default(), Arc::new(clock.clone()));
    World::on(crm, peer, clock, "Acme").await
}

/// Builds a world named `name` on any storage (e.g. a fault-injecting wrapper).
pub async fn world_on_storage(storage: Arc<dyn crate::Storage>, name: &str) -> World {
    let clock = start();
    let crm = Crm::with_clock(storage, CrmConfig::default(), Arc::new(clock.clone()));
    World::on(crm.clone(), crm, clock, name).await
}

/// Builds a world ("Acme") on the fixture's storage with engine settings of the test's own.
pub async fn world_with(f: &Fixture, config: CrmConfig) -> World {
    let clock = start();
    let crm = Crm::with_clock(f.storage.clone(), config.clone(), Arc::new(clock.clone()));
    let peer = Crm::with_clock(f.peer(), config, Arc::new(clock.clone()));
    World::on(crm, peer, clock, "Acme").await
}

/// Input of a record kind the world can create: ties each `...Input` to its record type.
pub trait NewRecord: Send + 'static {
    /// The record the input creates.
    type Record: Managed<Input = Self>;
}

macro_rules! new_records {
    ($($input:ty => $record:ty),* $(,)?) => {
        $(impl NewRecord for $input {
            type Record = $record;
        })*
    };
}

new_records!(
    CompanyInput => Company,
    ContactInput => Contact,
    DealInput => Deal,
    NoteInput => Note,
    TaskInput => Task,
    TagInput => Tag,
);

impl World {
    /// A workspace named `name` with its admin (`admin@<name>.test`), a manager, two sales
    /// users and a read-only user.
    async fn on(crm: Crm, peer: Crm, clock: ManualClock, name: &str) -> World {
        let d = name.to_lowercase();
        let (ws, admin) = crm
            .bootstrap(name, user(&format!("admin@{d}.test"), Role::Admin))
            .await
            .unwrap();
        let admin = crm.actor(ws.id, admin.id).await.unwrap();
        let mk = |email: String, role| {
            let crm = crm.clone();
            let admin = admin.clone();
            async move {
                let u = crm
                    .users()
                    .create(&admin, user(&email, role))
                    .await
                    .unwrap();
                crm.actor(admin.workspace_id(), u.id).await.unwrap()
            }
        };
        World {
            manager: mk(format!("manager@{d}.test"), Role::Manager).await,
            sales: mk(format!("sales@{d}.test"), Role::Sales).await,
            sales2: mk(format!("sales2@{d}.test"), Role::Sales).await,
            reader: mk(format!("reader@{d}.test"), Role::ReadOnly).await,
            crm,
            peer,
            clock,
            admin,
        }
    }

    /// Another workspace on the same storage, instances and clock, with users of its own.
    pub async fn other(&self, name: &str) -> World {
        World::on(
            self.crm.clone(),
            self.peer.clone(),
            self.clock.clone(),
            name,
        )
        .await
    }

    /// Creates a record as `actor`; panics if that fails (tests of failures call the
    /// service themselves).
    pub async fn create<I: NewRecord>(&self, actor: &Actor, input: I) -> I::Record {
        match Records::<I::Record>::new(&self.crm)
            .create(actor, input)
            .await
        {
            Ok(record) => record,
            Err(e) => panic!(
                "creating a {} as {:?}: {e:?}",
                <I::Record as Entity>::KIND,
                actor.role()
            ),
        }
    }

    /// The record `id` as `actor` reads it; panics if that fails.
    pub async fn get<E: Managed>(&self, actor: &Actor, id: Id<E>) -> E {
        match Records::<E>::new(&self.crm).get(actor, id).await {
            Ok(record) => record,
            Err(e) => panic!("reading {} {id} as {:?}: {e:?}", E::KIND, actor.role()),
        }
    }

    /// Applies `patch` to the record `id` at `version` as `actor`; panics if that fails.
    pub async fn update<E: Managed>(
        &self,
        actor: &Actor,
        id: Id<E>,
        version: u64,
        patch: E::Patch,
    ) -> E {
        match Records::<E>::new(&self.crm)
            .update(actor, id, version, patch)
            .await
        {
            Ok(record) => record,
            Err(e) => panic!("updating {} {id} as {:?}: {e:?}", E::KIND, actor.role()),
        }
    }

    /// The first page of the records `params` selects for `actor`; panics if listing fails.
    pub async fn list<E: Managed>(&self, actor: &Actor, params: &ListParams) -> Vec<E> {
        match Records::<E>::new(&self.crm).list(actor, params).await {
            Ok(page) => page.data,
            Err(e) => panic!("listing {} as {:?}: {e:?}", E::KIND, actor.role()),
        }
    }

    /// The kind of error creating `input` as `actor` fails with; panics if it succeeds.
    pub async fn create_error<I: NewRecord>(&self, actor: &Actor, input: I) -> ErrorKind {
        kind(
            Records::<I::Record>::new(&self.crm)
                .create(actor, input)
                .await,
        )
    }

    /// The kind of error applying `patch` to the record `id` at `version` as `actor` fails
    /// with; panics if it succeeds.
    pub async fn update_error<E: Managed>(
        &self,
        actor: &Actor,
        id: Id<E>,
        version: u64,
        patch: E::Patch,
    ) -> ErrorKind {
        kind(
            Records::<E>::new(&self.crm)
                .update(actor, id, version, patch)
                .await,
        )
    }

    /// Gives `who` the role `role` (as the admin); the user as it is now, and its next actor.
    pub async fn set_role(&self, who: &Actor, role: Role) -> (User, Actor) {
        let users = self.crm.users();
        let user = users.get(&self.admin, who.user_id()).await.unwrap();
        let user = users
            .set_role(&self.admin, user.id, user.version, role)
            .await
            .unwrap();
        let actor = self.crm.actor(user.workspace_id, user.id).await.unwrap();
        (user, actor)
    }

    /// The audit entries `query` selects, read as the admin; panics if that fails.
    pub async fn audit(&self, query: AuditQuery) -> Vec<AuditEntry> {
        match self.crm.audit().list(&self.admin, &query).await {
            Ok(entries) => entries,
            Err(e) => panic!("reading the audit log ({query:?}): {e:?}"),
        }
    }

    /// Merges `loser` into `winner` as the admin; the merged contact. Panics if that fails.
    pub async fn merge(&self, winner: ContactId, loser: ContactId) -> Contact {
        match self.crm.contacts().merge(&self.admin, winner, loser).await {
            Ok(merged) => merged,
            Err(e) => panic!("merging {loser} into {winner}: {e:?}"),
        }
    }

    /// How many audit entries the workspace has.
    pub async fn audit_count(&self) -> usize {
        let mut n = 0;
        let mut before = None;
        loop {
            let q = AuditQuery {
                before,
                limit: Some(100),
                ..Default::default()
            };
            let page = self.crm.audit().list(&self.admin, &q).await.unwrap();
            n += page.len();
            match page.last() {
                Some(last) if page.len() == 100 => before = Some(last.id),
                _ => return n,
            }
        }
    }

    /// Every contact `params` selects for `actor`, page after page.
    pub async fn all_contacts(&self, actor: &Actor, params: ListParams) -> Vec<Contact> {
        let mut out = Vec::new();
        let mut params = params;
        loop {
            let page = self.crm.contacts().list(actor, &params).await.unwrap();
            out.extend(page.data);
            match page.next_cursor {
                Some(c) => params = params.cursor(Some(c)),
                None => return out,
            }
        }
    }
}

/// A user named after its e-mail's local part, last name "Test".
pub fn user(email: &str, role: Role) -> UserInput {
    UserInput {
        email: email.into(),
        first_name: email.split('@').next().unwrap_or("").into(),
        last_name: "Test".into(),
        role: Some(role),
        avatar: None,
    }
}

/// A contact with just a name.
pub fn contact(first: &str, last: &str) -> ContactInput {
    ContactInput {
        first_name: first.into(),
        last_name: last.into(),
        ..Default::default()
    }
}

/// Input builders that set one text field and leave the rest to the defaults.
macro_rules! one_field_inputs {
    ($($(#[$doc:meta])* $builder:ident($field:ident) -> $input:ident;)*) => {$(
        $(#[$doc])*
        pub fn $builder($field: impl Into<String>) -> $input {
            $input {
                $field: $field.into(),
                ..Default::default()
            }
        }
    )*};
}

one_field_inputs! {
    /// A company with just a name.
    company(name) -> CompanyInput;
    /// A deal with just a name (first stage, amount 0).
    deal(name) -> DealInput;
    /// A task with just a text (owned by its creator).
    task(text) -> TaskInput;
    /// A note with just a text; a valid note also names its contact or deal.
    note(text) -> NoteInput;
}

/// Input builders that set one field more on another builder's input.
macro_rules! linked_inputs {
    ($(
        $(#[$doc:meta])*
        $builder:ident($($arg:ident: $arg_ty:ty),*) -> $input:ident {
            $field:ident: $value:expr, ..$base:ident($($base_arg:ident),*)
        }
    )*) => {$(
        $(#[$doc])*
        pub fn $builder($($arg: $arg_ty),*) -> $input {
            $input {
                $field: $value,
                ..$base($($base_arg),*)
            }
        }
    )*};
}

linked_inputs! {
    /// A note about a contact.
    contact_note(contact: ContactId, text: impl Into<String>) -> NoteInput {
        contact_id: Some(contact), ..note(text)
    }
    /// A note about a deal.
    deal_note(deal: DealId, text: impl Into<String>) -> NoteInput {
        deal_id: Some(deal), ..note(text)
    }
    /// A task about a contact (owned by its creator).
    contact_task(contact: ContactId, text: impl Into<String>) -> TaskInput {
        contact_id: Some(contact), ..task(text)
    }
    /// A task about a deal (owned by its creator).
    deal_task(deal: DealId, text: impl Into<String>) -> TaskInput {
        deal_id: Some(deal), ..task(text)
    }
    /// A task given to `owner`.
    task_for(owner: UserId, text: impl Into<String>) -> TaskInput {
        owner_id: Some(owner), ..task(text)
    }
    /// A contact working for `company`.
    employee(company: CompanyId, first: &str, last: &str) -> ContactInput {
        company_id: Some(company), ..contact(first, last)
    }
    /// A deal with `company`.
    company_deal(company: CompanyId, name: impl Into<String>) -> DealInput {
        company_id: Some(company), ..deal(name)
    }
    /// A deal with these contacts.
    contacts_deal(contacts: Vec<ContactId>, name: impl Into<String>) -> DealInput {
        contact_ids: contacts, ..deal(name)
    }
    /// A tag of `color`.
    colored_tag(name: impl Into<String>, color: &str) -> TagInput {
        color: Some(color.into()), ..tag(name)
    }
    /// A contact with one work e-mail address.
    emailed_contact(first: &str, last: &str, email: &str) -> ContactInput {
        emails: vec![EmailEntry {
            email: email.into(),
            kind: EmailKind::Work,
        }],
        ..contact(first, last)
    }
}

/// Patch builders that change one field and leave the others as they are.
macro_rules! one_field_patches {
    ($(
        $(#[$doc:meta])*
        $builder:ident($arg:ident: $arg_ty:ty) -> $patch:ident { $field:ident: $value:expr }
    )*) => {$(
        $(#[$doc])*
        pub fn $builder($arg: $arg_ty) -> $patch {
            $patch {
                $field: $value,
                ..Default::default()
            }
        }
    )*};
}

one_field_patches! {
    /// A contact patch that changes the title only.
    retitle(title: impl Into<String>) -> ContactPatch { title: Some(Some(title.into())) }
    /// A company patch that changes the name only.
    rename_company(name: impl Into<String>) -> CompanyPatch { name: Some(name.into()) }
    /// A company patch that changes the city only.
    relocate(city: impl Into<String>) -> CompanyPatch { city: Some(Some(city.into())) }
    /// A user patch that changes the first name only.
    first_name(name: impl Into<String>) -> UserPatch { first_name: Some(name.into()) }
    /// A user patch that changes the last name only.
    last_name(name: impl Into<String>) -> UserPatch { last_name: Some(name.into()) }
    /// A deal patch that changes the amount only.
    reprice(amount: i64) -> DealPatch { amount: Some(amount) }
    /// A note patch that changes the text only.
    rewrite_note(text: impl Into<String>) -> NotePatch { text: Some(text.into()) }
    /// A task patch that changes the text only.
    rewrite_task(text: impl Into<String>) -> TaskPatch { text: Some(text.into()) }
    /// A task patch that gives the task to `owner`.
    reassign(owner: UserId) -> TaskPatch { owner_id: Some(owner) }
    /// A task patch that changes the priority only.
    prioritize(priority: Priority) -> TaskPatch { priority: Some(Some(priority)) }
    /// A tag patch that changes the name only.
    rename_tag(name: impl Into<String>) -> TagPatch { name: Some(name.into()) }
}

/// A tag without a color.
pub fn tag(name: impl Into<String>) -> TagInput {
    TagInput {
        name: name.into(),
        color: None,
    }
}

/// The kind of the error `r` must be.
pub fn kind<T: std::fmt::Debug>(r: Result<T>) -> ErrorKind {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.kind(),
    }
}
