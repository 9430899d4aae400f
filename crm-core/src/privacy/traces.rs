//! Where export and erasure meet the logs kept *about* reads and logins: the access log and
//! the security events. They live in their own part of the engine; this is the one place
//! privacy reaches them, so export and erasure cover them as soon as a store keeps them.
//!
//! Without a persisted access log (the engine then only reports reads to the optional
//! [`crate::AccessLog`] hook, which keeps nothing), an export says `null` for those parts
//! and erasure has nothing there to remove.

use serde_json::Value as Json;
use uuid::Uuid;

use super::Privacy;
use crate::error::Result;
use crate::id::{UserId, WorkspaceId};
use crate::model::EntityKind;
use crate::service::{Actor, Crm};

/// A privacy operation, as reported to the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Performed {
    /// A right-of-access export.
    Export,
    /// An erasure of a contact.
    Erasure,
    /// An anonymization of a user.
    Anonymization,
}

/// The seam; see the [module docs](self).
pub(crate) struct Traces<'a> {
    crm: &'a Crm,
}

impl Privacy<'_> {
    pub(crate) fn traces(&self) -> Traces<'_> {
        Traces { crm: self.crm }
    }
}

impl Traces<'_> {
    /// Access-log entries about a record (`None`: no access log is kept).
    pub(crate) async fn access_about(&self, _ws: WorkspaceId, _id: Uuid) -> Result<Option<Json>> {
        Ok(None)
    }

    /// Security events about a user (`None`: none are kept).
    pub(crate) async fn events_about(
        &self,
        _ws: WorkspaceId,
        _user: UserId,
    ) -> Result<Option<Json>> {
        Ok(None)
    }

    /// Removes the access-log entries about a record; answers how many.
    pub(crate) async fn erase_record(&self, _ws: WorkspaceId, _id: Uuid) -> Result<usize> {
        Ok(0)
    }

    /// Clears a user's personal data from the access log and the security events; answers
    /// how many access-log entries changed.
    pub(crate) async fn redact_user(&self, _ws: WorkspaceId, _user: UserId) -> Result<usize> {
        Ok(0)
    }

    /// The retention periods that apply to the workspace's data, for an export's header
    /// (`null`: nothing is pruned automatically).
    pub(crate) async fn retention(&self, _ws: WorkspaceId) -> Result<Json> {
        Ok(Json::Null)
    }

    /// Reports a performed operation: an export is a read of the subject's record.
    pub(crate) async fn performed(
        &self,
        actor: &Actor,
        what: Performed,
        kind: EntityKind,
        id: Uuid,
    ) {
        if what == Performed::Export {
            self.crm.log_read(actor, kind, id);
        }
    }
}
