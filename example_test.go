package auditpgx_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/store"
)

// An application registers its audited tables, opens the database through
// auditpgx and writes as it always did; each write records its entries in
// the same statement. This example runs against the test cluster.
func Example() {
	ctx := context.Background()
	dsn, done := pgtest.ExampleSchema("example") // an application uses its own DSN
	defer done()

	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{}) // or the package-level RegisterTable
	if err != nil {
		log.Fatal(err)
	}
	if err := reg.RegisterTable("users", auditpgx.Exclude("last_login"), auditpgx.Redact("password_hash")); err != nil {
		log.Fatal(err)
	}
	connector, err := auditpgx.NewConnector(dsn, auditpgx.WithRegistry(reg)) // or sql.Open("auditpgx", dsn)
	if err != nil {
		log.Fatal(err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()

	if _, err := db.ExecContext(ctx, `CREATE TABLE users (id int PRIMARY KEY, name text, password_hash text, last_login timestamptz)`); err != nil {
		log.Fatal(err)
	}
	if err := auditpgx.Migrate(ctx, db, auditpgx.WithRegistry(reg)); err != nil {
		log.Fatal(err)
	}

	ctx = auditpgx.WithActor(ctx, "alice")
	for _, q := range []string{
		`INSERT INTO users (id, name, password_hash) VALUES (7, 'Al', 'x1')`,
		`UPDATE users SET name = 'Bob', password_hash = 'x2', last_login = now() WHERE id = 7`,
		`DELETE FROM users WHERE id = 7`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			log.Fatal(err)
		}
	}

	entries, err := store.List(ctx, db, store.Query{})
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range entries {
		changes, err := json.Marshal(e.Changes)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Operation, e.TableName, e.ObjectID, *e.CreatedBy, string(changes))
	}
	// Output:
	// create users 7 alice {"added_fields":{"id":7,"name":"Al","password_hash":"$encrypted$"},"removed_fields":{},"changed_fields":{}}
	// update users 7 alice {"added_fields":{},"removed_fields":{},"changed_fields":{"name":["Al","Bob"],"password_hash":["$encrypted$","$encrypted$"]}}
	// delete users 7 alice {"added_fields":{},"removed_fields":{"id":7,"name":"Bob","password_hash":"$encrypted$"},"changed_fields":{}}
}
