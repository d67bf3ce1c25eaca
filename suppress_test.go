// Suppression: WithoutAudit records a statement as one "suppressed" entry
// per table instead of one entry per row, only when the registry allows
// it, and never silently.

package auditpgx_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/store"
)

// newSuppressingEnv is newEnv with a registry that allows suppression.
func newSuppressingEnv(t *testing.T, setup string, register func(r *auditpgx.Registry) error) *env {
	t.Helper()
	dsn, schema := pgtestSchema(t)
	return newEnvConfig(t, dsn, schema, auditpgx.RegistryConfig{AllowSuppression: true}, setup, register)
}

// suppressedEntry is what a suppressed entry records.
type suppressedEntry struct {
	Table, ObjectID, Changes, Context string
	Actor                             *string
	Fingerprinted                     bool
}

func (e *env) suppressedEntries() []suppressedEntry {
	e.t.Helper()
	rows, err := e.plain.QueryContext(e.ctx, `SELECT table_name, object_id, changes::text, coalesce(context::text, 'NULL'), created_by,
		statement_fingerprint IS NOT NULL FROM auditpgx_entry WHERE operation = 'suppressed' ORDER BY id`)
	require.NoError(e.t, err)
	defer rows.Close()
	var out []suppressedEntry
	for rows.Next() {
		var s suppressedEntry
		require.NoError(e.t, rows.Scan(&s.Table, &s.ObjectID, &s.Changes, &s.Context, &s.Actor, &s.Fingerprinted))
		out = append(out, s)
	}
	require.NoError(e.t, rows.Err())
	return out
}

func TestSuppressionNotAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersDDL, registerUsers)
	ctx := auditpgx.WithoutAudit(e.ctx, "backfill")

	_, err := e.db.ExecContext(ctx, `INSERT INTO users (name) VALUES ('a')`)
	require.ErrorIs(t, err, auditpgx.ErrSuppressionNotAllowed)
	require.ErrorContains(t, err, "RegistryConfig.AllowSuppression")
	_, err = e.db.QueryContext(ctx, `UPDATE users SET name = 'b' RETURNING id`)
	require.ErrorIs(t, err, auditpgx.ErrSuppressionNotAllowed)
	var n int
	require.NoError(t, e.plain.QueryRow(`SELECT count(*) FROM users`).Scan(&n))
	require.Zero(t, n, "the refused write did not run")
	require.Zero(t, e.countEntries())

	// What writes no audited table runs as usual under the same context.
	require.NoError(t, e.db.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n))
	_, err = e.db.ExecContext(ctx, `CREATE TABLE scratch (x int); INSERT INTO scratch VALUES (1)`)
	require.NoError(t, err)
}

func TestSuppressedStatementWritesOneEntry(t *testing.T) {
	t.Parallel()
	e := newSuppressingEnv(t, usersDDL+`CREATE UNIQUE INDEX ON users (email);
		INSERT INTO users (name, email) SELECT 'u' || g, 'u' || g || '@x' FROM generate_series(1, 5) g;`, registerUsers)
	ctx := auditpgx.WithActor(e.ctx, "ops")
	ctx = auditpgx.WithContext(ctx, "request_id", "r-9")
	ctx = auditpgx.WithoutAudit(ctx, "backfill of last_login")

	res, err := e.db.ExecContext(ctx, `UPDATE users SET name = name || '!' WHERE id <= 3`)
	require.NoError(t, err)
	n, err := res.RowsAffected()
	require.NoError(t, err)
	require.EqualValues(t, 3, n, "RowsAffected is the statement's")

	got := e.suppressedEntries()
	require.Len(t, got, 1)
	require.Equal(t, "users", got[0].Table)
	require.Equal(t, "", got[0].ObjectID)
	require.JSONEq(t, `{"rows": 3}`, got[0].Changes)
	require.JSONEq(t, `{"reason": "backfill of last_login", "request_id": "r-9"}`, got[0].Context)
	require.Equal(t, actor("ops"), got[0].Actor)
	require.True(t, got[0].Fingerprinted)
	require.Equal(t, 1, e.countEntries(), "no entry per row")

	// The query form returns the caller's rows, nothing of the rewrite's.
	e.clearEntries()
	rs, err := e.db.QueryContext(ctx, `DELETE FROM users WHERE id = 4 RETURNING id, name`)
	require.NoError(t, err)
	cs, err := rs.Columns()
	require.NoError(t, err)
	require.Equal(t, []string{"id", "name"}, cs)
	count := 0
	for rs.Next() {
		count++
	}
	require.NoError(t, rs.Err())
	require.Equal(t, 1, count)

	// An upsert, a string of two statements, a prepared statement, and
	// an INSERT that writes nothing: one entry per statement and table.
	_, err = e.db.ExecContext(ctx, `INSERT INTO users (name, email) VALUES ('x', 'u1@x'), ('y', 'new@x')
		ON CONFLICT (email) DO UPDATE SET name = excluded.name`)
	require.NoError(t, err)
	_, err = e.db.ExecContext(ctx, `UPDATE users SET name = 'p' WHERE id = 1; UPDATE users SET name = 'q' WHERE id IN (1, 2)`)
	require.NoError(t, err)
	st, err := e.db.PrepareContext(ctx, `UPDATE users SET email = $1 WHERE id = $2`)
	require.NoError(t, err)
	_, err = st.ExecContext(ctx, "p@x", 1)
	require.NoError(t, err)
	_, err = st.ExecContext(e.ctx, "pp@x", 1) // the same statement, audited per row
	require.NoError(t, err)
	require.NoError(t, st.Close())
	_, err = e.db.ExecContext(ctx, `INSERT INTO users (name) SELECT name FROM users WHERE false`)
	require.NoError(t, err)
	var ops, changes []string
	rows2, err := e.plain.Query(`SELECT operation, coalesce(changes->>'rows', '-') FROM auditpgx_entry ORDER BY id`)
	require.NoError(t, err)
	for rows2.Next() {
		var op, c string
		require.NoError(t, rows2.Scan(&op, &c))
		ops, changes = append(ops, op), append(changes, c)
	}
	require.NoError(t, rows2.Err())
	require.Equal(t, []string{"suppressed", "suppressed", "suppressed", "suppressed", "suppressed", "update", "suppressed"}, ops)
	require.Equal(t, []string{"1", "2", "1", "2", "1", "-", "0"}, changes)

	// An empty reason is refused.
	_, err = e.db.ExecContext(auditpgx.WithoutAudit(e.ctx, ""), `UPDATE users SET name = 'z'`)
	require.ErrorIs(t, err, auditpgx.ErrSuppressionNotAllowed)
	require.ErrorContains(t, err, "empty reason")

	// store reads it.
	entries, err := store.List(e.ctx, e.plain, store.Query{Operations: []store.Operation{store.OpSuppressed}})
	require.NoError(t, err)
	require.Len(t, entries, 6)
	require.NotNil(t, entries[0].Rows)
	require.EqualValues(t, 1, *entries[0].Rows)
	require.Nil(t, entries[0].Changes)
}

