package rewrite

import (
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/parse"
	"github.com/auditpgx/auditpgx/internal/record"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// write is one INSERT, UPDATE or DELETE on an audited table, being
// rewritten. Its node is edited in place: the user's RETURNING items get
// private names and the rewrite's own items are appended.
type write struct {
	idx       int
	kind      parse.Kind
	node      *pg_query.Node
	rel       *pg_query.RangeVar
	returning *[]*pg_query.Node
	t         *Target
	opt       *Options
	ref       string // the target's name in the statement: alias or relation
	// names are the output column names of the user's RETURNING items.
	names     []string
	projected bool // the write is a user's WITH query, re-exposed by name
	upsert    *upsert
	merge     *merge
	// gates counts the conditions that read pre before a row is updated.
	gates int
	// onConflictUpdate marks INSERT ... ON CONFLICT DO UPDATE.
	onConflictUpdate bool
	// assigned are the columns an UPDATE's SET names.
	assigned map[string]bool
	// returningOld: on PostgreSQL 18 and later, RETURNING old.* gives the
	// exact old row, and no pre query is needed.
	returningOld bool
	// preless: the UPDATE reads no pre query, because RETURNING old.*
	// serves, or because it is suppressed and reads no old values.
	preless bool
	// where and from are the UPDATE's own, before the rewrite's additions.
	where *pg_query.Node
	from  []*pg_query.Node
}

func (w *write) name() string   { return cteWrite + strconv.Itoa(w.idx) }
func (w *write) pre() string    { return ctePre + strconv.Itoa(w.idx) }
func (w *write) suffix() string { return strconv.Itoa(w.idx) + "_" }

// write prepares n if it writes an audited table; it returns nil for a
// write to any other table.
func (rw *rewriter) write(n *pg_query.Node) (*write, error) {
	w := &write{node: n, opt: &rw.opt}
	var from []*pg_query.Node
	var with *pg_query.WithClause
	switch s := n.Node.(type) {
	case *pg_query.Node_InsertStmt:
		w.kind, w.rel, w.returning, with = parse.Insert, s.InsertStmt.Relation, &s.InsertStmt.ReturningList, s.InsertStmt.WithClause
	case *pg_query.Node_UpdateStmt:
		w.kind, w.rel, w.returning, with, from = parse.Update, s.UpdateStmt.Relation, &s.UpdateStmt.ReturningList, s.UpdateStmt.WithClause, s.UpdateStmt.FromClause
		if parse.IsCurrentOf(s.UpdateStmt.WhereClause) {
			return nil, unsupported("UPDATE ... WHERE CURRENT OF cannot be audited; address the row by its primary key")
		}
	case *pg_query.Node_DeleteStmt:
		w.kind, w.rel, w.returning, with, from = parse.Delete, s.DeleteStmt.Relation, &s.DeleteStmt.ReturningList, s.DeleteStmt.WithClause, s.DeleteStmt.UsingClause
		if parse.IsCurrentOf(s.DeleteStmt.WhereClause) {
			return nil, unsupported("DELETE ... WHERE CURRENT OF cannot be audited; address the row by its primary key")
		}
	case *pg_query.Node_MergeStmt:
		w.kind, w.rel, w.returning, with = parse.Merge, s.MergeStmt.Relation, &s.MergeStmt.ReturningList, s.MergeStmt.WithClause
		from = []*pg_query.Node{s.MergeStmt.SourceRelation}
	}
	t, err := rw.cat.Target(parse.TableName{Schema: w.rel.Schemaname, Name: w.rel.Relname})
	if err != nil || !t.audits(w.kind) {
		return nil, err
	}
	if with != nil {
		return nil, unsupported("a WITH query inside a WITH query that writes %q is not audited; move it to the top of the statement", t.Registered)
	}
	if len(t.PrimaryKey) == 0 && t.Audited {
		return nil, unsupported("table %q has no primary key", t.Registered)
	}
	w.t, w.idx = t, len(rw.writes)
	w.ref = w.rel.Relname
	if w.rel.Alias != nil && w.rel.Alias.Aliasname != "" {
		w.ref = w.rel.Alias.Aliasname
	}
	if len(t.PrimaryKey) == 0 && w.kind == parse.Update && (rw.opt.ServerVersion < 180000 || clashesWithOldNew(w.ref, from)) {
		return nil, unsupported("join table %q has no primary key: an UPDATE that changes its link columns is audited from PostgreSQL 18 (RETURNING old.*); delete the old link and insert the new one", t.Registered)
	}
	if err := rw.renameReturning(w, from); err != nil {
		return nil, err
	}
	*w.returning = append(*w.returning, markerTarget(markReturning+w.suffix()))
	w.returningOld = rw.opt.ServerVersion >= 180000 && !clashesWithOldNew(w.ref, from)
	w.preless = w.returningOld || (rw.opt.Suppressed && t.Link == nil)
	switch s := n.Node.(type) {
	case *pg_query.Node_MergeStmt:
		if err := rw.prepareMerge(w, s.MergeStmt); err != nil {
			return nil, err
		}
	case *pg_query.Node_UpdateStmt:
		w.where, w.from = s.UpdateStmt.WhereClause, s.UpdateStmt.FromClause
		w.assigned = map[string]bool{}
		for _, item := range s.UpdateStmt.TargetList {
			if rt := item.GetResTarget(); rt != nil {
				w.assigned[rt.Name] = true
			}
		}
		if w.preless {
			break
		}
		s.UpdateStmt.FromClause = append(s.UpdateStmt.FromClause, pg_query.MakeSimpleRangeVarNode(w.pre(), -1))
		// pre has already chosen and locked the rows, re-checking the WHERE
		// on their newest versions; joined by key alone, the UPDATE
		// evaluates the condition once, so volatile conditions pick the
		// same rows. With FROM items the WHERE also joins them, so it stays.
		where := s.UpdateStmt.WhereClause
		if len(w.from) == 0 {
			where = nil
		}
		s.UpdateStmt.WhereClause = and(where, marker(markJoin+w.suffix()))
	case *pg_query.Node_InsertStmt:
		if oc := s.InsertStmt.OnConflictClause; oc != nil && oc.Action == pg_query.OnConflictAction_ONCONFLICT_UPDATE && !(rw.opt.Suppressed && t.Link == nil) {
			// (A suppressed upsert counts its rows: it needs no old ones.)
			w.onConflictUpdate = true
			if err := w.checkLinkUpsert(oc); err != nil {
				return nil, err
			}
			switch {
			case t.Audited && w.returningOld:
				if oc.Infer == nil {
					return nil, unsupported("ON CONFLICT DO UPDATE needs a conflict target")
				}
				w.upsert = &upsert{}
			case t.Audited:
				if w.upsert, err = rw.prepareUpsert(w, s.InsertStmt); err != nil {
					return nil, err
				}
			}
		}
	}
	rw.writes = append(rw.writes, w)
	return w, nil
}

// ctes returns the WITH queries that perform the write: the locking read
// of the old rows where one is needed, then the write itself.
func (w *write) ctes() []*pg_query.Node {
	var out []*pg_query.Node
	switch {
	case w.kind == parse.Update && !w.preless:
		// pre shares the UPDATE's nodes: the tree is no longer edited, and
		// the deparser prints a node met twice twice.
		pre := selectOf(markerTarget(markPre + w.suffix()))
		pre.FromClause = append([]*pg_query.Node{{Node: &pg_query.Node_RangeVar{RangeVar: w.rel}}}, w.from...)
		pre.WhereClause = w.where
		pre.LockingClause = []*pg_query.Node{forUpdateOf(w.ref)}
		out = append(out, cte(w.pre(), pre))
	case w.upsert != nil && w.upsert.pre != nil:
		out = append(out, materialized(w.pre(), w.upsert.pre))
	case w.merge != nil && w.merge.pre != nil:
		out = append(out, materialized(w.pre(), w.merge.pre))
	}
	return append(out, cteNode(w.name(), w.node))
}

// clashesWithOldNew reports whether the target or a FROM item is named old
// or new, which would hide RETURNING's old and new rows.
func clashesWithOldNew(ref string, from []*pg_query.Node) bool {
	names := []string{ref}
	var add func(f *pg_query.Node)
	add = func(f *pg_query.Node) {
		switch v := f.Node.(type) {
		case *pg_query.Node_RangeVar:
			names = append(names, v.RangeVar.Relname)
			if v.RangeVar.Alias != nil {
				names = append(names, v.RangeVar.Alias.Aliasname)
			}
		case *pg_query.Node_RangeSubselect:
			if v.RangeSubselect.Alias != nil {
				names = append(names, v.RangeSubselect.Alias.Aliasname)
			}
		case *pg_query.Node_RangeFunction:
			if v.RangeFunction.Alias != nil {
				names = append(names, v.RangeFunction.Alias.Aliasname)
			}
			for _, fn := range v.RangeFunction.Functions {
				for _, item := range fn.GetList().GetItems() {
					if call := item.GetFuncCall(); call != nil && len(call.Funcname) > 0 {
						names = append(names, call.Funcname[len(call.Funcname)-1].GetString_().GetSval())
					}
				}
			}
		case *pg_query.Node_JoinExpr:
			if v.JoinExpr.Alias != nil {
				names = append(names, v.JoinExpr.Alias.Aliasname)
			}
			add(v.JoinExpr.Larg)
			add(v.JoinExpr.Rarg)
		}
	}
	for _, f := range from {
		add(f)
	}
	for _, n := range names {
		if n == "old" || n == "new" {
			return true
		}
	}
	return false
}

func forUpdateOf(ref string) *pg_query.Node {
	return &pg_query.Node{Node: &pg_query.Node_LockingClause{LockingClause: &pg_query.LockingClause{
		LockedRels: []*pg_query.Node{pg_query.MakeSimpleRangeVarNode(ref, -1)},
		Strength:   pg_query.LockClauseStrength_LCS_FORUPDATE,
		WaitPolicy: pg_query.LockWaitPolicy_LockWaitBlock,
	}}}
}

// materialized is a MATERIALIZED WITH query: read once, before the write
// it gates, whatever refers to it.
func materialized(name string, query *pg_query.SelectStmt) *pg_query.Node {
	n := cte(name, query)
	n.GetCommonTableExpr().Ctematerialized = pg_query.CTEMaterialize_CTEMaterializeAlways
	return n
}

func cteNode(name string, query *pg_query.Node) *pg_query.Node {
	return &pg_query.Node{Node: &pg_query.Node_CommonTableExpr{CommonTableExpr: &pg_query.CommonTableExpr{
		Ctename:  name,
		Ctequery: query,
	}}}
}

// projection re-exposes a user's writing WITH query under its own name with
// exactly its own columns, so that the rest of the statement reads it as
// written.
func (rw *rewriter) projection(w *write, user *pg_query.CommonTableExpr) *pg_query.Node {
	w.projected = true
	return &pg_query.Node{Node: &pg_query.Node_CommonTableExpr{CommonTableExpr: &pg_query.CommonTableExpr{
		Ctename:         user.Ctename,
		Aliascolnames:   user.Aliascolnames,
		Ctematerialized: user.Ctematerialized,
		Ctequery:        &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: selectOf(markerTarget(markProject + w.suffix()))}},
	}}}
}

