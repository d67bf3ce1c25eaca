package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/store"
)

// revertEnv is a schema with tables written through the auditpgx driver
// (app), so that their entries are real, and a plain pgx pool (plain).
type revertEnv struct {
	t     *testing.T
	ctx   context.Context
	plain *sql.DB
	app   *sql.DB
	reg   *auditpgx.Registry
}

func newRevertEnv(t *testing.T, cfg auditpgx.RegistryConfig, ddl string, register func(*auditpgx.Registry) error) *revertEnv {
	t.Helper()
	ctx := context.Background()
	dsn, _ := pgtest.NewSchema(t)
	plain, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { plain.Close() })
	_, err = plain.ExecContext(ctx, ddl)
	require.NoError(t, err)
	reg, err := auditpgx.NewRegistry(cfg)
	require.NoError(t, err)
	require.NoError(t, register(reg))
	conn, err := auditpgx.NewConnector(dsn, auditpgx.WithRegistry(reg))
	require.NoError(t, err)
	app := sql.OpenDB(conn)
	t.Cleanup(func() { app.Close() })
	require.NoError(t, auditpgx.Migrate(ctx, app, auditpgx.WithRegistry(reg)))
	return &revertEnv{t: t, ctx: ctx, plain: plain, app: app, reg: reg}
}

// tx runs statements in one transaction through the driver and returns
// its tx_id.
func (e *revertEnv) tx(ctx context.Context, stmts ...string) int64 {
	e.t.Helper()
	tx, err := e.app.BeginTx(ctx, nil)
	require.NoError(e.t, err)
	defer tx.Rollback()
	for _, s := range stmts {
		_, err := tx.ExecContext(ctx, s)
		require.NoError(e.t, err, s)
	}
	var id int64
	require.NoError(e.t, tx.QueryRowContext(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&id))
	require.NoError(e.t, tx.Commit())
	return id
}

// lastEntry is the id of the latest entry.
func (e *revertEnv) lastEntry() int64 {
	e.t.Helper()
	var id int64
	require.NoError(e.t, e.plain.QueryRowContext(e.ctx, `SELECT coalesce(max(id), 0) FROM auditpgx_entry`).Scan(&id))
	return id
}

// apply runs a revert's statements in one transaction through the
// driver, each changing one row, and returns the transaction's tx_id.
func (e *revertEnv) apply(ctx context.Context, stmts []store.Statement) int64 {
	e.t.Helper()
	tx, err := e.app.BeginTx(ctx, nil)
	require.NoError(e.t, err)
	defer tx.Rollback()
	for _, s := range stmts {
		res, err := tx.ExecContext(ctx, s.SQL, s.Args...)
		require.NoError(e.t, err, "%s\n%s", s.Description, s.SQL)
		n, err := res.RowsAffected()
		require.NoError(e.t, err)
		require.EqualValues(e.t, 1, n, "%s\n%s", s.Description, s.SQL)
	}
	var id int64
	require.NoError(e.t, tx.QueryRowContext(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&id))
	require.NoError(e.t, tx.Commit())
	return id
}

func (e *revertEnv) revert(sel store.RevertSelector, opts ...store.RevertOption) []store.Statement {
	e.t.Helper()
	stmts, err := store.Revert(e.ctx, e.plain, sel, opts...)
	require.NoError(e.t, err)
	return stmts
}

