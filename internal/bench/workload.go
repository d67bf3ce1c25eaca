package bench

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/auditpgx/auditpgx"
)

// Kind says how a workload is sampled.
type Kind int

const (
	// PerOp workloads time every operation on its own.
	PerOp Kind = iota
	// Bulk workloads run one large statement per sample, on data reset
	// (untimed) just before.
	Bulk
	// Throughput workloads run Conns goroutines at once; a sample is the
	// wall time divided by the statements run.
	Throughput
)

// Sample is one measurement.
type Sample struct {
	// Duration is the time per operation (per statement for Throughput).
	Duration time.Duration
	// Alloc is the Go heap allocated during a Bulk sample's statement.
	Alloc uint64
}

// Workload is a sequence of operations run the same way on every variant.
type Workload struct {
	Name  string // short name, used to select workloads
	Title string
	Kind  Kind
	// SingleRow marks the single-row writes that the auditpgx / plain and
	// auditpgx / row trigger targets apply to.
	SingleRow bool
	// ReadOnly workloads write nothing, so only plain and auditpgx are run.
	ReadOnly bool
	// RoundsScale multiplies Options.Rounds for this PerOp workload (0
	// means 1): the SELECT is cheap and its target is within 2%, so it
	// takes more samples.
	RoundsScale int
	// start prepares, untimed, round number round of n operations on v
	// (PerOp: n operations; Throughput: one burst of n cycles per
	// goroutine; Bulk: one statement, n is ignored).
	start func(ctx context.Context, s *Suite, v *Variant, round, n int) (*batch, error)
}

// batch is a prepared round of a workload on one variant.
type batch struct {
	ops   int               // how many operations the round has
	stmts int               // statements per operation, to divide its time by
	op    func(i int) error // runs operation i, timed
	done  func() error      // cleans up, untimed; may be nil
}

func (b *batch) close() error {
	if b.done == nil {
		return nil
	}
	return b.done()
}

// Start prepares round number round of w on v, n operations long. Rounds
// with the same number do the same thing in every variant.
func (w *Workload) Start(ctx context.Context, s *Suite, v *Variant, round, n int) (*Batch, error) {
	ctx = contextFor(ctx, v)
	b, err := w.start(ctx, s, v, round, n)
	if err != nil {
		return nil, fmt.Errorf("bench: %s on %s: %w", w.Name, v.Name, err)
	}
	return &Batch{w: w, v: v, b: b}, nil
}

// Batch is a round of a workload on one variant, ready to run.
type Batch struct {
	w *Workload
	v *Variant
	b *batch
}

// Len returns the number of operations in the batch.
func (b *Batch) Len() int { return b.b.ops }

// Time runs operation i and returns its sample.
func (b *Batch) Time(i int) (Sample, error) {
	var before, after runtime.MemStats
	if b.w.Kind == Bulk {
		runtime.ReadMemStats(&before)
	}
	start := time.Now()
	err := b.b.op(i)
	elapsed := time.Since(start)
	if err != nil {
		return Sample{}, fmt.Errorf("bench: %s on %s: %w", b.w.Name, b.v.Name, err)
	}
	out := Sample{Duration: elapsed / time.Duration(b.b.stmts)}
	if b.w.Kind == Bulk {
		runtime.ReadMemStats(&after)
		out.Alloc = after.TotalAlloc - before.TotalAlloc
	}
	return out, nil
}

// Close cleans up after the batch.
func (b *Batch) Close() error { return b.b.close() }

// Run runs a whole round of w on v and returns its samples.
func (w *Workload) Run(ctx context.Context, s *Suite, v *Variant, round, n int) ([]Sample, error) {
	b, err := w.Start(ctx, s, v, round, n)
	if err != nil {
		return nil, err
	}
	out := make([]Sample, b.Len())
	for i := range out {
		if out[i], err = b.Time(i); err != nil {
			b.Close()
			return nil, err
		}
	}
	return out, b.Close()
}

// contextFor adds v's actor to ctx, and its suppression.
func contextFor(ctx context.Context, v *Variant) context.Context {
	if v.suppressed {
		ctx = auditpgx.WithoutAudit(ctx, "auditbench")
	}
	if v.actor == "" {
		return ctx
	}
	return auditpgx.WithActor(ctx, v.actor)
}

// The statements, written as an application or its ORM sends them.
const (
	insertSQL = `INSERT INTO account (name, email, balance, active, score, tags, meta, created_at, password_hash, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`
	updateSQL = `UPDATE account SET name = $1, balance = $2, updated_at = $3 WHERE id = $4`
	deleteSQL = `DELETE FROM account WHERE id = $1`
	selectSQL = `SELECT id, name, email, balance, active, score, tags, meta, created_at, password_hash, updated_at FROM account WHERE id = $1`
	// GORM's Create and Save.
	gormCreateSQL = `INSERT INTO "account" ("name","email","balance","active","score","tags","meta","created_at","password_hash","updated_at") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) RETURNING "id"`
	gormSaveSQL   = `UPDATE "account" SET "name"=$1,"email"=$2,"balance"=$3,"active"=$4,"score"=$5,"tags"=$6,"meta"=$7,"created_at"=$8,"password_hash"=$9,"updated_at"=$10 WHERE "id" = $11`
	// The bulk statements.
	bulkUpdateSQL = `UPDATE account SET score = coalesce(score, 0) + 1, updated_at = $1 WHERE id BETWEEN $2 AND $3`
	bulkInsertSQL = `INSERT INTO account (name, email, balance, active, score, tags, meta, created_at, password_hash, updated_at)
SELECT 'bulk ' || g, 'bulk' || g || '@example.com', g % 100, g % 2 = 0, g % 7, ARRAY['bulk'], jsonb_build_object('round', $1::int, 'g', g), $2::timestamptz, md5(g::text), $2::timestamptz
FROM generate_series(1, $3::int) g`
)

