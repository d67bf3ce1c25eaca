package auditpgx_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
)

const truncateSetup = `
CREATE TABLE teams (id int PRIMARY KEY, name text);
CREATE TABLE members (id int PRIMARY KEY, team int REFERENCES teams, name text);
CREATE TABLE tags (id int PRIMARY KEY, label text);
INSERT INTO teams VALUES (1, 'core');
INSERT INTO members VALUES (1, 1, 'ann'), (2, 1, 'bob');
INSERT INTO tags VALUES (1, 'x');`

func registerTruncate(r *auditpgx.Registry) error {
	return errors.Join(
		r.RegisterTable("teams", auditpgx.RecordTruncate()),
		r.RegisterTable("members", auditpgx.RecordTruncate()),
		r.RegisterTable("tags"),
	)
}

// truncateEntries lists (operation, table, actor) of every entry.
func truncateEntries(t *testing.T, e *env) [][3]string {
	t.Helper()
	var out [][3]string
	for _, en := range e.entries() {
		a := "<nil>"
		if en.Actor != nil {
			a = *en.Actor
		}
		require.Empty(t, en.ObjectID, "a truncate entry names no object")
		require.Empty(t, en.Changes, "a truncate entry has no changes")
		out = append(out, [3]string{en.Op, en.Table, a})
	}
	return out
}

func count(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM `+table).Scan(&n))
	return n
}

// TestTruncateRecorded: TRUNCATE of tables registered with RecordTruncate
// runs and writes one truncate entry per table, in its transaction; a
// table registered without it is refused, also when CASCADE would reach it.
func TestTruncateRecorded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, truncateSetup, registerTruncate)
	ctx := auditpgx.WithActor(e.ctx, "ops")

	// Rolled back: nothing changed, no entry.
	tx, err := e.db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, `TRUNCATE members`)
	require.NoError(t, err)
	require.NoError(t, tx.Rollback())
	require.Equal(t, 2, count(t, e.plain, "members"))
	require.Zero(t, e.countEntries())

	// The server's own error (a foreign key without CASCADE): no entry.
	_, err = e.db.ExecContext(ctx, `TRUNCATE teams`)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, "0A000", pgErr.Code)
	require.Zero(t, e.countEntries())

	// CASCADE reaches members, which records TRUNCATE too.
	res, err := e.db.ExecContext(ctx, `TRUNCATE teams CASCADE`)
	require.NoError(t, err)
	n, err := res.RowsAffected()
	require.NoError(t, err)
	require.Zero(t, n, "RowsAffected of TRUNCATE, as with pgx")
	require.Equal(t, 0, count(t, e.plain, "members"))
	require.Equal(t, [][3]string{{"truncate", "teams", "ops"}, {"truncate", "members", "ops"}}, truncateEntries(t, e))
	var txs int
	require.NoError(t, e.plain.QueryRow(`SELECT count(DISTINCT tx_id) FROM auditpgx_entry`).Scan(&txs))
	require.Equal(t, 1, txs)

	// Query and a prepared statement, twice.
	e.clearEntries()
	rows, err := e.db.QueryContext(ctx, `TRUNCATE members`)
	require.NoError(t, err)
	cols, err := rows.Columns()
	require.NoError(t, err)
	require.Empty(t, cols)
	require.False(t, rows.Next())
	require.NoError(t, rows.Close())
	stmt, err := e.db.PrepareContext(ctx, `TRUNCATE TABLE members`)
	require.NoError(t, err)
	for range 2 {
		_, err = stmt.ExecContext(ctx)
		require.NoError(t, err)
	}
	require.NoError(t, stmt.Close())
	require.Len(t, truncateEntries(t, e), 3)

	// tags does not record TRUNCATE: refused, and so is a CASCADE that
	// would reach a table that does not.
	_, err = e.db.ExecContext(ctx, `TRUNCATE tags`)
	require.ErrorIs(t, err, auditpgx.ErrUnaudited)
	require.ErrorContains(t, err, "RecordTruncate")
	_, err = e.plain.ExecContext(e.ctx, `ALTER TABLE tags ADD COLUMN team int REFERENCES teams`)
	require.NoError(t, err)
	_, err = e.db.ExecContext(ctx, `TRUNCATE teams CASCADE`)
	require.ErrorIs(t, err, auditpgx.ErrUnaudited)
	require.ErrorContains(t, err, `"tags"`)
	require.Equal(t, 1, count(t, e.plain, "tags"))
	require.Equal(t, 0, count(t, e.plain, "teams"))
}

// TestTruncateExecModes runs a recorded TRUNCATE in every pgx exec mode.
func TestTruncateExecModes(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			dsn, schema := pgtestSchema(t)
			u, err := url.Parse(dsn)
			require.NoError(t, err)
			q := u.Query()
			q.Set("default_query_exec_mode", mode)
			u.RawQuery = q.Encode()
			e := newEnvDSN(t, u.String(), schema, truncateSetup, registerTruncate)
			for _, query := range []bool{false, true} {
				var err error
				if query {
					var rows *sql.Rows
					if rows, err = e.db.QueryContext(e.ctx, `TRUNCATE members`); err == nil {
						err = rows.Close()
					}
				} else {
					_, err = e.db.ExecContext(e.ctx, `TRUNCATE members`)
				}
				require.NoError(t, err)
			}
			require.Equal(t, [][3]string{{"truncate", "members", "<nil>"}, {"truncate", "members", "<nil>"}}, truncateEntries(t, e))
		})
	}
}

// TestTruncateEntryFailsTruncateRollsBack: when the entry cannot be written
// (an entry table whose CHECK predates truncate entries), the TRUNCATE
// does not happen either.
func TestTruncateEntryFailsTruncateRollsBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, truncateSetup, registerTruncate)
	_, err := e.plain.ExecContext(e.ctx, `ALTER TABLE auditpgx_entry DROP CONSTRAINT auditpgx_entry_operation_check,
		ADD CONSTRAINT auditpgx_entry_operation_check CHECK (operation IN ('create', 'update', 'delete', 'associate', 'disassociate'))`)
	require.NoError(t, err)
	_, err = e.db.ExecContext(context.Background(), `TRUNCATE members`)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, "23514", pgErr.Code)
	require.Equal(t, 2, count(t, e.plain, "members"))
	require.Zero(t, e.countEntries())
}
