package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/auditpgx/auditpgx/store"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// usageError is a mistake on the command line (exit code 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func isUsage(err error) bool {
	var u *usageError
	return errors.As(err, &u)
}

// errHelp is returned when -h was asked for; usage has been printed.
var errHelp = errors.New("help requested")

// common holds the flags every command that reads the database has.
type common struct {
	dsn        string
	entryTable string
}

// newFlags returns a flag set for a command, with --dsn and --entry-table,
// printing its usage to w.
func newFlags(name, args, summary string, w io.Writer) (*flag.FlagSet, *common) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	c := &common{}
	fs.StringVar(&c.dsn, "dsn", "", "PostgreSQL connection string (default $DATABASE_URL)")
	fs.StringVar(&c.entryTable, "entry-table", "auditpgx_entry", "the entry table, optionally schema-qualified")
	fs.Usage = func() {
		fmt.Fprintf(w, "Usage: auditpgx %s\n\n%s.\n\nFlags:\n", strings.TrimSpace(name+" [flags] "+args), summary)
		fs.PrintDefaults()
	}
	return fs, c
}

// parse reads flags placed before, between or after the positional
// arguments, and checks there are exactly want of those (by name).
func parse(fs *flag.FlagSet, args []string, want ...string) ([]string, error) {
	positional, err := parseVariadic(fs, args)
	if err != nil {
		return nil, err
	}
	if len(positional) != len(want) {
		if len(positional) < len(want) {
			return nil, usagef("missing %s", strings.Join(want[len(positional):], " and "))
		}
		return nil, usagef("unexpected argument %q", positional[len(want)])
	}
	return positional, nil
}

// parseVariadic reads flags placed before, between or after any number of
// positional arguments; after "--", everything is positional.
func parseVariadic(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, &usageError{err.Error()}
		}
		consumed := len(rest) - fs.NArg()
		afterDashes := consumed > 0 && rest[consumed-1] == "--"
		rest = fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if afterDashes {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		rest = rest[1:]
	}
}

// source checks --entry-table and returns the connection string of --dsn
// or $DATABASE_URL.
func (c *common) source(e env) (string, error) {
	if _, err := store.DDL(c.entryTable); err != nil {
		return "", usagef("--entry-table: %v", err)
	}
	dsn := c.dsn
	if dsn == "" {
		dsn = e.getenv("DATABASE_URL")
	}
	if dsn == "" {
		return "", usagef("no database: pass --dsn or set DATABASE_URL")
	}
	return dsn, nil
}

// open checks --entry-table and connects to the database named by --dsn or
// $DATABASE_URL.
func (c *common) open(ctx context.Context, e env) (*sql.DB, error) {
	dsn, err := c.source(e)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("--dsn: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connecting to the database: %w", err)
	}
	return db, nil
}

// parseTime reads a time as the usage text describes; name is the flag or
// argument, for the error.
func parseTime(name, s string, now time.Time) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", time.DateTime, time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usagef("%s: %q is not a time (2024-03-01T12:00:00Z, 2024-03-01, or a duration back from now such as 24h)", name, s)
}
