package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/internal/pgtest"
)

// TestBaselineCommand: baseline records the rows with the options given,
// after comparing them with the entries already written; as-of of a row
// from before auditing exits 3 with what it knows until then.
func TestBaselineCommand(t *testing.T) {
	ctx := context.Background()
	dsn, _ := pgtest.NewSchema(t)
	env := map[string]string{"DATABASE_URL": dsn}
	runOK(t, env, "migrate")
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.ExecContext(ctx, `CREATE TABLE users (id int PRIMARY KEY, name text, pw text, seen timestamptz);
		INSERT INTO users SELECT i, 'u' || i, 'secret' || i, now() FROM generate_series(1, 12) i;
		CREATE TABLE tags (id text PRIMARY KEY);
		INSERT INTO tags VALUES ('a'), ('b')`)
	require.NoError(t, err)

	// The application audits users with Redact("pw") and Exclude("seen"):
	// an update of a row from before auditing, and a create.
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{})
	require.NoError(t, err)
	require.NoError(t, reg.RegisterTable("users", auditpgx.Redact("pw"), auditpgx.Exclude("seen")))
	connector, err := auditpgx.NewConnector(dsn, auditpgx.WithRegistry(reg))
	require.NoError(t, err)
	app := sql.OpenDB(connector)
	defer app.Close()
	_, err = app.ExecContext(ctx, `UPDATE users SET name = 'renamed' WHERE id = 3`)
	require.NoError(t, err)
	_, err = app.ExecContext(ctx, `INSERT INTO users VALUES (13, 'new', 'pw', now())`)
	require.NoError(t, err)

	// as-of: incomplete, exit 3, the known columns on stdout.
	code, out, errOut := call(env, "as-of", "users", "3", "0s")
	require.Equal(t, exitIncomplete, code, errOut)
	require.Contains(t, out, "incomplete, only the columns set since entry 1 are known")
	require.Contains(t, out, `name  "renamed"`)
	require.Contains(t, errOut, "auditpgx: incomplete history")
	require.Contains(t, errOut, "auditpgx help baseline")
	code, out, _ = call(env, "as-of", "--json", "users", "3", "0s")
	require.Equal(t, exitIncomplete, code)
	var partial map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &partial))
	require.Equal(t, true, partial["incomplete"])
	require.Equal(t, map[string]any{"name": "renamed"}, partial["fields"])

	// Options that differ from the entries are refused, naming the column.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"baseline", "users", "--exclude", "seen"}, `column "pw" is recorded as "$encrypted$": redact it`},
		{[]string{"baseline", "users", "--redact", "pw"}, `column "seen" is not in it: exclude it`},
		{[]string{"baseline", "users", "--redact", "users=pw,name", "--exclude", "seen"}, `column "name" is recorded in the clear`},
		{[]string{"baseline", "users", "--redact", "pw", "--exclude", "seen,name"}, `column "name" is in it: do not exclude it`},
	} {
		code, _, errOut := call(env, tc.args...)
		require.Equal(t, exitError, code, "%q: %s", tc.args, errOut)
		require.Contains(t, errOut, tc.want, "%q", tc.args)
	}
	n := func() int {
		var n int
		require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM auditpgx_entry`).Scan(&n))
		return n
	}
	require.Equal(t, 2, n(), "nothing written")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"baseline"}, "missing TABLE"},
		{[]string{"baseline", "users", "tags", "--redact", "pw"}, "name the table (TABLE=COL,…)"},
		{[]string{"baseline", "users", "--redact", "other=pw"}, `table "other" is not one of the TABLE arguments`},
		{[]string{"baseline", "users", "--batch", "0"}, "--batch: 0"},
	} {
		code, _, errOut := call(env, tc.args...)
		require.Equal(t, exitUsage, code, "%q: %s", tc.args, errOut)
		require.Contains(t, errOut, tc.want, "%q", tc.args)
	}

	// The application's options: recorded, in batches, plain progress
	// lines on a pipe.
	code, out, errOut = call(env, "baseline", "--redact", "users=pw", "--exclude", "users=seen", "--actor", "ops",
		"--batch", "5", "users", "tags")
	require.Equal(t, exitOK, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	require.Regexp(t, `^users: 13 rows baselined at \S+ \(marker entry \d+\) in \S+$`, lines[0])
	require.Regexp(t, `^tags: 2 rows baselined at `, lines[1])
	require.Contains(t, errOut, "users: 13 rows to record\n")
	require.Contains(t, errOut, "tags: no entry lists its columns yet")
	var changes, by string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT changes::text, created_by FROM auditpgx_entry
		WHERE operation = 'snapshot' AND table_name = 'users' AND object_id = '4'`).Scan(&changes, &by))
	require.JSONEq(t, `{"added_fields": {"id": 4, "name": "u4", "pw": "$encrypted$"}, "removed_fields": {}, "changed_fields": {}}`, changes)
	require.Equal(t, "ops", by)

	// as-of is complete now.
	out = runOK(t, env, "as-of", "users", "3", "0s")
	require.Regexp(t, `name\s+"renamed"`, out)
	require.Regexp(t, `pw\s+"\$encrypted\$"`, out)
	out = runOK(t, env, "history", "users", "3")
	require.Regexp(t, `(?s)#1 update users 3 .*#\d+ snapshot users 3 .*#\d+ snapshot users "" `, out)

	// Again: skipped, nothing written; --force records it again.
	before := n()
	out = runOK(t, env, "baseline", "--redact", "pw", "--exclude", "seen", "users")
	require.Regexp(t, `^users: already baselined at \S+ \(marker entry \d+\); --force records it again\n$`, out)
	require.Equal(t, before, n())
	out = runOK(t, env, "baseline", "--redact", "pw", "--exclude", "seen", "--force", "users")
	require.Contains(t, out, "users: 13 rows baselined")
	require.Equal(t, before+14, n())

	// The help lists the options.
	code, _, errOut = call(env, "help", "baseline")
	require.Equal(t, exitOK, code)
	for _, f := range []string{"-exclude", "-redact", "-only", "-force", "-batch", "-actor", "-no-check"} {
		require.Contains(t, errOut, f)
	}
}

func TestProgressLines(t *testing.T) {
	var b strings.Builder
	p := newProgress(&b)
	p.update(auditpgx.BaselineProgress{Table: "users", Total: 10})
	p.update(auditpgx.BaselineProgress{Table: "users", Rows: 5, Total: 10, Elapsed: time.Second})
	p.last = time.Time{}
	p.update(auditpgx.BaselineProgress{Table: "users", Rows: 8, Total: 10, Elapsed: 6 * time.Second})
	p.update(auditpgx.BaselineProgress{Table: "users", Rows: 10, Total: 10, Done: true})
	p.end()
	require.Equal(t, "users: 10 rows to record\nusers: 8/10 rows (80%) in 6s\n", b.String())

	b.Reset()
	p = &progress{w: &b, terminal: true}
	p.update(auditpgx.BaselineProgress{Table: "users", Rows: 5, Total: 10, Elapsed: time.Second})
	p.update(auditpgx.BaselineProgress{Table: "users", Rows: 10, Total: 10, Done: true, Elapsed: 2 * time.Second})
	require.Equal(t, "\rusers [###############...............]  50% 5/10 rows 1s\x1b[K"+
		"\rusers [##############################] 100% 10/10 rows 2s\x1b[K\n", b.String())
}
