package rewrite

import (
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	"github.com/auditpgx/auditpgx/internal/record"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// An INSERT ... ON CONFLICT DO UPDATE records a create for each inserted
// row and an update, with its exact diff, for each row it updated. The old
// values come from pre, a locking read of the rows whose conflict key the
// statement inserts. pre must be read before the statement updates any
// row, or FOR UPDATE skips the rows already updated: a condition that reads
// it (the gate) is added to the DO UPDATE's WHERE, so it runs at the first
// conflict, before that row is changed. A row that a concurrent transaction
// inserted after the statement's snapshot is not in pre; its entry says so
// with replaced_fields instead of inventing old values.

// upsert holds what INSERT ... ON CONFLICT DO UPDATE needs beyond an insert.
type upsert struct {
	pre *pg_query.SelectStmt
}

const srcAlias = "__auditpgx_src"

func (rw *rewriter) prepareUpsert(w *write, s *pg_query.InsertStmt) (*upsert, error) {
	if w.t.Partitioned() {
		// RETURNING cannot read xmax of a partitioned table, which is how
		// inserted rows are told from updated ones before RETURNING old.
		return nil, unsupported("INSERT ... ON CONFLICT DO UPDATE on partitioned table %q is audited from PostgreSQL 18; write to its partition, or use INSERT and UPDATE", w.t.Registered)
	}
	oc := s.OnConflictClause
	var conflict []string
	switch {
	case oc.Infer == nil:
		return nil, unsupported("ON CONFLICT DO UPDATE needs a conflict target")
	case oc.Infer.Conname != "":
		cols, ok := w.t.Unique[oc.Infer.Conname]
		if !ok {
			return nil, unsupported("constraint %q is not a unique or primary key constraint of table %q", oc.Infer.Conname, w.t.Registered)
		}
		conflict = cols
	default:
		for _, e := range oc.Infer.IndexElems {
			ie := e.GetIndexElem()
			if ie == nil || ie.Name == "" {
				return nil, unsupported("ON CONFLICT on an expression is not audited; use a unique constraint on columns")
			}
			conflict = append(conflict, ie.Name)
		}
	}
	cols := w.t.Columns
	if len(s.Cols) > 0 {
		cols = nil
		for _, c := range s.Cols {
			rt := c.GetResTarget()
			if rt == nil || len(rt.Indirection) > 0 {
				return nil, unsupported("INSERT into a field or element of a column is not audited with ON CONFLICT DO UPDATE")
			}
			cols = append(cols, rt.Name)
		}
	}
	source, err := w.conflictSource(s, cols, conflict)
	if err != nil {
		return nil, err
	}
	pre := selectOf(markerTarget(markPre + w.suffix()))
	pre.FromClause = []*pg_query.Node{{Node: &pg_query.Node_RangeVar{RangeVar: proto.Clone(w.rel).(*pg_query.RangeVar)}}}
	pre.LockingClause = []*pg_query.Node{forUpdateOf(w.ref)}
	if source == nil {
		pre.WhereClause = &pg_query.Node{Node: &pg_query.Node_AConst{AConst: &pg_query.A_Const{Val: &pg_query.A_Const_Boolval{Boolval: &pg_query.Boolean{Boolval: false}}}}}
	} else {
		pre.WhereClause = inSource(w.ref, conflict, source)
	}
	oc.WhereClause = and(marker(w.gateMarker(0)), oc.WhereClause)
	w.gates = 1
	return &upsert{pre: pre}, nil
}

// conflictSource builds the rows of conflict-key values the statement
// inserts: a copy of its VALUES holding just the key columns, cast to their
// types (so that parameters are typed as in the INSERT), or its SELECT. It
// returns nil for DEFAULT VALUES.
func (w *write) conflictSource(s *pg_query.InsertStmt, cols, conflict []string) (*pg_query.Node, error) {
	sel := s.SelectStmt.GetSelectStmt()
	if sel == nil {
		return nil, nil
	}
	aliasCols := make([]*pg_query.Node, len(conflict))
	for i, c := range conflict {
		aliasCols[i] = pg_query.MakeStrNode(c)
	}
	if len(sel.ValuesLists) > 0 {
		types := make([]*pg_query.TypeName, len(conflict))
		pos := make([]int, len(conflict))
		for i, c := range conflict {
			var err error
			if types[i], err = typeName(w.t.columnType(c)); err != nil {
				return nil, err
			}
			pos[i] = indexOf(cols, c)
		}
		values := selectOf()
		for _, row := range sel.ValuesLists {
			items := row.GetList().GetItems()
			out := make([]*pg_query.Node, len(conflict))
			for i := range conflict {
				var item *pg_query.Node
				if p := pos[i]; p >= 0 && p < len(items) && items[p].GetSetToDefault() == nil {
					item = proto.Clone(items[p]).(*pg_query.Node)
				} else {
					item = &pg_query.Node{Node: &pg_query.Node_AConst{AConst: &pg_query.A_Const{Isnull: true}}}
				}
				out[i] = &pg_query.Node{Node: &pg_query.Node_TypeCast{TypeCast: &pg_query.TypeCast{Arg: item, TypeName: types[i]}}}
			}
			values.ValuesLists = append(values.ValuesLists, pg_query.MakeListNode(out))
		}
		return subselect(values, aliasCols), nil
	}
	// INSERT ... SELECT: the query runs again to find the keys; name its
	// columns as the INSERT's and pick the key columns.
	names := make([]*pg_query.Node, len(cols))
	for i, c := range cols {
		names[i] = pg_query.MakeStrNode(c)
	}
	keys := selectOf()
	for _, c := range conflict {
		if indexOf(cols, c) < 0 {
			keys.TargetList = append(keys.TargetList, pg_query.MakeResTargetNodeWithVal(
				&pg_query.Node{Node: &pg_query.Node_AConst{AConst: &pg_query.A_Const{Isnull: true}}}, -1))
			continue
		}
		keys.TargetList = append(keys.TargetList, pg_query.MakeResTargetNodeWithVal(columnRef(srcAlias, c), -1))
	}
	keys.FromClause = []*pg_query.Node{subselect(proto.Clone(sel).(*pg_query.SelectStmt), names)}
	return subselect(keys, aliasCols), nil
}

func subselect(sel *pg_query.SelectStmt, colnames []*pg_query.Node) *pg_query.Node {
	return &pg_query.Node{Node: &pg_query.Node_RangeSubselect{RangeSubselect: &pg_query.RangeSubselect{
		Subquery: &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sel}},
		Alias:    &pg_query.Alias{Aliasname: srcAlias, Colnames: colnames},
	}}}
}

