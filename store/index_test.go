package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/store"
)

// The common queries are served by the entry table's indexes. The table
// holds enough rows, ANALYZEd, for the planner to prefer an index only
// where one helps; each query asks for a rare value, or for a page of the
// newest entries, which the primary key serves.
func TestListUsesIndexes(t *testing.T) {
	ctx := context.Background()
	db := indexedEntries(t)

	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return v
	}
	// Every audited table of the data: what a stream page restricted to
	// the tables its reader may read passes when that is all of them.
	var all []string
	for i := range 20 {
		all = append(all, "table"+strconv.Itoa(i))
	}
	for _, tc := range []struct {
		name  string
		q     store.Query
		index string
	}{
		{"object history", store.Query{TableName: "table7", ObjectID: "1227"}, "auditpgx_entry_object_idx"},
		{"object history, newest first", store.Query{TableName: "table7", ObjectID: "1227", Descending: true}, "auditpgx_entry_object_idx"},
		{"object history, next page", store.Query{TableName: "table7", ObjectID: "1227", AfterID: 30000}, "auditpgx_entry_object_idx"},
		{"actor", store.Query{Actor: "actor42"}, "auditpgx_entry_actor_idx"},
		{"actor, newest first", store.Query{Actor: "actor42", Descending: true}, "auditpgx_entry_actor_idx"},
		{"related object", store.Query{RelatedTableName: "groups", RelatedObjectID: "2990"}, "auditpgx_entry_related_idx"},
		{"transaction", store.Query{TxID: 777}, "auditpgx_entry_tx_idx"},
		{"created range", store.Query{Since: at("2024-01-10T00:00:00Z"), Until: at("2024-01-10T01:00:00Z")}, "auditpgx_entry_created_idx"},
		{"a request's entries", store.Query{Context: map[string]any{"request_id": "r4242"}}, "auditpgx_entry_changes_idx"},
		{"changed to a value", store.Query{Changes: []store.ChangeFilter{
			{Kind: store.FieldChanged, Field: "f17", To: json.RawMessage(`4818`)}}}, "auditpgx_entry_changes_idx"},
		{"changed from a value, in a table", store.Query{TableName: "table17", Changes: []store.ChangeFilter{
			{Kind: store.FieldChanged, Field: "f17", From: json.RawMessage(`4817`)}}}, "auditpgx_entry_changes_idx"},
		{"newest first, before an id", store.Query{BeforeID: 30000, Descending: true}, "auditpgx_entry_pkey"},
		// A stream page of readable tables: ListSQL adds one to the limit,
		// as ListPage does, so the statement has LIMIT 101.
		{"stream page of readable tables", store.Query{Tables: all, Descending: true, Limit: 100}, "auditpgx_entry_pkey"},
		{"stream page of readable tables, next page", store.Query{Tables: all, Descending: true, Limit: 100, BeforeID: 30000}, "auditpgx_entry_pkey"},
		{"stream page of two tables", store.Query{Tables: []string{"table3", "table4"}, Descending: true, Limit: 100}, "auditpgx_entry_pkey"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			query, args := store.ListSQL(tc.q)
			plan := explain(t, db, query, args)
			t.Log(plan)
			requireIndex(t, plan, tc.index, "query: %s\nplan:\n%s", query, plan)
			requireNoSeqScan(t, db, plan)

			// The query finds what it should: the data has one match or more.
			entries, err := store.List(ctx, db, tc.q)
			require.NoError(t, err)
			require.NotEmpty(t, entries)
		})
	}
}

// The loose index scan of Tables probes the two table-name indexes once
// per distinct name, and once more to find there is no next one.
func TestTablesUsesIndexes(t *testing.T) {
	ctx := context.Background()
	db := indexedEntries(t)
	query := store.TablesSQL("auditpgx_entry")
	// ANALYZE: the scans are subplans of the recursive terms' output,
	// which PostgreSQL sets up, and EXPLAIN shows, only when it runs them.
	plan := explain(t, db, "(ANALYZE, VERBOSE, COSTS OFF, TIMING OFF) "+query, nil)
	t.Log(plan)
	for index, probes := range map[string]string{
		"auditpgx_entry_object_idx":  "21", // table0 to table19
		"auditpgx_entry_related_idx": "2",  // groups
	} {
		// On the partitioned layout, each partition's index is probed.
		ms := regexp.MustCompile(`Scan using (`+indexPattern(index)+`) .*loops=(\d+)\)`).FindAllStringSubmatch(plan, -1)
		require.NotEmpty(t, ms, "%s not used\nquery: %s\nplan:\n%s", index, query, plan)
		for _, m := range ms {
			require.Equal(t, probes, m[len(m)-1], "probes of %s\nplan:\n%s", m[1], plan)
		}
	}
	requireNoSeqScan(t, db, plan)

	names, err := store.Tables(ctx, db)
	require.NoError(t, err)
	want := []string{"groups"}
	for i := range 20 {
		want = append(want, "table"+strconv.Itoa(i))
	}
	slices.Sort(want)
	require.Equal(t, want, names)
}

