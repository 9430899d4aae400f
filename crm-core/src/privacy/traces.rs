//! Where export and erasure meet the logs kept *about* reads and logins: the persisted
//! access log ([`crate::access_log`]) and the security events ([`crate::security`]). This is
//! the one place privacy reaches them.
//!
//! * An export lists the access-log entries about the contact (or the security events about
//!   the user), and the workspace's retention periods in its header; it is itself recorded:
//!   a read of the subject (the [`crate::AccessLog`] hook) and an `export_performed`
//!   security event.
//! * An erasure removes the access-log entries about the contact and its notes; an
//!   anonymization clears the user's addresses from the access log and its addresses and
//!   login names from the security events. Each records an `erasure_performed` event (ids
//!   only).

use serde_json::Value as Json;
use uuid::Uuid;

use super::{Privacy, RetentionPeriods};
use crate::access_log::AccessLogQuery;
use crate::error::Result;
use crate::id::{UserId, WorkspaceId};
use crate::model::EntityKind;
use crate::security::{SecurityEvent, SecurityEventQuery, SecurityEventType};
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
    /// Access-log entries about a record, newest first (every page).
    pub(crate) async fn access_about(&self, ws: WorkspaceId, id: Uuid) -> Result<Json> {
        let mut query = AccessLogQuery {
            record_id: Some(id),
            limit: crate::access_log::MAX_LIMIT,
            ..Default::default()
        };
        let mut out = Vec::new();
        loop {
            let page = self.crm.storage().access_log(ws, &query).await?;
            let full = page.len() == query.limit;
            query.before = page.last().map(|e| e.id);
            out.extend(page);
            if !full {
                return Ok(serde_json::to_value(out).unwrap_or_default());
            }
        }
    }

    /// Security events about a user, newest first (every page).
    pub(crate) async fn events_about(&self, ws: WorkspaceId, user: UserId) -> Result<Json> {
        let mut query = SecurityEventQuery {
            user_id: Some(user),
            limit: crate::security::MAX_LIMIT,
            ..Default::default()
        };
        let mut out = Vec::new();
        loop {
            let page = self.crm.storage().security_events(ws, &query).await?;
            let full = page.len() == query.limit;
            query.before = page.last().map(|e| e.id);
            out.extend(page);
            if !full {
                return Ok(serde_json::to_value(out).unwrap_or_default());
            }
        }
    }

    /// Removes the access-log entries about records; answers how many.
    pub(crate) async fn erase_records(&self, ws: WorkspaceId, ids: &[Uuid]) -> Result<usize> {
        let mut n = 0;
        for id in ids {
            n += self.crm.storage().erase_access_log_for(ws, *id).await?;
        }
        Ok(n)
    }

    /// Clears a user's personal data from the access log and the security events; answers
    /// how many access-log entries changed.
    pub(crate) async fn redact_user(&self, ws: WorkspaceId, user: UserId) -> Result<usize> {
        let storage = self.crm.storage();
        let n = storage.redact_access_log_by(ws, user).await?;
        storage.redact_security_events_for(ws, user).await?;
        Ok(n)
    }

    /// The workspace's retention periods, for an export's header.
    pub(crate) async fn retention(&self, ws: WorkspaceId) -> Result<RetentionPeriods> {
        let policy = self.crm.load_config(ws).await?.retention;
        Ok(RetentionPeriods::from(&policy))
    }

    /// Records a performed operation (see the [module docs](self)): the one place export
    /// and erasure events are made. The event is written to the store before the call
    /// answers (not queued: an erasure or export whose event could not be written fails, and
    /// the caller's repeated call records it), then streamed and counted like every other
    /// event ([`Crm::security_event_now`]).
    ///
    /// # Errors
    /// Storage failures writing the security event.
    pub(crate) async fn performed(
        &self,
        actor: &Actor,
        what: Performed,
        kind: EntityKind,
        id: Uuid,
    ) -> Result<()> {
        let event = match what {
            Performed::Export => {
                self.crm.log_access(actor, kind, &[id]);
                SecurityEventType::ExportPerformed
            }
            Performed::Erasure | Performed::Anonymization => SecurityEventType::ErasurePerformed,
        };
        let mut e = SecurityEvent::new(actor.workspace_id(), event, self.crm.now())
            .actor(actor.user_id())
            .address(actor.origin().and_then(|o| o.address.as_deref()))
            .with("entity", kind.noun())
            .with("record_id", id.to_string());
        if kind == EntityKind::User {
            e = e.user(UserId::from_uuid(id));
        }
        if what == Performed::Anonymization {
            e = e.with("anonymized", true);
        }
        self.crm.security_event_now(e).await
    }
}
