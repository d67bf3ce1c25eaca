package store

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/auditpgx/auditpgx/diff"
)

// State is audited tables rebuilt from their entries: table_name →
// object_id → column → value. Values are JSON as the entries hold them, so
// redacted columns read "$encrypted$" and excluded columns are absent.
type State map[string]map[string]diff.Image

// Replay applies entries to empty tables and returns what they hold
// afterwards. Pass entries in id order, which is the order they were
// written in; a table's entries must start from its creation (or from when
// the table was empty), or from a baseline of it.
//
//   - create adds the object with its added_fields;
//   - update sets each changed_fields column to its new value, sets
//     added_fields and replaced_fields (whose old values are unknown, so
//     not checked) and drops removed_fields;
//   - delete removes the object;
//   - truncate removes every object of the table;
//   - snapshot (a baseline's entry for one object) sets the object to its
//     added_fields, whatever was known of it before;
//   - a baseline's marker (snapshot, empty object_id) removes every object
//     of the table that no snapshot entry of its baseline set: it did not
//     exist when the baseline's snapshot was taken;
//   - associate and disassociate change no table state and are skipped.
//
// Entries apply in the order given, with one exception: an entry that
// comes before a baseline marker of its table but was written by a
// transaction that the marker's snapshot does not see (it committed after
// the snapshot was taken) applies just after the marker, since the
// snapshot entries do not include its change. Passing the result of
// [History], where such entries already come after the marker, is fine
// too.
//
// keys gives, by table_name, the primary-key columns in key order. It is
// needed for the tables whose keys are updated: such an update's entry is
// filed under the new key, and Replay finds the object under the old one,
// rendered with [ObjectID] from the key columns' old values, and moves it.
// Without keys for a table, an update of its key fails as an update of an
// object that does not exist.
//
// One statement may move keys onto each other (SET id = id + 1) and writes
// its entries in no particular order, so an object moved onto a key that is
// still taken waits there until the object holding it moves away.
//
// Each entry is checked against the state before it. The error is a
// *[ReplayError], wrapping [ErrInconsistent] and naming the entry id, for
// an update or delete of an object that does not exist, a create of one
// that does, a key change onto a key that is never freed, an entry without
// changes (other than associate, disassociate, truncate and a baseline
// marker), an unknown operation, a marker whose snapshot cannot be read,
// and an old value (in changed_fields or removed_fields) that is not
// [diff.Equal] to the rebuilt value. A column the rebuilt object lacks is
// not checked, so entries written before a column was added replay. Such a
// gap is not an error when a later baseline marker of the table replaces
// the state it leaves: entries written before a table was baselined may
// begin with updates of rows that existed before auditing began. Replay
// then goes on with what the entry says and lets the baseline set the
// state.
//
// The images share their json.RawMessage values with entries.
func Replay(entries []Entry, keys map[string][]string) (State, error) {
	seq, last, err := arrange(entries)
	if err != nil {
		return nil, err
	}
	r := newReplayer(keys)
	for i, e := range seq {
		lm, ok := last[e.TableName]
		if err := r.apply(e, ok && i < lm); err != nil {
			return nil, err
		}
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	return r.state, nil
}

// ReplayTable replays the entries of one audited table, read from
// entryTable ("" for auditpgx_entry) in id order in one query (and its
// baseline markers in one before), and returns its objects by object_id.
// keys are the table's primary-key columns, as for [Replay]; nil when its
// key is never updated. A table with no entries yields an empty map.
// Entries are applied as they are read: only the state, and the entries
// written while a baseline of the table ran, are held in memory.
func ReplayTable(ctx context.Context, db Querier, entryTable, table string, keys []string) (map[string]diff.Image, error) {
	t, err := entryTableName(entryTable)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		objects, err := replayTable(ctx, db, t, table, keys)
		if err == errNewBaseline && attempt < 3 {
			continue // a baseline of the table committed between the two queries
		}
		return objects, err
	}
}

var errNewBaseline = fmt.Errorf("auditpgx: a baseline committed during the replay")

