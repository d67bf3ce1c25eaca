package pgxsuite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// instrumentSQL records committed row changes of audited tables, and
// each statement after which its transaction's entries do not match its row
// changes, for Verify.
//
// An event trigger gives each new table (temporary ones too: the suite
// creates most of its tables so) named in auditpgxsuite_audited two AFTER
// triggers: per row, appending (tx, table, operation) to
// auditpgxsuite_change, counting an UPDATE only when to_jsonb of the row
// changes, since auditpgx writes no entry for one that changes nothing; per
// statement, comparing the transaction's changes and entries so far (the
// statement's own entries are written before its AFTER triggers fire) and
// logging each new difference to auditpgxsuite_mismatch, through dblink
// where available so that the row outlives a rollback.
//
// With add_pk, the event trigger also makes the first NOT NULL column of a
// keyless table its primary key (a constraint, no column: queries see the
// same rows), so that auditpgx, which requires one, audits its writes.
const instrumentSQL = `
CREATE TABLE public.auditpgxsuite_audited (table_name text PRIMARY KEY, add_pk boolean NOT NULL);

CREATE TABLE public.auditpgxsuite_change (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at         timestamptz NOT NULL DEFAULT clock_timestamp(),
	tx_id      bigint NOT NULL DEFAULT pg_current_xact_id()::text::bigint,
	table_name text NOT NULL,
	operation  text NOT NULL
);
CREATE INDEX ON public.auditpgxsuite_change (tx_id);

CREATE TABLE public.auditpgxsuite_mismatch (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at         timestamptz NOT NULL,
	tx_id      bigint NOT NULL,
	table_name text NOT NULL,
	operation  text NOT NULL,
	changes    bigint NOT NULL,
	entries    bigint NOT NULL,
	query      text
);

CREATE FUNCTION public.auditpgxsuite_row() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
	IF TG_OP = 'UPDATE' AND to_jsonb(OLD) IS NOT DISTINCT FROM to_jsonb(NEW) THEN
		RETURN NULL;
	END IF;
	INSERT INTO public.auditpgxsuite_change (table_name, operation)
	VALUES (TG_TABLE_NAME, CASE TG_OP WHEN 'INSERT' THEN 'create' WHEN 'UPDATE' THEN 'update' ELSE 'delete' END);
	RETURN NULL;
END
$f$;

CREATE FUNCTION public.auditpgxsuite_stmt() RETURNS trigger LANGUAGE plpgsql AS $f$
DECLARE
	op   text := CASE TG_OP WHEN 'INSERT' THEN 'create' WHEN 'UPDATE' THEN 'update' ELSE 'delete' END;
	tx   bigint := pg_current_xact_id_if_assigned()::text::bigint;
	key  text := 'auditpgxsuite.d_' || md5(TG_TABLE_NAME || '/' || op);
	nc   bigint;
	ne   bigint;
	prev text;
BEGIN
	IF tx IS NULL THEN -- nothing written in this transaction
		RETURN NULL;
	END IF;
	SELECT count(*) INTO nc FROM public.auditpgxsuite_change c
	WHERE c.tx_id = tx AND c.table_name = TG_TABLE_NAME AND c.operation = op;
	SELECT count(*) INTO ne FROM public.auditpgx_entry e
	WHERE e.tx_id = tx AND e.table_name = TG_TABLE_NAME AND e.operation = op;
	-- The difference last logged in this transaction (a transaction-local
	-- setting, undone with the transaction or savepoint), so that each
	-- statement that changes it is logged once.
	prev := coalesce(nullif(current_setting(key, true), ''), '0');
	IF (nc - ne)::text <> prev THEN
		PERFORM set_config(key, (nc - ne)::text, true);
		IF nc <> ne THEN
			PERFORM public.auditpgxsuite_log(tx, TG_TABLE_NAME, op, nc, ne, left(current_query(), 500));
		END IF;
	END IF;
	RETURN NULL;
END
$f$;

CREATE FUNCTION public.auditpgxsuite_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $f$
DECLARE
	r   record;
	col name;
BEGIN
	FOR r IN
		SELECT c.oid, n.nspname, c.relname, a.add_pk
		FROM pg_event_trigger_ddl_commands() d
		JOIN pg_catalog.pg_class c ON c.oid = d.objid
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		JOIN public.auditpgxsuite_audited a ON a.table_name = c.relname
		WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0
		  AND c.relkind IN ('r', 'p')
	LOOP
		IF r.add_pk AND NOT EXISTS (SELECT FROM pg_catalog.pg_index i WHERE i.indrelid = r.oid AND i.indisprimary) THEN
			SELECT a.attname INTO col FROM pg_catalog.pg_attribute a
			WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull
			ORDER BY a.attnum LIMIT 1;
			IF col IS NOT NULL THEN
				BEGIN -- a column whose type has no btree operator class (json) cannot be the key
					EXECUTE format('ALTER TABLE %I.%I ADD PRIMARY KEY (%I)', r.nspname, r.relname, col);
				EXCEPTION WHEN OTHERS THEN
					NULL;
				END;
			END IF;
		END IF;
		EXECUTE format('CREATE TRIGGER auditpgxsuite_row AFTER INSERT OR UPDATE OR DELETE ON %I.%I '
			'FOR EACH ROW EXECUTE FUNCTION public.auditpgxsuite_row()', r.nspname, r.relname);
		EXECUTE format('CREATE TRIGGER auditpgxsuite_stmt AFTER INSERT OR UPDATE OR DELETE ON %I.%I '
			'FOR EACH STATEMENT EXECUTE FUNCTION public.auditpgxsuite_stmt()', r.nspname, r.relname);
	END LOOP;
END
$f$;

CREATE EVENT TRIGGER auditpgxsuite_ddl ON ddl_command_end
	WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
	EXECUTE FUNCTION public.auditpgxsuite_ddl();
`

