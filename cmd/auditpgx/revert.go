package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/user"
	"slices"
	"strings"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/store"
)

// defaultRevertActor is created_by of a revert's entries when neither
// --actor nor the OS user gives one.
const defaultRevertActor = "auditpgx revert"

func runRevert(ctx context.Context, e env, args []string) error {
	fs, c := newFlags("revert", "", "Undo the changes of one transaction (--tx, the entries' tx_id) or of one entry (--entry):\n"+
		"an update's columns are set back, a deleted row is inserted again, a created row deleted, and\n"+
		"a link of a join table deleted or inserted again (join tables are not named in entries: give\n"+
		"each with --link). The statements run in one transaction through the auditpgx driver, so\n"+
		"the revert writes entries of its own, with the reason \"revert of tx N\" (or \"revert of\n"+
		"entry ID\") in their context; each must change one row, or nothing is changed. Each table\n"+
		"is audited for the run with the columns its entries list, those recorded as \"$encrypted$\"\n"+
		"redacted.\n\n"+
		"It refuses when an object changed after the entries (--force reverts anyway), when a\n"+
		"value is not in the entries: a redacted column, or one that a deleted row's entry leaves\n"+
		"out (--skip-unrestorable leaves such columns as they are, or to their defaults), and for\n"+
		"truncate, snapshot and suppressed entries. --dry-run prints the statements instead", e.stderr)
	txID := fs.Int64("tx", 0, "the transaction to undo: its entries' `tx_id`")
	entryID := fs.Int64("entry", 0, "the entry to undo: its `id`")
	dryRun := fs.Bool("dry-run", false, "print the statements and their parameters (JSON); change nothing")
	force := fs.Bool("force", false, "revert objects that changed after the entries")
	skip := fs.Bool("skip-unrestorable", false, "leave out columns whose values the entries do not hold")
	var links linksFlag
	fs.Var(&links, "link", "`OWNER.FIELD=JOIN(OWNER_COL,RELATED_COL)` the join table of an association field, e.g.\n"+
		"teams.members=team_members(team_id,user_id); repeatable")
	actor := fs.String("actor", "", "created_by of the revert's entries (default the OS user, else \""+defaultRevertActor+"\")")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	var sel store.RevertSelector
	switch {
	case *txID != 0 && *entryID != 0:
		return usagef("give --tx or --entry, not both")
	case *txID > 0:
		sel = store.RevertTx(*txID)
	case *entryID > 0:
		sel = store.RevertEntry(*entryID)
	case *txID < 0 || *entryID < 0:
		return usagef("--tx and --entry take a positive number")
	default:
		return usagef("missing --tx or --entry")
	}
	opts := []store.RevertOption{store.WithEntryTable(c.entryTable)}
	if *force {
		opts = append(opts, store.RevertForce())
	}
	if *skip {
		opts = append(opts, store.RevertSkipUnrestorable())
	}
	for _, l := range links {
		opts = append(opts, l)
	}
	who := *actor
	if who != "" {
		if err := auditpgx.ValidateActor(who); err != nil {
			return usagef("--actor: %v", err)
		}
	} else {
		who = osActor()
	}

	db, err := c.open(ctx, e)
	if err != nil {
		return err
	}
	defer db.Close()
	// Planned first without the driver, so that a refusal comes before
	// anything is registered or opened.
	stmts, err := store.Revert(ctx, db, sel, opts...)
	if err != nil {
		return revertHint(err)
	}
	if *dryRun {
		if err := printStatements(e.stdout, stmts); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "dry run: %d statement(s) would revert %s; nothing was changed\n", len(stmts), sel)
		return nil
	}
	if len(stmts) == 0 {
		fmt.Fprintf(e.stderr, "nothing to revert in %s: no column left to restore\n", sel)
		return nil
	}

	entries, err := selectedEntries(ctx, db, c.entryTable, *txID, *entryID)
	if err != nil {
		return err
	}
	reg, err := revertRegistry(ctx, db, c.entryTable, entries, links)
	if err != nil {
		return err
	}
	dsn, err := c.source(e)
	if err != nil {
		return err
	}
	connector, err := auditpgx.NewConnector(dsn, auditpgx.WithRegistry(reg))
	if err != nil {
		return fmt.Errorf("--dsn: %w", err)
	}
	audited := sql.OpenDB(connector)
	defer audited.Close()
	if err := auditpgx.Check(ctx, audited, auditpgx.WithRegistry(reg)); err != nil {
		return err
	}
	ctx = auditpgx.WithReason(auditpgx.WithActor(ctx, who), "revert of "+sel.String())
	return execRevert(ctx, e, audited, sel, opts)
}

