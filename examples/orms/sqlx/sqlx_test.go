package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/examples/orms/internal/demo"
	"github.com/auditpgx/auditpgx/examples/orms/internal/suite"
	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/store"
)

// bindTypeBefore is what sqlx made of "auditpgx" before the program told
// it.
var bindTypeBefore int

func TestMain(m *testing.M) {
	bindTypeBefore = sqlx.BindType(auditpgx.DriverName)
	sqlx.BindDriver(auditpgx.DriverName, sqlx.DOLLAR)
	if err := register(); err != nil { // the default registry, for TestDemo
		panic(err)
	}
	os.Exit(suite.Main(m))
}

func registerTables(r *auditpgx.Registry) error {
	return errors.Join(
		r.RegisterTable("users", auditpgx.Exclude("last_login"), auditpgx.Redact("password_hash")),
		r.RegisterTable("posts"),
	)
}

type env struct {
	*suite.Env
	plain, audited *sqlx.DB
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{Env: suite.New(t, suite.Config{DDL: schema, Register: registerTables})}
	e.plain = sqlx.NewDb(e.Plain, "pgx")
	e.audited = sqlx.NewDb(e.Audited, auditpgx.DriverName)
	return e
}

func both[T any](e *env, actor string, fn func(ctx context.Context, db *sqlx.DB) T) (plain, audited T) {
	ctx := auditpgx.WithActor(context.Background(), actor)
	return fn(ctx, e.plain), fn(ctx, e.audited)
}

type result struct {
	RowsAffected int64
	Err          string
}

func resultOf(res sql.Result, err error) result {
	if err != nil {
		return result{Err: err.Error()}
	}
	n, err := res.RowsAffected()
	if err != nil {
		return result{Err: err.Error()}
	}
	return result{RowsAffected: n}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func ptr(s string) *string { return &s }

func TestBindDriver(t *testing.T) {
	require.Equal(t, sqlx.UNKNOWN, bindTypeBefore, "sqlx knew the bind type of %q", auditpgx.DriverName)
	require.Equal(t, sqlx.DOLLAR, sqlx.BindType(auditpgx.DriverName))

	// What a program sees without the BindDriver line: sqlx writes ?
	// placeholders for a driver name it does not know. auditpgx cannot
	// parse the statement, so it refuses it before PostgreSQL sees it.
	e := newEnv(t)
	unbound := sqlx.NewDb(e.Audited, "auditpgx-without-binddriver")
	require.Equal(t, sqlx.UNKNOWN, sqlx.BindType(unbound.DriverName()))
	_, err := unbound.NamedExecContext(e.Ctx, `INSERT INTO users (name, email) VALUES (:name, :email)`, User{Name: "a", Email: "a@example.com"})
	require.ErrorIs(t, err, auditpgx.ErrUnaudited)
	require.EqualError(t, err, `auditpgx: statement cannot be audited: table "users": the statement cannot be parsed (syntax error at position 42), so its changes cannot be audited`)
	// So is a read: auditpgx cannot tell what text it cannot parse does,
	// and it names an audited table. Plain pgx passes it to PostgreSQL,
	// which rejects the ? with a syntax error.
	read := unbound.Rebind(`SELECT count(*) FROM users WHERE id > ?`)
	var n int
	err = unbound.GetContext(e.Ctx, &n, read, 0)
	require.ErrorIs(t, err, auditpgx.ErrUnaudited)
	err = sqlx.NewDb(e.Plain, "pgx-without-binddriver").GetContext(e.Ctx, &n, read, 0)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, "42601", pgErr.Code)
	e.RequireEntries()
}

