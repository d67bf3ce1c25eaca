package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/auditpgx/auditpgx/store"
)

func runLog(ctx context.Context, e env, args []string) error {
	fs, c := newFlags("log", "", "List the latest entries that match the flags, oldest first", e.stderr)
	var (
		table, id, actorName, since, until, ops string
		limit                                   int
		asJSON                                  bool
	)
	fs.StringVar(&table, "table", "", "only entries of the audited table `name`")
	fs.StringVar(&id, "id", "", "only entries of the object with this primary key, as entries write it (7, eu, [7,\"eu\"]) or in any JSON spelling of it")
	fs.StringVar(&actorName, "actor", "", "only entries written by `name` (created_by)")
	fs.StringVar(&ops, "op", "", "only entries of these `operations`, comma-separated (create, update, delete, associate, disassociate, truncate, snapshot, suppressed)")
	fs.StringVar(&since, "since", "", "only entries created at or after this `time`")
	fs.StringVar(&until, "until", "", "only entries created before this `time`")
	contextFilter := contextFlag{}
	fs.Var(contextFilter, "context", "only entries whose context holds `key=value` (the value read as JSON when it is JSON, else as a string); repeat for several")
	fs.IntVar(&limit, "limit", 100, "show at most `N` entries, 1 to 1000")
	fs.BoolVar(&asJSON, "json", false, "write one JSON object per line instead of a table")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	for _, a := range []struct{ flag, value string }{{"--table", table}, {"--id", id}, {"--actor", actorName}} {
		if err := checkText(a.flag, a.value); err != nil {
			return err
		}
	}
	q := store.Query{Table: c.entryTable, TableName: table, ObjectID: id, Actor: actorName, Limit: limit, Descending: true}
	if len(contextFilter) > 0 {
		q.Context = contextFilter
	}
	if ops != "" {
		for _, op := range strings.Split(ops, ",") {
			q.Operations = append(q.Operations, store.Operation(strings.TrimSpace(op)))
		}
	}
	if limit < 1 || limit > 1000 {
		return usagef("--limit: %d is not from 1 to 1000", limit)
	}
	var err error
	if since != "" {
		if q.Since, err = parseTime("--since", since, e.now()); err != nil {
			return err
		}
	}
	if until != "" {
		if q.Until, err = parseTime("--until", until, e.now()); err != nil {
			return err
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return usagef("--until %s is before --since %s", q.Until.UTC().Format(time.RFC3339Nano), q.Since.UTC().Format(time.RFC3339Nano))
	}
	db, err := c.open(ctx, e)
	if err != nil {
		return err
	}
	defer db.Close()
	if id != "" {
		if q.ObjectID, err = resolveObject(ctx, db, c.entryTable, table, id); err != nil {
			return err
		}
	}
	page, err := store.ListPage(ctx, db, q)
	var qe *store.QueryError
	if errors.As(err, &qe) {
		return usagef("%v", err)
	}
	if err != nil {
		return err
	}
	entries := page.Entries
	if len(entries) == 0 && table != "" {
		if err := checkTable(ctx, db, c.entryTable, table); err != nil {
			return err
		}
	}
	slices.Reverse(entries)
	if asJSON {
		err = jsonLines(e.stdout, entries)
	} else {
		err = logTable(e, entries)
	}
	if err != nil {
		return err
	}
	if page.Next != "" {
		fmt.Fprintf(e.stderr, "(the latest %d entries; earlier ones match too: raise --limit or narrow with --since)\n", len(entries))
	}
	return nil
}

func logTable(e env, entries []store.Entry) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED\tACTOR\tOPERATION\tTABLE\tOBJECT\tCHANGES")
	for i := range entries {
		en := &entries[i]
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", en.ID, when(en.Created), actor(en), en.Operation,
			cell(en.TableName), cell(en.ObjectID), summary(en))
	}
	return tw.Flush()
}

// contextFlag collects --context key=value filters.
type contextFlag map[string]any

func (f contextFlag) String() string { return "" }

func (f contextFlag) Set(s string) error {
	key, value, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return fmt.Errorf("%q is not key=value", s)
	}
	if err := checkText("--context", s); err != nil {
		return err
	}
	var v any
	if err := json.Unmarshal([]byte(value), &v); err != nil {
		v = value // not JSON: a string
	}
	f[key] = v
	return nil
}
