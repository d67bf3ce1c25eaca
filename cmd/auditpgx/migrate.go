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
	partition := fs.String("partition", "", "create the table partitioned by range on created, a partition per period:\n"+
		"monthly, weekly or daily; then run auditpgx maintain at least once a period\n"+
		"(an unpartitioned table is an error: docs/RETENTION.md converts one)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	var opts []store.MigrateOption
	if *without != "" {
		opts = append(opts, store.WithoutIndexes(strings.Split(*without, ",")...))
	}
	if *partition != "" {
		p, err := store.ParsePartitionPeriod(*partition)
		if err != nil {
			return usagef("--partition: %q is not monthly, weekly or daily", *partition)
		}
		opts = append(opts, store.Partitioned(p))
	}
	db, err := c.open(ctx, e)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := store.Migrate(ctx, db, c.entryTable, opts...); err != nil {
		return err
	}
	if *partition != "" {
		fmt.Fprintf(e.stdout, "entry table %s is ready, partitioned %s; run 'auditpgx maintain' at least once a period\n", c.entryTable, *partition)
		return nil
	}
	fmt.Fprintf(e.stdout, "entry table %s is ready\n", c.entryTable)
	return nil
}
