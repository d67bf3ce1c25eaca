package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/store"
)

// seedScope is seed with one more entry, g, that shares a's statement
// fingerprint: a second insert into users, after f.
func seedScope(t *testing.T) (*sql.DB, map[string]int64) {
	t.Helper()
	db, ids := seed(t)
	var id int64
	require.NoError(t, db.QueryRowContext(context.Background(), `INSERT INTO auditpgx_entry
		(created, operation, table_name, object_id, changes, tx_id, statement_fingerprint)
		VALUES ($1, 'create', 'users', '3', '{"added_fields": {"name": "Di"}}', 14, 'fp-insert-users')
		RETURNING id`, base.Add(6*time.Hour)).Scan(&id))
	ids["g"] = id
	return db, ids
}

func TestListBeforeIDFingerprintTables(t *testing.T) {
	db, ids := seedScope(t)
	all := []string{"users", "orders", "groups"}
	for _, tc := range []struct {
		name string
		q    store.Query
		want string
	}{
		{"before id", store.Query{BeforeID: ids["d"]}, "abc"},
		{"before id, descending", store.Query{BeforeID: ids["d"], Descending: true}, "cba"},
		{"before id, descending with limit", store.Query{BeforeID: ids["f"], Descending: true, Limit: 2}, "ed"},
		{"before the first id", store.Query{BeforeID: ids["a"]}, ""},
		{"before id with a filter", store.Query{BeforeID: ids["e"], TableName: "users", Descending: true}, "dcba"},
		{"after and before id", store.Query{AfterID: ids["a"], BeforeID: ids["e"]}, "bcd"},
		{"after and before id, descending", store.Query{AfterID: ids["a"], BeforeID: ids["e"], Descending: true}, "dcb"},
		{"after and before adjacent ids", store.Query{AfterID: ids["c"], BeforeID: ids["d"]}, ""},
		{"after and before the same id", store.Query{AfterID: ids["c"], BeforeID: ids["c"]}, ""},
		{"before below after", store.Query{AfterID: ids["e"], BeforeID: ids["b"]}, ""},
		{"zero before id is no bound", store.Query{BeforeID: 0}, "abcdefg"},

		{"fingerprint", store.Query{Fingerprint: "fp-insert-users"}, "ag"},
		{"fingerprint, descending", store.Query{Fingerprint: "fp-insert-users", Descending: true}, "ga"},
		{"fingerprint and before id", store.Query{Fingerprint: "fp-insert-users", BeforeID: ids["g"]}, "a"},
		{"fingerprint and another filter", store.Query{Fingerprint: "fp-insert-users", ObjectID: "3"}, "g"},
		{"unknown fingerprint", store.Query{Fingerprint: "fp-none"}, ""},
		{"fingerprint is case-sensitive", store.Query{Fingerprint: "FP-INSERT-USERS"}, ""},
		{"empty fingerprint is no filter", store.Query{Fingerprint: ""}, "abcdefg"},

		// d is users' association with a group, e an order's
		// disassociation from a user: each needs both of its tables.
		{"tables: one", store.Query{Tables: []string{"users"}}, "abcg"},
		{"tables: an association's related table is outside", store.Query{Tables: []string{"orders"}}, "f"},
		{"tables: both sides of one association", store.Query{Tables: []string{"users", "groups"}}, "abcdg"},
		{"tables: the other association", store.Query{Tables: []string{"orders", "users"}}, "abcefg"},
		{"tables: all", store.Query{Tables: all}, "abcdefg"},
		{"tables: only related", store.Query{Tables: []string{"groups"}}, ""},
		{"tables: unknown", store.Query{Tables: []string{"nobody"}}, ""},
		{"tables: case-sensitive", store.Query{Tables: []string{"Users", "ORDERS"}}, ""},
		{"tables: repeated", store.Query{Tables: []string{"users", "users"}}, "abcg"},
		{"tables: the empty name", store.Query{Tables: []string{""}}, ""},
		{"tables: nil is no restriction", store.Query{Tables: nil}, "abcdefg"},
		{"tables: empty matches nothing", store.Query{Tables: []string{}}, ""},
		{"tables: empty matches nothing, with other filters", store.Query{Tables: []string{}, TableName: "users", Descending: true}, ""},
		{"tables, descending", store.Query{Tables: []string{"users", "orders"}, Descending: true}, "gfecba"},
		{"tables, descending with limit", store.Query{Tables: []string{"users"}, Descending: true, Limit: 2}, "gc"},
		{"tables and table name", store.Query{Tables: []string{"users", "groups"}, TableName: "users", ObjectID: "1"}, "abd"},
		{"tables exclude table name", store.Query{Tables: []string{"orders"}, TableName: "users"}, ""},
		{"tables and related filter", store.Query{Tables: all, RelatedTableName: "users"}, "e"},
		{"tables, fingerprint and ids", store.Query{Tables: []string{"users"}, Fingerprint: "fp-insert-users",
			AfterID: ids["a"], BeforeID: ids["g"] + 1, Descending: true}, "g"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := store.List(context.Background(), db, tc.q)
			require.NoError(t, err)
			require.Equal(t, tc.want, labels(got, ids))
		})
	}
}

