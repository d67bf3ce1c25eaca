INSERT INTO "auditpgx_entry" (created, created_by, operation, table_name, object_id, changes, tx_id, statement_fingerprint, related_table_name, related_object_id, related_field_name, context) VALUES (statement_timestamp(), <actor>, 'truncate', 'users', '', NULL::jsonb, pg_current_xact_id()::text::bigint, 'c92a7e7762240e3a', NULL, NULL, NULL, <context>);

TRUNCATE users RESTART IDENTITY
