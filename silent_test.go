package auditpgx_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/internal/pgtest"
)

// The promise "nothing silent": a write whose target, as the server
// resolves it when the statement runs, is a registered table is recorded or
// refused, whatever DDL happened before it — through the driver, from
// another client, in a rolled-back transaction or in another session.

const silentSetup = `CREATE TABLE t (id int PRIMARY KEY, v text);`

func registerT(r *auditpgx.Registry) error { return r.RegisterTable("t") }

// opsOn counts entries by operation for table_name.
func (e *env) opsOn(table string) map[string]int {
	e.t.Helper()
	rows, err := e.plain.QueryContext(e.ctx, `SELECT operation, count(*) FROM auditpgx_entry WHERE table_name = $1 GROUP BY 1`, table)
	require.NoError(e.t, err)
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var op string
		var n int
		require.NoError(e.t, rows.Scan(&op, &n))
		out[op] = n
	}
	require.NoError(e.t, rows.Err())
	return out
}

// writeAll runs an INSERT, an UPDATE and a DELETE of row id through db,
// each as a text never sent before (tag makes it new), and the same three
// as cached texts.
func writeAll(t *testing.T, ctx context.Context, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, id int, tag string) {
	t.Helper()
	for _, q := range []string{
		`INSERT INTO t (id, v) VALUES ($1, 'a') /* ` + tag + ` */`,
		`UPDATE t SET v = 'b' WHERE id = $1 /* ` + tag + ` */`,
		`DELETE FROM t WHERE id = $1 /* ` + tag + ` */`,
		`INSERT INTO t (id, v) VALUES ($1, 'a')`,
		`UPDATE t SET v = 'b' WHERE id = $1`,
		`DELETE FROM t WHERE id = $1`,
	} {
		res, err := db.ExecContext(ctx, q, id)
		require.NoError(t, err, q)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		require.EqualValues(t, 1, n, q)
	}
}

var twoEach = map[string]int{"create": 2, "update": 2, "delete": 2}

func TestSilentTableReplacedByAnotherClient(t *testing.T) {
	t.Parallel()
	for _, replace := range []string{
		`DROP TABLE t; CREATE TABLE t (id int PRIMARY KEY, v text)`,
		`DROP TABLE IF EXISTS t_old; ALTER TABLE t RENAME TO t_old; CREATE TABLE t (id int PRIMARY KEY, v text)`,
		`CREATE TABLE t_new (id int PRIMARY KEY, v text); DROP TABLE t; ALTER TABLE t_new RENAME TO t`,
		`DROP TABLE t; CREATE TABLE t (extra int, id int PRIMARY KEY, v text)`,
	} {
		t.Run(strings.Fields(replace)[0]+"_"+strings.Fields(replace)[2], func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, silentSetup, registerT)
			writeAll(t, e.ctx, e.db, 1, "before")
			require.Equal(t, twoEach, e.opsOn("t"))
			_, err := e.plain.ExecContext(e.ctx, replace)
			require.NoError(t, err)
			e.clearEntries()
			writeAll(t, e.ctx, e.db, 2, "after")
			require.Equal(t, twoEach, e.opsOn("t"), "writes to the new t after %q", replace)
			// The same in a transaction, where a cached rewrite cannot be
			// retried: replaced again, it fails loudly or is audited.
			_, err = e.plain.ExecContext(e.ctx, replace)
			require.NoError(t, err)
			e.clearEntries()
			tx, err := e.db.BeginTx(e.ctx, nil)
			require.NoError(t, err)
			_, err = tx.ExecContext(e.ctx, `INSERT INTO t (id, v) VALUES ($1, 'a')`, 3)
			if err != nil {
				var pgErr *pgconn.PgError
				require.ErrorAs(t, err, &pgErr, "a failure is the server's own error")
				require.NoError(t, tx.Rollback())
				require.Equal(t, 0, e.countEntries())
				return
			}
			require.NoError(t, tx.Commit())
			require.Equal(t, map[string]int{"create": 1}, e.opsOn("t"))
		})
	}
}