// finalProjection is the final query's projection of the top write: its
// user's RETURNING columns; returns is false when it has none (the final
// query then returns no rows).
func (w *write) finalProjection() (sql string, returns bool) {
	if len(w.names) == 0 {
		return "", false
	}
	return w.projectSQL(), true
}

// projectSQL selects the user's RETURNING columns, under their original
// names, from the write.
func (w *write) projectSQL() string {
	if len(w.names) == 0 {
		if w.projected {
			return "SELECT FROM " + w.name()
		}
		return "SELECT FROM " + w.name() + " WHERE false"
	}
	var sb strings.Builder
	sb.WriteString("SELECT ")
	for i, n := range w.names {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(colResult + strconv.Itoa(i+1) + " AS " + sqlq.Ident(n))
	}
	sb.WriteString(" FROM " + w.name())
	return sb.String()
}

// generated is the SQL spliced in at a write's markers.
type generated struct {
	pre       string // the pre query's select list (UPDATE, upsert)
	join      string // the UPDATE's join to pre by primary key
	gate      string // the upsert's condition that reads pre first
	returning string // the write's added RETURNING items
	entries   string // the SELECT of the write's entries
}

func (w *write) generated() generated {
	ref := sqlq.Ident(w.ref)
	var keys, join []string
	for i, k := range w.t.PrimaryKey {
		key := colKey + strconv.Itoa(i+1)
		keys = append(keys, ref+"."+sqlq.Ident(k)+" AS "+key)
		join = append(join, ref+"."+sqlq.Ident(k)+" = "+w.pre()+"."+key)
	}
	var g generated
	if w.kind == parse.Update && !w.preless {
		// tableoid too: inheritance children do not share the parent's
		// key, so the same key may name a row in each.
		join = append(join, ref+".tableoid = "+w.pre()+"."+colTable)
		g.join = "(" + strings.Join(join, " AND ") + ")"
	}
	switch {
	case w.opt.Suppressed && w.t.Audited && w.kind != parse.Merge && w.upsert == nil:
		// The suppressed entry only counts the rows: their keys are all
		// the write returns, and an UPDATE reads no pre.
		g.returning = strings.Join(keys, ", ")
	case w.kind == parse.Merge:
		g = w.mergeGenerated(strings.Join(keys, ", "))
	case w.t.Audited:
		g = w.tableGenerated(g, strings.Join(keys, ", "))
	case w.kind == parse.Update && !w.preless:
		g.pre = strings.Join(keys, ", ")
	}
	if w.kind == parse.Update && !w.preless {
		g.pre += ", " + ref + ".tableoid AS " + colTable
	}
	if w.t.Link != nil {
		w.linkGenerated(&g)
	}
	if w.kind == parse.Delete || w.kind == parse.Merge {
		w.cascadeGenerated(&g)
	}
	guard, shape := w.staleGuard()
	if guard != "" {
		g.returning += ", " + guard + " AS __auditpgx_fresh"
	}
	if shape != "" {
		g.returning += ", " + shape + shapeEnd
	}
	return g
}

