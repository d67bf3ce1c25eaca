package auditpgx_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"maps"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
)

const connectorSetup = `CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)`

func registerItems(r *auditpgx.Registry) error { return r.RegisterTable("items") }

// stdlibHooks records the calls of pgx's stdlib options.
type stdlibHooks struct {
	before, after, resets, pings atomic.Int32
}

// requireRan checks that every hook ran on db's one connection: connect
// once, then reset and ping on each reuse.
func (h *stdlibHooks) requireRan(t *testing.T, db *sql.DB) {
	t.Helper()
	require.Equal(t, "ran", queryString(t, db, `SELECT current_setting('auditpgx_test.after_connect')`))
	require.Equal(t, int32(1), h.before.Load())
	require.Equal(t, int32(1), h.after.Load())
	require.GreaterOrEqual(t, h.resets.Load(), int32(1))
	require.Equal(t, h.resets.Load(), h.pings.Load())
}

// options returns the four stdlib options: BeforeConnect sets
// application_name, AfterConnect sets a custom setting on the connection.
func (h *stdlibHooks) options(appName string) []stdlib.OptionOpenDB {
	return []stdlib.OptionOpenDB{
		stdlib.OptionBeforeConnect(func(_ context.Context, cfg *pgx.ConnConfig) error {
			h.before.Add(1)
			// cfg is a shallow copy: replace the map rather than write to it.
			params := maps.Clone(cfg.RuntimeParams)
			params["application_name"] = appName
			cfg.RuntimeParams = params
			return nil
		}),
		stdlib.OptionAfterConnect(func(ctx context.Context, c *pgx.Conn) error {
			h.after.Add(1)
			_, err := c.Exec(ctx, `SELECT set_config('auditpgx_test.after_connect', 'ran', false)`)
			return err
		}),
		stdlib.OptionResetSession(func(context.Context, *pgx.Conn) error {
			h.resets.Add(1)
			return nil
		}),
		stdlib.OptionShouldPing(func(context.Context, stdlib.ShouldPingParams) bool {
			h.pings.Add(1)
			return true
		}),
	}
}

func queryString(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	var s string
	require.NoError(t, db.QueryRowContext(context.Background(), q).Scan(&s))
	return s
}

// requireAppendOnly checks that db goes through auditpgx: plain pgx would
// run the DELETE.
func requireAppendOnly(t *testing.T, db *sql.DB) {
	t.Helper()
	_, err := db.ExecContext(context.Background(), `DELETE FROM auditpgx_entry`)
	require.ErrorIs(t, err, auditpgx.ErrAppendOnly)
}

// TestOpenDBStdlibOptions: each stdlib.OptionOpenDB given to OpenDB takes
// effect through auditpgx, and the *sql.DB is audited (with the default
// registry).
func TestOpenDBStdlibOptions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn, _ := pgtestSchema(t)
	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	var h stdlibHooks
	db := auditpgx.OpenDB(*cfg, h.options("auditpgx-open-db")...)
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	require.NoError(t, auditpgx.Migrate(ctx, db))

	require.Equal(t, "auditpgx-open-db", queryString(t, db, `SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()`))
	require.Equal(t, "ran", queryString(t, db, `SELECT current_setting('auditpgx_test.after_connect')`))
	require.Equal(t, int32(1), h.before.Load())
	require.Equal(t, int32(1), h.after.Load())
	// The connection was reused: ResetSession ran, and asked ShouldPing.
	require.GreaterOrEqual(t, h.resets.Load(), int32(1))
	require.Equal(t, h.resets.Load(), h.pings.Load())
	requireAppendOnly(t, db)
	require.NoError(t, db.PingContext(ctx))
	require.Equal(t, int32(1), h.after.Load(), "one connection")
}