func TestSilentRenameBothWays(t *testing.T) {
	t.Parallel()
	e := newEnv(t, silentSetup+`CREATE TABLE u (id int PRIMARY KEY, v text);`, registerT)
	// t renamed away: the registered name now means nothing, and the old
	// table under its new name is not registered.
	_, err := e.plain.ExecContext(e.ctx, `ALTER TABLE t RENAME TO t_gone`)
	require.NoError(t, err)
	_, err = e.db.ExecContext(e.ctx, `INSERT INTO t_gone VALUES (1, 'x')`)
	require.NoError(t, err)
	_, err = e.db.ExecContext(e.ctx, `INSERT INTO t VALUES (1, 'x')`)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, "42P01", pgErr.Code, "a write to the absent registered table is the server's to refuse")
	require.Equal(t, 0, e.countEntries())
	// Another table renamed to t: now it is the registered table.
	_, err = e.plain.ExecContext(e.ctx, `ALTER TABLE u RENAME TO t`)
	require.NoError(t, err)
	writeAll(t, e.ctx, e.db, 7, "renamed")
	require.Equal(t, twoEach, e.opsOn("t"))
}

func TestSilentRolledBackCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, ``, registerT)
	// pgx's TestStmtExec: the table is created in a transaction that rolls
	// back, and again afterwards.
	tx, err := e.db.BeginTx(e.ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(e.ctx, `CREATE TABLE t (id int PRIMARY KEY, v text)`)
	require.NoError(t, err)
	_, err = tx.ExecContext(e.ctx, `INSERT INTO t (id, v) VALUES ($1, 'a')`, 1)
	require.NoError(t, err)
	require.NoError(t, tx.Rollback())
	_, err = e.db.ExecContext(e.ctx, `CREATE TABLE t (id int PRIMARY KEY, v text)`)
	require.NoError(t, err)
	writeAll(t, e.ctx, e.db, 2, "rolled-back")
	require.Equal(t, twoEach, e.opsOn("t"))

	// Prepared, as pgx's test does: the DDL too.
	_, err = e.db.ExecContext(e.ctx, `DROP TABLE t`)
	require.NoError(t, err)
	tx, err = e.db.BeginTx(e.ctx, nil)
	require.NoError(t, err)
	create, err := tx.PrepareContext(e.ctx, `CREATE TABLE t (id int PRIMARY KEY, v text)`)
	require.NoError(t, err)
	_, err = create.ExecContext(e.ctx)
	require.NoError(t, err)
	require.NoError(t, create.Close())
	insert, err := tx.PrepareContext(e.ctx, `INSERT INTO t VALUES ($1::int, 'p')`)
	require.NoError(t, err)
	_, err = insert.ExecContext(e.ctx, 3)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	require.Equal(t, 3, e.opsOn("t")["create"])
}

func TestSilentTemporaryTablesPerSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, silentSetup, registerT)
	var conns []*sql.Conn
	for i := range 2 {
		c, err := e.db.Conn(e.ctx)
		require.NoError(t, err)
		defer c.Close()
		_, err = c.ExecContext(e.ctx, fmt.Sprintf(`CREATE TEMPORARY TABLE t (id int PRIMARY KEY, v text, n%d int)`, i))
		require.NoError(t, err)
		conns = append(conns, c)
	}
	for round := range 3 {
		for i, c := range conns {
			writeAll(t, e.ctx, c, 10*round+i, fmt.Sprintf("temp-%d-%d", round, i))
		}
	}
	require.Equal(t, map[string]int{"create": 12, "update": 12, "delete": 12}, e.opsOn("t"))
	// Writes outside those sessions reach the permanent t, audited too.
	writeAll(t, e.ctx, e.db, 99, "permanent")
	require.Equal(t, 14, e.opsOn("t")["create"])
	var n int
	require.NoError(t, e.plain.QueryRowContext(e.ctx, `SELECT count(*) FROM t`).Scan(&n))
	require.Equal(t, 0, n)
}

func TestSilentEarlierSchemaInSearchPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t, silentSetup, registerT)
	early := e.schema + "_early"
	_, err := e.plain.ExecContext(e.ctx, `CREATE SCHEMA `+early)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = e.plain.ExecContext(context.Background(), `DROP SCHEMA `+early+` CASCADE`) })
	c, err := e.db.Conn(e.ctx)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.ExecContext(e.ctx, `SET search_path = `+early+`, `+e.schema)
	require.NoError(t, err)
	writeAll(t, e.ctx, c, 1, "before")
	// Another client creates t in the earlier schema: the bare name now
	// means it, and the unqualified registration follows the name.
	_, err = e.plain.ExecContext(e.ctx, `CREATE TABLE `+early+`.t (id int PRIMARY KEY, v text)`)
	require.NoError(t, err)
	writeAll(t, e.ctx, c, 2, "after")
	require.Equal(t, map[string]int{"create": 4, "update": 4, "delete": 4}, e.opsOn("t"))

	// Registered qualified, the earlier table is another table: its writes
	// are not entries of the registered one.
	e2 := newEnv(t, silentSetup, func(r *auditpgx.Registry) error { return nil })
	require.NoError(t, e2.reg.RegisterTable(e2.schema+".t"))
	c2, err := e2.db.Conn(e2.ctx)
	require.NoError(t, err)
	defer c2.Close()
	_, err = c2.ExecContext(e2.ctx, `SET search_path = `+early+`, `+e2.schema)
	require.NoError(t, err)
	_, err = c2.ExecContext(e2.ctx, `INSERT INTO t VALUES (5, 'early')`)
	require.NoError(t, err)
	_, err = c2.ExecContext(e2.ctx, `INSERT INTO `+e2.schema+`.t VALUES (5, 'registered')`)
	require.NoError(t, err)
	require.Equal(t, map[string]int{"create": 1}, e2.opsOn(e2.schema+".t"))
}

