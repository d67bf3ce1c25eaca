package store_test

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/store"
)

// TestSealRolesFromSecurityDoc applies the seal table's roles and grants
// of docs/SECURITY.md: the sealer seals but changes neither checkpoints
// nor entries; the application role verifies but writes no checkpoint.
func TestSealRolesFromSecurityDoc(t *testing.T) {
	ctx := context.Background()
	dsn, schema := pgtest.NewSchema(t)
	admin, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { admin.Close() })
	suffix := strconv.FormatUint(rand.Uint64(), 36)
	owner, sealer, app := "auditpgx_seal_owner_"+suffix, "auditpgx_sealer_"+suffix, "app_user_"+suffix
	entryOwner := "auditpgx_owner_" + suffix
	names := map[string]string{"auditpgx_seal_owner": owner, "auditpgx_sealer": sealer, "app_user": app, "appschema": schema,
		"auditpgx_owner": entryOwner}
	// Registered first, so that it runs after the pools below are closed.
	t.Cleanup(func() {
		_, err := admin.Exec(`DROP OWNED BY ` + owner + `, ` + sealer + `, ` + app + `, ` + entryOwner + ` CASCADE; DROP ROLE ` + owner +
			`; DROP ROLE ` + sealer + `; DROP ROLE ` + app + `; DROP ROLE ` + entryOwner)
		require.NoError(t, err)
	})
	// Unpartitioned on either test layout, so that prune below removes
	// entries of the current month.
	_, err = admin.ExecContext(ctx, store.Schema)
	require.NoError(t, err)
	_, err = admin.ExecContext(ctx, `CREATE ROLE `+app+` LOGIN; GRANT USAGE ON SCHEMA `+schema+` TO `+app+`;
		GRANT SELECT, INSERT ON auditpgx_entry TO `+app+`; GRANT USAGE ON SEQUENCE auditpgx_entry_id_seq TO `+app+`;
		CREATE ROLE `+entryOwner+` LOGIN; GRANT USAGE ON SCHEMA `+schema+` TO `+entryOwner+`;
		ALTER TABLE auditpgx_entry OWNER TO `+entryOwner)
	require.NoError(t, err)
	_, err = admin.ExecContext(ctx, docSQL(t, "SECURITY.md", "seal-roles", names))
	require.NoError(t, err)
	conn, err := admin.Conn(ctx)
	require.NoError(t, err)
	_, err = conn.ExecContext(ctx, `SET ROLE `+owner)
	require.NoError(t, err)
	require.NoError(t, store.MigrateSeal(ctx, conn, ""))
	_, err = conn.ExecContext(ctx, `RESET ROLE`)
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	_, err = admin.ExecContext(ctx, docSQL(t, "SECURITY.md", "seal-grants", names))
	require.NoError(t, err)

	open := func(role string) *sql.DB {
		roleDSN := strings.Replace(dsn, "postgres://postgres@", "postgres://"+role+"@", 1)
		require.NotEqual(t, dsn, roleDSN)
		db, err := sql.Open("pgx", roleDSN)
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		return db
	}
	appDB, sealDB, ownerDB := open(app), open(sealer), open(entryOwner)
	writeEntries(t, appDB, 20)

	require.NoError(t, store.MigrateSeal(ctx, sealDB, ""), "the table exists: nothing to do")
	r, err := store.Seal(ctx, sealDB, store.SealOptions{})
	require.NoError(t, err)
	require.Equal(t, int64(20), r.Entries)
	v, err := store.Verify(ctx, appDB, store.VerifyOptions{})
	require.NoError(t, err, "the application role verifies")
	require.Equal(t, int64(20), v.Entries)

	denied := func(db *sql.DB, q string) {
		t.Helper()
		_, err := db.ExecContext(ctx, q)
		var pgErr *pgconn.PgError
		require.True(t, errors.As(err, &pgErr) && pgErr.Code == "42501", "%s: want permission denied, got %v", q, err)
	}
	for _, q := range []string{
		`INSERT INTO auditpgx_seal SELECT seq + 1, format, first_id, last_id, count, prev_hash, hash, gaps, digests, sealed_at FROM auditpgx_seal`,
		`UPDATE auditpgx_seal SET hash = prev_hash`,
		`DELETE FROM auditpgx_seal`,
		`TRUNCATE auditpgx_seal`,
		`DROP TABLE auditpgx_seal`,
	} {
		denied(appDB, q)
	}
	for _, q := range []string{
		`UPDATE auditpgx_seal SET hash = prev_hash`,
		`DELETE FROM auditpgx_seal`,
		`TRUNCATE auditpgx_seal`,
		`UPDATE auditpgx_entry SET object_id = 'x'`,
		`DELETE FROM auditpgx_entry`,
		`INSERT INTO auditpgx_entry (operation, table_name, object_id, tx_id) VALUES ('create', 't', '1', 1)`,
	} {
		denied(sealDB, q)
	}

	// The entry table's owner prunes sealed entries, reading the seal
	// table, and can write no checkpoint; the application verifies across
	// the archive.
	var cut time.Time
	require.NoError(t, admin.QueryRowContext(ctx, `SELECT now()`).Scan(&cut))
	writeEntries(t, appDB, 5)
	dir := t.TempDir()
	res, err := store.Prune(ctx, ownerDB, "auditpgx_entry", store.PruneOptions{Before: cut, ArchiveDir: dir})
	require.NoError(t, err)
	require.Equal(t, int64(20), res.Entries)
	m, _, err := store.ReadArchiveManifest(res.Steps[0].Archive)
	require.NoError(t, err)
	require.NotNil(t, m.Seal)
	v, err = store.Verify(ctx, appDB, store.VerifyOptions{Archives: []string{dir}})
	require.NoError(t, err)
	require.Equal(t, [2]int64{20, 5}, [2]int64{v.Entries, v.Unsealed})
	denied(ownerDB, `UPDATE auditpgx_seal SET hash = prev_hash`)
	denied(ownerDB, `DELETE FROM auditpgx_seal`)
}
