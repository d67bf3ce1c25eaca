package auditpgx

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// Conn is a *pgx.Conn whose writes to registered tables are audited, as
// the database/sql driver audits them: its methods have pgx's signatures,
// so that code written against *pgx.Conn, and sqlc's pgx/v5 DBTX, take it
// unchanged. Statements that write no registered table reach pgx as they
// are. The original connection, from Conn.Conn, is not audited.
type Conn struct {
	conn *pgx.Conn
	f    *front
}

// Pool is a *pgxpool.Pool whose writes to registered tables are audited
// (see Conn). The original pool, from Pool.Pool, is not audited.
type Pool struct {
	pool *pgxpool.Pool
	f    *front
}

// WrapConn returns conn audited with the registry of opts (WithRegistry;
// the default registry without it).
func WrapConn(conn *pgx.Conn, opts ...Option) (*Conn, error) {
	f, err := newFront("WrapConn", opts)
	if err != nil {
		return nil, err
	}
	if conn == nil {
		return nil, fmt.Errorf("auditpgx: WrapConn: nil connection")
	}
	return &Conn{conn: conn, f: f}, nil
}

// WrapPool returns pool audited with the registry of opts (WithRegistry;
// the default registry without it). The pool's AfterConnect,
// BeforeAcquire and AfterRelease hooks run as before.
func WrapPool(pool *pgxpool.Pool, opts ...Option) (*Pool, error) {
	f, err := newFront("WrapPool", opts)
	if err != nil {
		return nil, err
	}
	if pool == nil {
		return nil, fmt.Errorf("auditpgx: WrapPool: nil pool")
	}
	return &Pool{pool: pool, f: f}, nil
}

func newFront(fn string, opts []Option) (*front, error) {
	o, err := applyOptions(fn, 0, opts)
	if err != nil {
		return nil, err
	}
	return &front{i: interceptorFor(o.registry)}, nil
}

// Conn returns the connection itself, whose statements are not audited.
func (c *Conn) Conn() *pgx.Conn { return c.conn }

// Exec is pgx.Conn.Exec, audited.
func (c *Conn) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return c.f.exec(ctx, c.conn, sql, args)
}

// Query is pgx.Conn.Query, audited.
func (c *Conn) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return c.f.query(ctx, c.conn, sql, args)
}

// QueryRow is pgx.Conn.QueryRow, audited.
func (c *Conn) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := c.f.query(ctx, c.conn, sql, args)
	return &row{rows: rows, err: err}
}

// Begin is pgx.Conn.Begin; the transaction's statements are audited.
func (c *Conn) Begin(ctx context.Context) (pgx.Tx, error) {
	return c.BeginTx(ctx, pgx.TxOptions{})
}

// BeginTx is pgx.Conn.BeginTx; the transaction's statements are audited.
func (c *Conn) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	t, err := c.conn.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &tx{Tx: t, f: c.f}, nil
}

// SendBatch is pgx.Conn.SendBatch, audited (see Pool.SendBatch).
func (c *Conn) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return c.f.sendBatch(ctx, c.conn, b)
}

// CopyFrom is pgx.Conn.CopyFrom, audited (see Pool.CopyFrom).
func (c *Conn) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	return c.f.copyFrom(ctx, c.conn, table, columns, src)
}

// Ping is pgx.Conn.Ping.
func (c *Conn) Ping(ctx context.Context) error { return c.conn.Ping(ctx) }

// Close is pgx.Conn.Close.
func (c *Conn) Close(ctx context.Context) error { return c.conn.Close(ctx) }

// tx is a pgx.Tx whose statements are audited. Nested Begin makes
// savepoints, as pgx does.
type tx struct {
	pgx.Tx
	f *front
	// release, for a pool's transaction, returns the connection when the
	// outermost transaction ends.
	release func()
}

func (t *tx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return t.f.exec(ctx, t.Tx.Conn(), sql, args)
}

func (t *tx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return t.f.query(ctx, t.Tx.Conn(), sql, args)
}

func (t *tx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := t.f.query(ctx, t.Tx.Conn(), sql, args)
	return &row{rows: rows, err: err}
}

