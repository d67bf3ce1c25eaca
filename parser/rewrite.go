package parser

import (
	"fmt"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// Target describes the audited table a statement writes, as the catalog
// and the registration define it.
type Target struct {
	// Registered is the table's name as registered: entries carry it.
	Registered string
	// Columns are all the table's columns in order, for expanding *.
	Columns []string
	// PrimaryKey lists the key columns in key order.
	PrimaryKey []string
	// Audit lists the audited and redacted columns.
	Audit diff.Columns
}

// EntryTable names the table that receives entries.
type EntryTable struct {
	Schema, Name string
}

// Rewrite is an audited write turned into one statement that performs the
// write and inserts its entries.
type Rewrite struct {
	// ExecSQL returns one row: the number of rows the write affected.
	ExecSQL string
	// QuerySQL returns exactly the rows and columns of the original
	// statement (none when it had no RETURNING).
	QuerySQL string
	// NumParams is how many parameters the original takes; the actor is
	// passed as parameter NumParams+1.
	NumParams int
	// Kind is the write performed.
	Kind Kind
}

// UnsupportedError says why a write cannot be rewritten.
type UnsupportedError struct {
	Reason string
}

func (e *UnsupportedError) Error() string { return e.Reason }

func unsupported(format string, args ...any) error {
	return &UnsupportedError{Reason: fmt.Sprintf(format, args...)}
}

// Names of the CTEs and columns the rewrite adds; the prefix keeps them
// apart from anything a user writes.
const (
	ctePre     = "__auditpgx_pre"
	cteWrite   = "__auditpgx_w"
	cteEntries = "__auditpgx_e"
	colOld     = "__auditpgx_old"
	colNew     = "__auditpgx_new"
	colChanges = "__auditpgx_ch"
	colKey     = "__auditpgx_k"
	colResult  = "__auditpgx_c"
)

const execTail = "SELECT count(*) FROM " + cteWrite

// Rewrite turns the statement, which must be a single top-level INSERT,
// UPDATE or DELETE on t, into its audited form.
func (st *Statement) Rewrite(t Target, entries EntryTable, fingerprint string) (*Rewrite, error) {
	if len(st.tree.Stmts) != 1 {
		return nil, unsupported("a string of %d statements can only be audited without parameters", len(st.tree.Stmts))
	}
	if strings.Contains(st.SQL, "__auditpgx") {
		return nil, unsupported("names beginning with __auditpgx are reserved for the rewrite")
	}
	if len(t.PrimaryKey) == 0 {
		return nil, unsupported("table %q has no primary key", t.Registered)
	}
	user := proto.Clone(st.tree.Stmts[0].Stmt).(*pg_query.Node)
	b := &builder{t: t, entries: entries, fingerprint: fingerprint, actorParam: st.NumParams + 1}

	var (
		rel       *pg_query.RangeVar
		returning *[]*pg_query.Node
		with      **pg_query.WithClause
		from      []*pg_query.Node
		kind      Kind
	)
	switch n := user.Node.(type) {
	case *pg_query.Node_InsertStmt:
		s := n.InsertStmt
		if s.OnConflictClause != nil && s.OnConflictClause.Action == pg_query.OnConflictAction_ONCONFLICT_UPDATE {
			return nil, unsupported("INSERT ... ON CONFLICT DO UPDATE is not audited yet")
		}
		kind, rel, returning, with = Insert, s.Relation, &s.ReturningList, &s.WithClause
	case *pg_query.Node_UpdateStmt:
		s := n.UpdateStmt
		if isCurrentOf(s.WhereClause) {
			return nil, unsupported("UPDATE ... WHERE CURRENT OF cannot be audited: update by primary key instead")
		}
		kind, rel, returning, with, from = Update, s.Relation, &s.ReturningList, &s.WithClause, s.FromClause
	case *pg_query.Node_DeleteStmt:
		s := n.DeleteStmt
		if isCurrentOf(s.WhereClause) {
			return nil, unsupported("DELETE ... WHERE CURRENT OF cannot be audited: delete by primary key instead")
		}
		kind, rel, returning, with, from = Delete, s.Relation, &s.ReturningList, &s.WithClause, s.UsingClause
	default:
		return nil, unsupported("only INSERT, UPDATE and DELETE statements are audited")
	}
	b.ref = rel.Relname
	if rel.Alias != nil && rel.Alias.Aliasname != "" {
		b.ref = rel.Alias.Aliasname
	}

	names, err := b.renameReturning(returning, len(from) > 0)
	if err != nil {
		return nil, err
	}
	// The skeleton is built around the user's own nodes; the SQL we add is
	// spliced in as text at marker column references after one deparse,
	// which keeps the cold path to a parse of the user's statement and a
	// deparse of a tree of about its size.
	*returning = append(*returning, markerTarget(markReturning))
	top := &pg_query.SelectStmt{
		TargetList:  []*pg_query.Node{markerTarget(markTail)},
		WithClause:  &pg_query.WithClause{},
		LimitOption: pg_query.LimitOption_LIMIT_OPTION_DEFAULT,
		Op:          pg_query.SetOperation_SETOP_NONE,
	}
	if *with != nil {
		top.WithClause.Ctes = (*with).Ctes
		top.WithClause.Recursive = (*with).Recursive
		*with = nil
	}
	if kind == Update {
		s := user.GetUpdateStmt()
		pre := &pg_query.SelectStmt{
			TargetList:  []*pg_query.Node{markerTarget(markPre)},
			FromClause:  append([]*pg_query.Node{{Node: &pg_query.Node_RangeVar{RangeVar: proto.Clone(rel).(*pg_query.RangeVar)}}}, cloneAll(s.FromClause)...),
			LimitOption: pg_query.LimitOption_LIMIT_OPTION_DEFAULT,
			Op:          pg_query.SetOperation_SETOP_NONE,
			LockingClause: []*pg_query.Node{{Node: &pg_query.Node_LockingClause{LockingClause: &pg_query.LockingClause{
				LockedRels: []*pg_query.Node{pg_query.MakeSimpleRangeVarNode(b.ref, -1)},
				Strength:   pg_query.LockClauseStrength_LCS_FORUPDATE,
				WaitPolicy: pg_query.LockWaitPolicy_LockWaitBlock,
			}}}},
		}
		if s.WhereClause != nil {
			pre.WhereClause = proto.Clone(s.WhereClause).(*pg_query.Node)
		}
		top.WithClause.Ctes = append(top.WithClause.Ctes, cte(ctePre, &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: pre}}))
		s.FromClause = append(s.FromClause, pg_query.MakeSimpleRangeVarNode(ctePre, -1))
		s.WhereClause = and(s.WhereClause, marker(markJoin))
	}
	top.WithClause.Ctes = append(top.WithClause.Ctes, cte(cteWrite, user))

	tree := &pg_query.ParseResult{Version: st.tree.Version, Stmts: []*pg_query.RawStmt{{Stmt: &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: top}}}}}
	sql, err := pg_query.Deparse(tree)
	if err != nil {
		return nil, fmt.Errorf("auditpgx internal error: deparse: %w", err)
	}
	head, ok := strings.CutSuffix(sql, " SELECT "+markTail)
	if !ok {
		return nil, fmt.Errorf("auditpgx internal error: unexpected deparsed tail")
	}
	pieces := b.pieces(kind)
	for _, m := range []struct{ marker, text string }{
		{markPre, pieces.pre}, {markJoin, pieces.join}, {markReturning, pieces.returning},
	} {
		if m.text == "" {
			continue
		}
		if strings.Count(head, m.marker) != 1 {
			return nil, fmt.Errorf("auditpgx internal error: marker %s not found once", m.marker)
		}
		head = strings.Replace(head, m.marker, m.text, 1)
	}
	head += ", " + cteEntries + " AS (" + pieces.entries + ") "
	return &Rewrite{
		ExecSQL:   head + execTail,
		QuerySQL:  head + querySelect(names),
		NumParams: st.NumParams,
		Kind:      kind,
	}, nil
}

