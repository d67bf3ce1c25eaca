package store_test

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/store"
)

// Names come from both columns, each once: users is an owner and a related
// table, groups only related, orders only an owner.
func TestTables(t *testing.T) {
	db, _ := seed(t)
	ctx := context.Background()
	names, err := store.Tables(ctx, db)
	require.NoError(t, err)
	require.Equal(t, []string{"groups", "orders", "users"}, names)

	// Inside a transaction, uncommitted entries included.
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `INSERT INTO auditpgx_entry (operation, table_name, object_id,
		related_table_name, related_object_id, related_field_name, tx_id)
		VALUES ('associate', 'teams', '1', 'members', '2', 'members', 1)`)
	require.NoError(t, err)
	names, err = store.Tables(ctx, tx)
	require.NoError(t, err)
	require.Equal(t, []string{"groups", "members", "orders", "teams", "users"}, names)
}

func TestTablesEmpty(t *testing.T) {
	ctx := context.Background()
	db, _ := openSchema(t)
	require.NoError(t, store.Migrate(ctx, db, "auditpgx_entry"))
	names, err := store.Tables(ctx, db)
	require.NoError(t, err)
	require.Empty(t, names)
}

// The result is sorted by byte value whatever the collation, and holds
// neither the empty name nor NULL.
func TestTablesOrderAndEmptyNames(t *testing.T) {
	ctx := context.Background()
	db, _ := openSchema(t)
	require.NoError(t, store.Migrate(ctx, db, "auditpgx_entry"))
	_, err := db.ExecContext(ctx, `INSERT INTO auditpgx_entry
		(operation, table_name, object_id, related_table_name, related_object_id, tx_id) VALUES
		('update', 'b', '1', NULL, NULL, 1),
		('update', 'B', '1', NULL, NULL, 1),
		('update', '', '1', NULL, NULL, 1),
		('associate', 'a', '1', '', '2', 1),
		('associate', 'a', '1', 'Ä', '2', 1),
		('associate', '_x', '1', 'Public.Users', '2', 1),
		('update', 'a b', '1', NULL, NULL, 1),
		('update', 'ä', '1', NULL, NULL, 1),
		('update', 'z', '1', NULL, NULL, 1),
		('update', 'a', '2', NULL, NULL, 1)`)
	require.NoError(t, err)
	want := []string{"B", "Public.Users", "_x", "a", "a b", "b", "z", "Ä", "ä"}
	require.True(t, slices.IsSorted(want))
	names, err := store.Tables(ctx, db)
	require.NoError(t, err)
	require.Equal(t, want, names)
}

// Many names over many entries: the loose index scan finds what SELECT
// DISTINCT finds.
func TestTablesMany(t *testing.T) {
	ctx := context.Background()
	db, _ := openSchema(t)
	require.NoError(t, store.Migrate(ctx, db, "auditpgx_entry"))
	_, err := db.ExecContext(ctx, `INSERT INTO auditpgx_entry
		(operation, table_name, object_id, related_table_name, related_object_id, tx_id)
		SELECT CASE WHEN i % 7 = 0 THEN 'associate' ELSE 'update' END,
			't' || (i % 301), i::text,
			CASE WHEN i % 7 = 0 THEN 'r' || (i % 53) END,
			CASE WHEN i % 7 = 0 THEN i::text END,
			i
		FROM generate_series(1, 20000) i`)
	require.NoError(t, err)
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM auditpgx_entry
		UNION SELECT related_table_name FROM auditpgx_entry WHERE related_table_name IS NOT NULL`)
	require.NoError(t, err)
	var want []string
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		want = append(want, name)
	}
	require.NoError(t, rows.Err())
	slices.Sort(want)
	require.Len(t, want, 301+53)

	names, err := store.Tables(ctx, db)
	require.NoError(t, err)
	require.Equal(t, want, names)
}

func TestTablesEntryTable(t *testing.T) {
	ctx := context.Background()
	db, schema := openSchema(t)
	require.NoError(t, store.Migrate(ctx, db, "auditpgx_entry"))
	require.NoError(t, store.Migrate(ctx, db, `"Audit Log"`))
	_, err := db.ExecContext(ctx, `INSERT INTO "Audit Log" (operation, table_name, object_id, tx_id)
		VALUES ('create', 'invoices', '1', 1)`)
	require.NoError(t, err)

	names, err := store.Tables(ctx, db, store.WithEntryTable(`"Audit Log"`))
	require.NoError(t, err)
	require.Equal(t, []string{"invoices"}, names)
	names, err = store.Tables(ctx, db, store.WithEntryTable(schema+`."Audit Log"`), store.WithKeys("id"))
	require.NoError(t, err)
	require.Equal(t, []string{"invoices"}, names)
	names, err = store.Tables(ctx, db)
	require.NoError(t, err)
	require.Empty(t, names)

	// An invalid name fails before anything is sent.
	_, err = store.Tables(ctx, nil, store.WithEntryTable("a.b.c"))
	require.ErrorIs(t, err, store.ErrInvalidTableName)

	_, err = store.Tables(ctx, db, store.WithEntryTable("nope"))
	require.ErrorContains(t, err, `auditpgx: read table names from "nope"`)
}