// snapshot reads a table whole: every column, none redacted.
func (e *revertEnv) snapshot(table string, keys ...string) map[string]diff.Image {
	e.t.Helper()
	rows, err := e.plain.QueryContext(e.ctx, `SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1)
		AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, table)
	require.NoError(e.t, err)
	var cols diff.Columns
	for rows.Next() {
		var c string
		require.NoError(e.t, rows.Scan(&c))
		cols.Names = append(cols.Names, c)
	}
	require.NoError(e.t, rows.Err())
	snap, err := store.Snapshot(e.ctx, e.plain, table, keys, cols)
	require.NoError(e.t, err)
	return snap
}

func (e *revertEnv) requireTable(want map[string]diff.Image, table string, keys ...string) {
	e.t.Helper()
	require.NoError(e.t, store.EqualStates(want, e.snapshot(table, keys...)))
}

// items has a NOT NULL domain, which a statement must not meet as a null
// where it does not set it.
const itemsDDL = `CREATE DOMAIN item_code AS varchar(8) NOT NULL CHECK (VALUE <> '');
CREATE TABLE items (
	id int, region text, data jsonb, at timestamptz, price numeric, note text, code item_code DEFAULT 'c',
	PRIMARY KEY (id, region));
INSERT INTO items VALUES (0, 'xx', '{"untouched": true}', '2000-01-01', 0, 'before auditing')`

// TestRevertOneEntry: an update, a delete and a create, each undone by
// its entry alone, through the driver; jsonb, timestamptz and numeric
// values come back exactly, on a composite key.
func TestRevertOneEntry(t *testing.T) {
	e := newRevertEnv(t, auditpgx.RegistryConfig{}, itemsDDL, func(r *auditpgx.Registry) error { return r.RegisterTable("items") })
	ctx := e.ctx
	e.tx(ctx, `INSERT INTO items VALUES (1, 'eu', '{"a": [1, 2.50, "x"], "b": {"c": null}}', '2024-03-01 12:00:00.123456+02', 1.50, 'one', 'k1'),
		(2, 'us', '[true, {"k": "v"}]', '2024-03-02 00:00:00+00', 20.000, NULL, 'k2')`)
	before := e.snapshot("items", "id", "region")

	// An update of jsonb, timestamptz and numeric columns.
	e.tx(ctx, `UPDATE items SET data = '{"a": 1}', at = now(), price = 3.14159, note = 'changed' WHERE id = 1`)
	update := e.lastEntry()
	stmts := e.revert(store.RevertEntry(update))
	require.Len(t, stmts, 1)
	require.Equal(t, update, stmts[0].EntryID)
	require.Equal(t, `UPDATE "items" SET ("data", "at", "price", "note") = (SELECT r."data", r."at", r."price", r."note" `+
		`FROM jsonb_to_record($1::jsonb) AS r("data" jsonb, "at" timestamp with time zone, "price" numeric, "note" text)) `+
		`WHERE ("id", "region") = (SELECT r."id", r."region" FROM jsonb_to_record($2::jsonb) AS r("id" integer, "region" text))`, stmts[0].SQL)
	require.Equal(t, `{"id":1,"region":"eu"}`, stmts[0].Args[1])
	require.Contains(t, stmts[0].Description, `undo the update of items "[1,\"eu\"]": set "data", "at", "price", "note" back`)
	e.apply(ctx, stmts)
	e.requireTable(before, "items", "id", "region")

	// A delete: the row inserted again, values from removed_fields.
	e.tx(ctx, `DELETE FROM items WHERE id = 1`)
	del := e.lastEntry()
	stmts = e.revert(store.RevertEntry(del))
	require.Len(t, stmts, 1)
	require.Equal(t, `INSERT INTO "items" ("id", "region", "data", "at", "price", "note", "code") SELECT r."id", r."region", `+
		`r."data", r."at", r."price", r."note", r."code" FROM jsonb_to_record($1::jsonb) AS r("id" integer, "region" text, `+
		`"data" jsonb, "at" timestamp with time zone, "price" numeric, "note" text, "code" item_code)`, stmts[0].SQL)
	e.apply(ctx, stmts)
	e.requireTable(before, "items", "id", "region")

	// A create: the row deleted by its key.
	e.tx(ctx, `INSERT INTO items VALUES (3, 'eu', NULL, NULL, NULL, NULL, 'k3')`)
	create := e.lastEntry()
	stmts = e.revert(store.RevertEntry(create))
	require.Equal(t, `DELETE FROM "items" WHERE ("id", "region") = (SELECT r."id", r."region" `+
		`FROM jsonb_to_record($1::jsonb) AS r("id" integer, "region" text))`, stmts[0].SQL)
	require.Equal(t, []any{`{"id":3,"region":"eu"}`}, stmts[0].Args)
	e.apply(ctx, stmts)
	e.requireTable(before, "items", "id", "region")

	// An update of the key: found at the key it left, set back.
	e.tx(ctx, `UPDATE items SET region = 'ap', price = 0 WHERE id = 2`)
	stmts = e.revert(store.RevertEntry(e.lastEntry()))
	require.Equal(t, []any{`{"price":20.000,"region":"us"}`, `{"id":2,"region":"ap"}`}, stmts[0].Args)
	e.apply(ctx, stmts)
	e.requireTable(before, "items", "id", "region")

	// The reverts were recorded: replaying the entries gives the table
	// (the row from before auditing aside).
	replayed, err := store.ReplayTable(ctx, e.plain, "", "items", []string{"id", "region"})
	require.NoError(t, err)
	delete(before, `[0,"xx"]`)
	require.NoError(t, store.EqualStates(before, replayed))
}

// keys of a one-column key are strings converted on the server, and names
// that need quoting are quoted.
func TestRevertQuotedNames(t *testing.T) {
	e := newRevertEnv(t, auditpgx.RegistryConfig{}, `CREATE TABLE "We""ird" ("Key" uuid PRIMARY KEY, "se lect" int[], "x" point)`,
		func(r *auditpgx.Registry) error { return r.RegisterTable(`"We""ird"`) })
	ctx := e.ctx
	before := e.snapshot(`"We""ird"`, "Key")
	tx := e.tx(ctx, `INSERT INTO "We""ird" VALUES ('0b5e1ba8-5d0c-4f5b-9d7a-6c1f2f7f0a01', '{1,2}', '(1,2)')`,
		`INSERT INTO "We""ird" VALUES ('0b5e1ba8-5d0c-4f5b-9d7a-6c1f2f7f0a02', NULL, NULL)`)
	stmts := e.revert(store.RevertTx(tx))
	require.Len(t, stmts, 2)
	require.Equal(t, `DELETE FROM "We""ird" WHERE ("Key") = (SELECT r."Key" FROM jsonb_to_record($1::jsonb) AS r("Key" uuid))`, stmts[0].SQL)
	require.Equal(t, []any{`{"Key":"0b5e1ba8-5d0c-4f5b-9d7a-6c1f2f7f0a02"}`}, stmts[0].Args, "reverse id order")
	e.apply(ctx, stmts)
	e.requireTable(before, `"We""ird"`, "Key")

	e.tx(ctx, `INSERT INTO "We""ird" VALUES ('0b5e1ba8-5d0c-4f5b-9d7a-6c1f2f7f0a01', '{1,2}', '(1,2)')`)
	before = e.snapshot(`"We""ird"`, "Key")
	tx = e.tx(ctx, `DELETE FROM "We""ird"`)
	e.apply(ctx, e.revert(store.RevertTx(tx)))
	e.requireTable(before, `"We""ird"`, "Key")
}

const teamsDDL = `CREATE TABLE teams (id int PRIMARY KEY, name text);
CREATE TABLE users (id int PRIMARY KEY, name text);
CREATE TABLE team_members (team_id int REFERENCES teams, user_id int REFERENCES users, role text DEFAULT 'member',
	PRIMARY KEY (team_id, user_id));
INSERT INTO teams VALUES (1, 't1'), (2, 't2');
INSERT INTO users SELECT g, 'u' || g FROM generate_series(1, 5) g;`

var members = auditpgx.M2M{
	Field:   "members",
	Owner:   auditpgx.Ref{Table: "teams", Column: "team_id"},
	Related: auditpgx.Ref{Table: "users", Column: "user_id"},
}

var membersLink = store.RevertLink{OwnerTable: "teams", Field: "members", JoinTable: "team_members",
	OwnerColumn: "team_id", RelatedColumn: "user_id"}

// TestRevertLinks: an associate is undone by deleting the link, a
// disassociate by inserting it again, in the join table a RevertLink
// names; without one, the entry is refused.
func TestRevertLinks(t *testing.T) {
	e := newRevertEnv(t, auditpgx.RegistryConfig{}, teamsDDL+`INSERT INTO team_members VALUES (1, 1, 'lead');`,
		func(r *auditpgx.Registry) error { return r.RegisterM2M("team_members", members) })
	ctx := e.ctx
	before := e.snapshot("team_members", "team_id", "user_id")

	e.tx(ctx, `INSERT INTO team_members (team_id, user_id) VALUES (2, 3)`)
	associate := e.lastEntry()
	_, err := store.Revert(ctx, e.plain, store.RevertEntry(associate))
	var re *store.RevertError
	require.ErrorAs(t, err, &re)
	require.ErrorIs(t, err, store.ErrNotRevertible)
	require.Equal(t, associate, re.EntryID)
	require.Contains(t, err.Error(), `do not name the join table of teams field "members": pass a RevertLink`)

	stmts := e.revert(store.RevertEntry(associate), membersLink)
	require.Len(t, stmts, 1)
	require.Equal(t, `DELETE FROM "team_members" WHERE ("team_id", "user_id") = (SELECT r."team_id", r."user_id" `+
		`FROM jsonb_to_record($1::jsonb) AS r("team_id" integer, "user_id" integer))`, stmts[0].SQL)
	require.Equal(t, []any{`{"team_id":"2","user_id":"3"}`}, stmts[0].Args)
	require.Contains(t, stmts[0].Description, `undo the associate of teams "2" (members: users "3"): delete the link from team_members`)
	e.apply(ctx, stmts)
	e.requireTable(before, "team_members", "team_id", "user_id")

	e.tx(ctx, `DELETE FROM team_members WHERE user_id = 1`)
	stmts = e.revert(store.RevertEntry(e.lastEntry()), membersLink)
	require.Equal(t, `INSERT INTO "team_members" ("team_id", "user_id") SELECT r."team_id", r."user_id" `+
		`FROM jsonb_to_record($1::jsonb) AS r("team_id" integer, "user_id" integer)`, stmts[0].SQL)
	require.Contains(t, stmts[0].Description, "its other columns get their defaults")
	e.apply(ctx, stmts)
	after := e.snapshot("team_members", "team_id", "user_id")
	require.JSONEq(t, `"member"`, string(after["[1,1]"]["role"]), "the role is not recorded")

	// Links of the revert were recorded: associate, disassociate, associate
	// (the revert), then the revert's disassociate... in id order.
	var ops []string
	rows, err := e.plain.QueryContext(ctx, `SELECT operation || ' ' || object_id || ' ' || related_object_id FROM auditpgx_entry ORDER BY id`)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		ops = append(ops, s)
	}
	require.Equal(t, []string{"associate 2 3", "disassociate 2 3", "disassociate 1 1", "associate 1 1"}, ops)

	// Invalid links are refused, naming the field.
	for _, tc := range []struct {
		link store.RevertLink
		want string
	}{
		{store.RevertLink{OwnerTable: "teams", Field: "members", JoinTable: "team_members", OwnerColumn: "team_id"}, "RelatedColumn is empty"},
		{store.RevertLink{OwnerTable: "teams", Field: "members", JoinTable: "a.b.c", OwnerColumn: "x", RelatedColumn: "y"}, `JoinTable "a.b.c"`},
		{store.RevertLink{OwnerTable: "teams", Field: "members", JoinTable: "team_members", OwnerColumn: "team_id", RelatedColumn: "member_id"},
			`join table team_members (RevertLink for teams "members") has no column "member_id"`},
	} {
		_, err := store.Revert(ctx, e.plain, store.RevertEntry(associate), tc.link)
		require.ErrorContains(t, err, tc.want)
	}
	_, err = store.Revert(ctx, e.plain, store.RevertEntry(associate), membersLink, membersLink)
	require.ErrorContains(t, err, `two RevertLink values for teams "members"`)
}

// TestRevertJoinTableAlsoAudited: a join table registered with
// RegisterTable too has its links restored by its own rows' entries.
func TestRevertJoinTableAlsoAudited(t *testing.T) {
	e := newRevertEnv(t, auditpgx.RegistryConfig{}, teamsDDL+`INSERT INTO team_members VALUES (1, 1, 'lead'), (1, 2, 'x');`,
		func(r *auditpgx.Registry) error {
			if err := r.RegisterM2M("team_members", members); err != nil {
				return err
			}
			return r.RegisterTable("team_members")
		})
	ctx := e.ctx
	before := e.snapshot("team_members", "team_id", "user_id")
	tx := e.tx(ctx, `INSERT INTO team_members VALUES (2, 4, 'guest')`, `UPDATE team_members SET user_id = 5 WHERE user_id = 2`)
	stmts := e.revert(store.RevertTx(tx), membersLink)
	require.Len(t, stmts, 2, "the rows' entries only")
	for _, s := range stmts {
		require.NotContains(t, s.Description, "link")
	}
	e.apply(ctx, stmts)
	e.requireTable(before, "team_members", "team_id", "user_id")
}

const shopDDL = teamsDDL + `
CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, team_id int REFERENCES teams,
	total numeric(12, 2), meta jsonb, placed timestamptz DEFAULT now(), doubled numeric GENERATED ALWAYS AS (total * 2) STORED);
INSERT INTO team_members VALUES (1, 1, 'member'), (1, 2, 'member');`

// TestRevertTransaction: a transaction with a create, updates, a delete,
// an associate and a disassociate, reverted whole through the driver:
// every table is as it was before, and the revert wrote entries of its
// own with the reason in their context.
func TestRevertTransaction(t *testing.T) {
	e := newRevertEnv(t, auditpgx.RegistryConfig{}, shopDDL, func(r *auditpgx.Registry) error {
		for _, t := range []string{"teams", "users", "orders"} {
			if err := r.RegisterTable(t); err != nil {
				return err
			}
		}
		return r.RegisterM2M("team_members", members)
	})
	ctx := e.ctx
	e.tx(ctx, `INSERT INTO orders (team_id, total, meta, placed) VALUES (1, 10.50, '{"lines": [1, 2]}', '2024-01-01 10:00+01'),
		(2, 99.99, NULL, '2024-01-02 00:00:00.5+00')`, `UPDATE users SET name = 'Uno' WHERE id = 1`)
	tables := map[string][]string{"teams": {"id"}, "users": {"id"}, "orders": {"id"}, "team_members": {"team_id", "user_id"}}
	before := map[string]map[string]diff.Image{}
	for table, keys := range tables {
		before[table] = e.snapshot(table, keys...)
	}

	tx := e.tx(ctx,
		`INSERT INTO teams VALUES (3, 't3')`,
		`INSERT INTO team_members (team_id, user_id) VALUES (3, 1), (3, 2)`,
		`DELETE FROM team_members WHERE team_id = 1 AND user_id = 2`,
		`UPDATE users SET name = 'renamed ' || id WHERE id IN (1, 2)`,
		`UPDATE orders SET total = total + 1, meta = '{"lines": []}', placed = now() WHERE id = 1`,
		`DELETE FROM orders WHERE id = 2`,
		`INSERT INTO orders (team_id, total) VALUES (3, 5)`)
	changed := map[string]map[string]diff.Image{}
	for table, keys := range tables {
		changed[table] = e.snapshot(table, keys...)
	}
	stmts := e.revert(store.RevertTx(tx), membersLink)
	require.Len(t, stmts, 9)
	for i := 1; i < len(stmts); i++ {
		require.Greater(t, stmts[i-1].EntryID, stmts[i].EntryID, "reverse id order")
	}
	var reinsert store.Statement
	for _, s := range stmts {
		if strings.HasPrefix(s.SQL, `INSERT INTO "orders"`) {
			reinsert = s
		}
	}
	require.Contains(t, reinsert.SQL, `OVERRIDING SYSTEM VALUE`, "an identity column")
	require.NotContains(t, reinsert.SQL, `"doubled"`, "a generated column")

	rctx := auditpgx.WithReason(auditpgx.WithActor(ctx, "reverter"), "revert of tx 1")
	revertTx := e.apply(rctx, stmts)
	for table, keys := range tables {
		e.requireTable(before[table], table, keys...)
	}
	var n int
	require.NoError(t, e.plain.QueryRowContext(ctx, `SELECT count(*) FROM auditpgx_entry WHERE tx_id = $1
		AND created_by = 'reverter' AND context->>'reason' = 'revert of tx 1'`, revertTx).Scan(&n))
	require.Equal(t, 9, n)

	// Reverting the revert redoes the transaction.
	e.apply(ctx, e.revert(store.RevertTx(revertTx), membersLink))
	for table, keys := range tables {
		require.NoError(t, store.EqualStates(changed[table], e.snapshot(table, keys...)), table)
	}
}

// TestRevertConflict: a later change of the object, outside the
// selection, is refused, naming the later entry; RevertForce goes on.
func TestRevertConflict(t *testing.T) {
	e := newRevertEnv(t, auditpgx.RegistryConfig{}, teamsDDL, func(r *auditpgx.Registry) error {
		if err := r.RegisterTable("users"); err != nil {
			return err
		}
		return r.RegisterM2M("team_members", members)
	})
	ctx := e.ctx
	e.tx(ctx, `UPDATE users SET name = 'a' WHERE id = 1`)
	first := e.lastEntry()
	e.tx(ctx, `UPDATE users SET name = 'b' WHERE id = 1`)
	second := e.lastEntry()
	e.tx(ctx, `UPDATE users SET name = 'other' WHERE id = 2`)

	_, err := store.Revert(ctx, e.plain, store.RevertEntry(first))
	require.ErrorIs(t, err, store.ErrRevertConflict)
	require.ErrorIs(t, err, store.ErrNotRevertible)
	var re *store.RevertError
	require.ErrorAs(t, err, &re)
	require.Equal(t, first, re.EntryID)
	require.Equal(t, second, re.LaterEntryID)
	require.Contains(t, err.Error(), `entry `+itoa(second)+` (update of users "1") changed it since, and is not selected (RevertForce reverts anyway)`)

	stmts := e.revert(store.RevertEntry(first), store.RevertForce())
	e.apply(ctx, stmts)
	var name string
	require.NoError(t, e.plain.QueryRowContext(ctx, `SELECT name FROM users WHERE id = 1`).Scan(&name))
	require.Equal(t, "u1", name)

	// The latest entry of the object has nothing after it.
	e.revert(store.RevertEntry(e.lastEntry()))

	// A key moved away since.
	e.tx(ctx, `UPDATE users SET name = 'c' WHERE id = 3`)
	third := e.lastEntry()
	e.tx(ctx, `UPDATE users SET id = 30 WHERE id = 3`)
	_, err = store.Revert(ctx, e.plain, store.RevertEntry(third))
	require.ErrorAs(t, err, &re)
	require.Equal(t, third+1, re.LaterEntryID)
	require.Contains(t, err.Error(), `(update of users "30") moved it to another key since`)

	// Within the selection, later entries of the object are no conflict:
	// an update, a move of its key and an update at the new key.
	before := e.snapshot("users", "id")
	tx := e.tx(ctx, `UPDATE users SET name = 'd' WHERE id = 4`, `UPDATE users SET id = 40 WHERE id = 4`,
		`UPDATE users SET name = 'e' WHERE id = 40`)
	e.apply(ctx, e.revert(store.RevertTx(tx)))
	e.requireTable(before, "users", "id")

	// A link associated and then disassociated.
	e.tx(ctx, `INSERT INTO team_members (team_id, user_id) VALUES (1, 4)`)
	linked := e.lastEntry()
	e.tx(ctx, `DELETE FROM team_members WHERE user_id = 4`)
	_, err = store.Revert(ctx, e.plain, store.RevertEntry(linked), membersLink)
	require.ErrorAs(t, err, &re)
	require.Equal(t, linked+1, re.LaterEntryID)
	require.Contains(t, err.Error(), `(disassociate of teams "1") changed it since`)
}

// TestRevertUnrestorable: redacted and excluded columns are refused,
// naming the table, entry and column; RevertSkipUnrestorable leaves them
// as they are (an update) or to their defaults (a re-insert).
func TestRevertUnrestorable(t *testing.T) {
	e := newRevertEnv(t, auditpgx.RegistryConfig{}, `CREATE TABLE accounts (id int PRIMARY KEY, name text,
		pw text NOT NULL DEFAULT 'reset-me', seen timestamptz DEFAULT '2000-01-01 00:00+00')`,
		func(r *auditpgx.Registry) error {
			return r.RegisterTable("accounts", auditpgx.Redact("pw"), auditpgx.Exclude("seen"))
		})
	ctx := e.ctx
	e.tx(ctx, `INSERT INTO accounts VALUES (1, 'Al', 'hunter2-secret', now())`)
	e.tx(ctx, `UPDATE accounts SET name = 'Alan', pw = 'correct-horse-secret', seen = now() WHERE id = 1`)
	update := e.lastEntry()

	_, err := store.Revert(ctx, e.plain, store.RevertEntry(update))
	require.ErrorIs(t, err, store.ErrUnrestorable)
	var re *store.RevertError
	require.ErrorAs(t, err, &re)
	require.Equal(t, "pw", re.Column)
	require.Equal(t, "accounts", re.TableName)
	require.Equal(t, `auditpgx: cannot revert entry `+itoa(update)+` (update of accounts "1"): column "pw" is redacted: `+
		`its old value is not recorded (RevertSkipUnrestorable leaves it as it is)`, err.Error())
	require.NotContains(t, err.Error(), "secret")

	stmts := e.revert(store.RevertEntry(update), store.RevertSkipUnrestorable())
	require.Len(t, stmts, 1)
	require.Contains(t, stmts[0].SQL, `SET ("name") = `)
	require.Contains(t, stmts[0].Description, `set "name" back; "pw" is left as it is (redacted: its old value is not recorded)`)
	e.apply(ctx, stmts)
	var name, pw string
	require.NoError(t, e.plain.QueryRowContext(ctx, `SELECT name, pw FROM accounts`).Scan(&name, &pw))
	require.Equal(t, []string{"Al", "correct-horse-secret"}, []string{name, pw})

	// An update of a redacted column only: nothing left to do.
	e.tx(ctx, `UPDATE accounts SET pw = 'x' WHERE id = 1`)
	require.Empty(t, e.revert(store.RevertEntry(e.lastEntry()), store.RevertSkipUnrestorable()))

	// An update whose old values were not recorded.
	e.tx(ctx, `UPDATE accounts SET name = 'Al2' WHERE id = 1`)
	replaced := e.lastEntry()
	_, err = e.plain.ExecContext(ctx, `UPDATE auditpgx_entry SET changes = '{"added_fields": {}, "removed_fields": {},
		"changed_fields": {}, "replaced_fields": {"id": 1, "name": "Al2", "pw": "$encrypted$"}}' WHERE id = $1`, replaced)
	require.NoError(t, err)
	_, err = store.Revert(ctx, e.plain, store.RevertEntry(replaced))
	require.ErrorAs(t, err, &re)
	require.Equal(t, "id", re.Column)
	require.Contains(t, err.Error(), `column "id" is replaced: the update's entry holds no old values (replaced_fields)`)
	require.Empty(t, e.revert(store.RevertEntry(replaced), store.RevertSkipUnrestorable()))

	// A delete: pw is redacted, seen is not in the entry.
	e.tx(ctx, `DELETE FROM accounts WHERE id = 1`)
	del := e.lastEntry()
	_, err = store.Revert(ctx, e.plain, store.RevertEntry(del))
	require.ErrorAs(t, err, &re)
	require.Equal(t, "pw", re.Column)
	require.Contains(t, err.Error(), `(delete of accounts "1"): column "pw" is redacted: its value is not recorded (RevertSkipUnrestorable gives it its default)`)
	stmts = e.revert(store.RevertEntry(del), store.RevertSkipUnrestorable())
	require.Equal(t, `INSERT INTO "accounts" ("id", "name") SELECT r."id", r."name" FROM jsonb_to_record($1::jsonb) AS r("id" integer, "name" text)`, stmts[0].SQL)
	require.Contains(t, stmts[0].Description, `insert the row again; "pw" gets its default (redacted: its value is not recorded), `+
		`"seen" gets its default (not in the entry: excluded, or added to the table since)`)
	e.apply(ctx, stmts)
	var seenDefault bool
	require.NoError(t, e.plain.QueryRowContext(ctx, `SELECT name, pw, seen = '2000-01-01 00:00+00' FROM accounts`).Scan(&name, &pw, &seenDefault))
	require.Equal(t, []string{"Al2", "reset-me"}, []string{name, pw})
	require.True(t, seenDefault)

	// Excluded alone.
	_, err = e.plain.ExecContext(ctx, `ALTER TABLE accounts ADD COLUMN extra int`)
	require.NoError(t, err)
	_, err = e.plain.ExecContext(ctx, `UPDATE auditpgx_entry SET changes = jsonb_set(changes, '{removed_fields,pw}', '"clear"') WHERE id = $1`, del)
	require.NoError(t, err)
	_, err = store.Revert(ctx, e.plain, store.RevertEntry(del), store.RevertForce())
	require.ErrorAs(t, err, &re)
	require.Equal(t, "seen", re.Column)
	require.Contains(t, err.Error(), `column "seen" is not in the entry: excluded, or added to the table since`)

	// A column the table no longer has.
	_, err = e.plain.ExecContext(ctx, `ALTER TABLE accounts DROP COLUMN name`)
	require.NoError(t, err)
	_, err = store.Revert(ctx, e.plain, store.RevertEntry(update))
	require.ErrorAs(t, err, &re)
	require.Equal(t, "name", re.Column)
	require.Contains(t, err.Error(), `column "name" is not a column of the table now`)
}

