package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/store"
)

// tx sets an entry's transaction id.
func tx(e store.Entry, id int64) store.Entry {
	e.TxID = id
	return e
}

// marker is a baseline's marker entry of table, written by transaction
// txID with snapshot snap.
func marker(id int64, table string, txID int64, snap string) store.Entry {
	return store.Entry{ID: id, Operation: store.OpSnapshot, TableName: table, TxID: txID,
		Baseline: &store.Baseline{Snapshot: snap}}
}

func snapshot(id int64, table, obj, fields string, txID int64) store.Entry {
	return tx(ent(id, store.OpSnapshot, table, obj, added(fields)), txID)
}

// A baseline's snapshot entries replace what was known; entries its
// snapshot does not see apply after them, whatever their ids; entries it
// sees are accounted for by them.
func TestReplayBaseline(t *testing.T) {
	keys := map[string][]string{"t": {"id"}}
	// The baseline ran in transaction 110 with snapshot 100:108:105 —
	// transaction 105 was running, 99 had committed, 120 began later.
	entries := []store.Entry{
		// Before the baseline: an update of a row from before auditing
		// (no known state: not an error, a baseline follows), seen.
		tx(ent(1, store.OpUpdate, "t", "1", changed(`{"n": [0, 1]}`)), 99),
		// A create it sees, of a row deleted by a write auditpgx did not see.
		tx(ent(2, store.OpCreate, "t", "9", added(`{"id": 9, "n": 0}`)), 99),
		// Running when the snapshot was taken, committed after.
		tx(ent(3, store.OpUpdate, "t", "1", changed(`{"n": [1, 2]}`)), 105),
		snapshot(4, "t", "1", `{"id": 1, "n": 1}`, 110),
		// Began after the snapshot: a create, and an update of a row whose
		// snapshot entry comes later.
		tx(ent(5, store.OpCreate, "t", "3", added(`{"id": 3, "n": 0}`)), 120),
		tx(ent(6, store.OpUpdate, "t", "4", changed(`{"id": [2, 4], "n": [5, 6]}`)), 120),
		snapshot(7, "t", "2", `{"id": 2, "n": 5}`, 110),
		marker(8, "t", 110, "100:108:105"),
		tx(ent(9, store.OpUpdate, "t", "1", changed(`{"n": [2, 3]}`)), 121),
	}
	want := `{"t": {"1": {"id": 1, "n": 3}, "3": {"id": 3, "n": 0}, "4": {"id": 4, "n": 6}}}`
	got, err := store.Replay(entries, keys)
	require.NoError(t, err)
	require.JSONEq(t, want, stateJSON(t, got))

	// In the order History gives (the entries the snapshot does not see
	// after the marker), the same.
	ordered := []store.Entry{entries[0], entries[1], entries[3], entries[6], entries[7], entries[2], entries[4], entries[5], entries[8]}
	got, err = store.Replay(ordered, keys)
	require.NoError(t, err)
	require.JSONEq(t, want, stateJSON(t, got))

	// A gap after the last baseline is an error, as ever.
	_, err = store.Replay(append(entries, tx(ent(10, store.OpUpdate, "t", "7", changed(`{"n": [0, 1]}`)), 122)), keys)
	var re *store.ReplayError
	require.ErrorAs(t, err, &re)
	require.EqualValues(t, 10, re.EntryID)
	// Were entry 3 taken for one the snapshot saw, its change would be
	// lost under the snapshot entry, and the next update says so.
	lost := append([]store.Entry{}, entries...)
	lost[2].TxID = 99
	_, err = store.Replay(lost, keys)
	require.ErrorAs(t, err, &re)
	require.EqualValues(t, 9, re.EntryID)
	require.ErrorContains(t, err, `column "n" was 1, the entry says 2`)

	// A later baseline replaces the first.
	again := append(append([]store.Entry{}, entries...),
		snapshot(10, "t", "1", `{"id": 1, "n": 30}`, 130),
		marker(11, "t", 130, "125:125:"))
	got, err = store.Replay(again, keys)
	require.NoError(t, err)
	require.JSONEq(t, `{"t": {"1": {"id": 1, "n": 30}}}`, stateJSON(t, got))

	// A marker whose snapshot cannot be read.
	_, err = store.Replay([]store.Entry{marker(1, "t", 1, "x")}, keys)
	require.ErrorIs(t, err, store.ErrInconsistent)
	require.ErrorContains(t, err, `snapshot "x" is not xmin:xmax:xip`)
	_, err = store.Replay([]store.Entry{marker(1, "t", 1, "5:9:3")}, keys)
	require.ErrorContains(t, err, `"3" is not a transaction between xmin and xmax`)
}

