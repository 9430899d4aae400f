//! One-line set-ups for tests outside the conformance suite's [`World`](super::suite::World)
//! (crm-core's own tests, the stores' tests, fault and crash tests): a bootstrapped
//! workspace with its admin as an [`Actor`], another member of a role, user inputs, fast
//! password hashing, records as a store holds them for tests that write them directly, and
//! a list query walked page by page.
//!
//! ```
//! # use std::sync::Arc;
//! use crm_core::model::Role;
//! use crm_core::testkit::setup::{bootstrap, email, member};
//! use crm_core::testkit::MemoryStore;
//! use crm_core::{Crm, CrmConfig};
//!
//! # crm_core::testkit::run(async {
//! let crm = Crm::new(Arc::new(MemoryStore::new()), CrmConfig::default());
//! let (ws, admin) = bootstrap(&crm, "Acme", email("admin@acme.test")).await;
//! let reader = member(&crm, &admin, "reader@acme.test", Role::ReadOnly).await;
//! assert_eq!((reader.workspace_id(), reader.role()), (ws.id, Role::ReadOnly));
//! # });
//! ```

#![allow(clippy::missing_panics_doc)]

use uuid::Uuid;

use crate::access_log::{AccessEntry, AccessLogQuery};
use crate::audit::{AuditEntry, AuditQuery};
use crate::id::{CompanyId, ContactId, TagId, WorkspaceId};
use crate::identity::{Identity, PasswordConfig};
use crate::model::{Company, Contact, EntityKind, Record, Role, Tag, User, UserInput, Workspace};
use crate::query::ListQuery;
use crate::security::{SecurityEvent, SecurityEventQuery};
use crate::{Actor, Crm, Storage, Timestamp};

/// A user input with an e-mail address and nothing else.
pub fn email(address: &str) -> UserInput {
    UserInput {
        email: address.into(),
        ..Default::default()
    }
}

/// A user input with an e-mail address and a name.
pub fn named(address: &str, first_name: &str, last_name: &str) -> UserInput {
    UserInput {
        first_name: first_name.into(),
        last_name: last_name.into(),
        ..email(address)
    }
}

/// A user input with an e-mail address and a role.
pub fn with_role(address: &str, role: Role) -> UserInput {
    UserInput {
        role: Some(role),
        ..email(address)
    }
}

/// Password hashing for tests: bcrypt's lowest cost (4), with `workers` threads and `queue`
/// waiting jobs.
pub fn fast_passwords(workers: usize, queue: usize) -> PasswordConfig {
    PasswordConfig {
        cost: 4,
        workers,
        queue,
    }
}

/// Bootstraps the workspace `name` on `crm` with `first` as its first user (who becomes its
/// admin); the workspace and that admin as an actor. Panics if either step fails.
pub async fn bootstrap(crm: &Crm, name: &str, first: UserInput) -> (Workspace, Actor) {
    let (ws, admin) = crm.bootstrap(name, first).await.unwrap();
    let admin = crm.actor(ws.id, admin.id).await.unwrap();
    (ws, admin)
}

/// Creates a user (`address`, `role`, no name) in the admin's workspace and returns it as an
/// actor. Panics if that fails.
pub async fn member(crm: &Crm, admin: &Actor, address: &str, role: Role) -> Actor {
    let user = crm
        .users()
        .create(admin, with_role(address, role))
        .await
        .unwrap();
    crm.actor(admin.workspace_id(), user.id).await.unwrap()
}

/// Creates a user (`address`, `role`, no name) in the admin's workspace through `identity`
/// and gives it `password`; returns the user. Panics if either step fails.
pub async fn with_password(
    identity: &Identity,
    admin: &Actor,
    address: &str,
    role: Role,
    password: &str,
) -> User {
    let user = identity
        .crm()
        .users()
        .create(admin, with_role(address, role))
        .await
        .unwrap();
    identity
        .set_password(admin, user.id, password)
        .await
        .unwrap();
    user
}