// execRevert plans the revert again and runs it in one REPEATABLE READ
// transaction, so that the entries it checks and the rows it writes are
// seen at one instant: a row changed meanwhile fails the transaction.
func execRevert(ctx context.Context, e env, db *sql.DB, sel store.RevertSelector, opts []store.RevertOption) error {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmts, err := store.Revert(ctx, tx, sel, opts...)
	if err != nil {
		return revertHint(err)
	}
	if len(stmts) == 0 {
		fmt.Fprintf(e.stderr, "nothing to revert in %s: no column left to restore\n", sel)
		return nil
	}
	for _, st := range stmts {
		res, err := tx.ExecContext(ctx, st.SQL, st.Args...)
		if err != nil {
			return fmt.Errorf("%s: %w\nnothing was changed", st.Description, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("%s: %w\nnothing was changed", st.Description, err)
		}
		if n != 1 {
			return fmt.Errorf("%s: the statement changed %d rows, not 1: the row is not as the entry left it "+
				"(a write the entries do not show, or a change since with --force)\nnothing was changed", st.Description, n)
		}
	}
	var revertTx int64
	if err := tx.QueryRowContext(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&revertTx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	for _, st := range stmts {
		fmt.Fprintln(e.stdout, cell(st.Description))
	}
	fmt.Fprintf(e.stdout, "reverted %s: %d statement(s) in tx %d\n", sel, len(stmts), revertTx)
	return nil
}

// revertHint adds to a refusal the flag that overrides it.
func revertHint(err error) error {
	var re *store.RevertError
	switch {
	case errors.Is(err, store.ErrRevertConflict):
		return fmt.Errorf("%w\n(--force reverts anyway)", err)
	case errors.Is(err, store.ErrUnrestorable):
		return fmt.Errorf("%w\n(--skip-unrestorable goes on without such columns)", err)
	case errors.As(err, &re) && (re.Operation == store.OpAssociate || re.Operation == store.OpDisassociate) && re.Column == "":
		return fmt.Errorf("%w\n(--link OWNER.FIELD=JOIN(OWNER_COL,RELATED_COL) names a join table)", err)
	}
	return err
}

// printStatements writes each statement as SQL, after a comment saying
// what it does and before one holding its parameters as JSON.
func printStatements(w io.Writer, stmts []store.Statement) error {
	for i, st := range stmts {
		if i > 0 {
			fmt.Fprintln(w)
		}
		params := make([]json.RawMessage, len(st.Args))
		for j, a := range st.Args {
			if s, ok := a.(string); ok && json.Valid([]byte(s)) {
				params[j] = json.RawMessage(s)
				continue
			}
			b, err := json.Marshal(a)
			if err != nil {
				return fmt.Errorf("entry %d: parameter $%d: %w", st.EntryID, j+1, err)
			}
			params[j] = b
		}
		p, err := json.Marshal(params)
		if err != nil {
			return fmt.Errorf("entry %d: parameters: %w", st.EntryID, err)
		}
		if _, err := fmt.Fprintf(w, "-- %s\n%s;\n-- parameters: %s\n", cell(st.Description), st.SQL, p); err != nil {
			return err
		}
	}
	return nil
}

// osActor is the OS user's name, or defaultRevertActor.
func osActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" && auditpgx.ValidateActor(u.Username) == nil {
		return u.Username
	}
	return defaultRevertActor
}

// selectedEntries reads the entries of transaction txID, or entry entryID,
// in id order.
func selectedEntries(ctx context.Context, db *sql.DB, entryTable string, txID, entryID int64) ([]store.Entry, error) {
	if txID == 0 {
		en, err := store.Get(ctx, db, entryID, store.WithEntryTable(entryTable))
		if err != nil {
			return nil, err
		}
		return []store.Entry{en}, nil
	}
	q := store.Query{Table: entryTable, TxID: txID, Limit: 1000}
	var out []store.Entry
	for {
		page, err := store.ListPage(ctx, db, q)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Entries...)
		if page.Next == "" {
			return out, nil
		}
		q.Cursor = page.Next
	}
}

// revertedTable is what the entries of one table say of its columns.
type revertedTable struct {
	cols, redacted map[string]bool
}

