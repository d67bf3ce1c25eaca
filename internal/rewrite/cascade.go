package rewrite

import (
	"strconv"
	"strings"

	"github.com/auditpgx/auditpgx/internal/parse"
	"github.com/auditpgx/auditpgx/internal/record"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// colCascade prefixes the RETURNING items that carry the deleted rows'
// referenced values.
const colCascade = "__auditpgx_rc"

// cascadeGenerated adds the entries of rows that ON DELETE CASCADE removes
// along with the deleted rows: a disassociate for each link of a join
// table, a delete for each row of an audited table. The entries query reads
// the referring table with the statement's snapshot, which still holds the
// rows the cascade deletes at the end of the statement.
func (w *write) cascadeGenerated(g *generated) {
	if len(w.t.Cascades) == 0 {
		return
	}
	ref := sqlq.Ident(w.ref)
	deleted := w.name() + " d"
	if w.kind == parse.Merge {
		deleted += " WHERE d." + colAction + " = 'DELETE'"
	}
	cols := map[string]string{}
	var items, entries []string
	for _, c := range w.t.Cascades {
		if _, ok := cols[c.RefColumn]; !ok {
			name := colCascade + strconv.Itoa(len(cols)+1)
			cols[c.RefColumn] = name
			items = append(items, ref+"."+sqlq.Ident(c.RefColumn)+" AS "+name)
		}
		from := " FROM " + sqlq.QualifiedIdent(c.Schema, c.Rel) + " j WHERE j." + sqlq.Ident(c.Column) +
			" IN (SELECT d." + cols[c.RefColumn] + " FROM " + deleted + ")"
		if l := c.Link; l != nil {
			entries = append(entries, w.linkEntry("disassociate", "j."+sqlq.Ident(l.OwnerColumn), "j."+sqlq.Ident(l.RelatedColumn), l).Select()+from)
		}
		if c.Audited {
			entries = append(entries, record.Entry{Actor: w.opt.Actor, Operation: "'delete'", Table: sqlq.Literal(c.Registered),
				ObjectID: record.ObjectIDSQL(qualified("j.", c.PrimaryKey), nil), Changes: record.DeleteSQL(record.ImageSQL("j", c.Audit), c.Audit),
				Fingerprint: sqlq.Literal(w.opt.Fingerprint), Context: w.opt.Context}.Select()+from)
		}
	}
	if g.returning != "" {
		items = append([]string{g.returning}, items...)
	}
	g.returning = strings.Join(items, ", ")
	if g.entries != "" {
		entries = append([]string{g.entries}, entries...)
	}
	g.entries = strings.Join(entries, " UNION ALL ")
}

// qualified quotes columns and prefixes them with a qualifier such as "j.".
func qualified(qualifier string, cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = qualifier + sqlq.Ident(c)
	}
	return out
}
