package auditpgx

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ngrok/sqlmw"

	"github.com/auditpgx/auditpgx/internal/record"
	"github.com/auditpgx/auditpgx/internal/registry"
	"github.com/auditpgx/auditpgx/internal/rewrite"
	"github.com/auditpgx/auditpgx/internal/sqlq"
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
	return &interceptor{planner: &planner{reg: reg, cache: newPlanCache(4096, 64<<10), suppressed: newPlanCache(256, 64<<10)}}
}

// connection is what the interceptor needs of pgx's connection.
type connection interface {
	driver.QueryerContext
	driver.ExecerContext
}

func (i *interceptor) ConnExecContext(ctx context.Context, conn driver.ExecerContext, query string, args []driver.NamedValue) (driver.Result, error) {
	q, ok := conn.(connection)
	if !ok {
		return nil, errors.New("auditpgx: the wrapped connection cannot run queries")
	}
	if record.IsMigrating(ctx) {
		res, err := conn.ExecContext(ctx, query, args)
		i.ddlRan(conn)
		return res, err
	}
	p, err := i.planner.plan(ctx, q, query)
	if err != nil {
		return nil, err
	}
	var res driver.Result
	switch p.action {
	case audit:
		res, err = i.execAudited(ctx, q, p, query, args)
	case refuse:
		return nil, p.err
	default:
		if p.verify {
			res, err = i.execVerified(ctx, q, p, query, args, func() (driver.Result, error) { return conn.ExecContext(ctx, query, args) })
			break
		}
		res, err = conn.ExecContext(ctx, query, args)
	}
	i.after(conn, p, err)
	return res, err
}

func (i *interceptor) ConnQueryContext(ctx context.Context, conn driver.QueryerContext, query string, args []driver.NamedValue) (context.Context, driver.Rows, error) {
	if record.IsMigrating(ctx) {
		rows, err := conn.QueryContext(ctx, query, args)
		i.ddlRan(conn)
		return ctx, rows, err
	}
	p, err := i.planner.plan(ctx, conn, query)
	if err != nil {
		return ctx, nil, err
	}
	var rows driver.Rows
	switch p.action {
	case audit:
		rows, err = i.connQuery(ctx, conn, p, query, args)
	case refuse:
		return ctx, nil, p.err
	default:
		if c, ok := conn.(connection); ok && p.verify {
			rows, err = i.queryVerified(ctx, c, p, query, args, func() (driver.Rows, error) { return conn.QueryContext(ctx, query, args) })
			break
		}
		rows, err = conn.QueryContext(ctx, query, args)
	}
	i.after(conn, p, err)
	return ctx, rows, err
}

func (i *interceptor) connQuery(ctx context.Context, conn driver.QueryerContext, p *plan, query string, args []driver.NamedValue) (driver.Rows, error) {
	c, ok := conn.(connection)
	if !ok {
		return nil, errors.New("auditpgx: the wrapped connection cannot execute statements")
	}
	return i.queryAudited(ctx, c, p, query, args)
}

func (i *interceptor) ConnPrepareContext(ctx context.Context, conn driver.ConnPrepareContext, query string) (context.Context, driver.Stmt, error) {
	q, ok := conn.(connection)
	if !ok {
		return ctx, nil, errors.New("auditpgx: the wrapped connection cannot run queries")
	}
	if record.IsMigrating(ctx) {
		s, err := conn.PrepareContext(ctx, query)
		if err == nil {
			s = &effectStmt{Stmt: s, i: i, conn: q, plan: &plan{action: passThrough, changesCatalog: true}, query: query}
		}
		return ctx, s, err
	}
	p, err := i.planner.plan(ctx, q, query)
	if err != nil {
		return ctx, nil, err
	}
	switch p.action {
	case audit:
		if p.multi {
			// pgx cannot prepare several statements; let it say so.
			_, err := conn.PrepareContext(ctx, query)
			if err == nil {
				err = &UnauditedError{Reason: "a string of several statements cannot be prepared"}
			}
			return ctx, nil, err
		}
		return ctx, &stmt{i: i, conn: q, query: query, numInput: p.rewrite.NumParams}, nil
	case refuse:
		return ctx, nil, p.err
	}
	s, err := conn.PrepareContext(ctx, query)
	if err == nil && (p.changesCatalog || p.endsTx || p.setsSearchPath || p.verify) {
		s = &effectStmt{Stmt: s, i: i, conn: q, plan: p, query: query}
	}
	return ctx, s, err
}

