package auditpgx

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// The pgx front: applications that use pgx without database/sql (pgxpool,
// pgx.Conn, pgx.Tx, sqlc's pgx/v5 output) reach the same planner and
// rewrite through Conn, Pool and their transactions. Statements are
// planned from their text as the driver plans them; the planner reads the
// catalog through pgxQueryer, and the statement itself runs on the
// caller's *pgx.Conn, so that rows, field descriptions, command tags and
// errors are pgx's own.

// pgxQueryer lets the planner and the verified-write machinery read
// through a *pgx.Conn as they read through database/sql's driver: text
// results, integers as int64, booleans as bool, everything else as string.
type pgxQueryer struct {
	conn *pgx.Conn
}

var _ connection = (*pgxQueryer)(nil)

func (q *pgxQueryer) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	all := make([]any, 1, len(args)+1)
	all[0] = pgx.QueryResultFormats{pgx.TextFormatCode}
	for _, a := range args {
		switch a.Value.(type) {
		case pgx.QueryResultFormats, pgx.QueryResultFormatsByOID: // text it is
		default:
			all = append(all, a.Value)
		}
	}
	rows, err := q.conn.Query(ctx, query, all...)
	if err != nil {
		return nil, err
	}
	return &textRows{rows: rows}, nil
}

func (q *pgxQueryer) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	tag, err := q.conn.Exec(ctx, query, anyArgs(args)...)
	if err != nil {
		return nil, err
	}
	return driver.RowsAffected(tag.RowsAffected()), nil
}

// anyArgs are a statement's arguments as pgx takes them.
func anyArgs(args []driver.NamedValue) []any {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = a.Value
	}
	return out
}

