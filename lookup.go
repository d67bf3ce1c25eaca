package auditpgx

import (
	"cmp"
	"context"
	"database/sql/driver"
	"fmt"
	"slices"
	"strings"

	"github.com/auditpgx/auditpgx/internal/catalog"
	"github.com/auditpgx/auditpgx/internal/parse"
	"github.com/auditpgx/auditpgx/internal/registry"
	"github.com/auditpgx/auditpgx/internal/rewrite"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// Between the planner and the rewrite room: the rewrite asks lookup what
// each written table is (a rewrite.Target built from the catalog's
// description and the registration), and the planner hands it one
// statement, or each of a string's, with the fingerprint and the actor.

func (p *planner) rewriteOne(st *parse.Statement, cat *lookup, opt rewrite.Options, actor string) (*rewrite.Rewrite, error) {
	fp, err := parse.Fingerprint(st.SQL)
	if err != nil {
		return nil, fmt.Errorf("auditpgx: fingerprint: %w", err)
	}
	opt.Fingerprint, opt.Actor = fp, actor
	return rewrite.Build(st, cat, opt)
}

// rewriteMulti rewrites each audited statement of a multi-statement
// string. Such strings travel without parameters (the simple protocol), so
// the actor is spliced in as a quoted literal at run time, at each NUL.
func (p *planner) rewriteMulti(ctx context.Context, q driver.QueryerContext, st *parse.Statement, cat *lookup, opt rewrite.Options) (*rewrite.Rewrite, error) {
	if st.NumParams > 0 {
		return nil, &rewrite.UnsupportedError{Reason: "a string of several statements cannot take parameters"}
	}
	opt.RowsForExec = true
	var execParts, queryParts []string
	audits := false
	for _, sub := range st.Split() {
		if p.truncates(sub) {
			rw, _, err := p.rewriteTruncate(ctx, q, sub, opt)
			if err != nil {
				return nil, err
			}
			if rw != nil {
				audits = true
				execParts = append(execParts, rw.ExecSQL)
				queryParts = append(queryParts, rw.QuerySQL)
				continue
			}
		}
		if !writesAudited(sub, cat) {
			execParts = append(execParts, sub.SQL)
			queryParts = append(queryParts, sub.SQL)
			continue
		}
		rw, err := p.rewriteOne(sub, cat, opt, actorMarker)
		if err != nil {
			return nil, err
		}
		audits = true
		execParts = append(execParts, rw.ExecSQL)
		queryParts = append(queryParts, rw.QuerySQL)
	}
	if !audits {
		return nil, nil
	}
	// A newline before each semicolon: a statement's text may end in a
	// line comment.
	return &rewrite.Rewrite{ExecSQL: strings.Join(execParts, "\n; "), QuerySQL: strings.Join(queryParts, "\n; ")}, nil
}

// maxParams is the most parameters the extended protocol carries.
const maxParams = 65535

// actorMarker stands for the actor literal in multi-statement rewrites; a
// NUL cannot occur in SQL text.
const actorMarker = "\x00"

// contextMarker stands for the entry context literal, as actorMarker for
// the actor; bind replaces it before actorMarker.
const contextMarker = "\x00context\x00"

// deletes reports whether a write of kind k may delete rows, and so
// cascade to the rows that refer to them.
func deletes(k parse.Kind) bool {
	return k == parse.Delete || k == parse.Merge
}

func writesAudited(st *parse.Statement, cat *lookup) bool {
	for _, w := range st.Writes {
		if cat.refs.tables[w.Table] != nil || (deletes(w.Kind) && len(cat.refs.cascades[w.Table]) > 0) {
			return true
		}
	}
	return false
}

// catalog answers the rewriter from the registry, reading the database
// catalog through the statement's own connection where needed.
type lookup struct {
	planner *planner
	ctx     context.Context
	q       driver.QueryerContext
	refs    refs
}

func (c *lookup) Target(n parse.TableName) (*rewrite.Target, error) {
	t := c.refs.tables[n]
	cascades := cascades(c.refs.cascades[n])
	if t == nil {
		if len(cascades) == 0 {
			return nil, nil
		}
		return &rewrite.Target{Registered: n.String(), Cascades: cascades}, nil
	}
	meta := t.meta
	return &rewrite.Target{
		Cascades:   cascades,
		Registered: t.table.Registered,
		Resolved:   t.resolved,
		Table:      *meta.Table,
		Audited:    meta.Audited,
		Audit:      meta.Audit,
		Link:       link(meta.Link),
	}, nil
}

func cascades(cs []cascade) []rewrite.Cascade {
	var out []rewrite.Cascade
	for _, c := range cs {
		pc := rewrite.Cascade{
			RefColumn: c.fk.RefColumn,
			Schema:    c.meta.Schema, Rel: c.meta.Rel, Column: c.fk.Column,
		}
		if l := c.meta.Link; l != nil && (c.fk.Column == l.Owner.Column || c.fk.Column == l.Related.Column) {
			pc.Link = link(l)
		}
		if c.meta.Audited {
			pc.Audited, pc.Registered, pc.PrimaryKey, pc.Audit = true, c.table.Registered, c.meta.PrimaryKey, c.meta.Audit
		}
		out = append(out, pc)
	}
	// In one order whatever order the catalog listed them in: the
	// entries of a cascade come in this order.
	slices.SortFunc(out, func(a, b rewrite.Cascade) int {
		return cmp.Or(cmp.Compare(a.Schema, b.Schema), cmp.Compare(a.Rel, b.Rel), cmp.Compare(a.Column, b.Column), cmp.Compare(a.RefColumn, b.RefColumn))
	})
	return out
}

func link(l *registry.M2M) *rewrite.Link {
	if l == nil {
		return nil
	}
	return &rewrite.Link{
		Field:      l.Field,
		OwnerTable: l.Owner.Table, OwnerColumn: l.Owner.Column,
		RelatedTable: l.Related.Table, RelatedColumn: l.Related.Column,
	}
}

func (c *lookup) Columns(n parse.TableName) ([]string, error) {
	desc, err := catalog.Describe(c.ctx, c.q, catalog.ByNameQuery, sqlq.QualifiedIdent(n.Schema, n.Name))
	if err != nil {
		return nil, err
	}
	if desc == nil {
		return nil, &rewrite.UnsupportedError{Reason: fmt.Sprintf("RETURNING * over %q, which is not a table, is not audited; name the columns", n.String())}
	}
	return desc.Columns, nil
}

func serverVersion(ctx context.Context, q driver.QueryerContext) (int, error) {
	rows, err := q.QueryContext(ctx, "SELECT current_setting('server_version_num')::int", nil)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		return 0, err
	}
	switch v := dest[0].(type) {
	case int64:
		return int(v), rows.Close()
	case int32:
		return int(v), rows.Close()
	}
	return 0, fmt.Errorf("auditpgx: server_version_num is %T", dest[0])
}
