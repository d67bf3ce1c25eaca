package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/auditpgx/auditpgx/store"
)

func runPrune(ctx context.Context, e env, args []string) error {
	fs, c := newFlags("prune", "--before TIME", "Remove the entries created before --before. On a partitioned entry table, the\n"+
		"partitions wholly before it are detached and dropped, one at a time; on an unpartitioned one,\n"+
		"the entries are deleted in batches of --batch, each in a short transaction of its own. With\n"+
		"--archive, each partition or batch is first written to DIR as NAME.ndjson.gz (one entry as\n"+
		"JSON a line) with NAME.manifest.json, then read back and checked; auditpgx restore loads it\n"+
		"back. Run it as the entry table's owner: the application's role may not remove entries.\n"+
		"When the entry table is sealed, entries no checkpoint covers yet are not removed: prune refuses", e.stderr)
	before := fs.String("before", "", "the cut: a time, or an age such as 400d or 9600h (required)")
	archive := fs.String("archive", "", "an existing directory to archive the entries to before removing them")
	batch := fs.Int("batch", 10000, "the most entries one transaction removes from an unpartitioned entry table")
	lockTimeout := fs.Duration("lock-timeout", 5*time.Second, "give up after waiting this long for the lock that detaching a partition takes (0: wait as long as it takes)")
	sealTable := fs.String("seal-table", "", "the seal table (auditpgx seal): only sealed entries are removed, and each archive's manifest\n"+
		"records where its entries stood in the hash chain (default auditpgx_seal, when it exists)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *before == "" {
		return usagef("--before is required")
	}
	cut, err := parseAge("--before", *before, e.now())
	if err != nil {
		return err
	}
	if *batch < 1 {
		return usagef("--batch: %d is not positive", *batch)
	}
	if *lockTimeout < 0 {
		return usagef("--lock-timeout: %v is negative", *lockTimeout)
	}
	db, err := c.open(ctx, e)
	if err != nil {
		return err
	}
	defer db.Close()
	p := newPruneProgress(e.stderr)
	res, err := store.Prune(ctx, db, c.entryTable, store.PruneOptions{Before: cut, ArchiveDir: *archive, BatchSize: *batch,
		LockTimeout: *lockTimeout, Progress: p.step, SealTable: *sealTable})
	p.end()
	if err != nil {
		return err
	}
	what := "batches"
	if res.Partitioned {
		what = "partitions dropped"
	}
	fmt.Fprintf(e.stdout, "removed %d entries created before %s from %s (%s: %d)\n", res.Entries, when(cut), c.entryTable, what, len(res.Steps))
	for _, name := range res.Kept {
		fmt.Fprintf(e.stdout, "kept %s: it holds entries from before the cut and after it, or any (DEFAULT)\n", name)
	}
	return nil
}

// parseAge reads a time as parseTime does, or an age in days (400d).
func parseAge(name, s string, now time.Time) (time.Time, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	return parseTime(name, s, now)
}

// pruneProgress shows Prune's steps on w: one line redrawn in place on a
// terminal, otherwise a line a step.
type pruneProgress struct {
	w        io.Writer
	terminal bool
	drawn    bool
	entries  int64
	steps    int
}

func newPruneProgress(w io.Writer) *pruneProgress {
	return &pruneProgress{w: w, terminal: isTerminal(w)}
}

func (p *pruneProgress) step(s store.PruneStep) {
	p.entries += s.Entries
	p.steps++
	what := fmt.Sprintf("entries %d to %d", s.FirstID, s.LastID)
	if s.Partition != "" {
		what = "partition " + cell(s.Partition)
	}
	line := fmt.Sprintf("removed %s: %d entries, locks held %.1fms", what, s.Entries, float64(s.Locked)/float64(time.Millisecond))
	if s.Archive != "" {
		line += ", archived to " + cell(s.Archive)
	}
	if p.terminal {
		fmt.Fprintf(p.w, "\r%d entries removed in %d steps; last: %s\x1b[K", p.entries, p.steps, line)
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, line)
}

// end finishes a line left drawn.
func (p *pruneProgress) end() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}

// isTerminal reports whether w is a terminal that can redraw a line.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}
