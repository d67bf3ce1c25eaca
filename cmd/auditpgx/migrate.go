package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/auditpgx/auditpgx/store"
)

func runMigrate(ctx context.Context, e env, args []string) error {
	fs, c := newFlags("migrate", "", "Create the entry table and its indexes if they are absent; it is safe to run again", e.stderr)
	without := fs.String("without-indexes", "", "comma-separated indexes to leave out: object, created, tx, actor, related, changes (which also serves --context)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	var opts []store.MigrateOption
	if *without != "" {
		opts = append(opts, store.WithoutIndexes(strings.Split(*without, ",")...))
	}
	db, err := c.open(ctx, e)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := store.Migrate(ctx, db, c.entryTable, opts...); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "entry table %s is ready\n", c.entryTable)
	return nil
}
