package diff_test

import (
	"database/sql"
	"os"
	"testing"

	"github.com/auditpgx/auditpgx/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func openDB(t testing.TB) *sql.DB { return pgtest.OpenSchema(t) }

func mustExec(t testing.TB, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%v\nin: %.2000s", err, query)
	}
}
