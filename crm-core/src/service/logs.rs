//! The engine's side of the access log and security events: recording (queued, see
//! [`crate::access_log`] and [`crate::security`]), flushing to the store, and the admins'
//! reads.

use std::collections::HashMap;

use uuid::Uuid;

use super::{Actor, Crm};
use crate::access_log::{AccessEntry, AccessLogQuery, id_at};
use crate::error::{Error, ErrorKind, Result};
use crate::id::WorkspaceId;
use crate::model::{ClientDetails, EntityKind, Role};
use crate::security::{FlushReport, LogCounts, SecurityEvent, SecurityEventQuery};

/// Entries written per store call by [`Crm::flush_logs`]: a second of reads of a busy
/// instance in one store transaction (each transaction has a fixed cost, which at a
/// thousand entries was a fifth of what writing the access log cost), still small enough
/// to hold the store's writer for milliseconds only.
pub const FLUSH_BATCH: usize = 5_000;

impl Crm {
    /// Records a security event: hands it to the hooks, counts it, runs the anomaly rules
    /// on it (recording what they find) and queues it for the store. Rate-limit events are
    /// sampled (the first per key and minute is kept; all are counted). Never blocks on I/O.
    pub fn security_event(&self, event: SecurityEvent) {
        let inner = &self.inner;
        let monitor = &inner.monitor;
        let found = monitor.observe(&inner.config.anomalies, &event);
        monitor.count(event.kind);
        for hook in &inner.config.security_hooks {
            hook.event(&event);
        }
        if monitor.sample(&event) {
            monitor.queue_event(event);
        }
        for anomaly in found {
            self.record_anomaly(anomaly);
        }
    }

    /// [`Crm::security_event`] for an event that must be in the store before the caller
    /// answers (export and erasure, see [`crate::privacy`]): written at once — the
    /// workspace's [`ClientDetails`] policy applied to its address — and, once written,
    /// handed to the hooks, counted and run through the anomaly rules. Never sampled.
    ///
    /// # Errors
    /// Storage failures writing it (then nothing saw it: a repeated call records it once).
    pub(crate) async fn security_event_now(&self, mut event: SecurityEvent) -> Result<()> {
        if event.address.is_some() {
            let policy = self
                .load_config(event.workspace_id)
                .await
                .map_or(ClientDetails::None, |c| c.retention.client_details);
            event.address = policy.address(event.address.as_deref());
        }
        self.storage()
            .append_security_events(std::slice::from_ref(&event))
            .await?;
        let inner = &self.inner;
        let found = inner.monitor.observe(&inner.config.anomalies, &event);
        inner.monitor.count(event.kind);
        for hook in &inner.config.security_hooks {
            hook.event(&event);
        }
        for anomaly in found {
            self.record_anomaly(anomaly);
        }
        Ok(())
    }

    /// The anomaly rules' settings.
    pub(crate) fn anomaly_rules(&self) -> &crate::security::AnomalyConfig {
        &self.inner.config.anomalies
    }

    /// Records an anomaly found by a rule (counted per rule; not fed to the rules again).
    pub(crate) fn record_anomaly(&self, event: SecurityEvent) {
        let monitor = &self.inner.monitor;
        if let Some(rule) = event.detail.get("rule").and_then(|r| r.as_str()) {
            monitor.count_rule(rule);
        }
        monitor.count(event.kind);
        for hook in &self.inner.config.security_hooks {
            hook.event(&event);
        }
        monitor.queue_event(event);
    }

    /// A security event of `kind` now, in the actor's workspace, by the actor, from the
    /// actor's origin (see [`Actor::with_origin`]); add details with
    /// [`SecurityEvent::with`] and record it with [`Crm::security_event`].
    pub fn event_for(
        &self,
        actor: &Actor,
        kind: crate::security::SecurityEventType,
    ) -> SecurityEvent {
        SecurityEvent::new(actor.workspace_id(), kind, self.now())
            .user(actor.user_id())
            .address(actor.origin().and_then(|o| o.address.as_deref()))
    }

    /// Records that `actor` read the records `ids` of `entity` (one access-log entry each),
    /// when the access log is on ([`super::CrmConfig::record_access`] or a hook). The facade
    /// calls it for every read; a host calls it for reads it serves itself (exports).
    pub fn log_access(&self, actor: &Actor, entity: EntityKind, ids: &[Uuid]) {
        let config = &self.inner.config;
        if ids.is_empty() || (!config.record_access && config.access_log.is_none()) {
            return;
        }
        let at = self.now();
        let (route, address) = match actor.origin() {
            Some(o) => (o.route.as_str(), o.address.clone()),
            None => ("embedded", None),
        };
        let entries: Vec<AccessEntry> = ids
            .iter()
            .map(|id| AccessEntry {
                id: id_at(at),
                workspace_id: actor.workspace_id(),
                at,
                user_id: actor.user_id(),
                entity,
                record_id: *id,
                route: route.to_owned(),
                address: address.clone(),
            })
            .collect();
        if let Some(hook) = &config.access_log {
            for e in &entries {
                hook.record_read(e);
            }
        }
        if let Some(anomaly) = self.inner.monitor.read(&config.anomalies, &entries) {
            self.record_anomaly(anomaly);
        }
        if config.record_access {
            self.inner.monitor.queue_access(entries);
        }
    }

