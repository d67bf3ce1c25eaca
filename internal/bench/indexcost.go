package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/store"
)

// IndexCase is one entry-table layout that IndexCost times the audited
// UPDATE by key against.
type IndexCase struct {
	Name string
	// Plain runs the UPDATE through pgx with no entry at all.
	Plain bool
	// Floor runs, through pgx, the least a one-statement design can send:
	// the UPDATE and one entry of the same shape, without auditpgx's pre
	// image, row lock and diff (floorUpdateSQL).
	Floor bool
	// Drop lists the entry table's indexes (names from store.Schema)
	// dropped after creating it.
	Drop []string
	// Context runs the UPDATE with a five-field entry context (request
	// id, remote address, method, route, reason), as httpctx and
	// WithReason set it.
	Context bool
	// Paired runs each operation twice on the case's one table and
	// connection, with and without the five-field context, in random
	// order: the context's cost, free of the differences between tables
	// and backends that separate cases carry. Median is without it,
	// PairedMedian with it.
	Paired bool
}

// IndexCostResult is what IndexCost measured for one case.
type IndexCostResult struct {
	Case IndexCase
	// Median, P25 and P75 are of the elapsed time per UPDATE.
	Median, P25, P75 time.Duration
	// ServerCPU is the backend's CPU time per UPDATE (0 when the server's
	// processes cannot be read).
	ServerCPU time.Duration
	// WAL is the WAL written per UPDATE, commit record included.
	WAL float64
	// PairedMedian is, for a Paired case, the median of the UPDATEs run
	// with the context.
	PairedMedian time.Duration
}

// floorUpdateSQL is the UPDATE of updateSQL with one entry of the shape auditpgx
// writes and nothing else.
const floorUpdateSQL = `WITH w AS (UPDATE account SET name = $1, balance = $2, updated_at = $3 WHERE id = $4 RETURNING id, name, balance)
INSERT INTO auditpgx_entry (created_by, operation, table_name, object_id, changes, tx_id, statement_fingerprint)
SELECT $5::text, 'update', 'account', w.id::text,
  jsonb_build_object('added_fields', '{}'::jsonb, 'removed_fields', '{}'::jsonb, 'changed_fields',
    jsonb_build_object('name', jsonb_build_array('user 1', w.name), 'balance', jsonb_build_array(12.5, w.balance))),
  pg_current_xact_id()::text::bigint, '0000000000000000' FROM w`

var createIndex = regexp.MustCompile(`(?i)CREATE INDEX IF NOT EXISTS (\w+)`)

// EntryIndexes returns the names of the secondary indexes store.Schema
// creates, in order.
func EntryIndexes() []string {
	var out []string
	for _, m := range createIndex.FindAllStringSubmatch(store.Schema, -1) {
		out = append(out, m[1])
	}
	return out
}

// IndexCases returns the cases IndexCost runs by default: no entry, every
// index, each index dropped alone, the GIN and actor indexes dropped
// together, the primary key only, and the floor statement with every
// index and with the primary key only.
func IndexCases() []IndexCase {
	all := EntryIndexes()
	cases := []IndexCase{{Name: "plain UPDATE, no entry", Plain: true}, {Name: "auditpgx, store.Schema (every index)"}}
	short := func(idx string) string { return strings.TrimPrefix(idx, "auditpgx_entry_") }
	for _, idx := range all {
		cases = append(cases, IndexCase{Name: "auditpgx, without " + short(idx), Drop: []string{idx}})
	}
	gin, actor := "auditpgx_entry_changes_idx", "auditpgx_entry_actor_idx"
	if slices.Contains(all, gin) && slices.Contains(all, actor) {
		cases = append(cases, IndexCase{Name: "auditpgx, without " + short(gin) + " and " + short(actor), Drop: []string{gin, actor}})
	}
	cases = append(cases, IndexCase{Name: "auditpgx, every index, 5-field context", Context: true},
		IndexCase{Name: "auditpgx, every index, with and without context in turn", Paired: true})
	if slices.Contains(all, gin) {
		cases = append(cases, IndexCase{Name: "auditpgx, without " + short(gin) + ", with and without context in turn", Drop: []string{gin}, Paired: true})
	}
	return append(cases,
		IndexCase{Name: "auditpgx, primary key only", Drop: all},
		IndexCase{Name: "floor statement, every index", Floor: true},
		IndexCase{Name: "floor statement, primary key only", Floor: true, Drop: all})
}