// staleGuard returns what the write's RETURNING adds so that no write
// runs with a rewrite made for another table or one that misses a column:
// it fails with StaleMarker in its error when the written name has come to
// mean another table than the one the rewrite was made for (replaced by
// another client, shadowed by a temporary table or an earlier schema of
// the search_path), and fails when the table has gained columns since it
// was described.
//
// Both are checked when the statement is analysed, which the server does
// again before running a prepared statement whose table changed or whose
// search_path now finds another table (the plan cache takes the table's
// lock before checking that its plan is still valid, and compares the
// search_path, a temporary schema created since included). The name is
// compared as a regclass constant, which analysis resolves as it resolves
// the write's target, so a prepared statement runs no check at all.
// The columns are checked by shape:
// shape is false AND a UNION ALL of the written row's * and its columns as
// described, folded to false by the planner, so that it costs nothing when
// it runs, and fails to analyse with "each UNION query must have the same
// number of columns" when a column was added, or "column ... does not
// exist" when one was dropped. A partition or inheritance child written by
// its own name, whose columns may differ from its registered parent's,
// is checked instead, name and columns, when the statement runs, by an
// uncorrelated subquery that the server evaluates once per statement and
// that reads the parent's pg_class.relnatts (a column added and dropped
// since counts too).
func (w *write) staleGuard() (guard, shape string) {
	if w.t.OID == 0 {
		return "", ""
	}
	resolved := w.t.Resolved
	if resolved == 0 {
		resolved = w.t.OID
	}
	name := sqlq.Literal(sqlq.QualifiedIdent(w.rel.Schemaname, w.rel.Relname))
	regclass := "pg_catalog.to_regclass(" + name + ")"
	stale := " || " + sqlq.Literal(" "+StaleMarker) + ")::int > 0 END"
	if resolved != w.t.OID || len(w.t.Columns) == 0 {
		return "(SELECT CASE WHEN " + regclass + " = " + strconv.FormatUint(uint64(resolved), 10) +
			"::oid AND c.relnatts = " + strconv.Itoa(w.t.NAtts) + " THEN true ELSE (coalesce(c.relnatts::text, '-')" +
			stale + " FROM (SELECT) AS g LEFT JOIN pg_catalog.pg_class c ON c.oid = " +
			strconv.FormatUint(uint64(w.t.OID), 10) + ")", ""
	}
	// The name is a regclass constant, resolved when the statement is
	// analysed, as the write's own target is, so the planner folds the
	// comparison: to true, leaving nothing to run; to false, leaving the
	// ELSE, whose text rendering of the name depends on the search_path
	// and so is not folded into an error at planning: it fails when the
	// first row is returned.
	lit := name + "::pg_catalog.regclass"
	guard = "CASE WHEN " + lit + " = " + strconv.FormatUint(uint64(resolved), 10) +
		"::pg_catalog.oid THEN true ELSE (" + lit + "::text" + stale
	ref := sqlq.Ident(w.ref)
	cols := make([]string, len(w.t.Columns))
	for i, c := range w.t.Columns {
		cols[i] = ref + "." + sqlq.Ident(c)
	}
	shape = shapeStart + ref + ".* UNION ALL SELECT " + strings.Join(cols, ", ") + "))"
	return guard, shape
}

