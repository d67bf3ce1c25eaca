package rewrite

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/catalog"
	"github.com/auditpgx/auditpgx/internal/parse"
	"github.com/auditpgx/auditpgx/internal/record"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// Target describes an audited table as the catalog and the registration
// define it.
type Target struct {
	// Table is what the catalog says: columns and their types (for
	// expanding *), keys, unique constraints, stored generated columns,
	// BEFORE UPDATE triggers (with neither, an UPDATE changes only the
	// columns it assigns, and only those are read and compared), and its
	// OID and relnatts as they were when described.
	catalog.Table
	// Registered is the table's name as registered: entries carry it.
	Registered string
	// Resolved is the OID the name written in the statement meant (the
	// table's, or a partition's or child's): the rewrite fails with
	// StaleMarker in its error if, when it runs, the name means another
	// table or the table gained columns since it was described.
	Resolved uint32
	// Audited is true when the table's rows are audited: create, update
	// and delete entries. Audit lists the audited and redacted columns.
	Audited bool
	Audit   diff.Columns
	// Link, when set, makes the table a many-to-many join table whose
	// rows are recorded as associate and disassociate entries.
	Link *Link
	// Cascades are the audited tables and join tables whose rows a DELETE
	// of this table's rows removes through ON DELETE CASCADE.
	Cascades []Cascade
}

// Cascade is a foreign key with ON DELETE CASCADE from an audited table or
// a join table to the written table: deleting a row deletes the rows that
// refer to it, and those deletions are recorded too.
type Cascade struct {
	// RefColumn is the written table's column the key refers to.
	RefColumn string
	// Schema, Rel and Column name the referring table and its key column.
	Schema, Rel, Column string
	// Link is set when the referring table is a join table.
	Link *Link
	// Audited is set when the referring table's rows are audited, with
	// Registered, PrimaryKey and Audit describing it.
	Audited    bool
	Registered string
	PrimaryKey []string
	Audit      diff.Columns
}

// audits reports whether a write of kind k to t produces entries.
func (t *Target) audits(k parse.Kind) bool {
	return t != nil && (t.Audited || t.Link != nil || ((k == parse.Delete || k == parse.Merge) && len(t.Cascades) > 0))
}

// Link describes a join table: each row links the owner object to the
// related object.
type Link struct {
	Field                       string
	OwnerTable, OwnerColumn     string
	RelatedTable, RelatedColumn string
}

// Catalog answers the rewriter's questions about tables.
type Catalog interface {
	// Target returns the audited table a reference means, or nil when the
	// table is not audited.
	Target(parse.TableName) (*Target, error)
	// Columns returns the columns of a table, for expanding a * over it.
	Columns(parse.TableName) ([]string, error)
}

// Options fix what the rewrite writes into every entry.
type Options struct {
	Entries     sqlq.Name
	Fingerprint string
	// Actor is the SQL expression of the acting user, e.g. "$3::text".
	Actor string
	// Context is the SQL expression of the entries' context, e.g.
	// "$4::jsonb"; empty when the entry table has no context column, and
	// the entries are written without it.
	Context string
	// ServerVersion is server_version_num, e.g. 150004.
	ServerVersion int
	// WAL, when set, sends the entries as logical decoding messages
	// (record.WAL.Emit) instead of inserting them into Entries; Context
	// must then be set.
	WAL *record.WAL
	// Suppressed writes, for each audited write of the statement, one
	// "suppressed" entry counting the rows it wrote, in place of an entry
	// per row (auditpgx.WithoutAudit). Rows a DELETE removes through ON
	// DELETE CASCADE belong to that statement and get no entries either.
	Suppressed bool
	// RowsForExec makes ExecSQL end in a zero-column SELECT of the written
	// rows, whose command tag carries the count, instead of a count(*) row.
	// Used in multi-statement strings, where only tags are seen.
	RowsForExec bool
}

// Rewrite is a statement turned into one that also inserts the entries of
// every audited write it makes.
type Rewrite struct {
	// ExecSQL is run for Exec. When ExecCounts is true it returns one row,
	// the number of rows the statement affected; otherwise its command tag
	// has the original's count, under the original's verb or another
	// (SELECT, or INSERT 0 for the entries' INSERT).
	ExecSQL    string
	ExecCounts bool
	// QuerySQL returns exactly the rows and columns of the original.
	QuerySQL string
	// RowsSQL returns rows whose count is the number of rows the original
	// wrote, and so is its command tag's: QuerySQL when the original
	// returns rows (Returns), else zero-column rows, one per written row.
	// A statement of a pgx batch, which may be read with Exec or Query,
	// is sent as RowsSQL.
	RowsSQL string
	Returns bool
	// NumParams is how many parameters the original takes.
	NumParams int
}

