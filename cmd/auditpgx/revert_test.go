package main

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/store"
)

const revertDDL = `
CREATE TABLE items (id int, region text, price numeric(12, 3), data jsonb, note varchar(20), PRIMARY KEY (id, region));
CREATE TABLE accounts (id int PRIMARY KEY, name text, pw text NOT NULL DEFAULT 'reset', seen timestamptz);
CREATE TABLE teams (id int PRIMARY KEY);
CREATE TABLE users (id int PRIMARY KEY);
CREATE TABLE team_members (team_id int REFERENCES teams, user_id int REFERENCES users, PRIMARY KEY (team_id, user_id));
INSERT INTO teams VALUES (1), (2);
INSERT INTO users VALUES (1), (2), (3);
INSERT INTO team_members VALUES (1, 1);`

const membersFlag = "teams.members=team_members(team_id,user_id)"

// revertFixture writes, through the driver, rows and then one
// transaction to revert; it returns the environment, a plain pool, the
// transaction's tx_id and the tables before it.
func revertFixture(t *testing.T) (map[string]string, *sql.DB, int64, map[string]map[string]diff.Image) {
	t.Helper()
	ctx := context.Background()
	dsn, _ := pgtest.NewSchema(t)
	env := map[string]string{"DATABASE_URL": dsn}
	runOK(t, env, "migrate")
	plain, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { plain.Close() })
	_, err = plain.ExecContext(ctx, revertDDL)
	require.NoError(t, err)

	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{})
	require.NoError(t, err)
	require.NoError(t, reg.RegisterTable("items"))
	require.NoError(t, reg.RegisterTable("accounts", auditpgx.Redact("pw"), auditpgx.Exclude("seen")))
	require.NoError(t, reg.RegisterM2M("team_members", auditpgx.M2M{Field: "members",
		Owner: auditpgx.Ref{Table: "teams", Column: "team_id"}, Related: auditpgx.Ref{Table: "users", Column: "user_id"}}))
	connector, err := auditpgx.NewConnector(dsn, auditpgx.WithRegistry(reg))
	require.NoError(t, err)
	app := sql.OpenDB(connector)
	t.Cleanup(func() { app.Close() })
	_, err = app.ExecContext(ctx, `INSERT INTO items VALUES (1, 'eu', 1.50, '{"tags": ["a", "b"]}', 'first'), (2, 'us', 20, NULL, NULL)`)
	require.NoError(t, err)
	_, err = app.ExecContext(ctx, `INSERT INTO accounts VALUES (1, 'Al', 'hunter2', now()), (2, 'Bo', 'swordfish', now())`)
	require.NoError(t, err)

	before := tableState(t, plain)
	tx, err := app.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer tx.Rollback()
	for _, s := range []string{
		`UPDATE items SET price = 2.25, data = '{"tags": []}' WHERE id = 1`,
		`DELETE FROM items WHERE id = 2`,
		`INSERT INTO items VALUES (3, 'ap', 0.001, '[1, "x"]', 'new')`,
		`INSERT INTO team_members VALUES (2, 3)`,
		`DELETE FROM team_members WHERE user_id = 1`,
		`UPDATE accounts SET name = 'Alan', pw = 'changed', seen = now() WHERE id = 1`,
		`DELETE FROM accounts WHERE id = 2`,
	} {
		_, err := tx.ExecContext(ctx, s)
		require.NoError(t, err, s)
	}
	var txID int64
	require.NoError(t, tx.QueryRowContext(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&txID))
	require.NoError(t, tx.Commit())
	return env, plain, txID, before
}

// tableState reads tables whole, for comparison before and after.
func tableState(t *testing.T, db *sql.DB) map[string]map[string]diff.Image {
	t.Helper()
	out := map[string]map[string]diff.Image{}
	for table, spec := range map[string]struct {
		keys []string
		cols []string
	}{
		"items":        {[]string{"id", "region"}, []string{"id", "region", "price", "data", "note"}},
		"accounts":     {[]string{"id"}, []string{"id", "name", "pw"}},
		"team_members": {[]string{"team_id", "user_id"}, []string{"team_id", "user_id"}},
	} {
		snap, err := store.Snapshot(context.Background(), db, table, spec.keys, diff.Columns{Names: spec.cols})
		require.NoError(t, err)
		out[table] = snap
	}
	return out
}

