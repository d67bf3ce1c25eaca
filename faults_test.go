// The faults suite: connections ended, statements cancelled and servers
// failing mid-write leave no change without its entry and no entry without
// its change, and never run a statement twice.

package auditpgx_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/internal/pgtest"
)

// faultDDL is a table whose bulk UPDATE can be made long: the row with id
// fault_conf.sleep_id sleeps fault_conf.secs seconds in a trigger, after
// (in heap order) every other row has been updated. The sequence runs
// counts the UPDATE statements that began executing, outside of any
// transaction, so a statement retried behind the caller's back shows.
func faultDDL(rows int) string {
	return fmt.Sprintf(`
CREATE TABLE big (id int PRIMARY KEY, v int NOT NULL DEFAULT 0);
INSERT INTO big SELECT g, 0 FROM generate_series(1, %[1]d) g;
CREATE TABLE fault_conf (sleep_id int, secs float8);
INSERT INTO fault_conf VALUES (%[1]d, 30);
CREATE SEQUENCE runs;
CREATE FUNCTION note_run() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM nextval('runs'); RETURN NULL; END $$;
CREATE TRIGGER big_runs BEFORE UPDATE ON big FOR EACH STATEMENT EXECUTE FUNCTION note_run();
CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.id = (SELECT sleep_id FROM fault_conf) THEN
		PERFORM pg_sleep((SELECT secs FROM fault_conf));
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER big_slow BEFORE UPDATE ON big FOR EACH ROW EXECUTE FUNCTION slow_row();`, rows)
}

func registerBig(r *auditpgx.Registry) error { return r.RegisterTable("big") }

// faultRows is the size of the bulk update; AUDITPGX_FAULT_ROWS overrides it.
func faultRows(t *testing.T) int { return envInt(t, "AUDITPGX_FAULT_ROWS", 20_000) }

func newFaultEnv(t *testing.T) *env {
	t.Helper()
	return newEnv(t, faultDDL(faultRows(t)), registerBig)
}

// marker returns a literal unique to one statement, to find it in
// pg_stat_activity, where it appears in the rewritten text too.
func marker() string { return "fault-" + strconv.FormatUint(rand.Uint64(), 36) }

func (e *env) runs() int64 {
	e.t.Helper()
	var n int64
	require.NoError(e.t, e.plain.QueryRowContext(e.ctx, `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM runs`).Scan(&n))
	return n
}

// requireUntouched checks that no row of big changed and no entry exists.
func (e *env) requireUntouched(msg string) {
	e.t.Helper()
	var changed int
	require.NoError(e.t, e.plain.QueryRowContext(e.ctx, `SELECT count(*) FROM big WHERE v <> 0`).Scan(&changed))
	require.Zero(e.t, changed, "%s: rows of big changed", msg)
	require.Zero(e.t, e.countEntries(), "%s: entries were written", msg)
}

