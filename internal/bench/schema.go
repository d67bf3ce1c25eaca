package bench

import (
	"fmt"
	"strings"
)

// Table is the audited table every variant writes: a bigint identity key
// and ten columns of mixed types, one excluded from entries and one
// redacted, as an application table registered with
//
//	r.RegisterTable("account", auditpgx.Exclude("updated_at"), auditpgx.Redact("password_hash"))
const Table = "account"

const (
	primaryKey     = "id"
	excludedColumn = "updated_at"
	redactedColumn = "password_hash"
)

// columns are the table's columns after the key, in table order.
var columns = []string{"name", "email", "balance", "active", "score", "tags", "meta", "created_at", "password_hash", "updated_at"}

// columnTypeOIDs are the type OIDs (pg_attribute.atttypid) of the key and
// columns, in table order, as auditpgx's catalog description holds them:
// bigint, text, text, numeric, boolean, integer, text[], jsonb, timestamptz,
// text, timestamptz.
var columnTypeOIDs = []uint32{20, 25, 25, 1700, 16, 23, 1009, 3802, 1184, 25, 1184}

// typeOIDOf returns the type OID of the key or a column, from
// columnTypeOIDs.
func typeOIDOf(col string) uint32 {
	if col == primaryKey {
		return columnTypeOIDs[0]
	}
	for i, c := range columns {
		if c == col {
			return columnTypeOIDs[i+1]
		}
	}
	panic("bench: no column " + col)
}

const tableDDL = `CREATE TABLE account (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL,
    email         text NOT NULL,
    balance       numeric(12,2) NOT NULL DEFAULT 0,
    active        boolean NOT NULL DEFAULT true,
    score         integer,
    tags          text[],
    meta          jsonb,
    created_at    timestamptz NOT NULL,
    password_hash text,
    updated_at    timestamptz NOT NULL DEFAULT now()
)`

// seedSQL fills the table with rows 1..$1, the same in every variant: the
// values depend only on the row's number.
const seedSQL = `INSERT INTO account (name, email, balance, active, score, tags, meta, created_at, password_hash, updated_at)
SELECT 'user ' || g, 'user' || g || '@example.com', (g % 1000) * 1.25, g % 3 <> 0,
       CASE WHEN g % 10 = 0 THEN NULL ELSE g % 97 END,
       ARRAY['t' || (g % 5), 'seed'], jsonb_build_object('plan', 'p' || (g % 4), 'n', g),
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute', md5(g::text),
       timestamptz '2024-06-01 00:00:00+00'
FROM generate_series(1, $1::int) g`

// auditedColumns are the columns entries record: all but the excluded one.
func auditedColumns() []string {
	out := []string{primaryKey}
	for _, c := range columns {
		if c != excludedColumn {
			out = append(out, c)
		}
	}
	return out
}

// rowTriggerDDL attaches the generic row trigger of triggers.sql.
func rowTriggerDDL() string {
	return fmt.Sprintf(`CREATE TRIGGER account_audit AFTER INSERT OR UPDATE OR DELETE ON account
    FOR EACH ROW EXECUTE FUNCTION auditbench_row('%s', '{%s}', '{%s}')`, primaryKey, excludedColumn, redactedColumn)
}

// statementTriggerDDL returns the statement-level audit function for the
// table and its three triggers, in the style of django-pghistory, which
// generates each model's trigger SQL from its fields: the columns are
// written out, so the images are never built as whole-row jsonb, and an
// update joins the transition tables on the key column. The diff is the
// same per-column jsonb comparison the entries specify.
//
// jit is turned off for the function: the planner cannot estimate the join
// of two transition tables (it guesses rows² / 2) and would otherwise spend
// about 0.4 s compiling the 100,000-row INSERT, which no careful trigger
// author would leave in place.
func statementTriggerDDL() string {
	cols := auditedColumns()
	image := func(ref string) string {
		var parts []string
		for _, c := range cols {
			v := ref + "." + c
			if c == redactedColumn {
				v = `'$encrypted$'::text`
			}
			parts = append(parts, "'"+c+"', "+v)
		}
		return "jsonb_build_object(" + strings.Join(parts, ", ") + ")"
	}
	var changed []string
	for _, c := range cols {
		o, n := "to_jsonb(o."+c+")", "to_jsonb(n."+c+")"
		then := "jsonb_build_object('" + c + "', jsonb_build_array(" + o + ", " + n + "))"
		if c == redactedColumn {
			then = `'{"` + c + `": ["$encrypted$", "$encrypted$"]}'::jsonb`
		}
		changed = append(changed, "CASE WHEN "+o+" IS DISTINCT FROM "+n+" THEN "+then+" ELSE '{}'::jsonb END")
	}
	const insert = `INSERT INTO auditpgx_entry (created, created_by, operation, table_name, object_id, changes, tx_id)`
	return `CREATE FUNCTION account_audit_stmt() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    actor text := nullif(current_setting('auditbench.actor', true), '');
BEGIN
    IF TG_OP = 'INSERT' THEN
        ` + insert + `
        SELECT statement_timestamp(), actor, 'create', 'account', n.id::text,
               jsonb_build_object('added_fields', ` + image("n") + `, 'removed_fields', '{}'::jsonb, 'changed_fields', '{}'::jsonb),
               pg_current_xact_id()::text::bigint
          FROM new_table n;
    ELSIF TG_OP = 'DELETE' THEN
        ` + insert + `
        SELECT statement_timestamp(), actor, 'delete', 'account', o.id::text,
               jsonb_build_object('added_fields', '{}'::jsonb, 'removed_fields', ` + image("o") + `, 'changed_fields', '{}'::jsonb),
               pg_current_xact_id()::text::bigint
          FROM old_table o;
    ELSE
        ` + insert + `
        SELECT statement_timestamp(), actor, 'update', 'account', d.id::text,
               jsonb_build_object('added_fields', '{}'::jsonb, 'removed_fields', '{}'::jsonb, 'changed_fields', d.changed),
               pg_current_xact_id()::text::bigint
          FROM (SELECT n.id, ` + strings.Join(changed, "\n                    || ") + ` AS changed
                  FROM old_table o JOIN new_table n USING (id)
                OFFSET 0) d
         WHERE d.changed <> '{}'::jsonb;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER account_audit_i AFTER INSERT ON account REFERENCING NEW TABLE AS new_table
    FOR EACH STATEMENT EXECUTE FUNCTION account_audit_stmt();
CREATE TRIGGER account_audit_u AFTER UPDATE ON account REFERENCING OLD TABLE AS old_table NEW TABLE AS new_table
    FOR EACH STATEMENT EXECUTE FUNCTION account_audit_stmt();
CREATE TRIGGER account_audit_d AFTER DELETE ON account REFERENCING OLD TABLE AS old_table
    FOR EACH STATEMENT EXECUTE FUNCTION account_audit_stmt();`
}