// after notes what a statement that ran may have changed: the catalog
// (DDL), after which every description is re-read and every plan made
// anew, and how the connection resolves names (search_path, role, a
// temporary table). A failed statement may have changed the catalog too,
// inside a transaction that it aborted and that a ROLLBACK TO SAVEPOINT
// may rescue, so it counts as well.
func (i *interceptor) after(conn any, p *plan, err error) {
	if p.changesCatalog {
		i.ddlRan(conn)
	}
	if p.endsTx {
		i.txEnded(conn)
	}
	if err != nil {
		return
	}
	if p.setsSearchPath {
		i.planner.sessions.markChanged(conn)
	}
}

// bind returns the SQL to run and its arguments: the user's, after a check
// that their number matches the statement's parameters, and the actor.
// Leading pgx query options (QueryExecMode, result formats) stay in front.
func bind(ctx context.Context, p *plan, sql string, args []driver.NamedValue) (string, []driver.NamedValue, error) {
	lead := 0
options:
	for ; lead < len(args); lead++ {
		switch args[lead].Value.(type) {
		case pgx.QueryExecMode, pgx.QueryResultFormats, pgx.QueryResultFormatsByOID:
		case pgx.QueryRewriter:
			return "", nil, &UnauditedError{Reason: fmt.Sprintf("a pgx.QueryRewriter argument (%T) cannot be combined with auditing; use $n parameters", args[lead].Value)}
		default:
			break options
		}
	}
	if n := len(args) - lead; n != p.rewrite.NumParams {
		return "", nil, &ArgumentCountError{Want: p.rewrite.NumParams, Got: n}
	}
	actor, actorValue, hasActor := actorFrom(ctx)
	if hasActor {
		if err := ValidateActor(actor); err != nil {
			return "", nil, err
		}
	}
	ectx, err := entryContext(ctx)
	if err != nil {
		return "", nil, err
	}
	if ectx != "" && !p.withContext {
		return "", nil, noContextColumn(p)
	}
	if p.inlineActor {
		lit, clit := "NULL::text", "NULL::jsonb"
		if hasActor {
			lit = sqlq.Literal(actor) + "::text"
		}
		if ectx != "" {
			clit = sqlq.Literal(ectx) + "::jsonb"
		}
		if p.withContext {
			sql = strings.ReplaceAll(sql, contextMarker, clit)
		}
		return strings.ReplaceAll(sql, actorMarker, lit), args, nil
	}
	extra := 1
	if p.withContext {
		extra = 2
	}
	out := make([]driver.NamedValue, len(args)+extra)
	copy(out, args)
	out[len(args)] = driver.NamedValue{Ordinal: len(args) + 1}
	if hasActor {
		out[len(args)].Value = actorValue
	}
	if p.withContext {
		out[len(args)+1] = driver.NamedValue{Ordinal: len(args) + 2}
		if ectx != "" {
			out[len(args)+1].Value = ectx
		}
	}
	return sql, out, nil
}

// noContextColumn is the error of a write that carries an entry context
// to an entry table without the context column.
func noContextColumn(p *plan) error {
	return fmt.Errorf("%w: run, as the entry table's owner, %s (auditpgx.Migrate does); until then only writes without an entry context are audited",
		ErrNoContextColumn, record.AddContextColumn(p.entryTable.Quoted()))
}