// shapeStart and shapeEnd begin and end the column check of staleGuard in
// the SQL sent.
const (
	shapeStart = "(false AND EXISTS (SELECT "
	shapeEnd   = " AS __auditpgx_shape"
)

// InShapeCheck reports whether the 1-based character position pos of an
// error of the SQL sent falls in a column check of staleGuard.
func InShapeCheck(sent string, pos int) bool {
	at := -1 // pos as a byte offset
	n := 0
	for i := range sent {
		n++
		if n == pos {
			at = i
			break
		}
	}
	if at < 0 {
		return false
	}
	start := strings.LastIndex(sent[:at], shapeStart)
	if start < 0 {
		return false
	}
	end := strings.Index(sent[start:], shapeEnd)
	return end >= 0 && at < start+end
}

// tableGenerated adds the SQL of create, update and delete entries.
func (w *write) tableGenerated(g generated, keyList string) generated {
	switch {
	case w.kind == parse.Update:
		// The diff is computed in RETURNING, from the old values (pre's
		// columns, or old.* on 18) and the new ones, column by column.
		cols := w.updatedColumns()
		ref := sqlq.Ident(w.ref)
		olds := make([]string, len(cols.Names))
		news := make([]string, len(cols.Names))
		var pre strings.Builder
		pre.WriteString(keyList)
		for i, c := range cols.Names {
			col := sqlq.Ident(c)
			news[i] = ref + "." + col
			if w.returningOld {
				olds[i] = "old." + col
				continue
			}
			name := colOldValue + strconv.Itoa(i+1)
			olds[i] = w.pre() + "." + name
			pre.WriteString(", " + ref + "." + col + " AS " + name)
		}
		if !w.returningOld {
			g.pre = pre.String()
		}
		g.returning = keyList + ", " + record.ChangedTypedValuesSQL(olds, news, w.columnTypes(cols.Names), cols) + " AS " + colChanges
		g.entries = w.entrySelect("'update'", record.UpdateSQL("d."+colChanges)) +
			" FROM " + w.name() + " d WHERE d." + colChanges + " <> '{}'::jsonb"
	case w.upsert != nil:
		u := w.upsert.generated(w, keyList, record.ImageSQL(sqlq.Ident(w.ref), w.t.Audit))
		u.join = g.join
		g = u
	case w.kind == parse.Insert:
		// The masked image is added_fields itself: built once, in RETURNING.
		g.returning = keyList + ", " + record.MaskedImageSQL(sqlq.Ident(w.ref), w.t.Audit) + " AS " + colNew
		g.entries = w.entrySelect("'create'", record.CreatedSQL("d."+colNew)) + " FROM " + w.name() + " d"
	default:
		g.returning = keyList + ", " + record.MaskedImageSQL(sqlq.Ident(w.ref), w.t.Audit) + " AS " + colOld
		g.entries = w.entrySelect("'delete'", record.DeletedSQL("d."+colOld)) + " FROM " + w.name() + " d"
	}
	return g
}

