package store_test

import (
	"database/sql"
	"os"
	"regexp"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/internal/testlayout"
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

// partitionedLayout reports whether the suite runs on partitioned entry
// tables (AUDITPGX_TEST_ENTRY_LAYOUT=partitioned, see internal/testlayout):
// Migrate then creates new ones partitioned by month, with partitions for
// January to May 2024, the current month, the next three, and a DEFAULT
// one.
func partitionedLayout() bool { return testlayout.Partitioned() != nil }

// indexPattern is a regular expression matching the name of the entry
// table's index named index (auditpgx_entry_object_idx) and, on the
// partitioned layout, that of its counterpart on any partition
// (auditpgx_entry_p2024_01_object_idx).
func indexPattern(index string) string {
	if !partitionedLayout() {
		return regexp.QuoteMeta(index)
	}
	rest := strings.TrimPrefix(index, "auditpgx_entry")
	return `auditpgx_entry(_p\d{4}\w*|_default)?` + regexp.QuoteMeta(rest)
}

// requireIndex requires that plan uses index (see indexPattern).
func requireIndex(t *testing.T, plan, index string, msgAndArgs ...any) {
	t.Helper()
	require.Regexp(t, `\b`+indexPattern(index)+`\b`, plan, msgAndArgs...)
}

// requireNoSeqScan requires that plan reads no table holding entries
// sequentially: on the partitioned layout, the planner may rightly scan
// an empty partition, whose every index is as empty, without one.
func requireNoSeqScan(t *testing.T, db *sql.DB, plan string) {
	t.Helper()
	for _, m := range regexp.MustCompile(`Seq Scan on (\S+)`).FindAllStringSubmatch(plan, -1) {
		var n int
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM `+m[1]).Scan(&n))
		require.Zero(t, n, "a sequential scan of %s, which holds entries; plan:\n%s", m[1], plan)
	}
}
