package auditpgx_test

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/store"
)

func TestRefusalsChangeNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersDDL+`INSERT INTO users (name) VALUES ('a'), ('b');`, registerUsers)
	for _, q := range []string{
		`UPDATE users SET name = 'x' WHERE`,                 // cannot be parsed
		`UPDATE users SET name = $1 WHERE id = 1; SELECT 1`, // several statements with parameters
		`TRUNCATE users`,
		`COPY users FROM STDIN`,
		`SELECT (WITH d AS (DELETE FROM users RETURNING *) SELECT count(*) FROM d)`,
		`EXPLAIN ANALYZE DELETE FROM users`,
	} {
		_, err := e.db.ExecContext(e.ctx, q)
		require.ErrorIs(t, err, auditpgx.ErrUnaudited, q)
		require.Contains(t, err.Error(), `"users"`, q)
		_, err = e.db.QueryContext(e.ctx, q)
		require.ErrorIs(t, err, auditpgx.ErrUnaudited, q)
	}
	var names string
	require.NoError(t, e.plain.QueryRow(`SELECT string_agg(name, ',' ORDER BY id) FROM users`).Scan(&names))
	require.Equal(t, "a,b", names)
	require.Equal(t, 0, e.countEntries())
}

func TestEntryTableIsAppendOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersDDL, registerUsers)
	_, err := e.db.ExecContext(e.ctx, `INSERT INTO users (name) VALUES ('a')`)
	require.NoError(t, err)
	for _, q := range []string{
		`UPDATE auditpgx_entry SET created_by = 'mallory'`,
		`DELETE FROM auditpgx_entry`,
		`TRUNCATE auditpgx_entry`,
		`DROP TABLE auditpgx_entry`,
		`ALTER TABLE auditpgx_entry DROP COLUMN changes`,
		`INSERT INTO auditpgx_entry (operation, table_name, object_id, tx_id) VALUES ('create', 'users', '9', 1)`,
		`WITH x AS (DELETE FROM auditpgx_entry RETURNING 1) SELECT 1`,
	} {
		_, err := e.db.ExecContext(e.ctx, q)
		require.ErrorIs(t, err, auditpgx.ErrAppendOnly, q)
	}
	require.Equal(t, 1, e.countEntries())
	rows, err := e.db.QueryContext(e.ctx, `SELECT id FROM auditpgx_entry`) // reading is fine
	require.NoError(t, err)
	rows.Close()
}

func TestAllowUnaudited(t *testing.T) {
	t.Parallel()
	dsn, schema := pgtestSchema(t)
	var logs strings.Builder
	e := newEnvDSN(t, dsn, schema, usersDDL+`INSERT INTO users (name, password_hash) VALUES ('a', 'SENTINEL-1');`, nil)
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{AllowUnaudited: true, Logger: textLogger(&logs)})
	require.NoError(t, err)
	require.NoError(t, registerUsers(reg))
	db := openWith(t, dsn, reg)
	_, err = db.ExecContext(e.ctx, `TRUNCATE users`)
	require.NoError(t, err)
	require.Contains(t, logs.String(), "TRUNCATE")
	require.NotContains(t, logs.String(), "SENTINEL")
	_, err = db.ExecContext(e.ctx, `DELETE FROM auditpgx_entry`)
	require.ErrorIs(t, err, auditpgx.ErrAppendOnly)
}

func TestRegistrationErrors(t *testing.T) {
	t.Parallel()
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{})
	require.NoError(t, err)
	require.NoError(t, reg.RegisterTable("users"))
	err = reg.RegisterTable("USERS")
	require.ErrorIs(t, err, auditpgx.ErrInvalidRegistration)
	require.ErrorContains(t, err, "already registered")
	require.ErrorContains(t, reg.RegisterTable("a.b.c.d"), "has 4 dot-separated parts")
	require.ErrorContains(t, reg.RegisterTable("auditpgx_entry"), "entry table")
	require.ErrorContains(t, reg.RegisterTable("x", auditpgx.Exclude("a"), auditpgx.Redact("a")), "both excluded and redacted")

	for _, tc := range []struct {
		name, ddl string
		register  func(*auditpgx.Registry) error
		message   string
	}{
		{"missing table", ``, func(r *auditpgx.Registry) error { return r.RegisterTable("ghosts") }, `table "ghosts" does not exist`},
		{"no primary key", `CREATE TABLE ghosts (a int);`, func(r *auditpgx.Registry) error { return r.RegisterTable("ghosts") }, `table "ghosts" has no primary key`},
		{"missing column", `CREATE TABLE ghosts (a int PRIMARY KEY);`,
			func(r *auditpgx.Registry) error { return r.RegisterTable("ghosts", auditpgx.Redact("pw")) }, `table "ghosts" has no column "pw" (named in Redact)`},
		{"excluded key", `CREATE TABLE ghosts (a int PRIMARY KEY);`,
			func(r *auditpgx.Registry) error { return r.RegisterTable("ghosts", auditpgx.Exclude("a")) }, `column "a" is part of the primary key`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.ddl, tc.register)
			err := auditpgx.Check(e.ctx, e.db, auditpgx.WithRegistry(e.reg))
			require.ErrorIs(t, err, auditpgx.ErrInvalidRegistration)
			require.ErrorContains(t, err, tc.message)
			_, err = e.db.ExecContext(e.ctx, `DELETE FROM ghosts`)
			if tc.ddl == "" {
				// A write to a registered table that does not exist is the
				// server's to answer, as pgx alone would.
				var pgErr *pgconn.PgError
				require.ErrorAs(t, err, &pgErr)
				require.Equal(t, "42P01", pgErr.Code)
				require.NotErrorIs(t, err, auditpgx.ErrInvalidRegistration)
				return
			}
			require.ErrorIs(t, err, auditpgx.ErrInvalidRegistration)
			require.ErrorContains(t, err, tc.message)
		})
	}
}

