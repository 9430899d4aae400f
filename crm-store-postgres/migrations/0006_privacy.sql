-- Data protection (crm_core::privacy). A user's export lists the audit entries of their own
-- actions, and erasure removes a record from every user's recently viewed lists.
CREATE INDEX crm_audit_by_actor ON crm_audit (workspace_id, (data->>'actor_id'), id);
CREATE INDEX crm_recent_by_record ON crm_recent (workspace_id, entity, record_id);
-- Consents (crm_core::privacy::consent): the purposes a contact consents to, as the ids that
-- stand for them, filtered like tags.
ALTER TABLE crm_contact ADD COLUMN m_consented uuid[] NOT NULL DEFAULT '{}';
CREATE INDEX crm_contact_consented_gin ON crm_contact USING gin (m_consented);