// logViaDBLink writes a mismatch row through a dblink session of its own;
// %s is the libpq connection string, as a SQL literal.
const logViaDBLink = `
CREATE FUNCTION public.auditpgxsuite_log(tx bigint, tbl text, op text, nc bigint, ne bigint, q text)
RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
	IF NOT coalesce('auditpgxsuite' = ANY (public.dblink_get_connections()), false) THEN
		PERFORM public.dblink_connect('auditpgxsuite', %s);
	END IF;
	PERFORM public.dblink_exec('auditpgxsuite', format(
		'INSERT INTO public.auditpgxsuite_mismatch (at, tx_id, table_name, operation, changes, entries, query) '
		'VALUES (%%L, %%s, %%L, %%L, %%s, %%s, %%L)', clock_timestamp(), tx, tbl, op, nc, ne, q));
END
$f$;
`

// logInTransaction is the fallback without dblink.
const logInTransaction = `
CREATE FUNCTION public.auditpgxsuite_log(tx bigint, tbl text, op text, nc bigint, ne bigint, q text)
RETURNS void LANGUAGE sql AS $f$
	INSERT INTO public.auditpgxsuite_mismatch (at, tx_id, table_name, operation, changes, entries, query)
	VALUES (clock_timestamp(), tx, tbl, op, nc, ne, q)
$f$;
`