// IndexCost times ops audited single-row UPDATEs by key (updateSQL) per
// case, each case in its own schema auditbench_ix<n> holding rows rows and
// an entry table without the case's dropped indexes, on one connection per
// case. The cases alternate operation by operation, in an order shuffled
// for every operation. WAL is measured first, one case at a time, over
// min(ops, 500) UPDATEs. The schemas are dropped at the end.
func IndexCost(ctx context.Context, dsn string, cases []IndexCase, rows, ops int, progress io.Writer) ([]IndexCostResult, error) {
	if rows < 10 || ops < 1 {
		return nil, fmt.Errorf("bench: IndexCost: rows (%d) must be at least 10 and ops (%d) at least 1", rows, ops)
	}
	base, err := url.Parse(dsn)
	if err != nil || (base.Scheme != "postgres" && base.Scheme != "postgresql") {
		return nil, errors.New("bench: IndexCost: dsn must be a postgres:// URL")
	}
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("bench: connecting: %w", err)
	}
	defer admin.Close(context.Background())
	type runner struct {
		c    IndexCase
		db   *sql.DB
		pid  int32
		durs []time.Duration
		// paired are a Paired case's durations with the context.
		paired []time.Duration
	}
	var rs []*runner
	defer func() {
		for i, r := range rs {
			r.db.Close()
			admin.Exec(context.Background(), `DROP SCHEMA IF EXISTS auditbench_ix`+strconv.Itoa(i)+` CASCADE`)
		}
	}()
	for i, c := range cases {
		schema := "auditbench_ix" + strconv.Itoa(i)
		ddl := []string{`DROP SCHEMA IF EXISTS ` + schema + ` CASCADE`, `CREATE SCHEMA ` + schema, `SET search_path = ` + schema, tableDDL}
		if !c.Plain {
			ddl = append(ddl, store.Schema)
			for _, idx := range c.Drop {
				ddl = append(ddl, `DROP INDEX `+pgx.Identifier{idx}.Sanitize())
			}
		}
		for _, q := range ddl {
			if _, err := admin.Exec(ctx, q); err != nil {
				return nil, fmt.Errorf("bench: %s: %w", c.Name, err)
			}
		}
		if _, err := admin.Exec(ctx, seedSQL, rows); err != nil {
			return nil, err
		}
		if _, err := admin.Exec(ctx, `VACUUM (ANALYZE) account`); err != nil {
			return nil, err
		}
		u := *base
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		r := &runner{c: c}
		if c.Plain || c.Floor {
			r.db, err = sql.Open("pgx", u.String())
		} else {
			r.db, _, err = openAuditpgx(u.String(), auditpgx.RegistryConfig{})
		}
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
		r.db.SetMaxOpenConns(1)
		r.db.SetMaxIdleConns(1)
		if err := r.db.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&r.pid); err != nil {
			return nil, err
		}
	}
	actx := auditpgx.WithActor(ctx, "auditbench")
	cctx := auditpgx.WithContext(actx, "request_id", "4f1c2b7e-9d1a-4a55-8c3e-0d2f1e6b7a90")
	cctx = auditpgx.WithContext(cctx, "remote_addr", "203.0.113.7")
	cctx = auditpgx.WithContext(cctx, "method", "PATCH")
	cctx = auditpgx.WithContext(cctx, "route", "PATCH /accounts/{id}")
	cctx = auditpgx.WithReason(cctx, "ticket #123")
	var update func(r *runner, round, i int, withContext bool) error
	op := func(r *runner, round, i int) error {
		return update(r, round, i, r.c.Context)
	}
	update = func(r *runner, round, i int, withContext bool) error {
		key := 1 + int64((uint64(round)*1_000_003+uint64(i)*2_654_435_761)%uint64(rows))
		args := []any{fmt.Sprintf("renamed %d.%d", round, i), float64((round*7+i)%1000) + 0.5, baseTime, key}
		stmt := updateSQL
		if r.c.Floor {
			stmt, args = floorUpdateSQL, append(args, "auditbench")
		}
		ctx := actx
		if withContext {
			ctx = cctx
		}
		res, err := r.db.ExecContext(ctx, stmt, args...)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", r.c.Name, err)
		}
		return expectRows(res, 1)
	}
	for _, r := range rs {
		for i := range min(ops, 200) {
			if err := op(r, 0, i); err != nil {
				return nil, err
			}
		}
	}
	out := make([]IndexCostResult, len(rs))
	walOps := min(ops, 500)
	for k, r := range rs {
		var before, after string
		if err := admin.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&before); err != nil {
			return nil, err
		}
		for i := range walOps {
			if err := op(r, 1, i); err != nil {
				return nil, err
			}
		}
		var bytes float64
		err := admin.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text, pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::float8`, before).Scan(&after, &bytes)
		if err != nil {
			return nil, err
		}
		out[k] = IndexCostResult{Case: r.c, WAL: bytes / float64(walOps)}
	}
	cpu0 := make([]time.Duration, len(rs))
	cpuOK := true
	for k, r := range rs {
		var ok bool
		cpu0[k], ok = backendCPU(r.pid)
		cpuOK = cpuOK && ok
	}
	// A fresh order for every operation, so that no case always follows
	// the same other one.
	rng := rand.New(rand.NewPCG(7, 8))
	order := make([]int, len(rs))
	for i := range order {
		order[i] = i
	}
	for i := range ops {
		rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		for _, j := range order {
			r := rs[j]
			if r.c.Paired {
				// Two UPDATEs of different rows, in random order.
				first := rng.IntN(2) == 0
				for _, withContext := range []bool{first, !first} {
					start := time.Now()
					if err := update(r, 2+boolInt(withContext), i, withContext); err != nil {
						return nil, err
					}
					if withContext {
						r.paired = append(r.paired, time.Since(start))
					} else {
						r.durs = append(r.durs, time.Since(start))
					}
				}
				continue
			}
			start := time.Now()
			if err := op(r, 2, i); err != nil {
				return nil, err
			}
			r.durs = append(r.durs, time.Since(start))
		}
		if progress != nil && (i+1)%1000 == 0 {
			fmt.Fprintf(progress, "index cost: %d/%d\n", i+1, ops)
		}
	}
	for k, r := range rs {
		st := Summarize(toSamples(r.durs))
		out[k].Median, out[k].P25, out[k].P75 = st.Median, st.P25, st.P75
		if r.c.Paired {
			out[k].PairedMedian = Summarize(toSamples(r.paired)).Median
		}
		if cpu1, ok := backendCPU(r.pid); ok && cpuOK && cpu1 >= cpu0[k] {
			n := ops
			if r.c.Paired {
				n *= 2 // with the context and without: an average of the two
			}
			out[k].ServerCPU = (cpu1 - cpu0[k]) / time.Duration(n)
		}
	}
	return out, nil
}

// openAuditpgx opens dsn through auditpgx with the benchmark table
// registered, and returns the registry too.
func openAuditpgx(dsn string, cfg auditpgx.RegistryConfig) (*sql.DB, *auditpgx.Registry, error) {
	reg, err := auditpgx.NewRegistry(cfg)
	if err != nil {
		return nil, nil, err
	}
	if err := reg.RegisterTable(Table, auditpgx.Exclude(excludedColumn), auditpgx.Redact(redactedColumn)); err != nil {
		return nil, nil, err
	}
	conn, err := auditpgx.NewConnector(dsn, auditpgx.WithRegistry(reg))
	if err != nil {
		return nil, nil, err
	}
	return sql.OpenDB(conn), reg, nil
}

// backendCPU reads a server process's CPU time from /proc/<pid>/schedstat.
func backendCPU(pid int32) (time.Duration, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0, false
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(ns), true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func toSamples(d []time.Duration) []Sample {
	out := make([]Sample, len(d))
	for i := range d {
		out[i].Duration = d[i]
	}
	return out
}

// WriteIndexCost writes IndexCost's results as a Markdown table, each case
// against the first and the second, which are plain and every index in
// IndexCases.
func WriteIndexCost(w io.Writer, res []IndexCostResult) {
	if len(res) < 2 {
		return
	}
	plain, full := res[0], res[1]
	fmt.Fprintf(w, "| case | elapsed, median | ± | / %s | less than %s | server CPU | less (CPU) | WAL bytes |\n|---|--:|--:|--:|--:|--:|--:|--:|\n",
		plain.Case.Name, full.Case.Name)
	for _, r := range res {
		spread := 0.0
		if r.Median > 0 {
			spread = float64(r.P75-r.P25) / 2 / float64(r.Median)
		}
		fmt.Fprintf(w, "| %s | %.1f µs | %.0f%% | %.3f | %+.1f µs | %.1f µs | %+.1f µs | %.0f |\n", r.Case.Name,
			float64(r.Median)/1e3, 100*spread, float64(r.Median)/float64(plain.Median),
			float64(full.Median-r.Median)/1e3, float64(r.ServerCPU)/1e3, float64(full.ServerCPU-r.ServerCPU)/1e3, r.WAL)
	}
	first := true
	for _, r := range res {
		if !r.Case.Paired || r.Median <= 0 {
			continue
		}
		if first {
			fmt.Fprintf(w, "\nThe five-field entry context, with and without in turn on one table and connection (the rows above show those cases without it):\n\n")
			first = false
		}
		fmt.Fprintf(w, "- %s: %.1f µs with, %.1f µs without: %.3f×\n", r.Case.Name,
			float64(r.PairedMedian)/1e3, float64(r.Median)/1e3, float64(r.PairedMedian)/float64(r.Median))
	}
}
