-- crm-store-postgres schema, version 1.
--
-- One table per record kind. Each row holds the record as JSON (`data`, the source of truth)
-- plus derived columns the store keeps in the same statement:
--   k_<field>  bytea NOT NULL: the field's order-preserving key (crm_core::storage::kv::
--              encode_value: text lowercased, NULL sorts last), for filters, sorts and
--              keyset paging with exactly the core's ordering;
--   m_<field>  uuid[]: the members of a multi-valued field (contact tags, deal contacts);
--   words      tsvector of the record's search words (prefix search, GIN);
--   points     text: the contact points (email words, phone digits) for substring search
--              (pg_trgm, GIN).
-- Every b-tree index is scoped by workspace first and ends with the id, the keyset
-- tie-breaker; a partial index on the soft-deleted rows serves the trash. The GIN indexes
-- (words, points, members) hold no workspace column: in a GIN index it would be a posting
-- list of every row of the workspace, read by every search; matches of other workspaces are
-- dropped by the heap recheck instead (member ids are unique across workspaces anyway).

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE crm_workspace (
    workspace_id uuid NOT NULL,
    id uuid NOT NULL,
    version bigint NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    data jsonb NOT NULL,
    k_created_at bytea NOT NULL,
    k_updated_at bytea NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX crm_workspace_by_created_at ON crm_workspace (workspace_id, k_created_at, id);
CREATE INDEX crm_workspace_by_updated_at ON crm_workspace (workspace_id, k_updated_at, id);

CREATE TABLE crm_user (
    workspace_id uuid NOT NULL,
    id uuid NOT NULL,
    version bigint NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    data jsonb NOT NULL,
    k_created_at bytea NOT NULL,
    k_updated_at bytea NOT NULL,
    k_email bytea NOT NULL,
    k_first_name bytea NOT NULL,
    k_last_name bytea NOT NULL,
    k_role bytea NOT NULL,
    k_disabled bytea NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX crm_user_by_created_at ON crm_user (workspace_id, k_created_at, id);
CREATE INDEX crm_user_by_updated_at ON crm_user (workspace_id, k_updated_at, id);
CREATE INDEX crm_user_by_email ON crm_user (workspace_id, k_email, id);
CREATE INDEX crm_user_by_first_name ON crm_user (workspace_id, k_first_name, id);
CREATE INDEX crm_user_by_last_name ON crm_user (workspace_id, k_last_name, id);

CREATE TABLE crm_company (
    workspace_id uuid NOT NULL,
    id uuid NOT NULL,
    version bigint NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    data jsonb NOT NULL,
    k_created_at bytea NOT NULL,
    k_updated_at bytea NOT NULL,
    k_name bytea NOT NULL,
    k_sector bytea NOT NULL,
    k_size bytea NOT NULL,
    k_city bytea NOT NULL,
    k_country bytea NOT NULL,
    k_sales_id bytea NOT NULL,
    words tsvector NOT NULL DEFAULT '',
    points text NOT NULL DEFAULT '',
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX crm_company_by_created_at ON crm_company (workspace_id, k_created_at, id);
CREATE INDEX crm_company_by_updated_at ON crm_company (workspace_id, k_updated_at, id);
CREATE INDEX crm_company_by_name ON crm_company (workspace_id, k_name, id);
CREATE INDEX crm_company_by_sales_id_name ON crm_company (workspace_id, k_sales_id, k_name, id);
CREATE INDEX crm_company_trash ON crm_company (workspace_id, id) WHERE deleted;
CREATE INDEX crm_company_words_gin ON crm_company USING gin (words);
CREATE INDEX crm_company_points_trgm ON crm_company USING gin (points gin_trgm_ops);

CREATE TABLE crm_contact (
    workspace_id uuid NOT NULL,
    id uuid NOT NULL,
    version bigint NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    data jsonb NOT NULL,
    k_created_at bytea NOT NULL,
    k_updated_at bytea NOT NULL,
    k_first_name bytea NOT NULL,
    k_last_name bytea NOT NULL,
    k_last_seen bytea NOT NULL,
    k_company_id bytea NOT NULL,
    k_sales_id bytea NOT NULL,
    k_status bytea NOT NULL,
    k_has_newsletter bytea NOT NULL,
    m_tags uuid[] NOT NULL DEFAULT '{}',
    words tsvector NOT NULL DEFAULT '',
    points text NOT NULL DEFAULT '',
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX crm_contact_by_created_at ON crm_contact (workspace_id, k_created_at, id);
CREATE INDEX crm_contact_by_updated_at ON crm_contact (workspace_id, k_updated_at, id);
CREATE INDEX crm_contact_by_first_name ON crm_contact (workspace_id, k_first_name, id);
CREATE INDEX crm_contact_by_last_name ON crm_contact (workspace_id, k_last_name, id);
CREATE INDEX crm_contact_by_last_seen ON crm_contact (workspace_id, k_last_seen, id);
CREATE INDEX crm_contact_by_company_id_last_seen ON crm_contact (workspace_id, k_company_id, k_last_seen, id);
CREATE INDEX crm_contact_by_sales_id_last_seen ON crm_contact (workspace_id, k_sales_id, k_last_seen, id);
CREATE INDEX crm_contact_trash ON crm_contact (workspace_id, id) WHERE deleted;
CREATE INDEX crm_contact_tags_gin ON crm_contact USING gin (m_tags);
CREATE INDEX crm_contact_words_gin ON crm_contact USING gin (words);
CREATE INDEX crm_contact_points_trgm ON crm_contact USING gin (points gin_trgm_ops);

CREATE TABLE crm_deal (
    workspace_id uuid NOT NULL,
    id uuid NOT NULL,
    version bigint NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    data jsonb NOT NULL,
    k_created_at bytea NOT NULL,
    k_updated_at bytea NOT NULL,
    k_name bytea NOT NULL,
    k_amount bytea NOT NULL,
    k_expected_closing_date bytea NOT NULL,
    k_index bytea NOT NULL,
    k_stage bytea NOT NULL,
    k_category bytea NOT NULL,
    k_company_id bytea NOT NULL,
    k_sales_id bytea NOT NULL,
    k_archived bytea NOT NULL,
    m_contact_ids uuid[] NOT NULL DEFAULT '{}',
    words tsvector NOT NULL DEFAULT '',
    points text NOT NULL DEFAULT '',
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX crm_deal_by_created_at ON crm_deal (workspace_id, k_created_at, id);
CREATE INDEX crm_deal_by_updated_at ON crm_deal (workspace_id, k_updated_at, id);
CREATE INDEX crm_deal_by_name ON crm_deal (workspace_id, k_name, id);
CREATE INDEX crm_deal_by_amount ON crm_deal (workspace_id, k_amount, id);
CREATE INDEX crm_deal_by_expected_closing_date ON crm_deal (workspace_id, k_expected_closing_date, id);
CREATE INDEX crm_deal_by_index ON crm_deal (workspace_id, k_index, id);
CREATE INDEX crm_deal_by_stage_index ON crm_deal (workspace_id, k_stage, k_index, id);
CREATE INDEX crm_deal_by_company_id_created_at ON crm_deal (workspace_id, k_company_id, k_created_at, id);
CREATE INDEX crm_deal_trash ON crm_deal (workspace_id, id) WHERE deleted;
CREATE INDEX crm_deal_contact_ids_gin ON crm_deal USING gin (m_contact_ids);
CREATE INDEX crm_deal_words_gin ON crm_deal USING gin (words);

CREATE TABLE crm_note (
    workspace_id uuid NOT NULL,
    id uuid NOT NULL,
    version bigint NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    data jsonb NOT NULL,
    k_created_at bytea NOT NULL,
    k_updated_at bytea NOT NULL,
    k_date bytea NOT NULL,
    k_contact_id bytea NOT NULL,
    k_deal_id bytea NOT NULL,
    k_sales_id bytea NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX crm_note_by_created_at ON crm_note (workspace_id, k_created_at, id);
CREATE INDEX crm_note_by_updated_at ON crm_note (workspace_id, k_updated_at, id);
CREATE INDEX crm_note_by_date ON crm_note (workspace_id, k_date, id);
CREATE INDEX crm_note_by_contact_id_date ON crm_note (workspace_id, k_contact_id, k_date, id);
CREATE INDEX crm_note_by_deal_id_date ON crm_note (workspace_id, k_deal_id, k_date, id);
CREATE INDEX crm_note_trash ON crm_note (workspace_id, id) WHERE deleted;

CREATE TABLE crm_task (
    workspace_id uuid NOT NULL,
    id uuid NOT NULL,
    version bigint NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    data jsonb NOT NULL,
    k_created_at bytea NOT NULL,
    k_updated_at bytea NOT NULL,
    k_due_date bytea NOT NULL,
    k_owner_id bytea NOT NULL,
    k_completed bytea NOT NULL,
    k_type bytea NOT NULL,
    k_priority bytea NOT NULL,
    k_contact_id bytea NOT NULL,
    k_deal_id bytea NOT NULL,
    k_company_id bytea NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX crm_task_by_created_at ON crm_task (workspace_id, k_created_at, id);
CREATE INDEX crm_task_by_updated_at ON crm_task (workspace_id, k_updated_at, id);
CREATE INDEX crm_task_by_due_date ON crm_task (workspace_id, k_due_date, id);
CREATE INDEX crm_task_by_owner_id_created_at ON crm_task (workspace_id, k_owner_id, k_created_at, id);
CREATE INDEX crm_task_by_owner_id_updated_at ON crm_task (workspace_id, k_owner_id, k_updated_at, id);
CREATE INDEX crm_task_by_owner_id_due_date ON crm_task (workspace_id, k_owner_id, k_due_date, id);
CREATE INDEX crm_task_by_contact_id_due_date ON crm_task (workspace_id, k_contact_id, k_due_date, id);
CREATE INDEX crm_task_by_deal_id_due_date ON crm_task (workspace_id, k_deal_id, k_due_date, id);
CREATE INDEX crm_task_by_company_id_due_date ON crm_task (workspace_id, k_company_id, k_due_date, id);
CREATE INDEX crm_task_by_completed_due_date ON crm_task (workspace_id, k_completed, k_due_date, id);
CREATE INDEX crm_task_by_owner_id_completed_due_date ON crm_task (workspace_id, k_owner_id, k_completed, k_due_date, id);
CREATE INDEX crm_task_trash ON crm_task (workspace_id, id) WHERE deleted;

CREATE TABLE crm_tag (
    workspace_id uuid NOT NULL,
    id uuid NOT NULL,
    version bigint NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    data jsonb NOT NULL,
    k_created_at bytea NOT NULL,
    k_updated_at bytea NOT NULL,
    k_name bytea NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX crm_tag_by_created_at ON crm_tag (workspace_id, k_created_at, id);
CREATE INDEX crm_tag_by_updated_at ON crm_tag (workspace_id, k_updated_at, id);
CREATE INDEX crm_tag_by_name ON crm_tag (workspace_id, k_name, id);
CREATE INDEX crm_tag_trash ON crm_tag (workspace_id, id) WHERE deleted;

CREATE TABLE crm_configuration (
    workspace_id uuid NOT NULL,
    id uuid NOT NULL,
    version bigint NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    data jsonb NOT NULL,
    k_created_at bytea NOT NULL,
    k_updated_at bytea NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX crm_configuration_by_created_at ON crm_configuration (workspace_id, k_created_at, id);
CREATE INDEX crm_configuration_by_updated_at ON crm_configuration (workspace_id, k_updated_at, id);

CREATE TABLE crm_session (
    workspace_id uuid NOT NULL,
    id uuid NOT NULL,
    version bigint NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    data jsonb NOT NULL,
    k_created_at bytea NOT NULL,
    k_updated_at bytea NOT NULL,
    k_user_id bytea NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX crm_session_by_created_at ON crm_session (workspace_id, k_created_at, id);
CREATE INDEX crm_session_by_updated_at ON crm_session (workspace_id, k_updated_at, id);
CREATE INDEX crm_session_by_user_id_created_at ON crm_session (workspace_id, k_user_id, k_created_at, id);

CREATE TABLE crm_credential (
    workspace_id uuid NOT NULL,
    id uuid NOT NULL,
    version bigint NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    data jsonb NOT NULL,
    k_created_at bytea NOT NULL,
    k_updated_at bytea NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX crm_credential_by_created_at ON crm_credential (workspace_id, k_created_at, id);
CREATE INDEX crm_credential_by_updated_at ON crm_credential (workspace_id, k_updated_at, id);

CREATE TABLE crm_reset_token (
    workspace_id uuid NOT NULL,
    id uuid NOT NULL,
    version bigint NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    data jsonb NOT NULL,
    k_created_at bytea NOT NULL,
    k_updated_at bytea NOT NULL,
    k_user_id bytea NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX crm_reset_token_by_created_at ON crm_reset_token (workspace_id, k_created_at, id);
CREATE INDEX crm_reset_token_by_updated_at ON crm_reset_token (workspace_id, k_updated_at, id);
CREATE INDEX crm_reset_token_by_user_id_created_at ON crm_reset_token (workspace_id, k_user_id, k_created_at, id);

-- Unique values (user emails, tag names, session refresh-token hashes, reset-token hashes):
-- the primary key makes a second claim of a value fail, across every connection.
CREATE TABLE crm_unique (
    workspace_id uuid NOT NULL,
    kind smallint NOT NULL,
    name text NOT NULL,
    value text NOT NULL,
    record_id uuid NOT NULL,
    PRIMARY KEY (workspace_id, kind, name, value)
);
CREATE INDEX crm_unique_by_record ON crm_unique (workspace_id, kind, record_id);

-- The audit log: one row per entry, newest first by its time-ordered id.
CREATE TABLE crm_audit (
    workspace_id uuid NOT NULL,
    id uuid NOT NULL,
    entity smallint NOT NULL,
    record_id uuid NOT NULL,
    action text NOT NULL,
    data jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX crm_audit_by_record ON crm_audit (workspace_id, record_id, id);
