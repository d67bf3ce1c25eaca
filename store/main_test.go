package store_test

import (
	"database/sql"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/auditpgx/auditpgx/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// openSchema opens a pool on a fresh schema that is the search_path.
func openSchema(t *testing.T) (db *sql.DB, schema string) {
	t.Helper()
	dsn, schema := pgtest.NewSchema(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, schema
}
