package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/auditpgx/auditpgx/internal/sqlq"
)

var (
	// ErrNotRevertible is wrapped by every refusal of [Revert]: the error
	// is a *[RevertError] naming the entry, and the table and column where
	// one is at fault.
	ErrNotRevertible = errors.New("auditpgx: cannot revert")

	// ErrUnrestorable is wrapped, with ErrNotRevertible, when [Revert]
	// cannot restore a column because its entry does not hold its value:
	// redacted ("$encrypted$"), excluded (absent from the entry), a
	// replaced_fields update (old values not recorded), or a column that
	// the table no longer has. [RevertSkipUnrestorable] goes on without
	// those columns.
	ErrUnrestorable = errors.New("auditpgx: value not recorded")

	// ErrRevertConflict is wrapped, with ErrNotRevertible, when [Revert]
	// finds that an object it would change has changed since: a later
	// entry of it, outside the selection. [RevertForce] reverts anyway.
	ErrRevertConflict = errors.New("auditpgx: changed since")
)

// RevertError is a refusal of [Revert]. errors.Is(err, ErrNotRevertible)
// is true, and so is errors.Is with ErrUnrestorable or ErrRevertConflict
// when that is the reason. The message names the entry, its table and
// object, the column or later entry at fault, and never a column's value.
type RevertError struct {
	EntryID   int64
	Operation Operation
	TableName string
	ObjectID  string
	// Column is the column at fault, "" when the refusal is not about one.
	Column string
	// LaterEntryID is, for a conflict, the first later entry that changed
	// the object.
	LaterEntryID int64
	// Reason says what is wrong, starting with the column or later entry.
	Reason string

	kind error // ErrUnrestorable, ErrRevertConflict or nil
}

func (e *RevertError) Error() string {
	return fmt.Sprintf("%s entry %d (%s of %s %q): %s", ErrNotRevertible, e.EntryID, e.Operation, e.TableName,
		e.ObjectID, e.Reason)
}

// Unwrap makes errors.Is(err, ErrNotRevertible) true, and errors.Is with
// ErrUnrestorable or ErrRevertConflict for those refusals.
func (e *RevertError) Unwrap() []error {
	if e.kind == nil {
		return []error{ErrNotRevertible}
	}
	return []error{ErrNotRevertible, e.kind}
}

func refuse(e *Entry, kind error, column, format string, args ...any) *RevertError {
	return &RevertError{EntryID: e.ID, Operation: e.Operation, TableName: e.TableName, ObjectID: e.ObjectID,
		Column: column, Reason: fmt.Sprintf(format, args...), kind: kind}
}

// RevertSelector says which entries [Revert] undoes: [RevertEntry] or
// [RevertTx]. The zero value selects nothing and is an error.
type RevertSelector struct {
	entryID, txID int64
}

// RevertEntry selects one entry by its id.
func RevertEntry(id int64) RevertSelector { return RevertSelector{entryID: id} }

// RevertTx selects every entry written by one transaction (the entries'
// tx_id).
func RevertTx(txID int64) RevertSelector { return RevertSelector{txID: txID} }

// String is "entry 12" or "tx 765", as messages name the selection.
func (s RevertSelector) String() string {
	if s.txID != 0 {
		return fmt.Sprintf("tx %d", s.txID)
	}
	return fmt.Sprintf("entry %d", s.entryID)
}

// RevertOption configures [Revert]: [RevertForce],
// [RevertSkipUnrestorable], [RevertLink] values and [WithEntryTable].
type RevertOption interface {
	applyRevert(*revertConfig) error
}

type revertConfig struct {
	options
	force, skip bool
	links       []RevertLink
}

type revertFunc func(*revertConfig)

func (f revertFunc) applyRevert(c *revertConfig) error {
	f(c)
	return nil
}

// applyRevert lets [WithEntryTable] configure [Revert]. [WithKeys] is
// refused: Revert reads every table's key from the catalog.
func (o Option) applyRevert(c *revertConfig) error {
	if o == nil {
		return errors.New("auditpgx: revert: a nil Option")
	}
	o(&c.options)
	if c.keysSet {
		return errors.New("auditpgx: revert: WithKeys does not apply: Revert reads each table's primary key from the catalog")
	}
	return nil
}

