package relay

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"
)

// BenchmarkRunThroughput measures how fast the relay applies a backlog of
// entries (200 transactions of 500) into an entry table with all its
// indexes: in the source database (table), where the walsender also
// decodes the relay's own writes, and in another database of the same
// server (table-otherdb); and, as ndjson, how fast it reads and decodes
// them, written to io.Discard.
func BenchmarkRunThroughput(b *testing.B) {
	for _, name := range []string{"table", "table-otherdb", "ndjson"} {
		b.Run(name, func(b *testing.B) {
			e := newEnv(b, name == "table-otherdb")
			if name == "ndjson" {
				e.cfg.NDJSON = io.Discard
			}
			benchmarkBacklog(b, e, 200, 500)
		})
	}
}

func benchmarkBacklog(b *testing.B, e *env, txs, perTx int) {
	payloads := make([]string, txs)
	for i := range payloads {
		ids := make([]string, perTx)
		for j := range ids {
			ids[j] = fmt.Sprintf("o%d_%d", i, j)
		}
		payloads[i] = payloadOf(ids...)
	}
	var elapsed time.Duration
	for range b.N {
		for _, p := range payloads {
			emit(b, e.src, p)
		}
		target := currentLSN(b, e.src)
		t0 := time.Now()
		run := start(b, e.cfg)
		waitConfirmed(b, e.cfg, target, run)
		elapsed += time.Since(t0)
		if err := run.stop(); err != nil {
			b.Fatal(err)
		}
		waitInactive(b, e.cfg)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(b.N*txs*perTx)/elapsed.Seconds(), "entries/s")
}

// BenchmarkApply measures the destination's part alone: one batch of
// 5000 decoded entries copied into an entry table with all its indexes,
// with the state row, in one transaction.
func BenchmarkApply(b *testing.B) {
	e := newEnv(b, false)
	s, err := e.cfg.validate()
	if err != nil {
		b.Fatal(err)
	}
	ts, err := openTableSink(context.Background(), s)
	if err != nil {
		b.Fatal(err)
	}
	defer ts.close()
	ids := make([]string, DefaultBatchEntries)
	for i := range ids {
		ids[i] = fmt.Sprintf("o%d", i)
	}
	entries, err := decodePayload([]byte(payloadOf(ids...)), false)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		bt := batch{entries: entries, txs: 1, end: LSN(i + 1), committed: time.Now()}
		if err := ts.apply(context.Background(), &bt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(entries))/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkDecode measures the relay's decoding of a 500-entry payload.
func BenchmarkDecode(b *testing.B) {
	ids := make([]string, 500)
	for i := range ids {
		ids[i] = fmt.Sprintf("o%d", i)
	}
	p := []byte(payloadOf(ids...))
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if _, err := decodePayload(p, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(ids))/b.Elapsed().Seconds(), "entries/s")
}
