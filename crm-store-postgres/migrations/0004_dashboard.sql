-- crm-store-postgres schema, version 4: the dashboard (crm_core::dashboard; see src/dashboard.rs).
--
-- crm_tally: the maintained figures. A figure is the sum of its rows; commits add their
-- changes in their own transaction, workspace-wide figures spread over 16 slots (the writing
-- backend's pid modulo 16) so that concurrent commits do not queue on one row. `key` is
-- crm_core::dashboard::TallyKey::encode: 'L' kind (live records of a kind), 'W' owner kind
-- (live records of a kind an owner has), 'S' stage (live, not archived deals: count and sum
-- of amounts), 'T' owner due-date (live, open tasks of an owner due that day; the date as
-- the k_due_date column encodes it).
--
-- Written to run again on a populated database with the same outcome (the dashboard tests
-- do, to check that the fill below agrees with the maintained figures).

CREATE TABLE IF NOT EXISTS crm_tally (
    workspace_id uuid NOT NULL,
    key bytea NOT NULL,
    slot smallint NOT NULL,
    n bigint NOT NULL,
    total numeric NOT NULL,
    PRIMARY KEY (workspace_id, key, slot)
);

-- Hot contacts (status 'hot', as k_status encodes it), last seen most recently first.
CREATE INDEX IF NOT EXISTS crm_contact_hot ON crm_contact (workspace_id, k_last_seen, id)
    WHERE k_status = '\x60686f740001'::bytea AND NOT deleted;

-- The activity feed: companies, contacts, deals and notes created, newest first.
CREATE INDEX IF NOT EXISTS crm_audit_activity ON crm_audit (workspace_id, id)
    WHERE action = 'create' AND entity IN (3, 4, 5, 6);

-- The figures of the records stored so far, in slot 0.
DELETE FROM crm_tally;
WITH live AS (
    SELECT workspace_id, '\x03'::bytea AS tag, (data->>'sales_id')::uuid AS owner, data, NULL::bytea AS due
      FROM crm_company WHERE NOT deleted
    UNION ALL SELECT workspace_id, '\x04'::bytea, (data->>'sales_id')::uuid, data, NULL FROM crm_contact WHERE NOT deleted
    UNION ALL SELECT workspace_id, '\x05'::bytea, (data->>'sales_id')::uuid, data, NULL FROM crm_deal WHERE NOT deleted
    UNION ALL SELECT workspace_id, '\x06'::bytea, (data->>'sales_id')::uuid, data, NULL FROM crm_note WHERE NOT deleted
    UNION ALL SELECT workspace_id, '\x07'::bytea, (data->>'owner_id')::uuid, data, k_due_date FROM crm_task WHERE NOT deleted
    UNION ALL SELECT workspace_id, '\x08'::bytea, NULL::uuid, data, NULL FROM crm_tag WHERE NOT deleted
), contributions AS (
    SELECT workspace_id, '\x4c'::bytea || tag AS key, 0::numeric AS amount FROM live
    UNION ALL
    SELECT workspace_id, '\x57'::bytea || uuid_send(owner) || tag, 0 FROM live WHERE owner IS NOT NULL
    UNION ALL
    SELECT workspace_id, '\x53'::bytea || convert_to(data->>'stage', 'UTF8'), (data->>'amount')::numeric
      FROM live WHERE tag = '\x05'::bytea AND data->>'archived_at' IS NULL
    UNION ALL
    SELECT workspace_id, '\x54'::bytea || uuid_send(owner) || due, 0
      FROM live WHERE tag = '\x07'::bytea AND NOT (data->>'completed')::boolean
)
INSERT INTO crm_tally (workspace_id, key, slot, n, total)
SELECT workspace_id, key, 0, count(*), sum(amount) FROM contributions GROUP BY workspace_id, key;