// RevertForce reverts objects that changed after the selected entries:
// their later changes are overwritten or, for a row deleted since, the
// statement affects no row.
func RevertForce() RevertOption {
	return revertFunc(func(c *revertConfig) { c.force = true })
}

// RevertSkipUnrestorable goes on where a column's value is not in the
// entry (see [ErrUnrestorable]): an update's revert leaves such columns as
// they are, and a re-inserted row gets their defaults. The Statement's
// Description names each column left out and why.
func RevertSkipUnrestorable() RevertOption {
	return revertFunc(func(c *revertConfig) { c.skip = true })
}

// RevertLink tells [Revert] how to undo the associate and disassociate
// entries of one join table, which the entries do not name: those whose
// table_name is OwnerTable and whose related_field_name is Field (the
// M2M.Field of auditpgx.RegisterM2M). An associate is undone by deleting
// the link from JoinTable, a disassociate by inserting it again, with
// OwnerColumn holding the entry's object_id and RelatedColumn its
// related_object_id (each converted to the column's type on the server);
// the join table's other columns get their defaults. Pass one per join
// table; without one, an association entry is refused.
type RevertLink struct {
	// OwnerTable is the owner's table as the entries name it (table_name).
	OwnerTable string
	// Field is the entries' related_field_name.
	Field string
	// JoinTable is the join table, written as in SQL: "team_members",
	// "app.team_members", `"Members"`.
	JoinTable string
	// OwnerColumn and RelatedColumn are the join table's columns that
	// refer to the owner and to the related object.
	OwnerColumn   string
	RelatedColumn string
}

func (l RevertLink) applyRevert(c *revertConfig) error {
	for _, f := range []struct{ name, v string }{{"OwnerTable", l.OwnerTable}, {"Field", l.Field},
		{"JoinTable", l.JoinTable}, {"OwnerColumn", l.OwnerColumn}, {"RelatedColumn", l.RelatedColumn}} {
		if f.v == "" {
			return fmt.Errorf("auditpgx: revert: RevertLink for %s %q: %s is empty", l.OwnerTable, l.Field, f.name)
		}
	}
	if _, err := sqlq.ParseName(l.JoinTable); err != nil {
		return fmt.Errorf("auditpgx: revert: RevertLink for %s %q: JoinTable %q: %v", l.OwnerTable, l.Field, l.JoinTable, err)
	}
	if l.OwnerColumn == l.RelatedColumn {
		return fmt.Errorf("auditpgx: revert: RevertLink for %s %q: OwnerColumn and RelatedColumn are both %q",
			l.OwnerTable, l.Field, l.OwnerColumn)
	}
	for _, o := range c.links {
		if o.OwnerTable == l.OwnerTable && o.Field == l.Field {
			return fmt.Errorf("auditpgx: revert: two RevertLink values for %s %q", l.OwnerTable, l.Field)
		}
	}
	c.links = append(c.links, l)
	return nil
}

// Statement is one SQL statement of a revert, with its parameters. Each
// argument is a string holding a JSON object of column values, which the
// statement casts to jsonb and converts to the columns' types on the
// server (jsonb_to_record, with the types the catalog gives), so values
// keep the precision and form the entries recorded.
type Statement struct {
	SQL  string
	Args []any
	// EntryID is the entry this statement undoes.
	EntryID int64
	// Description says in words what the statement does, and names the
	// columns it leaves out or to their defaults and why.
	Description string
}