func (t *tx) Begin(ctx context.Context) (pgx.Tx, error) {
	n, err := t.Tx.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &tx{Tx: n, f: t.f}, nil
}

func (t *tx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return t.f.sendBatch(ctx, t.Tx.Conn(), b)
}

func (t *tx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	return t.f.copyFrom(ctx, t.Tx.Conn(), table, columns, src)
}

func (t *tx) Commit(ctx context.Context) error {
	return t.end(t.Tx.Commit(ctx))
}

func (t *tx) Rollback(ctx context.Context) error {
	return t.end(t.Tx.Rollback(ctx))
}

// end notes the end of a transaction that may have run DDL (see txend.go),
// and releases a pool's connection.
func (t *tx) end(err error) error {
	conn := t.Tx.Conn()
	if conn != nil {
		t.f.i.txEnded(&pgxQueryer{conn: conn})
	}
	if t.release != nil && (conn == nil || conn.PgConn().TxStatus() == 'I' || conn.IsClosed()) {
		t.release()
		t.release = nil
	}
	return err
}

// Pool returns the pool itself, whose statements are not audited.
func (p *Pool) Pool() *pgxpool.Pool { return p.pool }

// Exec is pgxpool.Pool.Exec, audited.
func (p *Pool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	c, err := p.pool.Acquire(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	defer c.Release()
	return p.f.exec(ctx, c.Conn(), sql, args)
}

// Query is pgxpool.Pool.Query, audited: the connection returns to the
// pool when the rows are closed or read to the end.
func (p *Pool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	c, err := p.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := p.f.query(ctx, c.Conn(), sql, args)
	if err != nil {
		c.Release()
		return nil, err
	}
	return &poolRows{Rows: rows, c: c}, nil
}

// QueryRow is pgxpool.Pool.QueryRow, audited.
func (p *Pool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := p.Query(ctx, sql, args...)
	return &row{rows: rows, err: err}
}

// Begin is pgxpool.Pool.Begin; the transaction's statements are audited.
func (p *Pool) Begin(ctx context.Context) (pgx.Tx, error) {
	return p.BeginTx(ctx, pgx.TxOptions{})
}

// BeginTx is pgxpool.Pool.BeginTx; the transaction's statements are
// audited, and its connection returns to the pool at Commit or Rollback.
func (p *Pool) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	c, err := p.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	t, err := c.Conn().BeginTx(ctx, opts)
	if err != nil {
		c.Release()
		return nil, err
	}
	return &tx{Tx: t, f: p.f, release: c.Release}, nil
}

// SendBatch is pgxpool.Pool.SendBatch, audited: each statement that
// writes a registered table is sent as its audited rewrite, and its result
// reads as the original's (rows, command tag). A statement that cannot be
// audited fails the whole batch, with nothing sent.
func (p *Pool) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	c, err := p.pool.Acquire(ctx)
	if err != nil {
		return &errBatch{err: err}
	}
	return &poolBatch{BatchResults: p.f.sendBatch(ctx, c.Conn(), b), c: c}
}

// CopyFrom is pgxpool.Pool.CopyFrom, audited: into a registered table,
// the rows are copied into a temporary table and inserted from it by one
// audited INSERT, in one transaction (the caller's, when one is open); it
// returns the number of rows copied. Into another table it is pgx's own.
func (p *Pool) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	c, err := p.pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Release()
	return p.f.copyFrom(ctx, c.Conn(), table, columns, src)
}

// Acquire is pgxpool.Pool.Acquire; the connection's statements are
// audited. Release it when done.
func (p *Pool) Acquire(ctx context.Context) (*PoolConn, error) {
	c, err := p.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &PoolConn{Conn: Conn{conn: c.Conn(), f: p.f}, c: c}, nil
}

// Ping is pgxpool.Pool.Ping.
func (p *Pool) Ping(ctx context.Context) error { return p.pool.Ping(ctx) }

// Close is pgxpool.Pool.Close.
func (p *Pool) Close() { p.pool.Close() }

// PoolConn is a connection acquired from a Pool: a Conn to release.
type PoolConn struct {
	Conn
	c *pgxpool.Conn
}