func TestNamedExecSelectGet(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	type out struct {
		Results []result
		Users   []User
		One     User
		IDs     []int64
		Missing string
	}
	want, got := both(e, "alice", func(ctx context.Context, db *sqlx.DB) (o out) {
		insert := `INSERT INTO users (name, email, password_hash, last_login) VALUES (:name, :email, :password_hash, make_timestamptz(2024, 5, 1, 12, 0, 0, 'UTC'))`
		o.Results = append(o.Results, resultOf(db.NamedExecContext(ctx, insert, User{Name: "Al", Email: "al@example.com", PasswordHash: ptr("h1")})))
		// A slice is one multi-row INSERT.
		o.Results = append(o.Results, resultOf(db.NamedExecContext(ctx, insert, []User{
			{Name: "Bea", Email: "bea@example.com"},
			{Name: "Cy", Email: "cy@example.com", PasswordHash: ptr("h3")},
		})))
		// A map, and NamedQuery with RETURNING.
		rows, err := db.NamedQueryContext(ctx, `INSERT INTO posts (user_id, title) VALUES (:uid, :title), (:uid, :title || ' again') RETURNING id`,
			map[string]any{"uid": 1, "title": "Hello"})
		require.NoError(t, err)
		for rows.Next() {
			var id int64
			require.NoError(t, rows.Scan(&id))
			o.IDs = append(o.IDs, id)
		}
		require.NoError(t, rows.Err())
		// Get of an UPDATE ... RETURNING.
		require.NoError(t, db.GetContext(ctx, &o.One, `UPDATE users SET name = $1, last_login = '2024-05-02T12:00:00Z' WHERE email = $2 RETURNING id, name, email, password_hash`, "Alan", "al@example.com"))
		// Rebind and sqlx.In.
		o.Results = append(o.Results, resultOf(db.ExecContext(ctx, db.Rebind(`UPDATE users SET password_hash = ? WHERE id <> ?`), "h9", 2)))
		q, args, err := sqlx.In(`DELETE FROM posts WHERE id IN (?)`, o.IDs[1:])
		require.NoError(t, err)
		o.Results = append(o.Results, resultOf(db.ExecContext(ctx, db.Rebind(q), args...)))
		require.NoError(t, db.SelectContext(ctx, &o.Users, `SELECT id, name, email, password_hash FROM users ORDER BY id`))
		o.Missing = errText(db.GetContext(ctx, &User{}, `SELECT id, name, email, password_hash FROM users WHERE id = $1`, 42))
		return o
	})
	require.Equal(t, want, got)
	require.Equal(t, []result{{RowsAffected: 1}, {RowsAffected: 2}, {RowsAffected: 2}, {RowsAffected: 1}}, got.Results)
	require.Equal(t, sql.ErrNoRows.Error(), got.Missing)
	require.Equal(t, User{ID: 1, Name: "Alan", Email: "al@example.com", PasswordHash: ptr("h1")}, got.One)

	e.RequireSameTables()
	e.RequireEntries(suite.By("alice",
		suite.Create("users", "1", `{"id": 1, "name": "Al", "email": "al@example.com", "password_hash": "$encrypted$"}`),
		suite.Create("users", "2", `{"id": 2, "name": "Bea", "email": "bea@example.com", "password_hash": "$encrypted$"}`),
		suite.Create("users", "3", `{"id": 3, "name": "Cy", "email": "cy@example.com", "password_hash": "$encrypted$"}`),
		suite.Create("posts", "1", `{"id": 1, "user_id": 1, "title": "Hello"}`),
		suite.Create("posts", "2", `{"id": 2, "user_id": 1, "title": "Hello again"}`),
		suite.Update("users", "1", `{"name": ["Al", "Alan"]}`),
		// Row 3 before row 1, whose newest version is at the heap's end.
		suite.Update("users", "3", `{"password_hash": ["$encrypted$", "$encrypted$"]}`),
		suite.Update("users", "1", `{"password_hash": ["$encrypted$", "$encrypted$"]}`),
		suite.Delete("posts", "2", `{"id": 2, "user_id": 1, "title": "Hello again"}`),
	)...)
	e.RequireReplay()
}