func replayTable(ctx context.Context, db Querier, t tableName, table string, keys []string) (map[string]diff.Image, error) {
	runs, err := loadRuns(ctx, db, t, table)
	if err != nil {
		return nil, err
	}
	known := map[int64]bool{}
	last := int64(-1)
	for _, r := range runs {
		known[r.marker] = true
		last = r.marker
	}
	r := newReplayer(map[string][]string{table: keys})
	// Entries that apply after a marker not reached yet, by marker id.
	after := map[int64][]*Entry{}
	err = scanEntries(ctx, db, t,
		`SELECT `+entryColumns+` FROM `+t.Quoted()+
			` WHERE table_name = $1 AND operation IN ('create', 'update', 'delete', 'truncate', 'snapshot') ORDER BY id`,
		[]any{table}, func(e *Entry) error {
			if e.IsBaselineMarker() && !known[e.ID] {
				return errNewBaseline
			}
			p := positionIn(e, runs)
			if p.moved {
				after[p.at] = append(after[p.at], e)
				return nil
			}
			if err := r.apply(e, e.ID < last); err != nil {
				return err
			}
			for _, m := range after[e.ID] {
				if err := r.apply(m, e.ID < last); err != nil {
					return err
				}
			}
			delete(after, e.ID)
			return nil
		})
	if err != nil {
		return nil, err
	}
	if len(after) > 0 {
		// A marker that loadRuns read is gone: impossible, the table is
		// append-only.
		return nil, errNewBaseline
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	if objects := r.state[table]; objects != nil {
		return objects, nil
	}
	return map[string]diff.Image{}, nil
}

// replayer applies entries one at a time.
type replayer struct {
	state State
	keys  map[string][]string
	// track, when set, limits the state to these object ids of every table:
	// an object moved to another id leaves the state, and entries of other
	// ids are skipped. AsOf uses it to replay the few ids an object had.
	track map[string]bool
	// parked holds objects whose key an update changed to that of an object
	// still present, by table and new id. One statement may shift keys onto
	// each other (SET id = id + 1) and writes its entries in any order: the
	// object waits until the present one moves away. finish reports any
	// still waiting.
	parked map[string]map[string]parkedMove
	// lenient goes on after every gap (an entry that does not fit the
	// state before it), as AsOf does; otherwise only where apply is told
	// that a baseline will replace the state.
	lenient bool
	// partial holds, by table and object id, the first gap since which the
	// object's image holds only what the entries after it set.
	partial map[string]map[string]*ReplayError
	// snapped holds, by table and baseline transaction, the ids that the
	// baseline's snapshot entries set, until its marker.
	snapped map[string]map[int64]map[string]bool
	// suppressed holds, by table, the last suppressed entry: an object not
	// in the state after it may still exist.
	suppressed map[string]*ReplayError
}

type parkedMove struct {
	img   diff.Image
	entry *Entry
	gap   *ReplayError // the image's partial record, moved with it
}

func newReplayer(keys map[string][]string) *replayer {
	return &replayer{state: State{}, keys: keys, parked: map[string]map[string]parkedMove{},
		partial: map[string]map[string]*ReplayError{}, snapped: map[string]map[int64]map[string]bool{}}
}

// suppressedGap applies a suppressed entry: any object of its table may
// have changed, appeared or gone without an entry, so every known one is
// partly known from here (until its next create, delete or snapshot, or a
// baseline), and an object not known may exist. err is what gap returned.
func (r *replayer) suppressedGap(e *Entry, err error) error {
	if err != nil {
		return err
	}
	re := &ReplayError{EntryID: e.ID, Operation: e.Operation, TableName: e.TableName,
		Reason: "a statement run under WithoutAudit wrote rows of the table without their entries"}
	partial := r.partial[e.TableName]
	if partial == nil {
		partial = map[string]*ReplayError{}
		r.partial[e.TableName] = partial
	}
	for id := range r.state[e.TableName] {
		if partial[id] == nil {
			partial[id] = re
		}
	}
	if r.suppressed == nil {
		r.suppressed = map[string]*ReplayError{}
	}
	r.suppressed[e.TableName] = re
	return nil
}

// finish returns an error for the first object still parked.
func (r *replayer) finish() error {
	if first := r.firstParked(); first != nil {
		return first
	}
	return nil
}

func (r *replayer) firstParked() *ReplayError {
	var first *Entry
	for _, byID := range r.parked {
		for _, p := range byID {
			if first == nil || p.entry.ID < first.ID {
				first = p.entry
			}
		}
	}
	if first == nil {
		return nil
	}
	return parkedError(first, r.keys[first.TableName])
}

func parkedError(e *Entry, keys []string) *ReplayError {
	from, _ := previousID(e, keys)
	return &ReplayError{EntryID: e.ID, Operation: e.Operation, TableName: e.TableName,
		ObjectID: e.ObjectID, Reason: fmt.Sprintf("its key changed from %q to that of an object that still exists", from)}
}

// apply applies e. replaced says that a later baseline marker of e's
// table replaces the state: an entry that does not fit is then not an
// error (see Replay).
func (r *replayer) apply(e *Entry, replaced bool) error {
	fail := func(format string, args ...any) *ReplayError {
		return &ReplayError{EntryID: e.ID, Operation: e.Operation, TableName: e.TableName, ObjectID: e.ObjectID,
			Reason: fmt.Sprintf(format, args...)}
	}
	// gap returns the error to stop with, or nil to go on with what the
	// entry says.
	gap := func(re *ReplayError) error {
		if r.lenient || replaced {
			return nil
		}
		return re
	}
	switch e.Operation {
	case OpAssociate, OpDisassociate:
		return nil
	case OpTruncate:
		delete(r.state, e.TableName)
		delete(r.parked, e.TableName)
		delete(r.partial, e.TableName)
		return nil
	case OpSnapshot:
		if e.Baseline != nil {
			r.endBaseline(e)
			return nil
		}
	case OpSuppressed:
		return r.suppressedGap(e, gap(fail("a statement run under WithoutAudit wrote rows of the table without their entries")))
	case OpCreate, OpUpdate, OpDelete:
	default:
		return fail("unknown operation")
	}
	if e.Changes == nil {
		return fail("the entry has no changes")
	}
	objects := r.state[e.TableName]
	if objects == nil {
		objects = map[string]diff.Image{}
		r.state[e.TableName] = objects
	}
	tracked := func(id string) bool { return r.track == nil || r.track[id] }
	parked := r.parked[e.TableName]
	if parked == nil {
		parked = map[string]parkedMove{}
		r.parked[e.TableName] = parked
	}
	partial := r.partial[e.TableName]
	if partial == nil {
		partial = map[string]*ReplayError{}
		r.partial[e.TableName] = partial
	}

	if e.Operation == OpSnapshot {
		if !tracked(e.ObjectID) {
			return nil
		}
		objects[e.ObjectID] = cloneImage(e.Changes.AddedFields)
		delete(partial, e.ObjectID)
		delete(parked, e.ObjectID)
		byTx := r.snapped[e.TableName]
		if byTx == nil {
			byTx = map[int64]map[string]bool{}
			r.snapped[e.TableName] = byTx
		}
		if byTx[e.TxID] == nil {
			byTx[e.TxID] = map[string]bool{}
		}
		byTx[e.TxID][e.ObjectID] = true
		return nil
	}

	if p, ok := parked[e.ObjectID]; ok {
		re := fail("entry %d changed another object's key to this id, which was still taken", p.entry.ID)
		if err := gap(re); err != nil {
			return err
		}
		// Which object the entry means is unknown: the one waiting goes.
		delete(parked, e.ObjectID)
		if partial[e.ObjectID] == nil {
			partial[e.ObjectID] = re
		}
	}

	switch e.Operation {
	case OpCreate:
		if !tracked(e.ObjectID) {
			return nil
		}
		if _, ok := objects[e.ObjectID]; ok {
			if err := gap(fail("the object already exists")); err != nil {
				return err
			}
		}
		objects[e.ObjectID] = cloneImage(e.Changes.AddedFields)
		delete(partial, e.ObjectID)
		return nil

	case OpDelete:
		if !tracked(e.ObjectID) {
			return nil
		}
		img, ok := objects[e.ObjectID]
		if !ok {
			if err := gap(fail("the object does not exist")); err != nil {
				return err
			}
		}
		for _, col := range sortedKeys(e.Changes.RemovedFields) {
			if err := checkOld(img, col, e.Changes.RemovedFields[col]); err != nil {
				if err := gap(fail("removed_fields: %v", err)); err != nil {
					return err
				}
				break
			}
		}
		delete(objects, e.ObjectID)
		delete(partial, e.ObjectID)
		return nil
	}

	// An update, filed under the object's new id.
	from, err := previousID(e, r.keys[e.TableName])
	if err != nil {
		return fail("%v", err)
	}
	if !tracked(from) {
		return nil
	}
	var noted *ReplayError // the gap this entry makes, if any
	img, ok := objects[from]
	if !ok {
		switch {
		case from != e.ObjectID:
			noted = fail("its key changed from %q, which does not exist", from)
		case len(r.keys[e.TableName]) == 0:
			noted = fail("the object does not exist (if the update changed the primary key, give the table's key columns)")
		default:
			noted = fail("the object does not exist")
		}
	} else {
		for _, col := range sortedKeys(e.Changes.ChangedFields) {
			if err := checkOld(img, col, e.Changes.ChangedFields[col][0]); err != nil {
				noted = fail("changed_fields: %v", err)
				break
			}
		}
		if noted == nil {
			for _, col := range sortedKeys(e.Changes.RemovedFields) {
				if err := checkOld(img, col, e.Changes.RemovedFields[col]); err != nil {
					noted = fail("removed_fields: %v", err)
					break
				}
			}
		}
	}
	known := partial[from]
	if noted != nil {
		if err := gap(noted); err != nil {
			return err
		}
		// Only what this entry sets is known from here on.
		img = diff.Image{}
		if known == nil {
			known = noted
		}
	}
	for col := range e.Changes.RemovedFields {
		delete(img, col)
	}
	maps.Copy(img, e.Changes.AddedFields)
	for col, pair := range e.Changes.ChangedFields {
		img[col] = pair[1]
	}
	if len(e.Changes.ReplacedFields) > 0 {
		// Every audited column's new value: the whole image is known.
		maps.Copy(img, e.Changes.ReplacedFields)
		known = nil
	}
	delete(partial, from)
	if from == e.ObjectID {
		objects[from] = img
		if known != nil {
			partial[from] = known
		}
		return nil
	}
	delete(objects, from)
	if p, ok := parked[from]; ok {
		objects[from] = p.img
		if p.gap != nil {
			partial[from] = p.gap
		}
		delete(parked, from)
	}
	if !tracked(e.ObjectID) {
		return nil
	}
	if _, taken := objects[e.ObjectID]; taken {
		parked[e.ObjectID] = parkedMove{img: img, entry: e, gap: known}
		return nil
	}
	objects[e.ObjectID] = img
	if known != nil {
		partial[e.ObjectID] = known
	}
	return nil
}

// endBaseline applies a baseline's marker: the objects of its table that
// none of its snapshot entries set did not exist when its snapshot was
// taken, and whatever was partly known is now known.
func (r *replayer) endBaseline(e *Entry) {
	set := r.snapped[e.TableName][e.TxID]
	for id := range r.state[e.TableName] {
		if !set[id] {
			delete(r.state[e.TableName], id)
		}
	}
	delete(r.parked, e.TableName)
	delete(r.partial, e.TableName)
	if byTx := r.snapped[e.TableName]; byTx != nil {
		delete(byTx, e.TxID)
	}
}

func cloneImage(img diff.Image) diff.Image {
	if img == nil {
		return diff.Image{}
	}
	return maps.Clone(img)
}

// checkOld compares an entry's old value of col with the rebuilt one.
func checkOld(img diff.Image, col string, old json.RawMessage) error {
	cur, ok := img[col]
	if !ok || diff.Equal(cur, old) {
		return nil
	}
	return fmt.Errorf("column %q was %s, the entry says %s", col, rawText(cur), rawText(old))
}

func rawText(v json.RawMessage) string {
	if len(v) == 0 {
		return "null"
	}
	return string(v)
}

// previousID is the id an updated object had before the update e: e's own
// object id unless e changed one of the key columns.
func previousID(e *Entry, keys []string) (string, error) {
	if e.Operation != OpUpdate || e.Changes == nil || len(keys) == 0 {
		return e.ObjectID, nil
	}
	moved := false
	for _, k := range keys {
		if _, ok := e.Changes.ChangedFields[k]; ok {
			moved = true
			break
		}
	}
	if !moved {
		return e.ObjectID, nil
	}
	if len(keys) == 1 {
		return ObjectID(e.Changes.ChangedFields[keys[0]][0]), nil
	}
	vals, err := keyValues(e.ObjectID, len(keys))
	if err != nil {
		return "", fmt.Errorf("key columns %s: %v", strings.Join(keys, ", "), err)
	}
	for i, k := range keys {
		if pair, ok := e.Changes.ChangedFields[k]; ok {
			vals[i] = pair[0]
		}
	}
	return ObjectID(vals...), nil
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