func TestSuppressedRollback(t *testing.T) {
	t.Parallel()
	e := newSuppressingEnv(t, usersDDL+`INSERT INTO users (name) VALUES ('a'), ('b');`, registerUsers)
	ctx := auditpgx.WithoutAudit(e.ctx, "backfill")
	tx, err := e.db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, `UPDATE users SET name = 'c'`)
	require.NoError(t, err)
	var inTx int
	require.NoError(t, tx.QueryRowContext(ctx, `SELECT count(*) FROM auditpgx_entry WHERE operation = 'suppressed'`).Scan(&inTx))
	require.Equal(t, 1, inTx, "written in the transaction")
	require.NoError(t, tx.Rollback())
	require.Zero(t, e.countEntries(), "the rollback removes the entry with the change")
	var changed int
	require.NoError(t, e.plain.QueryRow(`SELECT count(*) FROM users WHERE name = 'c'`).Scan(&changed))
	require.Zero(t, changed)
}

func TestSuppressedCascadeJoinAndMerge(t *testing.T) {
	t.Parallel()
	e := newSuppressingEnv(t, m2mDDL+`
		CREATE TABLE notes (id int PRIMARY KEY, team_id int REFERENCES teams ON DELETE CASCADE, body text);
		INSERT INTO notes VALUES (1, 1, 'a'), (2, 1, 'b'), (3, 2, 'c');
		INSERT INTO team_members (team_id, user_id) VALUES (2, 1), (2, 2);`, func(r *auditpgx.Registry) error {
		return errors.Join(registerMembers(r), r.RegisterTable("teams"), r.RegisterTable("notes"))
	})
	ctx := auditpgx.WithoutAudit(e.ctx, "cleanup")
	_, err := e.db.ExecContext(ctx, `DELETE FROM team_members WHERE team_id = 2`)
	require.NoError(t, err)
	_, err = e.db.ExecContext(ctx, `DELETE FROM teams WHERE id = 1`)
	require.NoError(t, err)
	statements := 2
	if e.serverVersion() >= 170000 { // MERGE ... RETURNING
		_, err = e.db.ExecContext(ctx, `MERGE INTO notes n USING (VALUES (3, 'c2'), (4, 'd')) s(id, body) ON n.id = s.id
			WHEN MATCHED THEN UPDATE SET body = s.body WHEN NOT MATCHED THEN INSERT VALUES (s.id, 2, s.body)`)
		require.NoError(t, err)
		statements++
	}
	got := e.suppressedEntries()
	require.Len(t, got, statements)
	require.Equal(t, "team_members", got[0].Table)
	require.JSONEq(t, `{"rows": 2}`, got[0].Changes)
	require.Equal(t, "teams", got[1].Table, "the cascaded notes get no entries of their own")
	require.JSONEq(t, `{"rows": 1}`, got[1].Changes)
	if statements == 3 {
		require.Equal(t, "notes", got[2].Table)
		require.JSONEq(t, `{"rows": 2}`, got[2].Changes)
	}
	require.Equal(t, statements, e.countEntries())
	var notes int
	require.NoError(t, e.plain.QueryRow(`SELECT count(*) FROM notes WHERE team_id = 1`).Scan(&notes))
	require.Zero(t, notes, "the cascade ran")
}

