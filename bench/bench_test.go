package bench

import (
	"context"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/auditpgx/auditpgx/internal/pgtest"
)

var (
	benchRows  = flag.Int("bench.rows", 100_000, "rows seeded per variant for BenchmarkWorkloads; the bulk UPDATE updates all")
	benchIters = flag.Int("bench.iters", 5, "insert-update-delete cycles per goroutine per concurrent sample")
)

// BenchmarkWorkloads runs every workload on every variant, as
// BenchmarkWorkloads/<workload>/<variant>. ns/op is the time per operation
// (per statement for the concurrent workload) with untimed resets left
// out; the bulk workloads also report the Go heap allocated per statement.
// The ratios and targets come from cmd/auditbench, which interleaves the
// variants; this is for profiling one of them and as a smoke test:
//
//	go test ./bench/ -run '^$' -bench . -benchtime=1x
//	go test ./bench/ -run '^$' -bench 'Workloads/update-100k/auditpgx' -benchtime=3x -cpuprofile cpu.out
func BenchmarkWorkloads(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, Config{DSN: pgtest.NewDatabase(b), Rows: *benchRows})
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
