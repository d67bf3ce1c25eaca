package auditpgx_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/internal/pgtest"
)

// newPgxEnv is an env whose registry also audits a pgxpool through the
// pgx front; raw is the same pool, unaudited.
func newPgxEnv(t *testing.T, setup string, register func(r *auditpgx.Registry) error) (*env, *auditpgx.Pool, *pgxpool.Pool) {
	t.Helper()
	e := newEnvConfig(t, pgtest.NewDatabase(t), "public", auditpgx.RegistryConfig{}, setup, register)
	raw, err := pgxpool.New(e.ctx, e.dsn)
	require.NoError(t, err)
	t.Cleanup(raw.Close)
	pool, err := auditpgx.WrapPool(raw, auditpgx.WithRegistry(e.reg))
	require.NoError(t, err)
	return e, pool, raw
}

// pgxStatement is one statement of TestPgxFrontEntriesEqualDriver, in the
// forms the two fronts take.
type pgxStatement struct {
	sql     string
	args    []any  // for database/sql
	pgxSQL  string // for pgx, when it differs
	pgxArgs []any  // for pgx, when they differ
	query   bool
}

func pgxStatements() []pgxStatement {
	return []pgxStatement{
		{sql: `INSERT INTO users (id, name, email, password_hash) VALUES (1, 'a', 'a@x', 'secret'), (2, 'b', 'b@x', 'pw')`},
		{sql: `INSERT INTO users (id, name) VALUES ($1, $2) RETURNING id, name`, args: []any{3, "c"}, query: true},
		{sql: `UPDATE users SET name = $1 WHERE id = $2`, args: []any{"A", 1}},
		{sql: `UPDATE users SET name = $1 WHERE id = $2`, args: []any{"B", 2},
			pgxSQL: `UPDATE users SET name = @name WHERE id = @id`, pgxArgs: []any{pgx.NamedArgs{"name": "B", "id": 2}}},
		{sql: `UPDATE users SET email = $1 WHERE id = $2`, args: []any{"c@x", 3},
			pgxArgs: []any{pgx.QueryExecModeSimpleProtocol, "c@x", 3}},
		{sql: `UPDATE users SET password_hash = $1 WHERE id = $2 RETURNING id`, args: []any{"new", 1},
			pgxArgs: []any{pgx.QueryExecModeExec, "new", 1}, query: true},
		{sql: `INSERT INTO users (id, name) VALUES (2, 'x') ON CONFLICT (id) DO UPDATE SET name = excluded.name`},
		{sql: `DELETE FROM users WHERE id = $1`, args: []any{3}, pgxArgs: []any{pgx.QueryExecModeDescribeExec, 3}},
		{sql: `DELETE FROM users WHERE id > $1 RETURNING *`, args: []any{1}, pgxArgs: []any{pgx.QueryExecModeCacheDescribe, 1}, query: true},
	}
}

// The pgx front writes the driver's entries for the same statements, in
// every argument form pgx takes.
func TestPgxFrontEntriesEqualDriver(t *testing.T) {
	t.Parallel()
	drv := newEnv(t, usersDDL, registerUsers)
	e, pool, _ := newPgxEnv(t, usersDDL, registerUsers)
	ctx := auditpgx.WithContext(auditpgx.WithActor(context.Background(), "alice"), "request_id", "r-1")
	for _, s := range pgxStatements() {
		if s.query {
			rows, err := drv.db.QueryContext(ctx, s.sql, s.args...)
			require.NoError(t, err, s.sql)
			for rows.Next() {
			}
			require.NoError(t, rows.Err(), s.sql)
			rows.Close()
		} else {
			_, err := drv.db.ExecContext(ctx, s.sql, s.args...)
			require.NoError(t, err, s.sql)
		}
		args, text := s.args, s.sql
		if s.pgxArgs != nil {
			args = s.pgxArgs
		}
		if s.pgxSQL != "" {
			text = s.pgxSQL
		}
		if s.query {
			rows, err := pool.Query(ctx, text, args...)
			require.NoError(t, err, s.sql)
			for rows.Next() {
			}
			require.NoError(t, rows.Err(), s.sql)
		} else {
			_, err := pool.Exec(ctx, text, args...)
			require.NoError(t, err, text)
		}
	}
	want := drv.tableEntries()
	require.Len(t, want, 10)
	require.Equal(t, want, e.tableEntries())
}