// TestSuppressedLeavesAGapInHistory: after a suppressed statement, an
// object's state as of a later time is incomplete, not silently stale.
func TestSuppressedLeavesAGapInHistory(t *testing.T) {
	t.Parallel()
	e := newSuppressingEnv(t, usersDDL, registerUsers)
	_, err := e.db.ExecContext(e.ctx, `INSERT INTO users (id, name) VALUES (1, 'a')`)
	require.NoError(t, err)
	_, err = e.db.ExecContext(auditpgx.WithoutAudit(e.ctx, "backfill"), `UPDATE users SET name = 'b'; INSERT INTO users (id, name) VALUES (2, 'c')`)
	require.NoError(t, err)

	_, err = store.AsOf(e.ctx, e.plain, "users", "1", time.Now().Add(time.Hour))
	var inc *store.IncompleteError
	require.ErrorAs(t, err, &inc)
	require.Equal(t, store.OpSuppressed, inc.Gap.Operation)
	require.JSONEq(t, `{"name": "a", "email": null, "id": 1, "password_hash": "$encrypted$"}`, mustJSON(inc.Known))
	_, err = store.AsOf(e.ctx, e.plain, "users", "2", time.Now().Add(time.Hour))
	require.ErrorAs(t, err, &inc, "an object a suppressed statement may have made")

	history, err := store.History(e.ctx, e.plain, "users", "1")
	require.NoError(t, err)
	require.Len(t, history, 3, "the object's history shows the suppressed statements")
	require.Equal(t, store.OpSuppressed, history[1].Operation)

	// A later create makes the state known again.
	_, err = e.db.ExecContext(e.ctx, `DELETE FROM users WHERE id = 2`)
	require.NoError(t, err)
	_, err = e.db.ExecContext(e.ctx, `INSERT INTO users (id, name) VALUES (2, 'd')`)
	require.NoError(t, err)
	img, err := store.AsOf(e.ctx, e.plain, "users", "2", time.Now().Add(time.Hour))
	require.NoError(t, err)
	require.JSONEq(t, `"d"`, string(img["name"]))
}

// TestSuppressedOutdatedEntryTable: an entry table whose CHECK on
// operation predates suppressed entries refuses a suppressed write with
// the ALTER to run, keeps recording other writes, and Migrate widens it.
func TestSuppressedOutdatedEntryTable(t *testing.T) {
	t.Parallel()
	e := newSuppressingEnv(t, usersDDL, registerUsers)
	_, err := e.plain.ExecContext(e.ctx, `ALTER TABLE auditpgx_entry DROP CONSTRAINT auditpgx_entry_operation_check,
		ADD CONSTRAINT auditpgx_entry_operation_check CHECK (operation IN ('create', 'update', 'delete', 'associate', 'disassociate', 'truncate', 'snapshot'))`)
	require.NoError(t, err)
	ctx := auditpgx.WithoutAudit(e.ctx, "backfill")

	_, err = e.db.ExecContext(e.ctx, `INSERT INTO users (name) VALUES ('a')`)
	require.NoError(t, err, "other writes are recorded as before")
	_, err = e.db.ExecContext(ctx, `UPDATE users SET name = 'b'`)
	require.ErrorIs(t, err, auditpgx.ErrEntryTableOutdated)
	require.ErrorContains(t, err, `ALTER TABLE "auditpgx_entry" DROP CONSTRAINT "auditpgx_entry_operation_check", ADD CONSTRAINT "auditpgx_entry_operation_check" CHECK (operation IN (`)
	var name string
	require.NoError(t, e.plain.QueryRow(`SELECT name FROM users`).Scan(&name))
	require.Equal(t, "a", name, "the refused write did not run")

	require.NoError(t, auditpgx.Migrate(e.ctx, e.db, auditpgx.WithRegistry(e.reg)))
	_, err = e.db.ExecContext(ctx, `UPDATE users SET name = 'b'`)
	require.NoError(t, err, "after Migrate")
	require.Len(t, e.suppressedEntries(), 1)

	// Migrate's ALTERs pass the driver; nothing else alters the entry table.
	_, err = e.db.ExecContext(e.ctx, `ALTER TABLE auditpgx_entry DROP CONSTRAINT auditpgx_entry_operation_check`)
	require.ErrorIs(t, err, auditpgx.ErrAppendOnly)
	_, err = e.db.ExecContext(e.ctx, `DELETE FROM auditpgx_entry`)
	require.ErrorIs(t, err, auditpgx.ErrAppendOnly)
}
