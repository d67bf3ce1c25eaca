package web_test

import (
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/store"
	"github.com/auditpgx/auditpgx/web"
)

// fillEntries writes n synthetic entries, as a busy application's would
// look: 20 tables, 50,000 objects, 500 actors, three entries a
// transaction, one in ten an association, updates naming one of 300
// fields, a request id on a third, one entry a second from 2024-01-01;
// then VACUUM ANALYZE, as autovacuum would after the load.
func fillEntries(tb testing.TB, db *sql.DB, n int) {
	tb.Helper()
	ctx := context.Background()
	require.NoError(tb, store.Migrate(ctx, db, "auditpgx_entry"))
	const chunk = 100_000
	for lo := 1; lo <= n; lo += chunk {
		hi := min(lo+chunk-1, n)
		_, err := db.ExecContext(ctx, `INSERT INTO auditpgx_entry
			(created, created_by, operation, table_name, object_id, changes,
			 related_table_name, related_object_id, related_field_name, tx_id, statement_fingerprint, context)
			SELECT timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second',
				'actor' || (i % 500),
				CASE WHEN i % 10 = 0 THEN 'associate' WHEN i % 10 = 1 THEN 'create' ELSE 'update' END,
				'table' || (i % 20),
				(i % 50000)::text,
				CASE WHEN i % 10 = 1 THEN jsonb_build_object('added_fields', jsonb_build_object('id', i % 50000, 'name', 'n' || i),
					'removed_fields', '{}'::jsonb, 'changed_fields', '{}'::jsonb)
				WHEN i % 10 <> 0 THEN jsonb_build_object('added_fields', '{}'::jsonb, 'removed_fields', '{}'::jsonb,
					'changed_fields', jsonb_build_object('f' || (i % 300), jsonb_build_array(i, i + 1))) END,
				CASE WHEN i % 10 = 0 THEN 'table' || ((i / 10) % 20) END,
				CASE WHEN i % 10 = 0 THEN (i % 3000)::text END,
				CASE WHEN i % 10 = 0 THEN 'members' END,
				i / 3,
				'fp' || (i % 100),
				CASE WHEN i % 3 = 0 THEN jsonb_build_object('request_id', 'r' || (i / 3)) END
			FROM generate_series($1::int, $2::int) i`, lo, hi)
		require.NoError(tb, err)
	}
	_, err := db.ExecContext(ctx, `VACUUM ANALYZE auditpgx_entry`)
	require.NoError(tb, err)
}

// recorder is a store.Querier that keeps the statements sent through it.
type recorder struct {
	store.Querier
	mu      sync.Mutex
	queries []recorded
}

type recorded struct {
	query string
	args  []any
}

func (r *recorder) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	r.mu.Lock()
	r.queries = append(r.queries, recorded{query, args})
	r.mu.Unlock()
	return r.Querier.QueryContext(ctx, query, args...)
}

func (r *recorder) take() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.queries
	r.queries = nil
	return q
}

// pageCase is a page a reader opens, and the Authorize it is opened with.
type pageCase struct {
	name, target string
	all          bool // Authorize grants every table; else all but table19
}

func pageCases() []pageCase {
	return []pageCase{
		{"stream, every table", "/", true},
		{"stream, 19 of 20 tables", "/", false},
		{"stream, older page", "/?before=500000", false},
		{"stream, newer page", "/?after=500000", false},
		{"stream by table", "/?table=table7", false},
		{"stream by actor", "/?actor=actor42", false},
		{"stream by operation and table", "/?operation=create&table=table1", false},
		{"stream by changed field", "/?changed=f17", false},
		{"stream by transaction", "/?tx=4242", false},
		{"stream by request", "/?request=r4242", false},
		{"stream by time range", "/?since=2024-01-01T05:00&until=2024-01-01T06:00", false},
		{"stream by statement fingerprint", "/?fingerprint=fp7&table=table7", false},
		{"entry", "/entries/424242", false},
		{"transaction", "/transactions/4242", false},
		{"object history", "/objects/table7/1227", false},
	}
}

