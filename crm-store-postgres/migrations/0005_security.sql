-- crm-store-postgres schema, version 5: the access log and security events (crm_core::access_log,
-- crm_core::security; see src/logs.rs).
--
-- Each row keeps the whole entry as JSON in `data` plus the columns the queries filter on.
-- Ids are UUIDv7 of the entry's time, so id order is time order: pages are newest first by
-- id, retention deletes the oldest ids first.

CREATE TABLE crm_access_log (
    workspace_id uuid NOT NULL,
    id uuid NOT NULL,
    at_micros bigint NOT NULL,
    user_id uuid NOT NULL,
    record_id uuid NOT NULL,
    data jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX crm_access_log_by_record ON crm_access_log (workspace_id, record_id, id);
CREATE INDEX crm_access_log_by_user ON crm_access_log (workspace_id, user_id, id);

CREATE TABLE crm_security_events (
    workspace_id uuid NOT NULL,
    id uuid NOT NULL,
    at_micros bigint NOT NULL,
    type text NOT NULL,
    user_id uuid,
    actor_id uuid,
    data jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX crm_security_events_by_user ON crm_security_events (workspace_id, user_id, id);
CREATE INDEX crm_security_events_by_actor ON crm_security_events (workspace_id, actor_id, id);
CREATE INDEX crm_security_events_by_type ON crm_security_events (workspace_id, type, id);
