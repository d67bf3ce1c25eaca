package rewrite

import (
	"strconv"

	"github.com/auditpgx/auditpgx/internal/parse"
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// renameReturning gives each user RETURNING item a private name and records
// the name the original statement gives it. A * is expanded to the columns
// it stands for, since the rewrite adds a FROM item that a bare * would
// pick up.
func (rw *rewriter) renameReturning(w *write, from []*pg_query.Node) error {
	var out []*pg_query.Node
	add := func(val *pg_query.Node, name string) {
		out = append(out, &pg_query.Node{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{
			Name: colResult + strconv.Itoa(len(out)+1),
			Val:  val,
		}}})
		w.names = append(w.names, name)
	}
	for _, item := range *w.returning {
		rt := item.GetResTarget()
		if rt == nil {
			return unsupported("unexpected RETURNING item")
		}
		cr := rt.Val.GetColumnRef()
		if cr == nil || len(cr.Fields) == 0 || cr.Fields[len(cr.Fields)-1].GetAStar() == nil {
			name := rt.Name
			if name == "" {
				name = columnName(rt.Val)
			}
			add(rt.Val, name)
			continue
		}
		var qualifier string
		switch len(cr.Fields) {
		case 1:
		case 2:
			qualifier = cr.Fields[0].GetString_().GetSval()
		default:
			return unsupported("RETURNING of a schema-qualified * is not audited; name the columns")
		}
		var items []fromItem
		for _, f := range from {
			fi, err := rw.fromItem(f)
			if err != nil {
				return err
			}
			items = append(items, fi)
		}
		// The target's columns come first, except in MERGE, where the
		// source's do.
		target := fromItem{ref: w.ref, columns: w.t.Columns}
		if w.kind == parse.Merge {
			items = append(items, target)
		} else {
			items = append([]fromItem{target}, items...)
		}
		found := false
		for _, fi := range items {
			if qualifier != "" && fi.ref != qualifier {
				continue
			}
			found = true
			for _, c := range fi.columns {
				add(columnRef(fi.ref, c), c)
			}
		}
		if !found {
			return unsupported("RETURNING %s.* names no table of the statement", qualifier)
		}
	}
	*w.returning = out
	return nil
}

// fromItem is a FROM or USING item with the columns a * over it yields.
type fromItem struct {
	ref     string
	columns []string
}

func (rw *rewriter) fromItem(n *pg_query.Node) (fromItem, error) {
	switch v := n.Node.(type) {
	case *pg_query.Node_RangeVar:
		rv := v.RangeVar
		fi := fromItem{ref: rv.Relname}
		var err error
		if cols, ok := rw.cteColumns(rv); ok {
			fi.columns = cols
		} else if fi.columns, err = rw.cat.Columns(parse.TableName{Schema: rv.Schemaname, Name: rv.Relname}); err != nil {
			return fromItem{}, err
		}
		if rv.Alias != nil {
			fi.ref = rv.Alias.Aliasname
			fi.columns = renamed(fi.columns, rv.Alias.Colnames)
		}
		return fi, nil
	case *pg_query.Node_RangeSubselect:
		rs := v.RangeSubselect
		sel := rs.Subquery.GetSelectStmt()
		if sel == nil || rs.Alias == nil {
			break
		}
		cols, ok := selectColumns(sel)
		if !ok {
			break
		}
		return fromItem{ref: rs.Alias.Aliasname, columns: renamed(cols, rs.Alias.Colnames)}, nil
	}
	return fromItem{}, unsupported("RETURNING * over this kind of FROM or USING item is not audited; name the columns")
}

// cteColumns returns the columns of a user WITH query a reference names.
func (rw *rewriter) cteColumns(rv *pg_query.RangeVar) ([]string, bool) {
	if rv.Schemaname != "" {
		return nil, false
	}
	for _, c := range rw.userCTEs {
		cte := c.GetCommonTableExpr()
		if cte == nil || cte.Ctename != rv.Relname {
			continue
		}
		sel := cte.Ctequery.GetSelectStmt()
		var cols []string
		if sel != nil {
			cols, _ = selectColumns(sel)
		}
		if len(cte.Aliascolnames) == 0 && cols == nil {
			return nil, false
		}
		if len(cte.Aliascolnames) > len(cols) {
			cols = make([]string, len(cte.Aliascolnames))
		}
		return renamed(cols, cte.Aliascolnames), true
	}
	return nil, false
}

// selectColumns names a SELECT's or VALUES' output columns; false when a *
// makes them unknown without the catalog.
func selectColumns(sel *pg_query.SelectStmt) ([]string, bool) {
	for sel.Op != pg_query.SetOperation_SETOP_NONE && sel.Larg != nil {
		sel = sel.Larg
	}
	if len(sel.ValuesLists) > 0 {
		row := sel.ValuesLists[0].GetList()
		if row == nil {
			return nil, false
		}
		cols := make([]string, len(row.Items))
		for i := range cols {
			cols[i] = "column" + strconv.Itoa(i+1)
		}
		return cols, true
	}
	var cols []string
	for _, item := range sel.TargetList {
		rt := item.GetResTarget()
		if rt == nil {
			return nil, false
		}
		if cr := rt.Val.GetColumnRef(); cr != nil && cr.Fields[len(cr.Fields)-1].GetAStar() != nil {
			return nil, false
		}
		name := rt.Name
		if name == "" {
			name = columnName(rt.Val)
		}
		cols = append(cols, name)
	}
	return cols, true
}

// renamed applies alias column names to the leading columns.
func renamed(cols []string, aliases []*pg_query.Node) []string {
	out := append([]string(nil), cols...)
	for i, a := range aliases {
		if i < len(out) {
			out[i] = a.GetString_().GetSval()
		}
	}
	return out
}

func columnRef(table, column string) *pg_query.Node {
	return pg_query.MakeColumnRefNode([]*pg_query.Node{pg_query.MakeStrNode(table), pg_query.MakeStrNode(column)}, -1)
}