// Revert returns the statements that undo the selected entries, for the
// caller to run in one transaction, in the order given: reverse id order,
// at most one statement per entry. Nothing is written: Revert only reads
// entries and the catalog. Run through the auditpgx driver, with
// auditpgx.WithReason, the statements record the revert like any other
// write (the auditpgx revert command does so).
//
//   - an update: the audited columns it changed are set back to their old
//     values (changed_fields), on the row whose key is the entry's
//     object_id, the key the update left; its key columns too, when it
//     changed the key. Columns the registration excludes are not in the
//     entry, so whatever the update did to them stays.
//   - a delete: the row is inserted again with the values of its
//     removed_fields; key columns the entry does not list are taken from
//     its object_id.
//   - a create: the row whose key is the entry's object_id is deleted.
//   - an associate or disassociate: the link is deleted from, or inserted
//     again into, the join table that a [RevertLink] names.
//
// Each statement should affect exactly one row; one that affects none
// means the row or link is not what the entry left (changed by a write
// auditpgx did not see, or since, with [RevertForce]). Values travel as
// parameters, each a JSON object converted to the columns' types on the
// server; identifiers are quoted, and the types are written as the
// catalog's format_type writes them (qualified when not on db's
// search_path, which should be the one the statements run with). Primary keys and columns come from the
// catalog of db, where each table is found by its table_name.
// Generated columns are left out; the server computes them.
//
// Revert refuses, with a *[RevertError], when:
//
//   - an entry is a truncate, a snapshot (a baseline) or a suppressed
//     statement's: their rows are not recorded one by one;
//   - an association entry has no RevertLink for its table and field;
//   - a column cannot be restored ([ErrUnrestorable]): a redacted value
//     ("$encrypted$": for an update, a column whose old and new values
//     both read so), a column of the table that a deleted row's entry
//     does not list (excluded, or added since), a column the table no
//     longer has, or the columns of an update whose old values were not
//     recorded (replaced_fields). [RevertSkipUnrestorable] leaves them
//     out instead, and an update with nothing left to restore gets no
//     statement;
//   - an object changed after the selected entries ([ErrRevertConflict]):
//     an entry of the same table and object_id with a higher id that is
//     not selected, one that moved the object to another key, or a
//     truncate or suppressed statement of the table; for a link, a later
//     entry of the same link. [RevertForce] skips this check.
//
// When the selection holds entries of a join table's own rows (a join
// table registered with RegisterTable too), those restore its links, and
// the association entries of the RevertLink naming it get no statement.
//
// A selection with no entries is an error wrapping [ErrNotFound]. Other
// errors are those of reading the entries and the catalog.
func Revert(ctx context.Context, db Querier, sel RevertSelector, opts ...RevertOption) ([]Statement, error) {
	var cfg revertConfig
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("auditpgx: revert: a nil RevertOption")
		}
		if err := o.applyRevert(&cfg); err != nil {
			return nil, err
		}
	}
	t, err := entryTableName(cfg.entryTable)
	if err != nil {
		return nil, err
	}
	entries, err := selectEntries(ctx, db, t, sel)
	if err != nil {
		return nil, err
	}
	r := &reverter{db: db, t: t, cfg: &cfg, sel: sel, tables: map[string]*relation{}}
	if err := r.check(entries); err != nil {
		return nil, err
	}
	var out []Statement
	for i := range entries {
		st, err := r.statement(ctx, &entries[i])
		if err != nil {
			return nil, err
		}
		if st != nil {
			out = append(out, *st)
		}
	}
	slices.Reverse(out)
	if !cfg.force {
		if err := r.conflicts(ctx, entries); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// selectEntries reads the selected entries in id order.
func selectEntries(ctx context.Context, db Querier, t tableName, sel RevertSelector) ([]Entry, error) {
	var (
		where string
		arg   int64
	)
	switch {
	case sel.entryID != 0 && sel.txID != 0, sel.entryID == 0 && sel.txID == 0:
		return nil, errors.New("auditpgx: revert: select an entry (RevertEntry) or a transaction (RevertTx)")
	case sel.txID != 0:
		where, arg = "tx_id = $1", sel.txID
	default:
		where, arg = "id = $1", sel.entryID
	}
	entries, err := readEntries(ctx, db, t, `SELECT `+entryColumns+` FROM `+t.Quoted()+` WHERE `+where+` ORDER BY id`, []any{arg})
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: no entries of %s in %s", ErrNotFound, sel, t.Quoted())
	}
	return entries, nil
}

// reverter plans one revert.
type reverter struct {
	db     Querier
	t      tableName
	cfg    *revertConfig
	sel    RevertSelector
	tables map[string]*relation // by the name entries give, or the join table's SQL name
	// rowTables holds the tables, as sqlq names, with selected create,
	// update or delete entries: a join table among them has its links
	// restored by those.
	rowTables map[sqlq.Name]bool
}

