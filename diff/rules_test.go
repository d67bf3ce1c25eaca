package diff_test

import (
	"encoding/json"
	"testing"

	"github.com/auditpgx/auditpgx/diff"
)

// img parses a JSON object into an image, keeping each value's text.
func img(t testing.TB, s string) diff.Image {
	t.Helper()
	var m diff.Image
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("image %s: %v", s, err)
	}
	return m
}

func marshal(t testing.TB, c diff.Changes) string {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// usersCols audits id, name, n, doc, tags and the redacted pw; "hidden" is
// excluded, so it is not listed.
var usersCols = diff.Columns{
	Names:    []string{"id", "name", "n", "doc", "tags", "pw"},
	Redacted: map[string]bool{"pw": true},
}

func TestCreate(t *testing.T) {
	for _, c := range []struct {
		name, row, want string
	}{
		{
			name: "every column, redacted masked, excluded left out",
			row:  `{"id": 1, "name": "a", "n": 1.50, "doc": {"k": [1, null]}, "tags": ["x"], "pw": "hunter2", "hidden": "h"}`,
			want: `{"added_fields":{"doc":{"k":[1,null]},"id":1,"n":1.50,"name":"a","pw":"$encrypted$","tags":["x"]},"removed_fields":{},"changed_fields":{}}`,
		},
		{
			name: "NULLs, redacted NULL still masked",
			row:  `{"id": 2, "name": null, "n": null, "doc": null, "tags": null, "pw": null}`,
			want: `{"added_fields":{"doc":null,"id":2,"n":null,"name":null,"pw":"$encrypted$","tags":null},"removed_fields":{},"changed_fields":{}}`,
		},
		{
			name: "column missing from the image is left out",
			row:  `{"id": 3}`,
			want: `{"added_fields":{"id":3},"removed_fields":{},"changed_fields":{}}`,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := marshal(t, diff.Create(img(t, c.row), usersCols)); got != c.want {
				t.Errorf("Create =\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	row := `{"id": 1, "name": "a", "n": 2, "doc": {}, "tags": [], "pw": null, "hidden": "h"}`
	want := `{"added_fields":{},"removed_fields":{"doc":{},"id":1,"n":2,"name":"a","pw":"$encrypted$","tags":[]},"changed_fields":{}}`
	if got := marshal(t, diff.Delete(img(t, row), usersCols)); got != want {
		t.Errorf("Delete =\n%s\nwant\n%s", got, want)
	}
}

func TestUpdate(t *testing.T) {
	base := `{"id": 1, "name": "a", "n": 1.5, "doc": {"a": {"b": [1, 2]}, "c": 1}, "tags": ["x", "y"], "pw": "old", "hidden": "h1"}`
	for _, c := range []struct {
		name, old, new, want string
	}{
		{
			name: "identical rows",
			old:  base, new: base,
			want: emptyChanges,
		},
		{
			name: "one column changed",
			old:  base,
			new:  `{"id": 1, "name": "b", "n": 1.5, "doc": {"a": {"b": [1, 2]}, "c": 1}, "tags": ["x", "y"], "pw": "old", "hidden": "h1"}`,
			want: `{"added_fields":{},"removed_fields":{},"changed_fields":{"name":["a","b"]}}`,
		},
		{
			name: "numerically equal numbers and reordered keys are no change",
			old:  base,
			new:  `{"hidden": "h1", "pw": "old", "tags": ["x", "y"], "doc": {"c": 1.00, "a": {"b": [1.0, 2e0]}}, "n": 1.50, "name": "a", "id": 1.0}`,
			want: emptyChanges,
		},
		{
			name: "precise numerics",
			old:  `{"n": 123456789012345678901234567890.000000001}`,
			new:  `{"n": 123456789012345678901234567890.000000002}`,
			want: `{"added_fields":{},"removed_fields":{},"changed_fields":{"n":[123456789012345678901234567890.000000001,123456789012345678901234567890.000000002]}}`,
		},
		{
			name: "precise numerics, equal",
			old:  `{"n": 123456789012345678901234567890.000000001}`,
			new:  `{"n": 123456789012345678901234567890.0000000010}`,
			want: emptyChanges,
		},
		{
			name: "nested jsonb change and array order",
			old:  base,
			new:  `{"id": 1, "name": "a", "n": 1.5, "doc": {"a": {"b": [1, 3]}, "c": 1}, "tags": ["y", "x"], "pw": "old", "hidden": "h1"}`,
			want: `{"added_fields":{},"removed_fields":{},"changed_fields":{"doc":[{"a":{"b":[1,2]},"c":1},{"a":{"b":[1,3]},"c":1}],"tags":[["x","y"],["y","x"]]}}`,
		},
		{
			name: "to and from NULL",
			old:  `{"name": "a", "n": null}`,
			new:  `{"name": null, "n": 0}`,
			want: `{"added_fields":{},"removed_fields":{},"changed_fields":{"n":[null,0],"name":["a",null]}}`,
		},
		{
			name: "redacted changed",
			old:  `{"pw": "old"}`, new: `{"pw": "new"}`,
			want: `{"added_fields":{},"removed_fields":{},"changed_fields":{"pw":["$encrypted$","$encrypted$"]}}`,
		},
		{
			name: "redacted unchanged",
			old:  `{"pw": "same"}`, new: `{"pw": "same"}`,
			want: emptyChanges,
		},
		{
			name: "redacted set from NULL",
			old:  `{"pw": null}`, new: `{"pw": "new"}`,
			want: `{"added_fields":{},"removed_fields":{},"changed_fields":{"pw":["$encrypted$","$encrypted$"]}}`,
		},
		{
			name: "redacted NULL both sides",
			old:  `{"pw": null}`, new: `{"pw": null}`,
			want: emptyChanges,
		},
		{
			name: "redacted numerically equal",
			old:  `{"pw": 1.0}`, new: `{"pw": 1.00}`,
			want: emptyChanges,
		},
		{
			name: "excluded column changed only",
			old:  `{"id": 1, "hidden": "h1"}`, new: `{"id": 1, "hidden": "h2"}`,
			want: emptyChanges,
		},
		{
			name: "added and removed keys",
			old:  `{"id": 1, "name": "a", "pw": "x", "hidden": 1}`,
			new:  `{"id": 1, "n": 2, "tags": null, "pw": "x", "hidden": 2}`,
			want: `{"added_fields":{"n":2,"tags":null},"removed_fields":{"name":"a"},"changed_fields":{}}`,
		},
		{
			name: "redacted added and removed",
			old:  `{"id": 1, "pw": "x"}`, new: `{"id": 2}`,
			want: `{"added_fields":{},"removed_fields":{"pw":"$encrypted$"},"changed_fields":{"id":[1,2]}}`,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := diff.Update(img(t, c.old), img(t, c.new), usersCols)
			if s := marshal(t, got); s != c.want {
				t.Errorf("Update =\n%s\nwant\n%s", s, c.want)
			}
			if got.Empty() != (c.want == emptyChanges) {
				t.Errorf("Empty() = %v", got.Empty())
			}
		})
	}
}

func TestUpdateNilValueIsNull(t *testing.T) {
	got := diff.Update(diff.Image{"n": nil}, diff.Image{"n": json.RawMessage("1")}, diff.Columns{Names: []string{"n"}})
	want := `{"added_fields":{},"removed_fields":{},"changed_fields":{"n":[null,1]}}`
	if s := marshal(t, got); s != want {
		t.Errorf("Update = %s, want %s", s, want)
	}
	if !diff.Update(diff.Image{"n": nil}, diff.Image{"n": json.RawMessage("null")}, diff.Columns{Names: []string{"n"}}).Empty() {
		t.Error("nil and null differ")
	}
}

func TestUpdateCopiesValues(t *testing.T) {
	row := diff.Image{"n": json.RawMessage("12")}
	got := diff.Create(row, diff.Columns{Names: []string{"n"}})
	row["n"][0] = '9'
	if s := string(got.AddedFields["n"]); s != "12" {
		t.Errorf("added_fields[n] = %s after the image changed, want 12", s)
	}
}
