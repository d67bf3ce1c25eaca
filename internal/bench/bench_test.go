package bench

import (
	"context"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/auditpgx/auditpgx/internal/pgtest"
)

// The sizes are small by default so that -benchtime=1x is a quick smoke
// test; cmd/auditbench runs the full sizes (-bench.rows=100000
// -bench.bulk=10000 here).
var (
	benchRows  = flag.Int("bench.rows", 10_000, "rows seeded per variant; the bulk UPDATE updates all of them")
	benchBulk  = flag.Int("bench.bulk", 2_000, "rows written by the bulk INSERT")
	benchIters = flag.Int("bench.iters", 5, "insert-update-delete cycles per goroutine per concurrent sample")
)

// BenchmarkWorkloads runs every workload on every variant, as
// BenchmarkWorkloads/<workload>/<variant>. ns/op is the time per operation
// (per statement for the concurrent workload) with untimed resets and a
// warm-up operation left out; the bulk workloads also report the Go heap
// allocated per statement.
// The ratios and targets come from cmd/auditbench, which interleaves the
// variants; this is for profiling one of them and as a smoke test:
//
//	go test ./internal/bench/ -run '^$' -bench . -benchtime=1x
//	go test ./internal/bench/ -run '^$' -bench 'Workloads/bulk-update/auditpgx' -benchtime=3x -bench.rows=100000 -cpuprofile cpu.out
func BenchmarkWorkloads(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, Config{DSN: pgtest.NewDatabase(b), Rows: *benchRows, BulkInsert: *benchBulk})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	round := 0
	for _, w := range Workloads {
		b.Run(w.Name, func(b *testing.B) {
			for _, v := range s.variantsFor(w) {
				b.Run(strings.ReplaceAll(v.Name, " ", "_"), func(b *testing.B) {
					round++
					var samples []Sample
					if w.Kind == PerOp {
						if _, err := w.Run(ctx, s, v, -round, 1); err != nil { // warm up the connection
							b.Fatal(err)
						}
						out, err := w.Run(ctx, s, v, round, b.N)
						if err != nil {
							b.Fatal(err)
						}
						samples = out
					} else {
						for range b.N {
							out, err := w.Run(ctx, s, v, round, *benchIters)
							if err != nil {
								b.Fatal(err)
							}
							samples = append(samples, out...)
							round++
						}
					}
					var total time.Duration
					var alloc uint64
					for _, x := range samples {
						total += x.Duration
						alloc += x.Alloc
					}
					b.ReportMetric(float64(total.Nanoseconds())/float64(len(samples)), "ns/op")
					if w.Kind == Bulk {
						b.ReportMetric(float64(alloc)/float64(len(samples)), "heapB/op")
					}
				})
			}
		})
	}
}

// BenchmarkParseRewrite is parse, fingerprint and rewrite of the GORM Save
// of the benchmark's table, as on the first use of a SQL text.
func BenchmarkParseRewrite(b *testing.B) { ParseRewrite(b) }

// TestIndexCost runs IndexCost at a tiny size: every case must run and
// write WAL. It asserts nothing about time.
func TestIndexCost(t *testing.T) {
	cases := IndexCases()
	if len(cases) < 5 || len(EntryIndexes()) == 0 {
		t.Fatalf("IndexCases() = %d cases, EntryIndexes() = %q: store.Schema's indexes not found", len(cases), EntryIndexes())
	}
	res, err := IndexCost(context.Background(), pgtest.NewDatabase(t), cases, 20, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(cases) {
		t.Fatalf("%d results for %d cases", len(res), len(cases))
	}
	paired := 0
	for _, r := range res {
		if r.WAL <= 0 || r.Median <= 0 {
			t.Errorf("%s: WAL %.0f bytes, median %v; want both positive", r.Case.Name, r.WAL, r.Median)
		}
		if r.Case.Paired {
			paired++
			if r.PairedMedian <= 0 {
				t.Errorf("%s: no median with the context", r.Case.Name)
			}
		}
	}
	if paired == 0 {
		t.Error("no case measures the context with and without in turn")
	}
	var b strings.Builder
	WriteIndexCost(&b, res)
	if !strings.Contains(b.String(), "with and without in turn on one table") {
		t.Errorf("the report lacks the paired figures:\n%s", b.String())
	}
}