// UnsupportedError says why a write cannot be rewritten.
type UnsupportedError struct {
	Reason string
}

func (e *UnsupportedError) Error() string { return e.Reason }

func unsupported(format string, args ...any) error {
	return &UnsupportedError{Reason: fmt.Sprintf(format, args...)}
}

// Names the rewrite adds; the prefix, which user SQL may not contain, keeps
// them apart from anything a user writes.
const (
	reserved   = "__auditpgx"
	ctePre     = "__auditpgx_pre"
	cteWrite   = "__auditpgx_w"
	cteEntries = "__auditpgx_e"
	cteQuery   = "__auditpgx_q"
	colOld     = "__auditpgx_old"
	// colOldValue numbers the columns of an UPDATE's old values in pre.
	colOldValue = "__auditpgx_o"
	colNew      = "__auditpgx_new"
	colIns      = "__auditpgx_ins"
	colChanges  = "__auditpgx_ch"
	colKey      = "__auditpgx_k"
	colTable    = "__auditpgx_t"
	colResult   = "__auditpgx_c"
)

// StaleMarker appears in the error of a rewritten statement whose table
// gained columns after the rewrite was made, or whose written name has come
// to mean another table: the caller re-reads the catalog and rewrites
// again.
const StaleMarker = "auditpgx: table changed"

// ShapeChanged is the server's message, in English, of the error (SQLSTATE
// 42601) of a rewritten statement analysed again after its table gained a
// column: see write.staleGuard. The driver tells that error by its code and
// position, as the server translates messages under lc_messages.
const ShapeChanged = "each UNION query must have the same number of columns"

// Markers stand where generated SQL is spliced into the deparsed text.
const (
	markPre       = "__auditpgx_m_pre_"
	markJoin      = "__auditpgx_m_join_"
	markReturning = "__auditpgx_m_ret_"
	markProject   = "__auditpgx_m_proj_"
	markGate      = "__auditpgx_m_gate_"
	markEntries   = "__auditpgx_m_entries"
)

