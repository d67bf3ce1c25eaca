package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/auditpgx/auditpgx/diff"
)

const (
	defaultLimit = 100
	maxLimit     = 1000
)

// Query selects entries for [List]. Zero-valued filters match everything;
// set filters are combined with AND.
type Query struct {
	// Table is the entry table to read, optionally schema-qualified.
	// Default: "auditpgx_entry".
	Table string

	TableName  string      // entries for this audited table
	ObjectID   string      // entries for this object (primary key as text)
	Actor      string      // entries whose created_by equals this
	Operations []Operation // entries with any of these operations

	TxID int64 // entries written in this transaction; 0 matches any

	Since time.Time // created >= Since; zero means no lower bound
	Until time.Time // created < Until; zero means no upper bound

	// AfterID returns only entries with a greater id. Pass the last ID of one
	// page to get the next.
	AfterID int64

	// Limit is the most entries returned. Default: 100; maximum: 1000.
	Limit int
}

func (q Query) validate() error {
	if q.Limit < 0 {
		return fmt.Errorf("%w: Limit %d is negative", ErrInvalidQuery, q.Limit)
	}
	if q.Limit > maxLimit {
		return fmt.Errorf("%w: Limit %d exceeds the maximum of %d", ErrInvalidQuery, q.Limit, maxLimit)
	}
	for i, op := range q.Operations {
		if !op.Valid() {
			return fmt.Errorf("%w: Operations[%d] %q is not a known operation", ErrInvalidQuery, i, op)
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return fmt.Errorf("%w: Until %s is before Since %s", ErrInvalidQuery,
			q.Until.Format(time.RFC3339Nano), q.Since.Format(time.RFC3339Nano))
	}
	return nil
}

// List returns the entries that match q, in ascending id order, at most
// q.Limit of them. An empty result means no more entries match.
//
// The error wraps [ErrInvalidQuery], and nothing is sent, when q fails
// validation: a Limit that is negative or above 1000, an unknown operation,
// Until before Since, or an invalid Table name. A changes value that does not
// decode fails the whole call with an error naming the entry's id.
func List(ctx context.Context, db Querier, q Query) ([]Entry, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	table := q.Table
	if table == "" {
		table = defaultTable
	}
	t, err := parseTableName(table)
	if err != nil {
		return nil, fmt.Errorf("%w: Table %q: %v", ErrInvalidQuery, q.Table, err)
	}
	query, args := buildList(t, q)

	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("auditpgx: list entries from %s: %w", t.quoted(), err)
	}
	defer rows.Close()
	var entries []Entry
	for rows.Next() {
		var (
			e       Entry
			changes []byte
		)
		if err := rows.Scan(&e.ID, &e.Created, &e.CreatedBy, &e.Operation, &e.TableName, &e.ObjectID,
			&changes, &e.RelatedTableName, &e.RelatedObjectID, &e.RelatedFieldName, &e.TxID,
			&e.StatementFingerprint); err != nil {
			return nil, fmt.Errorf("auditpgx: list entries from %s: %w", t.quoted(), err)
		}
		if changes != nil {
			// Into a pointer, so that a JSON null also leaves Changes nil.
			var c *diff.Changes
			if err := json.Unmarshal(changes, &c); err != nil {
				return nil, fmt.Errorf("auditpgx: entry %d in %s: %w", e.ID, t.quoted(), err)
			}
			e.Changes = c
		}
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auditpgx: list entries from %s: %w", t.quoted(), err)
	}
	return entries, nil
}

const entryColumns = `id, created, created_by, operation, table_name, object_id, changes, ` +
	`related_table_name, related_object_id, related_field_name, tx_id, statement_fingerprint`

// buildList returns the SELECT for a validated q with its arguments.
func buildList(t tableName, q Query) (string, []any) {
	var (
		where []string
		args  []any
	)
	param := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.TableName != "" {
		where = append(where, "table_name = "+param(q.TableName))
	}
	if q.ObjectID != "" {
		where = append(where, "object_id = "+param(q.ObjectID))
	}
	if q.Actor != "" {
		where = append(where, "created_by = "+param(q.Actor))
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
	if q.AfterID != 0 {
		where = append(where, "id > "+param(q.AfterID))
	}
	limit := q.Limit
	if limit == 0 {
		limit = defaultLimit
	}

	var b strings.Builder
	b.WriteString("SELECT " + entryColumns + " FROM " + t.quoted())
	if len(where) > 0 {
		b.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	b.WriteString(" ORDER BY id LIMIT " + param(limit))
	return b.String(), args
}
