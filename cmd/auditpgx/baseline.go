package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/sqlq"
	"github.com/auditpgx/auditpgx/store"
)

// exitIncomplete is the exit code of as-of for an object whose entries do
// not account for its state at the time asked (store.ErrIncomplete).
const exitIncomplete = 3

func runBaseline(ctx context.Context, e env, args []string) error {
	fs, c := newFlags("baseline", "TABLE…", "Record the rows each TABLE holds now, one snapshot entry per row, so that the history\n"+
		"of rows that existed before auditing began starts from a known state. Each table is read\n"+
		"in one consistent snapshot while writes go on, and recorded in batches on the server.\n"+
		"A table already baselined is skipped (--force records it again); an interrupted run\n"+
		"leaves nothing of the table it was in, so run it again. Name each TABLE as the\n"+
		"application registered it (the entries' table_name).\n\n"+
		"The entries must hold what the application's entries hold: give its Exclude, Redact and\n"+
		"Only options as --exclude, --redact and --only, TABLE=COL,COL (TABLE= may be left out\n"+
		"with one TABLE). Before writing, the options are compared with the latest entry of each\n"+
		"table that lists every audited column (a create, delete or snapshot): a column it records\n"+
		"as \"$encrypted$\" must be redacted, one it leaves out excluded, and the reverse; a\n"+
		"mismatch is an error (--no-check skips the comparison)", e.stderr)
	var exclude, redact, only columnsFlag
	fs.Var(&exclude, "exclude", "`TABLE=COL,…` columns the application excludes; repeatable")
	fs.Var(&redact, "redact", "`TABLE=COL,…` columns the application redacts; repeatable")
	fs.Var(&only, "only", "`TABLE=COL,…` the only columns the application audits; repeatable")
	force := fs.Bool("force", false, "record tables already baselined again")
	batch := fs.Int("batch", auditpgx.DefaultBaselineBatch, "rows recorded per statement")
	actor := fs.String("actor", "", "created_by of the entries (default NULL)")
	noCheck := fs.Bool("no-check", false, "do not compare the options with the entries already written")
	tables, err := parseVariadic(fs, args)
	if err != nil {
		return err
	}
	if len(tables) == 0 {
		return usagef("missing TABLE")
	}
	for _, t := range tables {
		if err := checkText("TABLE", t); err != nil {
			return err
		}
	}
	if *batch < 1 {
		return usagef("--batch: %d is not a positive number of rows", *batch)
	}
	specs := map[string]*tableSpec{}
	for _, t := range tables {
		specs[t] = &tableSpec{}
	}
	for _, f := range []struct {
		name string
		flag columnsFlag
		set  func(*tableSpec, []string)
	}{
		{"--exclude", exclude, func(s *tableSpec, c []string) { s.exclude = append(s.exclude, c...) }},
		{"--redact", redact, func(s *tableSpec, c []string) { s.redact = append(s.redact, c...) }},
		{"--only", only, func(s *tableSpec, c []string) { s.only = append(s.only, c...) }},
	} {
		for _, v := range f.flag {
			table, cols, found := strings.Cut(v, "=")
			if !found {
				if len(tables) != 1 {
					return usagef("%s %s: name the table (TABLE=COL,…) when there are several", f.name, v)
				}
				table, cols = tables[0], v
			}
			s := specs[table]
			if s == nil {
				return usagef("%s %s: table %q is not one of the TABLE arguments", f.name, v, table)
			}
			var list []string
			for _, col := range strings.Split(cols, ",") {
				if col = strings.TrimSpace(col); col != "" {
					list = append(list, col)
				}
			}
			if len(list) == 0 {
				return usagef("%s %s: no column", f.name, v)
			}
			f.set(s, list)
		}
	}
	if *actor != "" {
		if err := auditpgx.ValidateActor(*actor); err != nil {
			return usagef("--actor: %v", err)
		}
		ctx = auditpgx.WithActor(ctx, *actor)
	}
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{EntryTable: c.entryTable})
	if err != nil {
		return usagef("--entry-table: %v", err)
	}
	for _, t := range tables {
		s := specs[t]
		var opts []auditpgx.TableOption
		if len(s.exclude) > 0 {
			opts = append(opts, auditpgx.Exclude(s.exclude...))
		}
		if len(s.redact) > 0 {
			opts = append(opts, auditpgx.Redact(s.redact...))
		}
		if len(s.only) > 0 {
			opts = append(opts, auditpgx.Only(s.only...))
		}
		if err := reg.RegisterTable(t, opts...); err != nil {
			return usagef("%v", err)
		}
	}

	db, err := c.open(ctx, e)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := auditpgx.Check(ctx, db, auditpgx.WithRegistry(reg)); err != nil {
		return err
	}
	if !*noCheck {
		for _, t := range tables {
			if err := compareWithEntries(ctx, e, db, c.entryTable, t, specs[t]); err != nil {
				return err
			}
		}
	}
	p := newProgress(e.stderr)
	results, err := auditpgx.Baseline(ctx, db, auditpgx.WithRegistry(reg), auditpgx.BaselineTables(tables...),
		auditpgx.BaselineBatchSize(*batch), auditpgx.OnBaselineProgress(p.update), forceOption(*force))
	p.end()
	for _, r := range results {
		if r.Skipped {
			fmt.Fprintf(e.stdout, "%s: already baselined at %s (marker entry %d); --force records it again\n",
				cell(r.Table), r.At.Format(time.RFC3339Nano), r.Marker)
			continue
		}
		fmt.Fprintf(e.stdout, "%s: %d rows baselined at %s (marker entry %d) in %s\n",
			cell(r.Table), r.Rows, r.At.Format(time.RFC3339Nano), r.Marker, r.Duration.Round(time.Millisecond))
	}
	return err
}