// execAudited runs the rewrite's exec form, again after a re-read of the
// catalog if the table changed under a cached rewrite (see runAudited).
func (i *interceptor) execAudited(ctx context.Context, c connection, p *plan, query string, args []driver.NamedValue) (driver.Result, error) {
	var res driver.Result
	err := i.runAudited(ctx, c, p, query, execForm, func(p *plan) (err error) {
		res, err = execRewrite(ctx, c, p, args)
		return err
	})
	return res, err
}

// queryAudited runs the rewrite's query form, with the same retry.
func (i *interceptor) queryAudited(ctx context.Context, c connection, p *plan, query string, args []driver.NamedValue) (driver.Rows, error) {
	var rows driver.Rows
	err := i.runAudited(ctx, c, p, query, queryForm, func(p *plan) (err error) {
		rows, err = queryRewrite(ctx, c, p, args)
		return err
	})
	return rows, err
}

// execForm and queryForm are the SQL a plan sends for Exec and for Query.
func execForm(p *plan) string  { return p.rewrite.ExecSQL }
func queryForm(p *plan) string { return p.rewrite.QuerySQL }

// runAudited runs an audited statement with run, and runs it again with a
// new plan after a re-read of the catalog if the table changed under a
// cached rewrite (see retry). The error's position is mapped back from
// the SQL sent (sent of the last plan) to query.
func (i *interceptor) runAudited(ctx context.Context, c connection, p *plan, query string, sent func(*plan) string, run func(*plan) error) error {
	err := run(p)
	if err == nil {
		return nil // without the error inspection below, which allocates
	}
	for attempt := 0; attempt < maxRetries; attempt++ {
		np, ok := i.retry(ctx, c, p, query, err)
		if !ok {
			break
		}
		p = np
		if err = run(p); err == nil {
			return nil
		}
	}
	err = staleError(err, sent(p))
	remapPosition(err, sent(p), query)
	return err
}

// maxRetries is how many times an audited statement outside a transaction
// is run again after DDL by another session changed its table under it.
const maxRetries = 3

// StaleError is returned for an audited statement that failed because its
// table changed (DDL by another session) between planning and running, and
// that could not be run again: inside a transaction, whose failed statement
// aborted it, or after maxRetries. Nothing was written. It wraps the
// server's error (errors.As with *pgconn.PgError works).
type StaleError struct {
	Err error
}

func (e *StaleError) Error() string {
	return "auditpgx: the table changed while the statement ran (DDL by another session); nothing was written, run it again: " + e.Err.Error()
}

func (e *StaleError) Unwrap() error { return e.Err }

// staleError wraps an error of the rewrite's guard in a StaleError; sent
// is the SQL that failed, before its error's position is mapped back.
func staleError(err error, sent string) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "22P02" && strings.Contains(pgErr.Message, rewrite.StaleMarker) {
		return &StaleError{Err: err}
	}
	if errors.As(err, &pgErr) && shapeChanged(pgErr, sent) {
		return &StaleError{Err: err}
	}
	if errors.As(err, &pgErr) && pgErr.Code == "22P02" && strings.Contains(pgErr.Message, record.WALMarker) {
		// The reason follows the marker in the failed cast's text.
		reason := pgErr.Message[strings.Index(pgErr.Message, record.WALMarker)+len(record.WALMarker):]
		reason = strings.TrimSuffix(strings.TrimPrefix(reason, ": "), `"`)
		return fmt.Errorf("%w: %s; nothing was written: %w", ErrWALSinkUnavailable, reason, err)
	}
	return err
}

// shapeChanged reports whether pgErr is the failure of the guard's column
// check (rewrite.ShapeChanged) in the SQL sent: a syntax error (42601) of a
// prepared statement analysed again after its table changed, for which the
// server gives no position, or of a statement analysed anew that points
// into the check. The message is not compared: the server translates it
// under lc_messages.
func shapeChanged(pgErr *pgconn.PgError, sent string) bool {
	return pgErr.Code == "42601" && (pgErr.Position == 0 || rewrite.InShapeCheck(sent, int(pgErr.Position)))
}