func TestSilentDDLBetweenExecutions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, silentSetup, registerT)
	c, err := e.db.Conn(e.ctx)
	require.NoError(t, err)
	defer c.Close()
	stmt, err := c.PrepareContext(e.ctx, `INSERT INTO t (id, v) VALUES ($1, 'p')`)
	require.NoError(t, err)
	defer stmt.Close()
	const cached = `UPDATE t SET v = v || '!' WHERE id = $1`
	_, err = stmt.ExecContext(e.ctx, 1)
	require.NoError(t, err)
	_, err = c.ExecContext(e.ctx, cached, 1)
	require.NoError(t, err)
	for i, ddl := range []string{
		`ALTER TABLE t ADD COLUMN extra int`,
		`ALTER TABLE t DROP COLUMN extra`,
		`ALTER TABLE t RENAME TO t_old; CREATE TABLE t (id int PRIMARY KEY, v text)`,
		`DROP TABLE t; CREATE TABLE t (pre int, id int PRIMARY KEY, v text)`,
		`ALTER TABLE t RENAME COLUMN v TO v_old; ALTER TABLE t ADD COLUMN v text`,
	} {
		_, err := e.plain.ExecContext(e.ctx, ddl)
		require.NoError(t, err)
		id := 10 + i
		_, err = stmt.ExecContext(e.ctx, id)
		require.NoError(t, err, "prepared INSERT after %q", ddl)
		res, err := c.ExecContext(e.ctx, cached, id)
		require.NoError(t, err, "cached UPDATE after %q", ddl)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
	}
	ops := e.opsOn("t")
	require.Equal(t, 6, ops["create"])
	require.Equal(t, 6, ops["update"])
}

