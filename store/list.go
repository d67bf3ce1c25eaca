package store

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

const (
	defaultLimit = 100
	maxLimit     = 1000
	maxTables    = 1000 // names in Query.Tables
)

// Query selects entries for [List] and [ListPage]. Zero-valued filters
// match everything; set filters are combined with AND.
type Query struct {
	// Table is the entry table to read, optionally schema-qualified,
	// written as in SQL and as for the driver's RegistryConfig.EntryTable:
	// Audit.Entries is audit.entries, `"audit.log"` one table named
	// audit.log. Default: "auditpgx_entry".
	Table string

	TableName  string      // entries for this audited table
	ObjectID   string      // entries for this object (primary key as text)
	Actor      string      // entries whose created_by equals this
	Operations []Operation // entries with any of these operations

	// RelatedTableName and RelatedObjectID select associate and
	// disassociate entries by the other side of the association.
	RelatedTableName string
	RelatedObjectID  string

	TxID int64 // entries written in this transaction; 0 matches any

	// Fingerprint selects entries whose statement_fingerprint equals it,
	// the entries one statement shape wrote. Empty matches any. No index
	// serves it alone: on a large entry table, combine it with a filter
	// that one does (TableName, Actor, TxID, a time range).
	Fingerprint string

	// Tables restricts the listing to entries of these audited tables:
	// an entry is returned only when its table_name is one of them and,
	// for an associate or disassociate entry (one with a related table),
	// its related_table_name is one of them too, so that an entry naming
	// a table outside the list is never returned. Names compare as the
	// entries spell them. Nil means no restriction; a non-nil empty slice
	// matches no entry (the query is still sent, with a false condition,
	// so that a missing entry table is still an error). At most 1000
	// names.
	Tables []string

	Since time.Time // created >= Since; zero means no lower bound
	Until time.Time // created < Until; zero means no upper bound

	// Changes selects entries by what they changed; every filter must
	// match. Associate and disassociate entries, which have no changes,
	// never match one.
	Changes []ChangeFilter

	// Context selects entries whose context holds every one of these
	// fields with this value (jsonb containment: a nested map matches
	// when the entry's holds at least its fields), e.g.
	// {"request_id": "r-42"}.
	Context map[string]any

	// Descending returns the newest entries (highest ids) first. Default:
	// oldest first.
	Descending bool

	// Cursor continues a listing after the last entry of a page: pass the
	// Next of the [Page] that [ListPage] returned, with the same filters and
	// order. A cursor made for the other order is an error.
	Cursor string

	// AfterID returns only entries with a greater id, in either order.
	// Passing the last ID of an ascending page gets the next page; Cursor
	// does the same in both orders.
	AfterID int64

	// BeforeID returns only entries with a lower id, in either order; 0
	// means no bound, and a negative value is an error. Passing the last
	// ID of a descending page gets the next page. With AfterID it selects
	// the ids strictly between the two (none when BeforeID <= AfterID+1).
	BeforeID int64

	// Limit is the most entries returned. Default: 100; maximum: 1000.
	Limit int
}

// ChangeKind says how a [ChangeFilter] field was changed.
type ChangeKind string

const (
	// FieldAdded matches entries listing the field under added_fields
	// (creates).
	FieldAdded ChangeKind = "added"
	// FieldRemoved matches entries listing the field under removed_fields
	// (deletes).
	FieldRemoved ChangeKind = "removed"
	// FieldChanged matches entries listing the field under changed_fields
	// (updates).
	FieldChanged ChangeKind = "changed"
)

// ChangeFilter matches entries whose changes list Field under Kind,
// optionally with given values. Values are JSON and compare as jsonb
// does: 1.0 equals 1, "1" does not equal 1, a redacted column's value is
// "$encrypted$", and json.RawMessage("null") matches a null value.
type ChangeFilter struct {
	Kind  ChangeKind
	Field string
	// From is the value before the change: the old value of a changed field
	// or the value of a removed one. Nil matches any. Not allowed with
	// FieldAdded.
	From json.RawMessage
	// To is the value after the change: the new value of a changed field or
	// the value of an added one. Nil matches any. Not allowed with
	// FieldRemoved.
	To json.RawMessage
}

