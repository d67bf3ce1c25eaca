package store_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/store"
)

// ent builds an entry; changes is a changes object as JSON, "" for none.
func ent(id int64, op store.Operation, table, obj, changes string) store.Entry {
	e := store.Entry{ID: id, Operation: op, TableName: table, ObjectID: obj}
	if changes != "" {
		c, err := diff.Decode([]byte(changes))
		if err != nil {
			panic(err)
		}
		e.Changes = &c
	}
	return e
}

func added(fields string) string   { return `{"added_fields": ` + fields + `}` }
func removed(fields string) string { return `{"removed_fields": ` + fields + `}` }
func changed(fields string) string { return `{"changed_fields": ` + fields + `}` }

// stateJSON renders a state for comparison, values normalized by
// encoding/json (which keeps them as written).
func stateJSON(t *testing.T, s any) string {
	t.Helper()
	b, err := json.Marshal(s)
	require.NoError(t, err)
	return string(b)
}

func TestReplay(t *testing.T) {
	entries := []store.Entry{
		ent(1, store.OpCreate, "users", "1", added(`{"id": 1, "name": "Ann", "pw": "$encrypted$"}`)),
		ent(2, store.OpCreate, "users", "2", added(`{"id": 2, "name": "Bo", "pw": "$encrypted$"}`)),
		ent(3, store.OpUpdate, "users", "1", changed(`{"name": ["Ann", "Anne"], "pw": ["$encrypted$", "$encrypted$"]}`)),
		ent(4, store.OpAssociate, "teams", "9", ""),
		ent(5, store.OpDelete, "users", "2", removed(`{"id": 2, "name": "Bo", "pw": "$encrypted$"}`)),
		ent(6, store.OpCreate, "teams", "9", added(`{"id": 9}`)),
		ent(7, store.OpDisassociate, "teams", "9", ""),
		ent(8, store.OpUpdate, "users", "1", `{"added_fields": {"nick": "an"}, "removed_fields": {"pw": "$encrypted$"}, "changed_fields": {}}`),
		ent(9, store.OpCreate, "users", "2", added(`{"id": 2, "name": "Cy"}`)), // a new object with a freed id
	}
	got, err := store.Replay(entries, nil)
	require.NoError(t, err)
	require.JSONEq(t, `{
		"users": {"1": {"id": 1, "name": "Anne", "nick": "an"}, "2": {"id": 2, "name": "Cy"}},
		"teams": {"9": {"id": 9}}
	}`, stateJSON(t, got))

	// The entries' changes are untouched.
	require.JSONEq(t, `{"id": 1, "name": "Ann", "pw": "$encrypted$"}`, stateJSON(t, entries[0].Changes.AddedFields))
}

// A truncate entry empties its table: objects created before it are gone,
// and their ids may be created again.
func TestReplayTruncate(t *testing.T) {
	entries := []store.Entry{
		ent(1, store.OpCreate, "users", "1", added(`{"id": 1}`)),
		ent(2, store.OpCreate, "users", "2", added(`{"id": 2}`)),
		ent(3, store.OpCreate, "teams", "9", added(`{"id": 9}`)),
		ent(4, store.OpTruncate, "users", "", ""),
		ent(5, store.OpCreate, "users", "1", added(`{"id": 1, "name": "again"}`)),
	}
	got, err := store.Replay(entries, nil)
	require.NoError(t, err)
	require.JSONEq(t, `{"users": {"1": {"id": 1, "name": "again"}}, "teams": {"9": {"id": 9}}}`, stateJSON(t, got))
	_, err = store.Replay(append(entries, ent(6, store.OpUpdate, "users", "2", changed(`{"id": [2, 3]}`))), nil)
	require.ErrorIs(t, err, store.ErrInconsistent, "users 2 went with the truncate")
}

func TestReplayEmpty(t *testing.T) {
	got, err := store.Replay(nil, nil)
	require.NoError(t, err)
	require.Empty(t, got)

	// A table whose objects were all deleted is present and empty.
	got, err = store.Replay([]store.Entry{
		ent(1, store.OpCreate, "t", "1", added(`{"id": 1}`)),
		ent(2, store.OpDelete, "t", "1", removed(`{"id": 1}`)),
	}, nil)
	require.NoError(t, err)
	require.Equal(t, store.State{"t": {}}, got)
}

