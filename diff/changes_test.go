package diff_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/auditpgx/auditpgx/diff"
)

const emptyChanges = `{"added_fields":{},"removed_fields":{},"changed_fields":{}}`

func TestChangesMarshalAlwaysHasAllKeys(t *testing.T) {
	for _, c := range []diff.Changes{{}, {AddedFields: map[string]json.RawMessage{}}} {
		got, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != emptyChanges {
			t.Errorf("Marshal(%#v) = %s, want %s", c, got, emptyChanges)
		}
	}
}

func TestChangesMarshal(t *testing.T) {
	c := diff.Changes{
		AddedFields:   map[string]json.RawMessage{"b": json.RawMessage(`"a\"b"`), "a": json.RawMessage(`1.50`)},
		ChangedFields: map[string][2]json.RawMessage{"n": {nil, json.RawMessage(`{"x": [1, null]}`)}},
	}
	got, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"added_fields":{"a":1.50,"b":"a\"b"},"removed_fields":{},"changed_fields":{"n":[null,{"x":[1,null]}]}}`
	if string(got) != want {
		t.Errorf("Marshal = %s\nwant      %s", got, want)
	}
}

func TestDecode(t *testing.T) {
	for _, in := range []string{
		`{}`,
		`{"added_fields": null, "removed_fields": null, "changed_fields": null}`,
		emptyChanges,
	} {
		c, err := diff.Decode([]byte(in))
		if err != nil {
			t.Fatalf("Decode(%s): %v", in, err)
		}
		if c.AddedFields == nil || c.RemovedFields == nil || c.ChangedFields == nil {
			t.Errorf("Decode(%s) left a nil map: %#v", in, c)
		}
		if !c.Empty() {
			t.Errorf("Decode(%s).Empty() = false", in)
		}
	}

	in := `{"added_fields": {"a": null}, "removed_fields": {"b": 1.0}, "changed_fields": {"c": [null, "$encrypted$"]}}`
	c, err := diff.Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if c.Empty() {
		t.Error("Empty() = true for a non-empty diff")
	}
	if got := string(c.AddedFields["a"]); got != "null" {
		t.Errorf(`added_fields["a"] = %q, want "null"`, got)
	}
	if got := string(c.RemovedFields["b"]); got != "1.0" {
		t.Errorf(`removed_fields["b"] = %q, want "1.0"`, got)
	}
	if got := c.ChangedFields["c"]; string(got[0]) != "null" || string(got[1]) != `"$encrypted$"` {
		t.Errorf(`changed_fields["c"] = [%s, %s]`, got[0], got[1])
	}
	again, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"added_fields":{"a":null},"removed_fields":{"b":1.0},"changed_fields":{"c":[null,"$encrypted$"]}}`
	if string(again) != want {
		t.Errorf("round trip = %s, want %s", again, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	for in, wantMsg := range map[string]string{
		`{"changed_fields": {"pw": [1]}}`:       `changed_fields["pw"] has 1 elements`,
		`{"changed_fields": {"pw": [1, 2, 3]}}`: `changed_fields["pw"] has 3 elements`,
		`{"changed_fields": {"pw": 1}}`:         `auditpgx: decoding changes`,
		`[]`:                                    `auditpgx: decoding changes`,
		`{`:                                     `auditpgx: decoding changes`,
	} {
		_, err := diff.Decode([]byte(in))
		if err == nil || !strings.Contains(err.Error(), wantMsg) {
			t.Errorf("Decode(%s) error = %v, want one containing %q", in, err, wantMsg)
		}
	}
}
