package auditpgx

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/ngrok/sqlmw"

	"github.com/auditpgx/auditpgx/registry"
)

// interceptor sits between database/sql and pgx's stdlib driver. Statements
// that write no audited table reach pgx unchanged; audited writes are run as
// their rewrite, which performs the write and records its entries at once.
type interceptor struct {
	sqlmw.NullInterceptor
	planner *planner
}

var _ sqlmw.Interceptor = (*interceptor)(nil)

func newInterceptor(reg *registry.Registry) *interceptor {
	return &interceptor{planner: &planner{reg: reg, cache: newPlanCache(4096, 64<<10)}}
}

func (i *interceptor) ConnExecContext(ctx context.Context, conn driver.ExecerContext, query string, args []driver.NamedValue) (driver.Result, error) {
	q, ok := conn.(driver.QueryerContext)
	if !ok {
		return nil, errors.New("auditpgx: the wrapped connection cannot run queries")
	}
	p, err := i.planner.plan(ctx, q, query)
	if err != nil {
		return nil, err
	}
	switch p.action {
	case audit:
		return execAudited(ctx, q, p, args)
	case refuse:
		return nil, p.err
	}
	res, err := conn.ExecContext(ctx, query, args)
	i.afterDDL(p, err)
	return res, err
}

func (i *interceptor) ConnQueryContext(ctx context.Context, conn driver.QueryerContext, query string, args []driver.NamedValue) (context.Context, driver.Rows, error) {
	p, err := i.planner.plan(ctx, conn, query)
	if err != nil {
		return ctx, nil, err
	}
	switch p.action {
	case audit:
		rows, err := queryAudited(ctx, conn, p, args)
		return ctx, rows, err
	case refuse:
		return ctx, nil, p.err
	}
	rows, err := conn.QueryContext(ctx, query, args)
	i.afterDDL(p, err)
	return ctx, rows, err
}

func (i *interceptor) ConnPrepareContext(ctx context.Context, conn driver.ConnPrepareContext, query string) (context.Context, driver.Stmt, error) {
	q, ok := conn.(driver.QueryerContext)
	if !ok {
		return ctx, nil, errors.New("auditpgx: the wrapped connection cannot run queries")
	}
	p, err := i.planner.plan(ctx, q, query)
	if err != nil {
		return ctx, nil, err
	}
	switch p.action {
	case audit:
		return ctx, &stmt{conn: q, plan: p}, nil
	case refuse:
		return ctx, nil, p.err
	}
	s, err := conn.PrepareContext(ctx, query)
	return ctx, s, err
}

// afterDDL forgets the catalog description of audited tables that a
// statement may have altered, so the next write re-reads it.
func (i *interceptor) afterDDL(p *plan, err error) {
	if err != nil {
		return
	}
	for _, t := range p.invalidates {
		i.planner.reg.Invalidate(t)
	}
}

// bind appends the actor to the statement's arguments, after checking
// that their number matches the statement's parameters. Leading pgx query
// options (QueryExecMode, result formats) are kept in front.
func bind(ctx context.Context, p *plan, args []driver.NamedValue) ([]driver.NamedValue, error) {
	lead := 0
options:
	for ; lead < len(args); lead++ {
		switch args[lead].Value.(type) {
		case pgx.QueryExecMode, pgx.QueryResultFormats, pgx.QueryResultFormatsByOID:
		case pgx.QueryRewriter:
			return nil, &UnauditedError{Reason: fmt.Sprintf("a pgx.QueryRewriter argument (%T) cannot be combined with auditing; use $n parameters", args[lead].Value)}
		default:
			break options
		}
	}
	if n := len(args) - lead; n != p.rewrite.NumParams {
		return nil, &ArgumentCountError{Want: p.rewrite.NumParams, Got: n}
	}
	out := make([]driver.NamedValue, len(args)+1)
	copy(out, args)
	var actor any
	if a, ok := ActorFrom(ctx); ok {
		actor = a
	}
	out[len(args)] = driver.NamedValue{Ordinal: len(args) + 1, Value: actor}
	return out, nil
}

// execAudited runs the rewrite's exec form, which returns the number of
// rows the write affected as its only row.
func execAudited(ctx context.Context, q driver.QueryerContext, p *plan, args []driver.NamedValue) (driver.Result, error) {
	bound, err := bind(ctx, p, args)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, p.rewrite.ExecSQL, bound)
	if err != nil {
		return nil, err
	}
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		rows.Close()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("auditpgx: audited statement returned no row count")
		}
		return nil, err
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	n, ok := dest[0].(int64)
	if !ok {
		return nil, fmt.Errorf("auditpgx: audited statement returned a row count of type %T", dest[0])
	}
	return driver.RowsAffected(n), nil
}

func queryAudited(ctx context.Context, q driver.QueryerContext, p *plan, args []driver.NamedValue) (driver.Rows, error) {
	bound, err := bind(ctx, p, args)
	if err != nil {
		return nil, err
	}
	return q.QueryContext(ctx, p.rewrite.QuerySQL, bound)
}

// stmt is a prepared audited statement. It is not prepared on the server:
// each execution runs the rewrite, which pgx prepares and caches itself
// (in its default exec mode), so repeated executions cost the same.
type stmt struct {
	conn driver.QueryerContext
	plan *plan
}

var (
	_ driver.Stmt             = (*stmt)(nil)
	_ driver.StmtExecContext  = (*stmt)(nil)
	_ driver.StmtQueryContext = (*stmt)(nil)
)

func (s *stmt) Close() error { return nil }

func (s *stmt) NumInput() int { return s.plan.rewrite.NumParams }

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return execAudited(ctx, s.conn, s.plan, args)
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return queryAudited(ctx, s.conn, s.plan, args)
}

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), named(args))
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), named(args))
}

func named(args []driver.Value) []driver.NamedValue {
	out := make([]driver.NamedValue, len(args))
	for i, v := range args {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return out
}
