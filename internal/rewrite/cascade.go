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
				ObjectID: keyText(qualified("j.", c.PrimaryKey), nil), Changes: record.DeleteSQL(record.ImageSQL("j", c.Audit), c.Audit),
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

// keyText renders key expressions as object_id text: the value of a single
// one, a JSON array such as [7,"eu"] for several. types are the keys'
// types as format_type names them, or nil when unknown; a single key of a
// type whose text is its JSON text is cast, for less work a row.
func keyText(exprs, types []string) string {
	if len(exprs) == 1 {
		if types != nil {
			if typ, _, _ := strings.Cut(types[0], "("); textIsJSONText[typ] {
				return exprs[0] + "::text"
			}
		}
		return "to_jsonb(" + exprs[0] + ") #>> '{}'"
	}
	parts := make([]string, len(exprs))
	for i, e := range exprs {
		parts[i] = "to_jsonb(" + e + ")::text"
	}
	return "'[' || " + strings.Join(parts, " || ',' || ") + " || ']'"
}

// ObjectIDSQL is the SQL of an entry's object_id for key expressions of
// those types (as format_type names them): one rendering for every writer
// of entries, the rewrite and Baseline alike.
func ObjectIDSQL(exprs, types []string) string { return keyText(exprs, types) }

// textIsJSONText lists the types (as format_type names them) whose text
// form is the text of their to_jsonb value. Not character(n): to_jsonb
// keeps its padding and ::text strips it.
var textIsJSONText = map[string]bool{
	"smallint": true, "integer": true, "bigint": true, "text": true, "character varying": true, "uuid": true,
}

// qualified quotes columns and prefixes them with a qualifier such as "j.".
func qualified(qualifier string, cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = qualifier + sqlq.Ident(c)
	}
	return out
}