func authorizeCase(all bool) func(*http.Request, string) bool {
	return func(_ *http.Request, table string) bool { return all || table != "" && table != "table19" }
}

// Every page's statements on the entry table are served by its indexes:
// no sequential scan of it on 60,000 entries, where the planner prefers one
// whenever an index does not help. The plans are in the test's log.
func TestPagesUseIndexes(t *testing.T) {
	dsn, _ := pgtest.NewSchema(t)
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	fillEntries(t, db, 60_000)
	for _, pc := range pageCases() {
		t.Run(pc.name, func(t *testing.T) {
			target := strings.NewReplacer("500000", "30000", "424242", "42424").Replace(pc.target)
			rec := &recorder{Querier: db}
			h := newHandler(t, rec, web.Config{Authorize: authorizeCase(pc.all)})
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			require.NotEmpty(t, append(rowIDs(w.Body.String()), entryPage(w.Body.String())...), "the page shows entries")
			n := 0
			for _, q := range rec.take() {
				if !strings.Contains(q.query, "auditpgx_entry") {
					continue // the catalog's key look-up
				}
				n++
				plan := explain(t, db, q.query, q.args)
				t.Logf("%s\n%s", q.query, plan)
				// On a partitioned entry table the planner may rightly
				// scan an empty partition, whose indexes are as empty.
				for _, m := range seqScan.FindAllStringSubmatch(plan, -1) {
					var rows int
					require.NoError(t, db.QueryRow(`SELECT count(*) FROM `+m[1]).Scan(&rows))
					require.Zero(t, rows, "a sequential scan of %s, which holds entries; query: %s\nplan:\n%s", m[1], q.query, plan)
				}
			}
			require.NotZero(t, n)
		})
	}
}

var seqScan = regexp.MustCompile(`Seq Scan on (\S+)`)

func entryPage(body string) []string {
	if strings.Contains(body, `<table class="diff">`) || strings.Contains(body, `class="summary-line"`) {
		return []string{"entry"}
	}
	return nil
}

// explain returns the plan the server chooses for query, with the
// parameters' values (a generic plan could differ), run with ANALYZE so
// that the steps of a recursive query show their index scans.
func explain(t *testing.T, db *sql.DB, query string, args []any) string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) "+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		lines = append(lines, line)
	}
	require.NoError(t, rows.Err())
	return strings.Join(lines, "\n")
}

// benchEntries is the size of the entry table BenchmarkPages reads:
// $AUDITPGX_WEB_BENCH_ENTRIES, default 1,000,000.
func benchEntries(b *testing.B) int {
	if v := os.Getenv("AUDITPGX_WEB_BENCH_ENTRIES"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(b, err, "AUDITPGX_WEB_BENCH_ENTRIES")
		return n
	}
	return 1_000_000
}

var bench struct {
	once sync.Once
	db   *sql.DB
	err  error
}

// BenchmarkPages serves each page of pageCases from an entry table of
// 1,000,000 entries: the time per operation is the server's time for the
// page, its queries and rendering included, on a loopback connection.
func BenchmarkPages(b *testing.B) {
	bench.once.Do(func() {
		dsn, _ := pgtest.NewSchema(b)
		bench.db, bench.err = sql.Open("pgx", dsn)
		if bench.err == nil {
			start := time.Now()
			fillEntries(b, bench.db, benchEntries(b))
			b.Logf("%d entries written in %v", benchEntries(b), time.Since(start).Round(time.Second))
		}
	})
	require.NoError(b, bench.err)
	for _, pc := range pageCases() {
		b.Run(strings.ReplaceAll(pc.name, " ", "_"), func(b *testing.B) {
			h := newHandler(b, bench.db, web.Config{Authorize: authorizeCase(pc.all)})
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, pc.target, nil))
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", pc.target, w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/page")
		})
	}
}
