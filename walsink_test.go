// The WAL sink: the same entries as the table sink, sent as transactional
// logical decoding messages, and never sent where no slot would read them.

package auditpgx_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/internal/record"
	"github.com/auditpgx/auditpgx/relay"
)

// walEnv is an env whose registry sends entries to the WAL sink, in a
// database of its own (slots are per database) with a test_decoding slot
// that the test reads the messages from.
type walEnv struct {
	*env
	slot string
}

func newWALEnv(t *testing.T, setup string, register func(r *auditpgx.Registry) error) *walEnv {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	slot := fmt.Sprintf("t_%08x", rand.Uint32())
	cfg := auditpgx.RegistryConfig{Sink: auditpgx.WALSink{Slot: slot}, AllowSuppression: true}
	e := newEnvConfig(t, dsn, "public", cfg, setup, register)
	_, err := e.plain.ExecContext(e.ctx, `SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, slot)
	require.NoError(t, err)
	t.Cleanup(func() {
		e.plain.ExecContext(context.Background(), `SELECT pg_drop_replication_slot($1)`, slot) //nolint:errcheck // the database goes too
	})
	return &walEnv{env: e, slot: slot}
}

// walEntry is an entry as a message carries it, without what differs
// between two runs of the same statements (created, tx_id).
type walEntry struct {
	Op, Table, ObjectID, Changes, Context string
	Actor                                 *string
	Related                               [3]*string
	Fingerprinted                         bool
}

// messages decodes the entries of the messages committed since the last
// call, in order, and how many messages carried them.
func (w *walEnv) messages() ([]walEntry, int) {
	w.t.Helper()
	flushWAL(w.t, w.plain)
	rows, err := w.plain.QueryContext(w.ctx, `SELECT data FROM pg_logical_slot_get_changes($1, NULL, NULL)`, w.slot)
	require.NoError(w.t, err)
	defer rows.Close()
	var out []walEntry
	n := 0
	for rows.Next() {
		var data string
		require.NoError(w.t, rows.Scan(&data))
		prefix, content, ok := decodedMessage(w.t, data)
		if !ok || prefix != "auditpgx" {
			require.True(w.t, !ok || prefix == "auditpgx-test-flush", "an unexpected message: %s", data)
			continue
		}
		var m struct {
			V       int `json:"v"`
			Entries []struct {
				Created     string          `json:"created"`
				CreatedBy   *string         `json:"created_by"`
				Operation   string          `json:"operation"`
				TableName   string          `json:"table_name"`
				ObjectID    string          `json:"object_id"`
				Changes     json.RawMessage `json:"changes"`
				TxID        int64           `json:"tx_id"`
				Fingerprint *string         `json:"statement_fingerprint"`
				RelTable    *string         `json:"related_table_name"`
				RelObject   *string         `json:"related_object_id"`
				RelField    *string         `json:"related_field_name"`
				Context     json.RawMessage `json:"context"`
			} `json:"entries"`
		}
		require.NoError(w.t, json.Unmarshal([]byte(content), &m), content)
		require.Equal(w.t, 1, m.V)
		n++
		for _, e := range m.Entries {
			require.NotEmpty(w.t, e.Created)
			require.NotZero(w.t, e.TxID)
			out = append(out, walEntry{Op: e.Operation, Table: e.TableName, ObjectID: e.ObjectID, Changes: canonical(w.t, e.Changes),
				Context: canonical(w.t, e.Context), Actor: e.CreatedBy, Related: [3]*string{e.RelTable, e.RelObject, e.RelField},
				Fingerprinted: e.Fingerprint != nil})
		}
	}
	require.NoError(w.t, rows.Err())
	return out, n
}

// flushWAL flushes the WAL written so far: the throwaway servers run with
// synchronous_commit off, and decoding reads only flushed WAL. A commit
// with synchronous_commit on of a transaction that wrote WAL (a message of
// its own prefix) flushes it.
func flushWAL(t testing.TB, db *sql.DB) {
	t.Helper()
	tx, err := db.Begin()
	require.NoError(t, err)
	_, err = tx.Exec(`SET LOCAL synchronous_commit = on`)
	require.NoError(t, err)
	_, err = tx.Exec(`SELECT pg_logical_emit_message(true, 'auditpgx-test-flush', '')`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
}

// tableEntries reads the table sink's entries as walEntry values.
func (e *env) tableEntries() []walEntry {
	e.t.Helper()
	rows, err := e.plain.QueryContext(e.ctx, `SELECT operation, table_name, object_id, coalesce(changes::text, 'null'), coalesce(context::text, 'null'),
		created_by, related_table_name, related_object_id, related_field_name, statement_fingerprint IS NOT NULL FROM auditpgx_entry ORDER BY id`)
	require.NoError(e.t, err)
	defer rows.Close()
	var out []walEntry
	for rows.Next() {
		var w walEntry
		require.NoError(e.t, rows.Scan(&w.Op, &w.Table, &w.ObjectID, &w.Changes, &w.Context, &w.Actor, &w.Related[0], &w.Related[1], &w.Related[2], &w.Fingerprinted))
		w.Changes, w.Context = canonical(e.t, json.RawMessage(w.Changes)), canonical(e.t, json.RawMessage(w.Context))
		out = append(out, w)
	}
	require.NoError(e.t, rows.Err())
	return out
}

func canonical(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	if len(raw) == 0 {
		return "null"
	}
	return canonicalJSON(t, raw)
}

const walDDL = usersDDL + `CREATE UNIQUE INDEX ON users (email);
CREATE TABLE teams (id int PRIMARY KEY, name text);
CREATE TABLE members (team_id int REFERENCES teams ON DELETE CASCADE, user_id bigint REFERENCES users ON DELETE CASCADE, PRIMARY KEY (team_id, user_id));
CREATE TABLE notes (id int PRIMARY KEY, team_id int REFERENCES teams ON DELETE CASCADE, body text);`

func registerWAL(r *auditpgx.Registry) error {
	if err := registerUsers(r); err != nil {
		return err
	}
	if err := r.RegisterTable("teams", auditpgx.RecordTruncate()); err != nil {
		return err
	}
	if err := r.RegisterTable("notes", auditpgx.RecordTruncate()); err != nil {
		return err
	}
	return r.RegisterM2M("members", auditpgx.M2M{Field: "members", Owner: auditpgx.Ref{Table: "teams", Column: "team_id"},
		Related: auditpgx.Ref{Table: "users", Column: "user_id"}})
}

// walStatements is a statement, with its context and how it runs, that
// both sinks run.
type walStatement struct {
	sql   string
	query bool // run with QueryContext, reading every row
	ctx   func(context.Context) context.Context
	min   int // the server version it needs
}

func walStatements() []walStatement {
	with := func(ctx context.Context) context.Context {
		return auditpgx.WithReason(auditpgx.WithContext(auditpgx.WithActor(ctx, "alice"), "request_id", "r-1"), "ticket 9")
	}
	return []walStatement{
		{sql: `INSERT INTO users (id, name, email, password_hash) VALUES (1, 'a', 'a@x', 'secret'), (2, 'b', 'b@x', 'pw')`, ctx: with},
		{sql: `INSERT INTO teams VALUES (1, 't1'), (2, 't2')`},
		{sql: `INSERT INTO members VALUES (1, 1), (1, 2), (2, 1)`},
		{sql: `INSERT INTO notes VALUES (1, 1, 'n1'), (2, 2, 'n2')`},
		{sql: `UPDATE users SET name = 'aa', last_login = now() WHERE id = 1 RETURNING id, name`, query: true, ctx: with},
		{sql: `UPDATE users SET name = name WHERE id = 2`}, // no change, no entry
		{sql: `INSERT INTO users (id, name, email) VALUES (3, 'c', 'a@x') ON CONFLICT (email) DO UPDATE SET name = excluded.name`},
		{sql: `WITH moved AS (UPDATE notes SET body = 'moved' WHERE id = 2 RETURNING id) SELECT count(*) FROM moved`, query: true},
		{sql: `WITH gone AS (DELETE FROM notes WHERE id = 1 RETURNING id) SELECT id FROM gone ORDER BY id`, query: true},
		{sql: `UPDATE users SET email = 'z@x' WHERE id = 2; DELETE FROM members WHERE user_id = 2`},
		{sql: `MERGE INTO users u USING (VALUES (2, 'bb')) s(id, name) ON u.id = s.id WHEN MATCHED THEN UPDATE SET name = s.name`, min: 170000},
		{sql: `UPDATE users SET name = 'quiet' WHERE id = 2`, ctx: func(ctx context.Context) context.Context { return auditpgx.WithoutAudit(ctx, "backfill") }},
		{sql: `DELETE FROM teams WHERE id = 2`},                                         // cascades to members and notes
		{sql: `UPDATE users SET name = 'none' WHERE id = 99 RETURNING id`, query: true}, // no rows
		{sql: `INSERT INTO teams VALUES (3, 't3')`},
		{sql: `TRUNCATE notes`},
	}
}

// runWAL runs the statements and returns what the caller saw of each.
func runWAL(t *testing.T, e *env, version int) []string {
	var seen []string
	for _, s := range walStatements() {
		if version < s.min {
			continue
		}
		ctx := e.ctx
		if s.ctx != nil {
			ctx = s.ctx(ctx)
		}
		if s.query {
			rows, err := e.db.QueryContext(ctx, s.sql)
			require.NoError(t, err, s.sql)
			cols, err := rows.Columns()
			require.NoError(t, err)
			var got []string
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				require.NoError(t, rows.Scan(ptrs...))
				got = append(got, fmt.Sprint(vals...))
			}
			require.NoError(t, rows.Err(), s.sql)
			seen = append(seen, fmt.Sprintf("%s: %v %v", s.sql, cols, got))
			continue
		}
		res, err := e.db.ExecContext(ctx, s.sql)
		require.NoError(t, err, s.sql)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		seen = append(seen, fmt.Sprintf("%s: %d", s.sql, n))
	}
	return seen
}

// TestWALSinkEntriesEqualTableSink: every kind of entry, sent through the
// WAL, equals the table sink's, and the caller sees the same results.
func TestWALSinkEntriesEqualTableSink(t *testing.T) {
	t.Parallel()
	w := newWALEnv(t, walDDL, registerWAL)
	tbl := newSuppressingEnv(t, walDDL, registerWAL)
	version := tbl.serverVersion()
	if version < 140000 {
		t.Fatalf("the WAL sink needs PostgreSQL 14; this server is %d", version)
	}

	require.Equal(t, runWAL(t, tbl.env(), version), runWAL(t, w.env, version), "what the caller sees")
	got, messages := w.messages()
	want := tbl.tableEntries()
	require.NotEmpty(t, want)
	require.Equal(t, want, got)
	require.Zero(t, w.countEntries(), "the WAL sink writes no entry row")
	require.Greater(t, messages, 10)
	for _, e := range got {
		require.NotContains(t, e.Changes, "secret", "a redacted value left the server")
	}

	// A rolled-back transaction sends nothing.
	tx, err := w.db.BeginTx(w.ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(w.ctx, `INSERT INTO users (id, name) VALUES (50, 'rolled back')`)
	require.NoError(t, err)
	require.NoError(t, tx.Rollback())
	got, _ = w.messages()
	require.Empty(t, got)
}

// env returns e itself, for symmetry with walEnv.env.
func (e *env) env() *env { return e }

// TestWALSinkChunks: a statement of more rows than ChunkRows sends several
// messages, their entries in order.
func TestWALSinkChunks(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	slot := fmt.Sprintf("t_%08x", rand.Uint32())
	e := newEnvConfig(t, dsn, "public", auditpgx.RegistryConfig{Sink: auditpgx.WALSink{Slot: slot, ChunkRows: 3}}, usersDDL, registerUsers)
	_, err := e.plain.ExecContext(e.ctx, `SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, slot)
	require.NoError(t, err)
	t.Cleanup(func() { e.plain.ExecContext(context.Background(), `SELECT pg_drop_replication_slot($1)`, slot) }) //nolint:errcheck // best effort
	w := &walEnv{env: e, slot: slot}

	_, err = e.db.ExecContext(e.ctx, `INSERT INTO users (id, name) SELECT g, 'u' || g FROM generate_series(1, 10) g`)
	require.NoError(t, err)
	got, messages := w.messages()
	require.Equal(t, 4, messages, "10 entries in messages of at most 3")
	require.Len(t, got, 10)
	for i, en := range got {
		require.Equal(t, fmt.Sprint(i+1), en.ObjectID, "entries in statement order")
	}
}