// TestSilentAddedColumnIsRecorded adds a column from another client while
// the driver holds the table's statements prepared and cached: the next
// INSERT's entry holds the new column, and so does the next DELETE's, through
// the driver and through the pgx front, prepared, cached and in the exec
// mode that prepares nothing. Inside a transaction, where the statement
// cannot be run again, it fails with a StaleError and writes nothing.
func TestSilentAddedColumnIsRecorded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, silentSetup, registerT)
	c, err := e.db.Conn(e.ctx)
	require.NoError(t, err)
	defer c.Close()
	const insert, del = `INSERT INTO t (id, v) VALUES ($1, 'p')`, `DELETE FROM t WHERE id = $1`
	stmt, err := c.PrepareContext(e.ctx, insert)
	require.NoError(t, err)
	defer stmt.Close()
	raw, err := pgxpool.New(e.ctx, e.dsn)
	require.NoError(t, err)
	defer raw.Close()
	pool, err := auditpgx.WrapPool(raw, auditpgx.WithRegistry(e.reg))
	require.NoError(t, err)

	type writer struct {
		name string
		exec func(q string, id int) error
	}
	writers := []writer{
		{"prepared", func(q string, id int) error {
			if q == insert {
				_, err := stmt.ExecContext(e.ctx, id)
				return err
			}
			_, err := c.ExecContext(e.ctx, q, id)
			return err
		}},
		{"pgx front", func(q string, id int) error { _, err := pool.Exec(e.ctx, q, id); return err }},
		{"pgx front, exec mode", func(q string, id int) error {
			_, err := pool.Exec(e.ctx, q, pgx.QueryExecModeExec, id)
			return err
		}},
	}
	for i, w := range writers {
		// Warm every cache with the table as it is.
		id := 100 * (i + 1)
		require.NoError(t, w.exec(insert, id), w.name)
		require.NoError(t, w.exec(del, id), w.name)
	}
	for i, w := range writers {
		col := fmt.Sprintf("extra%d", i)
		_, err := e.plain.ExecContext(e.ctx, fmt.Sprintf(`ALTER TABLE t ADD COLUMN %s int DEFAULT %d`, col, 7+i))
		require.NoError(t, err)
		id := 100*(i+1) + 1
		require.NoError(t, w.exec(insert, id), "%s: INSERT after ADD COLUMN %s", w.name, col)
		require.NoError(t, w.exec(del, id), "%s: DELETE after ADD COLUMN %s", w.name, col)
		var added, removed sql.NullString
		require.NoError(t, e.plain.QueryRowContext(e.ctx, `SELECT
	(SELECT changes->'added_fields'->>$2 FROM auditpgx_entry WHERE object_id = $1 AND operation = 'create'),
	(SELECT changes->'removed_fields'->>$2 FROM auditpgx_entry WHERE object_id = $1 AND operation = 'delete')`,
			fmt.Sprint(id), col).Scan(&added, &removed))
		want := fmt.Sprint(7 + i)
		require.Equal(t, want, added.String, "%s: the create entry's %s", w.name, col)
		require.Equal(t, want, removed.String, "%s: the delete entry's %s", w.name, col)
	}

	// In a transaction the statement fails rather than run unaudited.
	before := e.countEntries()
	tx, err := c.BeginTx(e.ctx, nil)
	require.NoError(t, err)
	_, err = e.plain.ExecContext(e.ctx, `ALTER TABLE t ADD COLUMN late int DEFAULT 9`)
	require.NoError(t, err)
	_, err = tx.ExecContext(e.ctx, insert, 900)
	var stale *auditpgx.StaleError
	require.ErrorAs(t, err, &stale, "INSERT in a transaction after ADD COLUMN")
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.NoError(t, tx.Rollback())
	require.Equal(t, before, e.countEntries())
	var rows int
	require.NoError(t, e.plain.QueryRowContext(e.ctx, `SELECT count(*) FROM t WHERE id = 900`).Scan(&rows))
	require.Zero(t, rows)
	// Outside it, the same statement runs and records the column.
	_, err = c.ExecContext(e.ctx, insert, 901)
	require.NoError(t, err)
	var late sql.NullString
	require.NoError(t, e.plain.QueryRowContext(e.ctx, `SELECT changes->'added_fields'->>'late' FROM auditpgx_entry WHERE object_id = '901'`).Scan(&late))
	require.Equal(t, "9", late.String)
}