func TestListPageBeforeIDAndTables(t *testing.T) {
	db, ids := seedScope(t)
	ctx := context.Background()
	for _, tc := range []struct {
		q     store.Query
		pages []string
	}{
		// The last page ends at the bound: e, which follows d, is beyond it.
		{store.Query{BeforeID: ids["e"], Limit: 2}, []string{"ab", "cd"}},
		{store.Query{BeforeID: ids["f"], Limit: 2, Descending: true}, []string{"ed", "cb", "a"}},
		{store.Query{AfterID: ids["a"], BeforeID: ids["g"], Limit: 2, Descending: true}, []string{"fe", "dc", "b"}},
		{store.Query{AfterID: ids["b"], BeforeID: ids["f"], Limit: 1}, []string{"c", "d", "e"}},
		{store.Query{Tables: []string{"users"}, Limit: 2, Descending: true}, []string{"gc", "ba"}},
		{store.Query{Tables: []string{"users", "orders"}, Limit: 2, Descending: true}, []string{"gf", "ec", "ba"}},
		{store.Query{Tables: []string{"users", "orders"}, Limit: 4}, []string{"abce", "fg"}},
		{store.Query{Tables: []string{"orders", "users"}, BeforeID: ids["g"], Limit: 2, Descending: true}, []string{"fe", "cb", "a"}},
		{store.Query{Fingerprint: "fp-insert-users", Limit: 1, Descending: true}, []string{"g", "a"}},
		{store.Query{Tables: []string{}, Limit: 2}, []string{""}},
	} {
		q := tc.q
		var got []string
		for {
			p, err := store.ListPage(ctx, db, q)
			require.NoError(t, err)
			got = append(got, labels(p.Entries, ids))
			if p.Next == "" {
				break
			}
			q.Cursor = p.Next
		}
		require.Equal(t, tc.pages, got, "%+v", tc.q)
	}
}

// An empty Tables still sends the query, so a missing entry table is
// still an error.
func TestListEmptyTablesSendsQuery(t *testing.T) {
	db, _ := openSchema(t)
	_, err := store.List(context.Background(), db, store.Query{Table: "nope", Tables: []string{}})
	require.ErrorContains(t, err, `"nope"`)

	query, args := store.ListSQL(store.Query{Tables: []string{}, Descending: true})
	require.Contains(t, query, "FALSE")
	require.Len(t, args, 1) // the limit
}

// Each name is one parameter, used for both table columns.
func TestListTablesSQL(t *testing.T) {
	query, args := store.ListSQL(store.Query{Tables: []string{"a", "b"}, Limit: 5})
	require.Contains(t, query, "table_name IN ($1, $2) AND (related_table_name IS NULL OR related_table_name IN ($1, $2))")
	require.Equal(t, []any{"a", "b", 6}, args)
}

func TestListTablesMaximum(t *testing.T) {
	db, ids := seed(t)
	names := make([]string, 1001)
	for i := range names {
		names[i] = fmt.Sprintf("t%d", i)
	}
	names[999] = "orders"
	got, err := store.List(context.Background(), db, store.Query{Tables: names[:1000]})
	require.NoError(t, err)
	require.Equal(t, "f", labels(got, ids))

	_, err = store.List(context.Background(), db, store.Query{Tables: names})
	require.ErrorIs(t, err, store.ErrInvalidQuery)
	require.EqualError(t, err, "auditpgx: invalid query: Tables has 1001 names, more than the maximum of 1000")
}

func TestListValidationBeforeIDAndTables(t *testing.T) {
	for _, tc := range []struct {
		q     store.Query
		field string
		msg   string
	}{
		{store.Query{BeforeID: -1}, "BeforeID", "auditpgx: invalid query: BeforeID -1 is negative"},
		{store.Query{BeforeID: -1, Descending: true, AfterID: 3}, "BeforeID", "auditpgx: invalid query: BeforeID -1 is negative"},
		{store.Query{Tables: make([]string, 1001)}, "Tables", "auditpgx: invalid query: Tables has 1001 names, more than the maximum of 1000"},
	} {
		// A nil Querier: validation must fail before anything is sent.
		_, err := store.List(context.Background(), nil, tc.q)
		require.ErrorIs(t, err, store.ErrInvalidQuery)
		var qe *store.QueryError
		require.True(t, errors.As(err, &qe))
		require.Equal(t, tc.field, qe.Field)
		require.EqualError(t, err, tc.msg)

		_, err = store.ListPage(context.Background(), nil, tc.q)
		require.ErrorIs(t, err, store.ErrInvalidQuery)
	}
}
