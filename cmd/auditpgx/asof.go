package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/auditpgx/auditpgx/store"
)

func runAsOf(ctx context.Context, e env, args []string) error {
	fs, c := newFlags("as-of", "TABLE ID TIME", "Show one object's audited columns as they were at TIME, rebuilt from its entries.\n"+
		"Redacted columns read \"$encrypted$\"; excluded columns are absent", e.stderr)
	asJSON := fs.Bool("json", false, "write a JSON object")
	pos, err := parse(fs, args, "TABLE", "ID", "TIME")
	if err != nil {
		return err
	}
	if err := errors.Join(checkText("TABLE", pos[0]), checkText("ID", pos[1])); err != nil {
		return err
	}
	at, err := parseTime("TIME", pos[2], e.now())
	if err != nil {
		return err
	}
	at = at.UTC() // output times are UTC, whatever offset TIME was written with
	db, err := c.open(ctx, e)
	if err != nil {
		return err
	}
	defer db.Close()
	table := pos[0]
	id, err := resolveObject(ctx, db, c.entryTable, table, pos[1])
	if err != nil {
		return err
	}
	img, err := store.AsOf(ctx, db, table, id, at, store.WithEntryTable(c.entryTable))
	if errors.Is(err, store.ErrNotFound) {
		if err := checkTable(ctx, db, c.entryTable, table); err != nil {
			return err
		}
		return fmt.Errorf("%s %q did not exist at %s", table, id, at.Format(time.RFC3339Nano))
	}
	if err != nil {
		return incompleteAsOf(e, err, *asJSON)
	}
	if *asJSON {
		return jsonLines(e.stdout, []objectState{{TableName: table, ObjectID: id, AsOf: at.Format(time.RFC3339Nano), Fields: img}})
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s %s as of %s\n", cell(table), cell(id), at.Format(time.RFC3339Nano))
	for _, col := range slices.Sorted(maps.Keys(img)) {
		fmt.Fprintf(tw, "    %s\t%s\n", cell(col), value(img[col]))
	}
	return tw.Flush()
}

// objectState is the JSON of as-of, the same as the HTTP API's.
type objectState struct {
	TableName string                     `json:"table_name"`
	ObjectID  string                     `json:"object_id"`
	AsOf      string                     `json:"as_of"`
	Fields    map[string]json.RawMessage `json:"fields"`
}