// revertRegistry registers, for the revert's own entries, each table the
// entries change with the columns they list (auditpgx.Only, those that
// the table still has) and those recorded as "$encrypted$" redacted, and
// each join table of a --link whose field they associate.
func revertRegistry(ctx context.Context, db *sql.DB, entryTable string, entries []store.Entry, links linksFlag) (*auditpgx.Registry, error) {
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{EntryTable: entryTable})
	if err != nil {
		return nil, usagef("--entry-table: %v", err)
	}
	tables := map[string]*revertedTable{}
	joins := map[string]auditpgx.M2M{}
	for i := range entries {
		en := &entries[i]
		switch en.Operation {
		case store.OpAssociate, store.OpDisassociate:
			for _, l := range links {
				if l.OwnerTable == en.TableName && l.Field == deref(en.RelatedFieldName) {
					joins[l.JoinTable] = auditpgx.M2M{Field: l.Field,
						Owner:   auditpgx.Ref{Table: l.OwnerTable, Column: l.OwnerColumn},
						Related: auditpgx.Ref{Table: deref(en.RelatedTableName), Column: l.RelatedColumn}}
				}
			}
			continue
		}
		if en.Changes == nil {
			continue // refused by store.Revert
		}
		t := tables[en.TableName]
		if t == nil {
			t = &revertedTable{cols: map[string]bool{}, redacted: map[string]bool{}}
			tables[en.TableName] = t
		}
		note := func(col string, encrypted bool) {
			t.cols[col] = true
			if encrypted {
				t.redacted[col] = true
			}
		}
		for col, v := range en.Changes.AddedFields {
			note(col, isEncrypted(v))
		}
		for col, v := range en.Changes.RemovedFields {
			note(col, isEncrypted(v))
		}
		for col, pair := range en.Changes.ChangedFields {
			note(col, isEncrypted(pair[0]) && isEncrypted(pair[1]))
		}
		for col, v := range en.Changes.ReplacedFields {
			note(col, isEncrypted(v))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(tables)) {
		existing, err := tableColumns(ctx, db, name)
		if err != nil {
			return nil, err
		}
		t := tables[name]
		var only, redact []string
		for _, col := range existing {
			if t.cols[col] {
				only = append(only, col)
				if t.redacted[col] {
					redact = append(redact, col)
				}
			}
		}
		if len(only) == 0 {
			// Not even the revert's own entries could say what it did.
			return nil, fmt.Errorf("%s: none of the columns its entries list is in the table now: the revert could not be recorded", name)
		}
		opts := []auditpgx.TableOption{auditpgx.Only(only...)}
		if len(redact) > 0 {
			opts = append(opts, auditpgx.Redact(redact...))
		}
		if err := reg.RegisterTable(name, opts...); err != nil {
			return nil, err
		}
	}
	for _, join := range slices.Sorted(maps.Keys(joins)) {
		if err := reg.RegisterM2M(join, joins[join]); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// tableColumns lists the columns of the table that name (as entries'
// table_name writes it) means, in table order; none when there is no
// such table.
func tableColumns(ctx context.Context, db *sql.DB, name string) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT attname FROM pg_attribute
		WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, name)
	if err != nil {
		return nil, fmt.Errorf("reading the columns of %s: %w", name, err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var col string
		if err := rows.Scan(&col); err != nil {
			return nil, err
		}
		cols = append(cols, col)
	}
	return cols, rows.Err()
}

func isEncrypted(v json.RawMessage) bool {
	var s string
	return json.Unmarshal(v, &s) == nil && s == diff.Encrypted
}

// linksFlag collects --link values.
type linksFlag []store.RevertLink

func (f *linksFlag) String() string {
	parts := make([]string, len(*f))
	for i, l := range *f {
		parts[i] = fmt.Sprintf("%s.%s=%s(%s,%s)", l.OwnerTable, l.Field, l.JoinTable, l.OwnerColumn, l.RelatedColumn)
	}
	return strings.Join(parts, " ")
}

// Set reads OWNER.FIELD=JOIN(OWNER_COL,RELATED_COL); OWNER and JOIN may be
// schema-qualified, FIELD is what follows the last dot before "=".
func (f *linksFlag) Set(v string) error {
	const form = "want OWNER.FIELD=JOIN(OWNER_COL,RELATED_COL)"
	left, right, ok := strings.Cut(v, "=")
	dot := strings.LastIndex(left, ".")
	open := strings.LastIndex(right, "(")
	if !ok || dot <= 0 || dot == len(left)-1 || open <= 0 || !strings.HasSuffix(right, ")") {
		return errors.New(form)
	}
	cols := strings.Split(right[open+1:len(right)-1], ",")
	if len(cols) != 2 || strings.TrimSpace(cols[0]) == "" || strings.TrimSpace(cols[1]) == "" {
		return errors.New(form + ": two columns in the parentheses")
	}
	l := store.RevertLink{OwnerTable: strings.TrimSpace(left[:dot]), Field: strings.TrimSpace(left[dot+1:]),
		JoinTable: strings.TrimSpace(right[:open]), OwnerColumn: strings.TrimSpace(cols[0]), RelatedColumn: strings.TrimSpace(cols[1])}
	for _, o := range *f {
		if o.OwnerTable == l.OwnerTable && o.Field == l.Field {
			return fmt.Errorf("%s.%s is given twice", l.OwnerTable, l.Field)
		}
	}
	*f = append(*f, l)
	return nil
}