// indexedEntries returns a pool on a fresh schema whose entry table holds
// 60,000 entries of 20 tables, ANALYZEd: enough rows for the planner to
// prefer an index only where one helps.
func indexedEntries(t *testing.T) *sql.DB {
	t.Helper()
	ctx := context.Background()
	db, _ := openSchema(t)
	require.NoError(t, store.Migrate(ctx, db, "auditpgx_entry"))
	_, err := db.ExecContext(ctx, `INSERT INTO auditpgx_entry
		(created, created_by, operation, table_name, object_id, changes,
		 related_table_name, related_object_id, related_field_name, tx_id, context)
		SELECT timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute',
			'actor' || (i % 500),
			CASE WHEN i % 10 = 0 THEN 'associate' ELSE 'update' END,
			'table' || (i % 20),
			(i % 2000)::text,
			CASE WHEN i % 10 <> 0 THEN jsonb_build_object('added_fields', '{}'::jsonb, 'removed_fields', '{}'::jsonb,
				'changed_fields', jsonb_build_object('f' || (i % 300), jsonb_build_array(i, i + 1))) END,
			CASE WHEN i % 10 = 0 THEN 'groups' END,
			CASE WHEN i % 10 = 0 THEN (i % 3000)::text END,
			CASE WHEN i % 10 = 0 THEN 'members' END,
			i / 3,
			CASE WHEN i % 3 = 0 THEN jsonb_build_object('request_id', 'r' || (i / 3), 'method', 'PATCH') END
		FROM generate_series(1, 60000) i`)
	require.NoError(t, err)
	// VACUUM as autovacuum does after a bulk insert: it moves the GIN
	// index's pending list into the index, whose size the planner
	// otherwise counts against it.
	_, err = db.ExecContext(ctx, `VACUUM ANALYZE auditpgx_entry`)
	require.NoError(t, err)
	return db
}

// History's query is one OR of three conditions, each served by an index:
// the object's own entries, the associations naming it, and the updates
// that moved it off its key (by containment of the old key value).
func TestHistoryUsesIndexes(t *testing.T) {
	ctx := context.Background()
	db, _ := openSchema(t)
	require.NoError(t, store.Migrate(ctx, db, "auditpgx_entry"))
	_, err := db.ExecContext(ctx, `INSERT INTO auditpgx_entry
		(operation, table_name, object_id, changes, related_table_name, related_object_id, tx_id)
		SELECT CASE WHEN i % 10 = 0 THEN 'associate' ELSE 'update' END,
			CASE WHEN i % 10 = 0 THEN 'teams' ELSE 'users' END,
			(i % 5000)::text,
			CASE WHEN i % 10 <> 0 THEN jsonb_build_object('changed_fields',
				CASE WHEN i % 7 = 0 THEN jsonb_build_object('id', jsonb_build_array(i % 5000 - 1, i % 5000))
				ELSE jsonb_build_object('name', jsonb_build_array('a', 'b')) END) END,
			CASE WHEN i % 10 = 0 THEN 'users' END,
			CASE WHEN i % 10 = 0 THEN (i % 4000)::text END,
			i
		FROM generate_series(1, 50000) i`)
	require.NoError(t, err)
	// VACUUM as autovacuum does after a bulk insert: it moves the GIN
	// index's pending list into the index, whose size the planner
	// otherwise counts against it.
	_, err = db.ExecContext(ctx, `VACUUM ANALYZE auditpgx_entry`)
	require.NoError(t, err)

	query, args := store.HistorySQL("users", "1234", []string{"id"})
	plan := explain(t, db, query, args)
	t.Log(plan)
	for _, index := range []string{"auditpgx_entry_object_idx", "auditpgx_entry_related_idx", "auditpgx_entry_changes_idx"} {
		requireIndex(t, plan, index, "query: %s\nplan:\n%s", query, plan)
	}
	requireNoSeqScan(t, db, plan)
}

func explain(t *testing.T, db *sql.DB, query string, args []any) string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "EXPLAIN "+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		lines = append(lines, line)
	}
	require.NoError(t, rows.Err())
	return strings.Join(lines, "\n")
}