// TestSilentRandomRebuilds keeps rebuilding the registered table from a
// plain pgx connection while writers go through auditpgx, its driver and
// its pgx front. At the end every
// write that succeeded has its entry, no entry lacks its write, and every
// failure was an error the caller saw.
func TestSilentRandomRebuilds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, silentSetup, registerT)
	ctx, cancel := context.WithTimeout(e.ctx, 4*time.Second)
	defer cancel()
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(1, 2))
		for k := 0; !stop.Load(); k++ {
			var ddl string
			switch rng.IntN(5) {
			case 0:
				ddl = fmt.Sprintf(`ALTER TABLE t RENAME TO t_%d; CREATE TABLE t (id int PRIMARY KEY, v text)`, k)
			case 1:
				ddl = `CREATE TABLE t_copy AS SELECT * FROM t; DROP TABLE t; ALTER TABLE t_copy RENAME TO t; ALTER TABLE t ADD PRIMARY KEY (id)`
			case 2:
				ddl = fmt.Sprintf(`ALTER TABLE t ADD COLUMN c%d int`, k)
			case 3:
				ddl = `DO $$ DECLARE c text; BEGIN SELECT attname INTO c FROM pg_attribute WHERE attrelid = 't'::regclass AND attname LIKE 'c%' AND attnum > 0 AND NOT attisdropped LIMIT 1; IF c IS NOT NULL THEN EXECUTE format('ALTER TABLE t DROP COLUMN %I', c); END IF; END $$`
			case 4:
				ddl = `DROP TABLE t; CREATE TABLE t (id int PRIMARY KEY, v text)`
			}
			if _, err := e.plain.ExecContext(e.ctx, ddl); err != nil {
				t.Errorf("rebuild %q: %v", ddl, err)
				return
			}
			time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
		}
	}()
	// Writers 0 and 1 go through the driver, 2 and 3 through the pgx
	// front, 3 in the exec mode that prepares nothing.
	raw, err := pgxpool.New(e.ctx, e.dsn)
	require.NoError(t, err)
	defer raw.Close()
	pool, err := auditpgx.WrapPool(raw, auditpgx.WithRegistry(e.reg))
	require.NoError(t, err)
	execs := []func(q string, id int) (int64, error){
		func(q string, id int) (int64, error) {
			res, err := e.db.ExecContext(e.ctx, q, id)
			if err != nil {
				return 0, err
			}
			return res.RowsAffected()
		},
	}
	execs = append(execs, execs[0], func(q string, id int) (int64, error) {
		tag, err := pool.Exec(e.ctx, q, id)
		return tag.RowsAffected(), err
	}, func(q string, id int) (int64, error) {
		tag, err := pool.Exec(e.ctx, q, pgx.QueryExecModeExec, id)
		return tag.RowsAffected(), err
	})
	type result struct{ inserted, deleted map[int]int }
	results := make([]result, len(execs))
	var seen atomic.Int64
	var kinds sync.Map // error text -> struct{}
	for w := range results {
		results[w] = result{inserted: map[int]int{}, deleted: map[int]int{}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := results[w]
			for i := 0; ctx.Err() == nil; i++ {
				id := w*1_000_000 + i
				q := `INSERT INTO t (id, v) VALUES ($1, 'x')`
				if i%3 == 0 {
					q += fmt.Sprintf(" /* %d */", id) // a text not seen before
				}
				// Run with a context that is never cancelled: a statement
				// cancelled as it commits reports an error for a write that
				// happened.
				n, err := execs[w](q, id)
				if err != nil {
					seen.Add(1)
					kinds.Store(err.Error(), struct{}{})
					continue
				}
				if n == 1 {
					r.inserted[id]++
				}
				if i%2 == 0 {
					n, err := execs[w](`DELETE FROM t WHERE id = $1`, id)
					if err != nil {
						seen.Add(1)
						kinds.Store(err.Error(), struct{}{})
						continue
					}
					r.deleted[id] += int(n)
				}
			}
		}()
	}
	<-ctx.Done()
	stop.Store(true)
	wg.Wait()
	want := map[string]int{}
	inserts := 0
	for _, r := range results {
		for id, n := range r.inserted {
			want["create/"+fmt.Sprint(id)] += n
			inserts += n
		}
		for id, n := range r.deleted {
			if n > 0 {
				want["delete/"+fmt.Sprint(id)] += n
			}
		}
	}
	require.Greater(t, inserts, 50, "too few writes to mean anything")
	rows, err := e.plain.QueryContext(e.ctx, `SELECT operation || '/' || object_id, count(*) FROM auditpgx_entry GROUP BY 1`)
	require.NoError(t, err)
	got := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		require.NoError(t, rows.Scan(&k, &n))
		got[k] = n
	}
	require.NoError(t, rows.Err())
	rows.Close()
	for k, n := range want {
		require.Equal(t, n, got[k], "entries of %s", k)
	}
	for k, n := range got {
		require.Equal(t, n, want[k], "entries of %s", k)
	}
	t.Logf("%d inserts audited, %d errors seen by callers", inserts, seen.Load())
	kinds.Range(func(k, _ any) bool {
		t.Logf("error seen: %s", k)
		return true
	})
}

// TestSilentErrorsAreTheServers checks that a failure caused by DDL from
// another client reaches the caller as the server's own error.
func TestSilentErrorsAreTheServers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, silentSetup, registerT)
	_, err := e.db.ExecContext(e.ctx, `INSERT INTO t VALUES (1, 'a')`)
	require.NoError(t, err)
	_, err = e.plain.ExecContext(e.ctx, `DROP TABLE t`)
	require.NoError(t, err)
	_, err = e.db.ExecContext(e.ctx, `INSERT INTO t VALUES (1, 'a')`)
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "got %v", err)
	require.Equal(t, "42P01", pgErr.Code)
}

