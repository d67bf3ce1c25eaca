// The entry context: what WithContext, WithReason and an OpenTelemetry span
// add to every entry a write records, carried as a parameter, and what
// happens with an entry table made before the context column existed.

package auditpgx_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/store"
)

// entryContexts returns each entry's operation and context, in id order.
func (e *env) entryContexts() [][2]string {
	e.t.Helper()
	rows, err := e.plain.QueryContext(e.ctx, `SELECT operation, coalesce(context::text, 'NULL') FROM auditpgx_entry ORDER BY id`)
	require.NoError(e.t, err)
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var op, c string
		require.NoError(e.t, rows.Scan(&op, &c))
		out = append(out, [2]string{op, c})
	}
	require.NoError(e.t, rows.Err())
	return out
}

func TestEntryContextReachesEveryEntry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersDDL+`CREATE UNIQUE INDEX ON users (email);`, registerUsers)
	ctx := auditpgx.WithContext(e.ctx, "request_id", "r-1")
	ctx = auditpgx.WithContext(ctx, "user", map[string]any{"id": 7, "roles": []string{"admin"}})
	ctx = auditpgx.WithContext(ctx, "request_id", "r-2") // a later call replaces
	ctx = auditpgx.WithReason(ctx, "ticket #123")
	const want = `{"reason": "ticket #123", "request_id": "r-2", "user": {"id": 7, "roles": ["admin"]}}`

	statements := []string{
		`INSERT INTO users (name, email) VALUES ('a', 'a@x')`,
		`INSERT INTO users (name, email) VALUES ('b', 'a@x') ON CONFLICT (email) DO UPDATE SET name = excluded.name`,
		`UPDATE users SET name = 'c' WHERE email = 'a@x'; UPDATE users SET name = 'd' WHERE email = 'a@x'`, // a string of two: the context is spliced as a literal
	}
	if e.serverVersion() >= 170000 {
		statements = append(statements, `MERGE INTO users u USING (SELECT 'a@x' AS email) s ON u.email = s.email WHEN MATCHED THEN UPDATE SET name = 'e'`)
	}
	for _, q := range statements {
		_, err := e.db.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	tx, err := e.db.BeginTx(ctx, nil)
	require.NoError(t, err)
	rows, err := tx.QueryContext(ctx, `DELETE FROM users RETURNING id`)
	require.NoError(t, err)
	for rows.Next() {
	}
	require.NoError(t, rows.Err())
	require.NoError(t, tx.Commit())
	_, err = e.db.ExecContext(e.ctx, `INSERT INTO users (name) VALUES ('no context')`)
	require.NoError(t, err)

	got := e.entryContexts()
	require.Len(t, got, len(statements)+3) // the upsert updates; the string makes two; the delete; the last insert
	for _, g := range got[:len(got)-1] {
		require.JSONEq(t, want, g[1], "entry %s", g[0])
	}
	require.Equal(t, [2]string{"create", "NULL"}, got[len(got)-1], "a write without a context records none")

	// store reads it, and filters by it.
	entries, err := store.List(e.ctx, e.plain, store.Query{Context: map[string]any{"request_id": "r-2"}})
	require.NoError(t, err)
	require.Len(t, entries, len(got)-1)
	require.JSONEq(t, want, string(entries[0].Context))
	entries, err = store.List(e.ctx, e.plain, store.Query{Context: map[string]any{"user": map[string]any{"id": 7}}})
	require.NoError(t, err)
	require.Len(t, entries, len(got)-1, "a nested field matches by containment")
	entries, err = store.List(e.ctx, e.plain, store.Query{Context: map[string]any{"request_id": "r-1"}})
	require.NoError(t, err)
	require.Empty(t, entries)
}

func TestEntryContextOpenTelemetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersDDL, registerUsers)
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(e.ctx, sc)
	_, err := e.db.ExecContext(ctx, `INSERT INTO users (name) VALUES ('a')`)
	require.NoError(t, err)
	ctx = auditpgx.WithContext(ctx, auditpgx.ContextSpanID, "mine") // the application's own value wins
	_, err = e.db.ExecContext(ctx, `UPDATE users SET name = 'b'`)
	require.NoError(t, err)
	// An invalid span context adds nothing.
	_, err = e.db.ExecContext(trace.ContextWithSpanContext(e.ctx, trace.SpanContext{}), `DELETE FROM users`)
	require.NoError(t, err)

	got := e.entryContexts()
	require.Len(t, got, 3)
	require.JSONEq(t, `{"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}`, got[0][1])
	require.JSONEq(t, `{"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "mine"}`, got[1][1])
	require.Equal(t, "NULL", got[2][1])
}

