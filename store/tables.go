package store

import (
	"context"
	"fmt"
	"slices"
)

// Tables returns the audited table names that appear in the entry table,
// as table_name or as related_table_name (the other side of an
// association), each once, sorted by byte value (as [slices.Sort] sorts
// strings) whatever the database's collation. An empty name, which the
// driver never writes, is left out. An entry table with no entries gives
// an empty result.
//
// The names are found by skipping from one to the next along the entry
// table's indexes on table_name and related_table_name, so the cost grows
// with the number of distinct names, not with the number of entries.
//
// [WithEntryTable] selects the entry table as for [Get]; other options
// are ignored. The error wraps [ErrInvalidTableName], and nothing is
// sent, when the entry table name is not one.
func Tables(ctx context.Context, db Querier, opts ...Option) ([]string, error) {
	o := applyOptions(opts)
	t, err := entryTableName(o.entryTable)
	if err != nil {
		return nil, err
	}
	names, err := queryStrings(ctx, db, tablesQuery(t))
	if err != nil {
		return nil, fmt.Errorf("auditpgx: read table names from %s: %w", t.Quoted(), err)
	}
	// UNION returns them in no particular order; sorting here, not with
	// ORDER BY, keeps the order callers see independent of the collation.
	slices.Sort(names)
	return names, nil
}

// tablesQuery returns the statement Tables sends: two loose index scans,
// each a recursive CTE that steps from one name to the next greater one
// with min(), which the planner serves with one probe of the index on the
// column (auditpgx_entry_object_idx, auditpgx_entry_related_idx; the
// latter's predicate, related_table_name IS NOT NULL, is implied by >).
// Both start above the empty string, which sorts below every other name
// in every deterministic collation, and so skip it; the last step finds
// none and yields NULL, which ends the recursion.
func tablesQuery(t tableName) string {
	from := t.Quoted()
	return `WITH RECURSIVE by_table(name) AS (
	SELECT ''::text
	UNION ALL
	SELECT (SELECT min(table_name) FROM ` + from + ` WHERE table_name > by_table.name)
	FROM by_table WHERE by_table.name IS NOT NULL
), by_related(name) AS (
	SELECT ''::text
	UNION ALL
	SELECT (SELECT min(related_table_name) FROM ` + from + ` WHERE related_table_name > by_related.name)
	FROM by_related WHERE by_related.name IS NOT NULL
)
SELECT name FROM by_table WHERE name <> ''
UNION
SELECT name FROM by_related WHERE name <> ''`
}