// TestWALSinkRefusals: a write whose messages no slot would read fails,
// and nothing is written.
func TestWALSinkRefusals(t *testing.T) {
	t.Parallel()
	w := newWALEnv(t, usersDDL, registerUsers)
	_, err := w.db.ExecContext(w.ctx, `INSERT INTO users (id, name) VALUES (1, 'a')`)
	require.NoError(t, err)

	// The slot dropped while the application runs: the next write fails.
	_, err = w.plain.ExecContext(w.ctx, `SELECT pg_drop_replication_slot($1)`, w.slot)
	require.NoError(t, err)
	_, err = w.db.ExecContext(w.ctx, `UPDATE users SET name = 'b' WHERE id = 1`)
	require.ErrorIs(t, err, auditpgx.ErrWALSinkUnavailable)
	require.ErrorContains(t, err, `no logical replication slot "`+w.slot+`" in database`)
	_, err = w.db.QueryContext(w.ctx, `INSERT INTO users (id, name) VALUES (2, 'c') RETURNING id`)
	require.ErrorIs(t, err, auditpgx.ErrWALSinkUnavailable)
	var names []string
	rows, err := w.plain.QueryContext(w.ctx, `SELECT name FROM users ORDER BY id`)
	require.NoError(t, err)
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		names = append(names, n)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"a"}, names, "the refused writes did not happen")

	// Reads and unaudited writes are not affected.
	_, err = w.db.ExecContext(w.ctx, `CREATE TABLE free (x int); INSERT INTO free VALUES (1)`)
	require.NoError(t, err)

	// A server whose wal_level is not logical.
	srv, err := pgtest.Start(w.ctx, "")
	require.NoError(t, err)
	t.Cleanup(func() { srv.Stop() }) //nolint:errcheck // best effort
	plain, err := sql.Open("pgx", srv.URL())
	require.NoError(t, err)
	defer plain.Close()
	_, err = plain.ExecContext(w.ctx, usersDDL)
	require.NoError(t, err)
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{Sink: auditpgx.WALSink{}})
	require.NoError(t, err)
	require.NoError(t, registerUsers(reg))
	db := openWith(t, srv.URL(), reg)
	_, err = db.ExecContext(w.ctx, `INSERT INTO users (id, name) VALUES (1, 'a')`)
	require.ErrorIs(t, err, auditpgx.ErrWALSinkUnavailable)
	require.ErrorContains(t, err, "wal_level is replica, not logical")
	var n int
	require.NoError(t, plain.QueryRow(`SELECT count(*) FROM users`).Scan(&n))
	require.Zero(t, n)

	// Bad settings.
	_, err = auditpgx.NewRegistry(auditpgx.RegistryConfig{Sink: auditpgx.WALSink{Slot: "Bad-Name"}})
	require.ErrorIs(t, err, auditpgx.ErrInvalidRegistration)
	_, err = auditpgx.NewRegistry(auditpgx.RegistryConfig{Sink: auditpgx.WALSink{ChunkRows: -1}})
	require.ErrorIs(t, err, auditpgx.ErrInvalidRegistration)
}

