package main

import (
	"context"
	"fmt"
	"time"

	"github.com/auditpgx/auditpgx/store"
)

func runMaintain(ctx context.Context, e env, args []string) error {
	fs, c := newFlags("maintain", "", "Create the partitions of a partitioned entry table for the current period and the\n"+
		"--future ones after it, and its DEFAULT partition, as far as they are absent. It is safe to\n"+
		"run again, from cron or at start-up, and from several processes at once. Run it as the entry\n"+
		"table's owner, at least once a period. On an unpartitioned entry table it does nothing", e.stderr)
	future := fs.Int("future", 3, "how many periods after the current one get a partition")
	lockTimeout := fs.Duration("lock-timeout", 5*time.Second, "give up, changing nothing, after waiting this long for a lock (0: wait as long as it takes)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *future < 0 {
		return usagef("--future: %d is negative", *future)
	}
	if *lockTimeout < 0 {
		return usagef("--lock-timeout: %v is negative", *lockTimeout)
	}
	opts := store.MaintainOptions{Future: *future, LockTimeout: *lockTimeout}
	if *future == 0 {
		opts.Future = -1 // none but the current period
	}
	db, err := c.open(ctx, e)
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := store.Maintain(ctx, db, c.entryTable, opts)
	if err != nil {
		return err
	}
	if !res.Partitioned {
		fmt.Fprintf(e.stdout, "entry table %s is not partitioned: nothing to do\n", c.entryTable)
		return nil
	}
	for _, name := range res.Created {
		fmt.Fprintf(e.stdout, "created partition %s\n", name)
	}
	if res.Moved > 0 {
		fmt.Fprintf(e.stdout, "moved %d entries from the DEFAULT partition into the partitions of their periods\n", res.Moved)
	}
	for _, name := range res.Overlapping {
		fmt.Fprintf(e.stdout, "skipped %s: another partition holds part of its period\n", name)
	}
	fmt.Fprintf(e.stdout, "entry table %s is partitioned %s: %d partitions created\n", c.entryTable, res.Period, len(res.Created))
	return nil
}
