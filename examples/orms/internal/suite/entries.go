package suite

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/store"
)

// Any, as a value in an expected entry's changes, matches any value but
// JSON null: for a timestamp the client took from the clock.
const Any = "$any$"

// Entry is an expected entry. Build one with [Create], [Update], [Delete],
// [Associate] or [Disassociate], and set the actor with [Entry.By].
type Entry struct {
	Op       store.Operation
	Table    string
	ObjectID string
	// Changes is the changes object as JSON, "" for none (associations).
	Changes string
	// Actor is the expected created_by, "" for NULL.
	Actor string
	// Related names the other end of an association.
	RelatedTable, RelatedID, RelatedField string
	// Unordered lets this entry and its Unordered neighbours appear in any
	// order among themselves; see [Entry.InAnyOrder].
	Unordered bool
}

// Create expects a create entry whose added_fields is the JSON object added.
func Create(table, id, added string) Entry {
	return Entry{Op: store.OpCreate, Table: table, ObjectID: id, Changes: changes(added, "{}", "{}")}
}

// Update expects an update entry whose changed_fields is the JSON object
// changed, {"col": [old, new], ...}.
func Update(table, id, changed string) Entry {
	return Entry{Op: store.OpUpdate, Table: table, ObjectID: id, Changes: changes("{}", "{}", changed)}
}

// Delete expects a delete entry whose removed_fields is the JSON object
// removed.
func Delete(table, id, removed string) Entry {
	return Entry{Op: store.OpDelete, Table: table, ObjectID: id, Changes: changes("{}", removed, "{}")}
}

// Associate expects an associate entry: object id of table gained the
// related object relatedID of relatedTable through field.
func Associate(table, id, field, relatedTable, relatedID string) Entry {
	return Entry{Op: store.OpAssociate, Table: table, ObjectID: id,
		RelatedTable: relatedTable, RelatedID: relatedID, RelatedField: field}
}

// Disassociate expects a disassociate entry, the reverse of [Associate].
func Disassociate(table, id, field, relatedTable, relatedID string) Entry {
	e := Associate(table, id, field, relatedTable, relatedID)
	e.Op = store.OpDisassociate
	return e
}

// By returns e with actor as its expected created_by.
func (e Entry) By(actor string) Entry {
	e.Actor = actor
	return e
}

// InAnyOrder returns e marked Unordered: a run of such entries may be
// written in any order. It is for one statement whose rows the client
// orders arbitrarily, such as ent, which keeps the ids of an edge in a map.
func (e Entry) InAnyOrder() Entry {
	e.Unordered = true
	return e
}

// By sets actor on every entry of es, for a run of entries by one actor.
func By(actor string, es ...Entry) []Entry {
	out := make([]Entry, len(es))
	for i, en := range es {
		out[i] = en.By(actor)
	}
	return out
}

func changes(added, removed, changed string) string {
	return `{"added_fields": ` + added + `, "removed_fields": ` + removed + `, "changed_fields": ` + changed + `}`
}

// Entries returns every entry in the audited schema, in id order.
func (e *Env) Entries() []store.Entry {
	e.t.Helper()
	return listAll(e.t, e.Ctx, e.admin)
}

// ReadEntries returns every entry in the entry table that dsn's
// search_path finds, read through plain pgx, in id order.
func ReadEntries(t testing.TB, dsn string) []store.Entry {
	t.Helper()
	db := open(t, "pgx", dsn)
	defer db.Close()
	return listAll(t, context.Background(), db)
}

func listAll(t testing.TB, ctx context.Context, db store.Querier) []store.Entry {
	t.Helper()
	var all []store.Entry
	for after := int64(0); ; {
		page, err := store.List(ctx, db, store.Query{AfterID: after, Limit: 1000})
		require.NoError(t, err)
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].ID
	}
}

// RequireEntries fails the test unless the audited schema holds exactly
// the entries want, in id order; see [RequireEntryList].
func (e *Env) RequireEntries(want ...Entry) {
	e.t.Helper()
	RequireEntryList(e.t, e.Entries(), want...)
}

// RequireEntryList fails t unless got is exactly want, in order. Changes
// are compared as JSON values (key order and spacing do not matter; [Any]
// matches any non-null value); a run of entries marked with
// [Entry.InAnyOrder] is compared as a set. On failure it shows both lists,
// one entry a line.
func RequireEntryList(t testing.TB, got []store.Entry, want ...Entry) {
	t.Helper()
	wantLines := make([]string, len(want))
	for i, w := range want {
		wantLines[i] = w.line(t)
	}
	gotLines := make([]string, len(got))
	for i, g := range got {
		var w *Entry
		if i < len(want) {
			w = &want[i]
		}
		gotLines[i] = entryLine(t, g, w)
	}
	for i := 0; i < len(want); {
		j := i + 1
		for want[i].Unordered && j < len(want) && want[j].Unordered {
			j++
		}
		if j-i > 1 && j <= len(gotLines) {
			slices.Sort(wantLines[i:j])
			slices.Sort(gotLines[i:j])
		}
		i = j
	}
	require.Equal(t, wantLines, gotLines, "entries: expected (-) and written (+)")
}

// line renders an expected entry as entryLine renders a written one.
func (w Entry) line(t require.TestingT) string {
	return fmt.Sprintf("%s %s %s by %s%s %s", w.Op, w.Table, w.ObjectID, orNull(w.Actor),
		related(w.RelatedTable, w.RelatedID, w.RelatedField), canonical(t, w.Changes, nil))
}

// entryLine renders a written entry; values where w expects Any are shown
// as Any when they are not null.
func entryLine(t require.TestingT, g store.Entry, w *Entry) string {
	var pattern any
	if w != nil && w.Changes != "" {
		require.NoError(t, decode(w.Changes, &pattern), "expected changes %s", w.Changes)
	}
	ch := ""
	if g.Changes != nil {
		b, err := json.Marshal(g.Changes)
		require.NoError(t, err)
		ch = string(b)
	}
	return fmt.Sprintf("%s %s %s by %s%s %s", g.Operation, g.TableName, g.ObjectID, orNull(deref(g.CreatedBy)),
		related(deref(g.RelatedTableName), deref(g.RelatedObjectID), deref(g.RelatedFieldName)),
		canonical(t, ch, pattern))
}

func related(table, id, field string) string {
	if table == "" && id == "" && field == "" {
		return ""
	}
	return fmt.Sprintf(" %s=%s.%s", field, table, id)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func orNull(s string) string {
	if s == "" {
		return "NULL"
	}
	return s
}

// canonical re-encodes JSON with sorted keys and no spacing, "NULL" for
// none. Where pattern holds Any, a non-null value becomes Any.
func canonical(t require.TestingT, text string, pattern any) string {
	if text == "" {
		return "NULL"
	}
	var v any
	require.NoError(t, decode(text, &v), "changes %s", text)
	v = mask(v, pattern)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(v))
	return strings.TrimSpace(b.String())
}

func decode(text string, v any) error {
	d := json.NewDecoder(strings.NewReader(text))
	d.UseNumber()
	return d.Decode(v)
}

func mask(v, pattern any) any {
	if s, ok := pattern.(string); ok && s == Any && v != nil {
		return Any
	}
	switch vv := v.(type) {
	case map[string]any:
		p, _ := pattern.(map[string]any)
		for k, x := range vv {
			vv[k] = mask(x, p[k])
		}
	case []any:
		p, _ := pattern.([]any)
		for i, x := range vv {
			if i < len(p) {
				vv[i] = mask(x, p[i])
			}
		}
	}
	return v
}