// Build turns the statement into its audited form: every INSERT, UPDATE
// and DELETE on an audited table, at the top level or in a WITH query of
// the top level, also inserts its entries. The statement must be a single
// one (the caller splits strings of several). Build consumes st: it edits
// its parse tree, so it may be called once.
func Build(st *parse.Statement, cat Catalog, opt Options) (*Rewrite, error) {
	if len(st.Tree().Stmts) != 1 {
		return nil, unsupported("a string of %d statements must be rewritten one statement at a time", len(st.Tree().Stmts))
	}
	if st.ReservedName() {
		return nil, unsupported("names beginning with %s are reserved for the rewrite", reserved)
	}
	if st.BadParam() {
		return nil, unsupported("$0 is not a valid parameter")
	}
	// The tree is edited in place: a Statement is rewritten once.
	root := st.Tree().Stmts[0].Stmt
	rw := &rewriter{cat: cat, opt: opt}

	with := withOf(root)
	if with == nil {
		return nil, unsupported("only SELECT, INSERT, UPDATE, DELETE and MERGE statements are audited")
	}
	userWith := *with
	*with = nil
	var ctes []*pg_query.Node
	if userWith != nil {
		rw.userCTEs = userWith.Ctes
	}
	for _, c := range rw.userCTEs {
		cte := c.GetCommonTableExpr()
		if cte == nil || !isWrite(cte.Ctequery) {
			ctes = append(ctes, c)
			continue
		}
		if len(*returningOf(cte.Ctequery)) == 0 && st.ReadsName(cte.Ctename) {
			// Such a reference is an error, or, before the WITH query in the
			// list, a table of that name; neither is worth the doubt.
			return nil, unsupported("the statement refers to the name of WITH query %q, which writes an audited table without RETURNING; rename one of them or add RETURNING", cte.Ctename)
		}
		w, err := rw.write(cte.Ctequery)
		if err != nil {
			return nil, err
		}
		if w == nil {
			ctes = append(ctes, c)
			continue
		}
		ctes = append(ctes, w.ctes()...)
		ctes = append(ctes, rw.projection(w, cte))
	}

	var top *write
	if isWrite(root) {
		w, err := rw.write(root)
		if err != nil {
			return nil, err
		}
		top = w
	}
	if top != nil {
		ctes = append(ctes, top.ctes()...)
	}
	if len(rw.writes) != auditedWrites(st, cat) {
		return nil, unsupported("a write to an audited table inside a subquery or a nested WITH query is not audited; move it to a WITH query of its own at the top of the statement")
	}
	if len(rw.writes) == 0 {
		return nil, unsupported("the statement writes no audited table")
	}
	recursive := userWith != nil && userWith.Recursive
	stmt := root
	wrapped := false
	if top == nil {
		ctes = append(ctes, cte(markEntries, selectOf(markerTarget(markEntries))))
		sel := root.GetSelectStmt()
		if opt.WAL != nil && sel == nil {
			// Its final query is a write of its own, which cannot read the
			// WITH query that sends the entries without changing what it
			// returns; unread, that query would not run.
			return nil, unsupported("with the WAL sink, a statement whose WITH query writes an audited table and whose last part writes a table that is not audited cannot be audited; end it with a SELECT, or register the table it writes last")
		}
		if opt.WAL != nil {
			// The emitting WITH query runs only when read: the user's
			// final SELECT becomes a WITH query, read by one that also
			// reads the entries'.
			// MATERIALIZED: inlined, a final query that is false
			// (WHERE false) would fold the reading of the entries' query
			// away with it.
			ctes = append(ctes, materialized(cteQuery, sel))
			stmt = &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: selectOf()}}
			wrapped = true
		}
	} else {
		// The entries' WITH query and the final query are appended to the
		// text rather than deparsed, which costs by the node: an empty
		// SELECT holds their place.
		stmt = &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: selectOf()}}
	}
	*withOf(stmt) = &pg_query.WithClause{Ctes: ctes, Recursive: recursive}

	tree := &pg_query.ParseResult{Version: st.Tree().Version, Stmts: []*pg_query.RawStmt{{Stmt: stmt}}}
	sql, err := parse.Deparse(tree)
	if err != nil {
		return nil, fmt.Errorf("auditpgx internal error: deparse: %w", err)
	}
	sql, entries, err := rw.splice(sql, top == nil)
	if err != nil {
		return nil, err
	}
	insert := entriesQuery(entries)
	out := &Rewrite{NumParams: st.NumParams}
	if top == nil {
		if wrapped {
			head, ok := strings.CutSuffix(sql, " SELECT")
			if !ok {
				return nil, fmt.Errorf("auditpgx internal error: unexpected deparsed tail")
			}
			sql = head + " SELECT * FROM " + cteQuery + " WHERE " + record.EmitGate(cteEntries, true)
		}
		// The statement's own last part: its rows are the original's.
		out.ExecSQL, out.QuerySQL, out.RowsSQL, out.Returns = sql, sql, sql, true
		return out, nil
	}
	head, ok := strings.CutSuffix(sql, " SELECT")
	if !ok {
		return nil, fmt.Errorf("auditpgx internal error: unexpected deparsed tail")
	}
	project, returns := top.finalProjection()
	out.Returns = returns
	if opt.WAL == nil {
		if returns {
			out.QuerySQL = head + ", " + insert + " " + project
			out.RowsSQL = out.QuerySQL
		} else {
			out.QuerySQL = head + ", " + insert + " SELECT FROM " + top.name() + " WHERE false"
			out.RowsSQL = head + ", " + insert + " SELECT FROM " + top.name()
		}
		switch {
		case opt.RowsForExec:
			out.ExecSQL = head + ", " + insert + " SELECT FROM " + top.name()
		case rw.entryPerRow(top):
			// The entries' INSERT is the statement: its command tag,
			// INSERT 0 n, counts the original's rows, with no count to
			// read.
			out.ExecSQL = head + " " + entries
		case rw.pinned(top):
			// At most a row or so: its zero-column row costs less to read
			// and discard than a count(*) row does to read, and the tag,
			// SELECT n, carries the count.
			out.ExecSQL = head + ", " + insert + " SELECT FROM " + top.name()
		default:
			out.ExecSQL, out.ExecCounts = head+", "+insert+" SELECT count(*) FROM "+top.name(), true
		}
		return out, nil
	}
	// With the WAL sink, the final query reads the emitting WITH query, or
	// it would not run: after the write, as a second branch of UNION ALL
	// that returns no row, so that the write runs first, as with the table
	// sink, whose INSERT runs when the final query is done.
	emitted := " UNION ALL SELECT FROM " + cteEntries + " WHERE " + record.EmitGate(cteEntries, false)
	if returns {
		// The same projection again, so that the columns keep their types
		// and modifiers (a NULL would lose numeric(10,2)'s), read after
		// the emitting query, lateral to it, returning nothing.
		out.QuerySQL = head + ", " + insert + " " + project + " UNION ALL SELECT " + cteQuery + ".* FROM " + cteEntries +
			", LATERAL (" + project + " WHERE " + record.EmitGate(cteEntries, false) + ") AS " + cteQuery
		out.RowsSQL = out.QuerySQL
	} else {
		out.QuerySQL = head + ", " + insert + " SELECT FROM " + top.name() + " WHERE false" + emitted
		out.RowsSQL = head + ", " + insert + " SELECT FROM " + top.name() + emitted
	}
	if opt.RowsForExec {
		out.ExecSQL = head + ", " + insert + " SELECT FROM " + top.name() + emitted
	} else {
		out.ExecSQL, out.ExecCounts = head+", "+insert+" SELECT count(*) FROM (SELECT FROM "+top.name()+emitted+") AS "+cteQuery, true
	}
	return out, nil
}

