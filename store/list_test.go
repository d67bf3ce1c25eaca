package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/store"
)

var base = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture is one entry row to insert; nil pointers insert NULL.
type fixture struct {
	label       string
	hour        int // created = base + hour hours
	createdBy   *string
	op          store.Operation
	table, obj  string
	changes     *string // jsonb text
	relTable    *string
	relObj      *string
	relField    *string
	txID        int64
	fingerprint *string
}

func ptr(s string) *string { return &s }

var fixtures = []fixture{
	{label: "a", hour: 0, createdBy: ptr("alice"), op: store.OpCreate, table: "users", obj: "1",
		changes: ptr(`{"added_fields": {"name": "Ann", "age": 30}, "removed_fields": {}, "changed_fields": {}}`),
		txID:    10, fingerprint: ptr("fp-insert-users")},
	{label: "b", hour: 1, createdBy: ptr("bob"), op: store.OpUpdate, table: "users", obj: "1",
		changes: ptr(`{"added_fields": {}, "removed_fields": {}, "changed_fields": {"name": ["Ann", "Anne"], "nick": [null, "an"]}}`),
		txID:    11},
	{label: "c", hour: 2, createdBy: ptr("alice"), op: store.OpDelete, table: "users", obj: "2",
		changes: ptr(`{"added_fields": {}, "removed_fields": {"name": "Cy"}, "changed_fields": {}}`), txID: 11},
	{label: "d", hour: 3, op: store.OpAssociate, table: "users", obj: "1",
		relTable: ptr("groups"), relObj: ptr("7"), relField: ptr("groups"), txID: 12},
	{label: "e", hour: 4, createdBy: ptr("bob"), op: store.OpDisassociate, table: "orders", obj: "1",
		relTable: ptr("users"), relObj: ptr("1"), relField: ptr("owner"), txID: 12},
	{label: "f", hour: 5, createdBy: ptr("carol"), op: store.OpCreate, table: "orders", obj: "9",
		changes: ptr(`{"added_fields": {"total": 12.5}}`), txID: 13},
}

// seed migrates a fresh schema, inserts fixtures and returns their ids by
// label.
func seed(t *testing.T) (*sql.DB, map[string]int64) {
	t.Helper()
	ctx := context.Background()
	db, _ := openSchema(t)
	if err := store.Migrate(ctx, db, "auditpgx_entry"); err != nil {
		t.Fatal(err)
	}
	ids := map[string]int64{}
	for _, f := range fixtures {
		var id int64
		err := db.QueryRowContext(ctx, `INSERT INTO auditpgx_entry
			(created, created_by, operation, table_name, object_id, changes,
			 related_table_name, related_object_id, related_field_name, tx_id, statement_fingerprint)
			VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11) RETURNING id`,
			base.Add(time.Duration(f.hour)*time.Hour), f.createdBy, string(f.op), f.table, f.obj, f.changes,
			f.relTable, f.relObj, f.relField, f.txID, f.fingerprint).Scan(&id)
		if err != nil {
			t.Fatalf("inserting %s: %v", f.label, err)
		}
		ids[f.label] = id
	}
	return db, ids
}

func labels(entries []store.Entry, ids map[string]int64) string {
	byID := map[int64]string{}
	for l, id := range ids {
		byID[id] = l
	}
	var b strings.Builder
	for _, e := range entries {
		l, ok := byID[e.ID]
		if !ok {
			l = "?"
		}
		b.WriteString(l)
	}
	return b.String()
}

func TestListFilters(t *testing.T) {
	db, ids := seed(t)
	at := func(h int) time.Time { return base.Add(time.Duration(h) * time.Hour) }
	for _, tc := range []struct {
		name string
		q    store.Query
		want string // labels in id order
	}{
		{"all", store.Query{}, "abcdef"},
		{"table name", store.Query{TableName: "users"}, "abcd"},
		{"object id", store.Query{ObjectID: "1"}, "abde"},
		{"table name and object id", store.Query{TableName: "users", ObjectID: "1"}, "abd"},
		{"actor", store.Query{Actor: "alice"}, "ac"},
		{"one operation", store.Query{Operations: []store.Operation{store.OpCreate}}, "af"},
		{"two operations", store.Query{Operations: []store.Operation{store.OpDisassociate, store.OpAssociate}}, "de"},
		{"tx id", store.Query{TxID: 11}, "bc"},
		{"since", store.Query{Since: at(2)}, "cdef"},
		{"until", store.Query{Until: at(2)}, "ab"},
		{"since and until", store.Query{Since: at(1), Until: at(4)}, "bcd"},
		{"since equals until", store.Query{Since: at(1), Until: at(1)}, ""},
		{"since in another zone", store.Query{Since: at(2).In(time.FixedZone("x", 5*3600))}, "cdef"},
		{"after id", store.Query{AfterID: ids["c"]}, "def"},
		{"limit", store.Query{Limit: 2}, "ab"},
		{"combined", store.Query{TableName: "users", Actor: "bob",
			Operations: []store.Operation{store.OpUpdate, store.OpDelete}}, "b"},
		{"combined with time, tx and page", store.Query{ObjectID: "1", TxID: 12, Since: at(3), Until: at(5),
			AfterID: ids["a"], Limit: 1}, "d"},
		{"no match", store.Query{TableName: "users", Actor: "carol"}, ""},
		{"empty actor is no filter", store.Query{Actor: ""}, "abcdef"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := store.List(context.Background(), db, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if l := labels(got, ids); l != tc.want {
				t.Errorf("got %q, want %q", l, tc.want)
			}
		})
	}
}

