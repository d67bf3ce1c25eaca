WITH
__auditpgx_pre0 AS (SELECT "a"."id" AS __auditpgx_k1, "a"."v" AS __auditpgx_o1, "a".tableoid AS __auditpgx_t FROM a WHERE id = 1 FOR UPDATE OF a),
__auditpgx_w0 AS (UPDATE a SET v = 'x' FROM __auditpgx_pre0 WHERE ("a"."id" = __auditpgx_pre0.__auditpgx_k1 AND "a".tableoid = __auditpgx_pre0.__auditpgx_t) RETURNING "a"."id" AS __auditpgx_k1, CASE WHEN __auditpgx_pre0.__auditpgx_o1::pg_catalog.text COLLATE "C" IS DISTINCT FROM "a"."v"::pg_catalog.text COLLATE "C" THEN jsonb_build_object('v', jsonb_build_array(__auditpgx_pre0.__auditpgx_o1, "a"."v")) ELSE '{}'::jsonb END AS __auditpgx_ch, CASE WHEN '"a"'::pg_catalog.regclass = <oid>::pg_catalog.oid THEN true ELSE ('"a"'::pg_catalog.regclass::text || ' auditpgx: table changed')::int > 0 END AS __auditpgx_fresh, (false AND EXISTS (SELECT "a".*
  UNION ALL SELECT "a"."id", "a"."v")) AS __auditpgx_shape),
__auditpgx_e AS (INSERT INTO "auditpgx_entry" (created, created_by, operation, table_name, object_id, changes, tx_id, statement_fingerprint, related_table_name, related_object_id, related_field_name, context) SELECT statement_timestamp(), <actor>, 'update', 'a', d.__auditpgx_k1::text, jsonb_build_object('added_fields', '{}'::jsonb, 'removed_fields', '{}'::jsonb, 'changed_fields', (d.__auditpgx_ch)), pg_current_xact_id()::text::bigint, 'ab638d4879f17770', NULL, NULL, NULL, <context> FROM __auditpgx_w0 d WHERE d.__auditpgx_ch <> '{}'::jsonb)
SELECT FROM __auditpgx_w0;

INSERT INTO plain_log VALUES (1, 'note');

WITH
__auditpgx_w0 AS (DELETE FROM b WHERE id = 1 RETURNING "b"."id" AS __auditpgx_k1, jsonb_build_object('id', "b"."id", 'v', "b"."v") AS __auditpgx_old, CASE WHEN '"b"'::pg_catalog.regclass = <oid>::pg_catalog.oid THEN true ELSE ('"b"'::pg_catalog.regclass::text || ' auditpgx: table changed')::int > 0 END AS __auditpgx_fresh, (false AND EXISTS (SELECT "b".*
  UNION ALL SELECT "b"."id", "b"."v")) AS __auditpgx_shape),
__auditpgx_e AS (INSERT INTO "auditpgx_entry" (created, created_by, operation, table_name, object_id, changes, tx_id, statement_fingerprint, related_table_name, related_object_id, related_field_name, context) SELECT statement_timestamp(), <actor>, 'delete', 'b', d.__auditpgx_k1::text, jsonb_build_object('added_fields', '{}'::jsonb, 'removed_fields', d.__auditpgx_old, 'changed_fields', '{}'::jsonb), pg_current_xact_id()::text::bigint, '515c69dc1d7a2f14', NULL, NULL, NULL, <context> FROM __auditpgx_w0 d)
SELECT FROM __auditpgx_w0