// TestEntryContextInvalid: a context that cannot be recorded fails the
// write before anything is sent, naming the key and not the value.
func TestEntryContextInvalid(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersDDL, registerUsers)
	for name, ctx := range map[string]context.Context{
		"a function":   auditpgx.WithContext(e.ctx, "callback", func() {}),
		"an empty key": auditpgx.WithContext(e.ctx, "", "secret-value"),
		"too large":    auditpgx.WithContext(e.ctx, "blob", strings.Repeat("x", auditpgx.MaxContextBytes)),
		"a NUL":        auditpgx.WithContext(e.ctx, "nul", "a\x00b"),
	} {
		_, err := e.db.ExecContext(ctx, `INSERT INTO users (name) VALUES ('a')`)
		require.ErrorIs(t, err, auditpgx.ErrInvalidContext, name)
		require.NotContains(t, err.Error(), "secret-value", name)
	}
	require.Zero(t, e.countEntries())
	var n int
	require.NoError(t, e.plain.QueryRow(`SELECT count(*) FROM users`).Scan(&n))
	require.Zero(t, n)

	// The text of the escape, as opposed to the character, is a value like
	// any other.
	_, err := e.db.ExecContext(auditpgx.WithContext(e.ctx, "text", `\u0000 and \\u0000`), `INSERT INTO users (name) VALUES ('a')`)
	require.NoError(t, err)
	require.JSONEq(t, `{"text": "\\u0000 and \\\\u0000"}`, e.entryContexts()[0][1])
}

// TestEntryContextWithoutColumn: on an entry table made before the context
// column, writes without a context are recorded as before, writes with one
// are refused with the ALTER TABLE to run, and Migrate adds the column.
func TestEntryContextWithoutColumn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersDDL, registerUsers)
	_, err := e.plain.ExecContext(e.ctx, `ALTER TABLE auditpgx_entry DROP COLUMN context`)
	require.NoError(t, err)
	withCtx := auditpgx.WithContext(e.ctx, "request_id", "r-1")

	_, err = e.db.ExecContext(e.ctx, `INSERT INTO users (name) VALUES ('a')`)
	require.NoError(t, err, "a write without a context")
	_, err = e.db.ExecContext(withCtx, `INSERT INTO users (name) VALUES ('b')`)
	require.ErrorIs(t, err, auditpgx.ErrNoContextColumn)
	require.ErrorContains(t, err, `ALTER TABLE "auditpgx_entry" ADD COLUMN IF NOT EXISTS context jsonb`)
	var n int
	require.NoError(t, e.plain.QueryRow(`SELECT count(*) FROM users`).Scan(&n))
	require.Equal(t, 1, n, "the refused write did not run")
	require.Equal(t, 1, e.countEntries())

	require.NoError(t, auditpgx.Migrate(e.ctx, e.db, auditpgx.WithRegistry(e.reg)))
	_, err = e.db.ExecContext(withCtx, `INSERT INTO users (name) VALUES ('b')`)
	require.NoError(t, err, "after Migrate")
	got := e.entryContexts()
	require.Len(t, got, 2)
	require.JSONEq(t, `{"request_id": "r-1"}`, got[1][1])
}

// TestEntryContextConcurrent: statements run at once with different
// contexts record each its own.
func TestEntryContextConcurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersDDL, registerUsers)
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := auditpgx.WithContext(e.ctx, "worker", w)
			for i := range each {
				name := fmt.Sprintf("w%d-%d", w, i)
				if _, err := e.db.ExecContext(ctx, `INSERT INTO users (name) VALUES ($1)`, name); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	rows, err := e.plain.QueryContext(e.ctx, `SELECT changes->'added_fields'->>'name', context FROM auditpgx_entry`)
	require.NoError(t, err)
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var name string
		var raw []byte
		require.NoError(t, rows.Scan(&name, &raw))
		var c struct{ Worker int }
		require.NoError(t, json.Unmarshal(raw, &c))
		require.True(t, strings.HasPrefix(name, fmt.Sprintf("w%d-", c.Worker)), "entry of %s has the context of worker %d", name, c.Worker)
		seen++
	}
	require.NoError(t, rows.Err())
	require.Equal(t, workers*each, seen)
}