func TestListDecodes(t *testing.T) {
	db, ids := seed(t)
	entries, err := store.List(context.Background(), db, store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(fixtures) {
		t.Fatalf("%d entries, want %d", len(entries), len(fixtures))
	}
	for i, f := range fixtures {
		e := entries[i]
		want := store.Entry{
			ID:                   ids[f.label],
			Created:              base.Add(time.Duration(f.hour) * time.Hour),
			CreatedBy:            f.createdBy,
			Operation:            f.op,
			TableName:            f.table,
			ObjectID:             f.obj,
			RelatedTableName:     f.relTable,
			RelatedObjectID:      f.relObj,
			RelatedFieldName:     f.relField,
			TxID:                 f.txID,
			StatementFingerprint: f.fingerprint,
		}
		if !e.Created.Equal(want.Created) {
			t.Errorf("%s: Created %v, want %v", f.label, e.Created, want.Created)
		}
		if (f.changes == nil) != (e.Changes == nil) {
			t.Errorf("%s: Changes %+v, want present=%v", f.label, e.Changes, f.changes != nil)
		}
		e.Created = want.Created
		e.Changes = nil
		if !reflect.DeepEqual(e, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", f.label, e, want)
		}
	}

	// NULL columns decode to nil pointers.
	d := entries[3]
	if d.CreatedBy != nil || d.Changes != nil || d.StatementFingerprint != nil {
		t.Errorf("d: NULL columns not nil: %+v", d)
	}
	if a := entries[0]; a.RelatedTableName != nil || a.RelatedObjectID != nil || a.RelatedFieldName != nil {
		t.Errorf("a: NULL related columns not nil: %+v", a)
	}

	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	wantChanges := map[string]diff.Changes{
		"a": {
			AddedFields:   map[string]json.RawMessage{"name": raw(`"Ann"`), "age": raw(`30`)},
			RemovedFields: map[string]json.RawMessage{},
			ChangedFields: map[string][2]json.RawMessage{},
		},
		"b": {
			AddedFields:   map[string]json.RawMessage{},
			RemovedFields: map[string]json.RawMessage{},
			ChangedFields: map[string][2]json.RawMessage{
				"name": {raw(`"Ann"`), raw(`"Anne"`)},
				"nick": {raw(`null`), raw(`"an"`)},
			},
		},
		"c": {
			AddedFields:   map[string]json.RawMessage{},
			RemovedFields: map[string]json.RawMessage{"name": raw(`"Cy"`)},
			ChangedFields: map[string][2]json.RawMessage{},
		},
		"f": { // keys absent from the stored object decode as empty maps
			AddedFields:   map[string]json.RawMessage{"total": raw(`12.5`)},
			RemovedFields: map[string]json.RawMessage{},
			ChangedFields: map[string][2]json.RawMessage{},
		},
	}
	for i, f := range fixtures {
		want, ok := wantChanges[f.label]
		if !ok {
			continue
		}
		got := entries[i].Changes
		if got == nil {
			t.Errorf("%s: Changes nil", f.label)
			continue
		}
		// Compare as JSON: RawMessage for a JSON null may be nil or "null".
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if string(gj) != string(wj) {
			t.Errorf("%s: Changes\n got %s\nwant %s", f.label, gj, wj)
		}
	}
}

// A jsonb null (as opposed to SQL NULL) also decodes to nil Changes; a
// changes value of the wrong shape is an error naming the entry.
func TestListChangesEdgeCases(t *testing.T) {
	ctx := context.Background()
	db, _ := openSchema(t)
	if err := store.Migrate(ctx, db, "auditpgx_entry"); err != nil {
		t.Fatal(err)
	}
	insert := func(changes string) int64 {
		var id int64
		if err := db.QueryRowContext(ctx, `INSERT INTO auditpgx_entry (operation, table_name, object_id, changes, tx_id)
			VALUES ('update', 't', '1', $1::jsonb, 1) RETURNING id`, changes).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	insert(`null`)
	entries, err := store.List(ctx, db, store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Changes != nil {
		t.Errorf("jsonb null: %+v", entries)
	}

	bad := insert(`{"changed_fields": {"x": [1]}}`)
	_, err = store.List(ctx, db, store.Query{})
	if err == nil || !strings.HasPrefix(err.Error(), fmt.Sprintf("auditpgx: entry %d ", bad)) {
		t.Errorf("bad changes: err = %v, want one naming entry %d", err, bad)
	}
}

// Paging with AfterID visits every matching entry exactly once, in order.
func TestListPagination(t *testing.T) {
	ctx := context.Background()
	db, _ := openSchema(t)
	if err := store.Migrate(ctx, db, "auditpgx_entry"); err != nil {
		t.Fatal(err)
	}
	// 250 entries, every third for another table, so pages skip over gaps.
	rows, err := db.QueryContext(ctx, `INSERT INTO auditpgx_entry (operation, table_name, object_id, tx_id)
		SELECT 'create', CASE WHEN i % 3 = 0 THEN 'other' ELSE 'paged' END, i::text, i
		FROM generate_series(1, 250) i RETURNING id, table_name`)
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for rows.Next() {
		var (
			id    int64
			table string
		)
		if err := rows.Scan(&id, &table); err != nil {
			t.Fatal(err)
		}
		if table == "paged" {
			want = append(want, id)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()

	for _, limit := range []int{0, 1, 7, 167, 1000} {
		var (
			got   []int64
			pages int
		)
		q := store.Query{TableName: "paged", Limit: limit}
		for {
			page, err := store.List(ctx, db, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			pages++
			pageLimit := limit
			if pageLimit == 0 {
				pageLimit = 100
			}
			if len(page) > pageLimit {
				t.Fatalf("limit %d: page of %d", limit, len(page))
			}
			for _, e := range page {
				got = append(got, e.ID)
			}
			q.AfterID = page[len(page)-1].ID
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("limit %d: pages visited %d ids, want %d (first got %v)", limit, len(got), len(want), got[:min(5, len(got))])
		}
		if limit == 0 && pages != 2 { // 167 entries, 100 per page
			t.Errorf("default limit: %d pages, want 2", pages)
		}
	}
}

func TestListValidation(t *testing.T) {
	for _, tc := range []struct {
		q     store.Query
		field string
	}{
		{store.Query{Limit: -1}, "Limit"},
		{store.Query{Limit: 1001}, "Limit"},
		{store.Query{Operations: []store.Operation{store.OpCreate, "insert"}}, `Operations[1] "insert"`},
		{store.Query{Operations: []store.Operation{""}}, "Operations[0]"},
		{store.Query{Since: base, Until: base.Add(-time.Second)}, "Until"},
		{store.Query{Table: "a.b.c"}, `Table "a.b.c"`},
		{store.Query{Table: "a."}, "Table"},
	} {
		// A nil Querier: validation must fail before anything is sent.
		_, err := store.List(context.Background(), nil, tc.q)
		if !errors.Is(err, store.ErrInvalidQuery) {
			t.Errorf("%+v: err = %v, want ErrInvalidQuery", tc.q, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), "auditpgx: ") || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: err = %q, want it to name %s", tc.q, err, tc.field)
		}
	}
	if _, err := store.List(context.Background(), nil, store.Query{Limit: 1001}); err.Error() !=
		"auditpgx: invalid query: Limit 1001 exceeds the maximum of 1000" {
		t.Errorf("message: %q", err)
	}
}

func TestListMaxLimitAccepted(t *testing.T) {
	db, _ := seed(t)
	if _, err := store.List(context.Background(), db, store.Query{Limit: 1000}); err != nil {
		t.Errorf("Limit 1000: %v", err)
	}
}

// List works inside a transaction and reads the caller's uncommitted writes.
func TestListInTx(t *testing.T) {
	ctx := context.Background()
	db, _ := seed(t)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO auditpgx_entry (operation, table_name, object_id, tx_id)
		VALUES ('create', 'in_tx', '1', txid_current())`); err != nil {
		t.Fatal(err)
	}
	entries, err := store.List(ctx, tx, store.Query{TableName: "in_tx"})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("%d entries, want 1", len(entries))
	}
}

func TestListMissingTable(t *testing.T) {
	db, _ := openSchema(t)
	_, err := store.List(context.Background(), db, store.Query{Table: "nope"})
	if err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("err = %v", err)
	}
}
