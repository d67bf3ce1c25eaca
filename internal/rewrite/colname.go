package rewrite

import pg_query "github.com/pganalyze/pg_query_go/v6"

// columnName returns the name PostgreSQL gives an unnamed result column,
// following FigureColnameInternal in parse_target.c, so that a rewritten
// RETURNING list reports exactly the column names the original would.
func columnName(n *pg_query.Node) string {
	name, _ := figureColname(n)
	if name == "" {
		return "?column?"
	}
	return name
}

// figureColname returns a name and its strength: 2 for a name taken from the
// expression, 1 for a fallback keyword such as "case", 0 for none.
func figureColname(n *pg_query.Node) (string, int) {
	if n == nil {
		return "", 0
	}
	switch v := n.Node.(type) {
	case *pg_query.Node_ColumnRef:
		fields := v.ColumnRef.Fields
		for i := len(fields) - 1; i >= 0; i-- {
			if s := fields[i].GetString_(); s != nil {
				return s.Sval, 2
			}
		}
	case *pg_query.Node_AIndirection:
		ind := v.AIndirection.Indirection
		for i := len(ind) - 1; i >= 0; i-- {
			if s := ind[i].GetString_(); s != nil {
				return s.Sval, 2
			}
		}
		return figureColname(v.AIndirection.Arg)
	case *pg_query.Node_FuncCall:
		names := v.FuncCall.Funcname
		if len(names) > 0 {
			return names[len(names)-1].GetString_().GetSval(), 2
		}
	case *pg_query.Node_AExpr:
		if v.AExpr.Kind == pg_query.A_Expr_Kind_AEXPR_NULLIF {
			return "nullif", 2
		}
	case *pg_query.Node_TypeCast:
		name, strength := figureColname(v.TypeCast.Arg)
		if strength <= 1 && v.TypeCast.TypeName != nil {
			names := v.TypeCast.TypeName.Names
			if len(names) > 0 {
				return names[len(names)-1].GetString_().GetSval(), 1
			}
		}
		return name, strength
	case *pg_query.Node_CollateClause:
		return figureColname(v.CollateClause.Arg)
	case *pg_query.Node_GroupingFunc:
		return "grouping", 2
	case *pg_query.Node_MergeSupportFunc:
		return "merge_action", 2
	case *pg_query.Node_SubLink:
		switch v.SubLink.SubLinkType {
		case pg_query.SubLinkType_EXISTS_SUBLINK:
			return "exists", 2
		case pg_query.SubLinkType_ARRAY_SUBLINK:
			return "array", 2
		case pg_query.SubLinkType_EXPR_SUBLINK:
			if sel := v.SubLink.Subselect.GetSelectStmt(); sel != nil {
				return firstTargetName(sel)
			}
		}
	case *pg_query.Node_CaseExpr:
		name, strength := figureColname(v.CaseExpr.Defresult)
		if strength <= 1 {
			return "case", 1
		}
		return name, strength
	case *pg_query.Node_AArrayExpr:
		return "array", 2
	case *pg_query.Node_RowExpr:
		return "row", 2
	case *pg_query.Node_CoalesceExpr:
		return "coalesce", 2
	case *pg_query.Node_MinMaxExpr:
		if v.MinMaxExpr.Op == pg_query.MinMaxOp_IS_GREATEST {
			return "greatest", 2
		}
		return "least", 2
	case *pg_query.Node_SqlvalueFunction:
		if name, ok := sqlValueFunctionNames[v.SqlvalueFunction.Op]; ok {
			return name, 2
		}
	case *pg_query.Node_XmlExpr:
		if name, ok := xmlExprNames[v.XmlExpr.Op]; ok {
			return name, 2
		}
	case *pg_query.Node_XmlSerialize:
		return "xmlserialize", 2
	case *pg_query.Node_JsonParseExpr:
		return "json", 2
	case *pg_query.Node_JsonScalarExpr:
		return "json_scalar", 2
	case *pg_query.Node_JsonSerializeExpr:
		return "json_serialize", 2
	case *pg_query.Node_JsonObjectConstructor:
		return "json_object", 2
	case *pg_query.Node_JsonArrayConstructor, *pg_query.Node_JsonArrayQueryConstructor:
		return "json_array", 2
	case *pg_query.Node_JsonObjectAgg:
		return "json_objectagg", 2
	case *pg_query.Node_JsonArrayAgg:
		return "json_arrayagg", 2
	case *pg_query.Node_JsonFuncExpr:
		switch v.JsonFuncExpr.Op {
		case pg_query.JsonExprOp_JSON_EXISTS_OP:
			return "json_exists", 2
		case pg_query.JsonExprOp_JSON_QUERY_OP:
			return "json_query", 2
		case pg_query.JsonExprOp_JSON_VALUE_OP:
			return "json_value", 2
		}
	}
	return "", 0
}

// firstTargetName names a scalar subquery's column: its first target's
// alias, or the name that target's expression gets.
func firstTargetName(sel *pg_query.SelectStmt) (string, int) {
	for sel.Op != pg_query.SetOperation_SETOP_NONE && sel.Larg != nil {
		sel = sel.Larg
	}
	if len(sel.TargetList) == 0 {
		return "", 0
	}
	rt := sel.TargetList[0].GetResTarget()
	if rt == nil {
		return "", 0
	}
	if rt.Name != "" {
		return rt.Name, 2
	}
	// The subquery's column always has a name by now, "?column?" at worst,
	// and PostgreSQL takes it whatever it is.
	return columnName(rt.Val), 2
}

var sqlValueFunctionNames = map[pg_query.SQLValueFunctionOp]string{
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_DATE:        "current_date",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIME:        "current_time",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIME_N:      "current_time",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP:   "current_timestamp",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP_N: "current_timestamp",
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIME:           "localtime",
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIME_N:         "localtime",
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP:      "localtimestamp",
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP_N:    "localtimestamp",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_ROLE:        "current_role",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_USER:        "current_user",
	pg_query.SQLValueFunctionOp_SVFOP_USER:                "user",
	pg_query.SQLValueFunctionOp_SVFOP_SESSION_USER:        "session_user",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_CATALOG:     "current_catalog",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_SCHEMA:      "current_schema",
}

var xmlExprNames = map[pg_query.XmlExprOp]string{
	pg_query.XmlExprOp_IS_XMLCONCAT:    "xmlconcat",
	pg_query.XmlExprOp_IS_XMLELEMENT:   "xmlelement",
	pg_query.XmlExprOp_IS_XMLFOREST:    "xmlforest",
	pg_query.XmlExprOp_IS_XMLPARSE:     "xmlparse",
	pg_query.XmlExprOp_IS_XMLPI:        "xmlpi",
	pg_query.XmlExprOp_IS_XMLROOT:      "xmlroot",
	pg_query.XmlExprOp_IS_XMLSERIALIZE: "xmlserialize",
	pg_query.XmlExprOp_IS_DOCUMENT:     "?column?",
}
