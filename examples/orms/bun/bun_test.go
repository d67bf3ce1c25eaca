package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/examples/orms/internal/demo"
	"github.com/auditpgx/auditpgx/examples/orms/internal/suite"
	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/store"
)

func TestMain(m *testing.M) {
	if err := register(); err != nil { // the default registry, for TestDemo
		panic(err)
	}
	os.Exit(suite.Main(m))
}

func registerTables(r *auditpgx.Registry) error {
	return errors.Join(
		r.RegisterTable("users", auditpgx.Redact("password")),
		r.RegisterTable("stories"),
	)
}

type env struct {
	*suite.Env
	plain, audited *bun.DB
}

// newEnv opens bun on both sides and creates the tables through each.
func newEnv(t *testing.T, register func(*auditpgx.Registry) error, setup func(ctx context.Context, db *bun.DB) error) *env {
	t.Helper()
	e := &env{Env: suite.New(t, suite.Config{Register: register})}
	e.plain = bun.NewDB(e.Plain, pgdialect.New())
	e.audited = bun.NewDB(e.Audited, pgdialect.New())
	for _, db := range []*bun.DB{e.plain, e.audited} {
		require.NoError(t, setup(e.Ctx, db))
	}
	return e
}

func both[T any](e *env, actor string, fn func(ctx context.Context, db *bun.DB) T) (plain, audited T) {
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

// softDeleted lists the ids of soft-deleted users: bun takes deleted_at
// from the clock, so the two sides differ in the time but must not in
// which rows.
func softDeleted(t *testing.T, ctx context.Context, db *bun.DB) []int64 {
	var ids []int64
	require.NoError(t, db.NewSelect().Model((*User)(nil)).Column("id").WhereDeleted().Order("id").Scan(ctx, &ids))
	return ids
}

// clearClock zeroes the deleted_at that bun sets from the clock.
func clearClock(users []User) []User {
	for i := range users {
		if !users[i].DeletedAt.IsZero() {
			users[i].DeletedAt = time.Time{}
		}
	}
	return users
}

func userJSON(id int, name, email string) string {
	return fmt.Sprintf(`{"id": %d, "name": %q, "email": %q, "password": "$encrypted$", "deleted_at": null}`, id, name, email)
}

func TestInsertUpdateDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t, registerTables, createTables)
	type out struct {
		Users       []User
		Returned    User
		Results     []result
		SoftDeleted []int64
		Left        []User
	}
	want, got := both(e, "alice", func(ctx context.Context, db *bun.DB) (o out) {
		o.Users = []User{
			{Name: "a", Email: "a@example.com", Password: "p"},
			{Name: "b", Email: "b@example.com"},
			{Name: "c", Email: "c@example.com"},
		}
		// One INSERT of three rows, RETURNING the ids.
		o.Results = append(o.Results, resultOf(db.NewInsert().Model(&o.Users).Exec(ctx)))
		story := Story{Title: "t", AuthorID: o.Users[0].ID}
		o.Results = append(o.Results, resultOf(db.NewInsert().Model(&story).Exec(ctx)))
		// UPDATE ... RETURNING *.
		o.Results = append(o.Results, resultOf(db.NewUpdate().Model(&o.Returned).
			Set("name = ?", "A").Set("password = ?", "q").Where("id = ?", o.Users[0].ID).Returning("*").Exec(ctx)))
		// An update of the model's chosen columns, by primary key.
		o.Users[1].Name = "B"
		o.Results = append(o.Results, resultOf(db.NewUpdate().Model(&o.Users[1]).Column("name").WherePK().Exec(ctx)))
		// An update of many rows.
		o.Results = append(o.Results, resultOf(db.NewUpdate().Model((*User)(nil)).
			Set("email = upper(email)").Where("id >= ?", 2).Exec(ctx)))
		// Soft delete: an UPDATE of deleted_at.
		o.Results = append(o.Results, resultOf(db.NewDelete().Model(&o.Users[2]).WherePK().Exec(ctx)))
		// Hard delete, of a story and of a soft-deleted user.
		o.Results = append(o.Results, resultOf(db.NewDelete().Model(&story).WherePK().Exec(ctx)))
		o.Results = append(o.Results, resultOf(db.NewDelete().Model(&o.Users[2]).WherePK().ForceDelete().Exec(ctx)))
		o.Results = append(o.Results, resultOf(db.NewDelete().Model((*User)(nil)).Where("id = ?", 42).Exec(ctx)))
		o.SoftDeleted = softDeleted(t, ctx, db)
		require.NoError(t, db.NewSelect().Model(&o.Left).Order("id").Scan(ctx))
		o.Users = clearClock(o.Users)
		return o
	})
	require.Equal(t, want, got)
	require.Equal(t, []result{{RowsAffected: 3}, {RowsAffected: 1}, {RowsAffected: 1}, {RowsAffected: 1},
		{RowsAffected: 2}, {RowsAffected: 1}, {RowsAffected: 1}, {RowsAffected: 1}, {RowsAffected: 0}}, got.Results)
	require.Equal(t, User{ID: 1, Name: "A", Email: "a@example.com", Password: "q"}, got.Returned)

	e.RequireSameTables("users.deleted_at")
	e.RequireEntries(suite.By("alice",
		suite.Create("users", "1", userJSON(1, "a", "a@example.com")),
		suite.Create("users", "2", userJSON(2, "b", "b@example.com")),
		suite.Create("users", "3", userJSON(3, "c", "c@example.com")),
		suite.Create("stories", "1", `{"id": 1, "title": "t", "author_id": 1}`),
		suite.Update("users", "1", `{"name": ["a", "A"], "password": ["$encrypted$", "$encrypted$"]}`),
		suite.Update("users", "2", `{"name": ["b", "B"]}`),
		// Row 3 before row 2, whose newest version is at the heap's end.
		suite.Update("users", "3", `{"email": ["c@example.com", "C@EXAMPLE.COM"]}`),
		suite.Update("users", "2", `{"email": ["b@example.com", "B@EXAMPLE.COM"]}`),
		suite.Update("users", "3", `{"deleted_at": [null, "$any$"]}`),
		suite.Delete("stories", "1", `{"id": 1, "title": "t", "author_id": 1}`),
		suite.Delete("users", "3", `{"id": 3, "name": "c", "email": "C@EXAMPLE.COM", "password": "$encrypted$", "deleted_at": "$any$"}`),
	)...)
	e.RequireReplay()
}

