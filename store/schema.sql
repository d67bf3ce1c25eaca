-- auditpgx entry table. auditpgx.Migrate runs this same DDL (with the table
-- name substituted when a custom one is configured); it is idempotent.
CREATE TABLE IF NOT EXISTS auditpgx_entry (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created               timestamptz NOT NULL DEFAULT statement_timestamp(),
    created_by            text,
    operation             text NOT NULL CHECK (operation IN ('create', 'update', 'delete', 'associate', 'disassociate', 'truncate', 'snapshot', 'suppressed')),
    table_name            text NOT NULL,
    object_id             text NOT NULL,
    changes               jsonb,
    related_table_name    text,
    related_object_id     text,
    related_field_name    text,
    tx_id                 bigint NOT NULL,
    statement_fingerprint text,
    context               jsonb
);
ALTER TABLE auditpgx_entry ADD COLUMN IF NOT EXISTS context jsonb;
CREATE INDEX IF NOT EXISTS auditpgx_entry_object_idx ON auditpgx_entry (table_name, object_id, id);
CREATE INDEX IF NOT EXISTS auditpgx_entry_created_idx ON auditpgx_entry (created);
CREATE INDEX IF NOT EXISTS auditpgx_entry_tx_idx ON auditpgx_entry (tx_id);
CREATE INDEX IF NOT EXISTS auditpgx_entry_actor_idx ON auditpgx_entry (created_by, id);
CREATE INDEX IF NOT EXISTS auditpgx_entry_related_idx ON auditpgx_entry (related_table_name, related_object_id, id) WHERE related_table_name IS NOT NULL;
CREATE INDEX IF NOT EXISTS auditpgx_entry_changes_idx ON auditpgx_entry USING gin (changes jsonb_path_ops, context jsonb_path_ops);
