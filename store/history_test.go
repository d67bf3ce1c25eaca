package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/store"
)

// historyFixtures is one user's life: created as 1, renamed, associated
// with a team, its key changed to 2, updated and deleted; beside it user 3,
// and user 5 created and updated by two statements at the same instant.
var historyFixtures = []struct {
	label   string
	minute  int
	op      store.Operation
	table   string
	obj     string
	changes string
	related [2]string // table, object
}{
	{label: "create1", minute: 0, op: store.OpCreate, table: "users", obj: "1",
		changes: `{"added_fields": {"id": 1, "name": "Ann", "pw": "$encrypted$"}}`},
	{label: "create3", minute: 5, op: store.OpCreate, table: "users", obj: "3",
		changes: `{"added_fields": {"id": 3, "name": "Cy", "pw": "$encrypted$"}}`},
	{label: "rename", minute: 10, op: store.OpUpdate, table: "users", obj: "1",
		changes: `{"changed_fields": {"name": ["Ann", "Anne"], "pw": ["$encrypted$", "$encrypted$"]}}`},
	{label: "join", minute: 20, op: store.OpAssociate, table: "teams", obj: "9", related: [2]string{"users", "1"}},
	{label: "rekey", minute: 30, op: store.OpUpdate, table: "users", obj: "2",
		changes: `{"changed_fields": {"id": [1, 2]}}`},
	{label: "rename2", minute: 40, op: store.OpUpdate, table: "users", obj: "2",
		changes: `{"changed_fields": {"name": ["Anne", "Annie"]}}`},
	{label: "leave", minute: 45, op: store.OpDisassociate, table: "teams", obj: "9", related: [2]string{"users", "2"}},
	{label: "delete2", minute: 50, op: store.OpDelete, table: "users", obj: "2",
		changes: `{"removed_fields": {"id": 2, "name": "Annie", "pw": "$encrypted$"}}`},
	{label: "create5", minute: 60, op: store.OpCreate, table: "users", obj: "5",
		changes: `{"added_fields": {"id": 5, "name": "E"}}`},
	{label: "update5", minute: 60, op: store.OpUpdate, table: "users", obj: "5",
		changes: `{"changed_fields": {"name": ["E", "Eve"]}}`},
}

var historyBase = time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)

func at(minute int) time.Time { return historyBase.Add(time.Duration(minute) * time.Minute) }

// seedHistory writes the fixtures and a users table whose primary key the
// catalog reports.
func seedHistory(t *testing.T) (*sql.DB, map[string]int64) {
	t.Helper()
	ctx := context.Background()
	db, _ := openSchema(t)
	require.NoError(t, store.Migrate(ctx, db, "auditpgx_entry"))
	_, err := db.ExecContext(ctx, `CREATE TABLE users (id int PRIMARY KEY, name text, pw text)`)
	require.NoError(t, err)
	ids := map[string]int64{}
	for _, f := range historyFixtures {
		var changes, relTable, relObj, relField *string
		if f.changes != "" {
			changes = &f.changes
		}
		if f.related[0] != "" {
			relTable, relObj, relField = &f.related[0], &f.related[1], ptr("members")
		}
		var id int64
		err := db.QueryRowContext(ctx, `INSERT INTO auditpgx_entry
			(created, created_by, operation, table_name, object_id, changes,
			 related_table_name, related_object_id, related_field_name, tx_id)
			VALUES ($1, 'alice', $2, $3, $4, $5::jsonb, $6, $7, $8, $9) RETURNING id`,
			at(f.minute), string(f.op), f.table, f.obj, changes, relTable, relObj, relField, f.minute).Scan(&id)
		require.NoError(t, err, f.label)
		ids[f.label] = id
	}
	return db, ids
}

func historyLabels(entries []store.Entry, ids map[string]int64) []string {
	byID := map[int64]string{}
	for l, id := range ids {
		byID[id] = l
	}
	var out []string
	for _, e := range entries {
		out = append(out, byID[e.ID])
	}
	return out
}

func TestHistory(t *testing.T) {
	db, ids := seedHistory(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		obj  string
		opts []store.Option
		want []string
	}{
		{"after a key change, from the catalog's key", "2", nil,
			[]string{"create1", "rename", "join", "rekey", "rename2", "leave", "delete2"}},
		{"after a key change, with WithKeys", "2", []store.Option{store.WithKeys("id")},
			[]string{"create1", "rename", "join", "rekey", "rename2", "leave", "delete2"}},
		{"before a key change: ends with the move", "1", nil,
			[]string{"create1", "rename", "join", "rekey"}},
		{"without following keys", "2", []store.Option{store.WithKeys()},
			[]string{"rekey", "rename2", "leave", "delete2"}},
		{"untouched object", "3", nil, []string{"create3"}},
		{"same instant, id order", "5", nil, []string{"create5", "update5"}},
		{"never existed", "42", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := store.History(ctx, db, "users", tc.obj, tc.opts...)
			require.NoError(t, err)
			require.Equal(t, tc.want, historyLabels(got, ids))
		})
	}

	got, err := store.History(ctx, db, "teams", "9")
	require.NoError(t, err)
	require.Equal(t, []string{"join", "leave"}, historyLabels(got, ids))

	_, err = store.History(ctx, db, "users", "1", store.WithEntryTable("a.b.c"))
	require.ErrorIs(t, err, store.ErrInvalidTableName)
}