// Release returns the connection to the pool.
func (c *PoolConn) Release() { c.c.Release() }

// poolRows release their connection once closed or read to the end.
type poolRows struct {
	pgx.Rows
	c    *pgxpool.Conn
	once sync.Once
}

func (r *poolRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.release()
	return false
}

func (r *poolRows) Close() {
	r.Rows.Close()
	r.release()
}

func (r *poolRows) release() { r.once.Do(r.c.Release) }

// poolBatch releases its connection when closed.
type poolBatch struct {
	pgx.BatchResults
	c    *pgxpool.Conn
	once sync.Once
}

func (b *poolBatch) Close() error {
	err := b.BatchResults.Close()
	b.once.Do(b.c.Release)
	return err
}

// errBatch is the result of a batch that was not sent.
type errBatch struct{ err error }

func (b *errBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, b.err }
func (b *errBatch) Query() (pgx.Rows, error)         { return nil, b.err }
func (b *errBatch) QueryRow() pgx.Row                { return &row{err: b.err} }
func (b *errBatch) Close() error                     { return b.err }
func (b *errBatch) Tx() pgx.Tx                       { return nil }

// sendBatch sends b with each statement that writes a registered table
// replaced by its audited rewrite (RowsSQL, which both Exec and Query can
// read), and returns results that read as pgx's: one per queued
// statement, in order, with the original's command tags. A statement that
// cannot be audited fails the batch before anything is sent.
func (f *front) sendBatch(ctx context.Context, conn *pgx.Conn, b *pgx.Batch) pgx.BatchResults {
	q := &pgxQueryer{conn: conn}
	plans := make([]*plan, len(b.QueuedQueries))
	sent := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, len(b.QueuedQueries))}
	for n, qq := range b.QueuedQueries {
		sql, args, err := rewriteArgs(ctx, conn, qq.SQL, qq.Arguments)
		if err != nil {
			return &errBatch{err: err}
		}
		p, err := f.plan(ctx, q, sql)
		if err != nil {
			return &errBatch{err: err}
		}
		plans[n] = p
		c := *qq
		c.SQL, c.Arguments = sql, args
		switch {
		case p.action == refuse:
			return &errBatch{err: p.err}
		case p.verify:
			return &errBatch{err: &UnauditedError{Reason: fmt.Sprintf("statement %d of the batch writes a name that is registered but means another table now; run it with Exec, which verifies it", n+1)}}
		case p.action == audit && (p.multi || p.truncate || p.rewrite.RowsSQL == ""):
			return &errBatch{err: &UnauditedError{Reason: fmt.Sprintf("statement %d of the batch cannot be audited in a batch; run it with Exec", n+1)}}
		case p.action == audit:
			text, bound, err := bind(ctx, p, p.rewrite.RowsSQL, namedArgs(args))
			if err != nil {
				return &errBatch{err: fmt.Errorf("statement %d of the batch: %w", n+1, err)}
			}
			c.SQL, c.Arguments = text, anyArgs(bound)
			if qq.Fn != nil {
				fn, item := qq.Fn, &batchItem{p: p, query: sql}
				c.Fn = func(br pgx.BatchResults) error {
					return fn(&auditedBatch{BatchResults: br, items: []*batchItem{item}, typeMap: conn.TypeMap()})
				}
			}
		}
		sent.QueuedQueries[n] = &c
	}
	items := make([]*batchItem, len(plans))
	for n, p := range plans {
		if p.action == audit {
			items[n] = &batchItem{p: p, query: b.QueuedQueries[n].SQL}
		}
	}
	res := &auditedBatch{BatchResults: conn.SendBatch(ctx, sent), items: items, typeMap: conn.TypeMap()}
	for _, p := range plans {
		f.i.after(q, p, nil)
	}
	return res
}

// batchItem is an audited statement of a batch.
type batchItem struct {
	p     *plan
	query string
}

// auditedBatch reads a batch's results, those of audited statements as
// the originals' would read.
type auditedBatch struct {
	pgx.BatchResults
	items   []*batchItem // nil for a statement sent as it was
	next    int
	typeMap *pgtype.Map
}

