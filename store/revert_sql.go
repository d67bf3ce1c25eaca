package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// relation is what a revert needs of a table from the catalog.
type relation struct {
	quoted string   // for SQL: "app"."users"
	keys   []string // primary key, in key order
	cols   []string // the columns, in table order
	// types holds each column's type as format_type writes it, typmod
	// included: "numeric(12,2)", "app.email".
	types map[string]string
	// generated and identity mark columns GENERATED ALWAYS AS (expr) and
	// GENERATED ALWAYS AS IDENTITY.
	generated, identity map[string]bool
}

func (rel *relation) has(col string) bool { return slices.Contains(rel.cols, col) }

// missingRelation is a table name that names no table in the catalog.
type missingRelation struct{ reason string }

func (m *missingRelation) Error() string { return m.reason }

// readRelation reads the table that name (written as in SQL, as entries'
// table_name is) means in db's catalog.
func readRelation(ctx context.Context, db Querier, name string) (*relation, error) {
	n, err := sqlq.ParseName(name)
	if err != nil {
		return nil, &missingRelation{fmt.Sprintf("%q is not a table name as SQL writes one: %v", name, err)}
	}
	rel := &relation{quoted: n.Quoted(), types: map[string]string{}, generated: map[string]bool{}, identity: map[string]bool{}}
	rows, err := db.QueryContext(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attgenerated <> '',
		a.attidentity = 'a' FROM pg_attribute a
		WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, n.Quoted())
	if err != nil {
		return nil, fmt.Errorf("auditpgx: reading the columns of %q: %w", name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			col, typ            string
			generated, identity bool
		)
		if err := rows.Scan(&col, &typ, &generated, &identity); err != nil {
			return nil, fmt.Errorf("auditpgx: reading the columns of %q: %w", name, err)
		}
		rel.cols = append(rel.cols, col)
		rel.types[col] = typ
		rel.generated[col], rel.identity[col] = generated, identity
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auditpgx: reading the columns of %q: %w", name, err)
	}
	if len(rel.cols) == 0 {
		return nil, &missingRelation{fmt.Sprintf("table %s does not exist (or has no columns)", name)}
	}
	if rel.keys, err = catalogKeys(ctx, db, name); err != nil {
		return nil, err
	}
	return rel, nil
}

// isEncrypted reports whether a recorded value is the redacted marker.
func isEncrypted(v json.RawMessage) bool {
	var s string
	return json.Unmarshal(v, &s) == nil && s == diff.Encrypted
}

// jsonArg renders a row image as the JSON text of a parameter: keys
// sorted, values as recorded.
func jsonArg(img map[string]json.RawMessage) (string, error) {
	b, err := json.Marshal(img)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// keyImage gives the key columns' values that objectID holds: for one
// column, the object id as a string, which the column's input function
// reads on the server; for several, the JSON values of its array.
func keyImage(e *Entry, rel *relation, objectID string) (map[string]json.RawMessage, error) {
	img := map[string]json.RawMessage{}
	if len(rel.keys) == 1 {
		s, _ := json.Marshal(objectID)
		img[rel.keys[0]] = s
		return img, nil
	}
	vals, err := keyValues(objectID, len(rel.keys))
	if err != nil {
		return nil, refuse(e, nil, "", "the key of table %s has %d columns (%s): %v", e.TableName, len(rel.keys),
			columnsText(rel.keys), err)
	}
	for i, k := range rel.keys {
		img[k] = vals[i]
	}
	return img, nil
}

// fromJSON reads the row that parameter param (a jsonb object) holds, as
// alias r with the columns cols of rel: the values are converted to the
// columns' types on the server. (jsonb_populate_record(NULL::table, …)
// would do so too, but it checks every column of the table it is not
// given against its type, and a NOT NULL domain refuses the null.)
func fromJSON(rel *relation, cols []string, param string) string {
	defs := make([]string, len(cols))
	for i, c := range cols {
		defs[i] = sqlq.Ident(c) + ` ` + rel.types[c]
	}
	return `jsonb_to_record(` + param + `::jsonb) AS r(` + strings.Join(defs, ", ") + `)`
}

func identList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = sqlq.Ident(c)
	}
	return strings.Join(q, ", ")
}

