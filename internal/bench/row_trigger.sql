-- auditbench_row is a generic AFTER ROW audit trigger in the style of
-- supa_audit: the row images are to_jsonb(OLD) and to_jsonb(NEW) less the
-- excluded columns, and an update's changed_fields lists the keys whose
-- values differ. It writes the entry format auditpgx writes, with the same
-- diff, exclusions and redaction, into the auditpgx_entry that the
-- search_path finds, and reads the actor from the setting auditbench.actor
-- (NULL when unset or empty). statement_fingerprint is left NULL.
--
-- It serves any table with a single-column key, configured by the
-- trigger's arguments (key column, excluded columns, redacted columns):
--
--   CREATE TRIGGER account_audit AFTER INSERT OR UPDATE OR DELETE ON account
--       FOR EACH ROW EXECUTE FUNCTION auditbench_row('id', '{updated_at}', '{password_hash}');
CREATE FUNCTION auditbench_row() RETURNS trigger
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
