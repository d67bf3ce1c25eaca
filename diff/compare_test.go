package diff_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/auditpgx/auditpgx/diff"
)

// changesDiff describes how got differs from want, comparing values with
// diff.Equal; it returns nil when they agree.
func changesDiff(got, want diff.Changes) []string {
	var out []string
	out = append(out, fieldsDiff("added_fields", got.AddedFields, want.AddedFields)...)
	out = append(out, fieldsDiff("removed_fields", got.RemovedFields, want.RemovedFields)...)
	gotOld, gotNew := splitPairs(got.ChangedFields)
	wantOld, wantNew := splitPairs(want.ChangedFields)
	out = append(out, fieldsDiff("changed_fields (old)", gotOld, wantOld)...)
	out = append(out, fieldsDiff("changed_fields (new)", gotNew, wantNew)...)
	return out
}

func fieldsDiff(section string, got, want map[string]json.RawMessage) []string {
	var out []string
	keys := slices.Sorted(maps.Keys(got))
	for k := range want {
		if _, ok := got[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		g, inGot := got[k]
		w, inWant := want[k]
		switch {
		case !inWant:
			out = append(out, fmt.Sprintf("%s[%q]: got %s, want no key", section, k, g))
		case !inGot:
			out = append(out, fmt.Sprintf("%s[%q]: got no key, want %s", section, k, w))
		case !diff.Equal(g, w):
			out = append(out, fmt.Sprintf("%s[%q]: got %s, want %s", section, k, g, w))
		}
	}
	return out
}

func splitPairs(m map[string][2]json.RawMessage) (old, new map[string]json.RawMessage) {
	old, new = map[string]json.RawMessage{}, map[string]json.RawMessage{}
	for k, p := range m {
		old[k], new[k] = p[0], p[1]
	}
	return old, new
}
