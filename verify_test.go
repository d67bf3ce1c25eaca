package auditpgx_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
)

// TestVerifiedWriteRacingCreate creates the registered table from another
// client after the planner found it absent and before the write runs: the
// write, planned as not writing a registered table, reaches it, is undone
// and runs again audited.
func TestVerifiedWriteRacingCreate(t *testing.T) {
	for _, tc := range []struct {
		name, sql string
		query, tx bool
	}{
		{"exec", `INSERT INTO t VALUES (1, 'a') /* race-exec */`, false, false},
		{"query", `INSERT INTO t VALUES (1, 'a') RETURNING id /* race-query */`, true, false},
		{"exec in tx", `INSERT INTO t VALUES (1, 'a') /* race-tx */`, false, true},
		{"query in tx", `INSERT INTO t VALUES (1, 'a') RETURNING id /* race-query-tx */`, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, ``, registerT)
			var once sync.Once
			reset := auditpgx.SetAfterBuild(func(q string) {
				if q == tc.sql {
					once.Do(func() {
						_, err := e.plain.ExecContext(e.ctx, silentSetup)
						require.NoError(t, err)
					})
				}
			})
			defer reset()
			conn, err := e.db.Conn(e.ctx)
			require.NoError(t, err)
			defer conn.Close()
			if tc.tx {
				_, err = conn.ExecContext(e.ctx, `BEGIN`)
				require.NoError(t, err)
			}
			if tc.query {
				var id int
				require.NoError(t, conn.QueryRowContext(e.ctx, tc.sql).Scan(&id))
				require.Equal(t, 1, id)
			} else {
				res, err := conn.ExecContext(e.ctx, tc.sql)
				require.NoError(t, err)
				n, err := res.RowsAffected()
				require.NoError(t, err)
				require.EqualValues(t, 1, n)
			}
			if tc.tx {
				_, err = conn.ExecContext(e.ctx, `COMMIT`)
				require.NoError(t, err)
			}
			require.Equal(t, map[string]int{"create": 1}, e.opsOn("t"))
			var rows int
			require.NoError(t, e.plain.QueryRowContext(e.ctx, `SELECT count(*) FROM t`).Scan(&rows))
			require.Equal(t, 1, rows)
		})
	}
}

// TestVerifiedWriteThroughTrigger: a write to an unregistered table of a
// registered name whose trigger writes the registered table cannot be
// audited; it is refused, and nothing of it remains.
func TestVerifiedWriteThroughTrigger(t *testing.T) {
	t.Parallel()
	e := newEnv(t, silentSetup, func(r *auditpgx.Registry) error { return nil })
	require.NoError(t, e.reg.RegisterTable(e.schema+".t"))
	early := e.schema + "_trig"
	_, err := e.plain.ExecContext(e.ctx, `CREATE SCHEMA `+early+`;
		CREATE TABLE `+early+`.t (id int, v text);
		CREATE FUNCTION `+early+`.fwd() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN INSERT INTO `+e.schema+`.t VALUES (NEW.id, NEW.v); RETURN NEW; END $$;
		CREATE TRIGGER fwd AFTER INSERT ON `+early+`.t FOR EACH ROW EXECUTE FUNCTION `+early+`.fwd();`)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = e.plain.ExecContext(e.ctx, `DROP SCHEMA `+early+` CASCADE`) })
	conn, err := e.db.Conn(e.ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(e.ctx, `SET search_path = `+early+`, `+e.schema)
	require.NoError(t, err)
	_, err = conn.ExecContext(e.ctx, `INSERT INTO t VALUES (1, 'x')`)
	require.ErrorIs(t, err, auditpgx.ErrUnaudited)
	require.True(t, strings.Contains(err.Error(), "registered table"), err.Error())
	var n int
	require.NoError(t, e.plain.QueryRowContext(e.ctx, `SELECT (SELECT count(*) FROM `+early+`.t) + (SELECT count(*) FROM `+e.schema+`.t)`).Scan(&n))
	require.Equal(t, 0, n)
	// In a transaction the refusal leaves the caller's transaction usable,
	// as every refusal does.
	_, err = conn.ExecContext(e.ctx, `BEGIN`)
	require.NoError(t, err)
	_, err = conn.ExecContext(e.ctx, `INSERT INTO t VALUES (2, 'y')`)
	require.ErrorIs(t, err, auditpgx.ErrUnaudited)
	_, err = conn.ExecContext(e.ctx, `INSERT INTO `+e.schema+`.t VALUES (3, 'z')`)
	require.NoError(t, err)
	_, err = conn.ExecContext(e.ctx, `COMMIT`)
	require.NoError(t, err)
	require.Equal(t, map[string]int{"create": 1}, e.opsOn(e.schema+".t"))
}

// TestVerifiedWriteRacingCreateAllowUnaudited: the table created in the
// instant has no primary key; with AllowUnaudited the write runs, logged.
func TestVerifiedWriteRacingCreateAllowUnaudited(t *testing.T) {
	var logs bytes.Buffer
	dsn, schema := pgtestSchema(t)
	e := newEnvDSN(t, dsn, schema, ``, nil)
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{AllowUnaudited: true, Logger: textLogger(&logs)})
	require.NoError(t, err)
	require.NoError(t, reg.RegisterTable("k"))
	db := openWith(t, dsn, reg)
	const q = `INSERT INTO k VALUES (1) /* race-keyless */`
	var once sync.Once
	reset := auditpgx.SetAfterBuild(func(s string) {
		if s == q {
			once.Do(func() {
				_, err := e.plain.ExecContext(e.ctx, `CREATE TABLE k (a int)`)
				require.NoError(t, err)
			})
		}
	})
	defer reset()
	_, err = db.ExecContext(e.ctx, q)
	require.NoError(t, err)
	var n int
	require.NoError(t, e.plain.QueryRowContext(e.ctx, `SELECT count(*) FROM k`).Scan(&n))
	require.Equal(t, 1, n)
	require.Equal(t, 0, e.countEntries())
	require.Contains(t, logs.String(), "has no primary key")
}
