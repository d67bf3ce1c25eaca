package auditpgx

import (
	"context"
	"database/sql/driver"
	"errors"
)

// stmt is a prepared audited statement. It is not prepared on the server:
// each execution runs the rewrite, which pgx prepares and caches itself
// (in its default exec mode), so repeated executions cost the same. The
// plan is looked up at each execution (a cache hit), so that a rewrite
// redone after DDL is used.
type stmt struct {
	i        *interceptor
	conn     connection
	query    string
	numInput int
}

var (
	_ driver.Stmt             = (*stmt)(nil)
	_ driver.StmtExecContext  = (*stmt)(nil)
	_ driver.StmtQueryContext = (*stmt)(nil)
)

func (s *stmt) Close() error { return nil }

func (s *stmt) NumInput() int { return s.numInput }

func (s *stmt) plan(ctx context.Context) (*plan, error) {
	p, err := s.i.planner.plan(ctx, s.conn, s.query)
	if err != nil {
		return nil, err
	}
	switch p.action {
	case audit:
		return p, nil
	case refuse:
		return nil, p.err
	}
	return nil, errors.New("auditpgx: a prepared audited statement is no longer audited; prepare it again")
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	p, err := s.plan(ctx)
	if err != nil {
		return nil, err
	}
	return s.i.execAudited(ctx, s.conn, p, s.query, args)
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	p, err := s.plan(ctx)
	if err != nil {
		return nil, err
	}
	return s.i.queryAudited(ctx, s.conn, p, s.query, args)
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

// effectStmt is a prepared statement that passes through but may change
// what later statements mean (DDL, SET search_path, COMMIT): after each
// execution the interceptor notes it, as for unprepared statements.
type effectStmt struct {
	driver.Stmt
	i     *interceptor
	conn  connection
	plan  *plan
	query string
}

var (
	_ driver.StmtExecContext  = (*effectStmt)(nil)
	_ driver.StmtQueryContext = (*effectStmt)(nil)
)

func (s *effectStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	sc, ok := s.Stmt.(driver.StmtExecContext)
	if !ok {
		return nil, errors.New("auditpgx: the wrapped statement cannot execute with a context")
	}
	if s.plan.verify {
		return s.i.execVerified(ctx, s.conn, s.plan, s.query, args, func() (driver.Result, error) { return sc.ExecContext(ctx, args) })
	}
	res, err := sc.ExecContext(ctx, args)
	s.i.after(s.conn, s.plan, err)
	return res, err
}

func (s *effectStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	sc, ok := s.Stmt.(driver.StmtQueryContext)
	if !ok {
		return nil, errors.New("auditpgx: the wrapped statement cannot query with a context")
	}
	if s.plan.verify {
		return s.i.queryVerified(ctx, s.conn, s.plan, s.query, args, func() (driver.Rows, error) { return sc.QueryContext(ctx, args) })
	}
	rows, err := sc.QueryContext(ctx, args)
	s.i.after(s.conn, s.plan, err)
	return rows, err
}
