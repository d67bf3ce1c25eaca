package main

import (
	"context"
	"fmt"

	"github.com/auditpgx/auditpgx/store"
)

func runRestore(ctx context.Context, e env, args []string) error {
	fs, c := newFlags("restore", "FILE…", "Load archives written by auditpgx prune --archive back into the entry table,\n"+
		"each checked against its manifest first. Entries keep their ids; those already there are\n"+
		"skipped, so it is safe to run again. FILE is NAME.ndjson.gz or NAME.manifest.json", e.stderr)
	files, err := parseVariadic(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return usagef("missing FILE")
	}
	db, err := c.open(ctx, e)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, f := range files {
		res, err := store.Restore(ctx, db, c.entryTable, f)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: %d entries restored, %d already there\n", cell(f), res.Restored, res.Skipped)
	}
	return nil
}