// TestEntryContextStaysOutOfLogsAndErrors: context values are stored as
// given, and nowhere else: not in the warnings of AllowUnaudited, not in
// the errors of failing writes, whether the context travels as a
// parameter or, in a string of several statements, as a literal.
func TestEntryContextStaysOutOfLogsAndErrors(t *testing.T) {
	t.Parallel()
	dsn, schema := pgtestSchema(t)
	const secret = "CTX-SECRET-7d1f"
	var logs strings.Builder
	e := newEnvDSN(t, dsn, schema, usersDDL+`CREATE UNIQUE INDEX ON users (email); INSERT INTO users (name, email) VALUES ('a', 'a@x');`, nil)
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{AllowUnaudited: true, Logger: textLogger(&logs)})
	require.NoError(t, err)
	require.NoError(t, registerUsers(reg))
	db := openWith(t, dsn, reg)
	ctx := auditpgx.WithContext(e.ctx, "token", secret)

	var errs []error
	for _, q := range []string{
		`INSERT INTO users (name, email) VALUES ('b', 'a@x')`,                              // a unique violation, as a parameter
		`UPDATE users SET name = 'c' WHERE id = 1; INSERT INTO users (email) VALUES ('x')`, // a NOT NULL violation, as a literal
		`UPDATE users SET name = 'd' WHERE`,                                                // does not parse
	} {
		_, err := db.ExecContext(ctx, q)
		require.Error(t, err, q)
		errs = append(errs, err)
	}
	_, err = db.ExecContext(ctx, `TRUNCATE users`) // run unaudited, with a warning
	require.NoError(t, err)
	_, err = db.ExecContext(auditpgx.WithContext(ctx, "bad", func() {}), `INSERT INTO users (name) VALUES ('e')`)
	require.ErrorIs(t, err, auditpgx.ErrInvalidContext)
	errs = append(errs, err)

	require.NotEmpty(t, logs.String(), "AllowUnaudited logged its warning")
	require.NotContains(t, logs.String(), secret)
	for _, err := range errs {
		require.NotContains(t, err.Error(), secret)
		require.NotContains(t, fmt.Sprintf("%+v", err), secret)
	}
}

// TestEntryContextPreparedAndExecModes: the context reaches the entries of
// a prepared statement, and of every pgx exec mode.
func TestEntryContextPreparedAndExecModes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersDDL, registerUsers)
	stmt, err := e.db.PrepareContext(e.ctx, `INSERT INTO users (name) VALUES ($1)`)
	require.NoError(t, err)
	defer stmt.Close()
	for i := range 2 {
		_, err := stmt.ExecContext(auditpgx.WithContext(e.ctx, "n", i), fmt.Sprintf("prepared %d", i))
		require.NoError(t, err)
	}
	modes := []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol}
	for _, mode := range modes {
		ctx := auditpgx.WithContext(e.ctx, "mode", mode.String())
		ctx = auditpgx.WithContext(ctx, "quote", `it's "quoted" \ back`)
		_, err := e.db.ExecContext(ctx, `INSERT INTO users (name) VALUES ($1)`, mode, mode.String())
		require.NoError(t, err, mode.String())
	}
	got := e.entryContexts()
	require.Len(t, got, 2+len(modes))
	require.JSONEq(t, `{"n": 0}`, got[0][1])
	require.JSONEq(t, `{"n": 1}`, got[1][1])
	for i, mode := range modes {
		require.JSONEq(t, fmt.Sprintf(`{"mode": %q, "quote": "it's \"quoted\" \\ back"}`, mode.String()), got[2+i][1], mode.String())
	}
}

// TestEntryContextColumnChangedBehindTheDriver: the context column added in
// a transaction that rolls back, and then by another client, is seen as
// the server has it: a write with a context is refused while the column is
// absent, nothing running unaudited, and recorded once another client has
// added it.
func TestEntryContextColumnChangedBehindTheDriver(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersDDL, registerUsers)
	_, err := e.plain.ExecContext(e.ctx, `ALTER TABLE auditpgx_entry DROP COLUMN context`)
	require.NoError(t, err)
	withCtx := auditpgx.WithContext(e.ctx, "request_id", "r-1")

	tx, err := e.db.BeginTx(e.ctx, nil)
	require.NoError(t, err)
	require.NoError(t, store.Migrate(e.ctx, tx, "auditpgx_entry"), "Migrate in the transaction adds the column")
	_, err = tx.ExecContext(withCtx, `INSERT INTO users (name) VALUES ('in tx')`)
	require.NoError(t, err, "inside the transaction the column exists")
	require.NoError(t, tx.Rollback())

	_, err = e.db.ExecContext(withCtx, `INSERT INTO users (name) VALUES ('after rollback')`)
	require.ErrorIs(t, err, auditpgx.ErrNoContextColumn)
	var n int
	require.NoError(t, e.plain.QueryRow(`SELECT count(*) FROM users`).Scan(&n))
	require.Zero(t, n, "nothing ran")

	_, err = e.plain.ExecContext(e.ctx, `ALTER TABLE auditpgx_entry ADD COLUMN context jsonb`) // another client
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := e.db.ExecContext(withCtx, `INSERT INTO users (name) VALUES ('after another client')`)
		return err == nil
	}, 5*time.Second, 100*time.Millisecond, "the column another client added is seen within the recheck time")
	got := e.entryContexts()
	require.Len(t, got, 1)
	require.JSONEq(t, `{"request_id": "r-1"}`, got[0][1])
}