// lifeFixtures is an object's life around a baseline, as entries in the
// entry table: the baseline (transaction 110, snapshot 100:108:105, at
// minute 30) finds users 5 with name "B"; an update that was running when
// it was taken, written before the snapshot entry, then moves it to 6.
var lifeFixtures = []struct {
	label   string
	minute  int
	op      store.Operation
	obj     string
	changes string
	tx      int64
}{
	{"before", 10, store.OpUpdate, "5", `{"changed_fields": {"name": ["A", "B"]}}`, 99},
	{"running", 29, store.OpUpdate, "6", `{"changed_fields": {"id": [5, 6], "name": ["B", "C"]}}`, 105},
	{"snapshot5", 30, store.OpSnapshot, "5", `{"added_fields": {"id": 5, "name": "B", "pw": "$encrypted$"}}`, 110},
	{"snapshot7", 30, store.OpSnapshot, "7", `{"added_fields": {"id": 7, "name": "G", "pw": "$encrypted$"}}`, 110},
	{"marker", 30, store.OpSnapshot, "", `{"snapshot": "100:108:105", "rows": 2}`, 110},
	{"after", 40, store.OpUpdate, "6", `{"changed_fields": {"name": ["C", "D"]}}`, 111},
	{"unseen", 50, store.OpUpdate, "7", `{"changed_fields": {"name": ["X", "Y"]}}`, 112},
	{"recreated", 60, store.OpCreate, "8", `{"added_fields": {"id": 8, "name": "H"}}`, 113},
	{"wrong", 70, store.OpUpdate, "8", `{"changed_fields": {"name": ["Q", "R"]}}`, 114},
}

func seedLife(t *testing.T) (*sql.DB, map[string]int64) {
	t.Helper()
	ctx := context.Background()
	db, _ := openSchema(t)
	require.NoError(t, store.Migrate(ctx, db, "auditpgx_entry"))
	_, err := db.ExecContext(ctx, `CREATE TABLE users (id int PRIMARY KEY, name text, pw text)`)
	require.NoError(t, err)
	ids := map[string]int64{}
	for _, f := range lifeFixtures {
		var id int64
		require.NoError(t, db.QueryRowContext(ctx, `INSERT INTO auditpgx_entry (created, operation, table_name, object_id, changes, tx_id)
			VALUES ($1, $2, 'users', $3, $4::jsonb, $5) RETURNING id`, at(f.minute), string(f.op), f.obj, f.changes, f.tx).Scan(&id))
		ids[f.label] = id
	}
	return db, ids
}

func TestAsOfBaseline(t *testing.T) {
	db, _ := seedLife(t)
	ctx := context.Background()
	for _, tc := range []struct {
		obj   string
		min   int
		want  string // "" for ErrNotFound
		known string // for ErrIncomplete
		gap   string // its reason
	}{
		{obj: "5", min: 20, known: `{"name": "B"}`, gap: "the object does not exist"},
		{obj: "5", min: 29, want: ""}, // moved to 6 (partly known there)
		{obj: "6", min: 29, known: `{"id": 6, "name": "C"}`, gap: "the object does not exist"},
		// From the snapshot on, known; the running update applies after it.
		{obj: "5", min: 30, want: ""},
		{obj: "6", min: 30, want: `{"id": 6, "name": "C", "pw": "$encrypted$"}`},
		{obj: "6", min: 45, want: `{"id": 6, "name": "D", "pw": "$encrypted$"}`},
		{obj: "7", min: 45, want: `{"id": 7, "name": "G", "pw": "$encrypted$"}`},
		// An old value that differs (a write auditpgx did not see): only
		// what the update set is known.
		{obj: "7", min: 55, known: `{"name": "Y"}`, gap: `changed_fields: column "name" was "G", the entry says "X"`},
		// A create over nothing known is whole; an update that does not
		// fit it is a gap again.
		{obj: "8", min: 65, want: `{"id": 8, "name": "H"}`},
		{obj: "8", min: 75, known: `{"name": "R"}`, gap: `column "name" was "H"`},
	} {
		img, err := store.AsOf(ctx, db, "users", tc.obj, at(tc.min))
		switch {
		case tc.known != "":
			var ie *store.IncompleteError
			require.ErrorAs(t, err, &ie, "users %s at %d: %s", tc.obj, tc.min, stateJSON(t, img))
			require.ErrorIs(t, err, store.ErrIncomplete)
			require.ErrorIs(t, err, store.ErrInconsistent)
			require.JSONEq(t, tc.known, stateJSON(t, ie.Known), "users %s at %d", tc.obj, tc.min)
			require.Contains(t, ie.Gap.Reason, tc.gap)
			require.Equal(t, tc.obj, ie.ObjectID)
			require.Equal(t, "users", ie.TableName)
			require.Equal(t, at(tc.min), ie.At)
		case tc.want == "":
			require.ErrorIs(t, err, store.ErrNotFound, "users %s at %d: %s", tc.obj, tc.min, stateJSON(t, img))
		default:
			require.NoError(t, err, "users %s at %d", tc.obj, tc.min)
			require.JSONEq(t, tc.want, stateJSON(t, img), "users %s at %d", tc.obj, tc.min)
		}
	}

	_, err := store.AsOf(ctx, db, "users", "6", at(29))
	require.EqualError(t, err, `auditpgx: incomplete history: users "6" at 2024-05-01T09:29:00Z is only partly known: `+
		`entry 1 (update of users "5") does not fit the state before it: the object does not exist; 2 column(s) known since`)
	require.False(t, errors.Is(err, store.ErrNotFound))
}

