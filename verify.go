package auditpgx

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"

	"github.com/auditpgx/auditpgx/internal/catalog"
	"github.com/auditpgx/auditpgx/internal/registry"
)

// A write that passes through although a name it writes is a registered
// name (the registered table is absent, or the name means another table of
// that name) was planned from what the name meant a moment before it runs.
// Another client may create or rename the registered table in between; the
// write would then reach it with no entry. Such writes run verified: inside
// a transaction (or a savepoint of the caller's), after which the tables
// the statement locked for writing are matched against the registrations.
// If one of them is registered, the write is undone and planned again, now
// audited. Only these writes pay for it (four more round trips); they are
// rare, and most of them fail with 42P01.

// verifySavepoint is the savepoint a verified write runs under inside the
// caller's transaction.
const verifySavepoint = "__auditpgx_verify"

// errReplan reports that a verified write reached a registered table and
// was undone.
var errReplan = errors.New("auditpgx: the write reached a registered table")

// verified runs a write (run) as described above. It returns errReplan
// when the write was undone because it reached a registered table.
func (i *interceptor) verified(ctx context.Context, c connection, p *plan, run func() error) error {
	inTx := !idle(c)
	cleanup := context.WithoutCancel(ctx)
	begin, undo, finish := "BEGIN", "ROLLBACK", "COMMIT"
	if inTx {
		begin = "SAVEPOINT " + verifySavepoint
		undo = "ROLLBACK TO SAVEPOINT " + verifySavepoint + "; RELEASE SAVEPOINT " + verifySavepoint
		finish = "RELEASE SAVEPOINT " + verifySavepoint
	}
	if _, err := c.ExecContext(ctx, begin, nil); err != nil {
		return err
	}
	before, err := lockedForWrite(ctx, c)
	if err == nil {
		err = run()
		if err != nil && inTx {
			// As without the savepoint, the failure aborts the caller's
			// transaction; the savepoint goes with it.
			return err
		}
	}
	if err == nil {
		err = i.wroteRegistered(ctx, c, before, p.skipped)
	}
	if err != nil {
		if _, uerr := c.ExecContext(cleanup, undo, nil); uerr != nil {
			return errors.Join(err, uerr)
		}
		return err
	}
	_, err = c.ExecContext(cleanup, finish, nil)
	return err
}

// lockedForWrite returns the relations the session has locked for writing.
func lockedForWrite(ctx context.Context, c connection) ([]int64, error) {
	rows, err := c.QueryContext(ctx, catalog.WriteLocksQuery, nil)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []int64{}
	dest := make([]driver.Value, 1)
	for {
		err := rows.Next(dest)
		if errors.Is(err, io.EOF) {
			return out, rows.Close()
		}
		if err != nil {
			return nil, err
		}
		oid, ok := dest[0].(int64)
		if !ok {
			return nil, fmt.Errorf("auditpgx: lock query returned %T", dest[0])
		}
		out = append(out, oid)
	}
}

// wroteRegistered returns errReplan if a relation locked for writing since
// before is a registered table, or a partition or child of one, other than
// those skipped.
func (i *interceptor) wroteRegistered(ctx context.Context, c connection, before []int64, skipped []*registry.Table) error {
	rels, err := catalog.Relations(ctx, c, catalog.NewWriteLocksQuery, before)
	if err != nil {
		return err
	}
	for _, rel := range rels {
		if t, err := i.planner.reg.Match(rel.Schema, rel.Rel, rel.Visible); err != nil || (t != nil && !slices.Contains(skipped, t)) {
			return errReplan
		}
	}
	return nil
}

// execVerified runs a pass-through write verified, and when it reached a
// registered table, plans it again and runs it audited.
func (i *interceptor) execVerified(ctx context.Context, c connection, p *plan, query string, args []driver.NamedValue, exec func() (driver.Result, error)) (driver.Result, error) {
	var res driver.Result
	err := i.verified(ctx, c, p, func() error {
		var err error
		res, err = exec()
		return err
	})
	if !errors.Is(err, errReplan) {
		return res, err
	}
	np, err := i.replan(ctx, c, query)
	if err != nil {
		return nil, err
	}
	if np.action == passThrough {
		return exec() // AllowUnaudited: logged by the planner
	}
	return i.execAudited(ctx, c, np, query, args)
}

// replan plans a write again after a verified run reached a registered
// table; a plan that still does not audit it is refused.
func (i *interceptor) replan(ctx context.Context, c connection, query string) (*plan, error) {
	i.planner.reg.InvalidateAll()
	np, err := i.planner.plan(ctx, c, query)
	if err != nil {
		return nil, err
	}
	switch {
	case np.action == audit:
		return np, nil
	case np.action == refuse:
		return nil, np.err
	case !np.verify && i.planner.reg.Config().AllowUnaudited:
		// A refusal turned into a pass-through by AllowUnaudited.
		return np, nil
	}
	return nil, &UnauditedError{Reason: "the statement reached a registered table that changed while it was planned; nothing was written"}
}

// queryVerified is execVerified for a write that returns rows: the rows
// are read in full inside the verified transaction, then handed over.
func (i *interceptor) queryVerified(ctx context.Context, c connection, p *plan, query string, args []driver.NamedValue, query1 func() (driver.Rows, error)) (driver.Rows, error) {
	var rows *bufferedRows
	err := i.verified(ctx, c, p, func() error {
		r, err := query1()
		if err != nil {
			return err
		}
		rows, err = buffer(r)
		return err
	})
	if !errors.Is(err, errReplan) {
		if err != nil {
			return nil, err
		}
		return rows, nil
	}
	np, err := i.replan(ctx, c, query)
	if err != nil {
		return nil, err
	}
	if np.action == passThrough {
		return query1() // AllowUnaudited: logged by the planner
	}
	return i.queryAudited(ctx, c, np, query, args)
}

// bufferedRows holds a result read in full, and answers column type
// questions as the rows it was read from did.
type bufferedRows struct {
	src  driver.Rows
	cols []string
	vals [][]driver.Value
}

var (
	_ driver.RowsColumnTypeDatabaseTypeName = (*bufferedRows)(nil)
	_ driver.RowsColumnTypeLength           = (*bufferedRows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*bufferedRows)(nil)
	_ driver.RowsColumnTypeScanType         = (*bufferedRows)(nil)
)

func buffer(r driver.Rows) (*bufferedRows, error) {
	b := &bufferedRows{src: r, cols: r.Columns()}
	for {
		dest := make([]driver.Value, len(b.cols))
		err := r.Next(dest)
		if errors.Is(err, io.EOF) {
			return b, r.Close()
		}
		if err != nil {
			r.Close()
			return nil, err
		}
		for i, v := range dest {
			if bs, ok := v.([]byte); ok {
				dest[i] = append([]byte(nil), bs...)
			}
		}
		b.vals = append(b.vals, dest)
	}
}

func (b *bufferedRows) Columns() []string { return b.cols }
func (b *bufferedRows) Close() error      { return nil }
func (b *bufferedRows) Next(dest []driver.Value) error {
	if len(b.vals) == 0 {
		return io.EOF
	}
	copy(dest, b.vals[0])
	b.vals = b.vals[1:]
	return nil
}

func (b *bufferedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := b.src.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (b *bufferedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := b.src.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (b *bufferedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := b.src.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (b *bufferedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := b.src.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}
