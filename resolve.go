package auditpgx

import (
	"context"
	"database/sql/driver"
	"fmt"
	"slices"

	"github.com/auditpgx/auditpgx/internal/catalog"
	"github.com/auditpgx/auditpgx/internal/parse"
	"github.com/auditpgx/auditpgx/internal/registry"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

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
	fk    catalog.FK
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
	rels, err := catalog.Relations(ctx, q, catalog.ResolveQuery, names, dels)
	if err != nil {
		return r, err
	}
	r.resolved = true
	byName := make([][]catalog.Relation, len(names))
	for _, rel := range rels {
		if rel.I < 1 || rel.I > len(names) {
			return r, fmt.Errorf("auditpgx: catalog resolution returned name %d of %d", rel.I, len(names))
		}
		byName[rel.I-1] = append(byName[rel.I-1], rel)
	}
	for i, n := range order {
		var self uint32
		for _, rel := range byName[i] {
			if rel.Temp() {
				r.temp = true
			}
			if rel.Depth == 0 {
				self = rel.OID
			}
			t, err := p.reg.Match(rel.Schema, rel.Rel, rel.Visible)
			if err != nil {
				return r, &registrationError{err}
			}
			if t == nil {
				continue
			}
			switch {
			case rel.Depth >= 0:
				if got := r.tables[n]; got != nil {
					if got.table != t {
						return r, &registrationError{registry.Duplicate(n.String(), got.table, t)}
					}
					continue
				}
				m, err := p.metaFor(ctx, q, t, rel.OID)
				if err != nil {
					return r, err
				}
				r.tables[n] = &target{table: t, meta: m, resolved: self}
				if n.Schema == "" {
					r.unqualified = true
				}
			case rel.Depth == -1:
				m, err := p.metaFor(ctx, q, t, rel.OID)
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
			case rel.Depth == -2:
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
	c, err := catalog.Describe(ctx, q, catalog.ByOIDQuery, int64(oid))
	if err != nil {
		return nil, err
	}
	if c == nil {
		// Dropped by another session since it was resolved: resolve again.
		return nil, catalog.ErrMoved
	}
	m, err := p.reg.Resolve(t, c)
	if err != nil {
		return nil, &registrationError{err}
	}
	return m, nil
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
