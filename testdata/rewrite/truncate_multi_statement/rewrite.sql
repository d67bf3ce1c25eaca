WITH
__auditpgx_w0 AS (DELETE FROM users WHERE id = 1 RETURNING "users"."id" AS __auditpgx_k1, jsonb_build_object('id', "users"."id", 'name', "users"."name", 'email', "users"."email", 'pw', '$encrypted$'::text) AS __auditpgx_old, CASE WHEN '"users"'::pg_catalog.regclass = <oid>::pg_catalog.oid THEN true ELSE ('"users"'::pg_catalog.regclass::text || ' auditpgx: table changed')::int > 0 END AS __auditpgx_fresh, (false AND EXISTS (SELECT "users".*
  UNION ALL SELECT "users"."id", "users"."name", "users"."email", "users"."pw", "users"."last_login")) AS __auditpgx_shape),
__auditpgx_e AS (INSERT INTO "auditpgx_entry" (created, created_by, operation, table_name, object_id, changes, tx_id, statement_fingerprint, related_table_name, related_object_id, related_field_name, context) SELECT statement_timestamp(), <actor>, 'delete', 'users', d.__auditpgx_k1::text, jsonb_build_object('added_fields', '{}'::jsonb, 'removed_fields', d.__auditpgx_old, 'changed_fields', '{}'::jsonb), pg_current_xact_id()::text::bigint, '1f7a7fc372211e14', NULL, NULL, NULL, <context> FROM __auditpgx_w0 d)
SELECT FROM __auditpgx_w0;

INSERT INTO "auditpgx_entry" (created, created_by, operation, table_name, object_id, changes, tx_id, statement_fingerprint, related_table_name, related_object_id, related_field_name, context) VALUES (statement_timestamp(), <actor>, 'truncate', 'users', '', NULL::jsonb, pg_current_xact_id()::text::bigint, 'dab9ca282644940e', NULL, NULL, NULL, <context>);

TRUNCATE TABLE ONLY users -- all gone
;

WITH
__auditpgx_w0 AS (INSERT INTO users (name) VALUES ('Neo') RETURNING "users"."id" AS __auditpgx_k1, jsonb_build_object('id', "users"."id", 'name', "users"."name", 'email', "users"."email", 'pw', '$encrypted$'::text) AS __auditpgx_new, CASE WHEN '"users"'::pg_catalog.regclass = <oid>::pg_catalog.oid THEN true ELSE ('"users"'::pg_catalog.regclass::text || ' auditpgx: table changed')::int > 0 END AS __auditpgx_fresh, (false AND EXISTS (SELECT "users".*
  UNION ALL SELECT "users"."id", "users"."name", "users"."email", "users"."pw", "users"."last_login")) AS __auditpgx_shape),
__auditpgx_e AS (INSERT INTO "auditpgx_entry" (created, created_by, operation, table_name, object_id, changes, tx_id, statement_fingerprint, related_table_name, related_object_id, related_field_name, context) SELECT statement_timestamp(), <actor>, 'create', 'users', d.__auditpgx_k1::text, jsonb_build_object('added_fields', d.__auditpgx_new, 'removed_fields', '{}'::jsonb, 'changed_fields', '{}'::jsonb), pg_current_xact_id()::text::bigint, '4ec758982b73189a', NULL, NULL, NULL, <context> FROM __auditpgx_w0 d)
SELECT FROM __auditpgx_w0
