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
//! Layout: [`model`] (records, inputs, validation), [`permission`] (the role matrix),
//! [`error`] (coded errors), [`audit`], [`search`], [`query`] (lists and paging),
//! [`storage`] (the backend trait), [`service`] (the facade a host calls). Beside the facade,
//! [`identity`] turns credentials into actors, one file a concern (configuration, login,
//! sessions and the revocation cache, external tokens, password change and reset). With the
//! `testkit` feature, `testkit` holds the conformance suite: `testkit::suite` by theme with
//! the test world and its builders, the identity, feed, dashboard, security and privacy suites, fault
//! injection, and `Intercepted`, the one store test doubles are built on.

pub mod access_log;
pub mod audit;
pub mod clock;
pub mod dashboard;
pub mod demo;
pub mod error;
pub mod feed;
pub mod id;
pub mod identity;
pub mod kind;
pub mod mask;
pub mod model;
pub mod permission;
pub mod privacy;
pub mod query;
pub mod ratelimit;
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
pub use service::{AccessEvent, AccessLog, Actor, Crm, CrmConfig};
pub use storage::{Commit, Storage, Write};
