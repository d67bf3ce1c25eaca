package auditpgx

import (
	"context"
	"database/sql/driver"
	"fmt"

	"github.com/auditpgx/auditpgx/internal/catalog"
	"github.com/auditpgx/auditpgx/internal/parse"
	"github.com/auditpgx/auditpgx/internal/registry"
	"github.com/auditpgx/auditpgx/internal/rewrite"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// TRUNCATE: it cannot be rewritten into one statement, so the planner
// puts the truncate entries in front of it, or refuses it.

// truncates reports whether st holds a TRUNCATE that may empty a
// registered table.
func (p *planner) truncates(st *parse.Statement) bool {
	if p.reg.Empty() {
		return false
	}
	for _, w := range st.Writes {
		if w.Kind == parse.Truncate {
			return true
		}
	}
	return false
}

// rewriteTruncate puts an INSERT of one truncate entry per registered table
// the TRUNCATE empties in front of it, in one string that runs as one
// transaction. It returns a nil rewrite when no registered table is
// emptied, and a refusalError when one is that does not record TRUNCATE.
func (p *planner) rewriteTruncate(ctx context.Context, q driver.QueryerContext, st *parse.Statement, opt rewrite.Options) (*rewrite.Rewrite, bool, error) {
	tables, err := p.truncated(ctx, q, st.Writes)
	if err != nil || len(tables) == 0 {
		return nil, false, err
	}
	fp, err := parse.Fingerprint(st.SQL)
	if err != nil {
		return nil, false, fmt.Errorf("auditpgx: fingerprint: %w", err)
	}
	opt.Fingerprint, opt.Actor = fp, actorMarker
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.Registered
	}
	// The user's text goes last: its command tag is the string's, and a
	// trailing comment cannot hide anything.
	sql := rewrite.TruncateEntries(names, opt) + "\n; " + st.SQL
	return &rewrite.Rewrite{ExecSQL: sql, QuerySQL: sql}, true, nil
}

// truncated returns the registered tables a TRUNCATE's writes empty: those
// named, their partitions and inheritance children, and with CASCADE the
// tables that refer to any of them by foreign key, transitively; each
// counts under its own registration or its nearest registered ancestor's.
// If one of them does not record TRUNCATE, the error is a refusalError.
// Registered tables the TRUNCATE does not reach play no part.
func (p *planner) truncated(ctx context.Context, q driver.QueryerContext, writes []parse.Write) ([]*registry.Table, error) {
	var names []string
	cascade := false
	for _, w := range writes {
		if w.Kind == parse.Truncate {
			names = append(names, sqlq.QualifiedIdent(w.Table.Schema, w.Table.Name))
			cascade = cascade || w.Cascade
		}
	}
	rels, err := catalog.Relations(ctx, q, catalog.TruncateReachQuery, names, cascade)
	if err != nil {
		return nil, err
	}
	var out []*registry.Table
	seen := map[*registry.Table]bool{}
	reached := map[int]bool{} // by reached table, once registered
	for _, rel := range rels {
		if reached[rel.I] {
			continue
		}
		t, err := p.reg.Match(rel.Schema, rel.Rel, rel.Visible)
		if err != nil {
			return nil, &refusalError{&plan{action: refuse, err: err}}
		}
		if t == nil {
			continue
		}
		reached[rel.I] = true
		if seen[t] {
			continue
		}
		seen[t] = true
		if !t.RecordsTruncate() {
			return nil, &refusalError{refused(t.Registered, "TRUNCATE cannot be audited row by row; use DELETE, or register the table with RecordTruncate to record a TRUNCATE as one entry")}
		}
		out = append(out, t)
	}
	return out, nil
}
