package auditpgx

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"reflect"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/ngrok/sqlmw"
)

// This file holds the twins of pgx's stdlib constructors (OpenDB,
// OpenDBFromPool, GetConnector, GetPoolConnector), their forms that take
// Options (NewConnectorFromConfig, NewConnectorFromPool, WithStdlibOptions),
// and StdlibConn, the way back from a database/sql driver connection to
// pgx's.

// OpenDB is stdlib.OpenDB, audited with the default registry: it opens a
// *sql.DB on config, which must have been created by pgx.ParseConfig, and
// applies opts (stdlib.OptionBeforeConnect, OptionAfterConnect,
// OptionResetSession, OptionShouldPing) as pgx does. For another registry,
// use sql.OpenDB(NewConnectorFromConfig(config, WithRegistry(r),
// WithStdlibOptions(opts...))).
//
// Statements run by the callbacks on the *pgx.Conn they are given do not go
// through the driver and are not audited.
func OpenDB(config pgx.ConnConfig, opts ...stdlib.OptionOpenDB) *sql.DB {
	return sql.OpenDB(GetConnector(config, opts...))
}

// OpenDBFromPool is stdlib.OpenDBFromPool, audited with the default
// registry. Like it, it sets the *sql.DB's maximum number of idle
// connections to zero, since the pool manages them, and closing the
// *sql.DB does not close the pool. Of opts, only OptionResetSession and
// OptionShouldPing apply to a pool. Writes made on the pool directly
// (pool.Exec, pool.CopyFrom, ...) do not go through the driver and are not
// audited.
func OpenDBFromPool(pool *pgxpool.Pool, opts ...stdlib.OptionOpenDB) *sql.DB {
	db := sql.OpenDB(GetPoolConnector(pool, opts...))
	db.SetMaxIdleConns(0)
	return db
}

// GetConnector is stdlib.GetConnector, audited with the default registry.
func GetConnector(config pgx.ConnConfig, opts ...stdlib.OptionOpenDB) driver.Connector {
	return wrapConnector(defaultInterceptor, stdlib.GetConnector(config, opts...))
}

// GetPoolConnector is stdlib.GetPoolConnector, audited with the default
// registry. Set the maximum number of idle connections of the *sql.DB
// opened with it to zero, as OpenDBFromPool does.
func GetPoolConnector(pool *pgxpool.Pool, opts ...stdlib.OptionOpenDB) driver.Connector {
	return wrapConnector(defaultInterceptor, stdlib.GetPoolConnector(pool, opts...))
}

// NewConnectorFromConfig returns a connector for sql.OpenDB that connects
// with config, which must have been created by pgx.ParseConfig; it is
// GetConnector with Options, such as WithRegistry and WithStdlibOptions.
func NewConnectorFromConfig(config pgx.ConnConfig, opts ...Option) (driver.Connector, error) {
	o, err := applyOptions("NewConnectorFromConfig", takesStdlib, opts)
	if err != nil {
		return nil, err
	}
	std := o.stdlib
	return wrapConnector(interceptorFor(o.registry), stdlib.GetConnector(config, std...)), nil
}

// NewConnectorFromPool returns a connector for sql.OpenDB that takes its
// connections from pool; it is GetPoolConnector with Options, such as
// WithRegistry and WithStdlibOptions. Set the maximum number of idle
// connections of the *sql.DB to zero (db.SetMaxIdleConns(0)), as
// OpenDBFromPool does.
func NewConnectorFromPool(pool *pgxpool.Pool, opts ...Option) (driver.Connector, error) {
	o, err := applyOptions("NewConnectorFromPool", takesStdlib, opts)
	if err != nil {
		return nil, err
	}
	std := o.stdlib
	return wrapConnector(interceptorFor(o.registry), stdlib.GetPoolConnector(pool, std...)), nil
}

// WithStdlibOptions passes pgx's stdlib options (stdlib.OptionBeforeConnect,
// OptionAfterConnect, OptionResetSession, OptionShouldPing) to the
// connectors made by NewConnector, NewConnectorFromConfig and
// NewConnectorFromPool. As in pgx, BeforeConnect and AfterConnect apply only
// to connectors that open their own connections, not to a pool. With these
// options, NewConnector's dsn must be a connection string or URL, not a name
// returned by stdlib.RegisterConnConfig: use NewConnectorFromConfig for a
// pgx.ConnConfig. Statements the callbacks run on the *pgx.Conn they are
// given are not audited. Migrate, Check and Baseline refuse this option.
func WithStdlibOptions(opts ...stdlib.OptionOpenDB) Option {
	return func(o *options) { o.stdlib = append(o.stdlib, opts...) }
}