// sleeping waits until the statement holding mark sleeps in the trigger
// and returns its backend's pid.
func (e *env) sleeping(ctx context.Context, mark string, done <-chan error) int {
	e.t.Helper()
	for {
		var pid int
		err := e.plain.QueryRowContext(ctx, `SELECT pid FROM pg_stat_activity
			WHERE wait_event = 'PgSleep' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()`, mark).Scan(&pid)
		if err == nil {
			return pid
		}
		require.ErrorIs(e.t, err, sql.ErrNoRows)
		select {
		case err := <-done:
			e.t.Fatalf("the statement ended before it slept: %v", err)
		case <-ctx.Done():
			e.t.Fatal("the statement never reached the sleeping row")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// gone waits until no backend runs the statement holding mark.
func (e *env) gone(ctx context.Context, mark string) {
	e.t.Helper()
	for {
		var n int
		require.NoError(e.t, e.plain.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE state = 'active' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()`, mark).Scan(&n))
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			e.t.Fatal("the statement is still running")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (e *env) terminate(pid int) {
	e.t.Helper()
	var ok bool
	require.NoError(e.t, e.plain.QueryRowContext(e.ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&ok))
	require.True(e.t, ok)
}

// requireNotRetriable: database/sql runs a statement again on another
// connection when the driver returns driver.ErrBadConn, so the driver must
// not return it once the statement was sent.
func requireNotRetriable(t *testing.T, err error, msg string) {
	t.Helper()
	require.Error(t, err, msg)
	require.False(t, errors.Is(err, driver.ErrBadConn), "%s: %v is driver.ErrBadConn", msg, err)
}

// recovers checks that the pool hands out a working connection after a
// fault: an audited write succeeds and writes its entry.
func (e *env) recovers(db *sql.DB) {
	e.t.Helper()
	before := e.countEntries()
	res, err := db.ExecContext(e.ctx, `UPDATE big SET v = v + 1 WHERE id = 1`)
	require.NoError(e.t, err, "the pool did not recover")
	n, err := res.RowsAffected()
	require.NoError(e.t, err)
	require.EqualValues(e.t, 1, n)
	require.Equal(e.t, before+1, e.countEntries())
}

// TestFaultTerminatedDuringAuditedWrite: the server ends the connection
// (pg_terminate_backend) while a bulk audited UPDATE is half done, in each
// way a statement can be sent. Nothing of it is committed, the statement
// ran exactly once (no hidden retry), and the next statements succeed.
func TestFaultTerminatedDuringAuditedWrite(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name  string
		runs  int64 // UPDATE statements that start
		write func(ctx context.Context, db *sql.DB, q string) error
	}{
		{"exec", 1, func(ctx context.Context, db *sql.DB, q string) error {
			_, err := db.ExecContext(ctx, q)
			return err
		}},
		{"query", 1, func(ctx context.Context, db *sql.DB, q string) error {
			rows, err := db.QueryContext(ctx, q+` RETURNING id`)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
			}
			return rows.Err()
		}},
		{"prepared", 1, func(ctx context.Context, db *sql.DB, q string) error {
			st, err := db.PrepareContext(ctx, q)
			if err != nil {
				return err
			}
			defer st.Close()
			_, err = st.ExecContext(ctx)
			return err
		}},
		{"multi-statement string", 2, func(ctx context.Context, db *sql.DB, q string) error {
			// pg_stat_activity shows the first 1024 bytes: the marker goes
			// into the first statement, the sleep happens in the second.
			mark := q[strings.Index(q, "'"):]
			_, err := db.ExecContext(ctx, `UPDATE big SET v = 7 WHERE id = 1 AND `+mark+`; UPDATE big SET v = v + 1`)
			return err
		}},
		{"transaction", 2, func(ctx context.Context, db *sql.DB, q string) error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback() //nolint:errcheck // the connection is gone
			if _, err := tx.ExecContext(ctx, `UPDATE big SET v = 7 WHERE id = 1`); err != nil {
				return fmt.Errorf("first statement: %w", err)
			}
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
			return tx.Commit()
		}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			e := newFaultEnv(t)
			ctx, cancel := context.WithTimeout(e.ctx, time.Minute)
			defer cancel()
			mark := marker()
			q := `UPDATE big SET v = v + 1 WHERE '` + mark + `' <> ''`
			done := make(chan error, 1)
			go func() { done <- mode.write(ctx, e.db, q) }()
			e.terminate(e.sleeping(ctx, mark, done))
			err := <-done
			requireNotRetriable(t, err, mode.name)
			t.Logf("%s: %T: %v", mode.name, err, err)
			e.gone(ctx, mark)
			require.Equal(t, mode.runs, e.runs(), "UPDATE statements executed")
			e.requireUntouched(mode.name)
			e.recovers(e.db)
		})
	}
}

// TestFaultTerminatedMidTransaction: the connection of an open transaction
// that has made audited writes is terminated between statements. The next
// statement and COMMIT fail, nothing is committed, and the pool recovers.
func TestFaultTerminatedMidTransaction(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t)
	tx, err := e.db.BeginTx(e.ctx, nil)
	require.NoError(t, err)
	defer tx.Rollback() //nolint:errcheck // the connection is gone
	_, err = tx.ExecContext(e.ctx, `UPDATE big SET v = 1 WHERE id <= 100`)
	require.NoError(t, err)
	var pid int
	require.NoError(t, tx.QueryRowContext(e.ctx, `SELECT pg_backend_pid()`).Scan(&pid))
	e.terminate(pid)
	_, err = tx.ExecContext(e.ctx, `UPDATE big SET v = 2 WHERE id > 100 AND id <= 200`)
	requireNotRetriable(t, err, "statement after the termination")
	t.Logf("statement: %T: %v", err, err)
	err = tx.Commit()
	require.Error(t, err, "COMMIT after the termination")
	t.Logf("commit: %T: %v", err, err)
	e.requireUntouched("terminated transaction")
	require.EqualValues(t, 1, e.runs())
	e.recovers(e.db)
}

// TestFaultStatementTimeout: statement_timeout cancels a bulk audited
// UPDATE on the server; the rows and the entries are both absent.
func TestFaultStatementTimeout(t *testing.T) {
	t.Parallel()
	dsn, schema := pgtestSchema(t)
	e := newEnvDSN(t, dsn, schema, faultDDL(faultRows(t)), registerBig)
	db := openWith(t, dsn+"&statement_timeout=500", e.reg)
	for _, call := range []string{"exec", "query"} {
		var err error
		if call == "exec" {
			_, err = db.ExecContext(e.ctx, `UPDATE big SET v = v + 1`)
		} else {
			var rows *sql.Rows
			if rows, err = db.QueryContext(e.ctx, `UPDATE big SET v = v + 1 RETURNING id`); err == nil {
				for rows.Next() {
				}
				err = rows.Err()
				rows.Close()
			}
		}
		requireNotRetriable(t, err, call)
		requireCode(t, err, "57014", call)
		e.requireUntouched(call)
	}
	require.EqualValues(t, 2, e.runs())
	e.recovers(db)
}

// TestFaultContextCancel cancels the context of a bulk audited UPDATE
// while the server runs it: the rows and the entries are both absent, and
// the statement ran once.
//
// How the server learns of the cancellation is pgx's choice. With pgx's
// default (pgconn.DeadlineContextWatcherHandler) the client closes the
// connection, sending a cancel request on its way out; with a
// CancelRequestContextWatcherHandler it sends the cancel request and waits
// for the server's 57014 error. Plain pgx is run alongside for comparison.
func TestFaultContextCancel(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name string
		// open returns the database to test; audited says whether it
		// writes entries.
		open    func(t *testing.T, e *env) *sql.DB
		audited bool
	}{
		{"plain pgx, default handler", func(t *testing.T, e *env) *sql.DB { return e.plain }, false},
		{"auditpgx, default handler", func(t *testing.T, e *env) *sql.DB { return e.db }, true},
		{"auditpgx, cancel request", func(t *testing.T, e *env) *sql.DB {
			cfg, err := pgx.ParseConfig(e.dsn)
			require.NoError(t, err)
			cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
				return &pgconn.CancelRequestContextWatcherHandler{Conn: c, CancelRequestDelay: 0, DeadlineDelay: 5 * time.Second}
			}
			name := stdlib.RegisterConnConfig(cfg)
			t.Cleanup(func() { stdlib.UnregisterConnConfig(name) })
			return openWith(t, name, e.reg)
		}, true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			e := newFaultEnv(t)
			_, err := e.plain.ExecContext(e.ctx, `UPDATE fault_conf SET secs = 2`)
			require.NoError(t, err)
			db := mode.open(t, e)
			ctx, cancel := context.WithCancel(e.ctx)
			defer cancel()
			mark := marker()
			done := make(chan error, 1)
			go func() {
				_, err := db.ExecContext(ctx, `UPDATE big SET v = v + 1 WHERE '`+mark+`' <> ''`)
				done <- err
			}()
			e.sleeping(e.ctx, mark, done)
			cancel()
			err = <-done
			requireNotRetriable(t, err, mode.name)
			var pgErr *pgconn.PgError
			if !errors.Is(err, context.Canceled) && !(errors.As(err, &pgErr) && pgErr.Code == "57014") {
				t.Fatalf("%s: %T %v is neither context.Canceled nor a 57014 cancellation", mode.name, err, err)
			}
			t.Logf("%s: %T: %v", mode.name, err, err)
			wait, stop := context.WithTimeout(e.ctx, 30*time.Second)
			defer stop()
			e.gone(wait, mark)

			var changed int
			require.NoError(t, e.plain.QueryRow(`SELECT count(*) FROM big WHERE v <> 0`).Scan(&changed))
			entries := e.countEntries()
			t.Logf("%s: after context.Canceled, %d rows changed and %d entries written", mode.name, changed, entries)
			require.EqualValues(t, 1, e.runs(), "UPDATE statements executed")
			require.Zero(t, changed, "rows changed by the canceled update")
			require.Zero(t, entries, "entries of the canceled update")
			if mode.audited {
				e.recovers(db)
			}
		})
	}
}

// faultProxy forwards TCP connections to a PostgreSQL server and can stop
// doing so, cutting every connection, as the network sees a restart.
type faultProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

func startProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &faultProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() {
		ln.Close()
		p.cut()
	})
	go p.serve()
	return p
}

func (p *faultProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = true, true
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		go pipe(s, c)
		go pipe(c, s)
	}
}

// cut closes every connection and refuses new ones until restore.
func (p *faultProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *faultProxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// TestFaultServerRestart: the server goes away and comes back between
// statements. pgtest cannot restart a server (Server has no Restart and
// does not expose its data directory), so the test does to the client
// what a fast restart does: every backend of the application is
// terminated (a fast shutdown sends each the same FATAL 57P01), and the
// address refuses connections for a while (a proxy in front of the
// server). The test database is its own, so no other test is disturbed.
//
// Statements before, during and after the outage either fail, having
// written nothing, or succeed once: the entries match the rows exactly.
func TestFaultServerRestart(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	proxy := startProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	q := u.Query()
	app := "auditpgx-restart-" + strconv.FormatUint(rand.Uint64(), 36)
	q.Set("application_name", app)
	u.RawQuery = q.Encode()

	e := newEnvDSN(t, dsn, "public", `CREATE TABLE events (id int PRIMARY KEY, v text);`,
		func(r *auditpgx.Registry) error { return r.RegisterTable("events") })
	db := openWith(t, u.String(), e.reg)
	restart := func(outage time.Duration) {
		t.Helper()
		_, err := e.plain.ExecContext(e.ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, app)
		require.NoError(t, err)
		proxy.cut()
		time.Sleep(outage)
		proxy.restore()
	}
	written := 0
	insert := func(ctx context.Context, c interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	}) error {
		_, err := c.ExecContext(ctx, `INSERT INTO events VALUES ($1, 'x')`, written+1)
		if err == nil {
			written++
		}
		return err
	}
	consistent := func(msg string) {
		t.Helper()
		var rows int
		require.NoError(t, e.plain.QueryRow(`SELECT count(*) FROM events`).Scan(&rows))
		require.Equal(t, written, rows, msg)
		require.Equal(t, written, e.countEntries(), msg)
	}

	require.NoError(t, insert(e.ctx, db))
	var wg sync.WaitGroup // fill the pool with idle connections
	for range 3 {
		wg.Go(func() { _, _ = db.ExecContext(e.ctx, `SELECT pg_sleep(0.05)`) })
	}
	wg.Wait()

	restart(300 * time.Millisecond)
	for attempt := 1; ; attempt++ {
		err := insert(e.ctx, db)
		consistent("after the restart")
		if err == nil {
			t.Logf("first write after the restart succeeded at attempt %d", attempt)
			break
		}
		requireNotRetriable(t, err, "write after the restart")
		t.Logf("attempt %d after the restart: %T: %v", attempt, err, err)
		require.Less(t, attempt, 5, "the pool does not recover")
	}

	proxy.cut()
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	err = insert(ctx, db)
	cancel()
	require.Error(t, err, "a write while the server is down")
	t.Logf("while down: %T: %v", err, err)
	consistent("while down")
	proxy.restore()

	tx, err := db.BeginTx(e.ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(e.ctx, `INSERT INTO events VALUES (1000, 'in a transaction')`)
	require.NoError(t, err)
	restart(100 * time.Millisecond)
	err = tx.Commit()
	require.Error(t, err, "COMMIT across a restart")
	t.Logf("commit across the restart: %T: %v", err, err)
	consistent("transaction across the restart")

	for attempt := 1; ; attempt++ {
		if err := insert(e.ctx, db); err == nil {
			break
		}
		require.Less(t, attempt, 5, "the pool does not recover")
	}
	consistent("end")
}
