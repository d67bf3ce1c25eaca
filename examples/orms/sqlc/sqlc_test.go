package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/examples/orms/internal/demo"
	"github.com/auditpgx/auditpgx/examples/orms/internal/suite"
	"github.com/auditpgx/auditpgx/examples/orms/sqlc/db"
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
		r.RegisterTable("authors", auditpgx.Exclude("updated_at"), auditpgx.Redact("api_token")),
		r.RegisterTable("books"),
	)
}

// queriers returns the generated Queries on db, in the two ways sqlc
// offers: plain, and with every query prepared (emit_prepared_queries).
var queriers = map[string]func(t *testing.T, ctx context.Context, conn db.DBTX) *db.Queries{
	"New": func(_ *testing.T, _ context.Context, conn db.DBTX) *db.Queries { return db.New(conn) },
	"Prepare": func(t *testing.T, ctx context.Context, conn db.DBTX) *db.Queries {
		q, err := db.Prepare(ctx, conn)
		require.NoError(t, err)
		t.Cleanup(func() { q.Close() })
		return q
	},
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestQueries(t *testing.T) {
	t.Parallel()
	for name, open := range queriers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := suite.New(t, suite.Config{DDL: schema, Register: registerTables})
			type out struct {
				Created  []db.CreateAuthorRow
				Books    []db.Book
				Repriced []db.Book
				Got      db.GetAuthorRow
				Authors  []db.ListAuthorsRow
				Counts   []int64
				Errs     []string
			}
			ctx := auditpgx.WithActor(e.Ctx, "alice")
			run := func(conn *sql.DB) (o out) {
				q := open(t, ctx, conn)
				for _, p := range []db.CreateAuthorParams{
					{Name: "Ursula", Bio: nullString("Earthsea"), ApiToken: nullString("tok-1")},
					{Name: "octavia", ApiToken: nullString("tok-2")},
					{Name: "TED"},
				} {
					a, err := q.CreateAuthor(ctx, p) // :one ... RETURNING
					require.NoError(t, err)
					o.Created = append(o.Created, a)
				}
				// :many ... RETURNING, a batch insert of arrays.
				books, err := q.CreateBooks(ctx, db.CreateBooksParams{
					AuthorIds: []int64{1, 1, 2},
					Isbns:     []string{"978-0", "978-1", "978-2"},
					Titles:    []string{"A Wizard of Earthsea", "The Tombs of Atuan", "Kindred"},
					Prices:    []string{"9.99", "10.50", "12.00"},
				})
				require.NoError(t, err)
				o.Books = books
				// A unique violation in the batch inserts nothing.
				_, err = q.CreateBooks(ctx, db.CreateBooksParams{
					AuthorIds: []int64{2, 2}, Isbns: []string{"978-3", "978-0"}, Titles: []string{"x", "y"}, Prices: []string{"1", "1"},
				})
				var pgErr *pgconn.PgError
				require.ErrorAs(t, err, &pgErr)
				o.Errs = append(o.Errs, pgErr.Code+" "+pgErr.ConstraintName)
				// :exec.
				o.Errs = append(o.Errs, errText(q.UpdateAuthorBio(ctx, db.UpdateAuthorBioParams{ID: 2, Bio: nullString("Kindred")})))
				o.Errs = append(o.Errs, errText(q.RotateToken(ctx, db.RotateTokenParams{ID: 1, ApiToken: nullString("tok-3")})))
				// :execrows, on rows whose name changes and one that does not.
				n, err := q.CapitalizeAuthors(ctx, "%")
				require.NoError(t, err)
				o.Counts = append(o.Counts, n)
				// :many UPDATE ... RETURNING *.
				o.Repriced, err = q.RepriceBooks(ctx, db.RepriceBooksParams{Factor: "2", AuthorID: 1})
				require.NoError(t, err)
				// :execresult DELETE, then :exec DELETE.
				res, err := q.DeleteBooksOf(ctx, 2)
				require.NoError(t, err)
				n, err = res.RowsAffected()
				require.NoError(t, err)
				o.Counts = append(o.Counts, n)
				o.Errs = append(o.Errs, errText(q.DeleteAuthor(ctx, 2)))
				// A foreign key violation.
				err = q.DeleteAuthor(ctx, 1)
				require.ErrorAs(t, err, &pgErr)
				o.Errs = append(o.Errs, pgErr.Code)
				// Reads.
				o.Got, err = q.GetAuthor(ctx, 1)
				require.NoError(t, err)
				_, err = q.GetAuthor(ctx, 2)
				o.Errs = append(o.Errs, errText(err))
				o.Authors, err = q.ListAuthors(ctx)
				require.NoError(t, err)
				return o
			}
			want, got := run(e.Plain), run(e.Audited)
			require.Equal(t, want, got)
			require.Equal(t, []string{"23505 books_isbn_key", "", "", "", "23503", sql.ErrNoRows.Error()}, got.Errs)
			require.Equal(t, []int64{3, 1}, got.Counts)
			require.Len(t, got.Repriced, 2)

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
				// Every row matches and TED's name does not change. The
				// scan meets row 3 first: rows 2 and 1 were updated since,
				// in that order, and their newest versions come later.
				suite.Update("authors", "2", `{"name": ["octavia", "OCTAVIA"]}`),
				suite.Update("authors", "1", `{"name": ["Ursula", "URSULA"]}`),
				suite.Update("books", "1", `{"price": [9.99, 19.98]}`),
				suite.Update("books", "2", `{"price": [10.50, 21.00]}`),
				suite.Delete("books", "3", book(3, 2, "978-2", "Kindred", "12.00")),
				suite.Delete("authors", "2", `{"id": 2, "name": "OCTAVIA", "bio": "Kindred", "api_token": "$encrypted$"}`),
			)...)
			e.RequireReplay()
		})
	}
}

