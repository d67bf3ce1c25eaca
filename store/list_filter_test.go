package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/store"
)

func TestListChangeAndRelatedFilters(t *testing.T) {
	db, ids := seed(t)
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	f := func(kind store.ChangeKind, field string, from, to json.RawMessage) []store.ChangeFilter {
		return []store.ChangeFilter{{Kind: kind, Field: field, From: from, To: to}}
	}
	for _, tc := range []struct {
		name string
		q    store.Query
		want string
	}{
		{"added field", store.Query{Changes: f(store.FieldAdded, "name", nil, nil)}, "a"},
		{"added field with value", store.Query{Changes: f(store.FieldAdded, "name", nil, raw(`"Ann"`))}, "a"},
		{"added field with another value", store.Query{Changes: f(store.FieldAdded, "name", nil, raw(`"Bob"`))}, ""},
		{"added number compares as numeric", store.Query{Changes: f(store.FieldAdded, "total", nil, raw(`12.50`))}, "f"},
		{"added number is not a string", store.Query{Changes: f(store.FieldAdded, "total", nil, raw(`"12.5"`))}, ""},
		{"changed field", store.Query{Changes: f(store.FieldChanged, "name", nil, nil)}, "b"},
		{"changed from", store.Query{Changes: f(store.FieldChanged, "name", raw(`"Ann"`), nil)}, "b"},
		{"changed to", store.Query{Changes: f(store.FieldChanged, "name", nil, raw(`"Anne"`))}, "b"},
		{"changed from and to", store.Query{Changes: f(store.FieldChanged, "name", raw(`"Ann"`), raw(`"Anne"`))}, "b"},
		{"changed to the old value", store.Query{Changes: f(store.FieldChanged, "name", nil, raw(`"Ann"`))}, ""},
		{"changed from the new value", store.Query{Changes: f(store.FieldChanged, "name", raw(`"Anne"`), nil)}, ""},
		{"changed from null", store.Query{Changes: f(store.FieldChanged, "nick", raw(`null`), nil)}, "b"},
		{"removed field", store.Query{Changes: f(store.FieldRemoved, "name", nil, nil)}, "c"},
		{"removed field with value", store.Query{Changes: f(store.FieldRemoved, "name", raw(`"Cy"`), nil)}, "c"},
		{"field listed elsewhere", store.Query{Changes: f(store.FieldRemoved, "total", nil, nil)}, ""},
		{"two filters", store.Query{Changes: []store.ChangeFilter{
			{Kind: store.FieldChanged, Field: "name"}, {Kind: store.FieldChanged, Field: "nick", To: raw(`"an"`)}}}, "b"},
		{"two filters, one fails", store.Query{Changes: []store.ChangeFilter{
			{Kind: store.FieldChanged, Field: "name"}, {Kind: store.FieldAdded, Field: "nick"}}}, ""},
		{"related table", store.Query{RelatedTableName: "groups"}, "d"},
		{"related object", store.Query{RelatedObjectID: "1"}, "e"},
		{"related table and object", store.Query{RelatedTableName: "users", RelatedObjectID: "1"}, "e"},
		{"related and owner", store.Query{TableName: "users", RelatedTableName: "groups", RelatedObjectID: "7"}, "d"},
		{"descending", store.Query{Descending: true}, "fedcba"},
		{"descending with limit", store.Query{Descending: true, Limit: 2}, "fe"},
		{"descending with filter", store.Query{Descending: true, TableName: "users"}, "dcba"},
		{"descending after id", store.Query{Descending: true, AfterID: ids["d"]}, "fe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := store.List(context.Background(), db, tc.q)
			require.NoError(t, err)
			require.Equal(t, tc.want, labels(got, ids))
		})
	}
}

func TestListPageCursor(t *testing.T) {
	db, ids := seed(t)
	ctx := context.Background()
	for _, tc := range []struct {
		q     store.Query
		pages []string
	}{
		{store.Query{Limit: 4}, []string{"abcd", "ef"}},
		{store.Query{Limit: 2}, []string{"ab", "cd", "ef"}}, // the last page is full and has no Next
		{store.Query{Limit: 2, Descending: true}, []string{"fe", "dc", "ba"}},
		{store.Query{Limit: 1, Descending: true, TableName: "users"}, []string{"d", "c", "b", "a"}},
		{store.Query{Limit: 5, TableName: "nobody"}, []string{""}},
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

	p, err := store.ListPage(ctx, db, store.Query{Limit: 2})
	require.NoError(t, err)
	_, err = store.ListPage(ctx, db, store.Query{Limit: 2, Descending: true, Cursor: p.Next})
	require.ErrorContains(t, err, "Cursor is for a listing in ascending order, not descending")
}

func TestListValidationMore(t *testing.T) {
	for _, tc := range []struct {
		q     store.Query
		field string
	}{
		{store.Query{Cursor: "garbage!"}, "Cursor is not a cursor returned by a previous page"},
		{store.Query{Cursor: "djFh"}, "Cursor"},    // "v1a": no id
		{store.Query{Cursor: "djF4MTI"}, "Cursor"}, // "v1x12": no direction
		{store.Query{Changes: []store.ChangeFilter{{Kind: store.FieldAdded}}}, "Changes[0].Field is empty"},
		{store.Query{Changes: []store.ChangeFilter{{Kind: "renamed", Field: "x"}}}, `Changes[0].Kind "renamed"`},
		{store.Query{Changes: []store.ChangeFilter{{Kind: store.FieldAdded, Field: "x"}, {Kind: store.FieldAdded, Field: "x", From: json.RawMessage(`1`)}}},
			"Changes[1].From is set, but an added field"},
		{store.Query{Changes: []store.ChangeFilter{{Kind: store.FieldRemoved, Field: "x", To: json.RawMessage(`1`)}}}, "Changes[0].To"},
		{store.Query{Changes: []store.ChangeFilter{{Kind: store.FieldChanged, Field: "x", To: json.RawMessage(`{`)}}}, "Changes[0].To is not valid JSON"},
	} {
		_, err := store.List(context.Background(), nil, tc.q)
		if !errors.Is(err, store.ErrInvalidQuery) {
			t.Errorf("%+v: err = %v, want ErrInvalidQuery", tc.q, err)
			continue
		}
		var qe *store.QueryError
		require.ErrorAs(t, err, &qe)
		require.True(t, strings.Contains(err.Error(), tc.field), "%+v: err = %q, want it to name %s", tc.q, err, tc.field)
	}
}
