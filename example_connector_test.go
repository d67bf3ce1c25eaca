package auditpgx_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/auditpgx/auditpgx"
)

// OpenDB replaces stdlib.OpenDB, options included.
func ExampleOpenDB() {
	config, err := pgx.ParseConfig(os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	db := auditpgx.OpenDB(*config, stdlib.OptionAfterConnect(func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, `SET statement_timeout = '5s'`) // runs on pgx directly: not audited
		return err
	}))
	defer db.Close()
}

// A pool, with a registry other than the default one.
func ExampleNewConnectorFromPool() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{})
	if err != nil {
		log.Fatal(err)
	}
	if err := reg.RegisterTable("projects"); err != nil {
		log.Fatal(err)
	}
	connector, err := auditpgx.NewConnectorFromPool(pool, auditpgx.WithRegistry(reg),
		auditpgx.WithStdlibOptions(stdlib.OptionResetSession(func(ctx context.Context, c *pgx.Conn) error {
			return c.DeallocateAll(ctx)
		})))
	if err != nil {
		log.Fatal(err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxIdleConns(0) // the pool keeps the idle connections, as with stdlib.OpenDBFromPool
	defer db.Close()
}

// CopyFrom into a staging table that is not registered: writes made through
// the *pgx.Conn are not audited.
func ExampleStdlibConn() {
	ctx := context.Background()
	db, err := sql.Open("auditpgx", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		sc, ok := auditpgx.StdlibConn(dc)
		if !ok {
			return fmt.Errorf("not a pgx connection: %T", dc)
		}
		rows := [][]any{{1, "a"}, {2, "b"}}
		_, err := sc.Conn().CopyFrom(ctx, pgx.Identifier{"staging"}, []string{"id", "name"}, pgx.CopyFromRows(rows))
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
}