// Markers stand where generated SQL is spliced into the deparsed text.
const (
	markPre       = "__auditpgx_m_pre"
	markJoin      = "__auditpgx_m_join"
	markReturning = "__auditpgx_m_returning"
	markTail      = "__auditpgx_m_tail"
)

func marker(name string) *pg_query.Node {
	return pg_query.MakeColumnRefNode([]*pg_query.Node{pg_query.MakeStrNode(name)}, -1)
}

func markerTarget(name string) *pg_query.Node {
	return pg_query.MakeResTargetNodeWithVal(marker(name), -1)
}

func cte(name string, query *pg_query.Node) *pg_query.Node {
	return &pg_query.Node{Node: &pg_query.Node_CommonTableExpr{CommonTableExpr: &pg_query.CommonTableExpr{
		Ctename:  name,
		Ctequery: query,
	}}}
}

type builder struct {
	t           Target
	entries     EntryTable
	fingerprint string
	actorParam  int
	ref         string // the target's name in the statement: alias or relation name
}

// renameReturning gives each user RETURNING item a private name and returns
// the names the original statement would have given them. A * is expanded
// to the target's columns, since the rewrite adds FROM items that a bare *
// would pick up.
func (b *builder) renameReturning(list *[]*pg_query.Node, hasFrom bool) ([]string, error) {
	var out []*pg_query.Node
	var names []string
	add := func(val *pg_query.Node, name string) {
		out = append(out, &pg_query.Node{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{
			Name: colResult + strconv.Itoa(len(out)+1),
			Val:  val,
		}}})
		names = append(names, name)
	}
	for _, item := range *list {
		rt := item.GetResTarget()
		if rt == nil {
			return nil, unsupported("unexpected RETURNING item")
		}
		if cr := rt.Val.GetColumnRef(); cr != nil && len(cr.Fields) > 0 && cr.Fields[len(cr.Fields)-1].GetAStar() != nil {
			qualified := len(cr.Fields) > 1
			if qualified && (len(cr.Fields) != 2 || cr.Fields[0].GetString_().GetSval() != b.ref) {
				return nil, unsupported("RETURNING of another table's * is not audited yet; name the columns")
			}
			if !qualified && hasFrom {
				return nil, unsupported("RETURNING * with FROM or USING items is not audited yet; name the columns")
			}
			for _, c := range b.t.Columns {
				add(columnRef(b.ref, c), c)
			}
			continue
		}
		name := rt.Name
		if name == "" {
			name = columnName(rt.Val)
		}
		add(rt.Val, name)
	}
	*list = out
	return names, nil
}