func TestTransactions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	type out struct {
		Results []result
		Errs    []string
		Users   []User
	}
	want, got := both(e, "bob", func(ctx context.Context, db *sqlx.DB) (o out) {
		// Rolled back: no entries.
		tx, err := db.BeginTxx(ctx, nil)
		require.NoError(t, err)
		o.Results = append(o.Results, resultOf(tx.NamedExecContext(ctx, `INSERT INTO users (name, email) VALUES (:name, :email)`, User{Name: "gone", Email: "gone@example.com"})))
		require.NoError(t, tx.Rollback())

		tx, err = db.BeginTxx(ctx, nil)
		require.NoError(t, err)
		// A prepared named statement, executed twice.
		stmt, err := tx.PrepareNamedContext(ctx, `INSERT INTO users (name, email) VALUES (:name, :email)`)
		require.NoError(t, err)
		o.Results = append(o.Results, resultOf(stmt.ExecContext(ctx, User{Name: "a", Email: "a@example.com"})))
		o.Results = append(o.Results, resultOf(stmt.ExecContext(ctx, User{Name: "b", Email: "b@example.com"})))
		require.NoError(t, stmt.Close())
		// A unique violation inside a savepoint, rolled back to it.
		_, err = tx.ExecContext(ctx, `SAVEPOINT s1`)
		require.NoError(t, err)
		o.Results = append(o.Results, resultOf(tx.ExecContext(ctx, `INSERT INTO users (name, email) VALUES ($1, $2)`, "dup", "a@example.com")))
		_, err = tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT s1`)
		require.NoError(t, err)
		// A prepared positional statement.
		up, err := tx.PreparexContext(ctx, `UPDATE users SET name = upper(name) WHERE id = $1`)
		require.NoError(t, err)
		o.Results = append(o.Results, resultOf(up.ExecContext(ctx, 2)))
		require.NoError(t, up.Close())
		require.NoError(t, tx.Commit())

		// The unique violation outside a transaction.
		o.Results = append(o.Results, resultOf(db.ExecContext(ctx, `UPDATE users SET email = $1 WHERE id = $2`, "a@example.com", 3)))
		var pgErr *pgconn.PgError
		_, err = db.ExecContext(ctx, `INSERT INTO users (name, email) VALUES ($1, $2)`, "dup", "b@example.com")
		require.ErrorAs(t, err, &pgErr)
		o.Errs = append(o.Errs, pgErr.Code, pgErr.ConstraintName)
		require.NoError(t, db.SelectContext(ctx, &o.Users, `SELECT id, name, email, password_hash FROM users ORDER BY id`))
		return o
	})
	require.Equal(t, want, got)
	require.Equal(t, []string{"23505", "users_email_key"}, got.Errs)
	require.Contains(t, got.Results[3].Err, "23505")
	e.RequireSameTables()
	e.RequireEntries(suite.By("bob",
		suite.Create("users", "2", `{"id": 2, "name": "a", "email": "a@example.com", "password_hash": "$encrypted$"}`),
		suite.Create("users", "3", `{"id": 3, "name": "b", "email": "b@example.com", "password_hash": "$encrypted$"}`),
		suite.Update("users", "2", `{"name": ["a", "A"]}`),
	)...)
	e.RequireReplay()
}

// TestDemo runs the program as `go run ./sqlx` does, on the default
// registry, and checks what it wrote.
func TestDemo(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	var entries []store.Entry
	require.NoError(t, demo.InSchema(ctx, pgtest.URL(t), func(dsn string) error {
		if err := run(ctx, &buf, dsn); err != nil {
			return err
		}
		entries = suite.ReadEntries(t, dsn)
		return nil
	}))
	t.Log("\n" + buf.String())
	suite.RequireEntryList(t, entries,
		suite.Create("users", "1", `{"id": 1, "name": "Al", "email": "al@example.com", "password_hash": "$encrypted$"}`).By("alice"),
		suite.Create("users", "2", `{"id": 2, "name": "Bea", "email": "bea@example.com", "password_hash": "$encrypted$"}`).By("alice"),
		suite.Create("posts", "1", `{"id": 1, "user_id": 1, "title": "Hello"}`).By("bob"),
		suite.Update("users", "1", `{"name": ["Al", "Alan"]}`).By("bob"),
	)
}
