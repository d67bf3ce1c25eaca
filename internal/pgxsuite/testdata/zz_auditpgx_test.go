// Glue that internal/pgxsuite adds to pgx's adapted stdlib tests: the
// targets of pgxsuite.Rewrites. They open every database through auditpgx
// in the mode named by $AUDITPGX_SUITE_MODE:
//
//	none    nothing registered
//	shared  the tables in $AUDITPGX_SUITE_TABLES registered in the default
//	        registry, which every sql.DB uses
//	perdb   a new registry with those tables for each sql.DB
//
// Setup errors panic: they are harness bugs, and the harness reports a
// suite that fails outside any test.
package stdlib_test

import (
	"database/sql"
	"fmt"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/auditpgx/auditpgx"
)

var auditpgxsuitePerDB = os.Getenv("AUDITPGX_SUITE_MODE") == "perdb"

func init() {
	switch mode := os.Getenv("AUDITPGX_SUITE_MODE"); mode {
	case "none", "perdb":
	case "shared":
		auditpgxsuiteRegister(auditpgx.DefaultRegistry())
	default:
		panic(fmt.Sprintf("auditpgxsuite: $AUDITPGX_SUITE_MODE is %q, want none, shared or perdb", mode))
	}
}

func auditpgxsuiteRegister(r *auditpgx.Registry) {
	for _, t := range strings.Split(os.Getenv("AUDITPGX_SUITE_TABLES"), ",") {
		if t != "" {
			auditpgxsuiteMust(0, r.RegisterTable(t))
		}
	}
}

// auditpgxsuiteRegistry is the option giving a new sql.DB its own registry
// (mode perdb).
func auditpgxsuiteRegistry() auditpgx.Option {
	r := auditpgxsuiteMust(auditpgx.NewRegistry(auditpgx.RegistryConfig{}))
	auditpgxsuiteRegister(r)
	return auditpgx.WithRegistry(r)
}

func auditpgxsuiteMust[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// auditpgxsuiteSQLOpen stands in for sql.Open: pgx's driver names open
// auditpgx; other names pass through.
func auditpgxsuiteSQLOpen(driverName, dsn string) (*sql.DB, error) {
	switch {
	case driverName != "pgx" && driverName != "pgx/v5":
		return sql.Open(driverName, dsn)
	case !auditpgxsuitePerDB:
		return sql.Open(auditpgx.DriverName, dsn)
	}
	c, err := auditpgx.NewConnector(dsn, auditpgxsuiteRegistry())
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// auditpgxsuiteOpenDB stands in for stdlib.OpenDB.
func auditpgxsuiteOpenDB(config pgx.ConnConfig, opts ...stdlib.OptionOpenDB) *sql.DB {
	if !auditpgxsuitePerDB {
		return auditpgx.OpenDB(config, opts...)
	}
	return sql.OpenDB(auditpgxsuiteMust(auditpgx.NewConnectorFromConfig(config,
		auditpgxsuiteRegistry(), auditpgx.WithStdlibOptions(opts...))))
}

// auditpgxsuiteOpenDBFromPool stands in for stdlib.OpenDBFromPool.
func auditpgxsuiteOpenDBFromPool(pool *pgxpool.Pool, opts ...stdlib.OptionOpenDB) *sql.DB {
	if !auditpgxsuitePerDB {
		return auditpgx.OpenDBFromPool(pool, opts...)
	}
	db := sql.OpenDB(auditpgxsuiteMust(auditpgx.NewConnectorFromPool(pool,
		auditpgxsuiteRegistry(), auditpgx.WithStdlibOptions(opts...))))
	db.SetMaxIdleConns(0) // as OpenDBFromPool does: the pool keeps idle connections
	return db
}

// auditpgxsuiteStdlibConn stands in for dc.(*stdlib.Conn) in conn.Raw,
// where auditpgx hands over its own wrapper.
func auditpgxsuiteStdlibConn(dc any) *stdlib.Conn {
	if c, ok := auditpgx.StdlibConn(dc); ok {
		return c
	}
	return dc.(*stdlib.Conn) // panics as the original assertion does
}