// newDSNConnector is NewConnector: without WithStdlibOptions it opens dsn
// as pgx's stdlib driver does (so names from stdlib.RegisterConnConfig
// work); with them, dsn is parsed by pgx.ParseConfig and the connector is
// stdlib.GetConnector's.
func newDSNConnector(dsn string, opts []Option) (driver.Connector, error) {
	o, err := applyOptions("NewConnector", takesStdlib, opts)
	if err != nil {
		return nil, err
	}
	std := o.stdlib
	intr := interceptorFor(o.registry)
	if len(std) == 0 {
		return auditedDriver(intr).(driver.DriverContext).OpenConnector(dsn)
	}
	config, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	return wrapConnector(intr, stdlib.GetConnector(*config, std...)), nil
}

// interceptorFor returns the interceptor auditing with reg.
func interceptorFor(reg *Registry) *interceptor {
	if reg == defaultRegistry {
		return defaultInterceptor
	}
	return newInterceptor(reg.r)
}

// auditedDriver is pgx's stdlib driver wrapped with intr: the driver
// registered as "auditpgx", for intr's registry. It implements
// driver.DriverContext.
func auditedDriver(intr *interceptor) driver.Driver {
	return sqlmw.Driver(stdlib.GetDefaultDriver(), intr)
}

// wrapConnector wraps a connector of pgx's stdlib driver with intr.
func wrapConnector(intr *interceptor, c driver.Connector) driver.Connector {
	d := sqlmw.Driver(connectorParent{c}, intr).(driver.DriverContext)
	wrapped, err := d.OpenConnector("")
	if err != nil { // connectorParent.OpenConnector does not fail
		panic(err)
	}
	return auditedConnector{Connector: wrapped, drv: auditedDriver(intr)}
}

// connectorParent is the parent driver handed to sqlmw so that it wraps a
// connector made beforehand: OpenConnector returns it, whatever the name.
type connectorParent struct{ c driver.Connector }

func (p connectorParent) Open(string) (driver.Conn, error) {
	return p.c.Connect(context.Background())
}

func (p connectorParent) OpenConnector(string) (driver.Connector, error) { return p.c, nil }

// auditedConnector is sqlmw's connector, with Driver returning the
// audited driver for the same registry, as pgx's connectors return pgx's
// driver: its Open and OpenConnector take a connection string.
type auditedConnector struct {
	driver.Connector
	drv driver.Driver
}

func (c auditedConnector) Driver() driver.Driver { return c.drv }

// rawConnKey is the context key with which StdlibConn asks ConnPing for the
// connection sqlmw wraps.
type rawConnKey struct{}

// ConnPing pings conn, as sqlmw.NullInterceptor does, unless ctx comes from
// StdlibConn: then it stores conn, pgx's connection, for StdlibConn and
// returns nil without pinging.
func (i *interceptor) ConnPing(ctx context.Context, conn driver.Pinger) error {
	if dst, ok := ctx.Value(rawConnKey{}).(*driver.Pinger); ok {
		*dst = conn
		return nil
	}
	return conn.Ping(ctx)
}

// sqlmwPkgPath is the import path of sqlmw's package, whose wrapped
// connections StdlibConn unwraps.
var sqlmwPkgPath = reflect.TypeFor[sqlmw.NullInterceptor]().PkgPath()

// StdlibConn returns pgx's *stdlib.Conn behind dc, the driver connection
// that (*sql.Conn).Raw passes to its function. Through auditpgx, dc is the
// driver's own wrapper, so pgx's idiom dc.(*stdlib.Conn) panics; use
//
//	err = conn.Raw(func(dc any) error {
//		sc, ok := auditpgx.StdlibConn(dc)
//		if !ok {
//			return fmt.Errorf("not a pgx connection: %T", dc)
//		}
//		pc := sc.Conn() // *pgx.Conn
//		_, err := pc.CopyFrom(ctx, pgx.Identifier{"events"}, cols, src)
//		return err
//	})
//
// for what only *pgx.Conn offers: CopyFrom, SendBatch, LISTEN with
// WaitForNotification, PgConn() (cancellation, raw protocol), TypeMap() to
// register types, Config(). It returns (dc, true) when dc is already a
// *stdlib.Conn (a connection of the "pgx" driver), and (nil, false) for
// anything else.
//
// Statements sent through the *stdlib.Conn or its *pgx.Conn bypass the
// driver and are NOT audited: a CopyFrom, batch or Exec that writes a
// registered table writes no entry, and is not refused. Run audited writes
// through database/sql (the *sql.Conn, *sql.Tx or *sql.DB).
func StdlibConn(dc any) (*stdlib.Conn, bool) {
	switch c := dc.(type) {
	case *stdlib.Conn:
		return c, c != nil
	case driver.Pinger:
		if t := reflect.TypeOf(dc); t.PkgPath() != sqlmwPkgPath {
			return nil, false
		}
		// sqlmw's connection hands the connection it wraps to the
		// interceptor's ConnPing, which gives it back for this key.
		var inner driver.Pinger
		ctx := context.WithValue(context.Background(), rawConnKey{}, &inner)
		if err := c.Ping(ctx); err != nil {
			return nil, false
		}
		sc, ok := inner.(*stdlib.Conn)
		return sc, ok && sc != nil
	}
	return nil, false
}