// TestConnectorFromConfigAudits: NewConnectorFromConfig with a registry of
// the test's own and stdlib options audits a write to a registered table,
// and the options take effect.
func TestConnectorFromConfigAudits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, connectorSetup, registerItems)
	cfg, err := pgx.ParseConfig(e.dsn)
	require.NoError(t, err)
	var h stdlibHooks
	c, err := auditpgx.NewConnectorFromConfig(*cfg, auditpgx.WithRegistry(e.reg), auditpgx.WithStdlibOptions(h.options("auditpgx-from-config")...))
	require.NoError(t, err)
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)

	_, err = db.ExecContext(auditpgx.WithActor(e.ctx, "alice"), `INSERT INTO items VALUES ($1, $2)`, 1, "one")
	require.NoError(t, err)
	requireEntries(t, []entry{
		{Op: "create", Table: "items", ObjectID: "1", Changes: `{"added_fields": {"id": 1, "name": "one"}, "removed_fields": {}, "changed_fields": {}}`, Actor: actor("alice")},
	}, e.entries())
	require.Equal(t, "auditpgx-from-config", queryString(t, db, `SELECT current_setting('application_name')`))
	h.requireRan(t, db)

	// The connector's driver is auditpgx's, for the same registry.
	require.Equal(t, c.Driver(), db.Driver())
	dc, err := db.Driver().Open(e.dsn)
	require.NoError(t, err)
	defer dc.Close()
	_, isPgx := dc.(*stdlib.Conn)
	require.False(t, isPgx, "the driver's connections are wrapped")
	_, err = dc.(driver.ExecerContext).ExecContext(e.ctx, `INSERT INTO items VALUES (2, 'two')`, nil)
	require.NoError(t, err)
	require.Equal(t, 2, e.countEntries())
	_, err = dc.(driver.ExecerContext).ExecContext(e.ctx, `DELETE FROM auditpgx_entry`, nil)
	require.ErrorIs(t, err, auditpgx.ErrAppendOnly)

	_, err = auditpgx.NewConnectorFromConfig(*cfg, auditpgx.WithRegistry(nil))
	require.Error(t, err)
}

func newPool(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// TestConnectorFromPoolAudits: NewConnectorFromPool with a registry of the
// test's own audits a write, and the stdlib options that apply to a pool
// (ResetSession, ShouldPing) take effect.
func TestConnectorFromPoolAudits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, connectorSetup, registerItems)
	pool := newPool(t, e.dsn)
	var h stdlibHooks
	c, err := auditpgx.NewConnectorFromPool(pool, auditpgx.WithRegistry(e.reg), auditpgx.WithStdlibOptions(h.options("unused")...))
	require.NoError(t, err)
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1) // keeps its idle connection, so that it is reset

	_, err = db.ExecContext(auditpgx.WithActor(e.ctx, "bob"), `INSERT INTO items VALUES ($1, $2)`, 1, "one")
	require.NoError(t, err)
	_, err = db.ExecContext(e.ctx, `UPDATE items SET name = 'uno' WHERE id = 1`)
	require.NoError(t, err)
	requireEntries(t, []entry{
		{Op: "create", Table: "items", ObjectID: "1", Changes: `{"added_fields": {"id": 1, "name": "one"}, "removed_fields": {}, "changed_fields": {}}`, Actor: actor("bob")},
		{Op: "update", Table: "items", ObjectID: "1", Changes: `{"added_fields": {}, "removed_fields": {}, "changed_fields": {"name": ["one", "uno"]}}`},
	}, e.entries())
	require.GreaterOrEqual(t, h.resets.Load(), int32(1))
	require.Equal(t, h.resets.Load(), h.pings.Load())
	require.Zero(t, h.before.Load(), "BeforeConnect does not apply to a pool")
	require.Zero(t, h.after.Load(), "AfterConnect does not apply to a pool")
}