func (q Query) validate() error {
	if q.Limit < 0 {
		return queryError("Limit", "%d is negative", q.Limit)
	}
	if q.Limit > maxLimit {
		return queryError("Limit", "%d exceeds the maximum of %d", q.Limit, maxLimit)
	}
	if len(q.Context) > 0 {
		if _, err := json.Marshal(q.Context); err != nil {
			return queryError("Context", "does not encode as JSON: %T", err)
		}
	}
	if q.BeforeID < 0 {
		return queryError("BeforeID", "%d is negative", q.BeforeID)
	}
	if len(q.Tables) > maxTables {
		return queryError("Tables", "has %d names, more than the maximum of %d", len(q.Tables), maxTables)
	}
	for i, op := range q.Operations {
		if !op.Valid() {
			return queryError("Operations["+strconv.Itoa(i)+"]", "%q is not a known operation", op)
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return queryError("Until", "%s is before Since %s",
			q.Until.Format(time.RFC3339Nano), q.Since.Format(time.RFC3339Nano))
	}
	for i, f := range q.Changes {
		if err := f.validate("Changes[" + strconv.Itoa(i) + "]"); err != nil {
			return err
		}
	}
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return queryError("Cursor", "%v", err)
		}
		if c.descending != q.Descending {
			return queryError("Cursor", "is for a listing in %s order, not %s", order(c.descending), order(q.Descending))
		}
	}
	return nil
}

func order(descending bool) string {
	if descending {
		return "descending"
	}
	return "ascending"
}

func (f ChangeFilter) validate(field string) error {
	if f.Field == "" {
		return queryError(field+".Field", "is empty")
	}
	switch f.Kind {
	case FieldAdded:
		if f.From != nil {
			return queryError(field+".From", "is set, but an added field has no value before")
		}
	case FieldRemoved:
		if f.To != nil {
			return queryError(field+".To", "is set, but a removed field has no value after")
		}
	case FieldChanged:
	default:
		return queryError(field+".Kind", "%q is not added, removed or changed", f.Kind)
	}
	for name, v := range map[string]json.RawMessage{".From": f.From, ".To": f.To} {
		if v != nil && !json.Valid(v) {
			return queryError(field+name, "is not valid JSON")
		}
	}
	return nil
}

// List returns the entries that match q, at most q.Limit of them, in
// ascending id order or, with q.Descending, descending. An empty result
// means no more entries match.
//
// The error wraps [ErrInvalidQuery], and nothing is sent, when q fails
// validation: a Limit that is negative or above 1000, a negative BeforeID,
// more than 1000 Tables, an unknown operation, Until before Since, a change
// filter without a field or with a value that is not JSON, a cursor that
// is not one or is for the other order, or an invalid Table name. A
// changes value that does not decode fails the whole call with an error
// naming the entry's id.
func List(ctx context.Context, db Querier, q Query) ([]Entry, error) {
	p, err := listPage(ctx, db, q, false)
	return p.Entries, err
}

// Page is one page of a listing.
type Page struct {
	Entries []Entry
	// Next is the cursor of the following page, "" when no entry matching
	// the query follows this page's last.
	Next string
}

// ListPage is [List] that also says whether more entries follow. Walking
// the pages with Next visits each matching entry at most once, in order,
// even while entries are being written: every entry committed before the
// walk began is visited exactly once. An entry committed during the walk
// is visited if its id lies ahead of the page being read; in ascending
// order one whose id is behind it (a transaction that took its id earlier
// but committed later) is not.
func ListPage(ctx context.Context, db Querier, q Query) (Page, error) {
	return listPage(ctx, db, q, true)
}

func listPage(ctx context.Context, db Querier, q Query, peek bool) (Page, error) {
	if err := q.validate(); err != nil {
		return Page{}, err
	}
	t, err := parseTableName(cmpOr(q.Table, defaultTable))
	if err != nil {
		return Page{}, queryError("Table", "%q: %v", q.Table, err)
	}
	limit := cmpOr(q.Limit, defaultLimit)
	fetch := limit
	if peek {
		fetch++ // one more tells whether a next page exists
	}
	query, args := buildList(t, q, fetch)
	entries, err := readEntries(ctx, db, t, query, args)
	if err != nil {
		return Page{}, err
	}
	p := Page{Entries: entries}
	if peek && len(entries) > limit {
		p.Entries = entries[:limit]
		p.Next = encodeCursor(cursor{descending: q.Descending, id: entries[limit-1].ID})
	}
	return p, nil
}

func cmpOr[T comparable](v, fallback T) T {
	var zero T
	if v == zero {
		return fallback
	}
	return v
}

