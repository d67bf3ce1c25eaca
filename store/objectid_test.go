package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/store"
)

func TestObjectID(t *testing.T) {
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	for _, tc := range []struct {
		in   []json.RawMessage
		want string
	}{
		{[]json.RawMessage{raw(`7`)}, `7`},
		{[]json.RawMessage{raw(` "eu" `)}, `eu`},
		{[]json.RawMessage{raw(`"a\"b\u003c"`)}, `a"b<`},
		{[]json.RawMessage{raw(`1.50`)}, `1.50`},
		{[]json.RawMessage{raw(`1e2`)}, `100`},
		{[]json.RawMessage{raw(`1.5E+1`)}, `15`},
		{[]json.RawMessage{raw(`1.50e1`)}, `15.0`},
		{[]json.RawMessage{raw(`25e-3`)}, `0.025`},
		{[]json.RawMessage{raw(`-0.0`)}, `0.0`},
		{[]json.RawMessage{raw(`true`)}, `true`},
		{[]json.RawMessage{raw(`[1,2]`)}, `[1, 2]`},
		{[]json.RawMessage{raw(`{"bb":1,"a":[true,null]}`)}, `{"a": [true, null], "bb": 1}`},
		{[]json.RawMessage{raw(`7`), raw(`"eu"`)}, `[7,"eu"]`},
		{[]json.RawMessage{raw(`"x\u003cy"`), raw(`"\u0001\n"`)}, `["x<y","\u0001\n"]`},
		{[]json.RawMessage{raw(`[1,2]`), raw(`2`)}, `[[1, 2],2]`},
		{[]json.RawMessage{raw(`not json`)}, `not json`},
	} {
		require.Equal(t, tc.want, store.ObjectID(tc.in...), "ObjectID(%s)", tc.in)
	}
}

// ObjectID agrees with the SQL the rewriter uses for object_id, for values
// as to_jsonb renders them.
func TestObjectIDAgreesWithSQL(t *testing.T) {
	db, _ := openSchema(t)
	ctx := context.Background()
	rows, err := db.QueryContext(ctx, `
		WITH v(a, b) AS (VALUES
			(to_jsonb(7::bigint), to_jsonb('eu'::text)),
			(to_jsonb(1.50::numeric), to_jsonb(E'quote " backslash \\ tab \t nl \n ctl \x01 é ☃ <&>'::text)),
			(to_jsonb('6f1c2d4e-8a1b-4c3d-9e2f-0a1b2c3d4e5f'::uuid), to_jsonb(true)),
			(to_jsonb('2024-03-01 12:00:00+00'::timestamptz), to_jsonb('2024-03-01'::date)),
			(to_jsonb(ARRAY[1, 2]), to_jsonb('{"bb": 1, "a": {"c": [1, "x"]}}'::jsonb)),
			(to_jsonb(-0.000::numeric), to_jsonb(1e20::numeric))
		)
		SELECT a::text, b::text, a #>> '{}', b #>> '{}', '[' || a::text || ',' || b::text || ']' FROM v`)
	require.NoError(t, err)
	defer rows.Close()
	n := 0
	for rows.Next() {
		var a, b, singleA, singleB, pair string
		require.NoError(t, rows.Scan(&a, &b, &singleA, &singleB, &pair))
		require.Equal(t, singleA, store.ObjectID(json.RawMessage(a)))
		require.Equal(t, singleB, store.ObjectID(json.RawMessage(b)))
		require.Equal(t, pair, store.ObjectID(json.RawMessage(a), json.RawMessage(b)))

		// The same values as Go writes them (compact, HTML-escaped) agree too.
		ga, gb := goJSON(t, a), goJSON(t, b)
		require.Equal(t, pair, store.ObjectID(ga, gb), "from Go: %s, %s", ga, gb)
		n++
	}
	require.NoError(t, rows.Err())
	require.Equal(t, 6, n)
}

// goJSON re-encodes a JSON value with encoding/json, numbers kept as
// written.
func goJSON(t *testing.T, s string) json.RawMessage {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v))
	out, err := json.Marshal(v)
	require.NoError(t, err)
	return out
}