// What the caller sees through the pgx front is what pgx returns: command
// tags, rows, field descriptions, errors, ErrNoRows.
func TestPgxFrontTransparent(t *testing.T) {
	t.Parallel()
	e, pool, raw := newPgxEnv(t, usersDDL, registerUsers)
	ctx := e.ctx

	tag, err := pool.Exec(ctx, `INSERT INTO users (id, name) VALUES (1, 'a'), (2, 'b')`)
	require.NoError(t, err)
	require.Equal(t, "INSERT 0 2", tag.String())
	tag, err = pool.Exec(ctx, `UPDATE users SET name = name || '!'`)
	require.NoError(t, err)
	require.Equal(t, "UPDATE 2", tag.String())
	require.Equal(t, int64(2), tag.RowsAffected())

	rows, err := pool.Query(ctx, `UPDATE users SET name = 'c' WHERE id = 1 RETURNING id, name, last_login`)
	require.NoError(t, err)
	plainRows, err := raw.Query(ctx, `SELECT id, name, last_login FROM users WHERE id = 1`)
	require.NoError(t, err)
	plainFields := plainRows.FieldDescriptions()
	plainRows.Close()
	fields := rows.FieldDescriptions()
	require.Len(t, fields, 3)
	for i := range fields {
		require.Equal(t, plainFields[i].Name, fields[i].Name)
		require.Equal(t, plainFields[i].DataTypeOID, fields[i].DataTypeOID)
		require.Equal(t, plainFields[i].TypeModifier, fields[i].TypeModifier)
	}
	var id int64
	var name string
	require.True(t, rows.Next())
	require.NoError(t, rows.Scan(&id, &name, new(*string)))
	require.False(t, rows.Next())
	require.NoError(t, rows.Err())
	require.Equal(t, "UPDATE 1", rows.CommandTag().String())
	require.Equal(t, "c", name)

	err = pool.QueryRow(ctx, `UPDATE users SET name = 'd' WHERE id = 99 RETURNING id`).Scan(&id)
	require.ErrorIs(t, err, pgx.ErrNoRows)
	require.NoError(t, pool.QueryRow(ctx, `DELETE FROM users WHERE id = $1 RETURNING name`, 2).Scan(&name))
	require.Equal(t, "b!", name)

	_, err = pool.Exec(ctx, `INSERT INTO users (id, name) VALUES (1, 'dup')`)
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "%T %v", err, err)
	require.Equal(t, "23505", pgErr.Code)
	_, err = pool.Exec(ctx, `UPDATE users SET nope = 1`)
	require.True(t, errors.As(err, &pgErr))
	require.Equal(t, "42703", pgErr.Code)

	// Reads and unaudited writes are pgx's own.
	_, err = pool.Exec(ctx, `CREATE TABLE free (x int)`)
	require.NoError(t, err)
	tag, err = pool.Exec(ctx, `INSERT INTO free VALUES (1), (2)`)
	require.NoError(t, err)
	require.Equal(t, "INSERT 0 2", tag.String())
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM free`).Scan(&n))
	require.Equal(t, 2, n)

	require.Equal(t, []string{"create 1", "create 2", "update 1", "update 2", "update 1", "delete 2"}, opsOf(e.entries()))
	require.Equal(t, raw, pool.Pool())
	require.NoError(t, pool.Ping(ctx))
}

func opsOf(entries []entry) []string {
	out := make([]string, len(entries))
	for i, en := range entries {
		out[i] = en.Op + " " + en.ObjectID
	}
	return out
}

// Transactions through the pgx front: entries commit and roll back with
// their writes, savepoints included; the pool's connection returns at the
// end.
func TestPgxFrontTransactions(t *testing.T) {
	t.Parallel()
	e, pool, raw := newPgxEnv(t, usersDDL, registerUsers)
	ctx := e.ctx

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO users (id, name) VALUES (1, 'a')`)
	require.NoError(t, err)
	sp, err := tx.Begin(ctx)
	require.NoError(t, err)
	_, err = sp.Exec(ctx, `INSERT INTO users (id, name) VALUES (2, 'b')`)
	require.NoError(t, err)
	require.NoError(t, sp.Rollback(ctx))
	var name string
	require.NoError(t, tx.QueryRow(ctx, `UPDATE users SET name = 'A' WHERE id = 1 RETURNING name`).Scan(&name))
	require.NoError(t, tx.Commit(ctx))
	require.Equal(t, []string{"create 1", "update 1"}, opsOf(e.entries()))

	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM users`); err != nil {
			return err
		}
		return errors.New("changed my mind")
	})
	require.ErrorContains(t, err, "changed my mind")
	require.Equal(t, 2, e.countEntries())
	require.Eventually(t, func() bool { return raw.Stat().AcquiredConns() == 0 }, time.Second, 10*time.Millisecond,
		"every connection back in the pool")
}

// sqlc's pgx/v5 DBTX, and code written against a pool's methods, take the
// pgx front.
type dbtx interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	Query(context.Context, string, ...any) (pgx.Rows, error)
	QueryRow(context.Context, string, ...any) pgx.Row
	CopyFrom(ctx context.Context, tableName pgx.Identifier, columnNames []string, rowSrc pgx.CopyFromSource) (int64, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

var (
	_ dbtx = (*auditpgx.Pool)(nil)
	_ dbtx = (*auditpgx.Conn)(nil)
	_ dbtx = pgx.Tx(nil)
)

// CopyFrom into a registered table is audited, one create entry per row,
// in one transaction; into another table it is pgx's own.
func TestPgxFrontCopyFrom(t *testing.T) {
	t.Parallel()
	e, pool, _ := newPgxEnv(t, usersDDL+`; CREATE TABLE free (x int)`, registerUsers)
	ctx := auditpgx.WithActor(e.ctx, "loader")
	rows := make([][]any, 50)
	for i := range rows {
		rows[i] = []any{int64(i + 1), fmt.Sprintf("u%d", i+1), "pw"}
	}
	n, err := pool.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"id", "name", "password_hash"}, pgx.CopyFromRows(rows))
	require.NoError(t, err)
	require.Equal(t, int64(50), n)
	entries := e.entries()
	require.Len(t, entries, 50)
	require.Equal(t, "create", entries[0].Op)
	require.Equal(t, "loader", *entries[49].Actor)
	require.JSONEq(t, `{"added_fields": {"id": 50, "name": "u50", "email": null, "password_hash": "$encrypted$"}, "changed_fields": {}, "removed_fields": {}}`, entries[49].Changes)

	// In the caller's transaction, rolled back: nothing.
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	n, err = tx.CopyFrom(ctx, pgx.Identifier{"public", "users"}, []string{"id", "name"}, pgx.CopyFromRows([][]any{{int64(100), "x"}}))
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	require.NoError(t, tx.Rollback(ctx))
	require.Equal(t, 50, e.countEntries())

	// A failing row fails the copy, and nothing is written.
	_, err = pool.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"id", "name"}, pgx.CopyFromRows([][]any{{int64(200), "a"}, {int64(1), "dup"}}))
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "%v", err)
	require.Equal(t, "23505", pgErr.Code)
	require.Equal(t, 50, e.countEntries())

	n, err = pool.CopyFrom(ctx, pgx.Identifier{"free"}, []string{"x"}, pgx.CopyFromRows([][]any{{1}, {2}}))
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	require.Equal(t, 50, e.countEntries())
}

// A batch's audited statements are rewritten and read as pgx reads the
// originals: tags, rows, ErrNoRows; a statement that cannot be audited in
// a batch fails it before anything is sent.
func TestPgxFrontBatch(t *testing.T) {
	t.Parallel()
	e, pool, _ := newPgxEnv(t, usersDDL+`; CREATE TABLE free (x int)`, registerUsers)
	ctx := auditpgx.WithActor(e.ctx, "batcher")
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO free VALUES (1)`)
	b.Queue(`INSERT INTO users (id, name) VALUES ($1, $2), ($3, $4)`, 1, "a", 2, "b")
	b.Queue(`UPDATE users SET name = upper(name) RETURNING id, name`)
	b.Queue(`UPDATE users SET name = 'z' WHERE id = @id`, pgx.NamedArgs{"id": 2})
	b.Queue(`DELETE FROM users WHERE id = 99 RETURNING id`)
	b.Queue(`SELECT count(*) FROM free`)
	var calledBack pgconn.CommandTag
	b.Queue(`DELETE FROM users WHERE id = 1`).Exec(func(ct pgconn.CommandTag) error {
		calledBack = ct
		return nil
	})
	res := pool.SendBatch(ctx, b)
	tag, err := res.Exec()
	require.NoError(t, err)
	require.Equal(t, "INSERT 0 1", tag.String())
	tag, err = res.Exec()
	require.NoError(t, err)
	require.Equal(t, "INSERT 0 2", tag.String())
	rows, err := res.Query()
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowToMap)
	require.NoError(t, err)
	require.Equal(t, []map[string]any{{"id": int64(1), "name": "A"}, {"id": int64(2), "name": "B"}}, got)
	require.Equal(t, "UPDATE 2", rows.CommandTag().String())
	rows, err = res.Query() // a write without RETURNING, read as rows
	require.NoError(t, err)
	require.False(t, rows.Next())
	require.Empty(t, rows.FieldDescriptions())
	require.Equal(t, "UPDATE 1", rows.CommandTag().String())
	var id int
	require.ErrorIs(t, res.QueryRow().Scan(&id), pgx.ErrNoRows)
	var n int
	require.NoError(t, res.QueryRow().Scan(&n))
	require.Equal(t, 1, n)
	require.NoError(t, res.Close())
	require.Equal(t, "DELETE 1", calledBack.String())
	require.Equal(t, []string{"create 1", "create 2", "update 1", "update 2", "update 2", "delete 1"}, opsOf(e.entries()))
	require.Equal(t, "batcher", *e.entries()[0].Actor)

	// A failing statement fails as in pgx, and its transaction with it.
	b = &pgx.Batch{}
	b.Queue(`INSERT INTO users (id, name) VALUES (3, 'c')`)
	b.Queue(`INSERT INTO users (id, name) VALUES (2, 'dup')`)
	res = pool.SendBatch(ctx, b)
	_, err = res.Exec()
	require.NoError(t, err)
	_, err = res.Exec()
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr))
	require.Equal(t, "23505", pgErr.Code)
	require.Error(t, res.Close())
	require.Equal(t, 6, e.countEntries(), "the batch is one implicit transaction")

	b = &pgx.Batch{}
	b.Queue(`INSERT INTO free VALUES (2)`)
	b.Queue(`INSERT INTO users (id, name) VALUES (4, 'd'); INSERT INTO users (id, name) VALUES (5, 'e')`)
	res = pool.SendBatch(ctx, b)
	_, err = res.Exec()
	require.ErrorIs(t, err, auditpgx.ErrUnaudited)
	require.ErrorIs(t, res.Close(), auditpgx.ErrUnaudited)
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM free`).Scan(&n))
	require.Equal(t, 1, n, "nothing of the refused batch ran")
}

// The search_path a pgx connection sets decides what its statements
// write, through the pgx front as through the driver; the pool's hooks
// run as before.
func TestPgxFrontSearchPathAndHooks(t *testing.T) {
	t.Parallel()
	e := newEnvConfig(t, pgtest.NewDatabase(t), "public", auditpgx.RegistryConfig{},
		`CREATE TABLE t (id int PRIMARY KEY, v text); CREATE SCHEMA other; CREATE TABLE other.t (id int PRIMARY KEY, v text)`,
		func(r *auditpgx.Registry) error { return r.RegisterTable("public.t") })
	cfg, err := pgxpool.ParseConfig(e.dsn)
	require.NoError(t, err)
	var connected, acquired atomic.Int64
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		connected.Add(1)
		_, err := c.Exec(ctx, `SET application_name = 'hooked'`)
		return err
	}
	cfg.PrepareConn = func(context.Context, *pgx.Conn) (bool, error) { acquired.Add(1); return true, nil }
	cfg.MaxConns = 2
	raw, err := pgxpool.NewWithConfig(e.ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(raw.Close)
	pool, err := auditpgx.WrapPool(raw, auditpgx.WithRegistry(e.reg))
	require.NoError(t, err)

	// Planned first on a connection with the default search_path.
	_, err = pool.Exec(e.ctx, `INSERT INTO t VALUES (1, 'public')`)
	require.NoError(t, err)
	c, err := pool.Acquire(e.ctx)
	require.NoError(t, err)
	_, err = c.Exec(e.ctx, `SET search_path = other, public`)
	require.NoError(t, err)
	for i := range 3 {
		_, err = c.Exec(e.ctx, `INSERT INTO t VALUES ($1, 'other')`, 10+i)
		require.NoError(t, err)
	}
	var app string
	require.NoError(t, c.QueryRow(e.ctx, `SELECT current_setting('application_name')`).Scan(&app))
	require.Equal(t, "hooked", app)
	c.Release()
	var inOther int
	require.NoError(t, e.plain.QueryRowContext(e.ctx, `SELECT count(*) FROM other.t`).Scan(&inOther))
	require.Equal(t, 3, inOther)
	require.Equal(t, []string{"create 1"}, opsOf(e.entries()), "the writes to other.t are not public.t's")
	require.Positive(t, connected.Load())
	require.Positive(t, acquired.Load())
}