// buildList returns the SELECT for a validated q with its arguments.
func buildList(t tableName, q Query, limit int) (string, []any) {
	var (
		where []string
		args  []any
	)
	param := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	eq := func(col, v string) {
		if v != "" {
			where = append(where, col+" = "+param(v))
		}
	}
	eq("table_name", q.TableName)
	eq("object_id", q.ObjectID)
	eq("created_by", q.Actor)
	eq("related_table_name", q.RelatedTableName)
	eq("related_object_id", q.RelatedObjectID)
	eq("statement_fingerprint", q.Fingerprint)
	if q.Tables != nil {
		if len(q.Tables) == 0 {
			where = append(where, "FALSE")
		} else {
			// One parameter per name, used for both columns. An entry with
			// no related table has a NULL related_table_name.
			ps := make([]string, len(q.Tables))
			for i, name := range q.Tables {
				ps[i] = param(name)
			}
			in := "IN (" + strings.Join(ps, ", ") + ")"
			where = append(where, "table_name "+in, "(related_table_name IS NULL OR related_table_name "+in+")")
		}
	}
	if len(q.Operations) > 0 {
		// IN with one parameter each, rather than = ANY($n), so that no array
		// encoding is asked of the driver.
		ps := make([]string, len(q.Operations))
		for i, op := range q.Operations {
			ps[i] = param(string(op))
		}
		where = append(where, "operation IN ("+strings.Join(ps, ", ")+")")
	}
	if q.TxID != 0 {
		where = append(where, "tx_id = "+param(q.TxID))
	}
	if !q.Since.IsZero() {
		where = append(where, "created >= "+param(q.Since))
	}
	if !q.Until.IsZero() {
		where = append(where, "created < "+param(q.Until))
	}
	for _, f := range q.Changes {
		where = append(where, f.sql(param)...)
	}
	if len(q.Context) > 0 {
		b, _ := json.Marshal(q.Context) // validate checked it
		where = append(where, "context @> "+param(string(b))+"::jsonb")
	}
	if q.AfterID != 0 {
		where = append(where, "id > "+param(q.AfterID))
	}
	if q.BeforeID != 0 {
		where = append(where, "id < "+param(q.BeforeID))
	}
	if q.Cursor != "" {
		c, _ := decodeCursor(q.Cursor) // validated
		if c.descending {
			where = append(where, "id < "+param(c.id))
		} else {
			where = append(where, "id > "+param(c.id))
		}
	}

	var b strings.Builder
	b.WriteString("SELECT " + entryColumns + " FROM " + t.Quoted())
	if len(where) > 0 {
		b.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	if q.Descending {
		b.WriteString(" ORDER BY id DESC")
	} else {
		b.WriteString(" ORDER BY id")
	}
	b.WriteString(" LIMIT " + param(limit))
	return b.String(), args
}

// sql returns the conditions of a validated filter. A value is matched
// twice: by containment (@>), which the GIN index on changes serves, and
// by equality, because containment is looser for arrays and objects
// ([1, 2] contains [1]) and cannot say which end of an [old, new] pair a
// value is at. Key existence (?) is used only without a value.
func (f ChangeFilter) sql(param func(any) string) []string {
	section := string(f.Kind) + "_fields"
	if f.From == nil && f.To == nil {
		return []string{"changes->'" + section + "' ? " + param(f.Field)}
	}
	at := "changes->'" + section + "'->" + param(f.Field)
	var (
		conds   []string
		contain any
	)
	switch f.Kind {
	case FieldChanged:
		var pair []json.RawMessage
		if f.From != nil {
			conds = append(conds, at+"->0 = "+param(string(f.From))+"::jsonb")
			pair = append(pair, f.From)
		}
		if f.To != nil {
			conds = append(conds, at+"->1 = "+param(string(f.To))+"::jsonb")
			pair = append(pair, f.To)
		}
		contain = pair
	case FieldAdded:
		conds = append(conds, at+" = "+param(string(f.To))+"::jsonb")
		contain = f.To
	case FieldRemoved:
		conds = append(conds, at+" = "+param(string(f.From))+"::jsonb")
		contain = f.From
	}
	doc, err := json.Marshal(map[string]map[string]any{section: {f.Field: contain}})
	if err != nil {
		panic("auditpgx: encoding a validated change filter: " + err.Error())
	}
	return append([]string{"changes @> " + param(string(doc)) + "::jsonb"}, conds...)
}
