package workload_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const workloadDDL = `
CREATE TABLE users (
	id bigint PRIMARY KEY DEFERRABLE, -- checked at the end of each statement, so keys can shift
	name text NOT NULL,
	email text,
	password_hash text,
	last_login timestamptz,
	score numeric,
	tags text[],
	meta jsonb
);
CREATE TABLE stock (sku text, region text, qty int, price numeric(10,2), PRIMARY KEY (region, sku));
CREATE TABLE teams (id int PRIMARY KEY, name text);
CREATE TABLE team_members (team_id int, user_id bigint, PRIMARY KEY (team_id, user_id));
INSERT INTO teams VALUES (1, 'red'), (2, 'blue');`

// Audited tables as the workload registers them.
var (
	usersCols = diff.Columns{
		Names:    []string{"id", "name", "email", "password_hash", "score", "tags", "meta"},
		Redacted: map[string]bool{"password_hash": true},
	}
	stockCols = diff.Columns{Names: []string{"sku", "region", "qty", "price"}}
	stockKeys = []string{"region", "sku"}
)

// step is one statement, or one transaction, of the workload.
type step struct {
	name string
	run  func(ctx context.Context, db *sql.DB, r *rand.Rand) error
}

func exec(q string, args ...func(r *rand.Rand) any) func(context.Context, *sql.DB, *rand.Rand) error {
	return func(ctx context.Context, db *sql.DB, r *rand.Rand) error {
		vals := make([]any, len(args))
		for i, a := range args {
			vals[i] = a(r)
		}
		_, err := db.ExecContext(ctx, q, vals...)
		return err
	}
}

func intn(n int) func(*rand.Rand) any { return func(r *rand.Rand) any { return r.IntN(n) } }
func word(r *rand.Rand) any {
	words := []string{"ann", "bo", "cy", "dee", "O'Brien", `back\slash`, "ünï", "emoji 🎉", ""}
	return words[r.IntN(len(words))]
}

var workloadSteps = []step{
	{"insert users", exec(`INSERT INTO users (id, name, email, password_hash, last_login, score, tags, meta)
		SELECT coalesce((SELECT max(id) FROM users), 0) + g, 'u' || g || $1::text, 'u' || g || '@x', 'pw' || g, now(),
			g * 1.5, ARRAY['t' || g, 'all'], jsonb_build_object('n', g, 'nested', jsonb_build_object('k', $1::text))
		FROM generate_series(1, 1 + $2::int) g`, word, intn(3))},
	{"rename some users", exec(`UPDATE users SET name = name || $1::text WHERE id % 3 = $2::int`, word, intn(3))},
	{"set email to null", exec(`UPDATE users SET email = NULL WHERE id % 4 = $1::int`, intn(4))},
	{"change scale only", exec(`UPDATE users SET score = score * 1.00 WHERE id % 2 = $1::int`, intn(2))}, // equal: no entry
	{"change score", exec(`UPDATE users SET score = score + $1::int WHERE id % 2 = 0`, intn(5))},
	{"change password", exec(`UPDATE users SET password_hash = md5(random()::text) WHERE id % 5 = $1::int`, intn(5))},
	{"log in (excluded column)", exec(`UPDATE users SET last_login = now()`)},
	{"edit tags and meta", exec(`UPDATE users SET tags = tags || $1::text, meta = meta || jsonb_build_object('w', $1::text) WHERE id % 3 = $2::int`, word, intn(3))},
	{"move one user's key", exec(`UPDATE users SET id = id + 1000 WHERE id = (SELECT min(id) FROM users WHERE id < 1000)`)},
	{"shift keys onto each other", exec(`UPDATE users SET id = id + 1 WHERE id >= (SELECT max(id) - 2 FROM users)`)},
	{"delete a user", exec(`DELETE FROM users WHERE id = (SELECT id FROM users ORDER BY md5(id::text || $1::int) LIMIT 1)`, intn(100))},
	{"insert stock", exec(`INSERT INTO stock SELECT 'sku' || g || '-' || $1::int, r, g, g * 0.5
		FROM generate_series(1, 2) g, unnest(ARRAY['eu', 'us']) r ON CONFLICT DO NOTHING`, intn(50))},
	{"restock", exec(`UPDATE stock SET qty = qty + 1, price = price * 2 WHERE region = 'eu'`)},
	{"move stock region", exec(`UPDATE stock SET region = region || '2' WHERE (region, sku) = (SELECT region, sku FROM stock ORDER BY region, sku LIMIT 1)`)},
	{"delete stock", exec(`DELETE FROM stock WHERE qty > $1::int`, intn(4))},
	{"join team", exec(`INSERT INTO team_members SELECT $1::int + 1, id FROM users WHERE id % 3 = 0 ON CONFLICT DO NOTHING`, intn(2))},
	{"leave team", exec(`DELETE FROM team_members WHERE user_id % 2 = $1::int`, intn(2))},
	{"transaction, committed", func(ctx context.Context, db *sql.DB, r *rand.Rand) error {
		return inTx(ctx, db, true, `UPDATE users SET name = 'tx' || id WHERE id % 2 = 1`, `DELETE FROM stock WHERE region = 'us' AND qty = 2`)
	}},
	{"transaction, rolled back", func(ctx context.Context, db *sql.DB, r *rand.Rand) error {
		return inTx(ctx, db, false, `DELETE FROM users`, `UPDATE stock SET qty = 0`)
	}},
}

