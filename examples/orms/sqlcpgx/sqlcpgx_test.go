package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/examples/orms/internal/demo"
	"github.com/auditpgx/auditpgx/examples/orms/internal/suite"
	"github.com/auditpgx/auditpgx/examples/orms/sqlcpgx/db"
	"github.com/auditpgx/auditpgx/internal/pgtest"
)

func TestMain(m *testing.M) {
	if err := register(); err != nil { // the default registry, for TestDemo
		panic(err)
	}
	os.Exit(suite.Main(m))
}

func registerTables(r *auditpgx.Registry) error {
	return errors.Join(
		r.RegisterTable("authors", auditpgx.Exclude("updated_at"), auditpgx.Redact("api_token")),
		r.RegisterTable("books"),
	)
}

// pools returns a plain pool on the plain schema and an audited one on the
// audited schema.
func pools(t *testing.T, e *suite.Env) (plain *pgxpool.Pool, audited *auditpgx.Pool) {
	t.Helper()
	plain, err := pgxpool.New(e.Ctx, e.PlainDSN)
	require.NoError(t, err)
	t.Cleanup(plain.Close)
	raw, err := pgxpool.New(e.Ctx, e.AuditedDSN)
	require.NoError(t, err)
	t.Cleanup(raw.Close)
	audited, err = auditpgx.WrapPool(raw, auditpgx.WithRegistry(e.Registry))
	require.NoError(t, err)
	return plain, audited
}

// Every kind of query sqlc generates for pgx/v5 returns through the pgx
// front what it returns through plain pgxpool, and the writes leave their
// entries, which replay to the tables.
func TestQueries(t *testing.T) {
	t.Parallel()
	e := suite.New(t, suite.Config{DDL: schema, Register: registerTables})
	plain, audited := pools(t, e)
	type out struct {
		Created []db.CreateAuthorRow
		Copied  int64
		Renamed []db.RenameBookRow
		Books   []db.Book
		Got     db.GetAuthorRow
		Authors []db.ListAuthorsRow
		Counts  []int64
		Errs    []string
	}
	ctx := auditpgx.WithActor(e.Ctx, "alice")
	run := func(conn db.DBTX) (o out) {
		q := db.New(conn)
		for _, p := range []db.CreateAuthorParams{
			{Name: "Ursula", Bio: text("Earthsea"), ApiToken: text("tok-1")},
			{Name: "octavia", ApiToken: text("tok-2")},
			{Name: "TED"},
		} {
			a, err := q.CreateAuthor(ctx, p) // :one ... RETURNING
			require.NoError(t, err)
			o.Created = append(o.Created, a)
		}
		var err error
		o.Copied, err = q.AddBooks(ctx, []db.AddBooksParams{ // :copyfrom
			{AuthorID: 1, Isbn: "978-0", Title: "A Wizard of Earthsea", Price: price("9.99")},
			{AuthorID: 1, Isbn: "978-1", Title: "The Tombs of Atuan", Price: price("10.50")},
			{AuthorID: 2, Isbn: "978-2", Title: "Kindred", Price: price("12.00")},
		})
		require.NoError(t, err)
		// A unique violation in a copy copies nothing.
		_, err = q.AddBooks(ctx, []db.AddBooksParams{{AuthorID: 2, Isbn: "978-3", Title: "x", Price: price("1")}, {AuthorID: 2, Isbn: "978-0", Title: "y", Price: price("1")}})
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		o.Errs = append(o.Errs, pgErr.Code+" "+pgErr.ConstraintName)
		// :exec.
		o.Errs = append(o.Errs, errText(q.UpdateAuthorBio(ctx, db.UpdateAuthorBioParams{ID: 2, Bio: text("Kindred")})))
		o.Errs = append(o.Errs, errText(q.RotateToken(ctx, db.RotateTokenParams{ID: 1, ApiToken: text("tok-3")})))
		// :execrows, on rows whose name changes and one that does not.
		n, err := q.CapitalizeAuthors(ctx, "%")
		require.NoError(t, err)
		o.Counts = append(o.Counts, n)
		// :batchexec and :batchone.
		q.RepriceBook(ctx, []db.RepriceBookParams{{Isbn: "978-0", Price: price("11.00")}, {Isbn: "978-9", Price: price("1")}}).
			Exec(func(_ int, err error) { o.Errs = append(o.Errs, errText(err)) })
		q.RenameBook(ctx, []db.RenameBookParams{{Isbn: "978-1", Title: "The Tombs"}, {Isbn: "978-9", Title: "none"}}).
			QueryRow(func(_ int, r db.RenameBookRow, err error) {
				o.Renamed = append(o.Renamed, r)
				o.Errs = append(o.Errs, errText(err))
			})
		// :many UPDATE ... RETURNING *.
		_, err = q.RepriceBooks(ctx, db.RepriceBooksParams{Factor: price("2"), AuthorID: 1})
		require.NoError(t, err)
		o.Errs = append(o.Errs, errText(q.DeleteAuthor(ctx, 3)))
		// A foreign key violation.
		err = q.DeleteAuthor(ctx, 1)
		require.ErrorAs(t, err, &pgErr)
		o.Errs = append(o.Errs, pgErr.Code)
		// Reads.
		o.Got, err = q.GetAuthor(ctx, 1)
		require.NoError(t, err)
		_, err = q.GetAuthor(ctx, 3)
		o.Errs = append(o.Errs, errText(err))
		o.Authors, err = q.ListAuthors(ctx)
		require.NoError(t, err)
		o.Books, err = q.ListBooks(ctx)
		require.NoError(t, err)
		return o
	}
	want, got := run(plain), run(audited)
	require.Equal(t, want, got)
	require.Equal(t, []string{"23505 books_isbn_key", "", "", "", "", "", pgx.ErrNoRows.Error(), "", "23503", pgx.ErrNoRows.Error()}, got.Errs)
	require.Equal(t, int64(3), got.Copied)
	require.Equal(t, []int64{3}, got.Counts)

	e.RequireSameTables("authors.updated_at")
	book := func(id, author int, isbn, title, price string) string {
		return `{"id": ` + strconv.Itoa(id) + `, "author_id": ` + strconv.Itoa(author) + `, "isbn": "` + isbn + `", "title": "` + title + `", "price": ` + price + `}`
	}
	e.RequireEntries(suite.By("alice",
		suite.Create("authors", "1", `{"id": 1, "name": "Ursula", "bio": "Earthsea", "api_token": "$encrypted$"}`),
		suite.Create("authors", "2", `{"id": 2, "name": "octavia", "bio": null, "api_token": "$encrypted$"}`),
		suite.Create("authors", "3", `{"id": 3, "name": "TED", "bio": null, "api_token": "$encrypted$"}`),
		suite.Create("books", "1", book(1, 1, "978-0", "A Wizard of Earthsea", "9.99")),
		suite.Create("books", "2", book(2, 1, "978-1", "The Tombs of Atuan", "10.50")),
		suite.Create("books", "3", book(3, 2, "978-2", "Kindred", "12.00")),
		suite.Update("authors", "2", `{"bio": [null, "Kindred"]}`),
		suite.Update("authors", "1", `{"api_token": ["$encrypted$", "$encrypted$"]}`),
		suite.Update("authors", "2", `{"name": ["octavia", "OCTAVIA"]}`),
		suite.Update("authors", "1", `{"name": ["Ursula", "URSULA"]}`),
		suite.Update("books", "1", `{"price": [9.99, 11.00]}`),
		suite.Update("books", "2", `{"title": ["The Tombs of Atuan", "The Tombs"]}`),
		suite.Update("books", "1", `{"price": [11.00, 22.00]}`),
		suite.Update("books", "2", `{"price": [10.50, 21.00]}`),
		suite.Delete("authors", "3", `{"id": 3, "name": "TED", "bio": null, "api_token": "$encrypted$"}`),
	)...)
	e.RequireReplay()
}

