INSERT INTO "auditpgx_entry" (created, created_by, operation, table_name, object_id, changes, tx_id, statement_fingerprint, related_table_name, related_object_id, related_field_name, context) VALUES (statement_timestamp(), <actor>, 'truncate', 'events', '', NULL::jsonb, pg_current_xact_id()::text::bigint, '1c0d7c1fd2c71248', NULL, NULL, NULL, <context>);

TRUNCATE events_2024