func countEntries(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM auditpgx_entry`).Scan(&n))
	return n
}

// TestRevertDryRun: the statements and their parameters, and nothing
// changed.
func TestRevertDryRun(t *testing.T) {
	env, plain, txID, _ := revertFixture(t)
	tx := strconv.FormatInt(txID, 10)
	before, entries := tableState(t, plain), countEntries(t, plain)

	code, out, errOut := call(env, "revert", "--tx", tx, "--dry-run", "--link", membersFlag, "--skip-unrestorable")
	require.Equal(t, exitOK, code, errOut)
	golden(t, "revert_dry_run", out)
	require.Equal(t, "dry run: 7 statement(s) would revert tx "+tx+"; nothing was changed\n", errOut)
	require.Equal(t, before, tableState(t, plain))
	require.Equal(t, entries, countEntries(t, plain))

	// One entry.
	out = runOK(t, env, "revert", "--entry", "5", "--dry-run")
	require.True(t, strings.HasPrefix(out, `-- entry 5: undo the update of items "[1,\"eu\"]": set "price", "data" back`+"\n"+
		`UPDATE "items" SET ("price", "data") = `), out)
	require.True(t, strings.HasSuffix(out, "\n-- parameters: [{\"data\":{\"tags\":[\"a\",\"b\"]},\"price\":1.500},{\"id\":1,\"region\":\"eu\"}]\n"), out)
}

// TestRevertExecuted: the revert runs through the driver in one
// transaction, restores the tables and records entries of its own, with
// the actor and the reason; a second revert of the same transaction is
// refused, the objects having changed since.
func TestRevertExecuted(t *testing.T) {
	env, plain, txID, before := revertFixture(t)
	tx := strconv.FormatInt(txID, 10)
	ctx := context.Background()

	// Refusals: no link for the association entries, a redacted column.
	for _, tc := range []struct {
		args       []string
		want, hint string
	}{
		{[]string{"revert", "--tx", tx}, `(associate of teams "2"): the entries do not name the join table of teams field "members"`,
			"(--link OWNER.FIELD=JOIN(OWNER_COL,RELATED_COL) names a join table)"},
		{[]string{"revert", "--tx", tx, "--link", membersFlag}, `(update of accounts "1"): column "pw" is redacted: its old value is not recorded`,
			"(--skip-unrestorable goes on without such columns)"},
	} {
		code, out, errOut := call(env, tc.args...)
		require.Equal(t, exitError, code, errOut)
		require.Empty(t, out)
		require.Contains(t, errOut, tc.want)
		require.Contains(t, errOut, tc.hint)
		require.NotContains(t, errOut, "hunter2")
	}

	// Reverted, with the reason and the actor.
	entries := countEntries(t, plain)
	out := runOK(t, env, "revert", "--tx", tx, "--link", membersFlag, "--skip-unrestorable", "--actor", "ops")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 8, out)
	require.Regexp(t, `^reverted tx `+tx+`: 7 statement\(s\) in tx \d+$`, lines[7])
	revertTx, err := strconv.ParseInt(lines[7][strings.LastIndex(lines[7], " ")+1:], 10, 64)
	require.NoError(t, err)

	after := tableState(t, plain)
	require.NoError(t, store.EqualStates(before["items"], after["items"]))
	require.NoError(t, store.EqualStates(before["team_members"], after["team_members"]))
	var name, pw string
	require.NoError(t, plain.QueryRowContext(ctx, `SELECT string_agg(name, ',' ORDER BY id), string_agg(pw, ',' ORDER BY id) FROM accounts`).Scan(&name, &pw))
	require.Equal(t, "Al,Bo", name)
	require.Equal(t, "changed,reset", pw, "pw left as it is, and its default for the row inserted again")
	rows, err := plain.QueryContext(ctx, `SELECT operation, table_name, object_id, coalesce(changes::text, ''), created_by, context->>'reason'
		FROM auditpgx_entry WHERE tx_id = $1 ORDER BY id`, revertTx)
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var op, table, obj, changes, by, reason string
		require.NoError(t, rows.Scan(&op, &table, &obj, &changes, &by, &reason))
		require.Equal(t, "ops", by)
		require.Equal(t, "revert of tx "+tx, reason)
		got = append(got, op+" "+table+" "+obj+" "+changes)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, entries+len(got), countEntries(t, plain))
	require.Equal(t, []string{
		`create accounts 2 {"added_fields": {"id": 2, "pw": "$encrypted$", "name": "Bo"}, "changed_fields": {}, "removed_fields": {}}`,
		`update accounts 1 {"added_fields": {}, "changed_fields": {"name": ["Alan", "Al"]}, "removed_fields": {}}`,
		`associate teams 1 `,
		`disassociate teams 2 `,
		`delete items [3,"ap"] {"added_fields": {}, "changed_fields": {}, "removed_fields": {"id": 3, "data": [1, "x"], "note": "new", "price": 0.001, "region": "ap"}}`,
		`create items [2,"us"] {"added_fields": {"id": 2, "data": null, "note": null, "price": 20.000, "region": "us"}, "changed_fields": {}, "removed_fields": {}}`,
		`update items [1,"eu"] {"added_fields": {}, "changed_fields": {"data": [{"tags": []}, {"tags": ["a", "b"]}], "price": [2.250, 1.500]}, "removed_fields": {}}`,
	}, got)

	// Again: the objects changed since.
	code, _, errOut := call(env, "revert", "--tx", tx, "--link", membersFlag, "--skip-unrestorable")
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "changed it since, and is not selected")
	require.Contains(t, errOut, "(--force reverts anyway)")

	// The revert of the revert, by its transaction, redoes it.
	runOK(t, env, "revert", "--tx", strconv.FormatInt(revertTx, 10), "--link", membersFlag, "--skip-unrestorable")
	var links string
	require.NoError(t, plain.QueryRowContext(ctx, `SELECT string_agg(team_id || '-' || user_id, ',' ORDER BY team_id, user_id) FROM team_members`).Scan(&links))
	require.Equal(t, "2-3", links)
}

func TestRevertUsage(t *testing.T) {
	env := map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"revert"}, "missing --tx or --entry"},
		{[]string{"revert", "--tx", "1", "--entry", "2"}, "give --tx or --entry, not both"},
		{[]string{"revert", "--tx", "-1"}, "positive"},
		{[]string{"revert", "--tx", "1", "extra"}, `unexpected argument "extra"`},
		{[]string{"revert", "--tx", "1", "--link", "teams=team_members(a,b)"}, "want OWNER.FIELD=JOIN(OWNER_COL,RELATED_COL)"},
		{[]string{"revert", "--tx", "1", "--link", "teams.members=team_members(a)"}, "two columns in the parentheses"},
		{[]string{"revert", "--tx", "1", "--link", "teams.m=j(a,b)", "--link", "teams.m=k(a,b)"}, "teams.m is given twice"},
	} {
		code, _, errOut := call(env, tc.args...)
		require.Equal(t, exitUsage, code, "%q: %s", tc.args, errOut)
		require.Contains(t, errOut, tc.want, "%q", tc.args)
	}
	var l linksFlag
	require.NoError(t, l.Set(`app."Teams".members = app.team_members( team_id , user_id )`))
	require.Equal(t, store.RevertLink{OwnerTable: `app."Teams"`, Field: "members", JoinTable: "app.team_members",
		OwnerColumn: "team_id", RelatedColumn: "user_id"}, l[0])
}
