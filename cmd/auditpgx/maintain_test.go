package main

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/store"
)

func TestMaintain(t *testing.T) {
	dsn, _ := pgtest.NewSchema(t)
	env := map[string]string{"DATABASE_URL": dsn}
	out := runOK(t, env, "migrate", "--partition", "weekly")
	require.Equal(t, "entry table auditpgx_entry is ready, partitioned weekly; run 'auditpgx maintain' at least once a period\n", out)
	require.Equal(t, "entry table auditpgx_entry is partitioned weekly: 0 partitions created\n", runOK(t, env, "maintain"))
	out = runOK(t, env, "maintain", "--future", "5", "--lock-timeout", "1s")
	require.Regexp(t, `^created partition auditpgx_entry_p\d{4}w\d\d
created partition auditpgx_entry_p\d{4}w\d\d
entry table auditpgx_entry is partitioned weekly: 2 partitions created
$`, out)
	require.Equal(t, "entry table auditpgx_entry is ready\n", runOK(t, env, "migrate"), "the layout stays")

	// A plain table: nothing to do, and --partition does not convert it.
	require.Equal(t, "entry table plain is ready\n", runOK(t, env, "migrate", "--entry-table", "plain"))
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	defer db.Close()
	var kind string
	require.NoError(t, db.QueryRowContext(context.Background(), `SELECT relkind::text FROM pg_class WHERE oid = 'plain'::regclass`).Scan(&kind))
	if kind == "r" { // not under AUDITPGX_TEST_ENTRY_LAYOUT=partitioned
		require.Equal(t, "entry table plain is not partitioned: nothing to do\n", runOK(t, env, "maintain", "--entry-table", "plain"))
		code, out, errOut := call(env, "migrate", "--entry-table", "plain", "--partition", "daily")
		require.Equal(t, exitError, code)
		require.Empty(t, out)
		require.Contains(t, errOut, `auditpgx migrate: auditpgx: migrate "plain": Partitioned: the table exists and is not partitioned`)
		require.Contains(t, errOut, "docs/RETENTION.md")
	}
	_, err = store.Maintain(context.Background(), db, "plain", store.MaintainOptions{})
	require.NoError(t, err)

	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"migrate", "--partition", "yearly"}, exitUsage, `--partition: "yearly" is not monthly, weekly or daily`},
		{[]string{"maintain", "--future", "-1"}, exitUsage, "--future: -1 is negative"},
		{[]string{"maintain", "--lock-timeout", "-1s"}, exitUsage, "--lock-timeout: -1s is negative"},
		{[]string{"maintain", "--entry-table", "missing"}, exitError, `auditpgx maintain: auditpgx: maintain "missing": the entry table does not exist`},
	} {
		code, out, errOut := call(env, tc.args...)
		require.Equal(t, tc.code, code, "auditpgx %q: %s", tc.args, errOut)
		require.Contains(t, errOut, tc.stderr, "auditpgx %q", tc.args)
		require.Empty(t, out, "auditpgx %q", tc.args)
	}
}