func TestReplayKeyChange(t *testing.T) {
	t.Run("single key", func(t *testing.T) {
		entries := []store.Entry{
			ent(1, store.OpCreate, "users", "7", added(`{"id": 7, "name": "Al"}`)),
			ent(2, store.OpUpdate, "users", "8", changed(`{"id": [7, 8], "name": ["Al", "Bob"]}`)),
			ent(3, store.OpUpdate, "users", "8", changed(`{"name": ["Bob", "Bo"]}`)),
		}
		got, err := store.Replay(entries, map[string][]string{"users": {"id"}})
		require.NoError(t, err)
		require.JSONEq(t, `{"users": {"8": {"id": 8, "name": "Bo"}}}`, stateJSON(t, got))

		// Without the key columns the move cannot be followed.
		_, err = store.Replay(entries, nil)
		var re *store.ReplayError
		require.ErrorAs(t, err, &re)
		require.EqualValues(t, 2, re.EntryID)
		require.ErrorContains(t, err, "give the table's key columns")
	})
	t.Run("text key", func(t *testing.T) {
		got, err := store.Replay([]store.Entry{
			ent(1, store.OpCreate, "regions", "eu", added(`{"code": "eu"}`)),
			ent(2, store.OpUpdate, "regions", `e"u`, changed(`{"code": ["eu", "e\"u"]}`)),
		}, map[string][]string{"regions": {"code"}})
		require.NoError(t, err)
		require.Contains(t, got["regions"], `e"u`)
	})
	t.Run("composite key, one column changed", func(t *testing.T) {
		got, err := store.Replay([]store.Entry{
			ent(1, store.OpCreate, "stock", `[7,"eu"]`, added(`{"sku": 7, "region": "eu", "qty": 1}`)),
			ent(2, store.OpUpdate, "stock", `[7,"us"]`, changed(`{"region": ["eu", "us"]}`)),
			ent(3, store.OpUpdate, "stock", `[8,"ca"]`, changed(`{"sku": [7, 8], "region": ["us", "ca"], "qty": [1, 2]}`)),
		}, map[string][]string{"stock": {"sku", "region"}})
		require.NoError(t, err)
		require.JSONEq(t, `{"stock": {"[8,\"ca\"]": {"sku": 8, "region": "ca", "qty": 2}}}`, stateJSON(t, got))
	})
	t.Run("keys shifted onto each other in one statement", func(t *testing.T) {
		create := []store.Entry{
			ent(1, store.OpCreate, "t", "1", added(`{"id": 1, "v": "a"}`)),
			ent(2, store.OpCreate, "t", "2", added(`{"id": 2, "v": "b"}`)),
			ent(3, store.OpCreate, "t", "3", added(`{"id": 3, "v": "c"}`)),
		}
		shift := []store.Entry{ // SET id = id + 1, entries in the order rows were visited
			ent(4, store.OpUpdate, "t", "2", changed(`{"id": [1, 2]}`)),
			ent(5, store.OpUpdate, "t", "3", changed(`{"id": [2, 3]}`)),
			ent(6, store.OpUpdate, "t", "4", changed(`{"id": [3, 4]}`)),
		}
		want := `{"t": {"2": {"id": 2, "v": "a"}, "3": {"id": 3, "v": "b"}, "4": {"id": 4, "v": "c"}}}`
		for _, order := range [][]int{{0, 1, 2}, {2, 1, 0}, {1, 0, 2}, {0, 2, 1}} {
			entries := append([]store.Entry{}, create...)
			for _, i := range order {
				entries = append(entries, shift[i])
			}
			got, err := store.Replay(entries, map[string][]string{"t": {"id"}})
			require.NoError(t, err, "order %v", order)
			require.JSONEq(t, want, stateJSON(t, got), "order %v", order)
		}

		// A swap.
		got, err := store.Replay(append(create[:2:2],
			ent(4, store.OpUpdate, "t", "2", changed(`{"id": [1, 2]}`)),
			ent(5, store.OpUpdate, "t", "1", changed(`{"id": [2, 1]}`)),
		), map[string][]string{"t": {"id"}})
		require.NoError(t, err)
		require.JSONEq(t, `{"t": {"1": {"id": 1, "v": "b"}, "2": {"id": 2, "v": "a"}}}`, stateJSON(t, got))
	})
}

