package store_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/store"
)

// The driver's writes land in a partitioned entry table: audited inserts,
// updates, deletes, a string of several statements, a baseline and a
// TRUNCATE, in the current month's partition, with ids in the order
// written; the entries replay to the table's rows.
func TestDriverWritesPartitioned(t *testing.T) {
	ctx := context.Background()
	dsn, _ := pgtest.NewSchema(t)
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{})
	require.NoError(t, err)
	require.NoError(t, reg.RegisterTable("notes", auditpgx.Redact("secret"), auditpgx.RecordTruncate()))
	connector, err := auditpgx.NewConnector(dsn, auditpgx.WithRegistry(reg))
	require.NoError(t, err)
	db := sql.OpenDB(connector)
	t.Cleanup(func() { db.Close() })

	// Through the driver, as an application migrates at start-up.
	require.NoError(t, store.Migrate(ctx, db, "auditpgx_entry", store.Partitioned(store.Monthly)))
	require.NoError(t, auditpgx.Migrate(ctx, db, auditpgx.WithRegistry(reg)), "Migrate without the option keeps the layout")
	_, err = db.ExecContext(ctx, `CREATE TABLE notes (id int PRIMARY KEY, body text, secret text)`)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO notes VALUES (1, 'before', 's0'), (2, 'before', 's0')`)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `TRUNCATE notes`)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO notes VALUES (3, 'pre-audit', 's0')`)
	require.NoError(t, err)
	_, err = auditpgx.Baseline(ctx, db, auditpgx.WithRegistry(reg))
	require.NoError(t, err)

	alice := auditpgx.WithActor(ctx, "alice")
	for _, q := range []string{
		`INSERT INTO notes VALUES (10, 'a', 's1'), (11, 'b', 's2')`,
		`UPDATE notes SET body = 'a2', secret = 's3' WHERE id = 10`,
		`DELETE FROM notes WHERE id = 11`,
		`INSERT INTO notes VALUES (12, 'c', 's4'); UPDATE notes SET id = 13 WHERE id = 12`,
		`UPDATE notes SET body = 'after' WHERE id = 3`,
	} {
		_, err := db.ExecContext(alice, q)
		require.NoError(t, err, q)
	}
	tx, err := db.BeginTx(alice, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(alice, `INSERT INTO notes VALUES (20, 'in a transaction', 's5')`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())

	var where []string
	rows, err := db.QueryContext(ctx, `SELECT DISTINCT tableoid::regclass::text FROM auditpgx_entry`)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		where = append(where, s)
	}
	require.NoError(t, rows.Err())
	var month string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT 'auditpgx_entry_p' || to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY_MM')`).Scan(&month))
	require.Equal(t, []string{month}, where, "every entry in the current month's partition")

	entries, err := store.List(ctx, db, store.Query{Limit: 1000})
	require.NoError(t, err)
	require.Len(t, entries, 14, "2 creates, a truncate, a create, a snapshot and its marker, 2 creates, an update, a delete, a create and an update, an update, a create")
	for i, e := range entries {
		require.Equal(t, int64(i+1), e.ID, "ids in the order written")
	}
	require.Equal(t, store.OpTruncate, entries[2].Operation)
	require.True(t, entries[5].IsBaselineMarker())

	history, err := store.History(ctx, db, "notes", "13")
	require.NoError(t, err)
	var ops []store.Operation
	for _, e := range history {
		ops = append(ops, e.Operation)
	}
	require.Equal(t, []store.Operation{store.OpTruncate, store.OpCreate, store.OpUpdate}, ops, "the table's truncate, created as 12, moved to 13")
	got, err := store.ReplayTable(ctx, db, "", "notes", []string{"id"})
	require.NoError(t, err)
	want, err := store.Snapshot(ctx, db, "notes", []string{"id"},
		diff.Columns{Names: []string{"id", "body", "secret"}, Redacted: map[string]bool{"secret": true}})
	require.NoError(t, err)
	require.NoError(t, store.EqualStates(got, want))
}
