// Command auditbench runs the bench package's workloads through plain pgx,
// auditpgx, a row trigger and a statement trigger, against one throwaway
// PostgreSQL, and prints the medians, their ratios and the performance
// targets as Markdown tables:
//
//	go run ./cmd/auditbench              # about 4 minutes on 2 cores
//	go run ./cmd/auditbench -quick       # a few seconds, for checking it works
//	go run ./cmd/auditbench -workloads bulk-update -variants plain,auditpgx -cpuprofile cpu.out
//	go run ./cmd/auditbench -durable     # commits wait for the WAL flush, as in production
//
// The server is launched as internal/pgtest launches the tests' (initdb from
// $AUDITPGX_PG_BIN, PATH or /usr/lib/postgresql), or is the one named by
// $AUDITPGX_DATABASE_URL or -dsn. Unless -micro=false, it also runs the
// root package's rewrite micro-benchmarks with go test.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditpgx/auditpgx/internal/bench"
	"github.com/auditpgx/auditpgx/internal/pgtest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "auditbench:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		cfg  bench.Config
		opts bench.Options
	)
	dsn := flag.String("dsn", "", "postgres:// URL of a database to use instead of a throwaway server (default $AUDITPGX_DATABASE_URL)")
	flag.IntVar(&cfg.Rows, "rows", 100_000, "rows seeded per variant; the bulk UPDATE updates all of them")
	flag.IntVar(&cfg.WALChunkRows, "wal-chunk", 0, "the most entries in one message of the auditpgx-wal variant (0: auditpgx's default, 1,000)")
	flag.IntVar(&cfg.BulkInsert, "bulk-insert", 10_000, "rows written by the bulk INSERT")
	flag.IntVar(&cfg.Conns, "conns", 8, "connections per variant and goroutines of the concurrent workload")
	flag.IntVar(&opts.Rounds, "rounds", 20, "rounds of each single-statement workload")
	flag.IntVar(&opts.Ops, "ops", 100, "operations per variant per round")
	flag.IntVar(&opts.ThroughputRounds, "conc-rounds", 7, "samples of the concurrent workload per variant")
	flag.IntVar(&opts.ThroughputIters, "conc-iters", 20, "insert-update-delete cycles per goroutine per concurrent sample")
	flag.IntVar(&opts.BulkSamples, "bulk-samples", 5, "samples per variant of each bulk workload")
	workloads := flag.String("workloads", "", "comma-separated workloads to run (default all): "+names())
	variants := flag.String("variants", "", "comma-separated variants (default "+strings.Join(bench.VariantNames, ",")+"); also suppressed (auditpgx under WithoutAudit), auditpgx-wal (the WAL sink; the server then runs with wal_level=logical), floor and floor+pre-image (plain pgx sending the write and its entries in one statement, the least a one-statement design sends; internal/bench/floor.go), floor+diff (the floor with auditpgx's diff of an UPDATE, writing auditpgx's entries)")
	quick := flag.Bool("quick", false, "tiny sizes and counts: checks that everything runs, measures nothing")
	durable := flag.Bool("durable", false, "launch the server with PostgreSQL's default fsync, synchronous_commit and full_page_writes (on) instead of off")
	micro := flag.Bool("micro", true, "also run the root package's rewrite micro-benchmarks (needs the go command)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the workloads to this file")
	memProfile := flag.String("memprofile", "", "write an allocation profile to this file after the run")
	relayRun := flag.Bool("relay", false, "run auditpgx relay beside the workloads (in this process), from the auditpgx-wal variant's slot into an entry table, and report its lag; needs -variants with auditpgx-wal")
	indexCost := flag.Int("index-cost", 0, "instead of the workloads, time this many audited UPDATEs by key per entry-table layout (each index dropped in turn; see bench.IndexCases)")
	flag.Parse()

	if *quick {
		cfg.Rows, cfg.BulkInsert = 2000, 500
		opts.Rounds, opts.Ops, opts.ThroughputRounds, opts.ThroughputIters, opts.BulkSamples = 2, 10, 2, 3, 1
		*micro = false
	}
	if *workloads != "" {
		opts.Workloads = strings.Split(*workloads, ",")
	}
	if *variants != "" {
		cfg.Variants = strings.Split(*variants, ",")
	}
	opts.Progress = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	cfg.DSN = *dsn
	if *durable && (cfg.DSN != "" || os.Getenv("AUDITPGX_DATABASE_URL") != "") {
		return errors.New("-durable applies to the throwaway server, not to one named by -dsn or $AUDITPGX_DATABASE_URL")
	}
	var srv *pgtest.Server
	if cfg.DSN == "" {
		var err error
		fmt.Fprintln(os.Stderr, "starting PostgreSQL…")
		var popts []pgtest.Option
		if *durable {
			popts = append(popts, pgtest.Durable())
		}
		if slices.Contains(strings.Split(*variants, ","), bench.AuditpgxWAL) {
			popts = append(popts, pgtest.Logical()) // and so for every variant: one server
		}
		if srv, err = pgtest.Start(ctx, "AUDITPGX_DATABASE_URL", popts...); err != nil {
			return err
		}
		defer srv.Stop()
		cfg.DSN = srv.URL()
	}
	if *indexCost > 0 {
		return runIndexCost(ctx, cfg.DSN, cfg.Rows, *indexCost, srv)
	}
	if *relayRun {
		if !slices.Contains(strings.Split(*variants, ","), bench.AuditpgxWAL) {
			return errors.New("-relay needs -variants with auditpgx-wal")
		}
		if err := setUpRelay(ctx, cfg.DSN); err != nil {
			return fmt.Errorf("-relay: %w", err)
		}
	}
	fmt.Fprintln(os.Stderr, "setting up and seeding the variants…")
	suite, err := bench.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer suite.Close()
	var lag *relayLag
	if *relayRun {
		if lag, err = startRelayLag(ctx, cfg.DSN); err != nil {
			return err
		}
	}

	load0 := loadAvg()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	report, err := suite.Run(ctx, opts)
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return err
	}
	if *memProfile != "" {
		if err := writeHeapProfile(*memProfile); err != nil {
			return err
		}
	}
	load1 := loadAvg()
	var lagReport strings.Builder
	if lag != nil {
		if err := lag.stop(ctx, &lagReport); err != nil {
			return err
		}
	}

	var extra []bench.Target
	if *micro {
		fmt.Fprintln(os.Stderr, "running the rewrite micro-benchmarks…")
		extra = microTargets(ctx)
	}

	fmt.Printf("auditbench, %s, took %s\n\n", report.Started.Format("2006-01-02 15:04 MST"), report.Elapsed.Round(time.Second))
	fmt.Printf("- machine: %s, %d CPUs, %s RAM, %s/%s; load average %s before, %s after\n",
		cpuModel(), runtime.NumCPU(), memTotal(), runtime.GOOS, runtime.GOARCH, load0, load1)
	fmt.Printf("- %s; PostgreSQL %s (server_version_num %d)%s\n", runtime.Version(), pgVersion(report.ServerVersion), report.ServerVersion, serverNote(srv, report.Durability))
	fmt.Printf("- %d rows per variant, bulk INSERT of %d rows, %d connections\n\n", report.Config.Rows, report.Config.BulkInsert, report.Config.Conns)
	report.WriteTables(os.Stdout, extra)
	fmt.Print(lagReport.String())
	return nil
}