    /// Writes the queued access-log entries and security events to the store, in batches of
    /// [`FLUSH_BATCH`], applying each workspace's [`ClientDetails`] policy to the addresses
    /// first. A host calls it every second or so; what is still queued when the process dies
    /// is lost. A batch the store refuses is dropped (and counted in
    /// [`LogCounts::dropped`]): the queue stays bounded while the store is down.
    ///
    /// # Errors
    /// The first storage failure (later batches are still tried).
    pub async fn flush_logs(&self) -> Result<FlushReport> {
        let monitor = &self.inner.monitor;
        let _one = monitor.flushing.lock().await;
        let mut access = monitor.take_access();
        let mut events =
            std::mem::take(&mut *monitor.events.lock().unwrap_or_else(|e| e.into_inner()));
        let mut report = FlushReport::default();
        if access.is_empty() && events.is_empty() {
            return Ok(report);
        }
        let mut policies: HashMap<WorkspaceId, ClientDetails> = HashMap::new();
        for ws in access
            .iter()
            .map(|e| e.workspace_id)
            .chain(events.iter().map(|e| e.workspace_id))
        {
            if let std::collections::hash_map::Entry::Vacant(v) = policies.entry(ws) {
                let policy = match self.load_config(ws).await {
                    Ok(c) => c.retention.client_details,
                    // No configuration (a workspace being created, or gone): keep nothing.
                    Err(_) => ClientDetails::None,
                };
                v.insert(policy);
            }
        }
        let policy = |ws: &WorkspaceId| policies.get(ws).copied().unwrap_or(ClientDetails::None);
        let mut first_error = None;
        for e in &mut access {
            keep_address(policy(&e.workspace_id), &mut e.address);
        }
        for e in &mut events {
            keep_address(policy(&e.workspace_id), &mut e.address);
        }
        // A written chunk counts in the report; a failed one counts as dropped, and the
        // first failure is what the flush answers.
        let mut settle = |written: Result<()>, n: usize, count: &mut usize| match written {
            Ok(()) => *count += n,
            Err(e) => {
                monitor.dropped(n);
                first_error.get_or_insert(e);
            }
        };
        for chunk in access.chunks(FLUSH_BATCH) {
            let written = self.storage().append_access_log(chunk).await;
            settle(written, chunk.len(), &mut report.access_entries);
        }
        for chunk in events.chunks(FLUSH_BATCH) {
            let written = self.storage().append_security_events(chunk).await;
            settle(written, chunk.len(), &mut report.security_events);
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Counters of security events per type, anomalies per rule, access-log entries and
    /// drops since the engine started (for `/metrics`).
    pub fn log_counts(&self) -> LogCounts {
        self.inner.monitor.counts()
    }

    /// The access log (admins).
    pub fn access_log(&self) -> AccessLogService<'_> {
        AccessLogService { crm: self }
    }

    /// Security events (admins).
    pub fn security_events(&self) -> SecurityEventService<'_> {
        SecurityEventService { crm: self }
    }
}

/// Applies a workspace's [`ClientDetails`] policy to a queued entry's address in place (a
/// stored address is kept as it is, without a copy).
fn keep_address(policy: ClientDetails, address: &mut Option<String>) {
    if address.is_some() && !matches!(policy, ClientDetails::Stored) {
        *address = policy.address(address.as_deref());
    }
}

fn admin_only(actor: &Actor) -> Result<()> {
    if actor.role() == Role::Admin {
        Ok(())
    } else {
        Err(Error::new(ErrorKind::Forbidden))
    }
}

fn check_limit(limit: usize, max: usize) -> Result<()> {
    if (1..=max).contains(&limit) {
        Ok(())
    } else {
        Err(Error::new(ErrorKind::InvalidQuery))
    }
}

/// `crm.access_log()`: reading the access log (admins only).
pub struct AccessLogService<'a> {
    crm: &'a Crm,
}

impl AccessLogService<'_> {
    /// Entries of the actor's workspace matching `query`, newest first. Entries still
    /// queued (not yet flushed) are not seen.
    ///
    /// # Errors
    /// `Forbidden` for non-admins, `InvalidQuery` for a limit outside 1..=500 or `since`
    /// after `until`; storage failures.
    pub async fn list(&self, actor: &Actor, query: &AccessLogQuery) -> Result<Vec<AccessEntry>> {
        admin_only(actor)?;
        check_limit(query.limit, crate::access_log::MAX_LIMIT)?;
        if let (Some(s), Some(u)) = (query.since, query.until)
            && s > u
        {
            return Err(Error::new(ErrorKind::InvalidQuery));
        }
        self.crm
            .storage()
            .access_log(actor.workspace_id(), query)
            .await
    }
}

/// `crm.security_events()`: reading security events (admins only).
pub struct SecurityEventService<'a> {
    crm: &'a Crm,
}

impl SecurityEventService<'_> {
    /// Events of the actor's workspace matching `query`, newest first. Events still queued
    /// (not yet flushed) are not seen.
    ///
    /// # Errors
    /// `Forbidden` for non-admins, `InvalidQuery` for a limit outside 1..=500; storage
    /// failures.
    pub async fn list(
        &self,
        actor: &Actor,
        query: &SecurityEventQuery,
    ) -> Result<Vec<SecurityEvent>> {
        admin_only(actor)?;
        check_limit(query.limit, crate::security::MAX_LIMIT)?;
        self.crm
            .storage()
            .security_events(actor.workspace_id(), query)
            .await
    }
}
