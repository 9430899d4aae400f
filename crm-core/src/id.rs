//! Typed record ids, gathered in one place for hosts: [`Id`] itself (from the leaf module
//! [`crate::kind`]) and the id type of each record type, which the model and the audit trail
//! declare next to their types (`ContactId = Id<Contact>`, ...).
//!
//! This module only re-exports; it sits above [`crate::model`] and [`crate::audit`], which
//! never import it.

pub use crate::audit::AuditId;
pub use crate::kind::Id;
pub use crate::model::{CompanyId, ContactId, DealId, NoteId, TagId, TaskId, UserId, WorkspaceId};
