package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// Get returns the entry with the given id. The error wraps [ErrNotFound]
// when there is none.
func Get(ctx context.Context, db Querier, id int64, opts ...Option) (Entry, error) {
	o := applyOptions(opts)
	t, err := entryTableName(o.entryTable)
	if err != nil {
		return Entry{}, err
	}
	entries, err := readEntries(ctx, db, t, `SELECT `+entryColumns+` FROM `+t.Quoted()+` WHERE id = $1`, []any{id})
	if err != nil {
		return Entry{}, err
	}
	if len(entries) == 0 {
		return Entry{}, fmt.Errorf("%w: entry %d in %s", ErrNotFound, id, t.Quoted())
	}
	return entries[0], nil
}

// History returns every entry of one object of an audited table, in the
// order they apply: those filed under it (table_name and object_id), the
// table's truncate entries, the table's baseline markers after the
// object's first entry, and the associate and disassociate entries that
// name it as their related object.
// An object that never existed has an empty history, not an error.
//
// The order is id order, except around a baseline of the table: an entry
// written by a transaction that the baseline's snapshot did not see (one
// that committed after the snapshot was taken) comes after the baseline's
// marker even when its id is lower, since the object's snapshot entry
// does not include its change. The history of an object that existed
// before auditing began starts with its snapshot entry, or, when the
// table was baselined after the driver was adopted, with the entries
// written in between (an update of no known object, and then the snapshot
// entry that replaces what they left).
//
// When the object's primary key was updated, its history includes its
// entries under the ids it had before (up to the update that gave it
// objectID) and the update that moved it away from objectID, if any. The
// key columns come from [WithKeys] or else the catalog (see there); when
// neither knows them, only the entries under objectID are returned.
func History(ctx context.Context, db Querier, table, objectID string, opts ...Option) ([]Entry, error) {
	l, err := newLineage(ctx, db, table, opts)
	if err != nil {
		return nil, err
	}
	l.related = true
	entries, _, err := l.collect(ctx, objectID)
	return entries, err
}

// AsOf returns the audited columns of one object as they were at t,
// rebuilt from its entries created at or before t (entries of one
// statement share a created time; they apply in the order [History]
// gives). Values are JSON as in the entries: redacted columns read
// "$encrypted$", excluded columns are absent.
//
// A baseline's snapshot entry replaces whatever was known of the object;
// its created time is the time of the baseline's snapshot, so t before it
// sees only what the entries before it say.
//
// objectID names the object by the key it had at t; key updates are
// followed as for [History]. The error wraps [ErrNotFound] when no such
// object existed at t (not yet created, deleted, or moved to another key;
// or, before its table was baselined, an object that existed before
// auditing began and had no entry yet). It is an *[IncompleteError],
// wrapping [ErrIncomplete] (and [ErrInconsistent]), when the entries up to
// t do not account for the object's whole state: an update of an object
// with no known prior state (typically one that existed before auditing
// began, before its table was baselined), or an old value that differs
// from the rebuilt one (a write auditpgx did not see), with no create,
// delete or snapshot after it. The error carries the columns known since
// that gap, in Known; the state is known again, with no error, after a
// create or a snapshot entry of the object or a baseline of its table.
func AsOf(ctx context.Context, db Querier, table, objectID string, t time.Time, opts ...Option) (diff.Image, error) {
	l, err := newLineage(ctx, db, table, opts)
	if err != nil {
		return nil, err
	}
	l.until, l.bounded = t, true
	entries, ids, err := l.collect(ctx, objectID)
	if err != nil {
		return nil, err
	}
	r := newReplayer(map[string][]string{table: l.keys})
	r.track = ids
	r.lenient = true
	for i := range entries {
		if err := r.apply(&entries[i], true); err != nil {
			// Not a gap: an entry that cannot be read.
			return nil, err
		}
	}
	incomplete := func(gap *ReplayError, known diff.Image) error {
		if known == nil {
			known = diff.Image{}
		}
		return &IncompleteError{TableName: table, ObjectID: objectID, At: t, Gap: gap, Known: known}
	}
	if p, ok := r.parked[table][objectID]; ok {
		// Moved onto the key of an object that never moved away.
		return nil, incomplete(parkedError(p.entry, l.keys), nil)
	}
	img, ok := r.state[table][objectID]
	if gap := r.suppressed[table]; !ok && gap != nil {
		// A suppressed statement after the object's last entry may have
		// made it.
		return nil, incomplete(gap, nil)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s %q did not exist at %s", ErrNotFound, table, objectID,
			t.UTC().Format(time.RFC3339Nano))
	}
	if gap := r.partial[table][objectID]; gap != nil {
		return nil, incomplete(gap, img)
	}
	return img, nil
}