// TestOpenDBFromPool: OpenDBFromPool is audited (default registry), keeps
// no idle connections, and closing it leaves the pool open.
func TestOpenDBFromPool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn, _ := pgtestSchema(t)
	pool := newPool(t, dsn)
	db := auditpgx.OpenDBFromPool(pool)
	require.NoError(t, auditpgx.Migrate(ctx, db))
	_, err := db.ExecContext(ctx, connectorSetup)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO items VALUES (1, 'one')`)
	require.NoError(t, err)
	requireAppendOnly(t, db)
	require.Zero(t, db.Stats().Idle)
	require.Equal(t, "1", queryString(t, db, `SELECT count(*)::text FROM items`))
	require.NoError(t, db.Close())
	require.NoError(t, pool.Ping(ctx))

	c := auditpgx.GetPoolConnector(pool)
	require.NotNil(t, c.Driver())
	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	db = sql.OpenDB(auditpgx.GetConnector(*cfg))
	defer db.Close()
	requireAppendOnly(t, db)
}

// TestStdlibConn: inside conn.Raw, StdlibConn gives pgx's connection; what
// is written through it bypasses the driver and is not audited (documented).
func TestStdlibConn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, connectorSetup, registerItems)
	conn, err := e.db.Conn(e.ctx)
	require.NoError(t, err)
	defer conn.Close()

	var first *stdlib.Conn
	err = conn.Raw(func(dc any) error {
		_, isPgx := dc.(*stdlib.Conn)
		require.False(t, isPgx, "auditpgx hands Raw its own wrapper")
		sc, ok := auditpgx.StdlibConn(dc)
		require.True(t, ok)
		require.NotNil(t, sc)
		first = sc
		pc := sc.Conn()
		_, err := pc.Exec(e.ctx, `INSERT INTO items VALUES (1, 'exec')`)
		require.NoError(t, err)
		n, err := pc.CopyFrom(e.ctx, pgx.Identifier{"items"}, []string{"id", "name"}, pgx.CopyFromRows([][]any{{2, "copy"}, {3, "copy"}}))
		require.NoError(t, err)
		require.Equal(t, int64(2), n)
		b := &pgx.Batch{}
		b.Queue(`UPDATE items SET name = 'batch' WHERE id = 1`)
		return pc.SendBatch(e.ctx, b).Close()
	})
	require.NoError(t, err)
	var rows int
	require.NoError(t, e.plain.QueryRowContext(e.ctx, `SELECT count(*) FROM items`).Scan(&rows))
	require.Equal(t, 3, rows)
	require.Zero(t, e.countEntries(), "writes through *pgx.Conn are not audited")

	// The same connection, through database/sql, is audited; Raw gives the
	// same *stdlib.Conn again; Ping still pings.
	_, err = conn.ExecContext(e.ctx, `UPDATE items SET name = 'sql' WHERE id = 1`)
	require.NoError(t, err)
	require.Equal(t, 1, e.countEntries())
	require.NoError(t, conn.Raw(func(dc any) error {
		sc, ok := auditpgx.StdlibConn(dc)
		require.True(t, ok)
		require.Same(t, first, sc)
		return nil
	}))
	require.NoError(t, conn.PingContext(e.ctx))
	require.NoError(t, conn.Raw(func(dc any) error {
		sc, _ := auditpgx.StdlibConn(dc)
		return sc.Conn().Close(e.ctx)
	}))
	require.Error(t, conn.PingContext(e.ctx), "ConnPing pings unless StdlibConn asks")
}

// fakePinger is a driver connection of another driver.
type fakePinger struct{ pinged *bool }

func (p fakePinger) Ping(context.Context) error { *p.pinged = true; return nil }

// TestStdlibConnOther: StdlibConn returns a plain pgx connection as is and
// false for anything else, without pinging another driver's connection.
func TestStdlibConnOther(t *testing.T) {
	t.Parallel()
	dsn, _ := pgtestSchema(t)
	plain, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	defer plain.Close()
	conn, err := plain.Conn(context.Background())
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Raw(func(dc any) error {
		sc, ok := auditpgx.StdlibConn(dc)
		require.True(t, ok)
		require.Same(t, dc.(*stdlib.Conn), sc)
		return nil
	}))

	var pinged bool
	for _, v := range []any{nil, 42, "conn", struct{}{}, (*stdlib.Conn)(nil), fakePinger{&pinged}, &pinged} {
		sc, ok := auditpgx.StdlibConn(v)
		require.False(t, ok, "%T", v)
		require.Nil(t, sc, "%T", v)
	}
	require.False(t, pinged)
}

func TestNewConnectorStdlibOptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, connectorSetup, registerItems)
	var h stdlibHooks
	c, err := auditpgx.NewConnector(e.dsn, auditpgx.WithRegistry(e.reg), auditpgx.WithStdlibOptions(h.options("auditpgx-new-connector")...))
	require.NoError(t, err)
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	_, err = db.ExecContext(e.ctx, `INSERT INTO items VALUES (1, 'one')`)
	require.NoError(t, err)
	require.Equal(t, 1, e.countEntries())
	require.Equal(t, "auditpgx-new-connector", queryString(t, db, `SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()`))
	h.requireRan(t, db)
	require.Equal(t, c.Driver(), db.Driver())
	_, err = auditpgx.NewConnector("postgres://a b", auditpgx.WithStdlibOptions(stdlib.OptionShouldPing(nil)))
	require.Error(t, err)
}

// TestOptionsNotTakenAreErrors: an option a function does not take is an
// error that names it, never ignored.
func TestOptionsNotTakenAreErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, ``, nil)
	_, err := auditpgx.NewConnector(e.dsn, auditpgx.WithoutEntryIndexes("changes"))
	require.ErrorContains(t, err, "NewConnector does not take WithoutEntryIndexes")
	err = auditpgx.Check(e.ctx, e.db, auditpgx.WithRegistry(e.reg), auditpgx.WithoutEntryIndexes("changes"))
	require.ErrorContains(t, err, "Check does not take WithoutEntryIndexes")
	err = auditpgx.Migrate(e.ctx, e.db, auditpgx.WithRegistry(e.reg), auditpgx.WithStdlibOptions(stdlib.OptionShouldPing(nil)))
	require.ErrorContains(t, err, "Migrate does not take WithStdlibOptions")
	_, err = auditpgx.Baseline(e.ctx, e.db, auditpgx.WithRegistry(e.reg), auditpgx.WithoutEntryIndexes("changes"))
	require.ErrorContains(t, err, "Baseline does not take WithoutEntryIndexes")
}