// inSource is ROW(ref.k1, ...) IN (SELECT src.k1, ... FROM source src).
func inSource(ref string, conflict []string, source *pg_query.Node) *pg_query.Node {
	sub := selectOf()
	sub.FromClause = []*pg_query.Node{source}
	var left []*pg_query.Node
	for _, c := range conflict {
		sub.TargetList = append(sub.TargetList, pg_query.MakeResTargetNodeWithVal(columnRef(srcAlias, c), -1))
		left = append(left, columnRef(ref, c))
	}
	test := left[0]
	if len(left) > 1 {
		test = &pg_query.Node{Node: &pg_query.Node_RowExpr{RowExpr: &pg_query.RowExpr{
			Args: left, RowFormat: pg_query.CoercionForm_COERCE_EXPLICIT_CALL,
		}}}
	}
	return &pg_query.Node{Node: &pg_query.Node_SubLink{SubLink: &pg_query.SubLink{
		SubLinkType: pg_query.SubLinkType_ANY_SUBLINK,
		Testexpr:    test,
		Subselect:   &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sub}},
	}}}
}

// typeName parses a type as format_type renders it.
func typeName(typ string) (*pg_query.TypeName, error) {
	if typ == "" {
		return nil, unsupported("the type of a conflict column is unknown")
	}
	tree, err := pg_query.Parse("SELECT NULL::" + typ)
	if err != nil {
		return nil, unsupported("the type %s cannot be parsed", typ)
	}
	tc := tree.Stmts[0].Stmt.GetSelectStmt().TargetList[0].GetResTarget().Val.GetTypeCast()
	if tc == nil {
		return nil, unsupported("the type %s cannot be parsed", typ)
	}
	return tc.TypeName, nil
}