// lineage gathers the entries of one object across the ids it has had.
type lineage struct {
	db      Querier
	t       tableName // the entry table
	table   string    // the audited table, as entries name it
	keys    []string
	until   time.Time // with bounded, only entries created at or before it
	bounded bool
	related bool // also association entries naming the object as related
}

// maxLineageReads bounds the queries one lineage makes: one per id the
// object had, and again when an id turns out to be needed further.
const maxLineageReads = 1000

func newLineage(ctx context.Context, db Querier, table string, opts []Option) (*lineage, error) {
	o := applyOptions(opts)
	t, err := entryTableName(o.entryTable)
	if err != nil {
		return nil, err
	}
	l := &lineage{db: db, t: t, table: table, keys: o.keys}
	if !o.keysSet {
		if l.keys, err = catalogKeys(ctx, db, table); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// catalogKeys returns the primary-key columns of the table that table_name
// names in db's catalog, nil when there is no such table or the name is not
// one PostgreSQL reads as a table name.
func catalogKeys(ctx context.Context, db Querier, table string) ([]string, error) {
	n, err := sqlq.ParseName(table)
	if err != nil {
		return nil, nil
	}
	keys, err := queryStrings(ctx, db, `SELECT a.attname FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
		WHERE i.indrelid = to_regclass($1) AND i.indisprimary
		ORDER BY array_position(i.indkey::int2[], a.attnum)`, sqlq.QualifiedIdent(n.Schema, n.Rel))
	if err != nil {
		return nil, fmt.Errorf("auditpgx: reading the primary key of %q: %w", table, err)
	}
	return keys, nil
}

// collect returns the object's entries in the order they apply and every
// id it had. Each id is read up to a bound: the object's own id without
// one, an earlier id up to the update that moved the object off it.
func (l *lineage) collect(ctx context.Context, objectID string) ([]Entry, map[string]bool, error) {
	top := position{at: math.MaxInt64, id: math.MaxInt64}
	bounds := map[string]position{objectID: top}
	queue := []string{objectID}
	found := map[int64]Entry{}
	// The table's baselines, from the first read (which has no bound):
	// a later read may meet one that committed in between, and leaves it
	// out, with its snapshot entries.
	var (
		runs     []run
		baseline = map[int64]bool{} // by transaction
	)
	for reads := 0; len(queue) > 0; reads++ {
		if reads == maxLineageReads {
			return nil, nil, fmt.Errorf("auditpgx: history of %s %q: its key changed more than %d times",
				l.table, objectID, maxLineageReads)
		}
		id := queue[0]
		queue = queue[1:]
		entries, err := l.read(ctx, id, bounds[id].at)
		if err != nil {
			return nil, nil, err
		}
		if reads == 0 {
			for i := range entries {
				if entries[i].IsBaselineMarker() && entries[i].TableName == l.table {
					r, err := newRun(&entries[i])
					if err != nil {
						return nil, nil, err
					}
					runs = append(runs, r)
					baseline[r.tx] = true
				}
			}
		}
		for _, e := range entries {
			if reads > 0 && e.Operation == OpSnapshot && !baseline[e.TxID] {
				continue
			}
			p := e.position(l.table, runs)
			if !p.less(bounds[id]) {
				continue
			}
			found[e.ID] = e
			if e.TableName != l.table || e.ObjectID != id {
				continue
			}
			prev, err := previousID(&e, l.keys)
			if err != nil || prev == id {
				continue
			}
			if bounds[prev].less(p) {
				bounds[prev] = p
				queue = append(queue, prev)
			}
		}
	}
	out := make([]Entry, 0, len(found))
	for _, e := range found {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int {
		pa, pb := a.position(l.table, runs), b.position(l.table, runs)
		switch {
		case pa.less(pb):
			return -1
		case pb.less(pa):
			return 1
		}
		return 0
	})
	// A marker before the object's first entry of its own says nothing
	// about it.
	own := slices.IndexFunc(out, func(e Entry) bool { return e.Operation != OpTruncate && !e.IsBaselineMarker() })
	var first position
	if own >= 0 {
		first = out[own].position(l.table, runs)
	}
	out = slices.DeleteFunc(out, func(e Entry) bool {
		return e.IsBaselineMarker() && (own < 0 || e.position(l.table, runs).less(first))
	})
	seen := map[string]bool{}
	for id := range bounds {
		seen[id] = true
	}
	return out, seen, nil
}

// position is where e applies among the entries of the audited table
// whose baselines are runs: entries of other tables (associations filed
// under the owner) at their ids.
func (e *Entry) position(table string, runs []run) position {
	if e.TableName != table {
		return position{at: e.ID, id: e.ID}
	}
	return positionIn(e, runs)
}

// read returns, in id order up to bound, the entries filed under id, the
// table's truncate entries and baseline markers, the association entries
// naming it when l.related, and the updates that moved
// the object off id. The last are found by containment of an old key value
// (which the GIN index serves) and then checked in Go.
func (l *lineage) read(ctx context.Context, id string, bound int64) ([]Entry, error) {
	query, args := l.query(id, bound)
	entries, err := readEntries(ctx, l.db, l.t, query, args)
	if err != nil {
		return nil, err
	}
	kept := entries[:0]
	for _, e := range entries {
		owner := e.TableName == l.table && (e.ObjectID == id || e.Operation == OpTruncate || e.Operation == OpSuppressed || e.IsBaselineMarker())
		related := l.related && deref(e.RelatedTableName) == l.table && deref(e.RelatedObjectID) == id
		if !owner && !related {
			if prev, err := previousID(&e, l.keys); err != nil || prev != id || e.TableName != l.table {
				continue
			}
		}
		kept = append(kept, e)
	}
	return kept, nil
}

func (l *lineage) query(id string, bound int64) (string, []any) {
	var args []any
	param := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	pTable, pID := param(l.table), param(id)
	either := []string{"(table_name = " + pTable + " AND object_id = " + pID + ")",
		// A TRUNCATE of the table ends every object's life, and a
		// baseline's marker says which objects its snapshot entries
		// account for (their entries have an empty object_id, so the
		// object index finds them).
		// So does a suppressed statement's entry: after it, the object's
		// state is not known.
		"(table_name = " + pTable + " AND object_id = '' AND operation IN ('truncate', 'snapshot', 'suppressed'))"}
	if l.related {
		either = append(either, "(related_table_name = "+pTable+" AND related_object_id = "+pID+")")
	}
	if docs := l.movedOffDocs(id); len(docs) > 0 {
		var contains []string
		for _, d := range docs {
			contains = append(contains, "changes @> "+param(d)+"::jsonb")
		}
		either = append(either, "(table_name = "+pTable+" AND operation = 'update' AND object_id <> "+pID+
			" AND ("+strings.Join(contains, " OR ")+"))")
	}
	where := "(" + strings.Join(either, " OR ") + ") AND id <= " + param(bound)
	if l.bounded {
		where += " AND created <= " + param(l.until)
	}
	return `SELECT ` + entryColumns + ` FROM ` + l.t.Quoted() + ` WHERE ` + where + ` ORDER BY id`, args
}

// movedOffDocs returns containment documents matching every update that
// could have moved an object off id: one per key column, holding the
// column's value in id as an old value.
func (l *lineage) movedOffDocs(id string) []string {
	var docs []string
	add := func(col string, v json.RawMessage) {
		b, err := json.Marshal(map[string]map[string][]json.RawMessage{"changed_fields": {col: {v}}})
		if err == nil {
			docs = append(docs, string(b))
		}
	}
	switch len(l.keys) {
	case 0:
	case 1:
		// The id of a one-column key does not say whether it was a string.
		s, _ := json.Marshal(id)
		add(l.keys[0], s)
		if v, err := decodeValue(json.RawMessage(id)); err == nil {
			if _, isString := v.(string); !isString {
				add(l.keys[0], json.RawMessage(id))
			}
		}
	default:
		vals, err := keyValues(id, len(l.keys))
		if err != nil {
			return nil
		}
		for i, k := range l.keys {
			add(k, vals[i])
		}
	}
	return docs
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