func runIndexCost(ctx context.Context, dsn string, rows, ops int, srv *pgtest.Server) error {
	fmt.Fprintln(os.Stderr, "setting up one schema per entry-table layout…")
	load0 := loadAvg()
	started := time.Now()
	res, err := bench.IndexCost(ctx, dsn, bench.IndexCases(), rows, ops, os.Stderr)
	if err != nil {
		return err
	}
	version, durability, err := bench.ServerSettings(ctx, dsn)
	if err != nil {
		return err
	}
	fmt.Printf("auditbench -index-cost %d, %s, took %s\n\n", ops, started.Format("2006-01-02 15:04 MST"), time.Since(started).Round(time.Second))
	fmt.Printf("- machine: %s, %d CPUs, %s RAM, %s/%s; load average %s before, %s after\n",
		cpuModel(), runtime.NumCPU(), memTotal(), runtime.GOOS, runtime.GOARCH, load0, loadAvg())
	fmt.Printf("- %s; PostgreSQL %s (server_version_num %d)%s\n", runtime.Version(), pgVersion(version), version, serverNote(srv, durability))
	fmt.Printf("- %d rows per table; %d UPDATEs by key per case, the cases alternating operation by operation in shuffled order, one connection each\n\n", rows, ops)
	bench.WriteIndexCost(os.Stdout, res)
	return nil
}