func TestCustomEntryTableAndQuotedNames(t *testing.T) {
	t.Parallel()
	dsn, schema := pgtestSchema(t)
	e := newEnvDSN(t, dsn, schema, `CREATE SCHEMA `+schema+`_audit; CREATE TABLE "Users" (id int PRIMARY KEY, "Name" text); CREATE TABLE users (id int PRIMARY KEY);`, nil)
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{EntryTable: schema + "_audit.entries"})
	require.NoError(t, err)
	require.NoError(t, reg.RegisterTable(`"Users"`))
	db := openWith(t, dsn, reg)
	require.NoError(t, auditpgx.Migrate(e.ctx, db, auditpgx.WithRegistry(reg)))
	_, err = db.ExecContext(e.ctx, `INSERT INTO "Users" VALUES (1, 'x')`)
	require.NoError(t, err)
	_, err = db.ExecContext(e.ctx, `INSERT INTO users VALUES (1)`) // another table
	require.NoError(t, err)
	var table, changes string
	require.NoError(t, e.plain.QueryRow(`SELECT table_name, changes::text FROM `+schema+`_audit.entries`).Scan(&table, &changes))
	require.Equal(t, `"Users"`, table)
	require.JSONEq(t, `{"added_fields":{"id":1,"Name":"x"},"removed_fields":{},"changed_fields":{}}`, changes)
}

// TestWriteCTEWithoutReturningReferenced: a reference to a writing WITH
// query without RETURNING is an error in PostgreSQL, unless a table of that
// name is meant; auditpgx refuses both rather than tell them apart.
func TestWriteCTEWithoutReturningReferenced(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersDDL+`INSERT INTO users (name) VALUES ('a'); CREATE TABLE w (x int);`, registerUsers)
	for _, q := range []string{
		`WITH d AS (DELETE FROM users) SELECT * FROM d`,
		`WITH a AS (SELECT * FROM w), w AS (DELETE FROM users) SELECT 1`,
	} {
		_, err := e.db.ExecContext(e.ctx, q)
		require.ErrorIs(t, err, auditpgx.ErrUnaudited, q)
	}
	var n int
	require.NoError(t, e.plain.QueryRow(`SELECT count(*) FROM users`).Scan(&n))
	require.Equal(t, 1, n)
}

// TestEntryTableNameReadAsSQL: an entry table name means one table, read
// as SQL reads a table name, wherever it is given — the driver writing
// entries, Migrate creating the table, store reading it back — so that
// `"audit.log"` is one table named audit.log (not log in schema audit)
// and Audit.Entries is audit.entries (not "Audit"."Entries").
func TestEntryTableNameReadAsSQL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(schema string) string // DDL the name needs
		entry func(schema string) string // the configured name
		rel   string                     // the table it must mean
	}{
		{"quoted dot", func(string) string { return "" }, func(string) string { return `"audit.log"` }, "audit.log"},
		{"unquoted capitals", func(s string) string { return `CREATE SCHEMA ` + s + `_audit;` },
			func(s string) string { return strings.ToUpper(s) + `_Audit.Entries` }, "entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dsn, schema := pgtestSchema(t)
			e := newEnvDSN(t, dsn, schema, tc.setup(schema)+usersDDL, nil)
			name := tc.entry(schema)
			reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{EntryTable: name})
			require.NoError(t, err)
			require.NoError(t, reg.RegisterTable("users"))
			db := openWith(t, dsn, reg)
			require.NoError(t, auditpgx.Migrate(e.ctx, db, auditpgx.WithRegistry(reg)))
			require.NoError(t, store.Migrate(e.ctx, e.plain, name), "store.Migrate of the same name")
			_, err = db.ExecContext(e.ctx, `INSERT INTO users (name) VALUES ('a')`)
			require.NoError(t, err)

			// One table of that name was created, and it holds the entry.
			var tables int
			require.NoError(t, e.plain.QueryRow(`SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE c.relkind = 'r' AND n.nspname LIKE $1 || '%' AND c.relname NOT IN ('users', 'auditpgx_entry')`, schema).Scan(&tables))
			require.Equal(t, 1, tables)
			var rel string
			require.NoError(t, e.plain.QueryRow(`SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE c.relkind = 'r' AND n.nspname LIKE $1 || '%' AND c.relname NOT IN ('users', 'auditpgx_entry')`, schema).Scan(&rel))
			require.Equal(t, tc.rel, rel)

			entries, err := store.List(e.ctx, e.plain, store.Query{Table: name})
			require.NoError(t, err)
			require.Len(t, entries, 1)
			require.Equal(t, store.OpCreate, entries[0].Operation)
			h, err := store.History(e.ctx, e.plain, "users", "1", store.WithEntryTable(name))
			require.NoError(t, err)
			require.Len(t, h, 1)
		})
	}
}
