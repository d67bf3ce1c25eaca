package auditpgx_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/internal/pgtest"
)

// env is one test's isolated world: its own schema, registry, an audited
// *sql.DB and a plain pgx *sql.DB on the same schema.
type env struct {
	t      testing.TB
	ctx    context.Context
	dsn    string
	schema string
	reg    *auditpgx.Registry
	db     *sql.DB // through auditpgx
	plain  *sql.DB // through pgx alone
	// wal and walPrefix, when set: the registry sends entries to the WAL
	// sink, as messages of that prefix, read through wal.
	wal       *walCollector
	walPrefix string
	walGen    int
}

// newEnv runs setup (DDL) through plain pgx, registers tables with
// register, and migrates the entry table.
func newEnv(t testing.TB, setup string, register func(r *auditpgx.Registry) error) *env {
	t.Helper()
	dsn, schema := pgtest.NewSchema(t)
	return newEnvDSN(t, dsn, schema, setup, register)
}

func newEnvDSN(t testing.TB, dsn, schema, setup string, register func(r *auditpgx.Registry) error) *env {
	t.Helper()
	return newEnvConfig(t, dsn, schema, auditpgx.RegistryConfig{}, setup, register)
}

// newEnvConfig is newEnvDSN with a registry configured by cfg.
func newEnvConfig(t testing.TB, dsn, schema string, cfg auditpgx.RegistryConfig, setup string, register func(r *auditpgx.Registry) error) *env {
	t.Helper()
	ctx := context.Background()
	plain, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { plain.Close() })
	if setup != "" {
		_, err = plain.ExecContext(ctx, setup)
		require.NoError(t, err)
	}
	reg, err := auditpgx.NewRegistry(cfg)
	require.NoError(t, err)
	if register != nil {
		require.NoError(t, register(reg))
	}
	conn, err := auditpgx.NewConnector(dsn, auditpgx.WithRegistry(reg))
	require.NoError(t, err)
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, auditpgx.Migrate(ctx, db, auditpgx.WithRegistry(reg)))
	return &env{t: t, ctx: ctx, dsn: dsn, schema: schema, reg: reg, db: db, plain: plain}
}

// entry is the comparable part of an entry row.
type entry struct {
	Op       string
	Table    string
	ObjectID string
	Changes  string // JSON, compared semantically
	Actor    *string
}

func (e *env) entries() []entry {
	e.t.Helper()
	rows, err := e.plain.QueryContext(e.ctx, `SELECT operation, table_name, object_id, changes::text, created_by FROM auditpgx_entry ORDER BY id`)
	require.NoError(e.t, err)
	defer rows.Close()
	var out []entry
	for rows.Next() {
		var en entry
		var changes sql.NullString
		require.NoError(e.t, rows.Scan(&en.Op, &en.Table, &en.ObjectID, &changes, &en.Actor))
		en.Changes = changes.String
		out = append(out, en)
	}
	require.NoError(e.t, rows.Err())
	return out
}

func (e *env) countEntries() int {
	e.t.Helper()
	var n int
	require.NoError(e.t, e.plain.QueryRowContext(e.ctx, `SELECT count(*) FROM auditpgx_entry`).Scan(&n))
	return n
}

func (e *env) clearEntries() {
	e.t.Helper()
	_, err := e.plain.ExecContext(e.ctx, `TRUNCATE auditpgx_entry`)
	require.NoError(e.t, err)
}

// want builds an expected entry; changes is JSON.
func want(op, table, id, changes string) entry {
	return entry{Op: op, Table: table, ObjectID: id, Changes: changes}
}

func actor(a string) *string { return &a }

// requireEntries compares entries, with the changes JSON compared
// semantically (key order and spacing do not matter).
func requireEntries(t testing.TB, want, got []entry) {
	t.Helper()
	require.Equal(t, len(want), len(got), "number of entries; got %+v", got)
	for i := range want {
		w, g := want[i], got[i]
		require.Equal(t, w.Op, g.Op, "entry %d operation", i)
		require.Equal(t, w.Table, g.Table, "entry %d table", i)
		require.Equal(t, w.ObjectID, g.ObjectID, "entry %d object id", i)
		if w.Actor != nil || g.Actor != nil {
			require.Equal(t, w.Actor, g.Actor, "entry %d actor", i)
		}
		require.JSONEq(t, w.Changes, g.Changes, "entry %d changes", i)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func pgtestSchema(t testing.TB) (string, string) { return pgtest.NewSchema(t) }

func textLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// openWith opens an audited *sql.DB on dsn with registry r.
func openWith(t testing.TB, dsn string, r *auditpgx.Registry) *sql.DB {
	t.Helper()
	conn, err := auditpgx.NewConnector(dsn, auditpgx.WithRegistry(r))
	require.NoError(t, err)
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

// columnsAndRows runs q and returns its column names and row count.
func columnsAndRows(t testing.TB, db *sql.DB, q string, args ...any) ([]string, int) {
	t.Helper()
	rows, err := db.Query(q, args...)
	require.NoError(t, err)
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err)
	n := 0
	for rows.Next() {
		n++
	}
	require.NoError(t, rows.Err())
	return cols, n
}

func (e *env) serverVersion() int {
	e.t.Helper()
	var v int
	require.NoError(e.t, e.plain.QueryRowContext(e.ctx, `SELECT current_setting('server_version_num')::int`).Scan(&v))
	return v
}
