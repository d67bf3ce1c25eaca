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

	tree, err := pg_query.Parse(b.template(kind))
	if err != nil {
		return nil, fmt.Errorf("auditpgx internal error: template does not parse: %w", err)
	}
	top := tree.Stmts[0].Stmt.GetSelectStmt()
	ctes := top.WithClause.Ctes
	var userCTEs []*pg_query.Node
	if *with != nil {
		userCTEs = (*with).Ctes
		top.WithClause.Recursive = (*with).Recursive
		*with = nil
	}
	writeCTE := ctes[len(ctes)-2].GetCommonTableExpr()
	tmplWrite := writeCTE.Ctequery
	*returning = append(*returning, returningOf(tmplWrite)...)

	if kind == Update {
		s := user.GetUpdateStmt()
		pre := ctes[0].GetCommonTableExpr().Ctequery.GetSelectStmt()
		pre.FromClause = append([]*pg_query.Node{{Node: &pg_query.Node_RangeVar{RangeVar: proto.Clone(rel).(*pg_query.RangeVar)}}}, cloneAll(s.FromClause)...)
		if s.WhereClause != nil {
			pre.WhereClause = proto.Clone(s.WhereClause).(*pg_query.Node)
		}
		tu := tmplWrite.GetUpdateStmt()
		s.FromClause = append(s.FromClause, tu.FromClause...)
		s.WhereClause = and(s.WhereClause, tu.WhereClause)
	}
	writeCTE.Ctequery = user
	top.WithClause.Ctes = append(userCTEs, ctes...)

	sql, err := pg_query.Deparse(tree)
	if err != nil {
		return nil, fmt.Errorf("auditpgx internal error: deparse: %w", err)
	}
	head, ok := strings.CutSuffix(sql, execTail)
	if !ok {
		return nil, fmt.Errorf("auditpgx internal error: unexpected deparsed tail in %q", sql)
	}
	return &Rewrite{
		ExecSQL:   sql,
		QuerySQL:  head + querySelect(names),
		NumParams: st.NumParams,
		Kind:      kind,
	}, nil
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

// template is the statement's skeleton as SQL text; the user's statement is
// grafted into it after parsing.
func (b *builder) template(kind Kind) string {
	ref := sqlq.Ident(b.ref)
	image := diff.ImageSQL(ref, b.t.Audit)
	var keys []string
	for i, k := range b.t.PrimaryKey {
		keys = append(keys, ref+"."+sqlq.Ident(k)+" AS "+colKey+strconv.Itoa(i+1))
	}
	var sb strings.Builder
	sb.WriteString("WITH ")
	switch kind {
	case Update:
		var join []string
		for i, k := range b.t.PrimaryKey {
			join = append(join, ref+"."+sqlq.Ident(k)+" = "+ctePre+"."+colKey+strconv.Itoa(i+1))
		}
		fmt.Fprintf(&sb, "%s AS (SELECT %s, %s AS %s FROM placeholder FOR UPDATE OF %s), ",
			ctePre, strings.Join(keys, ", "), image, colOld, ref)
		fmt.Fprintf(&sb, "%s AS (UPDATE placeholder SET placeholder = NULL FROM %s WHERE %s RETURNING %s, %s.%s AS %s, %s AS %s), ",
			cteWrite, ctePre, strings.Join(join, " AND "), strings.Join(keys, ", "), ctePre, colOld, colOld, image, colNew)
		changed := diff.ChangedSQL(colOld, colNew, b.t.Audit)
		fmt.Fprintf(&sb, "%s AS (%s FROM (SELECT %s, %s AS %s FROM %s) d WHERE d.%s <> '{}'::jsonb) ",
			cteEntries, b.entryInsert("update", diff.UpdateSQL("d."+colChanges)), b.keyList(), changed, colChanges, cteWrite, colChanges)
	case Insert:
		fmt.Fprintf(&sb, "%s AS (INSERT INTO placeholder DEFAULT VALUES RETURNING %s, %s AS %s), ", cteWrite, strings.Join(keys, ", "), image, colNew)
		fmt.Fprintf(&sb, "%s AS (%s FROM %s d) ", cteEntries, b.entryInsert("create", diff.CreateSQL("d."+colNew, b.t.Audit)), cteWrite)
	case Delete:
		fmt.Fprintf(&sb, "%s AS (DELETE FROM placeholder RETURNING %s, %s AS %s), ", cteWrite, strings.Join(keys, ", "), image, colOld)
		fmt.Fprintf(&sb, "%s AS (%s FROM %s d) ", cteEntries, b.entryInsert("delete", diff.DeleteSQL("d."+colOld, b.t.Audit)), cteWrite)
	}
	sb.WriteString(execTail)
	return sb.String()
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

func returningOf(n *pg_query.Node) []*pg_query.Node {
	switch s := n.Node.(type) {
	case *pg_query.Node_InsertStmt:
		return s.InsertStmt.ReturningList
	case *pg_query.Node_UpdateStmt:
		return s.UpdateStmt.ReturningList
	case *pg_query.Node_DeleteStmt:
		return s.DeleteStmt.ReturningList
	}
	return nil
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
