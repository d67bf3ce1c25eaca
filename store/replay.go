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

// Replay applies entries, in the order given, to empty tables and returns
// what they hold afterwards. Pass entries in id order, which is the order
// they were written in; a table's entries must start from its creation (or
// from when the table was empty).
//
//   - create adds the object with its added_fields;
//   - update sets each changed_fields column to its new value, sets
//     added_fields and replaced_fields (whose old values are unknown, so
//     not checked) and drops removed_fields;
//   - delete removes the object;
//   - truncate removes every object of the table;
//   - associate and disassociate change no table state and are skipped.
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
// changes (other than associate and disassociate), an unknown operation,
// and an old value (in changed_fields or removed_fields) that is not
// [diff.Equal] to the rebuilt value. A column the rebuilt object lacks is
// not checked, so entries written before a column was added replay.
//
// The images share their json.RawMessage values with entries.
func Replay(entries []Entry, keys map[string][]string) (State, error) {
	r := newReplayer(keys)
	for i := range entries {
		if err := r.apply(&entries[i]); err != nil {
			return nil, err
		}
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	return r.state, nil
}

// ReplayTable replays the entries of one audited table, read from
// entryTable ("" for auditpgx_entry) in id order in one query, and returns
// its objects by object_id. keys are the table's primary-key columns, as for
// [Replay]; nil when its key is never updated. A table with no entries
// yields an empty map.
func ReplayTable(ctx context.Context, db Querier, entryTable, table string, keys []string) (map[string]diff.Image, error) {
	t, err := entryTableName(entryTable)
	if err != nil {
		return nil, err
	}
	r := newReplayer(map[string][]string{table: keys})
	err = scanEntries(ctx, db, t,
		`SELECT `+entryColumns+` FROM `+t.quoted()+
			` WHERE table_name = $1 AND operation IN ('create', 'update', 'delete', 'truncate') ORDER BY id`,
		[]any{table}, func(e *Entry) error { return r.apply(e) })
	if err != nil {
		return nil, err
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
}

type parkedMove struct {
	img   diff.Image
	entry *Entry
}

func newReplayer(keys map[string][]string) *replayer {
	return &replayer{state: State{}, keys: keys, parked: map[string]map[string]parkedMove{}}
}

// finish returns an error for the first object still parked.
func (r *replayer) finish() error {
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
	from, _ := previousID(first, r.keys[first.TableName])
	return &ReplayError{EntryID: first.ID, Operation: first.Operation, TableName: first.TableName,
		ObjectID: first.ObjectID, Reason: fmt.Sprintf("its key changed from %q to that of an object that still exists", from)}
}

func (r *replayer) apply(e *Entry) error {
	fail := func(format string, args ...any) error {
		return &ReplayError{EntryID: e.ID, Operation: e.Operation, TableName: e.TableName, ObjectID: e.ObjectID,
			Reason: fmt.Sprintf(format, args...)}
	}
	switch e.Operation {
	case OpAssociate, OpDisassociate:
		return nil
	case OpTruncate:
		delete(r.state, e.TableName)
		delete(r.parked, e.TableName)
		return nil
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
	if p, ok := parked[e.ObjectID]; ok {
		return fail("entry %d changed another object's key to this id, which was still taken", p.entry.ID)
	}

	switch e.Operation {
	case OpCreate:
		if !tracked(e.ObjectID) {
			return nil
		}
		if _, ok := objects[e.ObjectID]; ok {
			return fail("the object already exists")
		}
		objects[e.ObjectID] = maps.Clone(e.Changes.AddedFields)
		if objects[e.ObjectID] == nil {
			objects[e.ObjectID] = diff.Image{}
		}
		return nil

	case OpDelete:
		if !tracked(e.ObjectID) {
			return nil
		}
		img, ok := objects[e.ObjectID]
		if !ok {
			return fail("the object does not exist")
		}
		for _, col := range sortedKeys(e.Changes.RemovedFields) {
			if err := checkOld(img, col, e.Changes.RemovedFields[col]); err != nil {
				return fail("removed_fields: %v", err)
			}
		}
		delete(objects, e.ObjectID)
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
	img, ok := objects[from]
	if !ok {
		if from != e.ObjectID {
			return fail("its key changed from %q, which does not exist", from)
		}
		if len(r.keys[e.TableName]) == 0 {
			return fail("the object does not exist (if the update changed the primary key, give the table's key columns)")
		}
		return fail("the object does not exist")
	}
	for _, col := range sortedKeys(e.Changes.ChangedFields) {
		if err := checkOld(img, col, e.Changes.ChangedFields[col][0]); err != nil {
			return fail("changed_fields: %v", err)
		}
	}
	for _, col := range sortedKeys(e.Changes.RemovedFields) {
		if err := checkOld(img, col, e.Changes.RemovedFields[col]); err != nil {
			return fail("removed_fields: %v", err)
		}
	}
	for col := range e.Changes.RemovedFields {
		delete(img, col)
	}
	maps.Copy(img, e.Changes.AddedFields)
	for col, pair := range e.Changes.ChangedFields {
		img[col] = pair[1]
	}
	maps.Copy(img, e.Changes.ReplacedFields)
	if from == e.ObjectID {
		return nil
	}
	delete(objects, from)
	if p, ok := parked[from]; ok {
		objects[from] = p.img
		delete(parked, from)
	}
	if !tracked(e.ObjectID) {
		return nil
	}
	if _, taken := objects[e.ObjectID]; taken {
		parked[e.ObjectID] = parkedMove{img: img, entry: e}
		return nil
	}
	objects[e.ObjectID] = img
	return nil
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