// updatedColumns are the audited columns an UPDATE can change: those it
// assigns and the stored generated ones, or all of them when a BEFORE
// UPDATE trigger may change any. Only these are read and compared, which
// keeps the images a wide table's UPDATE carries small.
func (w *write) updatedColumns() diff.Columns {
	if w.t.BeforeUpdate {
		return w.t.Audit
	}
	generated := map[string]bool{}
	for _, c := range w.t.Generated {
		generated[c] = true
	}
	out := diff.Columns{Redacted: w.t.Audit.Redacted}
	for _, c := range w.t.Audit.Names {
		if w.assigned[c] || generated[c] {
			out.Names = append(out.Names, c)
		}
	}
	return out
}

// columnTypes returns the type OIDs of the named columns as described (0
// for a column the description lacks).
func (w *write) columnTypes(names []string) []uint32 {
	if len(w.t.TypeOIDs) != len(w.t.Columns) {
		return nil
	}
	out := make([]uint32, len(names))
	for i, name := range names {
		if j := indexOf(w.t.Columns, name); j >= 0 {
			out[i] = w.t.TypeOIDs[j]
		}
	}
	return out
}

func (w *write) keyList(qualifier string) string {
	var keys []string
	for i := range w.t.PrimaryKey {
		keys = append(keys, qualifier+colKey+strconv.Itoa(i+1))
	}
	return strings.Join(keys, ", ")
}