func inTx(ctx context.Context, db *sql.DB, commit bool, stmts ...string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	if commit {
		return tx.Commit()
	}
	return tx.Rollback()
}

// moment is the audited tables as they were after one step.
type moment struct {
	step         string
	at           time.Time // the latest entry's created
	users, stock map[string]diff.Image
}

// A workload through auditpgx, then: replaying the entries gives the
// tables, and AsOf at the end of every step gives that step's rows.
func TestReplayEqualsTablesAfterWorkload(t *testing.T) {
	ctx := context.Background()
	dsn, _ := pgtest.NewSchema(t)
	plain, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { plain.Close() })
	_, err = plain.ExecContext(ctx, workloadDDL)
	require.NoError(t, err)

	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{})
	require.NoError(t, err)
	require.NoError(t, reg.RegisterTable("users", auditpgx.Exclude("last_login"), auditpgx.Redact("password_hash")))
	require.NoError(t, reg.RegisterTable("stock"))
	require.NoError(t, reg.RegisterM2M("team_members", auditpgx.M2M{
		Field:   "members",
		Owner:   auditpgx.Ref{Table: "teams", Column: "team_id"},
		Related: auditpgx.Ref{Table: "users", Column: "user_id"},
	}))
	conn, err := auditpgx.NewConnector(dsn, auditpgx.WithRegistry(reg))
	require.NoError(t, err)
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, auditpgx.Migrate(ctx, db, auditpgx.WithRegistry(reg)))

	r := rand.New(rand.NewPCG(8, 1))
	var (
		moments []moment
		lastAt  time.Time
	)
	for i := range 150 {
		s := workloadSteps[0] // start with some users
		if i > 2 {
			s = workloadSteps[r.IntN(len(workloadSteps))]
		}
		require.NoError(t, s.run(auditpgx.WithActor(ctx, "worker"), db, r), "step %d: %s", i, s.name)
		var latest sql.NullTime
		require.NoError(t, plain.QueryRowContext(ctx, `SELECT max(created) FROM auditpgx_entry`).Scan(&latest))
		if !latest.Valid || !latest.Time.After(lastAt) {
			continue // no entry: the step changed nothing audited
		}
		lastAt = latest.Time
		m := moment{step: fmt.Sprintf("%d: %s", i, s.name), at: latest.Time}
		m.users, err = store.Snapshot(ctx, plain, "users", []string{"id"}, usersCols)
		require.NoError(t, err)
		m.stock, err = store.Snapshot(ctx, plain, "stock", stockKeys, stockCols)
		require.NoError(t, err)
		moments = append(moments, m)
	}
	final := moments[len(moments)-1]
	var shifts int
	require.NoError(t, plain.QueryRowContext(ctx, `SELECT count(*) FROM auditpgx_entry e WHERE table_name = 'users' AND changes->'changed_fields' ? 'id'
		AND EXISTS (SELECT FROM auditpgx_entry o WHERE o.table_name = 'users' AND o.tx_id = e.tx_id AND o.id <> e.id AND o.changes->'changed_fields' ? 'id')`).Scan(&shifts))
	t.Logf("%d moments, %d users, %d stock; %d key changes shifted within a statement", len(moments), len(final.users), len(final.stock), shifts)
	require.NotEmpty(t, final.users)
	require.NotEmpty(t, final.stock)

	// The entries include key changes, shifts and associations.
	for _, q := range []store.Query{
		{TableName: "users", Changes: []store.ChangeFilter{{Kind: store.FieldChanged, Field: "id"}}},
		{TableName: "stock", Changes: []store.ChangeFilter{{Kind: store.FieldChanged, Field: "region"}}},
		{Operations: []store.Operation{store.OpAssociate}},
		{Operations: []store.Operation{store.OpDisassociate}},
	} {
		got, err := store.List(ctx, plain, q)
		require.NoError(t, err)
		require.NotEmpty(t, got, "the workload wrote no entry for %+v", q)
	}

	t.Run("ReplayTable", func(t *testing.T) {
		users, err := store.ReplayTable(ctx, plain, "", "users", []string{"id"})
		require.NoError(t, err)
		require.NoError(t, store.EqualStates(users, final.users), "users: replay (a) and table (b)")
		stock, err := store.ReplayTable(ctx, plain, "", "stock", stockKeys)
		require.NoError(t, err)
		require.NoError(t, store.EqualStates(stock, final.stock), "stock: replay (a) and table (b)")
	})

	t.Run("Replay of every entry", func(t *testing.T) {
		var all []store.Entry
		q := store.Query{Limit: 1000}
		for {
			p, err := store.ListPage(ctx, plain, q)
			require.NoError(t, err)
			all = append(all, p.Entries...)
			if p.Next == "" {
				break
			}
			q.Cursor = p.Next
		}
		state, err := store.Replay(all, map[string][]string{"users": {"id"}, "stock": stockKeys})
		require.NoError(t, err)
		require.NoError(t, store.EqualStates(state["users"], final.users))
		require.NoError(t, store.EqualStates(state["stock"], final.stock))
		require.NotContains(t, state, "teams", "association entries change no table state")

		// Without the key columns, the first key change is an error naming it.
		_, err = store.Replay(all, nil)
		var re *store.ReplayError
		require.ErrorAs(t, err, &re)
		require.Equal(t, store.OpUpdate, re.Operation)
	})

	t.Run("AsOf after every step", func(t *testing.T) {
		everUsers, everStock := map[string]bool{}, map[string]bool{}
		for _, m := range moments {
			for id := range m.users {
				everUsers[id] = true
			}
			for id := range m.stock {
				everStock[id] = true
			}
		}
		for i, m := range moments {
			if i%4 != 0 && i != len(moments)-1 {
				continue // a sample keeps the test quick
			}
			for _, tc := range []struct {
				table string
				ever  map[string]bool
				rows  map[string]diff.Image
			}{{"users", everUsers, m.users}, {"stock", everStock, m.stock}} {
				for id := range tc.ever {
					img, err := store.AsOf(ctx, plain, tc.table, id, m.at)
					want, exists := tc.rows[id]
					if !exists {
						require.ErrorIs(t, err, store.ErrNotFound, "after step %s: %s %s = %s", m.step, tc.table, id, img)
						continue
					}
					require.NoError(t, err, "after step %s: %s %s", m.step, tc.table, id)
					require.NoError(t, store.EqualStates(map[string]diff.Image{id: img}, map[string]diff.Image{id: want}),
						"after step %s: %s as of (a) and the table then (b)", m.step, tc.table)
				}
			}
		}
	})
}