// check refuses what cannot be reverted whatever the tables hold, in id
// order, before any catalog is read.
func (r *reverter) check(entries []Entry) error {
	r.rowTables = map[sqlq.Name]bool{}
	for i := range entries {
		e := &entries[i]
		switch e.Operation {
		case OpCreate, OpUpdate, OpDelete:
			if e.Changes == nil {
				return refuse(e, nil, "", "the entry has no changes")
			}
			if n, err := sqlq.ParseName(e.TableName); err == nil {
				r.rowTables[n] = true
			}
		case OpAssociate, OpDisassociate:
			if _, err := r.link(e); err != nil {
				return err
			}
		case OpTruncate:
			return refuse(e, nil, "", "a truncate's rows are not recorded")
		case OpSnapshot:
			return refuse(e, nil, "", "a baseline's snapshot entry records a row, not a change")
		case OpSuppressed:
			return refuse(e, nil, "", "a statement run under WithoutAudit wrote its rows without entries")
		default:
			return refuse(e, nil, "", "unknown operation")
		}
	}
	return nil
}

// link returns the RevertLink for an association entry.
func (r *reverter) link(e *Entry) (RevertLink, error) {
	field := deref(e.RelatedFieldName)
	for _, l := range r.cfg.links {
		if l.OwnerTable == e.TableName && l.Field == field {
			return l, nil
		}
	}
	return RevertLink{}, refuse(e, nil, "", "the entries do not name the join table of %s field %q: pass a RevertLink for it",
		e.TableName, field)
}

// relationOf reads, once per table, what the catalog says of it.
func (r *reverter) relationOf(ctx context.Context, name string, e *Entry) (*relation, error) {
	if rel, ok := r.tables[name]; ok {
		return rel, nil
	}
	rel, err := readRelation(ctx, r.db, name)
	if err != nil {
		var missing *missingRelation
		if errors.As(err, &missing) {
			return nil, refuse(e, nil, "", "%s", missing.reason)
		}
		return nil, err
	}
	r.tables[name] = rel
	return rel, nil
}

// statement plans the statement that undoes e, nil when none is needed.
func (r *reverter) statement(ctx context.Context, e *Entry) (*Statement, error) {
	switch e.Operation {
	case OpAssociate, OpDisassociate:
		l, err := r.link(e)
		if err != nil {
			return nil, err
		}
		if n, _ := sqlq.ParseName(l.JoinTable); r.rowTables[n] {
			return nil, nil
		}
		rel, err := r.relationOf(ctx, l.JoinTable, e)
		if err != nil {
			return nil, err
		}
		return linkStatement(e, l, rel)
	}
	rel, err := r.relationOf(ctx, e.TableName, e)
	if err != nil {
		return nil, err
	}
	if len(rel.keys) == 0 {
		return nil, refuse(e, nil, "", "table %s has no primary key", e.TableName)
	}
	switch e.Operation {
	case OpCreate:
		return deleteStatement(e, rel)
	case OpDelete:
		return r.insertStatement(e, rel)
	}
	return r.updateStatement(e, rel)
}

// columnsText lists column names for a description: "a", "b".
func columnsText(cols []string) string {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = fmt.Sprintf("%q", c)
	}
	return strings.Join(quoted, ", ")
}

// skipped is a column a statement leaves out, and why.
type skipped struct{ column, why string }

// describeSkipped appends to desc what becomes of the columns left out.
func describeSkipped(desc string, cols []skipped, fate string) string {
	if len(cols) == 0 {
		return desc
	}
	parts := make([]string, len(cols))
	for i, s := range cols {
		parts[i] = fmt.Sprintf("%q %s (%s)", s.column, fate, s.why)
	}
	return desc + "; " + strings.Join(parts, ", ")
}

// unrestorable refuses, or with RevertSkipUnrestorable notes, a column
// whose value is not in the entry.
func (r *reverter) unrestorable(e *Entry, col, why, hint string, into *[]skipped) error {
	if !r.cfg.skip {
		return refuse(e, ErrUnrestorable, col, "column %q is %s (RevertSkipUnrestorable %s)", col, why, hint)
	}
	*into = append(*into, skipped{col, why})
	return nil
}

// sortedSkipped orders skipped columns by name, for stable descriptions.
func sortedSkipped(s []skipped) []skipped {
	slices.SortFunc(s, func(a, b skipped) int { return strings.Compare(a.column, b.column) })
	return s
}