// baseTime is the timestamp the workloads' values count from.
var baseTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Workloads lists every workload, in report order.
var Workloads = []*Workload{
	{Name: "insert", Title: "INSERT 1 row", Kind: PerOp, SingleRow: true, start: startInsert},
	{Name: "update", Title: "UPDATE by key", Kind: PerOp, SingleRow: true, start: startUpdate},
	{Name: "delete", Title: "DELETE by key", Kind: PerOp, SingleRow: true, start: startDelete},
	{Name: "gorm-create", Title: "BEGIN; INSERT … RETURNING; COMMIT", Kind: PerOp, SingleRow: true, start: startGormCreate},
	{Name: "gorm-save", Title: "BEGIN; UPDATE (all columns); COMMIT", Kind: PerOp, SingleRow: true, start: startGormSave},
	{Name: "prepared", Title: "UPDATE by key, prepared once", Kind: PerOp, SingleRow: true, start: startPrepared},
	{Name: "select", Title: "SELECT by key", Kind: PerOp, ReadOnly: true, RoundsScale: 10, start: startSelect},
	{Name: "concurrent", Title: "mixed writes, Conns goroutines (per statement)", Kind: Throughput, start: startConcurrent},
	{Name: "bulk-insert", Title: "INSERT of BulkInsert rows, one statement", Kind: Bulk, start: startBulkInsert},
	{Name: "bulk-update", Title: "UPDATE of all Rows rows, one statement", Kind: Bulk, start: startBulkUpdate},
}

// title returns w's title with the suite's sizes filled in.
func (w *Workload) title(cfg Config) string {
	switch w.Name {
	case "bulk-insert":
		return "INSERT " + thousands(cfg.BulkInsert) + " rows, one statement"
	case "bulk-update":
		return "UPDATE " + thousands(cfg.Rows) + " rows, one statement"
	case "concurrent":
		return fmt.Sprintf("mixed writes, %d goroutines (per statement)", cfg.Conns)
	}
	return w.Title
}

// thousands formats n with commas: 100,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// WorkloadByName returns the workload of that name, or nil.
func WorkloadByName(name string) *Workload {
	for _, w := range Workloads {
		if w.Name == name {
			return w
		}
	}
	return nil
}

// pick returns the key of a seeded row for operation i of a round: spread
// over the table, and the same in every variant.
func (s *Suite) pick(round, i int) int64 {
	x := uint64(round)<<32 | uint64(uint32(i))
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	x ^= x >> 31
	return 1 + int64(x%uint64(s.cfg.Rows))
}

// newRow returns the values of a new row for operation i of a round.
func newRow(round, i int) []any {
	k := round*100_000 + i
	return []any{
		fmt.Sprintf("new %d", k),
		fmt.Sprintf("new%d@example.com", k),
		float64(k%1000) * 1.25,
		k%2 == 0,
		k % 97,
		[]string{"new", fmt.Sprintf("r%d", round)},
		fmt.Sprintf(`{"plan": "p%d", "k": %d}`, k%4, k),
		baseTime.Add(time.Duration(k) * time.Second),
		fmt.Sprintf("hash-%d", k),
		baseTime,
	}
}

// updateArgs are the arguments of updateSQL for operation i of a round.
func (s *Suite) updateArgs(round, i int) []any {
	return []any{fmt.Sprintf("renamed %d.%d", round, i), float64((round*7+i)%1000) + 0.5, baseTime.Add(time.Duration(i) * time.Second), s.pick(round, i)}
}

// perOp is a PerOp batch of n operations.
func perOp(n int, op func(i int) error) *batch {
	return &batch{ops: n, stmts: 1, op: op}
}

func expectRows(res sql.Result, want int64) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("%d rows affected, want %d", n, want)
	}
	return nil
}

func startInsert(ctx context.Context, s *Suite, v *Variant, round, n int) (*batch, error) {
	return perOp(n, func(i int) error {
		q, args := v.sqlFor(insertSQL, newRow(round, i))
		res, err := v.DB.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		return expectRows(res, 1)
	}), nil
}

func startUpdate(ctx context.Context, s *Suite, v *Variant, round, n int) (*batch, error) {
	return perOp(n, func(i int) error {
		q, args := v.sqlFor(updateSQL, s.updateArgs(round, i))
		res, err := v.DB.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		return expectRows(res, 1)
	}), nil
}

