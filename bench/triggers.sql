-- Audit triggers for the benchmark's trigger variants. They write the entry
-- format auditpgx writes, with the same diff, exclusions and redaction, into
-- auditpgx_entry found through the search_path, and read the actor from the
-- setting auditbench.actor (NULL when unset or empty). They are generic: one
-- function serves any table with a single-column primary key, configured by
-- the trigger's arguments (primary key column, excluded columns, redacted
-- columns):
--
--   CREATE TRIGGER account_audit AFTER INSERT OR UPDATE OR DELETE ON account
--       FOR EACH ROW EXECUTE FUNCTION auditbench_row('id', '{updated_at}', '{password_hash}');
--
-- statement_fingerprint is left NULL.

-- auditbench_row is an AFTER ROW trigger in the style of supa_audit: the
-- row images are to_jsonb(OLD) and to_jsonb(NEW) less the excluded columns,
-- and an update's changed_fields lists the keys whose values differ.
CREATE OR REPLACE FUNCTION auditbench_row() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    pk       text   := TG_ARGV[0];
    excluded text[] := TG_ARGV[1]::text[];
    redacted text[] := TG_ARGV[2]::text[];
    old_img  jsonb;
    new_img  jsonb;
    img      jsonb;
    changed  jsonb;
    changes  jsonb;
    op       text;
    col      text;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        old_img := to_jsonb(OLD) - excluded;
        new_img := to_jsonb(NEW) - excluded;
        SELECT coalesce(jsonb_object_agg(n.key,
                   CASE WHEN n.key = ANY (redacted) THEN '["$encrypted$", "$encrypted$"]'::jsonb
                        ELSE jsonb_build_array(old_img -> n.key, n.value) END), '{}'::jsonb)
          INTO changed
          FROM jsonb_each(new_img) n
         WHERE old_img -> n.key IS DISTINCT FROM n.value;
        IF changed = '{}'::jsonb THEN
            RETURN NULL;
        END IF;
        op := 'update';
        img := new_img;
        changes := jsonb_build_object('added_fields', '{}'::jsonb, 'removed_fields', '{}'::jsonb, 'changed_fields', changed);
    ELSE
        IF TG_OP = 'INSERT' THEN
            op := 'create';
            img := to_jsonb(NEW) - excluded;
        ELSE
            op := 'delete';
            img := to_jsonb(OLD) - excluded;
        END IF;
        changes := img;
        FOREACH col IN ARRAY redacted LOOP
            changes := jsonb_set(changes, ARRAY[col], '"$encrypted$"'::jsonb);
        END LOOP;
        IF op = 'create' THEN
            changes := jsonb_build_object('added_fields', changes, 'removed_fields', '{}'::jsonb, 'changed_fields', '{}'::jsonb);
        ELSE
            changes := jsonb_build_object('added_fields', '{}'::jsonb, 'removed_fields', changes, 'changed_fields', '{}'::jsonb);
        END IF;
    END IF;
    INSERT INTO auditpgx_entry (created, created_by, operation, table_name, object_id, changes, tx_id)
    VALUES (statement_timestamp(), nullif(current_setting('auditbench.actor', true), ''), op, TG_TABLE_NAME,
            img ->> pk, changes, pg_current_xact_id()::text::bigint);
    RETURN NULL;
END
$$;

-- auditbench_stmt is an AFTER STATEMENT trigger over transition tables, in
-- the style of django-pghistory's statement mode: one INSERT ... SELECT
-- writes every entry of the statement, and an update joins the old and new
-- transition tables by primary key. A transition table can serve only one
-- event, so a table gets three triggers:
--
--   CREATE TRIGGER account_audit_i AFTER INSERT ON account REFERENCING NEW TABLE AS new_table
--       FOR EACH STATEMENT EXECUTE FUNCTION auditbench_stmt('id', '{updated_at}', '{password_hash}');
--   (likewise for UPDATE with OLD TABLE AS old_table NEW TABLE AS new_table,
--    and DELETE with OLD TABLE AS old_table)
CREATE OR REPLACE FUNCTION auditbench_stmt() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    pk        text   := TG_ARGV[0];
    excluded  text[] := TG_ARGV[1]::text[];
    redacted  text[] := TG_ARGV[2]::text[];
    actor     text   := nullif(current_setting('auditbench.actor', true), '');
    masked    jsonb;
BEGIN
    SELECT coalesce(jsonb_object_agg(r, '$encrypted$'::text), '{}'::jsonb) INTO masked FROM unnest(redacted) r;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO auditpgx_entry (created, created_by, operation, table_name, object_id, changes, tx_id)
        SELECT statement_timestamp(), actor, 'create', TG_TABLE_NAME, s.img ->> pk,
               jsonb_build_object('added_fields', s.img || masked, 'removed_fields', '{}'::jsonb, 'changed_fields', '{}'::jsonb),
               pg_current_xact_id()::text::bigint
          FROM (SELECT to_jsonb(n) - excluded AS img FROM new_table n) s;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO auditpgx_entry (created, created_by, operation, table_name, object_id, changes, tx_id)
        SELECT statement_timestamp(), actor, 'delete', TG_TABLE_NAME, s.img ->> pk,
               jsonb_build_object('added_fields', '{}'::jsonb, 'removed_fields', s.img || masked, 'changed_fields', '{}'::jsonb),
               pg_current_xact_id()::text::bigint
          FROM (SELECT to_jsonb(o) - excluded AS img FROM old_table o) s;
    ELSE
        INSERT INTO auditpgx_entry (created, created_by, operation, table_name, object_id, changes, tx_id)
        SELECT statement_timestamp(), actor, 'update', TG_TABLE_NAME, d.k,
               jsonb_build_object('added_fields', '{}'::jsonb, 'removed_fields', '{}'::jsonb, 'changed_fields', d.changed),
               pg_current_xact_id()::text::bigint
          FROM (SELECT n.img ->> pk AS k,
                       (SELECT coalesce(jsonb_object_agg(e.key,
                                   CASE WHEN e.key = ANY (redacted) THEN '["$encrypted$", "$encrypted$"]'::jsonb
                                        ELSE jsonb_build_array(o.img -> e.key, e.value) END), '{}'::jsonb)
                          FROM jsonb_each(n.img) e
                         WHERE o.img -> e.key IS DISTINCT FROM e.value) AS changed
                  FROM (SELECT to_jsonb(t) - excluded AS img FROM old_table t) o
                  JOIN (SELECT to_jsonb(t) - excluded AS img FROM new_table t) n ON n.img -> pk = o.img -> pk) d
         WHERE d.changed <> '{}'::jsonb;
    END IF;
    RETURN NULL;
END
$$;