// remapPosition makes a server error's position point into the caller's
// statement rather than into its rewrite: to the same token, when that
// token occurs exactly once in the original, and otherwise to nothing (0).
func remapPosition(err error, sent, original string) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Position <= 0 {
		return
	}
	pos := int(pgErr.Position)
	pgErr.Position = 0
	runes := []rune(sent)
	if pos > len(runes) {
		return
	}
	end := pos - 1
	for end < len(runes) && !strings.ContainsRune(" \t\n,()", runes[end]) {
		end++
	}
	token := string(runes[pos-1 : end])
	if token == "" || strings.Count(original, token) != 1 {
		return
	}
	pgErr.Position = int32(len([]rune(original[:strings.Index(original, token)]))) + 1
}

// retry decides what to do when an audited statement failed with an error
// that a table changed by DDL run elsewhere would cause: a column or table
// the rewrite names no longer exists, the written table gained a column
// (see shapeChanged), or a cached plan's result type changed. The tables'
// descriptions are re-read either way. The statement is run again, once,
// with a new rewrite only when no transaction is open: then the failed
// statement, atomic on its own, left nothing behind.
func (i *interceptor) retry(ctx context.Context, c connection, p *plan, query string, err error) (*plan, bool) {
	var pgErr *pgconn.PgError
	if err == nil || !errors.As(err, &pgErr) {
		return nil, false
	}
	switch {
	case pgErr.Code == "42703", pgErr.Code == "42P01", pgErr.Code == "0A000", pgErr.Code == "42804":
	case shapeChanged(pgErr, p.rewrite.ExecSQL): // the check is in the forms' common head
	case pgErr.Code == "22P02" && strings.Contains(pgErr.Message, rewrite.StaleMarker):
	default:
		return nil, false
	}
	for _, t := range p.tables {
		t.Invalidate() // re-read at the next use; other plans stay cached
	}
	if !idle(c) {
		return nil, false
	}
	np, perr := i.planner.plan(ctx, c, query)
	if perr != nil || np.action != audit {
		return nil, false
	}
	return np, true
}

// idle reports whether the pgx connection behind c is outside any
// transaction.
func idle(c any) bool {
	id, ok := connID(c)
	if !ok {
		return false
	}
	if pc, ok := id.(*pgx.Conn); ok {
		return pc.PgConn().TxStatus() == 'I'
	}
	pc, ok := id.(interface{ Conn() *pgx.Conn })
	return ok && pc.Conn().PgConn().TxStatus() == 'I'
}

// execRewrite runs the rewrite's exec form. When it counts, it returns the
// number of rows the write affected as its only row; otherwise its command
// tag is the original statement's.
func execRewrite(ctx context.Context, c connection, p *plan, args []driver.NamedValue) (driver.Result, error) {
	sql, bound, err := bind(ctx, p, p.rewrite.ExecSQL, args)
	if err != nil {
		return nil, err
	}
	if p.truncate {
		// Two statements: only the simple protocol takes them.
		bound = append([]driver.NamedValue{{Ordinal: 1, Value: pgx.QueryExecModeSimpleProtocol}}, bound...)
	}
	if !p.rewrite.ExecCounts {
		return c.ExecContext(ctx, sql, bound)
	}
	rows, err := c.QueryContext(ctx, sql, bound)
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

func queryRewrite(ctx context.Context, c connection, p *plan, args []driver.NamedValue) (driver.Rows, error) {
	if p.truncate {
		// TRUNCATE returns no rows: run it as Exec, so that every error,
		// the entries' included, comes back from this call.
		if _, err := execRewrite(ctx, c, p, args); err != nil {
			return nil, err
		}
		return noRows{}, nil
	}
	sql, bound, err := bind(ctx, p, p.rewrite.QuerySQL, args)
	if err != nil {
		return nil, err
	}
	return c.QueryContext(ctx, sql, bound)
}

// noRows is the result of a statement that returns no rows and no columns.
type noRows struct{}

func (noRows) Columns() []string              { return nil }
func (noRows) Close() error                   { return nil }
func (noRows) Next(dest []driver.Value) error { return io.EOF }