func fromRow(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = `r.` + sqlq.Ident(c)
	}
	return strings.Join(q, ", ")
}

// matching is a WHERE condition on cols equal to those of the row param
// describes.
func matching(rel *relation, cols []string, param string) string {
	return `(` + identList(cols) + `) = (SELECT ` + fromRow(cols) + ` FROM ` + fromJSON(rel, cols, param) + `)`
}

// subject names an entry for a description: update of users "7".
func subject(e *Entry) string {
	return fmt.Sprintf("%s of %s %q", e.Operation, e.TableName, e.ObjectID)
}

// deleteStatement undoes a create.
func deleteStatement(e *Entry, rel *relation) (*Statement, error) {
	key, err := keyImage(e, rel, e.ObjectID)
	if err != nil {
		return nil, err
	}
	arg, err := jsonArg(key)
	if err != nil {
		return nil, err
	}
	return &Statement{
		SQL:         `DELETE FROM ` + rel.quoted + ` WHERE ` + matching(rel, rel.keys, "$1"),
		Args:        []any{arg},
		EntryID:     e.ID,
		Description: fmt.Sprintf("entry %d: undo the %s: delete the row", e.ID, subject(e)),
	}, nil
}

// insertStatement undoes a delete: the row again, from removed_fields,
// its key columns from the object id where the entry lacks them.
func (r *reverter) insertStatement(e *Entry, rel *relation) (*Statement, error) {
	var left []skipped
	for _, col := range sortedKeys(e.Changes.RemovedFields) {
		if !rel.has(col) {
			if err := r.unrestorable(e, col, "not a column of the table now", "leaves it out", &left); err != nil {
				return nil, err
			}
		}
	}
	key, err := keyImage(e, rel, e.ObjectID)
	if err != nil {
		return nil, err
	}
	img := map[string]json.RawMessage{}
	var cols []string
	overriding := false
	for _, col := range rel.cols {
		if rel.generated[col] {
			continue
		}
		v, listed := e.Changes.RemovedFields[col]
		switch {
		case slices.Contains(rel.keys, col) && (!listed || isEncrypted(v)):
			v = key[col]
		case !listed:
			if err := r.unrestorable(e, col, "not in the entry: excluded, or added to the table since", "gives it its default", &left); err != nil {
				return nil, err
			}
			continue
		case isEncrypted(v):
			if err := r.unrestorable(e, col, "redacted: its value is not recorded", "gives it its default", &left); err != nil {
				return nil, err
			}
			continue
		}
		img[col] = v
		cols = append(cols, col)
		overriding = overriding || rel.identity[col]
	}
	st := &Statement{EntryID: e.ID}
	st.Description = describeSkipped(fmt.Sprintf("entry %d: undo the %s: insert the row again", e.ID, subject(e)),
		sortedSkipped(left), "gets its default")
	if len(cols) == 0 {
		st.SQL = `INSERT INTO ` + rel.quoted + ` DEFAULT VALUES`
		return st, nil
	}
	arg, err := jsonArg(img)
	if err != nil {
		return nil, err
	}
	st.SQL = `INSERT INTO ` + rel.quoted + ` (` + identList(cols) + `)`
	if overriding {
		st.SQL += ` OVERRIDING SYSTEM VALUE`
	}
	st.SQL += ` SELECT ` + fromRow(cols) + ` FROM ` + fromJSON(rel, cols, "$1")
	st.Args = []any{arg}
	return st, nil
}