func TestHistoryBaseline(t *testing.T) {
	db, ids := seedLife(t)
	ctx := context.Background()
	for _, tc := range []struct {
		obj  string
		want []string
	}{
		// The running update applies after the snapshot and the marker.
		{"6", []string{"before", "snapshot5", "marker", "running", "after"}},
		{"5", []string{"before", "snapshot5", "marker", "running"}},
		// A marker before the object's first entry is left out.
		{"8", []string{"recreated", "wrong"}},
		{"7", []string{"snapshot7", "marker", "unseen"}},
	} {
		got, err := store.History(ctx, db, "users", tc.obj)
		require.NoError(t, err)
		require.Equal(t, tc.want, historyLabels(got, ids), "users %s", tc.obj)
	}
	h, err := store.History(ctx, db, "users", "7")
	require.NoError(t, err)
	require.True(t, h[1].IsBaselineMarker())
	require.Equal(t, &store.Baseline{Snapshot: "100:108:105", Rows: 2}, h[1].Baseline)
	require.Nil(t, h[1].Changes)

	// ReplayTable: the table from its entries, strictly; the gap on 7 and
	// 8 after the baseline is an error.
	_, err = store.ReplayTable(ctx, db, "", "users", []string{"id"})
	var re *store.ReplayError
	require.ErrorAs(t, err, &re)
	require.Equal(t, ids["unseen"], re.EntryID)
}

// ReplayTable after a baseline with writes around it.
func TestReplayTableBaseline(t *testing.T) {
	ctx := context.Background()
	db, _ := openSchema(t)
	require.NoError(t, store.Migrate(ctx, db, "auditpgx_entry"))
	_, err := db.ExecContext(ctx, `INSERT INTO auditpgx_entry (created, operation, table_name, object_id, changes, tx_id) VALUES
		(now(), 'update', 't', '1', '{"changed_fields": {"n": [0, 1]}}', 99),
		(now(), 'update', 't', '1', '{"changed_fields": {"n": [1, 2]}}', 105),
		(now(), 'snapshot', 't', '1', '{"added_fields": {"id": 1, "n": 1}}', 110),
		(now(), 'create', 't', '3', '{"added_fields": {"id": 3, "n": 0}}', 120),
		(now(), 'snapshot', 't', '2', '{"added_fields": {"id": 2, "n": 5}}', 110),
		(now(), 'snapshot', 't', '', '{"snapshot": "100:108:105", "rows": 2}', 110),
		(now(), 'update', 't', '2', '{"changed_fields": {"n": [5, 6]}}', 121),
		(now(), 'create', 'other', '1', '{"added_fields": {"id": 1}}', 122)`)
	require.NoError(t, err)
	got, err := store.ReplayTable(ctx, db, "", "t", []string{"id"})
	require.NoError(t, err)
	require.JSONEq(t, `{"1": {"id": 1, "n": 2}, "2": {"id": 2, "n": 6}, "3": {"id": 3, "n": 0}}`, stateJSON(t, got))
}

func TestIncompleteErrorUnwrap(t *testing.T) {
	err := error(&store.IncompleteError{TableName: "t", ObjectID: "1", At: time.Unix(0, 0),
		Gap: &store.ReplayError{EntryID: 3, Operation: store.OpUpdate, TableName: "t", ObjectID: "0", Reason: "r"}})
	require.ErrorIs(t, err, store.ErrIncomplete)
	require.ErrorIs(t, err, store.ErrInconsistent)
	var re *store.ReplayError
	require.ErrorAs(t, err, &re)
	require.EqualError(t, err, `auditpgx: incomplete history: t "1" at 1970-01-01T00:00:00Z is only partly known: `+
		`entry 3 (update of t "0") does not fit the state before it: r; 0 column(s) known since`)
}
