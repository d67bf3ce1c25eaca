package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/auditpgx/auditpgx/store"
)

func runHistory(ctx context.Context, e env, args []string) error {
	fs, c := newFlags("history", "TABLE ID", "Show every entry of one object, oldest first, each change as old → new.\n"+
		"ID is the primary key as entries write it: 7, eu, or [7,\"eu\"] for a composite key\n"+
		"(any JSON spelling of it, such as '[7, \"eu\"]', finds it too).\n"+
		"Entries under the keys the object had before an update of its key are included", e.stderr)
	asJSON := fs.Bool("json", false, "write one JSON object per line")
	pos, err := parse(fs, args, "TABLE", "ID")
	if err != nil {
		return err
	}
	if err := errors.Join(checkText("TABLE", pos[0]), checkText("ID", pos[1])); err != nil {
		return err
	}
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
	entries, err := store.History(ctx, db, table, id, store.WithEntryTable(c.entryTable))
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		if err := checkTable(ctx, db, c.entryTable, table); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "no entries for %s %q\n", table, id)
		return nil
	}
	if *asJSON {
		return jsonLines(e.stdout, entries)
	}
	return historyText(e.stdout, entries)
}

// historyText writes each entry as a header line and one line per field.
func historyText(w io.Writer, entries []store.Entry) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i := range entries {
		en := &entries[i]
		if i > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintf(tw, "#%d %s %s %s at %s by %s\n", en.ID, en.Operation, cell(en.TableName), cell(en.ObjectID),
			when(en.Created), actor(en))
		switch en.Operation {
		case store.OpAssociate, store.OpDisassociate:
			sign := "+"
			if en.Operation == store.OpDisassociate {
				sign = "-"
			}
			fmt.Fprintf(tw, "    %s\t%s %s %s\n", cell(deref(en.RelatedFieldName)), sign,
				cell(deref(en.RelatedTableName)), cell(deref(en.RelatedObjectID)))
			continue
		case store.OpSuppressed:
			fmt.Fprintf(tw, "    %s\n", suppressed(en))
			continue
		}
		if en.Changes == nil {
			continue
		}
		const none = "(none)"
		for _, f := range fields(en) {
			from, to := none, none
			if v, ok := en.Changes.AddedFields[f]; ok {
				to = value(v)
			}
			if v, ok := en.Changes.RemovedFields[f]; ok {
				from = value(v)
			}
			if pair, ok := en.Changes.ChangedFields[f]; ok {
				from, to = value(pair[0]), value(pair[1])
			}
			if v, ok := en.Changes.ReplacedFields[f]; ok {
				from, to = "?", value(v) // the old value could not be read
			}
			fmt.Fprintf(tw, "    %s\t%s\t→ %s\n", cell(f), from, to)
		}
	}
	return tw.Flush()
}
