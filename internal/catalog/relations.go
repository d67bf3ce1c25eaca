package catalog

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ResolveQuery asks the server, in one round trip, what each written name
// ($1, quoted) means in this session now: the table it resolves to (depth
// 0) and that table's partition and inheritance ancestors (depth 1, 2, …);
// for names whose flag in $2 is set (deletes), the tables that refer to it
// by a foreign key with ON DELETE CASCADE (depth -1); and the relations the
// rules of a view or of a table with rules read, through any number of
// views (depth -2): a write through them may reach those tables. Each row
// carries the relation's schema, name and whether the search_path finds it
// by its bare name, which is all a registration is matched on: the cost
// does not grow with the number of registered tables. to_regclass reads the
// newest catalog, the joins the statement's snapshot: a table committed in
// between comes back without a name, and the query is run again.
const ResolveQuery = `WITH RECURSIVE roots AS (
	SELECT u.i, pg_catalog.to_regclass(u.n)::oid AS oid, u.d
	FROM unnest($1::text[], $2::bool[]) WITH ORDINALITY AS u(n, d, i)
)` + ancestorsCTE + `, v(i, oid, hops) AS (
	SELECT roots.i, roots.oid, 0 FROM roots WHERE roots.oid IS NOT NULL
	UNION
	SELECT v.i, d.refobjid, v.hops + 1 FROM v
	JOIN pg_catalog.pg_rewrite rw ON rw.ev_class = v.oid
	JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = rw.oid
		AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid <> v.oid
	WHERE v.hops < 16
), rel(i, depth, oid) AS (
	SELECT i, depth, oid FROM a
	UNION ALL
	SELECT DISTINCT roots.i, -1, k.conrelid FROM roots JOIN pg_catalog.pg_constraint k
		ON roots.d AND k.confrelid = roots.oid AND k.contype = 'f' AND k.confdeltype = 'c'
	UNION ALL
	SELECT DISTINCT v.i, -2, v.oid FROM v WHERE v.hops > 0
)` + relationRows

// ancestorsCTE follows the query's roots(i, oid, …) to their partition and
// inheritance ancestors: a(i, depth, oid), depth 0 for the root itself.
const ancestorsCTE = `, a(i, depth, oid) AS (
	SELECT roots.i, 0, roots.oid FROM roots WHERE roots.oid IS NOT NULL
	UNION ALL
	SELECT a.i, a.depth + 1, h.inhparent FROM a JOIN pg_catalog.pg_inherits h ON h.inhrelid = a.oid WHERE a.depth < 64
)`

// relationRows names the relations of the query's rel(i, depth, oid), in
// the columns Relations reads: a relation found by OID but without a
// name (dropped, or committed after the statement's snapshot) comes back
// with NULLs, which Relations reports as ErrMoved.
const relationRows = `
SELECT rel.i, rel.depth, rel.oid::bigint, n.nspname::text, c.relname::text, pg_catalog.pg_table_is_visible(rel.oid)
FROM rel LEFT JOIN pg_catalog.pg_class c ON c.oid = rel.oid LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
ORDER BY rel.i, rel.depth < 0, abs(rel.depth)`

// Relation is one row of ResolveQuery or TruncateReachQuery.
type Relation struct {
	I       int // which name (1-based)
	Depth   int // 0 the name's table, >0 an ancestor, -1 a cascading referrer, -2 read by a view's rules
	OID     uint32
	Schema  string
	Rel     string
	Visible bool // the session's search_path finds it by its bare name
}

// Temp reports whether the relation is a session's temporary table.
func (r Relation) Temp() bool {
	return strings.HasPrefix(r.Schema, "pg_temp_")
}

// ErrMoved reports a relation found by name but gone, or not yet
// visible, by the time its description was read.
var ErrMoved = errors.New("auditpgx: the catalog changed while a statement's tables were resolved; try again")

// Relations runs ResolveQuery, TruncateReachQuery or
// NewWriteLocksQuery. When the catalog moved under it (ErrMoved), the
// planner plans the statement again.
func Relations(ctx context.Context, q driver.QueryerContext, query string, args ...any) ([]Relation, error) {
	named := make([]driver.NamedValue, len(args))
	for i, a := range args {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	rows, err := q.QueryContext(ctx, query, named)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Relation
	dest := make([]driver.Value, 6)
	for {
		err := rows.Next(dest)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		i, ok1 := dest[0].(int64)
		depth, ok2 := dest[1].(int64)
		oid, ok3 := dest[2].(int64)
		if dest[3] == nil || dest[4] == nil || dest[5] == nil {
			if !(ok1 && ok2 && ok3) {
				return nil, fmt.Errorf("auditpgx: catalog resolution returned %T, %T, %T", dest[0], dest[1], dest[2])
			}
			return nil, ErrMoved
		}
		schema, ok4 := dest[3].(string)
		rel, ok5 := dest[4].(string)
		visible, ok6 := dest[5].(bool)
		if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
			return nil, fmt.Errorf("auditpgx: catalog resolution returned %T, %T, %T, %T, %T, %T", dest[0], dest[1], dest[2], dest[3], dest[4], dest[5])
		}
		out = append(out, Relation{I: int(i), Depth: int(depth), OID: uint32(oid), Schema: schema, Rel: rel, Visible: visible})
	}
	return out, rows.Close()
}

// TruncateReachQuery lists the tables that TRUNCATE of the quoted names in
// $1 empties, with CASCADE when $2, each (numbered by i) followed by its
// ancestors, in the columns of ResolveQuery. TRUNCATE ONLY is taken to
// reach children too, which can only refuse or record more.
const TruncateReachQuery = `WITH RECURSIVE r(oid) AS (
	SELECT c.oid FROM unnest($1::text[]) AS u(n), LATERAL (SELECT pg_catalog.to_regclass(u.n)::oid AS oid) c WHERE c.oid IS NOT NULL
	UNION
	SELECT e.child FROM r JOIN (
		SELECT inhparent AS parent, inhrelid AS child FROM pg_catalog.pg_inherits
		UNION ALL
		SELECT confrelid, conrelid FROM pg_catalog.pg_constraint WHERE contype = 'f' AND $2::bool
	) e ON e.parent = r.oid
), roots AS (
	SELECT row_number() OVER (ORDER BY oid) AS i, oid FROM r
)` + ancestorsCTE + `, rel AS (SELECT i, depth, oid FROM a)` + relationRows

// WriteLocksQuery lists the relations this session holds a RowExclusiveLock
// on: every table written in its transaction.
const WriteLocksQuery = `SELECT l.relation::bigint FROM pg_catalog.pg_locks l
WHERE l.pid = pg_catalog.pg_backend_pid() AND l.locktype = 'relation' AND l.mode = 'RowExclusiveLock' AND l.granted`

// NewWriteLocksQuery lists, in the columns of ResolveQuery, the relations
// locked for writing that are not in $1 (bigint[]), with their ancestors.
const NewWriteLocksQuery = `WITH RECURSIVE roots AS (
	SELECT row_number() OVER () AS i, l.relation AS oid FROM pg_catalog.pg_locks l
	JOIN pg_catalog.pg_class lc ON lc.oid = l.relation AND lc.relkind IN ('r', 'p', 'f')
	WHERE l.pid = pg_catalog.pg_backend_pid() AND l.locktype = 'relation' AND l.mode = 'RowExclusiveLock' AND l.granted
		AND NOT l.relation::bigint = ANY ($1::bigint[])
)` + ancestorsCTE + `, rel AS (SELECT i, depth, oid FROM a)` + relationRows