func querySelect(names []string) string {
	if len(names) == 0 {
		return "SELECT FROM " + cteWrite + " WHERE false"
	}
	var sb strings.Builder
	sb.WriteString("SELECT ")
	for i, n := range names {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(colResult + strconv.Itoa(i+1) + " AS " + sqlq.Ident(n))
	}
	sb.WriteString(" FROM " + cteWrite)
	return sb.String()
}

// generated is the SQL the rewrite adds around the user's statement.
type generated struct {
	pre       string // the pre CTE's select list (UPDATE)
	join      string // the UPDATE's join to pre by primary key
	returning string // the write's added RETURNING items
	entries   string // the entries CTE's INSERT
}

func (b *builder) pieces(kind Kind) generated {
	ref := sqlq.Ident(b.ref)
	image := diff.ImageSQL(ref, b.t.Audit)
	var keys, join []string
	for i, k := range b.t.PrimaryKey {
		key := colKey + strconv.Itoa(i+1)
		keys = append(keys, ref+"."+sqlq.Ident(k)+" AS "+key)
		join = append(join, ref+"."+sqlq.Ident(k)+" = "+ctePre+"."+key)
	}
	keyList := strings.Join(keys, ", ")
	switch kind {
	case Update:
		changed := diff.ChangedSQL(colOld, colNew, b.t.Audit)
		return generated{
			pre:       keyList + ", " + image + " AS " + colOld,
			join:      "(" + strings.Join(join, " AND ") + ")",
			returning: keyList + ", " + ctePre + "." + colOld + " AS " + colOld + ", " + image + " AS " + colNew,
			entries: b.entryInsert("update", diff.UpdateSQL("d."+colChanges)) +
				" FROM (SELECT " + b.keyList() + ", " + changed + " AS " + colChanges + " FROM " + cteWrite + " OFFSET 0) d" +
				" WHERE d." + colChanges + " <> '{}'::jsonb",
		}
	case Insert:
		return generated{
			returning: keyList + ", " + image + " AS " + colNew,
			entries:   b.entryInsert("create", diff.CreateSQL("d."+colNew, b.t.Audit)) + " FROM " + cteWrite + " d",
		}
	default:
		return generated{
			returning: keyList + ", " + image + " AS " + colOld,
			entries:   b.entryInsert("delete", diff.DeleteSQL("d."+colOld, b.t.Audit)) + " FROM " + cteWrite + " d",
		}
	}
}

func (b *builder) keyList() string {
	var keys []string
	for i := range b.t.PrimaryKey {
		keys = append(keys, colKey+strconv.Itoa(i+1))
	}
	return strings.Join(keys, ", ")
}

// objectID renders the key as text: the value for a single column, a JSON
// array such as [7,"eu"] for a composite key.
func (b *builder) objectID() string {
	if len(b.t.PrimaryKey) == 1 {
		return "to_jsonb(d." + colKey + "1) #>> '{}'"
	}
	var parts []string
	for i := range b.t.PrimaryKey {
		parts = append(parts, "to_jsonb(d."+colKey+strconv.Itoa(i+1)+")::text")
	}
	return "'[' || " + strings.Join(parts, " || ',' || ") + " || ']'"
}

func (b *builder) entryInsert(op, changes string) string {
	return fmt.Sprintf("INSERT INTO %s (created, created_by, operation, table_name, object_id, changes, tx_id, statement_fingerprint) "+
		"SELECT statement_timestamp(), $%d::text, %s, %s, %s, %s, pg_current_xact_id()::text::bigint, %s",
		sqlq.QualifiedIdent(b.entries.Schema, b.entries.Name), b.actorParam, sqlq.Literal(op),
		sqlq.Literal(b.t.Registered), b.objectID(), changes, sqlq.Literal(b.fingerprint))
}

func columnRef(table, column string) *pg_query.Node {
	return pg_query.MakeColumnRefNode([]*pg_query.Node{pg_query.MakeStrNode(table), pg_query.MakeStrNode(column)}, -1)
}

func and(a, b *pg_query.Node) *pg_query.Node {
	if a == nil {
		return b
	}
	return pg_query.MakeBoolExprNode(pg_query.BoolExprType_AND_EXPR, []*pg_query.Node{a, b}, -1)
}

func cloneAll(nodes []*pg_query.Node) []*pg_query.Node {
	out := make([]*pg_query.Node, len(nodes))
	for i, n := range nodes {
		out[i] = proto.Clone(n).(*pg_query.Node)
	}
	return out
}
