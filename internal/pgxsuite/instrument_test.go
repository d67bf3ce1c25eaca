package pgxsuite_test

import (
	"context"
	"database/sql"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/internal/pgxsuite"
)

// TestInstrumentationSeesMissingEntries checks the entry check itself:
// writes through auditpgx leave no mismatch, writes that bypass it leave
// one, committed or rolled back.
func TestInstrumentationSeesMissingEntries(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	plain, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	defer plain.Close()
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{})
	require.NoError(t, err)
	require.NoError(t, reg.RegisterTable("x"))
	conn, err := auditpgx.NewConnector(dsn, auditpgx.WithRegistry(reg))
	require.NoError(t, err)
	audited := sql.OpenDB(conn)
	defer audited.Close()
	require.NoError(t, auditpgx.Migrate(ctx, audited, auditpgx.WithRegistry(reg)))
	dblink, err := pgxsuite.Instrument(ctx, plain, []string{"x", "k", "j"}, true, libpqConnString(t, dsn))
	require.NoError(t, err)

	exec := func(db interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	}, q string) {
		t.Helper()
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	exec(plain, `CREATE TABLE x (id int PRIMARY KEY, v text)`)
	exec(plain, `CREATE TABLE y (id int PRIMARY KEY)`) // not audited: no triggers
	exec(plain, `CREATE TABLE k (a text, b text NOT NULL, c json NOT NULL)`)
	exec(plain, `CREATE TABLE j (c json NOT NULL)`) // json cannot be a key: j stays without one
	var pk []byte
	require.NoError(t, plain.QueryRowContext(ctx, `SELECT json_object_agg(i.indrelid::regclass, a.attname) FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
		WHERE i.indrelid IN ('k'::regclass, 'j'::regclass) AND i.indisprimary`).Scan(&pk))
	require.JSONEq(t, `{"k": "b"}`, string(pk), "addPK keys the first NOT NULL column")
	exec(audited, `INSERT INTO x VALUES (1, 'a'), (2, 'b')`)
	exec(audited, `UPDATE x SET v = v`) // changes nothing: no entry, no change counted
	exec(audited, `UPDATE x SET v = 'c' WHERE id = 1`)
	exec(audited, `INSERT INTO y VALUES (1)`)

	v, err := pgxsuite.Verify(ctx, plain)
	require.NoError(t, err)
	require.Empty(t, v.Statements)
	require.Empty(t, v.Committed)
	require.Equal(t, map[string]int64{"x create": 2, "x update": 1}, v.Changes)
	require.Equal(t, v.Changes, v.Entries)

	exec(plain, `INSERT INTO x VALUES (3, 'z')`) // bypasses auditpgx
	tx, err := plain.BeginTx(ctx, nil)
	require.NoError(t, err)
	exec(tx, `DELETE FROM x WHERE id = 2`)
	require.NoError(t, tx.Rollback())
	exec(plain, `DELETE FROM auditpgx_entry WHERE operation = 'update'`) // an entry without its change

	v, err = pgxsuite.Verify(ctx, plain)
	require.NoError(t, err)
	want := []string{"x create: 1 row change(s), 0 entries (committed)"}
	if dblink {
		want = append(want, "x delete: 1 row change(s), 0 entries (aborted)")
	}
	var got []string
	for _, m := range v.Statements {
		got = append(got, m.Table+" "+m.Operation+": "+strconv.FormatInt(m.Changes, 10)+" row change(s), "+strconv.FormatInt(m.Entries, 10)+" entries ("+m.Status+")")
	}
	require.Equal(t, want, got)
	require.Len(t, v.Committed, 1)
	require.Equal(t, "update", v.Committed[0].Operation)
	require.EqualValues(t, 1, v.Committed[0].Changes)
	require.EqualValues(t, 0, v.Committed[0].Entries)
}