// objectID renders the key as text: the value for a single column, a JSON
// array such as [7,"eu"] for a composite key.
func (w *write) objectID() string {
	keys := make([]string, len(w.t.PrimaryKey))
	types := make([]string, len(keys))
	for i, k := range w.t.PrimaryKey {
		keys[i] = "d." + colKey + strconv.Itoa(i+1)
		types[i] = w.t.columnType(k)
	}
	return record.ObjectIDSQL(keys, types)
}

// suppressedEntry is the SELECT of the one entry of a suppressed write:
// its table, and in changes the number of rows it wrote.
func (w *write) suppressedEntry() string {
	return record.Entry{Actor: w.opt.Actor, Operation: sqlq.Literal(record.Suppressed), Table: sqlq.Literal(w.t.Registered), ObjectID: "''",
		Changes: record.SuppressedSQL("count(*)"), Fingerprint: sqlq.Literal(w.opt.Fingerprint), Context: w.opt.Context}.Select() +
		" FROM " + w.name()
}

// entrySelect is the SELECT of a write's table entries.
func (w *write) entrySelect(op, changes string) string {
	return record.Entry{Actor: w.opt.Actor, Operation: op, Table: sqlq.Literal(w.t.Registered), ObjectID: w.objectID(),
		Changes: changes, Fingerprint: sqlq.Literal(w.opt.Fingerprint), Context: w.opt.Context}.Select()
}