// rewriter holds the state of one rewrite.
type rewriter struct {
	cat      Catalog
	opt      Options
	userCTEs []*pg_query.Node
	writes   []*write
}

// auditedWrites counts the writes to audited tables anywhere in the
// statement.
func auditedWrites(st *parse.Statement, cat Catalog) int {
	n := 0
	for _, w := range st.Writes {
		if w.Kind != parse.Insert && w.Kind != parse.Update && w.Kind != parse.Delete && w.Kind != parse.Merge {
			continue
		}
		if t, err := cat.Target(w.Table); err == nil && t.audits(w.Kind) {
			n++
		}
	}
	return n
}

func returningOf(n *pg_query.Node) *[]*pg_query.Node {
	switch s := n.Node.(type) {
	case *pg_query.Node_InsertStmt:
		return &s.InsertStmt.ReturningList
	case *pg_query.Node_UpdateStmt:
		return &s.UpdateStmt.ReturningList
	case *pg_query.Node_DeleteStmt:
		return &s.DeleteStmt.ReturningList
	case *pg_query.Node_MergeStmt:
		return &s.MergeStmt.ReturningList
	}
	return nil
}

func isWrite(n *pg_query.Node) bool {
	switch n.Node.(type) {
	case *pg_query.Node_InsertStmt, *pg_query.Node_UpdateStmt, *pg_query.Node_DeleteStmt, *pg_query.Node_MergeStmt:
		return true
	}
	return false
}

// withOf returns the WITH clause slot of a statement that can have one.
func withOf(n *pg_query.Node) **pg_query.WithClause {
	switch s := n.Node.(type) {
	case *pg_query.Node_SelectStmt:
		return &s.SelectStmt.WithClause
	case *pg_query.Node_InsertStmt:
		return &s.InsertStmt.WithClause
	case *pg_query.Node_UpdateStmt:
		return &s.UpdateStmt.WithClause
	case *pg_query.Node_DeleteStmt:
		return &s.DeleteStmt.WithClause
	case *pg_query.Node_MergeStmt:
		return &s.MergeStmt.WithClause
	}
	return nil
}

// marker is a string constant, which the deparser prints as 'name': one
// protobuf node fewer than a column reference, and the C deparser's cost
// grows by the node.
func marker(name string) *pg_query.Node {
	return &pg_query.Node{Node: &pg_query.Node_AConst{AConst: &pg_query.A_Const{
		Val: &pg_query.A_Const_Sval{Sval: &pg_query.String{Sval: name}}, Location: -1}}}
}

func markerTarget(name string) *pg_query.Node {
	return pg_query.MakeResTargetNodeWithVal(marker(name), -1)
}

func selectOf(targets ...*pg_query.Node) *pg_query.SelectStmt {
	return &pg_query.SelectStmt{
		TargetList:  targets,
		LimitOption: pg_query.LimitOption_LIMIT_OPTION_DEFAULT,
		Op:          pg_query.SetOperation_SETOP_NONE,
	}
}