// namedArgs are pgx arguments as database/sql's driver hands them over.
func namedArgs(args []any) []driver.NamedValue {
	out := make([]driver.NamedValue, len(args))
	for i, a := range args {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	return out
}

// textRows reads a text-format result as database/sql's driver values.
type textRows struct {
	rows pgx.Rows
}

func (r *textRows) Columns() []string {
	fds := r.rows.FieldDescriptions()
	out := make([]string, len(fds))
	for i, fd := range fds {
		out[i] = fd.Name
	}
	return out
}

func (r *textRows) Close() error {
	r.rows.Close()
	return r.rows.Err()
}

func (r *textRows) Next(dest []driver.Value) error {
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	fds := r.rows.FieldDescriptions()
	for i, raw := range r.rows.RawValues() {
		if raw == nil {
			dest[i] = nil
			continue
		}
		switch fds[i].DataTypeOID {
		case pgtype.BoolOID:
			dest[i] = len(raw) > 0 && raw[0] == 't'
		case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.OIDOID:
			n, err := strconv.ParseInt(string(raw), 10, 64)
			if err != nil {
				return fmt.Errorf("auditpgx: column %s: %w", fds[i].Name, err)
			}
			dest[i] = n
		default:
			dest[i] = string(raw)
		}
	}
	return nil
}

// front runs statements through the planner on a *pgx.Conn.
type front struct {
	i *interceptor
}

// splitOptions returns the leading pgx query options of args (exec mode,
// result formats) and the arguments after them.
func splitOptions(args []any) (opts, rest []any) {
	n := 0
	for ; n < len(args); n++ {
		switch args[n].(type) {
		case pgx.QueryExecMode, pgx.QueryResultFormats, pgx.QueryResultFormatsByOID:
			continue
		}
		break
	}
	return args[:n], args[n:]
}

// rewriteArgs applies a pgx.QueryRewriter argument (pgx.NamedArgs,
// pgx.StrictNamedArgs) as pgx would, so that the planner sees $n
// parameters.
func rewriteArgs(ctx context.Context, conn *pgx.Conn, sql string, args []any) (string, []any, error) {
	opts, rest := splitOptions(args)
	if len(rest) == 0 {
		return sql, args, nil
	}
	rw, ok := rest[0].(pgx.QueryRewriter)
	if !ok {
		return sql, args, nil
	}
	sql, rewritten, err := rw.RewriteQuery(ctx, conn, sql, rest[1:])
	if err != nil {
		return "", nil, err
	}
	return sql, append(append([]any{}, opts...), rewritten...), nil
}

// plan plans sql on conn.
func (f *front) plan(ctx context.Context, q *pgxQueryer, sql string) (*plan, error) {
	return f.i.planner.plan(ctx, q, sql)
}

func (f *front) exec(ctx context.Context, conn *pgx.Conn, sql string, args []any) (pgconn.CommandTag, error) {
	sql, args, err := rewriteArgs(ctx, conn, sql, args)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	q := &pgxQueryer{conn: conn}
	p, err := f.plan(ctx, q, sql)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	var tag pgconn.CommandTag
	switch p.action {
	case audit:
		tag, err = f.execAudited(ctx, q, p, sql, args)
	case refuse:
		return pgconn.CommandTag{}, p.err
	default:
		if p.verify {
			tag, err = f.execVerified(ctx, q, p, sql, args)
			break
		}
		tag, err = conn.Exec(ctx, sql, args...)
	}
	f.i.after(q, p, err)
	return tag, err
}

// execAudited runs an audited write's exec form natively, and makes the
// command tag the original's: a counted rewrite returns the count only.
func (f *front) execAudited(ctx context.Context, q *pgxQueryer, p *plan, sql string, args []any) (pgconn.CommandTag, error) {
	var tag pgconn.CommandTag
	err := f.i.runAudited(ctx, q, p, sql, execForm, func(p *plan) error {
		if !p.rewrite.ExecCounts {
			text, bound, err := bind(ctx, p, p.rewrite.ExecSQL, namedArgs(args))
			if err != nil {
				return err
			}
			if p.truncate {
				bound = append([]driver.NamedValue{{Value: pgx.QueryExecModeSimpleProtocol}}, bound...)
			}
			tag, err = q.conn.Exec(ctx, text, anyArgs(bound)...)
			if err == nil && p.tag != "" {
				// The exec form's last statement counts the original's
				// rows, under its own verb (a string of several statements
				// ends in its rows' SELECT, an INSERT or a DELETE may end
				// in its entries' INSERT) or the original's: the tag is the
				// original's verb with that count.
				tag = countTag(p.tag, tag.RowsAffected())
			}
			return err
		}
		res, err := execRewrite(ctx, q, p, namedArgs(args))
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		tag = countTag(p.tag, n)
		return nil
	})
	return tag, err
}

// countTag is the command tag of a write of n rows whose tag begins with
// prefix ("UPDATE", "INSERT 0", …).
func countTag(prefix string, n int64) pgconn.CommandTag {
	if prefix == "" {
		prefix = "SELECT"
	}
	return pgconn.NewCommandTag(prefix + " " + strconv.FormatInt(n, 10))
}

func (f *front) execVerified(ctx context.Context, q *pgxQueryer, p *plan, sql string, args []any) (pgconn.CommandTag, error) {
	var tag pgconn.CommandTag
	err := f.i.verified(ctx, q, p, func() (err error) {
		tag, err = q.conn.Exec(ctx, sql, args...)
		return err
	})
	if !errors.Is(err, errReplan) {
		return tag, err
	}
	np, err := f.i.replan(ctx, q, sql)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	if np.action == passThrough {
		var tag pgconn.CommandTag
		tag, err = q.conn.Exec(ctx, sql, args...)
		return tag, err
	}
	return f.execAudited(ctx, q, np, sql, args)
}

func (f *front) query(ctx context.Context, conn *pgx.Conn, sql string, args []any) (pgx.Rows, error) {
	sql, args, err := rewriteArgs(ctx, conn, sql, args)
	if err != nil {
		return nil, err
	}
	q := &pgxQueryer{conn: conn}
	p, err := f.plan(ctx, q, sql)
	if err != nil {
		return nil, err
	}
	var rows pgx.Rows
	switch p.action {
	case audit:
		rows, err = f.queryAudited(ctx, q, p, sql, args)
	case refuse:
		return nil, p.err
	default:
		if p.verify {
			rows, err = f.queryVerified(ctx, q, p, sql, args)
			break
		}
		rows, err = conn.Query(ctx, sql, args...)
	}
	f.i.after(q, p, err)
	return rows, err
}

func (f *front) queryAudited(ctx context.Context, q *pgxQueryer, p *plan, sql string, args []any) (pgx.Rows, error) {
	if p.multi && simpleProtocol(q.conn, args) {
		// pgx's Query returns the first statement's result of such a
		// string, whose command tag the rewrite does not keep.
		return nil, &UnauditedError{Reason: "a string of several statements that writes a registered table is audited through Exec only: pgx's Query reads only its first statement's result"}
	}
	var rows pgx.Rows
	err := f.i.runAudited(ctx, q, p, sql, queryForm, func(p *plan) error {
		if p.truncate {
			tag, err := f.execAudited(ctx, q, p, sql, args)
			if err != nil {
				return err
			}
			rows = &bufferedPgxRows{tag: tag, typeMap: q.conn.TypeMap(), i: -1}
			return nil
		}
		if !p.rewrite.Returns && p.rewrite.RowsSQL != "" {
			// The original returns no rows: RowsSQL's zero-column rows,
			// one per written row, are read here for the count.
			text, bound, err := bind(ctx, p, p.rewrite.RowsSQL, namedArgs(args))
			if err != nil {
				return err
			}
			r, err := q.conn.Query(ctx, text, anyArgs(bound)...)
			if err != nil {
				return err
			}
			rows, err = countedRows(r, p.tag, q.conn.TypeMap())
			return err
		}
		text, bound, err := bind(ctx, p, p.rewrite.QuerySQL, namedArgs(args))
		if err != nil {
			return err
		}
		r, err := q.conn.Query(ctx, text, anyArgs(bound)...)
		if err != nil {
			return err
		}
		// An error of the statement comes with its first row; pgx.Conn's
		// Query reports it at Err, and so does this.
		rows = &taggedRows{Rows: r, prefix: p.tag}
		return nil
	})
	return rows, err
}

// queryVerified runs a pass-through write that returns rows verified; the
// rows are read in full inside the verified transaction.
func (f *front) queryVerified(ctx context.Context, q *pgxQueryer, p *plan, sql string, args []any) (pgx.Rows, error) {
	var buf *bufferedPgxRows
	err := f.i.verified(ctx, q, p, func() error {
		r, err := q.conn.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		buf, err = bufferPgx(r, q.conn.TypeMap())
		return err
	})
	if !errors.Is(err, errReplan) {
		if err != nil {
			return nil, err
		}
		return buf, nil
	}
	np, err := f.i.replan(ctx, q, sql)
	if err != nil {
		return nil, err
	}
	if np.action == passThrough {
		return q.conn.Query(ctx, sql, args...)
	}
	return f.queryAudited(ctx, q, np, sql, args)
}

// simpleProtocol reports whether a statement with these arguments runs
// with the simple protocol, the only one that takes several statements.
func simpleProtocol(conn *pgx.Conn, args []any) bool {
	mode := conn.Config().DefaultQueryExecMode
	opts, _ := splitOptions(args)
	for _, o := range opts {
		if m, ok := o.(pgx.QueryExecMode); ok {
			mode = m
		}
	}
	return mode == pgx.QueryExecModeSimpleProtocol
}

// taggedRows are an audited write's rows, whose command tag is the
// original's: the rewrite is a SELECT, which reports SELECT n.
type taggedRows struct {
	pgx.Rows
	prefix string
}

func (r *taggedRows) CommandTag() pgconn.CommandTag {
	tag := r.Rows.CommandTag()
	if r.prefix == "" || !tag.Select() {
		return tag
	}
	return countTag(r.prefix, tag.RowsAffected())
}

// countedRows reads RowsSQL's zero-column rows, one per written row, and
// returns the original's result: no rows, and the tag prefix with their
// count.
func countedRows(r pgx.Rows, prefix string, typeMap *pgtype.Map) (pgx.Rows, error) {
	fields := r.FieldDescriptions()
	for r.Next() {
	}
	r.Close()
	if err := r.Err(); err != nil {
		return nil, err
	}
	return &bufferedPgxRows{fields: fields, tag: countTag(prefix, r.CommandTag().RowsAffected()), typeMap: typeMap, i: -1}, nil
}

// bufferedPgxRows are rows read in full, as pgx.Rows.
type bufferedPgxRows struct {
	fields  []pgconn.FieldDescription
	values  [][][]byte
	tag     pgconn.CommandTag
	typeMap *pgtype.Map
	i       int
	err     error
	closed  bool
}

func bufferPgx(r pgx.Rows, typeMap *pgtype.Map) (*bufferedPgxRows, error) {
	b := &bufferedPgxRows{fields: append([]pgconn.FieldDescription(nil), r.FieldDescriptions()...), typeMap: typeMap, i: -1}
	for r.Next() {
		raw := r.RawValues()
		row := make([][]byte, len(raw))
		for i, v := range raw {
			if v != nil {
				row[i] = append([]byte{}, v...)
			}
		}
		b.values = append(b.values, row)
	}
	r.Close()
	if err := r.Err(); err != nil {
		return nil, err
	}
	b.tag = r.CommandTag()
	return b, nil
}

func (b *bufferedPgxRows) Close()                                       { b.closed = true }
func (b *bufferedPgxRows) Err() error                                   { return b.err }
func (b *bufferedPgxRows) CommandTag() pgconn.CommandTag                { return b.tag }
func (b *bufferedPgxRows) FieldDescriptions() []pgconn.FieldDescription { return b.fields }
func (b *bufferedPgxRows) Conn() *pgx.Conn                              { return nil }
func (b *bufferedPgxRows) TypeMap() *pgtype.Map                         { return b.typeMap }
func (b *bufferedPgxRows) RawValues() [][]byte                          { return b.values[b.i] }

func (b *bufferedPgxRows) Next() bool {
	if b.closed || b.i+1 >= len(b.values) {
		b.closed = true
		return false
	}
	b.i++
	return true
}

func (b *bufferedPgxRows) Scan(dest ...any) error {
	if err := pgx.ScanRow(b.typeMap, b.fields, b.values[b.i], dest...); err != nil {
		b.err = err
		return err
	}
	return nil
}

func (b *bufferedPgxRows) Values() ([]any, error) {
	out := make([]any, len(b.fields))
	for i, fd := range b.fields {
		raw := b.values[b.i][i]
		if raw == nil {
			continue
		}
		t, ok := b.typeMap.TypeForOID(fd.DataTypeOID)
		if !ok {
			if fd.Format == pgx.TextFormatCode {
				out[i] = string(raw)
			} else {
				out[i] = append([]byte{}, raw...)
			}
			continue
		}
		v, err := t.Codec.DecodeValue(b.typeMap, fd.DataTypeOID, fd.Format, raw)
		if err != nil {
			b.err = err
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// row is pgx.Row over rows: the first row, or pgx.ErrNoRows.
type row struct {
	rows pgx.Rows
	err  error
}

func (r *row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	rows := r.rows
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}
