-- Data protection (crm_core::privacy): a user's export lists the audit entries of their own
-- actions, and erasure removes a record from every user's recently viewed lists.
CREATE INDEX crm_audit_by_actor ON crm_audit (workspace_id, (data->>'actor_id'), id);
CREATE INDEX crm_recent_by_record ON crm_recent (workspace_id, entity, record_id);