func cte(name string, query *pg_query.SelectStmt) *pg_query.Node {
	return &pg_query.Node{Node: &pg_query.Node_CommonTableExpr{CommonTableExpr: &pg_query.CommonTableExpr{
		Ctename:  name,
		Ctequery: &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: query}},
	}}}
}

func and(a, b *pg_query.Node) *pg_query.Node {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return pg_query.MakeBoolExprNode(pg_query.BoolExprType_AND_EXPR, []*pg_query.Node{a, b}, -1)
}

// pinned reports whether top, the statement's one audited write, is an
// UPDATE or DELETE whose WHERE sets every primary key column equal to a
// parameter or a constant, or an INSERT of one VALUES row: it writes at
// most one row (a few with inheritance children sharing a key value). Its
// exec form may then end in a zero-column SELECT of the written rows, whose
// command tag counts them, without the Go heap that reading one such row
// per row of a large write costs. Nothing but that cost depends on it.
func (rw *rewriter) pinned(top *write) bool {
	if len(rw.writes) != 1 || rw.writes[0] != top || top.projected || top.merge != nil || len(top.t.PrimaryKey) == 0 {
		return false
	}
	var where *pg_query.Node
	switch s := top.node.Node.(type) {
	case *pg_query.Node_InsertStmt:
		sel := s.InsertStmt.SelectStmt.GetSelectStmt()
		return sel != nil && len(sel.ValuesLists) == 1 && sel.WithClause == nil
	case *pg_query.Node_UpdateStmt:
		where = top.where // before the rewrite joined it to pre
	case *pg_query.Node_DeleteStmt:
		where = s.DeleteStmt.WhereClause
	default:
		return false
	}
	keys := map[string]bool{}
	var conjuncts func(n *pg_query.Node)
	conjuncts = func(n *pg_query.Node) {
		if b := n.GetBoolExpr(); b != nil && b.Boolop == pg_query.BoolExprType_AND_EXPR {
			for _, a := range b.Args {
				conjuncts(a)
			}
			return
		}
		e := n.GetAExpr()
		if e == nil || e.Kind != pg_query.A_Expr_Kind_AEXPR_OP || len(e.Name) != 1 || e.Name[0].GetString_().GetSval() != "=" {
			return
		}
		for _, side := range [][2]*pg_query.Node{{e.Lexpr, e.Rexpr}, {e.Rexpr, e.Lexpr}} {
			if col := top.ownColumn(side[0]); col != "" && fixedValue(side[1]) {
				keys[col] = true
			}
		}
	}
	if where != nil {
		conjuncts(where)
	}
	for _, k := range top.t.PrimaryKey {
		if !keys[k] {
			return false
		}
	}
	return true
}

// ownColumn returns the name of the column of the written table that n
// refers to, bare or qualified by the table's name in the statement, or
// "".
func (w *write) ownColumn(n *pg_query.Node) string {
	ref := n.GetColumnRef()
	if ref == nil {
		return ""
	}
	var names []string
	for _, f := range ref.Fields {
		s := f.GetString_()
		if s == nil {
			return "" // a star
		}
		names = append(names, s.Sval)
	}
	switch {
	case len(names) == 1:
		return names[0]
	case len(names) == 2 && names[0] == w.ref:
		return names[1]
	}
	return ""
}

// fixedValue reports whether n is a parameter or a constant, cast or not.
func fixedValue(n *pg_query.Node) bool {
	if n == nil {
		return false
	}
	if c := n.GetTypeCast(); c != nil {
		return fixedValue(c.Arg)
	}
	return n.GetParamRef() != nil || n.GetAConst() != nil && !n.GetAConst().Isnull
}

// entryPerRow reports whether the statement's entries are one per row that
// its one audited write, top, writes, so that their count is its row
// count: an INSERT (ON CONFLICT DO NOTHING included, DO UPDATE not) or a
// DELETE without cascades into an audited table that is not a link table,
// written under its own entries rather than a suppressed one, and no other
// audited write. A DELETE's exec form then returns INSERT 0 n, whose verb
// the pgx front puts back.
func (rw *rewriter) entryPerRow(top *write) bool {
	perRow := top.kind == parse.Insert && top.upsert == nil && !top.onConflictUpdate ||
		top.kind == parse.Delete && len(top.t.Cascades) == 0
	return perRow && len(rw.writes) == 1 && rw.writes[0] == top && !top.projected &&
		top.merge == nil && top.t.Audited && top.t.Link == nil && !rw.opt.Suppressed && rw.opt.WAL == nil
}