func (t *Target) columnType(col string) string {
	if i := indexOf(t.Columns, col); i >= 0 && i < len(t.Types) {
		return t.Types[i]
	}
	return ""
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func (u *upsert) generated(w *write, keyList, image string) generated {
	if u.pre == nil {
		return u.generatedOld(w, keyList, image)
	}
	ref := sqlq.Ident(w.ref)
	var join []string
	for i := range w.t.PrimaryKey {
		k := colKey + strconv.Itoa(i+1)
		join = append(join, "w."+k+" = p."+k)
	}
	changed := record.ChangedSQL("p."+colOld, "w."+colNew, w.t.Audit)
	d := "(SELECT " + w.keyList("w.") + ", w." + colIns + ", w." + colNew + ", p." + colOld +
		", CASE WHEN w." + colIns + " OR p." + colOld + " IS NULL THEN NULL ELSE " + changed + " END AS " + colChanges +
		" FROM " + w.name() + " w LEFT JOIN " + w.pre() + " p ON " + strings.Join(join, " AND ") + " OFFSET 0) d"
	op := "CASE WHEN d." + colIns + " THEN 'create' ELSE 'update' END"
	changes := "CASE WHEN d." + colIns + " THEN " + record.CreateSQL("d."+colNew, w.t.Audit) +
		" WHEN d." + colOld + " IS NULL THEN " + record.ReplacedSQL("d."+colNew, w.t.Audit) +
		" ELSE " + record.UpdateSQL("d."+colChanges) + " END"
	return generated{
		pre:       keyList + ", " + image + " AS " + colOld,
		gate:      "(SELECT count(*) FROM " + w.pre() + ") >= 0",
		returning: keyList + ", " + image + " AS " + colNew + ", (" + ref + ".xmax = 0) AS " + colIns,
		entries: w.entrySelect(op, changes) + " FROM " + d +
			" WHERE d." + colIns + " OR d." + colOld + " IS NULL OR d." + colChanges + " <> '{}'::jsonb",
	}
}

// generatedOld is the upsert's SQL on PostgreSQL 18 and later, where
// RETURNING old.* gives the exact old row of each updated row (and NULLs
// for an inserted one), whatever happened concurrently.
func (u *upsert) generatedOld(w *write, keyList, image string) generated {
	inserted := "(old." + sqlq.Ident(w.t.PrimaryKey[0]) + " IS NULL)"
	changed := record.ChangedSQL("d."+colOld, "d."+colNew, w.t.Audit)
	d := "(SELECT " + w.keyList("") + ", " + colIns + ", " + colNew + ", " + colOld +
		", CASE WHEN " + colIns + " THEN NULL ELSE " + changed + " END AS " + colChanges +
		" FROM " + w.name() + " d OFFSET 0) d"
	return generated{
		returning: keyList + ", " + image + " AS " + colNew + ", " + record.ImageSQL("old", w.t.Audit) + " AS " + colOld +
			", " + inserted + " AS " + colIns,
		entries: w.entrySelect("CASE WHEN d."+colIns+" THEN 'create' ELSE 'update' END",
			"CASE WHEN d."+colIns+" THEN "+record.CreateSQL("d."+colNew, w.t.Audit)+" ELSE "+record.UpdateSQL("d."+colChanges)+" END") +
			" FROM " + d + " WHERE d." + colIns + " OR d." + colChanges + " <> '{}'::jsonb",
	}
}
