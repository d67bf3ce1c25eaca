WITH
__auditpgx_w0 AS (INSERT INTO a VALUES (4, 'four') RETURNING "a"."id" AS __auditpgx_k1, jsonb_build_object('id', "a"."id", 'v', "a"."v") AS __auditpgx_new, CASE WHEN '"a"'::pg_catalog.regclass = <oid>::pg_catalog.oid THEN true ELSE ('"a"'::pg_catalog.regclass::text || ' auditpgx: table changed')::int > 0 END AS __auditpgx_fresh, (false AND EXISTS (SELECT "a".*
  UNION ALL SELECT "a"."id", "a"."v")) AS __auditpgx_shape),
__auditpgx_e AS (INSERT INTO "auditpgx_entry" (created, created_by, operation, table_name, object_id, changes, tx_id, statement_fingerprint, related_table_name, related_object_id, related_field_name, context) SELECT statement_timestamp(), <actor>, 'create', 'a', d.__auditpgx_k1::text, jsonb_build_object('added_fields', d.__auditpgx_new, 'removed_fields', '{}'::jsonb, 'changed_fields', '{}'::jsonb), pg_current_xact_id()::text::bigint, '4295df5de29b2f48', NULL, NULL, NULL, <context> FROM __auditpgx_w0 d)
SELECT FROM __auditpgx_w0;

SELECT count(*) AS n FROM a
