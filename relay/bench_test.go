package relay

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkRunThroughput measures how fast the relay applies a backlog of
// entries (200 transactions of 500) into an entry table with all its
// indexes, the destination being the source database.
func BenchmarkRunThroughput(b *testing.B) {
	const txs, perTx = 200, 500
	e := newEnv(b, false)
	payloads := make([]string, txs)
	for i := range payloads {
		ids := make([]string, perTx)
		for j := range ids {
			ids[j] = fmt.Sprintf("o%d_%d", i, j)
		}
		payloads[i] = payloadOf(ids...)
	}
	var elapsed time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for _, p := range payloads {
			emit(b, e.src, p)
		}
		target := currentLSN(b, e.src)
		b.StartTimer()
		t0 := time.Now()
		run := start(b, e.cfg)
		waitConfirmed(b, e.cfg, target, run)
		elapsed += time.Since(t0)
		b.StopTimer()
		if err := run.stop(); err != nil {
			b.Fatal(err)
		}
		waitInactive(b, e.cfg)
	}
	b.ReportMetric(float64(b.N*txs*perTx)/elapsed.Seconds(), "entries/s")
}
