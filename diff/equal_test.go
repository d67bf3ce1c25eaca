package diff_test

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/auditpgx/auditpgx/diff"
)

// equalCases are pairs whose jsonb equality is known; TestEqualMatchesJSONB
// checks every one against PostgreSQL as well.
var equalCases = []struct {
	a, b string
	want bool
}{
	{`1`, `1`, true},
	{`1.0`, `1.00`, true},
	{`1`, `1.000`, true},
	{`100`, `1e2`, true},
	{`0.015`, `1.5E-2`, true},
	{`0`, `-0`, true},
	{`0`, `-0.000`, true},
	{`0.0`, `0e10`, true},
	{`-1.5`, `-1.50`, true},
	{`-1.5`, `1.5`, false},
	{`1`, `1.0000000000000000000001`, false},
	{`123456789012345678901234567890.000000001`, `123456789012345678901234567890.0000000010`, true},
	{`123456789012345678901234567890.000000001`, `123456789012345678901234567890.000000002`, false},
	{`1e400`, `1e400`, true},
	{`1e400`, `10e399`, true},
	{`1e400`, `1e401`, false},
	{`10`, `1`, false},
	{`1`, `"1"`, false},
	{`"a"`, `"a"`, true},
	{`"a"`, `"A"`, false},
	{`"é"`, `"\u00e9"`, true},
	{`"e\u0301"`, `"é"`, false}, // canonically equivalent, but different bytes
	{`"a\/b"`, `"a/b"`, true},
	{`""`, `null`, false},
	{`true`, `true`, true},
	{`true`, `false`, false},
	{`false`, `null`, false},
	{`null`, `null`, true},
	{`0`, `false`, false},
	{`[]`, `{}`, false},
	{`[1]`, `1`, false},
	{`[1, 2]`, `[1.0, 2.00]`, true},
	{`[1, 2]`, `[2, 1]`, false},
	{`[1, 2]`, `[1, 2, 2]`, false},
	{`[null]`, `[]`, false},
	{`{"a": 1, "b": [1, {"c": null}]}`, `{"b": [1.0, {"c": null}], "a": 1.00}`, true},
	{`{"a": 1}`, `{"a": 1, "b": 1}`, false},
	{`{"a": 1}`, `{"b": 1}`, false},
	{`{"a": null}`, `{}`, false},
	{`{"a": {"b": 1}}`, `{"a": {"b": 2}}`, false},
	{`{"a": 1, "a": 2}`, `{"a": 2}`, true}, // jsonb keeps the last duplicate key
	{"  {\"a\" :\n1 }", `{"a":1}`, true},
}

func TestEqual(t *testing.T) {
	for _, c := range equalCases {
		if got := diff.Equal(json.RawMessage(c.a), json.RawMessage(c.b)); got != c.want {
			t.Errorf("Equal(%s, %s) = %v, want %v", c.a, c.b, got, c.want)
		}
		if got := diff.Equal(json.RawMessage(c.b), json.RawMessage(c.a)); got != c.want {
			t.Errorf("Equal(%s, %s) = %v, want %v", c.b, c.a, got, c.want)
		}
	}
}

func TestEqualOddInput(t *testing.T) {
	for _, c := range []struct {
		a, b json.RawMessage
		want bool
	}{
		{nil, json.RawMessage(`null`), true},
		{json.RawMessage(``), nil, true},
		{nil, json.RawMessage(`0`), false},
		{json.RawMessage(`{`), json.RawMessage(`{`), true},
		{json.RawMessage(`{`), json.RawMessage(`{}`), false},
		{json.RawMessage(`1 2`), json.RawMessage(`1`), false},
		{json.RawMessage(`1e999999999999999999999`), json.RawMessage(`10e999999999999999999998`), true},
	} {
		if got := diff.Equal(c.a, c.b); got != c.want {
			t.Errorf("Equal(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// TestEqualMatchesJSONB compares Equal with PostgreSQL's jsonb = on the
// cases above and on random pairs, many of them equal but spelled differently.
func TestEqualMatchesJSONB(t *testing.T) {
	db := openDB(t)
	var pairs [][2]string
	for _, c := range equalCases {
		pairs = append(pairs, [2]string{c.a, c.b})
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 3000 {
		a, b := genJSONPair(r)
		pairs = append(pairs, [2]string{a, b})
	}
	arg, err := json.Marshal(pairs)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT (p->>0)::jsonb = (p->>1)::jsonb FROM jsonb_array_elements($1::text::jsonb) WITH ORDINALITY e(p, i) ORDER BY i`, string(arg))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	equal := 0
	for i := 0; rows.Next(); i++ {
		var want bool
		if err := rows.Scan(&want); err != nil {
			t.Fatal(err)
		}
		if want {
			equal++
		}
		a, b := pairs[i][0], pairs[i][1]
		if got := diff.Equal(json.RawMessage(a), json.RawMessage(b)); got != want {
			t.Errorf("Equal(%s, %s) = %v, jsonb = says %v", a, b, got, want)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if equal < len(pairs)/4 || equal > len(pairs)*3/4 {
		t.Errorf("%d of %d pairs equal; the generator should give a mix", equal, len(pairs))
	}
}