func TestAsOf(t *testing.T) {
	db, _ := seedHistory(t)
	ctx := context.Background()
	ann := `{"id": 1, "name": "Ann", "pw": "$encrypted$"}`
	anne := `{"id": 1, "name": "Anne", "pw": "$encrypted$"}`
	for _, tc := range []struct {
		obj  string
		when time.Time
		opts []store.Option
		want string // "" for ErrNotFound
	}{
		{"1", at(0).Add(-time.Microsecond), nil, ""}, // before creation
		{"1", at(0), nil, ann},                       // at the creating statement's instant
		{"1", at(5), nil, ann},
		{"1", at(10), nil, anne},
		{"1", at(29), nil, anne},
		{"1", at(30), nil, ""}, // its key changed
		{"2", at(29), nil, ""},
		{"2", at(30), nil, `{"id": 2, "name": "Anne", "pw": "$encrypted$"}`},
		{"2", at(30), []store.Option{store.WithKeys("id")}, `{"id": 2, "name": "Anne", "pw": "$encrypted$"}`},
		{"2", at(45), nil, `{"id": 2, "name": "Annie", "pw": "$encrypted$"}`},
		{"2", at(50), nil, ""}, // after deletion
		{"2", at(500), nil, ""},
		{"3", at(500), nil, `{"id": 3, "name": "Cy", "pw": "$encrypted$"}`},
		{"5", at(60), nil, `{"id": 5, "name": "Eve"}`}, // both entries of the instant
		{"42", at(500), nil, ""},
		{"3", time.Time{}, nil, ""}, // the zero time is before everything
		// Without following keys, the object under its old key looks alive.
		{"1", at(500), []store.Option{store.WithKeys()}, anne},
	} {
		got, err := store.AsOf(ctx, db, "users", tc.obj, tc.when, tc.opts...)
		if tc.want == "" {
			require.ErrorIs(t, err, store.ErrNotFound, "users %s at %s: %s", tc.obj, tc.when, got)
			require.ErrorContains(t, err, `users "`+tc.obj+`" did not exist at `+tc.when.Format(time.RFC3339Nano))
			continue
		}
		require.NoError(t, err, "users %s at %s", tc.obj, tc.when)
		b, _ := json.Marshal(got)
		require.JSONEq(t, tc.want, string(b), "users %s at %s", tc.obj, tc.when)
	}

	// Without following keys, the object under its new key has no creation.
	_, err := store.AsOf(ctx, db, "users", "2", at(40), store.WithKeys())
	var re *store.ReplayError
	require.ErrorAs(t, err, &re)
	require.True(t, errors.Is(err, store.ErrInconsistent))
}

func TestGet(t *testing.T) {
	db, ids := seedHistory(t)
	ctx := context.Background()
	e, err := store.Get(ctx, db, ids["join"])
	require.NoError(t, err)
	require.Equal(t, store.OpAssociate, e.Operation)
	require.Equal(t, "members", *e.RelatedFieldName)
	require.Equal(t, at(20), e.Created)
	require.Equal(t, time.UTC, e.Created.Location())

	_, err = store.Get(ctx, db, 999999)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.EqualError(t, err, `auditpgx: not found: entry 999999 in "auditpgx_entry"`)
}

// A truncate entry of the table ends every object's life: AsOf finds no
// object after it, and History lists it.
func TestAsOfTruncate(t *testing.T) {
	db, ids := seedHistory(t)
	ctx := context.Background()
	var truncID int64
	require.NoError(t, db.QueryRowContext(ctx, `INSERT INTO auditpgx_entry (created, created_by, operation, table_name, object_id, tx_id)
		VALUES ($1, 'alice', 'truncate', 'users', '', 70) RETURNING id`, at(70)).Scan(&truncID))
	ids["truncate"] = truncID

	img, err := store.AsOf(ctx, db, "users", "5", at(65))
	require.NoError(t, err)
	require.JSONEq(t, `{"id": 5, "name": "Eve"}`, stateJSON(t, img))
	_, err = store.AsOf(ctx, db, "users", "5", at(70))
	require.ErrorIs(t, err, store.ErrNotFound)

	h, err := store.History(ctx, db, "users", "5")
	require.NoError(t, err)
	require.Equal(t, []string{"create5", "update5", "truncate"}, historyLabels(h, ids))
}