func (b *auditedBatch) item() *batchItem {
	var it *batchItem
	if b.next < len(b.items) {
		it = b.items[b.next]
	}
	b.next++
	return it
}

func (b *auditedBatch) Exec() (pgconn.CommandTag, error) {
	it := b.item()
	tag, err := b.BatchResults.Exec()
	if it == nil {
		return tag, err
	}
	if err != nil {
		return tag, batchError(it, err)
	}
	if it.p.tag != "" && tag.Select() {
		tag = countTag(it.p.tag, tag.RowsAffected())
	}
	return tag, nil
}

func (b *auditedBatch) Query() (pgx.Rows, error) {
	it := b.item()
	rows, err := b.BatchResults.Query()
	if it == nil {
		return rows, err
	}
	if err != nil {
		return rows, batchError(it, err)
	}
	if it.p.rewrite.Returns {
		return &taggedRows{Rows: rows, prefix: it.p.tag}, nil
	}
	counted, err := countedRows(rows, it.p.tag, b.typeMap)
	if err != nil {
		return nil, batchError(it, err)
	}
	return counted, nil
}

func (b *auditedBatch) QueryRow() pgx.Row {
	rows, err := b.Query()
	return &row{rows: rows, err: err}
}

// batchError is the error of an audited statement of a batch, as
// runAudited makes it (no retry: the batch has been sent).
func batchError(it *batchItem, err error) error {
	err = staleError(err, it.p.rewrite.RowsSQL)
	remapPosition(err, it.p.rewrite.RowsSQL, it.query)
	return err
}

// copyFrom copies into table: audited through a staging table when it is
// registered, as pgx otherwise.
func (f *front) copyFrom(ctx context.Context, conn *pgx.Conn, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if len(table) == 0 || len(table) > 2 || len(columns) == 0 {
		return conn.CopyFrom(ctx, table, columns, src) // pgx says what is wrong
	}
	target := table.Sanitize()
	cols := make([]string, len(columns))
	for i, c := range columns {
		cols[i] = sqlq.Ident(c)
	}
	colList := strings.Join(cols, ", ")
	// One name per session, so that the INSERT's plan is cached; not the
	// rewrite's reserved prefix, as the INSERT is planned as any other.
	const staging = "auditpgx_copy"
	insert := "INSERT INTO " + target + " (" + colList + ") SELECT " + colList + " FROM pg_temp." + sqlq.Ident(staging)
	q := &pgxQueryer{conn: conn}
	p, err := f.plan(ctx, q, insert)
	if err != nil {
		return 0, err
	}
	switch {
	case p.action == refuse:
		return 0, p.err
	case p.action == passThrough && !p.verify:
		return conn.CopyFrom(ctx, table, columns, src)
	}
	own := conn.PgConn().TxStatus() == 'I'
	if own {
		if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
			return 0, err
		}
	}
	n, err := f.copyStaged(ctx, conn, target, colList, staging, insert, columns, src, own)
	if own {
		end := "COMMIT"
		if err != nil {
			end = "ROLLBACK"
		}
		if _, eerr := conn.Exec(context.WithoutCancel(ctx), end); err == nil && eerr != nil {
			return 0, eerr
		}
	}
	return n, err
}

// copyStaged copies the rows into a new temporary table of the columns'
// types, then runs the audited INSERT from it, and drops it.
func (f *front) copyStaged(ctx context.Context, conn *pgx.Conn, target, colList, staging, insert string, columns []string, src pgx.CopyFromSource, own bool) (int64, error) {
	create := "CREATE TEMPORARY TABLE " + sqlq.Ident(staging) + " "
	if own {
		create += "ON COMMIT DROP "
	}
	create += "AS SELECT " + colList + " FROM " + target + " WITH NO DATA"
	if _, err := conn.Exec(ctx, create); err != nil {
		return 0, err
	}
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"pg_temp", staging}, columns, src)
	if err != nil {
		return 0, err
	}
	if _, err := f.exec(ctx, conn, insert, nil); err != nil {
		return 0, err
	}
	if !own {
		if _, err := conn.Exec(ctx, "DROP TABLE pg_temp."+sqlq.Ident(staging)); err != nil {
			return 0, err
		}
	}
	return n, nil
}
