-- crm-store-postgres schema, version 3: the change feed (crm_core::feed; see src/feed.rs).
--
-- One row per record of the fed kinds (company, contact, deal, note, task, tag): its latest
-- change. `tx` is the id of the transaction that wrote the row (pg_current_xact_id()), `seq`
-- the entry's number inside that commit. Readers only read rows whose `tx` is below their
-- snapshot's xmin, so a transaction that commits late can never land behind a reader's
-- cursor. No column holds record data: the record is read when the entry is.

CREATE TABLE crm_feed (
    workspace_id uuid NOT NULL,
    entity smallint NOT NULL,
    record_id uuid NOT NULL,
    tx bigint NOT NULL,
    seq integer NOT NULL,
    op smallint NOT NULL,          -- 0 upsert, 1 delete
    version bigint NOT NULL,
    at_micros bigint NOT NULL,
    actor_id uuid,
    owner_id uuid,
    PRIMARY KEY (workspace_id, entity, record_id)
);
CREATE UNIQUE INDEX crm_feed_by_position ON crm_feed (workspace_id, tx, seq);
CREATE INDEX crm_feed_deletions ON crm_feed (workspace_id, at_micros) WHERE op = 1;

-- Entries at or below a workspace's horizon may have been pruned.
CREATE TABLE crm_feed_horizon (
    workspace_id uuid PRIMARY KEY,
    tx bigint NOT NULL,
    seq integer NOT NULL
);

-- Records that predate the feed get an entry each, at tx 1 (below every real transaction
-- id), so a reader starting from the beginning finds them.
INSERT INTO crm_feed (workspace_id, entity, record_id, tx, seq, op, version, at_micros, actor_id, owner_id)
SELECT workspace_id, entity, id, 1,
       (row_number() OVER (PARTITION BY workspace_id ORDER BY entity, id))::integer,
       CASE WHEN deleted THEN 1 ELSE 0 END, version,
       (extract(epoch FROM (data->>'updated_at')::timestamptz) * 1000000)::bigint,
       NULL, owner
FROM (
    SELECT workspace_id, 3::smallint AS entity, id, deleted, version, data, (data->>'sales_id')::uuid AS owner FROM crm_company
    UNION ALL SELECT workspace_id, 4::smallint, id, deleted, version, data, (data->>'sales_id')::uuid FROM crm_contact
    UNION ALL SELECT workspace_id, 5::smallint, id, deleted, version, data, (data->>'sales_id')::uuid FROM crm_deal
    UNION ALL SELECT workspace_id, 6::smallint, id, deleted, version, data, (data->>'sales_id')::uuid FROM crm_note
    UNION ALL SELECT workspace_id, 7::smallint, id, deleted, version, data, (data->>'owner_id')::uuid FROM crm_task
    UNION ALL SELECT workspace_id, 8::smallint, id, deleted, version, data, NULL::uuid FROM crm_tag
) AS existing;

-- Recently viewed (crm_core::views): per (workspace, user, kind) each record once, at its
-- latest view; the store keeps the newest 100.
CREATE TABLE crm_recent (
    workspace_id uuid NOT NULL,
    user_id uuid NOT NULL,
    entity smallint NOT NULL,
    record_id uuid NOT NULL,
    at_micros bigint NOT NULL,
    PRIMARY KEY (workspace_id, user_id, entity, record_id)
);
CREATE INDEX crm_recent_by_time ON crm_recent (workspace_id, user_id, entity, at_micros DESC, record_id DESC);
