package store

import (
	"context"
	"strconv"
	"strings"
)

// conflicts refuses when an object or link that the selected entries
// leave has a later entry outside the selection: the revert would
// overwrite a change it does not undo.
func (r *reverter) conflicts(ctx context.Context, entries []Entry) error {
	type object struct{ table, id string }
	type link struct{ table, id, field, relTable, relID string }
	seenObject := map[object]bool{}
	seenLink := map[link]bool{}
	for i := range entries {
		e := &entries[i]
		var (
			later *Entry
			err   error
		)
		switch e.Operation {
		case OpAssociate, OpDisassociate:
			k := link{e.TableName, e.ObjectID, deref(e.RelatedFieldName), deref(e.RelatedTableName), deref(e.RelatedObjectID)}
			if seenLink[k] {
				continue
			}
			seenLink[k] = true
			later, err = r.laterOfLink(ctx, e)
		default:
			k := object{e.TableName, e.ObjectID}
			if seenObject[k] {
				continue
			}
			seenObject[k] = true
			var keys []string
			if rel := r.tables[e.TableName]; rel != nil {
				keys = rel.keys
			}
			later, err = r.laterOfObject(ctx, e, keys)
		}
		if err != nil {
			return err
		}
		if later != nil {
			what := "changed it since"
			if later.ObjectID != e.ObjectID && later.Operation == OpUpdate {
				what = "moved it to another key since"
			}
			re := refuse(e, ErrRevertConflict, "", "entry %d (%s) %s, and is not selected (RevertForce reverts anyway)",
				later.ID, subject(later), what)
			re.LaterEntryID = later.ID
			return re
		}
	}
	return nil
}

// conflictPage is how many later entries one query reads.
const conflictPage = 100

// notSelected is the condition that leaves the selection out.
func (r *reverter) notSelected(param func(any) string) string {
	if r.sel.txID != 0 {
		return "tx_id <> " + param(r.sel.txID)
	}
	return "id <> " + param(r.sel.entryID)
}

// laterOfObject returns the first entry after e, outside the selection,
// that changed the object e left: one filed under e's object_id (a
// baseline's snapshot aside), a truncate or suppressed statement of the
// table, or an update that moved the object off that key.
func (r *reverter) laterOfObject(ctx context.Context, e *Entry, keys []string) (*Entry, error) {
	l := &lineage{t: r.t, table: e.TableName, keys: keys}
	after := e.ID
	for {
		var args []any
		param := func(v any) string {
			args = append(args, v)
			return "$" + strconv.Itoa(len(args))
		}
		pTable, pID := param(e.TableName), param(e.ObjectID)
		either := []string{"(object_id = " + pID + " AND operation <> 'snapshot')",
			"(object_id = '' AND operation IN ('truncate', 'suppressed'))"}
		if docs := l.movedOffDocs(e.ObjectID); len(docs) > 0 {
			var contains []string
			for _, d := range docs {
				contains = append(contains, "changes @> "+param(d)+"::jsonb")
			}
			either = append(either, "(operation = 'update' AND object_id <> "+pID+" AND ("+strings.Join(contains, " OR ")+"))")
		}
		query := `SELECT ` + entryColumns + ` FROM ` + r.t.Quoted() + ` WHERE table_name = ` + pTable +
			` AND id > ` + param(after) + ` AND ` + r.notSelected(param) + ` AND (` + strings.Join(either, " OR ") +
			`) ORDER BY id LIMIT ` + strconv.Itoa(conflictPage)
		entries, err := readEntries(ctx, r.db, r.t, query, args)
		if err != nil {
			return nil, err
		}
		for i := range entries {
			c := &entries[i]
			if c.ObjectID == e.ObjectID || c.ObjectID == "" {
				return c, nil
			}
			if prev, err := previousID(c, keys); err == nil && prev == e.ObjectID {
				return c, nil
			}
		}
		if len(entries) < conflictPage {
			return nil, nil
		}
		after = entries[len(entries)-1].ID
	}
}

// laterOfLink returns the first entry after e, outside the selection, of
// the same link: same owner, field and related object.
func (r *reverter) laterOfLink(ctx context.Context, e *Entry) (*Entry, error) {
	var args []any
	param := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	query := `SELECT ` + entryColumns + ` FROM ` + r.t.Quoted() + ` WHERE table_name = ` + param(e.TableName) +
		` AND object_id = ` + param(e.ObjectID) + ` AND related_field_name = ` + param(deref(e.RelatedFieldName)) +
		` AND related_table_name = ` + param(deref(e.RelatedTableName)) +
		` AND related_object_id = ` + param(deref(e.RelatedObjectID)) +
		` AND id > ` + param(e.ID) + ` AND ` + r.notSelected(param) + ` ORDER BY id LIMIT 1`
	entries, err := readEntries(ctx, r.db, r.t, query, args)
	if err != nil || len(entries) == 0 {
		return nil, err
	}
	return &entries[0], nil
}