// TestWALSinkThroughRelay: the driver's messages, streamed by the relay
// into the entry table of another database, are the table sink's entries,
// whole rows but id, created and tx_id, which the relay copies as sent.
func TestWALSinkThroughRelay(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	dest := pgtest.NewDatabase(t)
	slot := fmt.Sprintf("t_%08x", rand.Uint32())
	// The relay watches the registered tables: no write through the
	// driver, of any statement of the list, is an outside write.
	cfg := relay.Config{Source: dsn, Dest: dest, Slot: slot, Publication: slot, SetReplicaIdentity: true, Create: true,
		Watch: []relay.WatchTable{{Table: "users", Exclude: []string{"last_login"}, Redact: []string{"password_hash"}}, {Table: "teams"}, {Table: "notes"},
			{Table: "members", Link: &relay.WatchLink{Field: "members", OwnerTable: "teams", OwnerColumn: "team_id", RelatedTable: "users", RelatedColumn: "user_id"}}}}
	e := newEnvConfig(t, dsn, "public", auditpgx.RegistryConfig{Sink: auditpgx.WALSink{Slot: slot}, AllowSuppression: true}, walDDL, registerWAL)
	require.NoError(t, relay.Setup(context.Background(), cfg))
	t.Cleanup(func() {
		e.plain.ExecContext(context.Background(), `SELECT pg_drop_replication_slot($1)`, slot) //nolint:errcheck // the database goes too
	})
	tbl := newSuppressingEnv(t, walDDL, registerWAL)
	version := tbl.serverVersion()
	require.Equal(t, runWAL(t, tbl, version), runWAL(t, e, version))
	want := tbl.tableEntries()

	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx, cfg) }()
	destDB, err := sql.Open("pgx", dest)
	require.NoError(t, err)
	defer destDB.Close()
	require.Eventually(t, func() bool {
		var n int
		return destDB.QueryRow(`SELECT count(*) FROM auditpgx_entry`).Scan(&n) == nil && n >= len(want)
	}, 30*time.Second, 50*time.Millisecond)
	cancel()
	require.NoError(t, <-done)

	relayed := (&env{t: t, ctx: e.ctx, plain: destDB}).tableEntries()
	require.Equal(t, want, relayed)
	var txs, badCreated int
	require.NoError(t, destDB.QueryRow(`SELECT count(DISTINCT tx_id), count(*) FILTER (WHERE created > now() OR created < now() - interval '1 hour')
		FROM auditpgx_entry`).Scan(&txs, &badCreated))
	require.Greater(t, txs, 10, "each statement's own transaction id")
	require.Zero(t, badCreated)
	require.Zero(t, e.countEntries(), "nothing in the source's entry table")
}

