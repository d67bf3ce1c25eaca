package store_test

import (
	"context"
	"database/sql"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/store"
)

// BenchmarkSeal seals $AUDITPGX_SEAL_ENTRIES entries (default 20,000)
// from an empty seal table each time (Seal), then verifies them (Verify),
// and reports entries/s. The entries are those of writeEntries, about 300
// bytes encoded, in an entry table with its primary key only:
//
//	AUDITPGX_SEAL_ENTRIES=1000000 go test ./store -run '^$' -bench BenchmarkSeal -benchtime 3x
func BenchmarkSeal(b *testing.B) {
	n := 20000
	if s := os.Getenv("AUDITPGX_SEAL_ENTRIES"); s != "" {
		v, err := strconv.Atoi(s)
		require.NoError(b, err)
		n = v
	}
	ctx := context.Background()
	dsn, _ := pgtest.NewSchema(b)
	db, err := sql.Open("pgx", dsn)
	require.NoError(b, err)
	b.Cleanup(func() { db.Close() })
	require.NoError(b, store.Migrate(ctx, db, "auditpgx_entry",
		store.WithoutIndexes("object", "created", "tx", "actor", "related", "changes")))
	require.NoError(b, store.MigrateSeal(ctx, db, ""))
	for done := 0; done < n; done += 100000 {
		writeEntries(b, db, min(100000, n-done))
	}
	_, err = db.ExecContext(ctx, `VACUUM ANALYZE auditpgx_entry`)
	require.NoError(b, err)
	var size string
	require.NoError(b, db.QueryRow(`SELECT pg_size_pretty(pg_total_relation_size('auditpgx_entry'))`).Scan(&size))
	b.Logf("%d entries, %s with the primary key", n, size)

	b.Run("seal", func(b *testing.B) {
		var elapsed time.Duration
		for range b.N {
			b.StopTimer()
			_, err := db.ExecContext(ctx, `TRUNCATE auditpgx_seal`)
			require.NoError(b, err)
			b.StartTimer()
			t0 := time.Now()
			r, err := store.Seal(ctx, db, store.SealOptions{})
			elapsed += time.Since(t0)
			require.NoError(b, err)
			require.Equal(b, int64(n), r.Entries)
		}
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(float64(b.N*n)/elapsed.Seconds(), "entries/s")
	})
	b.Run("verify", func(b *testing.B) {
		var elapsed time.Duration
		for range b.N {
			t0 := time.Now()
			v, err := store.Verify(ctx, db, store.VerifyOptions{})
			elapsed += time.Since(t0)
			require.NoError(b, err)
			require.Equal(b, int64(n), v.Entries)
		}
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(float64(b.N*n)/elapsed.Seconds(), "entries/s")
	})
}