func bulkUsers() []User {
	return []User{
		{Name: "a", Email: "a@example.com"},
		{Name: "b", Email: "b@example.com"},
		{Name: "c", Email: "c@example.com"},
	}
}

// TestBulkUpdate updates many rows, each to its own values, in one
// statement: UPDATE ... FROM (VALUES ...).
func TestBulkUpdate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, registerTables, createTables)
	type out struct {
		Users   []User
		Results []result
	}
	want, got := both(e, "bob", func(ctx context.Context, db *bun.DB) (o out) {
		o.Users = bulkUsers()
		o.Results = append(o.Results, resultOf(db.NewInsert().Model(&o.Users).Exec(ctx)))
		// Bulk(): WITH _data AS (VALUES ...) UPDATE users SET name =
		// _data.name FROM _data WHERE u.id = _data.id.
		o.Users[0].Name, o.Users[2].Name = "A", "C"
		o.Results = append(o.Results, resultOf(db.NewUpdate().Model(&o.Users).Column("name").Bulk().Exec(ctx)))
		// The same written out with NewValues.
		changes := []User{{ID: 2, Email: "bee@example.com"}, {ID: 3, Email: "c@example.com"}}
		o.Results = append(o.Results, resultOf(db.NewUpdate().
			With("_data", db.NewValues(&changes)).
			Model((*User)(nil)).
			TableExpr("_data").
			Set("email = _data.email").
			Where("u.id = _data.id").
			Exec(ctx)))
		require.NoError(t, db.NewSelect().Model(&o.Users).Order("id").Scan(ctx))
		return o
	})
	require.Equal(t, want, got)
	require.Equal(t, []result{{RowsAffected: 3}, {RowsAffected: 3}, {RowsAffected: 2}}, got.Results)
	e.RequireSameTables()
	e.RequireEntries(suite.By("bob",
		suite.Create("users", "1", userJSON(1, "a", "a@example.com")),
		suite.Create("users", "2", userJSON(2, "b", "b@example.com")),
		suite.Create("users", "3", userJSON(3, "c", "c@example.com")),
		suite.Update("users", "1", `{"name": ["a", "A"]}`),
		suite.Update("users", "3", `{"name": ["c", "C"]}`),
		suite.Update("users", "2", `{"email": ["b@example.com", "bee@example.com"]}`),
	)...)
	e.RequireReplay()
}

// TestBulkUpdateReturning needs RETURNING * on UPDATE ... FROM, which bun
// sends for Bulk().Returning("*").
func TestBulkUpdateReturning(t *testing.T) {
	t.Parallel()
	e := newEnv(t, registerTables, createTables)
	type out struct {
		Users    []User
		Returned []User
		Result   result
	}
	want, got := both(e, "bob", func(ctx context.Context, db *bun.DB) (o out) {
		o.Users = bulkUsers()
		_, err := db.NewInsert().Model(&o.Users).Exec(ctx)
		require.NoError(t, err)
		o.Users[0].Name, o.Users[1].Name = "A", "B"
		o.Result = resultOf(db.NewUpdate().Model(&o.Users).Column("name").Bulk().Returning("*").Exec(ctx, &o.Returned))
		return o
	})
	require.Equal(t, want, got)
	require.Equal(t, result{RowsAffected: 3}, got.Result)
	e.RequireSameTables()
	e.RequireEntries(suite.By("bob",
		suite.Create("users", "1", userJSON(1, "a", "a@example.com")),
		suite.Create("users", "2", userJSON(2, "b", "b@example.com")),
		suite.Create("users", "3", userJSON(3, "c", "c@example.com")),
		suite.Update("users", "1", `{"name": ["a", "A"]}`),
		suite.Update("users", "2", `{"name": ["b", "B"]}`),
	)...)
	e.RequireReplay()
}

func TestUpsertDoNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, registerTables, createTables)
	want, got := both(e, "carol", func(ctx context.Context, db *bun.DB) (rs []result) {
		rs = append(rs, resultOf(db.NewInsert().Model(&User{Name: "a", Email: "a@example.com"}).Exec(ctx)))
		users := []User{{Name: "a2", Email: "a@example.com"}, {Name: "b", Email: "b@example.com"}}
		rs = append(rs, resultOf(db.NewInsert().Model(&users).On("CONFLICT DO NOTHING").Exec(ctx)))
		// A plain INSERT that violates the unique constraint.
		_, err := db.NewInsert().Model(&User{Name: "a3", Email: "a@example.com"}).Exec(ctx)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		rs = append(rs, result{Err: pgErr.Code + " " + pgErr.ConstraintName})
		return rs
	})
	require.Equal(t, want, got)
	require.Equal(t, []result{{RowsAffected: 1}, {RowsAffected: 1}, {Err: "23505 users_email_key"}}, got)
	e.RequireSameTables()
	e.RequireEntries(suite.By("carol",
		suite.Create("users", "1", userJSON(1, "a", "a@example.com")),
		suite.Create("users", "3", userJSON(3, "b", "b@example.com")),
	)...)
	e.RequireReplay()
}

// TestUpsertDoUpdate needs INSERT ... ON CONFLICT DO UPDATE, which bun
// sends for On("CONFLICT (...) DO UPDATE").
func TestUpsertDoUpdate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, registerTables, createTables)
	type out struct {
		Users   []User
		Results []result
	}
	want, got := both(e, "carol", func(ctx context.Context, db *bun.DB) (o out) {
		o.Results = append(o.Results, resultOf(db.NewInsert().Model(&User{Name: "a", Email: "a@example.com"}).Exec(ctx)))
		o.Users = []User{{Name: "A", Email: "a@example.com"}, {Name: "b", Email: "b@example.com"}}
		o.Results = append(o.Results, resultOf(db.NewInsert().Model(&o.Users).
			On("CONFLICT (email) DO UPDATE").Set("name = EXCLUDED.name").Exec(ctx)))
		return o
	})
	require.Equal(t, want, got)
	require.Equal(t, []result{{RowsAffected: 1}, {RowsAffected: 2}}, got.Results)
	e.RequireSameTables()
	e.RequireEntries(suite.By("carol",
		suite.Create("users", "1", userJSON(1, "a", "a@example.com")),
		suite.Update("users", "1", `{"name": ["a", "A"]}`),
		suite.Create("users", "3", userJSON(3, "b", "b@example.com")),
	)...)
	e.RequireReplay()
}

func TestTransactions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, registerTables, createTables)
	errUndo := errors.New("undo")
	type out struct {
		Errs  []string
		Users []User
	}
	want, got := both(e, "dave", func(ctx context.Context, db *bun.DB) (o out) {
		err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.NewInsert().Model(&User{Name: "kept", Email: "kept@example.com"}).Exec(ctx); err != nil {
				return err
			}
			// A transaction inside a transaction is a savepoint.
			o.Errs = append(o.Errs, errText(tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				if _, err := tx.NewInsert().Model(&User{Name: "undone", Email: "undone@example.com"}).Exec(ctx); err != nil {
					return err
				}
				return errUndo
			})))
			_, err := tx.NewUpdate().Model((*User)(nil)).Set("name = ?", "Kept").Where("email = ?", "kept@example.com").Exec(ctx)
			return err
		})
		o.Errs = append(o.Errs, errText(err))
		o.Errs = append(o.Errs, errText(db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.NewInsert().Model(&User{Name: "gone", Email: "gone@example.com"}).Exec(ctx); err != nil {
				return err
			}
			return errUndo
		})))
		require.NoError(t, db.NewSelect().Model(&o.Users).Order("id").Scan(ctx))
		return o
	})
	require.Equal(t, want, got)
	require.Equal(t, []string{"undo", "", "undo"}, got.Errs)
	e.RequireSameTables()
	e.RequireEntries(suite.By("dave",
		suite.Create("users", "1", userJSON(1, "kept", "kept@example.com")),
		suite.Update("users", "1", `{"name": ["kept", "Kept"]}`),
	)...)
	e.RequireReplay()
}

// TestDemo runs the program as `go run ./bun` does, on the default
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
	require.Contains(t, buf.String(), `"Hello" by Alan`)
	suite.RequireEntryList(t, entries,
		suite.Create("users", "1", userJSON(1, "Al", "al@example.com")).By("alice"),
		suite.Create("users", "2", userJSON(2, "Bea", "bea@example.com")).By("alice"),
		suite.Create("stories", "1", `{"id": 1, "title": "Hello", "author_id": 1}`).By("alice"),
		suite.Update("users", "1", `{"name": ["Al", "Alan"]}`).By("bob"),
		suite.Update("users", "2", `{"deleted_at": [null, "$any$"]}`).By("bob"),
	)
}