// Instrument installs the instrumentation in db's database, as a superuser
// (event triggers, dblink), for tables (with addPK, keyed where keyless).
// libpqConn is how dblink reaches the same database. It reports whether
// mismatches are logged through dblink, and so survive rollbacks.
func Instrument(ctx context.Context, db *sql.DB, tables []string, addPK bool, libpqConn string) (dblink bool, err error) {
	if _, err := db.ExecContext(ctx, instrumentSQL); err != nil {
		return false, fmt.Errorf("pgxsuite: instrumenting the database: %w", err)
	}
	for _, t := range tables {
		if _, err := db.ExecContext(ctx, `INSERT INTO public.auditpgxsuite_audited VALUES ($1, $2)`, t, addPK); err != nil {
			return false, err
		}
	}
	err = db.QueryRowContext(ctx, `SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'dblink')`).Scan(&dblink)
	if err != nil {
		return false, err
	}
	logFunc := logInTransaction
	if dblink {
		if _, err := db.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS dblink SCHEMA public`); err != nil {
			return false, fmt.Errorf("pgxsuite: creating extension dblink: %w", err)
		}
		logFunc = fmt.Sprintf(logViaDBLink, "'"+strings.ReplaceAll(libpqConn, "'", "''")+"'")
	}
	if _, err := db.ExecContext(ctx, logFunc); err != nil {
		return false, fmt.Errorf("pgxsuite: creating auditpgxsuite_log: %w", err)
	}
	return dblink, nil
}

// Mismatch is a difference between a transaction's row changes of a table
// and its entries for it.
type Mismatch struct {
	At        time.Time
	TxID      int64
	Table     string
	Operation string // create, update or delete
	Changes   int64
	Entries   int64
	Query     string // the statement after which it was seen ("" for the committed check)
	Status    string // of the transaction: committed, aborted, in progress
}

func (m Mismatch) String() string {
	s := fmt.Sprintf("%s %s: %d row change(s), %d entries (tx %d, %s)", m.Table, m.Operation, m.Changes, m.Entries, m.TxID, m.Status)
	if m.Query != "" {
		s += "; after: " + oneLine(m.Query, 240)
	}
	return s
}

// Verification is what Verify found.
type Verification struct {
	// Statements are the logged statement mismatches, of any transaction.
	Statements []Mismatch
	// Committed are the differences between committed row changes and
	// entries, by transaction, table and operation, that no statement
	// mismatch explains.
	Committed []Mismatch
	// Changes and Entries count committed row changes and entries by
	// "table operation".
	Changes, Entries map[string]int64
}

// Verify compares the entry table with the recorded row changes.
func Verify(ctx context.Context, db *sql.DB) (*Verification, error) {
	v := &Verification{Changes: map[string]int64{}, Entries: map[string]int64{}}
	type key struct {
		tx       int64
		table, o string
	}
	seen := map[key]bool{}
	rows, err := db.QueryContext(ctx, `
SELECT at, tx_id, table_name, operation, changes, entries, coalesce(query, ''),
       coalesce(pg_xact_status(tx_id::text::xid8), 'unknown')
FROM public.auditpgxsuite_mismatch ORDER BY id`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var m Mismatch
		if err := rows.Scan(&m.At, &m.TxID, &m.Table, &m.Operation, &m.Changes, &m.Entries, &m.Query, &m.Status); err != nil {
			rows.Close()
			return nil, err
		}
		v.Statements = append(v.Statements, m)
		seen[key{m.TxID, m.Table, m.Operation}] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = db.QueryContext(ctx, `
WITH c AS (SELECT tx_id, table_name, operation, count(*) AS n, min(at) AS at
           FROM public.auditpgxsuite_change GROUP BY 1, 2, 3),
     e AS (SELECT tx_id, table_name, operation, count(*) AS n, min(created) AS at
           FROM public.auditpgx_entry GROUP BY 1, 2, 3)
SELECT tx_id, table_name, operation, coalesce(c.n, 0), coalesce(e.n, 0), coalesce(c.at, e.at)
FROM c FULL JOIN e USING (tx_id, table_name, operation)
ORDER BY 6`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		m := Mismatch{Status: "committed"}
		if err := rows.Scan(&m.TxID, &m.Table, &m.Operation, &m.Changes, &m.Entries, &m.At); err != nil {
			return nil, err
		}
		v.Changes[m.Table+" "+m.Operation] += m.Changes
		v.Entries[m.Table+" "+m.Operation] += m.Entries
		if m.Changes != m.Entries && !seen[key{m.TxID, m.Table, m.Operation}] {
			v.Committed = append(v.Committed, m)
		}
	}
	return v, rows.Err()
}

// oneLine collapses white space and shortens s to at most n bytes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
