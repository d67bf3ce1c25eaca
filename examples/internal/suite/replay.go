package suite

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/registry"
	"github.com/auditpgx/auditpgx/store"
)

// RequireReplay fails the test unless replaying every entry in id order,
// starting from empty tables, gives each audited table's current contents:
// the same objects with the same audited values (excluded columns left
// out, redacted ones compared as "$encrypted$").
//
// It holds only when the audited tables were empty when the test began
// and every write to them went through auditpgx. A column added to a table
// after some of its rows were written is absent from their replayed images
// until an entry sets it, and reads as null.
func (e *Env) RequireReplay() {
	e.t.Helper()
	require.NoError(e.t, auditpgx.Check(e.Ctx, e.Audited, auditpgx.WithRegistry(e.Registry)),
		"resolving the registered tables")
	tables := e.Registry.Tables()
	slices.SortFunc(tables, func(a, b *registry.Table) int { return strings.Compare(a.Registered, b.Registered) })

	replayed, err := replay(e.Entries())
	require.NoError(e.t, err, "replaying the entries")
	want := map[string]map[string]string{}
	got := map[string]map[string]string{}
	for _, t := range tables {
		meta := t.Meta()
		require.NotNil(e.t, meta, "table %q is not resolved", t.Registered)
		want[t.Registered] = e.render(e.snapshot(t, meta), meta.Audit)
		got[t.Registered] = e.render(replayed[t.Registered], meta.Audit)
	}
	require.Equal(e.t, want, got, "audited tables (-) and their replay from the entries (+)")
}

// replay applies entries in order to empty tables and returns, for each
// table, its objects' images by object id. Associations are left out.
func replay(entries []store.Entry) (map[string]map[string]diff.Image, error) {
	state := map[string]map[string]diff.Image{}
	for _, en := range entries {
		objects := state[en.TableName]
		if objects == nil {
			objects = map[string]diff.Image{}
			state[en.TableName] = objects
		}
		img, exists := objects[en.ObjectID]
		where := fmt.Sprintf("entry %d: %s of %s %s", en.ID, en.Operation, en.TableName, en.ObjectID)
		switch en.Operation {
		case store.OpCreate:
			if exists {
				return nil, fmt.Errorf("%s: the object already exists", where)
			}
			objects[en.ObjectID] = maps.Clone(en.Changes.AddedFields)
		case store.OpUpdate:
			if !exists {
				return nil, fmt.Errorf("%s: no such object", where)
			}
			for col, v := range en.Changes.ChangedFields {
				old, ok := img[col]
				if !ok {
					old = json.RawMessage("null")
				}
				if !diff.Equal(old, v[0]) {
					return nil, fmt.Errorf("%s: column %q was %s, the entry says %s", where, col, old, v[0])
				}
				img[col] = v[1]
			}
			maps.Copy(img, en.Changes.AddedFields)
			for col := range en.Changes.RemovedFields {
				delete(img, col)
			}
		case store.OpDelete:
			if !exists {
				return nil, fmt.Errorf("%s: no such object", where)
			}
			delete(objects, en.ObjectID)
		}
	}
	return state, nil
}

// snapshot reads the audited columns of every row of t, by object id as
// entries spell it.
func (e *Env) snapshot(t *registry.Table, meta *registry.Meta) map[string]diff.Image {
	e.t.Helper()
	q := `SELECT ` + objectIDSQL(meta.PrimaryKey) + `, ` + diff.ImageSQL("t", meta.Audit) + ` FROM ` + t.Quoted() + ` t`
	rows, err := e.admin.QueryContext(e.Ctx, q)
	require.NoError(e.t, err, "reading %s", t.Registered)
	defer rows.Close()
	out := map[string]diff.Image{}
	for rows.Next() {
		var id string
		var raw []byte
		require.NoError(e.t, rows.Scan(&id, &raw))
		var img diff.Image
		require.NoError(e.t, json.Unmarshal(raw, &img))
		out[id] = img
	}
	require.NoError(e.t, rows.Err())
	return out
}

// objectIDSQL renders the key of row t as entries' object_id does: the
// value as text for one column, a JSON array for several.
func objectIDSQL(key []string) string {
	if len(key) == 1 {
		return `to_jsonb(t.` + ident(key[0]) + `) #>> '{}'`
	}
	parts := make([]string, len(key))
	for i, k := range key {
		parts[i] = `to_jsonb(t.` + ident(k) + `)::text`
	}
	return `'[' || ` + strings.Join(parts, ` || ',' || `) + ` || ']'`
}

func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// render turns images into comparable text, redacted columns as
// "$encrypted$" whatever they hold.
func (e *Env) render(objects map[string]diff.Image, cols diff.Columns) map[string]string {
	out := map[string]string{}
	for id, img := range objects {
		masked := diff.Image{}
		for _, col := range cols.Names {
			v, ok := img[col]
			switch {
			case cols.Redacted[col]:
				v = json.RawMessage(`"` + diff.Encrypted + `"`)
			case !ok:
				v = json.RawMessage("null")
			}
			masked[col] = v
		}
		for col, v := range img {
			if _, audited := masked[col]; !audited {
				masked[col] = v // not an audited column: shown, so it fails
			}
		}
		b, err := json.Marshal(masked)
		require.NoError(e.t, err)
		out[id] = canonical(e.t, string(b), nil)
	}
	return out
}
