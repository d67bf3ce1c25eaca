package auditpgx

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/auditpgx/auditpgx/internal/parse"
	"github.com/auditpgx/auditpgx/internal/registry"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// resolveQuery asks the server, in one round trip, what each written name
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
const resolveQuery = `WITH RECURSIVE roots AS (
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
// the columns queryRelations reads: a relation found by OID but without a
// name (dropped, or committed after the statement's snapshot) comes back
// with NULLs, which queryRelations reports as errCatalogMoved.
const relationRows = `
SELECT rel.i, rel.depth, rel.oid::bigint, n.nspname::text, c.relname::text, pg_catalog.pg_table_is_visible(rel.oid)
FROM rel LEFT JOIN pg_catalog.pg_class c ON c.oid = rel.oid LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
ORDER BY rel.i, rel.depth < 0, abs(rel.depth)`

// relation is one row of resolveQuery or truncateReachQuery.
type relation struct {
	i       int // which name (1-based)
	depth   int // 0 the name's table, >0 an ancestor, -1 a cascading referrer
	oid     uint32
	schema  string
	rel     string
	visible bool
}

// temp reports whether the relation is a session's temporary table.
func (r relation) temp() bool {
	return strings.HasPrefix(r.schema, "pg_temp_")
}

// errCatalogMoved reports a relation found by name but gone, or not yet
// visible, by the time its description was read.
var errCatalogMoved = errors.New("auditpgx: the catalog changed while a statement's tables were resolved; try again")

// queryRelations runs resolveQuery, truncateReachQuery or
// newWriteLocksQuery. When the catalog moved under it (errCatalogMoved), the
// planner plans the statement again.
func queryRelations(ctx context.Context, q driver.QueryerContext, query string, args ...any) ([]relation, error) {
	named := make([]driver.NamedValue, len(args))
	for i, a := range args {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	rows, err := q.QueryContext(ctx, query, named)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []relation
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
			return nil, errCatalogMoved
		}
		schema, ok4 := dest[3].(string)
		rel, ok5 := dest[4].(string)
		visible, ok6 := dest[5].(bool)
		if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
			return nil, fmt.Errorf("auditpgx: catalog resolution returned %T, %T, %T, %T, %T, %T", dest[0], dest[1], dest[2], dest[3], dest[4], dest[5])
		}
		out = append(out, relation{i: int(i), depth: int(depth), oid: uint32(oid), schema: schema, rel: rel, visible: visible})
	}
	return out, rows.Close()
}

// target is what a written name means: the registration it falls under
// (nil for none), that table's description, and the OID the name resolved
// to (the table's own, or a partition's or child's).
type target struct {
	table    *registry.Table
	meta     *registry.Meta
	resolved uint32
}

// cascade is an ON DELETE CASCADE foreign key from a registered table
// (audited, or a join table on its owner or related column) to a written
// table.
type cascade struct {
	table *registry.Table
	meta  *registry.Meta
	fk    registry.FK
}

// refs maps each table a statement writes to what it means.
type refs struct {
	tables   map[parse.TableName]*target
	cascades map[parse.TableName][]cascade
	// temp: a name resolved to a session's temporary table, or a
	// temporary table took part, so that the plan holds for this session
	// only.
	temp bool
	// collides: a written name is a registered relation name in some
	// schema, so that what it means may change with the search_path or
	// the catalog, and a plan that audits nothing must be made anew each
	// time.
	collides bool
	// unqualified: an audited target was named without a schema.
	unqualified bool
	// resolved: the server was asked what the written names mean.
	resolved bool
	// skipped are registered tables written in a way that records nothing
	// (a join table's UPDATE that moves no link).
	skipped []*registry.Table
}

// registrationError is a registration that fails its check against the
// table a write resolved to. The write is refused with it, or run
// unaudited with AllowUnaudited.
type registrationError struct{ err error }

func (e *registrationError) Error() string { return e.err.Error() }
func (e *registrationError) Unwrap() error { return e.err }

// resolveRefs asks the server what each table a statement writes means,
// in one round trip, and matches the answers against the registrations by
// name. Descriptions of the registered tables met are read once per table
// (by OID) and kept.
func (p *planner) resolveRefs(ctx context.Context, q driver.QueryerContext, st *parse.Statement) (refs, error) {
	r := refs{tables: map[parse.TableName]*target{}, cascades: map[parse.TableName][]cascade{}}
	var names []string
	var dels []bool
	var order []parse.TableName
	index := map[parse.TableName]int{}
	for _, w := range st.Writes {
		switch w.Kind {
		case parse.Insert, parse.Update, parse.Delete, parse.Merge, parse.CopyFrom:
		default:
			continue
		}
		if p.reg.Collides(w.Table.Schema, w.Table.Name) {
			r.collides = true
		}
		if i, seen := index[w.Table]; seen {
			dels[i] = dels[i] || deletes(w.Kind)
			continue
		}
		index[w.Table] = len(names)
		order = append(order, w.Table)
		names = append(names, sqlq.QualifiedIdent(w.Table.Schema, w.Table.Name))
		dels = append(dels, deletes(w.Kind))
	}
	if len(names) == 0 || p.reg.Empty() {
		return r, nil
	}
	rels, err := queryRelations(ctx, q, resolveQuery, names, dels)
	if err != nil {
		return r, err
	}
	r.resolved = true
	byName := make([][]relation, len(names))
	for _, rel := range rels {
		if rel.i < 1 || rel.i > len(names) {
			return r, fmt.Errorf("auditpgx: catalog resolution returned name %d of %d", rel.i, len(names))
		}
		byName[rel.i-1] = append(byName[rel.i-1], rel)
	}
	for i, n := range order {
		var self uint32
		for _, rel := range byName[i] {
			if rel.temp() {
				r.temp = true
			}
			if rel.depth == 0 {
				self = rel.oid
			}
			t, err := p.reg.Match(rel.schema, rel.rel, rel.visible)
			if err != nil {
				return r, &registrationError{err}
			}
			if t == nil {
				continue
			}
			switch {
			case rel.depth >= 0:
				if got := r.tables[n]; got != nil {
					if got.table != t {
						return r, &registrationError{registry.Duplicate(n.String(), got.table, t)}
					}
					continue
				}
				m, err := p.metaFor(ctx, q, t, rel.oid)
				if err != nil {
					return r, err
				}
				r.tables[n] = &target{table: t, meta: m, resolved: self}
				if n.Schema == "" {
					r.unqualified = true
				}
			case rel.depth == -1:
				m, err := p.metaFor(ctx, q, t, rel.oid)
				if err != nil {
					return r, err
				}
				for _, fk := range m.FKs {
					if fk.OnDelete != "c" || fk.RefOID != self {
						continue
					}
					linked := m.Link != nil && (fk.Column == m.Link.Owner.Column || fk.Column == m.Link.Related.Column)
					if m.Audited || linked {
						r.cascades[n] = append(r.cascades[n], cascade{table: t, meta: m, fk: fk})
					}
				}
			case rel.depth == -2:
				if r.tables[n] == nil {
					return r, &viewError{written: n.String(), table: t.Registered}
				}
			}
		}
	}
	return r, nil
}

// viewError refuses a write through a view, or to a table with rules,
// whose definition reads a registered table: the write may reach that
// table, and does so with no entry.
type viewError struct{ written, table string }

func (e *viewError) Error() string {
	return fmt.Sprintf("a write through %q, a view or a table with rules that reads registered table %q, is not audited; write %q itself", e.written, e.table, e.table)
}

// metaFor returns t's description for the table with that OID, reading
// the catalog the first time. A registration that fails its check is a
// registrationError.
func (p *planner) metaFor(ctx context.Context, q driver.QueryerContext, t *registry.Table, oid uint32) (*registry.Meta, error) {
	if m := t.MetaFor(oid); m != nil {
		return m, nil
	}
	c, err := readCatalog(ctx, q, registry.CatalogByOIDQuery, int64(oid))
	if err != nil {
		return nil, err
	}
	if c == nil {
		// Dropped by another session since it was resolved: resolve again.
		return nil, errCatalogMoved
	}
	m, err := p.reg.Resolve(t, c)
	if err != nil {
		return nil, &registrationError{err}
	}
	return m, nil
}

// readCatalog runs registry.CatalogQuery (arg a quoted name) or
// registry.CatalogByOIDQuery (arg an OID); it returns nil when there is no
// such table.
func readCatalog(ctx context.Context, q driver.QueryerContext, query string, arg any) (*registry.Catalog, error) {
	rows, err := q.QueryContext(ctx, query, []driver.NamedValue{{Ordinal: 1, Value: arg}})
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	switch err := rows.Next(dest); {
	case errors.Is(err, io.EOF):
		return nil, nil
	case err != nil:
		return nil, err
	}
	var text []byte
	switch v := dest[0].(type) {
	case string:
		text = []byte(v)
	case []byte:
		text = v
	default:
		return nil, fmt.Errorf("auditpgx: catalog query for %v returned %T", arg, dest[0])
	}
	var c registry.Catalog
	if err := json.Unmarshal(text, &c); err != nil {
		return nil, fmt.Errorf("auditpgx: catalog query for %v: %w", arg, err)
	}
	return &c, rows.Close()
}

// dropLinkOnlyUpdates forgets the join tables (registered with RegisterM2M
// only) whose every write is an UPDATE that assigns neither link column:
// such an UPDATE changes no link, records nothing and runs as it is.
func (r *refs) dropLinkOnlyUpdates(writes []parse.Write) {
	for n, t := range r.tables {
		if t == nil || t.meta.Audited || t.meta.Link == nil {
			continue
		}
		l := t.meta.Link
		changesLinks := false
		for _, w := range writes {
			if w.Table != n {
				continue
			}
			if w.Kind != parse.Update || slices.Contains(w.Assigns, l.Owner.Column) || slices.Contains(w.Assigns, l.Related.Column) {
				changesLinks = true
			}
		}
		if !changesLinks {
			delete(r.tables, n)
			r.skipped = append(r.skipped, t.table)
		}
	}
}
