// Concurrent transactions: an entry records the values its write replaced,
// as committed, not as its snapshot first saw them.

package auditpgx_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
)

// TestConcurrentUpdateRecordsReplacedValue: while the audited UPDATE waits
// for a row lock, another transaction changes that row and commits. The
// entry's old value must be the committed value the update replaced, not
// the one the statement's snapshot saw first.
func TestConcurrentUpdateRecordsReplacedValue(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL);
		INSERT INTO counters VALUES (1, 1), (2, 12), (3, 3);`,
		func(r *auditpgx.Registry) error { return r.RegisterTable("counters") })
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()

	other, err := e.plain.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = other.ExecContext(ctx, `UPDATE counters SET n = 100 WHERE id = 2`)
	require.NoError(t, err)
	// A row the other transaction inserts is not seen by the statement,
	// exactly as with a plain UPDATE.
	_, err = other.ExecContext(ctx, `INSERT INTO counters VALUES (4, 50)`)
	require.NoError(t, err)

	affected := execBlocked(t, e, ctx, other, "counters", `UPDATE counters SET n = n + 10 WHERE n >= 2`)
	require.EqualValues(t, 2, affected)

	requireEntries(t, []entry{
		want("update", "counters", "2", `{"added_fields":{},"removed_fields":{},"changed_fields":{"n":[100,110]}}`),
		want("update", "counters", "3", `{"added_fields":{},"removed_fields":{},"changed_fields":{"n":[3,13]}}`),
	}, sortByObjectID(e.entries()))

	var n2, n4 int
	require.NoError(t, e.plain.QueryRow(`SELECT (SELECT n FROM counters WHERE id = 2), (SELECT n FROM counters WHERE id = 4)`).Scan(&n2, &n4))
	require.Equal(t, 110, n2)
	require.Equal(t, 50, n4)
}

// execBlocked runs query through auditpgx while other holds locks it
// needs, commits other once the statement waits, and returns the
// statement's RowsAffected.
func execBlocked(t *testing.T, e *env, ctx context.Context, other *sql.Tx, table, query string) int64 {
	t.Helper()
	done := make(chan error, 1)
	var affected int64
	go func() {
		res, err := e.db.ExecContext(ctx, query)
		if err == nil {
			affected, err = res.RowsAffected()
		}
		done <- err
	}()
	waitForLock(t, e, ctx, done, table)
	require.NoError(t, other.Commit())
	require.NoError(t, <-done)
	return affected
}

// waitForLock blocks until some backend of the test's database waits on
// a lock in a statement on
// table, failing if the audited statement finishes first.
func waitForLock(t *testing.T, e *env, ctx context.Context, done <-chan error, table string) {
	t.Helper()
	for {
		var waiting int
		require.NoError(t, e.plain.QueryRowContext(ctx,
			`SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%' AND query LIKE '%auditpgx%'`, table).Scan(&waiting))
		if waiting > 0 {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("the audited update finished without waiting for the lock: %v", err)
		case <-ctx.Done():
			t.Fatal("the audited update never waited for the lock")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func sortByObjectID(es []entry) []entry {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j].ObjectID < es[j-1].ObjectID; j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
	return es
}

// TestConcurrentMergeRecordsReplacedValue: as for UPDATE, while an audited
// MERGE waits for row locks another transaction changes two of its rows and
// commits. The update entry's old value is the committed one, and the row
// that no longer meets its UPDATE action's condition takes the DELETE
// action, as PostgreSQL re-evaluates it, with the committed row in its
// entry.
func TestConcurrentMergeRecordsReplacedValue(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL);
		INSERT INTO counters VALUES (1, 5), (2, 12), (3, 3);`,
		func(r *auditpgx.Registry) error { return r.RegisterTable("counters") })
	if e.serverVersion() < 170000 {
		_, err := e.db.ExecContext(e.ctx, `MERGE INTO counters c USING (VALUES (1)) s (id) ON c.id = s.id WHEN MATCHED THEN DELETE`)
		require.ErrorIs(t, err, auditpgx.ErrUnaudited, "MERGE before PostgreSQL 17")
		require.ErrorContains(t, err, "MERGE is audited from PostgreSQL 17")
		return
	}
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()

	other, err := e.plain.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = other.ExecContext(ctx, `UPDATE counters SET n = 100 WHERE id = 2; UPDATE counters SET n = 0 WHERE id = 3`)
	require.NoError(t, err)
	_, err = other.ExecContext(ctx, `INSERT INTO counters VALUES (4, 50)`)
	require.NoError(t, err)

	affected := execBlocked(t, e, ctx, other, "counters", `MERGE INTO counters c USING (VALUES (1), (2), (3), (5)) s (id) ON c.id = s.id
			WHEN MATCHED AND c.n >= 2 THEN UPDATE SET n = c.n + 10
			WHEN MATCHED THEN DELETE
			WHEN NOT MATCHED THEN INSERT VALUES (s.id, 1)`)
	require.EqualValues(t, 4, affected)

	requireEntries(t, []entry{
		want("update", "counters", "1", `{"added_fields":{},"removed_fields":{},"changed_fields":{"n":[5,15]}}`),
		want("update", "counters", "2", `{"added_fields":{},"removed_fields":{},"changed_fields":{"n":[100,110]}}`),
		want("delete", "counters", "3", `{"added_fields":{},"removed_fields":{"id":3,"n":0},"changed_fields":{}}`),
		want("create", "counters", "5", `{"added_fields":{"id":5,"n":1},"removed_fields":{},"changed_fields":{}}`),
	}, sortByObjectID(e.entries()))
}