// updateStatement undoes an update: the columns it changed back to their
// old values, on the row at the key it left.
func (r *reverter) updateStatement(e *Entry, rel *relation) (*Statement, error) {
	var left []skipped
	old := map[string]json.RawMessage{}
	for _, col := range sortedKeys(e.Changes.ReplacedFields) {
		if err := r.unrestorable(e, col, "replaced: the update's entry holds no old values (replaced_fields)", "leaves it as it is", &left); err != nil {
			return nil, err
		}
	}
	consider := func(col string, v json.RawMessage, redacted bool) error {
		switch {
		case !rel.has(col):
			return r.unrestorable(e, col, "not a column of the table now", "leaves it out", &left)
		case rel.generated[col]:
			return nil
		case redacted:
			return r.unrestorable(e, col, "redacted: its old value is not recorded", "leaves it as it is", &left)
		}
		old[col] = v
		return nil
	}
	for _, col := range sortedKeys(e.Changes.ChangedFields) {
		pair := e.Changes.ChangedFields[col]
		if err := consider(col, pair[0], isEncrypted(pair[0]) && isEncrypted(pair[1])); err != nil {
			return nil, err
		}
	}
	for _, col := range sortedKeys(e.Changes.RemovedFields) {
		v := e.Changes.RemovedFields[col]
		if err := consider(col, v, isEncrypted(v)); err != nil {
			return nil, err
		}
	}
	var cols []string
	for _, col := range rel.cols {
		if _, ok := old[col]; ok {
			cols = append(cols, col)
		}
	}
	if len(cols) == 0 {
		return nil, nil
	}
	key, err := keyImage(e, rel, e.ObjectID)
	if err != nil {
		return nil, err
	}
	values, err := jsonArg(old)
	if err != nil {
		return nil, err
	}
	where, err := jsonArg(key)
	if err != nil {
		return nil, err
	}
	return &Statement{
		SQL: `UPDATE ` + rel.quoted + ` SET (` + identList(cols) + `) = (SELECT ` + fromRow(cols) + ` FROM ` +
			fromJSON(rel, cols, "$1") + `) WHERE ` + matching(rel, rel.keys, "$2"),
		Args:    []any{values, where},
		EntryID: e.ID,
		Description: describeSkipped(fmt.Sprintf("entry %d: undo the %s: set %s back", e.ID, subject(e), columnsText(cols)),
			sortedSkipped(left), "is left as it is"),
	}, nil
}

// linkStatement undoes an associate (the link deleted) or a
// disassociate (the link inserted again).
func linkStatement(e *Entry, l RevertLink, rel *relation) (*Statement, error) {
	for _, col := range []string{l.OwnerColumn, l.RelatedColumn} {
		if !rel.has(col) {
			return nil, refuse(e, nil, col, "join table %s (RevertLink for %s %q) has no column %q", l.JoinTable,
				l.OwnerTable, l.Field, col)
		}
	}
	owner, _ := json.Marshal(e.ObjectID)
	related, _ := json.Marshal(deref(e.RelatedObjectID))
	arg, err := jsonArg(map[string]json.RawMessage{l.OwnerColumn: owner, l.RelatedColumn: related})
	if err != nil {
		return nil, err
	}
	cols := []string{l.OwnerColumn, l.RelatedColumn}
	what := fmt.Sprintf("entry %d: undo the %s (%s: %s %q)", e.ID, subject(e), deref(e.RelatedFieldName),
		deref(e.RelatedTableName), deref(e.RelatedObjectID))
	st := &Statement{Args: []any{arg}, EntryID: e.ID}
	if e.Operation == OpAssociate {
		st.SQL = `DELETE FROM ` + rel.quoted + ` WHERE ` + matching(rel, cols, "$1")
		st.Description = what + ": delete the link from " + l.JoinTable
	} else {
		st.SQL = `INSERT INTO ` + rel.quoted + ` (` + identList(cols) + `) SELECT ` + fromRow(cols) + ` FROM ` + fromJSON(rel, cols, "$1")
		st.Description = what + ": insert the link into " + l.JoinTable + " again (its other columns get their defaults)"
	}
	return st, nil
}