func forceOption(force bool) auditpgx.BaselineOption {
	if force {
		return auditpgx.BaselineForce()
	}
	return nil
}

type tableSpec struct{ exclude, redact, only []string }

// columnsFlag collects the values of a repeatable flag.
type columnsFlag []string

func (f *columnsFlag) String() string { return strings.Join(*f, " ") }

func (f *columnsFlag) Set(v string) error {
	*f = append(*f, v)
	return nil
}

// compareWithEntries refuses options that would record table otherwise
// than the application's entries do: a redacted column in the clear (or
// the reverse), a column the entries leave out, or one they hold that the
// options leave out. It compares with the latest entry that lists every
// audited column; without one there is nothing to compare with.
func compareWithEntries(ctx context.Context, e env, db *sql.DB, entryTable, table string, s *tableSpec) error {
	var (
		id      int64
		op      string
		changes []byte
	)
	entries, err := sqlq.ParseName(entryTable)
	if err != nil {
		return usagef("--entry-table: %v", err)
	}
	err = db.QueryRowContext(ctx, `SELECT id, operation, changes FROM `+entries.Quoted()+`
		WHERE table_name = $1 AND object_id <> '' AND operation IN ('create', 'delete', 'snapshot')
		ORDER BY id DESC LIMIT 1`, table).Scan(&id, &op, &changes)
	if errors.Is(err, sql.ErrNoRows) {
		fmt.Fprintf(e.stderr, "%s: no entry lists its columns yet; make sure the options are the application's\n", cell(table))
		return nil
	}
	if err != nil {
		return err
	}
	c, err := diff.Decode(changes)
	if err != nil {
		return fmt.Errorf("entry %d: %w", id, err)
	}
	recorded := c.AddedFields
	if op == string(store.OpDelete) {
		recorded = c.RemovedFields
	}
	var columns []string
	rows, err := db.QueryContext(ctx, `SELECT attname FROM pg_attribute
		WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, table)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var col string
		if err := rows.Scan(&col); err != nil {
			return err
		}
		columns = append(columns, col)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	audited := func(col string) bool {
		if len(s.only) > 0 {
			return slices.Contains(s.only, col)
		}
		return !slices.Contains(s.exclude, col)
	}
	var problems []string
	for _, col := range columns {
		v, inEntry := recorded[col]
		encrypted := inEntry && string(v) == `"`+diff.Encrypted+`"`
		switch {
		case audited(col) && !inEntry:
			problems = append(problems, fmt.Sprintf("column %q is not in it: exclude it (or the column is newer than the entry)", col))
		case !audited(col) && inEntry:
			problems = append(problems, fmt.Sprintf("column %q is in it: do not exclude it", col))
		case audited(col) && encrypted && !slices.Contains(s.redact, col):
			problems = append(problems, fmt.Sprintf("column %q is recorded as %q: redact it", col, diff.Encrypted))
		case audited(col) && inEntry && !encrypted && slices.Contains(s.redact, col):
			problems = append(problems, fmt.Sprintf("column %q is recorded in the clear: do not redact it", col))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: the options differ from the latest %s entry of the table (entry %d):\n  %s\n"+
			"give the application's options (or --no-check if they changed since)", table, op, id, strings.Join(problems, "\n  "))
	}
	return nil
}

// progress shows a Baseline's progress on w: a bar redrawn in place on a
// terminal, otherwise a line when a table starts and every five seconds.
type progress struct {
	w        io.Writer
	terminal bool
	last     time.Time
	drawn    bool
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, terminal: isTerminal(w)}
}

func (p *progress) update(s auditpgx.BaselineProgress) {
	if s.Skipped {
		return // reported with the results
	}
	now := time.Now()
	if p.terminal {
		if !s.Done && p.drawn && now.Sub(p.last) < 100*time.Millisecond {
			return
		}
		p.last, p.drawn = now, true
		const width = 30
		frac := 1.0
		if s.Total > 0 {
			frac = float64(s.Rows) / float64(s.Total)
		}
		filled := int(frac * width)
		fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%% %d/%d rows %s\x1b[K", cell(s.Table), strings.Repeat("#", filled),
			strings.Repeat(".", width-filled), 100*frac, s.Rows, s.Total, s.Elapsed.Round(time.Second))
		if s.Done {
			fmt.Fprintln(p.w)
			p.drawn = false
		}
		return
	}
	switch {
	case s.Rows == 0 && !s.Done:
		fmt.Fprintf(p.w, "%s: %d rows to record\n", cell(s.Table), s.Total)
		p.last = now
	case s.Done:
	case now.Sub(p.last) >= 5*time.Second:
		fmt.Fprintf(p.w, "%s: %d/%d rows (%.0f%%) in %s\n", cell(s.Table), s.Rows, s.Total,
			100*float64(s.Rows)/float64(max(s.Total, 1)), s.Elapsed.Round(time.Second))
		p.last = now
	}
}

// end finishes a bar left drawn by an interrupted table.
func (p *progress) end() {
	if p.terminal && p.drawn {
		fmt.Fprintln(p.w)
	}
}

// isIncomplete reports whether err says that the entries do not account
// for an object's state (exit code 3).
func isIncomplete(err error) bool {
	return errors.Is(err, store.ErrIncomplete) || errors.Is(err, store.ErrInconsistent)
}

// incompleteAsOf writes, for an as-of whose object is only partly known,
// the columns known at the time asked (to stdout, as as-of writes an
// object), and returns err, for exit code 3.
func incompleteAsOf(e env, err error, asJSON bool) error {
	var ie *store.IncompleteError
	if !errors.As(err, &ie) {
		return err
	}
	at := ie.At.UTC().Format(time.RFC3339Nano)
	if asJSON {
		if werr := jsonLines(e.stdout, []incompleteState{{objectState{TableName: ie.TableName, ObjectID: ie.ObjectID,
			AsOf: at, Fields: ie.Known}, true, ie.Gap.EntryID}}); werr != nil {
			return werr
		}
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s %s as of %s: incomplete, only the columns set since entry %d are known\n",
		cell(ie.TableName), cell(ie.ObjectID), at, ie.Gap.EntryID)
	for _, col := range slices.Sorted(maps.Keys(ie.Known)) {
		fmt.Fprintf(tw, "    %s\t%s\n", cell(col), value(ie.Known[col]))
	}
	if werr := tw.Flush(); werr != nil {
		return werr
	}
	return fmt.Errorf("%w\n(rows that existed before auditing began are known from a baseline: see 'auditpgx help baseline')", err)
}

// incompleteState is as-of's JSON for a partly known object: fields holds
// the known columns only.
type incompleteState struct {
	objectState
	Incomplete bool  `json:"incomplete"`
	GapEntryID int64 `json:"gap_entry_id"`
}