func TestReplayErrors(t *testing.T) {
	keys := map[string][]string{"t": {"id"}, "c": {"a", "b"}}
	c1 := ent(1, store.OpCreate, "t", "1", added(`{"id": 1, "v": "x"}`))
	c2 := ent(2, store.OpCreate, "t", "2", added(`{"id": 2, "v": "y"}`))
	for _, tc := range []struct {
		name    string
		entries []store.Entry
		id      int64
		reason  string
	}{
		{"update of an unknown object", []store.Entry{c1, ent(2, store.OpUpdate, "t", "9", changed(`{"v": ["x", "z"]}`))},
			2, "the object does not exist"},
		{"delete of an unknown object", []store.Entry{c1, ent(5, store.OpDelete, "t", "9", removed(`{}`))},
			5, "the object does not exist"},
		{"create of an existing object", []store.Entry{c1, ent(3, store.OpCreate, "t", "1", added(`{"id": 1}`))},
			3, "the object already exists"},
		{"deleted twice", []store.Entry{c1, ent(2, store.OpDelete, "t", "1", removed(`{}`)), ent(3, store.OpDelete, "t", "1", removed(`{}`))},
			3, "the object does not exist"},
		{"key change from an unknown object", []store.Entry{c1, ent(4, store.OpUpdate, "t", "5", changed(`{"id": [4, 5]}`))},
			4, `its key changed from "4", which does not exist`},
		{"key change onto a key never freed", []store.Entry{c1, c2, ent(6, store.OpUpdate, "t", "2", changed(`{"id": [1, 2]}`))},
			6, `its key changed from "1" to that of an object that still exists`},
		{"update of a parked key", []store.Entry{c1, c2, ent(6, store.OpUpdate, "t", "2", changed(`{"id": [1, 2]}`)),
			ent(7, store.OpUpdate, "t", "2", changed(`{"v": ["y", "w"]}`))},
			7, "entry 6 changed another object's key to this id"},
		{"old value differs", []store.Entry{c1, ent(8, store.OpUpdate, "t", "1", changed(`{"v": ["q", "z"]}`))},
			8, `column "v" was "x", the entry says "q"`},
		{"removed value differs", []store.Entry{c1, ent(8, store.OpDelete, "t", "1", removed(`{"v": "q"}`))},
			8, `removed_fields: column "v" was "x"`},
		{"create without changes", []store.Entry{ent(9, store.OpCreate, "t", "1", "")},
			9, "the entry has no changes"},
		{"unknown operation", []store.Entry{ent(10, "upsert", "t", "1", added(`{}`))},
			10, "unknown operation"},
		{"composite id that is not an array", []store.Entry{ent(11, store.OpUpdate, "c", "7", changed(`{"a": [1, 2]}`))},
			11, `object id "7" is not a JSON array of 2 key values`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := store.Replay(tc.entries, keys)
			require.Error(t, err)
			require.True(t, errors.Is(err, store.ErrInconsistent), "%v", err)
			var re *store.ReplayError
			require.ErrorAs(t, err, &re)
			require.Equal(t, tc.id, re.EntryID)
			require.True(t, strings.HasPrefix(err.Error(), fmt.Sprintf("auditpgx: inconsistent entries: entry %d (", tc.id)), err.Error())
			require.ErrorContains(t, err, tc.reason)
		})
	}
}

// An update that could not read the old values (an upsert meeting a row
// inserted concurrently) replaces every audited column.
func TestReplayReplacedFields(t *testing.T) {
	got, err := store.Replay([]store.Entry{
		ent(1, store.OpCreate, "t", "1", added(`{"id": 1, "v": "a", "w": 1}`)),
		ent(2, store.OpUpdate, "t", "1", `{"changed_fields": {}, "replaced_fields": {"id": 1, "v": "b", "w": 1}}`),
	}, map[string][]string{"t": {"id"}})
	require.NoError(t, err)
	require.JSONEq(t, `{"t": {"1": {"id": 1, "v": "b", "w": 1}}}`, stateJSON(t, got))
}

// A column absent from the rebuilt object (added to the table after the
// object was created) is not checked against the entry's old value.
func TestReplayColumnAddedLater(t *testing.T) {
	got, err := store.Replay([]store.Entry{
		ent(1, store.OpCreate, "t", "1", added(`{"id": 1}`)),
		ent(2, store.OpUpdate, "t", "1", changed(`{"flag": [false, true]}`)),
	}, nil)
	require.NoError(t, err)
	require.JSONEq(t, `{"t": {"1": {"id": 1, "flag": true}}}`, stateJSON(t, got))
}

// Values compare as jsonb: 1.0 and 1.00 are the same old value.
func TestReplayNumericOldValues(t *testing.T) {
	_, err := store.Replay([]store.Entry{
		ent(1, store.OpCreate, "t", "1", added(`{"id": 1, "p": 1.0, "o": {"a": 1, "b": 2}}`)),
		ent(2, store.OpUpdate, "t", "1", changed(`{"p": [1.00, 2], "o": [{"b": 2, "a": 1}, null]}`)),
	}, nil)
	require.NoError(t, err)
}

func TestEqualStates(t *testing.T) {
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	a := map[string]diff.Image{"1": {"id": raw(`1`), "p": raw(`1.0`)}, "2": {"id": raw(`2`)}}
	require.NoError(t, store.EqualStates(a, map[string]diff.Image{"2": {"id": raw(`2`)}, "1": {"p": raw(`1.00`), "id": raw(`1`)}}))
	for _, tc := range []struct {
		b    map[string]diff.Image
		want string
	}{
		{map[string]diff.Image{"1": a["1"]}, `object "2" is in a but not in b`},
		{map[string]diff.Image{"1": a["1"], "2": a["2"], "0": {}}, `object "0" is in b but not in a`},
		{map[string]diff.Image{"1": {"id": raw(`1`)}, "2": a["2"]}, `object "1": column "p" is in a (1.0) but not in b`},
		{map[string]diff.Image{"1": {"id": raw(`1`), "p": raw(`1.0`), "q": raw(`null`)}, "2": a["2"]}, `object "1": column "q" is in b (null) but not in a`},
		{map[string]diff.Image{"1": {"id": raw(`1`), "p": raw(`"1.0"`)}, "2": a["2"]}, `object "1": column "p" is 1.0 in a and "1.0" in b`},
	} {
		err := store.EqualStates(a, tc.b)
		require.EqualError(t, err, tc.want)
	}
}
