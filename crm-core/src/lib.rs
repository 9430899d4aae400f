//! # crm-core
//!
//! The framework-agnostic heart of `crm`, an embeddable CRM engine: the domain model
//! (companies, contacts, deals, notes, tasks, tags, users, per-workspace configuration),
//! role-based access control, coded errors, the audit trail and full-text search — over the
//! [`Storage`] trait, which `crm-store-redb` (embedded) and `crm-store-postgres` implement.
//!
//! ```no_run
//! # async fn demo(storage: std::sync::Arc<dyn crm_core::Storage>) -> crm_core::Result<()> {
//! use crm_core::{Crm, CrmConfig, model::{ContactInput, UserInput}};
//!
//! let crm = Crm::new(storage, CrmConfig::default());
//! // The first user of a new workspace becomes its admin.
//! let (workspace, admin) = crm
//!     .bootstrap("Acme", UserInput { email: "ada@acme.test".into(), ..Default::default() })
//!     .await?;
//! let actor = crm.actor(workspace.id, admin.id).await?;
//! let contact = crm
//!     .contacts()
//!     .create(&actor, ContactInput { first_name: "Grace".into(), last_name: "Hopper".into(), ..Default::default() })
//!     .await?;
//! println!("{} v{}", contact.id, contact.version);
//! # Ok(()) }
//! ```
//!
//! # Layout, bottom-up
//!
//! Each module uses only the ones above it in this list, so the crate reads from the leaves
//! to the facade:
//!
//! 1. [`kind`] — what names a record: [`EntityKind`] and the typed [`Id`]. Imports nothing of
//!    the crate. [`clock`] (instants, dates, the injectable clock) and [`search`] (the text
//!    rules of full-text search: tokens, contact points, matching anything
//!    [`search::Searchable`]) are leaves too.
//! 2. [`error`] — the coded errors (naming the kind of record they are about).
//! 3. [`validate`] — the limits and the field checks.
//! 4. [`query`] — filters, sorts, cursors, pages and list parameters (their values, not which
//!    fields a kind has), including the filter ids that stand for consent purposes.
//! 5. [`mask`] — the masks of personal data.
//! 6. [`model`] — the records. Each record type is declared once (`model/declare.rs`: one
//!    line per field with its type, access, filters, rule, personal-data and search flags);
//!    the record, its create input and update patch, its [`model::Entity`] implementation,
//!    its [`model::Declaration`] (JSON schemas, personal-data inventory) and the kind's
//!    filterable fields ([`EntityKind::fields`]) are generated from it. A contact's consents
//!    and their rules are `model/consent.rs` (re-exported by [`privacy::consent`]).
//! 7. [`audit`] — audit entries of record changes; [`id`] re-exports every typed id for hosts;
//!    [`permission`] — the role matrix; [`views`] — recently viewed records;
//!    [`access_log`] and [`security`] — the entries of the persisted logs and the anomaly
//!    rules (their recording is the facade's).
//! 8. `commit` — the atomic unit of work, [`Commit`] of [`Write`]s (re-exported by
//!    [`storage`]); [`feed`] — the change feed, read from commits.
//! 9. [`kv`] — helpers for ordered key/value stores (order-preserving keys, index entries,
//!    query plans; also reachable as `storage::kv`); [`dashboard`] — the maintained figures:
//!    tallies, their keys and what each record contributes, the dashboard's query and data.
//! 10. [`storage`] — the backend trait, with [`storage::recount`] (the dashboard computed from
//!     the records: the trait's default and what every store's tallies are checked against).
//! 11. [`service`] — the facade a host calls ([`Crm`]), with the read-path policy
//!     (`Crm::present`) and the session records' revocation writes (`service/sessions.rs`:
//!     disabling a user ends its sessions in the same commit). On the facade: [`privacy`]
//!     (export, erasure, recording consent) and [`retention`].
//! 12. [`identity`] (sign-in and sessions) sits on the facade, which never names it; one
//!     file a concern (configuration, login, sessions and the revocation cache, external
//!     tokens, password change and reset). [`ratelimit`] stands apart (clock and errors
//!     only).
//! 13. [`demo`] (demo data) and, with the `testkit` feature, `testkit` (the conformance
//!     suite every store runs): `testkit::suite` by theme with the test world and its
//!     builders, the identity, feed, dashboard, security and privacy suites, fault injection,
//!     and `Intercepted`, the one store test doubles are built on.

pub mod access_log;
pub mod audit;
pub mod clock;
mod commit;
pub mod dashboard;
pub mod demo;
pub mod error;
pub mod feed;
pub mod id;
pub mod identity;
pub mod kind;
pub mod kv;
pub mod mask;
pub mod model;
pub mod permission;
pub mod privacy;
pub mod query;
pub mod ratelimit;
pub mod retention;
pub mod search;
pub mod security;
pub mod service;
pub mod storage;
pub mod validate;
pub mod views;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use error::{Error, ErrorKind, FieldError, FieldIssue, Result};
pub use kind::{EntityKind, Id};
pub use query::{ListParams, Page};
pub use service::{AccessLog, Actor, Crm, CrmConfig, Origin};
pub use storage::{Commit, Storage, Write};