// outsideDDL has registered tables whose keys Go renders (items, pairs)
// and the server renders (days), a function that writes one, and a
// trigger that writes another (stats) when one is written.
const outsideDDL = `
CREATE TABLE items (id int PRIMARY KEY, name text, secret text, note text);
CREATE TABLE days (d date PRIMARY KEY, v int);
CREATE TABLE pairs (a int, b text, v int, PRIMARY KEY (a, b));
CREATE TABLE stats (id int PRIMARY KEY, n int);
INSERT INTO stats VALUES (1, 0);
CREATE TABLE holders (item_id int, stat_id int, PRIMARY KEY (item_id, stat_id));
CREATE FUNCTION add_item(i int, nm text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN INSERT INTO items (id, name) VALUES (i, nm); END $$;
CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE stats SET n = n + 1 WHERE id = 1; RETURN NEW; END $$;
CREATE TRIGGER items_bump AFTER INSERT ON items FOR EACH ROW EXECUTE FUNCTION bump();`

func registerOutside(r *auditpgx.Registry) error {
	return errors.Join(r.RegisterTable("items", auditpgx.Exclude("note"), auditpgx.Redact("secret")),
		r.RegisterTable("days"), r.RegisterTable("pairs"), r.RegisterTable("stats"),
		r.RegisterM2M("holders", auditpgx.M2M{Field: "holders", Owner: auditpgx.Ref{Table: "items", Column: "item_id"},
			Related: auditpgx.Ref{Table: "stats", Column: "stat_id"}}))
}

