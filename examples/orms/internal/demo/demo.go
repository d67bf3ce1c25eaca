// Package demo runs the examples' programs: it starts a throwaway
// PostgreSQL, gives the program a schema of its own and prints the entries
// the program left behind.
package demo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"text/tabwriter"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx", for creating and dropping the schema

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/store"
)

// Main runs fn as a program named name and exits: 0 when fn succeeds, 1
// with the error on stderr otherwise. fn gets the URL of an empty schema,
// first on the search_path, where auditpgx.Migrate has already created the
// entry table, and prints to w.
//
// The server is a throwaway cluster (PostgreSQL's initdb and postgres on
// PATH or under /usr/lib/postgresql/*/bin) unless AUDITPGX_DATABASE_URL
// names an existing one; the schema is dropped at the end either way.
func Main(name string, fn func(ctx context.Context, w io.Writer, dsn string) error) {
	if err := run(os.Stdout, fn); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

func run(w io.Writer, fn func(ctx context.Context, w io.Writer, dsn string) error) (err error) {
	// Ctrl-C cancels ctx rather than killing the process, so that the
	// server is still stopped and its directory removed.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	srv, err := pgtest.Start(ctx, "AUDITPGX_DATABASE_URL")
	if err != nil {
		return fmt.Errorf("starting PostgreSQL: %w\n(to use an existing server, set AUDITPGX_DATABASE_URL)", err)
	}
	defer func() { err = errors.Join(err, srv.Stop()) }()
	return InSchema(ctx, srv.URL(), func(dsn string) error { return fn(ctx, w, dsn) })
}

// InSchema creates a schema on the server at base, a postgres:// URL,
// migrates the entry table into it and calls fn with a URL whose
// search_path is that schema. The schema is dropped afterwards.
func InSchema(ctx context.Context, base string, fn func(dsn string) error) (err error) {
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return err
	}
	defer admin.Close()
	schema := fmt.Sprintf("auditpgx_example_%08x", rand.Uint32())
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		return err
	}
	defer func() {
		_, dropErr := admin.ExecContext(context.WithoutCancel(ctx), "DROP SCHEMA "+schema+" CASCADE")
		err = errors.Join(err, dropErr)
	}()
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	dsn := u.String()

	db, err := sql.Open("auditpgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := auditpgx.Migrate(ctx, db); err != nil {
		return err
	}
	return fn(dsn)
}

// PrintEntries prints every entry in db's entry table, one a line.
func PrintEntries(ctx context.Context, w io.Writer, db store.Querier) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tACTOR\tOPERATION\tTABLE\tOBJECT\tCHANGES")
	for after := int64(0); ; {
		entries, err := store.List(ctx, db, store.Query{AfterID: after, Limit: 1000})
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			return tw.Flush()
		}
		for _, e := range entries {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.ID, orDash(e.CreatedBy), e.Operation, e.TableName, e.ObjectID, Changes(e))
		}
		after = entries[len(entries)-1].ID
	}
}

func orDash(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

// Changes renders an entry compactly: +col=value for a create, -col=value
// for a delete, col: old → new for an update, field→table id for an
// association.
func Changes(e store.Entry) string {
	if e.Changes == nil {
		if e.RelatedTableName != nil && e.RelatedObjectID != nil {
			field := ""
			if e.RelatedFieldName != nil {
				field = *e.RelatedFieldName
			}
			return fmt.Sprintf("%s→%s %s", field, *e.RelatedTableName, *e.RelatedObjectID)
		}
		return ""
	}
	var parts []string
	for _, col := range slices.Sorted(maps.Keys(e.Changes.AddedFields)) {
		parts = append(parts, fmt.Sprintf("+%s=%s", col, e.Changes.AddedFields[col]))
	}
	for _, col := range slices.Sorted(maps.Keys(e.Changes.RemovedFields)) {
		parts = append(parts, fmt.Sprintf("-%s=%s", col, e.Changes.RemovedFields[col]))
	}
	for _, col := range slices.Sorted(maps.Keys(e.Changes.ChangedFields)) {
		v := e.Changes.ChangedFields[col]
		parts = append(parts, fmt.Sprintf("%s: %s → %s", col, v[0], v[1]))
	}
	return strings.Join(parts, "  ")
}
