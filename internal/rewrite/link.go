package rewrite

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/auditpgx/auditpgx/internal/parse"
	"github.com/auditpgx/auditpgx/internal/record"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// Columns the rewrite adds for a join table's links: the owner and related
// values after the write, and before it (UPDATE).
const (
	colOwner      = "__auditpgx_lo"
	colRelated    = "__auditpgx_lr"
	colOldOwner   = "__auditpgx_olo"
	colOldRelated = "__auditpgx_olr"
	colLinkIns    = "__auditpgx_lins"
)

// linkGenerated adds the SQL of associate and disassociate entries: one per
// link inserted or deleted, and for an UPDATE that moves a link, a
// disassociate of the old pair and an associate of the new.
func (w *write) linkGenerated(g *generated) {
	l := w.t.Link
	ref := sqlq.Ident(w.ref)
	owner, related := ref+"."+sqlq.Ident(l.OwnerColumn), ref+"."+sqlq.Ident(l.RelatedColumn)
	add := func(list *string, items ...string) {
		all := strings.Join(items, ", ")
		if *list != "" {
			all = *list + ", " + all
		}
		*list = all
	}
	add(&g.returning, owner+" AS "+colOwner, related+" AS "+colRelated)
	from := " FROM " + w.name() + " d"
	var entries []string
	moved := " WHERE (d." + colOldOwner + ", d." + colOldRelated + ") IS DISTINCT FROM (d." + colOwner + ", d." + colRelated + ")"
	switch {
	case w.kind == parse.Insert && w.onConflictUpdate:
		add(&g.returning, "("+ref+".xmax = 0) AS "+colLinkIns)
		entries = append(entries, w.linkSelect("associate", colOwner, colRelated)+from+" WHERE d."+colLinkIns)
	case w.kind == parse.Insert:
		entries = append(entries, w.linkSelect("associate", colOwner, colRelated)+from)
	case w.kind == parse.Delete:
		entries = append(entries, w.linkSelect("disassociate", colOwner, colRelated)+from)
	case w.kind == parse.Update:
		if w.returningOld {
			add(&g.returning, "old."+sqlq.Ident(l.OwnerColumn)+" AS "+colOldOwner, "old."+sqlq.Ident(l.RelatedColumn)+" AS "+colOldRelated)
		} else {
			add(&g.pre, owner+" AS "+colOldOwner, related+" AS "+colOldRelated)
			add(&g.returning, w.pre()+"."+colOldOwner+" AS "+colOldOwner, w.pre()+"."+colOldRelated+" AS "+colOldRelated)
		}
		entries = append(entries,
			w.linkSelect("disassociate", colOldOwner, colOldRelated)+from+moved,
			w.linkSelect("associate", colOwner, colRelated)+from+moved)
	}
	if g.entries != "" {
		entries = append([]string{g.entries}, entries...)
	}
	g.entries = strings.Join(entries, " UNION ALL ")
}

func (w *write) linkSelect(op, ownerCol, relatedCol string) string {
	return w.linkEntry(op, "d."+ownerCol, "d."+relatedCol, w.t.Link).Select()
}

// linkEntry is the associate or disassociate entry of link l whose owner
// and related keys are the column expressions owner and related.
func (w *write) linkEntry(op, owner, related string, l *Link) record.Entry {
	return record.Entry{Actor: w.opt.Actor, Operation: sqlq.Literal(op), Table: sqlq.Literal(l.OwnerTable),
		ObjectID: "to_jsonb(" + owner + ") #>> '{}'", Changes: "NULL::jsonb", Fingerprint: sqlq.Literal(w.opt.Fingerprint),
		RelatedTable: sqlq.Literal(l.RelatedTable), RelatedObjectID: "to_jsonb(" + related + ") #>> '{}'", RelatedField: sqlq.Literal(l.Field), Context: w.opt.Context}
}

// checkLinkUpsert refuses an upsert on a join table whose DO UPDATE moves
// the link, which would need the old pair.
func (w *write) checkLinkUpsert(oc *pg_query.OnConflictClause) error {
	l := w.t.Link
	if l == nil {
		return nil
	}
	for _, n := range oc.TargetList {
		if rt := n.GetResTarget(); rt != nil && (rt.Name == l.OwnerColumn || rt.Name == l.RelatedColumn) {
			return unsupported("ON CONFLICT DO UPDATE of the link columns of join table %q is not audited; delete and insert the link", w.t.Registered)
		}
	}
	return nil
}