// A pgx.Tx of the pgx front: its entries commit with it, and none remain
// of a rolled-back one, a :copyfrom's included.
func TestTransaction(t *testing.T) {
	t.Parallel()
	e := suite.New(t, suite.Config{DDL: schema, Register: registerTables})
	_, pool := pools(t, e)
	ctx := auditpgx.WithActor(e.Ctx, "bob")
	q := db.New(pool)
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		qtx := q.WithTx(tx)
		if _, err := qtx.CreateAuthor(ctx, db.CreateAuthorParams{Name: "gone"}); err != nil {
			return err
		}
		if _, err := qtx.AddBooks(ctx, []db.AddBooksParams{{AuthorID: 1, Isbn: "x", Title: "x", Price: price("1")}}); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	require.EqualError(t, err, "roll back")
	require.Empty(t, e.Entries())

	require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := q.WithTx(tx).CreateAuthor(ctx, db.CreateAuthorParams{Name: "kept"})
		return err
	}))
	e.RequireEntries(suite.Create("authors", "2", `{"id": 2, "name": "kept", "bio": null, "api_token": "$encrypted$"}`).By("bob"))
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// The demo runs and prints its entries.
func TestDemo(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	require.NoError(t, demo.InSchema(ctx, pgtest.URL(t), func(dsn string) error { return run(ctx, &buf, dsn) }))
	t.Log("\n" + buf.String())
	require.Contains(t, buf.String(), "copied 2 books")
	require.Contains(t, buf.String(), "price: 10.50 → 12.00")
}