func names() string {
	var out []string
	for _, w := range bench.Workloads {
		out = append(out, w.Name)
	}
	return strings.Join(out, ",")
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// microTargets runs the root package's BenchmarkRewriteCacheHit and
// BenchmarkColdRewrite with go test, and the bench package's own cold
// parse and rewrite in process.
func microTargets(ctx context.Context) []bench.Target {
	hit := bench.Target{Name: "rewrite-cache hit (BenchmarkRewriteCacheHit)", Limit: "≤ 200 ns, 0 allocs"}
	cold := bench.Target{Name: "cold parse + rewrite of an ORM UPDATE (BenchmarkColdRewrite)", Limit: "≤ 150 µs"}
	results, err := goBench(ctx, `^Benchmark(RewriteCacheHit|ColdRewrite)$`)
	if err != nil {
		hit.Measured, cold.Measured = "not run: "+err.Error(), "not run"
	} else {
		if r, ok := results["BenchmarkRewriteCacheHit"]; ok {
			hit.Known, hit.Met = true, r.ns <= 200 && r.allocs == 0
			hit.Measured = fmt.Sprintf("%.1f ns, %d allocs", r.ns, r.allocs)
		}
		if r, ok := results["BenchmarkColdRewrite"]; ok {
			cold.Known, cold.Met = true, r.ns <= 150e3
			cold.Measured = fmt.Sprintf("%.0f µs, %d allocs", r.ns/1e3, r.allocs)
		}
	}
	own := bench.Target{Name: "cold parse + rewrite of the GORM Save of `account` (parser API, in process)", Limit: "≤ 150 µs"}
	br := testing.Benchmark(bench.ParseRewrite)
	if br.N > 0 {
		ns := float64(br.T.Nanoseconds()) / float64(br.N)
		own.Known, own.Met = true, ns <= 150e3
		own.Measured = fmt.Sprintf("%.0f µs, %d allocs", ns/1e3, br.AllocsPerOp())
	}
	return []bench.Target{hit, cold, own}
}

type benchResult struct {
	ns     float64
	allocs int64
}

// goBench runs the root package's benchmarks matching pattern five times
// and returns each one's median ns/op and largest allocs/op.
func goBench(ctx context.Context, pattern string) (map[string]benchResult, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return nil, fmt.Errorf("finding the module: %w", err)
	}
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", pattern, "-benchmem", "-count", "5", ".")
	cmd.Dir = strings.TrimSpace(string(out))
	if out, err = cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go test: %w: %s", err, firstFailure(out))
	}
	ns := map[string][]float64{}
	res := map[string]benchResult{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name, _, _ := strings.Cut(f[0], "-")
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				ns[name] = append(ns[name], v)
			case "allocs/op":
				r := res[name]
				r.allocs = max(r.allocs, int64(v))
				res[name] = r
			}
		}
	}
	if len(ns) == 0 {
		return nil, errors.New("go test printed no benchmark results")
	}
	for name, v := range ns {
		slices.Sort(v)
		r := res[name]
		r.ns = v[len(v)/2]
		res[name] = r
	}
	return res, nil
}

// firstFailure returns the line of go test's output that says what went
// wrong.
func firstFailure(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "--- FAIL") || strings.Contains(l, "cannot") {
			return strings.TrimSpace(l)
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	data, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
				return fmt.Sprintf("%.0f GiB", kb/(1<<20))
			}
		}
	}
	return "unknown"
}

func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func pgVersion(num int) string {
	if num >= 100000 {
		return fmt.Sprintf("%d.%d", num/10000, num%10000)
	}
	return strconv.Itoa(num)
}

func serverNote(srv *pgtest.Server, durability string) string {
	if srv == nil || os.Getenv("AUDITPGX_DATABASE_URL") != "" {
		return ", an existing server (" + durability + ")"
	}
	if durability == "fsync=on synchronous_commit=on full_page_writes=on" {
		return ", throwaway cluster, durable (" + durability + ": every setting default)"
	}
	return ", throwaway cluster (" + durability + "; other settings default)"
}