func startDelete(ctx context.Context, s *Suite, v *Variant, round, n int) (*batch, error) {
	ids, err := s.insertUntimed(ctx, v, round, n)
	if err != nil {
		return nil, err
	}
	return perOp(n, func(i int) error {
		q, args := v.sqlFor(deleteSQL, []any{ids[i]})
		res, err := v.DB.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		return expectRows(res, 1)
	}), nil
}

func startGormCreate(ctx context.Context, s *Suite, v *Variant, round, n int) (*batch, error) {
	return perOp(n, func(i int) error {
		tx, err := v.DB.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		var id int64
		q, args := v.sqlFor(gormCreateSQL, newRow(round, i))
		if err := tx.QueryRowContext(ctx, q, args...).Scan(&id); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	}), nil
}

func startGormSave(ctx context.Context, s *Suite, v *Variant, round, n int) (*batch, error) {
	return perOp(n, func(i int) error {
		id := s.pick(round, i)
		// Save writes every column: the email and created_at keep the
		// values the row was seeded with, the others change.
		args := []any{
			fmt.Sprintf("saved %d.%d", round, i), fmt.Sprintf("user%d@example.com", id),
			float64((round+i)%1000) + 0.75, true, (round + i) % 50,
			[]string{"saved"}, `{"plan": "saved"}`,
			time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(id) * time.Minute),
			fmt.Sprintf("saved-%d.%d", round, i), baseTime, id,
		}
		tx, err := v.DB.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		q, args := v.sqlFor(gormSaveSQL, args)
		res, err := tx.ExecContext(ctx, q, args...)
		if err == nil {
			err = expectRows(res, 1)
		}
		if err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	}), nil
}

func startPrepared(ctx context.Context, s *Suite, v *Variant, round, n int) (*batch, error) {
	q, _ := v.sqlFor(updateSQL, nil)
	stmt, err := v.DB.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	b := perOp(n, func(i int) error {
		_, args := v.sqlFor(updateSQL, s.updateArgs(round, i))
		res, err := stmt.ExecContext(ctx, args...)
		if err != nil {
			return err
		}
		return expectRows(res, 1)
	})
	b.done = stmt.Close
	return b, nil
}

func startSelect(ctx context.Context, s *Suite, v *Variant, round, n int) (*batch, error) {
	dest := make([]any, 11)
	for i := range dest {
		dest[i] = new(any)
	}
	return perOp(n, func(i int) error {
		return v.DB.QueryRowContext(ctx, selectSQL, s.pick(round, i)).Scan(dest...)
	}), nil
}

// startConcurrent prepares one burst of Conns goroutines, each doing n
// times: insert a row (RETURNING its key), update a seeded row by key,
// delete the new row.
func startConcurrent(ctx context.Context, s *Suite, v *Variant, round, n int) (*batch, error) {
	g := s.cfg.Conns
	return &batch{ops: 1, stmts: 3 * g * n, op: func(int) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var wg sync.WaitGroup
		errs := make(chan error, g)
		for j := range g {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := cycles(ctx, s, v, round, j*n, n); err != nil {
					cancel()
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		return <-errs
	}}, nil
}

// cycles runs n insert-update-delete cycles, numbered from first.
func cycles(ctx context.Context, s *Suite, v *Variant, round, first, n int) error {
	for i := first; i < first+n; i++ {
		var id int64
		q, args := v.sqlFor(insertSQL+` RETURNING id`, newRow(round, i))
		if err := v.DB.QueryRowContext(ctx, q, args...).Scan(&id); err != nil {
			return err
		}
		q, args = v.sqlFor(updateSQL, s.updateArgs(round, i))
		res, err := v.DB.ExecContext(ctx, q, args...)
		if err == nil {
			err = expectRows(res, 1)
		}
		if err != nil {
			return err
		}
		q, args = v.sqlFor(deleteSQL, []any{id})
		res, err = v.DB.ExecContext(ctx, q, args...)
		if err == nil {
			err = expectRows(res, 1)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// bulk is a Bulk batch: reset, untimed, then one statement.
func bulk(ctx context.Context, v *Variant, reset func() error, want int64, stmt string, args ...any) (*batch, error) {
	if err := reset(); err != nil {
		return nil, err
	}
	stmt, args = v.sqlFor(stmt, args)
	return &batch{ops: 1, stmts: 1, op: func(int) error {
		res, err := v.DB.ExecContext(ctx, stmt, args...)
		if err != nil {
			return err
		}
		return expectRows(res, want)
	}}, nil
}

func startBulkUpdate(ctx context.Context, s *Suite, v *Variant, round, _ int) (*batch, error) {
	return bulk(ctx, v, func() error { return s.Seed(ctx, v) }, int64(s.cfg.Rows),
		bulkUpdateSQL, baseTime.Add(time.Duration(round)*time.Hour), 1, s.cfg.Rows)
}

func startBulkInsert(ctx context.Context, s *Suite, v *Variant, round, _ int) (*batch, error) {
	return bulk(ctx, v, func() error { return s.trim(ctx, v) }, int64(s.cfg.BulkInsert),
		bulkInsertSQL, round, baseTime, s.cfg.BulkInsert)
}