// With Watch, the relay records every committed row change of a watched
// table that no entry of its transaction accounts for, as an outside
// entry with the registration's rules; writes through the driver never
// make one.
func TestRelayOutsideWrites(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	dest := pgtest.NewDatabase(t)
	slot := fmt.Sprintf("t_%08x", rand.Uint32())
	e := newEnvConfig(t, dsn, "public", auditpgx.RegistryConfig{Sink: auditpgx.WALSink{Slot: slot}}, outsideDDL, registerOutside)
	cfg := relay.Config{Source: dsn, Dest: dest, Slot: slot, Publication: slot, Watch: []relay.WatchTable{
		{Table: "items", Exclude: []string{"note"}, Redact: []string{"secret"}}, {Table: "days"}, {Table: "pairs"}, {Table: "stats"},
		{Table: "holders", Link: &relay.WatchLink{Field: "holders", OwnerTable: "items", OwnerColumn: "item_id", RelatedTable: "stats", RelatedColumn: "stat_id"}}}}
	err := relay.Setup(e.ctx, cfg)
	require.ErrorContains(t, err, `watched table "items" has REPLICA IDENTITY DEFAULT`)
	require.ErrorContains(t, err, `ALTER TABLE "public"."items" REPLICA IDENTITY FULL`)
	cfg.SetReplicaIdentity = true
	require.NoError(t, relay.Setup(e.ctx, cfg))
	t.Cleanup(func() {
		e.plain.ExecContext(context.Background(), `SELECT pg_drop_replication_slot($1)`, slot) //nolint:errcheck // the database goes too
	})

	through := func(q string) {
		t.Helper()
		_, err := e.db.ExecContext(e.ctx, q)
		require.NoError(t, err, q)
	}
	outside := func(q string) {
		t.Helper()
		_, err := e.plain.ExecContext(e.ctx, q)
		require.NoError(t, err, q)
	}
	through(`INSERT INTO items (id, name, secret, note) VALUES (1, 'a', 's1', 'n1')`) // the trigger's update of stats is outside
	through(`UPDATE items SET name = 'b', secret = 's2' WHERE id = 1`)
	through(`INSERT INTO days VALUES ('2026-01-02', 1)`)
	through(`UPDATE days SET v = 2`)
	through(`INSERT INTO pairs VALUES (1, E'x"y\\z\x01\n\u00e9', 1)`) // Go renders the key as the server does
	through(`UPDATE pairs SET v = 2`)
	through(`DELETE FROM pairs`)
	outside(`INSERT INTO items VALUES (2, 'c', 's3', 'n3')`)
	outside(`UPDATE items SET note = 'only excluded' WHERE id = 2`)
	outside(`UPDATE items SET name = 'd', secret = 's4' WHERE id = 2`)
	outside(`SELECT add_item(3, 'f')`)
	outside(`UPDATE days SET v = 3`)
	outside(`BEGIN; DELETE FROM items WHERE id = 2; ROLLBACK`)
	outside(`DELETE FROM items WHERE id = 3`)
	// One transaction, a write through the driver and one by a function.
	tx, err := e.db.BeginTx(e.ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(e.ctx, `UPDATE items SET name = 'e' WHERE id = 1`)
	require.NoError(t, err)
	_, err = tx.ExecContext(e.ctx, `SELECT add_item(4, 'g')`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	through(`INSERT INTO holders VALUES (1, 1)`)
	outside(`INSERT INTO holders VALUES (2, 1)`)
	outside(`UPDATE holders SET stat_id = 5 WHERE item_id = 2`) // moves the link
	outside(`UPDATE holders SET stat_id = 5 WHERE item_id = 2`) // does not
	outside(`DELETE FROM holders WHERE item_id = 2`)
	flushWAL(t, e.plain)

	destDB, err := sql.Open("pgx", dest)
	require.NoError(t, err)
	defer destDB.Close()
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx, cfg) }()
	const total = 9 + 14
	deadline := time.Now().Add(30 * time.Second)
	for n := 0; n < total; {
		select {
		case err := <-done:
			t.Fatalf("the relay stopped: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		require.NoError(t, destDB.QueryRow(`SELECT count(*) FROM auditpgx_entry`).Scan(&n))
		require.True(t, time.Now().Before(deadline), "%d entries after 30 s, want %d", n, total)
	}
	cancel()
	require.NoError(t, <-done)

	rows, err := destDB.QueryContext(e.ctx, `SELECT operation || ' ' || table_name || ' ' || object_id || coalesce(' ' || related_object_id, ''), coalesce(context::text, ''),
		created_by IS NULL AND statement_fingerprint IS NULL, coalesce(changes::text, '') FROM auditpgx_entry ORDER BY id`)
	require.NoError(t, err)
	defer rows.Close()
	var through_, outside_ []string
	var changes []string
	for rows.Next() {
		var what, ctxText string
		var ch string
		var anon bool
		require.NoError(t, rows.Scan(&what, &ctxText, &anon, &ch))
		if ctxText == relay.OutsideContext {
			require.True(t, anon, "%s: an outside entry has no actor and no fingerprint", what)
			outside_ = append(outside_, what)
			changes = append(changes, ch)
			continue
		}
		require.NotContains(t, ctxText, "outside", what)
		through_ = append(through_, what)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"create items 1", "update items 1", "create days 2026-01-02", "update days 2026-01-02",
		`create pairs [1,"x\"y\\z\u0001\né"]`, `update pairs [1,"x\"y\\z\u0001\né"]`, `delete pairs [1,"x\"y\\z\u0001\né"]`, "update items 1", "associate items 1 1"}, through_)
	require.Equal(t, []string{"update stats 1", "create items 2", "update stats 1", "update items 2", "create items 3", "update stats 1",
		"update days 2026-01-02", "delete items 3", "create items 4", "update stats 1",
		"associate items 2 1", "disassociate items 2 1", "associate items 2 5", "disassociate items 2 5"}, outside_)
	require.JSONEq(t, `{"added_fields": {"id": 2, "name": "c", "secret": "$encrypted$"}, "removed_fields": {}, "changed_fields": {}}`, changes[1])
	require.JSONEq(t, `{"added_fields": {}, "removed_fields": {}, "changed_fields": {"name": ["c", "d"], "secret": ["$encrypted$", "$encrypted$"]}}`, changes[3])
	require.JSONEq(t, `{"added_fields": {}, "removed_fields": {}, "changed_fields": {"v": [2, 3]}}`, changes[6])
	require.JSONEq(t, `{"added_fields": {}, "removed_fields": {"id": 3, "name": "f", "secret": "$encrypted$"}, "changed_fields": {}}`, changes[7])
	var leaks, sameTx int
	require.NoError(t, destDB.QueryRow(`SELECT count(*) FILTER (WHERE changes::text ~ 's[1-4]"|n[13]"|only excluded'),
		count(DISTINCT tx_id) FILTER (WHERE object_id = '4' OR (operation = 'update' AND table_name = 'items' AND changes::text LIKE '%"e"%'))
		FROM auditpgx_entry`).Scan(&leaks, &sameTx))
	require.Zero(t, leaks, "no excluded or redacted value in an entry")
	require.Equal(t, 1, sameTx, "an outside entry carries its transaction's tx_id")
}

// The WAL sink's guard passes with a logical slot of the current
// database only: not with a slot of the same name in another one.
func TestWALGuard(t *testing.T) {
	t.Parallel()
	w := newWALEnv(t, usersDDL, registerUsers)
	check := func() error {
		var one int
		return w.plain.QueryRowContext(w.ctx, `SELECT 1 WHERE `+record.WAL{Slot: w.slot}.Guard()).Scan(&one)
	}
	require.NoError(t, check())

	// The slot's name taken by a slot of another database.
	_, err := w.plain.ExecContext(w.ctx, `SELECT pg_drop_replication_slot($1)`, w.slot)
	require.NoError(t, err)
	other, err := sql.Open("pgx", pgtest.NewDatabase(t))
	require.NoError(t, err)
	defer other.Close()
	_, err = other.ExecContext(w.ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, w.slot)
	require.NoError(t, err)
	defer other.ExecContext(context.Background(), `SELECT pg_drop_replication_slot($1)`, w.slot) //nolint:errcheck // the database goes too
	require.ErrorContains(t, check(), `no logical replication slot "`+w.slot+`" in database`)
	_, err = w.db.ExecContext(w.ctx, `INSERT INTO users (id, name) VALUES (1, 'a')`)
	require.ErrorIs(t, err, auditpgx.ErrWALSinkUnavailable)
}
