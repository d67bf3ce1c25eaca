package auditpgx_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
)

// TestMigrateWithoutEntryIndexes: the option reaches store.Migrate, and
// audited writes work on the slimmer entry table.
func TestMigrateWithoutEntryIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn, _ := pgtestSchema(t)
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{})
	require.NoError(t, err)
	require.NoError(t, reg.RegisterTable("notes"))
	db := openWith(t, dsn, reg)
	_, err = db.ExecContext(ctx, `CREATE TABLE notes (id int PRIMARY KEY, body text)`)
	require.NoError(t, err)

	require.ErrorContains(t, auditpgx.Migrate(ctx, db, auditpgx.WithRegistry(reg), auditpgx.WithoutEntryIndexes("nope")), `"nope"`)
	require.NoError(t, auditpgx.Migrate(ctx, db, auditpgx.WithRegistry(reg), auditpgx.WithoutEntryIndexes("changes")))
	var n int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'auditpgx_entry'`).Scan(&n))
	require.Equal(t, 6, n, "the primary key and five secondary indexes")

	_, err = db.ExecContext(ctx, `INSERT INTO notes VALUES (1, 'hello')`)
	require.NoError(t, err)
	var op sql.NullString
	require.NoError(t, db.QueryRowContext(ctx, `SELECT operation FROM auditpgx_entry`).Scan(&op))
	require.Equal(t, "create", op.String)
}
