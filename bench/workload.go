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
	// run runs round number round of n operations (PerOp, Throughput: n
	// per goroutine; Bulk: n is ignored) on v and returns its samples.
	run func(ctx context.Context, s *Suite, v *Variant, round, n int) ([]Sample, error)
}

// Run runs round number round of w on v, n operations long, and returns its
// samples. Rounds with the same number do the same thing in every variant.
func (w *Workload) Run(ctx context.Context, s *Suite, v *Variant, round, n int) ([]Sample, error) {
	ctx = contextFor(ctx, v)
	out, err := w.run(ctx, s, v, round, n)
	if err != nil {
		return nil, fmt.Errorf("bench: %s on %s: %w", w.Name, v.Name, err)
	}
	return out, nil
}

// contextFor adds v's actor to ctx.
func contextFor(ctx context.Context, v *Variant) context.Context {
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
	{Name: "insert", Title: "INSERT 1 row", Kind: PerOp, SingleRow: true, run: runInsert},
	{Name: "update", Title: "UPDATE by key", Kind: PerOp, SingleRow: true, run: runUpdate},
	{Name: "delete", Title: "DELETE by key", Kind: PerOp, SingleRow: true, run: runDelete},
	{Name: "gorm-create", Title: "BEGIN; INSERT … RETURNING; COMMIT", Kind: PerOp, SingleRow: true, run: runGormCreate},
	{Name: "gorm-save", Title: "BEGIN; UPDATE (all columns); COMMIT", Kind: PerOp, SingleRow: true, run: runGormSave},
	{Name: "prepared", Title: "UPDATE by key, prepared once", Kind: PerOp, SingleRow: true, run: runPrepared},
	{Name: "select", Title: "SELECT by key", Kind: PerOp, ReadOnly: true, run: runSelect},
	{Name: "concurrent", Title: "mixed writes, 8 goroutines (per statement)", Kind: Throughput, run: runConcurrent},
	{Name: "insert-10k", Title: "INSERT 10,000 rows, one statement", Kind: Bulk, run: runBulkInsert},
	{Name: "update-100k", Title: "UPDATE 100,000 rows, one statement", Kind: Bulk, run: runBulkUpdate},
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

// timed runs op n times and returns each run's duration.
func timed(n int, op func(i int) error) ([]Sample, error) {
	out := make([]Sample, n)
	for i := range n {
		start := time.Now()
		if err := op(i); err != nil {
			return nil, err
		}
		out[i].Duration = time.Since(start)
	}
	return out, nil
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

func runInsert(ctx context.Context, s *Suite, v *Variant, round, n int) ([]Sample, error) {
	return timed(n, func(i int) error {
		res, err := v.DB.ExecContext(ctx, insertSQL, newRow(round, i)...)
		if err != nil {
			return err
		}
		return expectRows(res, 1)
	})
}

func runUpdate(ctx context.Context, s *Suite, v *Variant, round, n int) ([]Sample, error) {
	return timed(n, func(i int) error {
		res, err := v.DB.ExecContext(ctx, updateSQL, s.updateArgs(round, i)...)
		if err != nil {
			return err
		}
		return expectRows(res, 1)
	})
}

func runDelete(ctx context.Context, s *Suite, v *Variant, round, n int) ([]Sample, error) {
	ids, err := s.insertUntimed(ctx, v, round, n)
	if err != nil {
		return nil, err
	}
	return timed(n, func(i int) error {
		res, err := v.DB.ExecContext(ctx, deleteSQL, ids[i])
		if err != nil {
			return err
		}
		return expectRows(res, 1)
	})
}

func runGormCreate(ctx context.Context, s *Suite, v *Variant, round, n int) ([]Sample, error) {
	return timed(n, func(i int) error {
		tx, err := v.DB.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		var id int64
		if err := tx.QueryRowContext(ctx, gormCreateSQL, newRow(round, i)...).Scan(&id); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

func runGormSave(ctx context.Context, s *Suite, v *Variant, round, n int) ([]Sample, error) {
	return timed(n, func(i int) error {
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
		res, err := tx.ExecContext(ctx, gormSaveSQL, args...)
		if err == nil {
			err = expectRows(res, 1)
		}
		if err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

func runPrepared(ctx context.Context, s *Suite, v *Variant, round, n int) ([]Sample, error) {
	stmt, err := v.DB.PrepareContext(ctx, updateSQL)
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	return timed(n, func(i int) error {
		res, err := stmt.ExecContext(ctx, s.updateArgs(round, i)...)
		if err != nil {
			return err
		}
		return expectRows(res, 1)
	})
}

func runSelect(ctx context.Context, s *Suite, v *Variant, round, n int) ([]Sample, error) {
	dest := make([]any, 11)
	for i := range dest {
		dest[i] = new(any)
	}
	return timed(n, func(i int) error {
		return v.DB.QueryRowContext(ctx, selectSQL, s.pick(round, i)).Scan(dest...)
	})
}

// runConcurrent runs Conns goroutines, each doing n times: insert a row
// (RETURNING its key), update a seeded row by key, delete the new row.
func runConcurrent(ctx context.Context, s *Suite, v *Variant, round, n int) ([]Sample, error) {
	g := s.cfg.Conns
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, g)
	start := time.Now()
	for j := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := func() error {
				for k := range n {
					i := j*n + k
					var id int64
					if err := v.DB.QueryRowContext(ctx, insertSQL+` RETURNING id`, newRow(round, i)...).Scan(&id); err != nil {
						return err
					}
					res, err := v.DB.ExecContext(ctx, updateSQL, s.updateArgs(round, i)...)
					if err == nil {
						err = expectRows(res, 1)
					}
					if err != nil {
						return err
					}
					res, err = v.DB.ExecContext(ctx, deleteSQL, id)
					if err == nil {
						err = expectRows(res, 1)
					}
					if err != nil {
						return err
					}
				}
				return nil
			}()
			if err != nil {
				cancel()
				errs <- err
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return []Sample{{Duration: elapsed / time.Duration(3*g*n)}}, nil
}

// bulk resets v with reset, then times stmt and the Go heap it allocates.
func bulk(ctx context.Context, v *Variant, reset func() error, want int64, stmt string, args ...any) ([]Sample, error) {
	if err := reset(); err != nil {
		return nil, err
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	res, err := v.DB.ExecContext(ctx, stmt, args...)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if err != nil {
		return nil, err
	}
	if err := expectRows(res, want); err != nil {
		return nil, err
	}
	return []Sample{{Duration: elapsed, Alloc: after.TotalAlloc - before.TotalAlloc}}, nil
}

func runBulkUpdate(ctx context.Context, s *Suite, v *Variant, round, _ int) ([]Sample, error) {
	return bulk(ctx, v, func() error { return s.Seed(ctx, v) }, int64(s.cfg.Rows),
		bulkUpdateSQL, baseTime.Add(time.Duration(round)*time.Hour), 1, s.cfg.Rows)
}

func runBulkInsert(ctx context.Context, s *Suite, v *Variant, round, _ int) ([]Sample, error) {
	return bulk(ctx, v, func() error { return s.trim(ctx, v) }, int64(s.cfg.BulkInsert),
		bulkInsertSQL, round, baseTime, s.cfg.BulkInsert)
}