/// The workspace's latest 100 audit entries, newest first, as `actor` may read them.
/// Panics if the read fails.
pub async fn latest_audit(crm: &Crm, actor: &Actor) -> Vec<AuditEntry> {
    let query = AuditQuery {
        limit: Some(100),
        ..Default::default()
    };
    crm.audit().list(actor, &query).await.unwrap()
}

/// A company as a store holds it, for store tests that write records directly (no
/// service): a new id, version 1, created and updated at `at`, every optional field empty.
pub fn stored_company(ws: WorkspaceId, name: &str, at: Timestamp) -> Company {
    Company {
        id: CompanyId::generate(),
        workspace_id: ws,
        name: name.into(),
        sector: None,
        size: None,
        website: None,
        phone_number: None,
        address: None,
        zipcode: None,
        city: None,
        state_abbr: None,
        country: None,
        linkedin_url: None,
        description: None,
        revenue: None,
        tax_identifier: None,
        context_links: Vec::new(),
        sales_id: None,
        created_at: at,
        updated_at: at,
        version: 1,
        deleted_at: None,
    }
}

/// A contact as a store holds it (first and last seen at `at`), like [`stored_company`].
pub fn stored_contact(
    ws: WorkspaceId,
    first_name: &str,
    last_name: &str,
    at: Timestamp,
) -> Contact {
    Contact {
        id: ContactId::generate(),
        workspace_id: ws,
        first_name: first_name.into(),
        last_name: last_name.into(),
        title: None,
        gender: None,
        background: None,
        emails: Vec::new(),
        phones: Vec::new(),
        company_id: None,
        company_name: None,
        status: None,
        tags: Vec::new(),
        has_newsletter: false,
        consents: Vec::new(),
        linkedin_url: None,
        avatar: None,
        first_seen: at,
        last_seen: at,
        sales_id: None,
        created_at: at,
        updated_at: at,
        version: 1,
        deleted_at: None,
    }
}

/// A tag as a store holds it (color `#eeeeee`), like [`stored_company`].
pub fn stored_tag(ws: WorkspaceId, name: &str, at: Timestamp) -> Tag {
    Tag {
        id: TagId::generate(),
        workspace_id: ws,
        name: name.into(),
        color: "#eeeeee".into(),
        created_at: at,
        updated_at: at,
        version: 1,
        deleted_at: None,
    }
}

/// Every id a list query finds on `s`, page by page, following cursors as the core builds
/// them; asserts that no page is longer than the query's limit. Panics after 10,000 pages.
pub async fn walk(s: &dyn Storage, ws: WorkspaceId, kind: EntityKind, q: &ListQuery) -> Vec<Uuid> {
    let mut q = q.clone();
    let mut out = Vec::new();
    for _ in 0..10_000 {
        let page = s.list(ws, kind, &q).await.unwrap();
        assert!(page.len() <= q.limit);
        out.extend(page.iter().map(Record::id));
        match page.last() {
            Some(last) if page.len() == q.limit => {
                q.after = Some(q.sort.cursor_after(last));
            }
            _ => return out,
        }
    }
    panic!("the walk does not end");
}

/// The next version of a stored record (version + 1, updated a second later), changed by
/// `f`: what a store is given for an update, for store tests that write records directly.
pub fn bumped(r: &Record, f: impl FnOnce(&mut Record)) -> Record {
    let mut r = r.clone();
    let mut meta = r.meta();
    meta.version += 1;
    meta.updated_at = meta.updated_at.plus(std::time::Duration::from_secs(1));
    r.set_meta(meta);
    f(&mut r);
    r
}

/// The workspace's access-log entries as `s` stores them, newest first (at most 500).
pub async fn stored_access(s: &dyn Storage, ws: WorkspaceId) -> Vec<AccessEntry> {
    let all = AccessLogQuery {
        limit: 500,
        ..Default::default()
    };
    s.access_log(ws, &all).await.unwrap()
}

/// The workspace's security events as `s` stores them, newest first (at most 500).
pub async fn stored_events(s: &dyn Storage, ws: WorkspaceId) -> Vec<SecurityEvent> {
    let all = SecurityEventQuery {
        limit: 500,
        ..Default::default()
    };
    s.security_events(ws, &all).await.unwrap()
}
