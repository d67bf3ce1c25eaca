package main

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/store"
)

// An unpartitioned entry table, whatever the suite's layout.
func TestPruneRestore(t *testing.T) {
	ctx := context.Background()
	dsn, _ := pgtest.NewSchema(t)
	env := map[string]string{"DATABASE_URL": dsn}
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.ExecContext(ctx, store.Schema+`;
		INSERT INTO auditpgx_entry (created, created_by, operation, table_name, object_id, changes, tx_id)
		SELECT timestamptz '2024-03-01 12:00:00+00' + i * interval '7 minutes', 'alice', 'update', 'users', i::text,
			'{"added_fields": {}, "removed_fields": {}, "changed_fields": {"n": [1, 2]}}', i
		FROM generate_series(0, 9) i`)
	require.NoError(t, err)
	before := runOK(t, env, "log", "--json")
	dir := t.TempDir()
	// Plain lines on stderr, which is not a terminal here.
	code, out, errOut := call(env, "prune", "--before", "2024-03-01T12:25:00Z", "--archive", dir, "--batch", "2")
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, "removed 4 entries created before 2024-03-01T12:25:00Z from auditpgx_entry (batches: 2)\n", out)
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	require.Len(t, lines, 2)
	require.Regexp(t, `^removed entries 1 to 2: 2 entries, locks held \d+\.\dms, archived to .*/auditpgx_entry_1-2\.ndjson\.gz$`, lines[0])
	require.Regexp(t, `^removed entries 3 to 4: 2 entries, locks held \d+\.\dms, archived to .*/auditpgx_entry_3-4\.ndjson\.gz$`, lines[1])
	require.Len(t, strings.Split(strings.TrimSpace(runOK(t, env, "log", "--json")), "\n"), 10-4)

	files, err := filepath.Glob(filepath.Join(dir, "*.ndjson.gz"))
	require.NoError(t, err)
	require.Len(t, files, 2)
	out = runOK(t, env, append([]string{"restore"}, files...)...)
	require.Contains(t, out, "auditpgx_entry_1-2.ndjson.gz: 2 entries restored, 0 already there\n")
	require.Equal(t, before, runOK(t, env, "log", "--json"))
	out = runOK(t, env, "restore", strings.TrimSuffix(files[0], ".ndjson.gz")+".manifest.json")
	require.Contains(t, out, ": 0 entries restored, 2 already there\n")

	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"prune"}, exitUsage, "--before is required"},
		{[]string{"prune", "--before", "soon"}, exitUsage, `--before: "soon" is not a time`},
		{[]string{"prune", "--before", "400d", "--batch", "0"}, exitUsage, "--batch: 0 is not positive"},
		{[]string{"prune", "--before", "-1d"}, exitUsage, `--before: "-1d" is not a time`},
		{[]string{"prune", "--before", "2999-01-01"}, exitError, "is not in the past"},
		{[]string{"prune", "--before", "400d", "--archive", filepath.Join(dir, "missing")}, exitError, "ArchiveDir"},
		{[]string{"restore"}, exitUsage, "missing FILE"},
		{[]string{"restore", filepath.Join(dir, "nothing.ndjson.gz")}, exitError, "manifest"},
	} {
		code, out, errOut := call(env, tc.args...)
		require.Equal(t, tc.code, code, "auditpgx %q: %s", tc.args, errOut)
		require.Contains(t, errOut, tc.stderr, "auditpgx %q", tc.args)
		require.Empty(t, out, "auditpgx %q", tc.args)
	}
}

func TestPrunePartitioned(t *testing.T) {
	ctx := context.Background()
	dsn, _ := pgtest.NewSchema(t)
	env := map[string]string{"DATABASE_URL": dsn}
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, store.Migrate(ctx, db, "auditpgx_entry", store.Partitioned(store.Monthly)))
	_, err = store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{Now: base, Future: 1})
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO auditpgx_entry (created, operation, table_name, object_id, tx_id)
		SELECT timestamptz '2024-03-01 00:00:00+00' + i * interval '1 day', 'create', 'users', i::text, i FROM generate_series(0, 40) i`)
	require.NoError(t, err)
	code, out, errOut := call(env, "prune", "--before", "2024-04-02")
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, "removed 31 entries created before 2024-04-02T00:00:00Z from auditpgx_entry (partitions dropped: 1)\n"+
		"kept auditpgx_entry_p2024_04: it holds entries from before the cut and after it, or any (DEFAULT)\n", out)
	require.Regexp(t, `^removed partition auditpgx_entry_p2024_03: 31 entries, locks held \d+\.\dms\n$`, errOut)
	// 400 days before now is after all of them.
	code, out, _ = call(env, "prune", "--before", "400d")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "(partitions dropped: 1)")
	var n int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM auditpgx_entry`).Scan(&n))
	require.Zero(t, n, "the DEFAULT partition held none")
}

// A sealed entry table: prune removes only sealed entries, and verify
// reads the removed ones from their archives.
func TestPruneSealedVerify(t *testing.T) {
	ctx := context.Background()
	dsn, _ := pgtest.NewSchema(t)
	env := map[string]string{"DATABASE_URL": dsn}
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.ExecContext(ctx, store.Schema+`;
		INSERT INTO auditpgx_entry (created, created_by, operation, table_name, object_id, changes, tx_id)
		SELECT timestamptz '2024-03-01 12:00:00+00' + (i % 10) * interval '7 minutes', 'alice', 'update', 'users', i::text,
			'{"added_fields": {}, "removed_fields": {}, "changed_fields": {"n": [1, 2.50]}}', i
		FROM generate_series(0, 2999) i`)
	require.NoError(t, err)
	runOK(t, env, "seal")
	_, err = db.ExecContext(ctx, `INSERT INTO auditpgx_entry (created, operation, table_name, object_id, tx_id)
		VALUES ('2024-03-01', 'create', 'users', 'late', 1)`)
	require.NoError(t, err)
	dir := t.TempDir()
	code, out, errOut := call(env, "prune", "--before", "2024-03-01T12:25:00Z", "--archive", dir)
	require.Equal(t, exitError, code)
	require.Empty(t, out)
	require.Contains(t, errOut, `entries up to id 3001 are to be removed, but the last checkpoint ends at entry 3000 in seal table "auditpgx_seal": seal them first`)
	runOK(t, env, "seal")
	require.Equal(t, "removed 1201 entries created before 2024-03-01T12:25:00Z from auditpgx_entry (batches: 1)\n",
		runOK(t, env, "prune", "--before", "2024-03-01T12:25:00Z", "--archive", dir))

	code, _, errOut = call(env, "verify")
	require.Equal(t, exitTampered, code)
	require.Contains(t, errOut, "entry 1 was deleted since checkpoint 1 sealed it")
	out = runOK(t, env, "verify", "--archive", dir)
	require.True(t, strings.HasPrefix(out, "verified 3001 entries (ids 1 to 3001) in 4 checkpoint(s)\n"), out)
	code, _, errOut = call(env, "verify", "--archive", filepath.Join(dir, "missing.ndjson.gz"))
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "missing.ndjson.gz: no such file or directory")
	code, _, errOut = call(env, "prune", "--before", "400d", "--seal-table", "nosuch")
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, `option SealTable: "nosuch" does not exist`)
}