// TestSilentAttachByAnotherClient: a table whose writes were planned as
// unregistered becomes a partition of a registered table through another
// client. The plan is asked again within a second, and its writes are
// audited from then on.
func TestSilentAttachByAnotherClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `CREATE TABLE m (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
		CREATE TABLE m_1 PARTITION OF m FOR VALUES FROM (0) TO (100);
		CREATE TABLE m_2 (id int PRIMARY KEY, v text);`, func(r *auditpgx.Registry) error { return r.RegisterTable("m") })
	const insert = `INSERT INTO m_2 (id, v) VALUES ($1, 'x')`
	_, err := e.db.ExecContext(e.ctx, insert, 100)
	require.NoError(t, err)
	require.Equal(t, 0, e.countEntries(), "m_2 is not a partition yet")
	_, err = e.plain.ExecContext(e.ctx, `ALTER TABLE m ATTACH PARTITION m_2 FOR VALUES FROM (100) TO (200)`)
	require.NoError(t, err)
	time.Sleep(1100 * time.Millisecond)
	_, err = e.db.ExecContext(e.ctx, insert, 101)
	require.NoError(t, err)
	require.Equal(t, map[string]int{"create": 1}, e.opsOn("m"))
	// Attached through the driver, at once.
	_, err = e.db.ExecContext(e.ctx, `CREATE TABLE m_3 (id int PRIMARY KEY, v text)`)
	require.NoError(t, err)
	_, err = e.db.ExecContext(e.ctx, `INSERT INTO m_3 (id, v) VALUES ($1, 'x')`, 200)
	require.NoError(t, err)
	_, err = e.db.ExecContext(e.ctx, `ALTER TABLE m ATTACH PARTITION m_3 FOR VALUES FROM (200) TO (300)`)
	require.NoError(t, err)
	_, err = e.db.ExecContext(e.ctx, `INSERT INTO m_3 (id, v) VALUES ($1, 'x')`, 201)
	require.NoError(t, err)
	require.Equal(t, map[string]int{"create": 2}, e.opsOn("m"))
}

// TestSilentColumnTypeChangedByAnotherClient: ALTER COLUMN … TYPE from
// another client keeps the table's OID and columns, so the driver goes on
// writing with the types it described. An UPDATE's diff compares text
// columns as text under "C" and jsonb ones as jsonb, so a column turned
// citext (whose own equality ignores case) still records a change of case,
// and one turned json (which has no equality) still records its changes,
// as comparing to_jsonb values would.
func TestSilentColumnTypeChangedByAnotherClient(t *testing.T) {
	t.Parallel()
	// public is on the search_path, as where applications have citext, so
	// that citext's own = is the one a comparison of its values finds.
	dsn, schema := pgtest.NewSchema(t)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", schema+",public")
	u.RawQuery = q.Encode()
	e := newEnvDSN(t, u.String(), schema, `CREATE TABLE t (id int PRIMARY KEY, v text, j jsonb);`, registerT)
	const setV, setJ = `UPDATE t SET v = $1 WHERE id = $2`, `UPDATE t SET j = $1 WHERE id = $2`
	_, err = e.db.ExecContext(e.ctx, `INSERT INTO t VALUES (1, 'a', '{"k": 1}')`)
	require.NoError(t, err)
	// Described, rewritten and prepared with v text and j jsonb.
	_, err = e.db.ExecContext(e.ctx, setV, "b", 1)
	require.NoError(t, err)
	_, err = e.db.ExecContext(e.ctx, setJ, `{"k": 2}`, 1)
	require.NoError(t, err)

	_, err = e.plain.ExecContext(e.ctx, `CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public`)
	require.NoError(t, err)
	_, err = e.plain.ExecContext(e.ctx, `ALTER TABLE t ALTER COLUMN v TYPE public.citext, ALTER COLUMN j TYPE json USING j::json`)
	require.NoError(t, err)

	// changed lists a column's pairs in the update entries, oldest first.
	changed := func(col string) string {
		t.Helper()
		var out sql.NullString
		require.NoError(t, e.plain.QueryRowContext(e.ctx, `SELECT string_agg((changes->'changed_fields'->$1)::text, ' ' ORDER BY id)
FROM auditpgx_entry WHERE table_name = 't' AND operation = 'update' AND changes->'changed_fields' ? $1`, col).Scan(&out))
		return out.String
	}
	res, err := e.db.ExecContext(e.ctx, setV, "B", 1) // a change of case only
	require.NoError(t, err)
	n, err := res.RowsAffected()
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	require.Equal(t, `["a", "b"] ["b", "B"]`, changed("v"), "citext's equality ignores case; the entry must not")

	_, err = e.db.ExecContext(e.ctx, setJ, `{"k":  2}`, 1) // the same jsonb, spelled otherwise
	require.NoError(t, err)
	_, err = e.db.ExecContext(e.ctx, setJ, `{"k": 3}`, 1)
	require.NoError(t, err)
	require.Equal(t, `[{"k": 1}, {"k": 2}] [{"k": 2}, {"k": 3}]`, changed("j"))
}