func TestTransaction(t *testing.T) {
	t.Parallel()
	e := suite.New(t, suite.Config{DDL: schema, Register: registerTables})
	ctx := auditpgx.WithActor(e.Ctx, "bob")
	run := func(conn *sql.DB) (out []db.ListAuthorsRow) {
		tx, err := conn.BeginTx(ctx, nil)
		require.NoError(t, err)
		q := db.New(conn).WithTx(tx)
		_, err = q.CreateAuthor(ctx, db.CreateAuthorParams{Name: "gone"})
		require.NoError(t, err)
		require.NoError(t, tx.Rollback())

		tx, err = conn.BeginTx(ctx, nil)
		require.NoError(t, err)
		q = db.New(conn).WithTx(tx)
		a, err := q.CreateAuthor(ctx, db.CreateAuthorParams{Name: "kept"})
		require.NoError(t, err)
		require.NoError(t, q.UpdateAuthorBio(ctx, db.UpdateAuthorBioParams{ID: a.ID, Bio: nullString("bio")}))
		require.NoError(t, tx.Commit())
		out, err = db.New(conn).ListAuthors(ctx)
		require.NoError(t, err)
		return out
	}
	want, got := run(e.Plain), run(e.Audited)
	require.Equal(t, want, got)
	e.RequireSameTables("authors.updated_at")
	e.RequireEntries(suite.By("bob",
		suite.Create("authors", "2", `{"id": 2, "name": "kept", "bio": null, "api_token": "$encrypted$"}`),
		suite.Update("authors", "2", `{"bio": [null, "bio"]}`),
	)...)
	e.RequireReplay()
}

// TestDemo runs the program as `go run ./sqlc` does, on the default
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
		suite.Create("authors", "1", `{"id": 1, "name": "Ursula", "bio": "Earthsea", "api_token": "$encrypted$"}`).By("alice"),
		suite.Create("books", "1", `{"id": 1, "author_id": 1, "isbn": "978-0", "title": "A Wizard of Earthsea", "price": 9.99}`).By("alice"),
		suite.Create("books", "2", `{"id": 2, "author_id": 1, "isbn": "978-1", "title": "The Tombs of Atuan", "price": 10.50}`).By("alice"),
		suite.Update("authors", "1", `{"api_token": ["$encrypted$", "$encrypted$"]}`).By("bob"),
		suite.Update("books", "1", `{"price": [9.99, 10.99]}`).By("bob"),
		suite.Update("books", "2", `{"price": [10.50, 11.55]}`).By("bob"),
	)
}