// TestRevertRefused: truncate, snapshot and suppressed entries, and
// selections with no entries.
func TestRevertRefused(t *testing.T) {
	e := newRevertEnv(t, auditpgx.RegistryConfig{AllowSuppression: true}, `CREATE TABLE notes (id int PRIMARY KEY, body text);
		INSERT INTO notes VALUES (1, 'old')`,
		func(r *auditpgx.Registry) error { return r.RegisterTable("notes", auditpgx.RecordTruncate()) })
	ctx := e.ctx
	_, err := auditpgx.Baseline(ctx, e.app, auditpgx.WithRegistry(e.reg), auditpgx.BaselineTables("notes"))
	require.NoError(t, err)
	snapshot := e.lastEntry() - 1
	marker := e.lastEntry()
	e.tx(auditpgx.WithoutAudit(ctx, "backfill"), `UPDATE notes SET body = 'new'`)
	suppressed := e.lastEntry()
	e.tx(ctx, `TRUNCATE notes`)
	truncate := e.lastEntry()
	for _, tc := range []struct {
		id   int64
		want string
	}{
		{snapshot, `(snapshot of notes "1"): a baseline's snapshot entry records a row, not a change`},
		{marker, `(snapshot of notes ""): a baseline's snapshot entry records a row, not a change`},
		{suppressed, `(suppressed of notes ""): a statement run under WithoutAudit wrote its rows without entries`},
		{truncate, `(truncate of notes ""): a truncate's rows are not recorded`},
	} {
		_, err := store.Revert(ctx, e.plain, store.RevertEntry(tc.id))
		require.ErrorIs(t, err, store.ErrNotRevertible)
		require.ErrorContains(t, err, "entry "+itoa(tc.id)+" "+tc.want)
	}

	_, err = store.Revert(ctx, e.plain, store.RevertEntry(9999))
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorContains(t, err, "no entries of entry 9999")
	_, err = store.Revert(ctx, e.plain, store.RevertTx(42))
	require.ErrorContains(t, err, "no entries of tx 42")
	_, err = store.Revert(ctx, e.plain, store.RevertSelector{})
	require.ErrorContains(t, err, "select an entry (RevertEntry) or a transaction (RevertTx)")
	_, err = store.Revert(ctx, e.plain, store.RevertEntry(truncate), store.WithKeys("id"))
	require.ErrorContains(t, err, "WithKeys does not apply")
	_, err = store.Revert(ctx, e.plain, store.RevertEntry(truncate), store.WithEntryTable("missing"))
	require.ErrorContains(t, err, `"missing"`)

	// A table that is gone.
	e.tx(ctx, `INSERT INTO notes VALUES (2, 'x')`)
	create := e.lastEntry()
	_, err = e.plain.ExecContext(ctx, `DROP TABLE notes`)
	require.NoError(t, err)
	_, err = store.Revert(ctx, e.plain, store.RevertEntry(create))
	require.ErrorIs(t, err, store.ErrNotRevertible)
	require.ErrorContains(t, err, `(create of notes "2"): table notes does not exist`)
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

var _ = errors.Is
