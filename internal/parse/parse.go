// Package parse is the first room of auditpgx's pipeline and its door to
// PostgreSQL's grammar: it parses SQL with pg_query (through a generated
// codec, faster than protobuf's reflection), and reports what a statement
// writes, creates, and changes in the session. Package rewrite edits the
// trees it returns; the cgo of pg_query is built for these two packages
// only.
package parse

import (
	"errors"
	"fmt"
	"strings"

	"github.com/auditpgx/auditpgx/internal/parse/internal/codec"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/pganalyze/pg_query_go/v6/parser"
	"google.golang.org/protobuf/proto"
)

// Guards that keep hostile input away from the C parser, whose recursion is
// not bounded by anything but the thread's stack.
const (
	// MaxStatementBytes is the longest SQL text that is parsed.
	MaxStatementBytes = 16 << 20
	// MaxNesting is the deepest nesting of parentheses and brackets parsed.
	MaxNesting = 1000
)

// ErrTooComplex is returned for SQL beyond MaxStatementBytes or MaxNesting.
var ErrTooComplex = errors.New("statement too large or too deeply nested to parse safely")

// Kind is what a statement does to a table.
type Kind int

// The kinds of write a statement can hold.
const (
	Insert Kind = iota + 1
	Update
	Delete
	Merge
	Truncate
	CopyFrom
	Alter // ALTER TABLE, RENAME and other DDL that changes the table
	Drop
)

var kindNames = [...]string{"", "INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE", "COPY FROM", "ALTER", "DROP"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// TableName is a table reference as written: Schema is empty when the
// reference is unqualified. Names are as PostgreSQL folds them ("Users"
// stays Users, users and USERS are users).
type TableName struct {
	Schema string
	Name   string
}

func (t TableName) String() string {
	if t.Schema == "" {
		return t.Name
	}
	return t.Schema + "." + t.Name
}

// Write is one table a statement modifies.
type Write struct {
	Kind  Kind
	Table TableName
	// TopLevel is true when the write is the statement itself rather than
	// one nested in a CTE, a PREPARE, an EXPLAIN or the like.
	TopLevel bool
	// CurrentOf is true for UPDATE/DELETE ... WHERE CURRENT OF.
	CurrentOf bool
	// OnConflictUpdate is true for INSERT ... ON CONFLICT DO UPDATE.
	OnConflictUpdate bool
	// Cascade is true for TRUNCATE ... CASCADE.
	Cascade bool
	// Assigns lists the columns an UPDATE's SET assigns.
	Assigns []string
}

// Statement is a parsed SQL string, possibly of several statements.
type Statement struct {
	SQL string
	// Writes lists every table modified anywhere in the text.
	Writes []Write
	// Count is the number of statements in the text.
	Count int
	// Tag is the command tag of the last statement, before its row
	// count, when it writes: "INSERT 0", "UPDATE", "DELETE" or "MERGE".
	Tag string
	// NumParams is the highest $n referenced.
	NumParams int
	// badParam is set by a $0, which the deparser cannot render.
	badParam bool
	// reservedName is set by an identifier with the rewrite's prefix.
	reservedName bool
	// cteNames counts the WITH query names, for resolving references.
	cteNames map[string]int
	// relNames counts the unqualified relation names referenced, write
	// targets included.
	relNames map[string]int
	// SetsSearchPath is true when the text may change how the session
	// resolves unqualified names: SET or RESET of search_path or of the
	// role, DISCARD, or a call of set_config.
	SetsSearchPath bool
	// ChangesCatalog is true when the text may create, drop, rename or
	// alter a relation, or attach one to another: what a name means, or
	// what a table holds, may differ after it has run.
	ChangesCatalog bool
	// EndsTransaction is true for COMMIT, ROLLBACK, ROLLBACK TO SAVEPOINT
	// and their kin, which make a transaction's DDL visible or undo it.
	EndsTransaction bool
	// CreatesTemp is true when the text creates a temporary relation,
	// which shadows other tables of that name in this session only.
	CreatesTemp bool
	// Fills lists the tables the text creates with rows in them (CREATE
	// TABLE ... AS, SELECT ... INTO): rows written without any INSERT.
	Fills []TableName

	tree *pg_query.ParseResult
}

// Parse parses sql and lists the tables it writes. It refuses, before
// parsing, text beyond MaxStatementBytes or MaxNesting.
func Parse(sql string) (*Statement, error) {
	if err := guard(sql); err != nil {
		return nil, err
	}
	tree, err := codec.Parse(sql)
	if err != nil {
		return nil, syntaxError(err)
	}
	st := &Statement{SQL: sql, Count: len(tree.Stmts), tree: tree}
	for _, raw := range tree.Stmts {
		st.collect(raw.Stmt)
	}
	if n := len(tree.Stmts); n > 0 {
		st.Tag = commandTag(tree.Stmts[n-1].Stmt)
	}
	return st, nil
}

// commandTag is the start of the command tag PostgreSQL returns for a
// statement that writes, before its row count: "INSERT 0", "UPDATE",
// "DELETE", "MERGE"; "" for any other.
func commandTag(n *pg_query.Node) string {
	switch {
	case n.GetInsertStmt() != nil:
		return "INSERT 0"
	case n.GetUpdateStmt() != nil:
		return "UPDATE"
	case n.GetDeleteStmt() != nil:
		return "DELETE"
	case n.GetMergeStmt() != nil:
		return "MERGE"
	}
	return ""
}

// SyntaxError reports that pg_query could not parse a statement. It keeps
// only the position: the parser's message quotes the SQL text, which may
// hold values that must not reach a log.
type SyntaxError struct {
	// Position is the 1-based character position of the error, 0 if unknown.
	Position int
}

func (e *SyntaxError) Error() string {
	if e.Position > 0 {
		return fmt.Sprintf("syntax error at position %d", e.Position)
	}
	return "syntax error"
}

func syntaxError(err error) error {
	var pe *pgparser.Error
	if errors.As(err, &pe) {
		return &SyntaxError{Position: pe.Cursorpos}
	}
	return &SyntaxError{}
}

// MaxChain is the most operators that may nest without brackets along one
// path of the expression. Binary operators, casts, COLLATE, IS, NOT and set
// operations each nest one level deeper without any bracket, and the C
// parser recurses once per level: about 24,000 of them crash it.
const MaxChain = 5000

// guard bounds the length, the bracket depth and the operator chains of
// sql. It reads tokens from PostgreSQL's own lexer, which does not recurse,
// so quoting, escapes, dollar quotes and nested comments count as they do
// for the server. A comma or semicolon ends a chain at its own bracket
// depth; the chains of the enclosing depths still count. AND and OR lists
// and comparisons do not nest, so they do not count. Text the lexer
// rejects is left to the parser, which rejects it without recursing.
func guard(sql string) error {
	if len(sql) > MaxStatementBytes {
		return fmt.Errorf("%w: %d bytes (limit %d)", ErrTooComplex, len(sql), MaxStatementBytes)
	}
	if len(sql) < 2*MaxChain && strings.Count(sql, "(")+strings.Count(sql, "[") <= MaxNesting {
		// Every nesting operator takes at least two bytes with its operand,
		// so short text cannot hold a chain too long: skip the lexer.
		return nil
	}
	scan, err := pg_query.Scan(sql)
	if err != nil {
		return nil
	}
	chains := []int{0} // per bracket depth
	total := 0         // along the current path
	for _, tok := range scan.Tokens {
		switch t := tok.Token; {
		case t == pg_query.Token_ASCII_40 || t == pg_query.Token_ASCII_91:
			chains = append(chains, 0)
			if len(chains)-1 > MaxNesting {
				return fmt.Errorf("%w: nesting depth over %d", ErrTooComplex, MaxNesting)
			}
		case t == pg_query.Token_ASCII_41 || t == pg_query.Token_ASCII_93:
			if len(chains) > 1 {
				total -= chains[len(chains)-1]
				chains = chains[:len(chains)-1]
			}
		case t == pg_query.Token_ASCII_44 || t == pg_query.Token_ASCII_59:
			total -= chains[len(chains)-1]
			chains[len(chains)-1] = 0
		case nests[t]:
			chains[len(chains)-1]++
			total++
			if total > MaxChain {
				return fmt.Errorf("%w: a chain of more than %d operators", ErrTooComplex, MaxChain)
			}
		}
	}
	return nil
}

// nests lists the tokens that put their operands one level deeper.
var nests = map[pg_query.Token]bool{
	pg_query.Token_ASCII_43: true, pg_query.Token_ASCII_45: true, pg_query.Token_ASCII_42: true,
	pg_query.Token_ASCII_47: true, pg_query.Token_ASCII_37: true, pg_query.Token_ASCII_94: true,
	pg_query.Token_Op: true, pg_query.Token_TYPECAST: true, pg_query.Token_COLLATE: true,
	pg_query.Token_IS: true, pg_query.Token_NOT: true, pg_query.Token_NOT_LA: true,
	pg_query.Token_UNION: true, pg_query.Token_EXCEPT: true, pg_query.Token_INTERSECT: true,
	pg_query.Token_AT: true,
}

// collect walks one top-level statement and records its writes and params.
func (st *Statement) collect(top *pg_query.Node) {
	topMsg := nodeMessage(top)
	codec.Walk(top, func(node proto.Message) {
		isTop := topMsg != nil && node == topMsg
		switch n := node.(type) {
		case *pg_query.ParamRef:
			if int(n.Number) > st.NumParams {
				st.NumParams = int(n.Number)
			}
			if n.Number < 1 {
				st.badParam = true
			}
		case *pg_query.RangeVar:
			st.noteName(n.Schemaname, n.Relname)
			if n.Schemaname == "" {
				if st.relNames == nil {
					st.relNames = map[string]int{}
				}
				st.relNames[n.Relname]++
			}
		case *pg_query.Alias:
			st.noteName(n.Aliasname)
		case *pg_query.ResTarget:
			st.noteName(n.Name)
		case *pg_query.ColumnRef:
			for _, f := range n.Fields {
				st.noteName(f.GetString_().GetSval())
			}
		case *pg_query.CommonTableExpr:
			st.noteName(n.Ctename)
			if st.cteNames == nil {
				st.cteNames = map[string]int{}
			}
			st.cteNames[n.Ctename]++
		case *pg_query.InsertStmt:
			st.add(Insert, n.Relation, isTop, func(w *Write) {
				w.OnConflictUpdate = n.OnConflictClause != nil &&
					n.OnConflictClause.Action == pg_query.OnConflictAction_ONCONFLICT_UPDATE
			})
		case *pg_query.UpdateStmt:
			st.add(Update, n.Relation, isTop, func(w *Write) {
				w.CurrentOf = IsCurrentOf(n.WhereClause)
				for _, item := range n.TargetList {
					if rt := item.GetResTarget(); rt != nil {
						w.Assigns = append(w.Assigns, rt.Name)
					}
				}
			})
		case *pg_query.DeleteStmt:
			st.add(Delete, n.Relation, isTop, func(w *Write) { w.CurrentOf = IsCurrentOf(n.WhereClause) })
		case *pg_query.MergeStmt:
			st.add(Merge, n.Relation, isTop, nil)
		case *pg_query.TruncateStmt:
			for _, r := range n.Relations {
				st.add(Truncate, r.GetRangeVar(), isTop, func(w *Write) {
					w.Cascade = n.Behavior == pg_query.DropBehavior_DROP_CASCADE
				})
			}
		case *pg_query.CopyStmt:
			if n.IsFrom {
				st.add(CopyFrom, n.Relation, isTop, nil)
			}
		case *pg_query.AlterTableStmt:
			st.ChangesCatalog = true
			st.add(Alter, n.Relation, isTop, nil)
		case *pg_query.CreateStmt:
			st.creates(n.Relation, false)
			// A new partition or child changes its parent's family.
			for _, parent := range n.InhRelations {
				st.add(Alter, parent.GetRangeVar(), isTop, nil)
			}
		case *pg_query.IntoClause:
			// CREATE TABLE ... AS, CREATE MATERIALIZED VIEW, SELECT ... INTO.
			st.creates(n.Rel, !n.SkipData)
		case *pg_query.ViewStmt:
			st.creates(n.View, false)
		case *pg_query.RuleStmt, *pg_query.AlterObjectSchemaStmt, *pg_query.CreateSchemaStmt,
			*pg_query.DoStmt, *pg_query.CreateTrigStmt, *pg_query.CreateForeignTableStmt:
			st.ChangesCatalog = true
		case *pg_query.VariableSetStmt:
			switch strings.ToLower(n.Name) {
			case "search_path", "role", "session_authorization", "":
				st.SetsSearchPath = true
			}
			if n.Kind == pg_query.VariableSetKind_VAR_RESET_ALL {
				st.SetsSearchPath = true
			}
		case *pg_query.TransactionStmt:
			switch n.Kind {
			case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN, pg_query.TransactionStmtKind_TRANS_STMT_START,
				pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT, pg_query.TransactionStmtKind_TRANS_STMT_RELEASE:
			default:
				st.EndsTransaction = true
			}
		case *pg_query.DiscardStmt:
			st.SetsSearchPath = true
		case *pg_query.FuncCall:
			if len(n.Funcname) > 0 && n.Funcname[len(n.Funcname)-1].GetString_().GetSval() == "set_config" {
				st.SetsSearchPath = true
			}
		case *pg_query.RenameStmt:
			st.ChangesCatalog = true
			st.add(Alter, n.Relation, isTop, nil)
		case *pg_query.DropStmt:
			st.ChangesCatalog = true
			if n.RemoveType == pg_query.ObjectType_OBJECT_TABLE {
				for _, obj := range n.Objects {
					if t, ok := listName(obj); ok {
						st.Writes = append(st.Writes, Write{Kind: Drop, Table: t, TopLevel: isTop})
					}
				}
			}
		}
	})
}

// creates notes a relation the text creates, and filled when it is created
// with rows.
func (st *Statement) creates(rv *pg_query.RangeVar, filled bool) {
	st.ChangesCatalog = true
	if rv == nil {
		return
	}
	if rv.Relpersistence == "t" {
		st.CreatesTemp = true
	}
	if filled {
		st.Fills = append(st.Fills, TableName{Schema: rv.Schemaname, Name: rv.Relname})
	}
}

// noteName flags identifiers that begin with the rewrite's prefix.
func (st *Statement) noteName(names ...string) {
	for _, n := range names {
		if strings.HasPrefix(strings.ToLower(n), "__auditpgx") {
			st.reservedName = true
		}
	}
}

// Tree returns the statement's parse tree, which package rewrite edits in
// place: a Statement is rewritten once.
func (st *Statement) Tree() *pg_query.ParseResult { return st.tree }

// BadParam reports a $0 in the text, which the deparser cannot render.
func (st *Statement) BadParam() bool { return st.badParam }

// ReservedName reports an identifier beginning with __auditpgx, the prefix
// of the names the rewrite adds.
func (st *Statement) ReservedName() bool { return st.reservedName }

// ReadsName reports whether an unqualified name is referenced other than
// as the target of a write.
func (st *Statement) ReadsName(name string) bool {
	n := st.relNames[name]
	for _, w := range st.Writes {
		if w.Table.Schema == "" && w.Table.Name == name {
			n--
		}
	}
	return n > 0
}

func (st *Statement) add(k Kind, rv *pg_query.RangeVar, top bool, more func(*Write)) {
	if rv == nil {
		return
	}
	w := Write{Kind: k, Table: TableName{Schema: rv.Schemaname, Name: rv.Relname}, TopLevel: top}
	if more != nil {
		more(&w)
	}
	st.Writes = append(st.Writes, w)
}

func IsCurrentOf(n *pg_query.Node) bool {
	return n != nil && n.GetCurrentOfExpr() != nil
}

// listName reads a DROP TABLE object name, a list of String nodes.
func listName(n *pg_query.Node) (TableName, bool) {
	l := n.GetList()
	if l == nil {
		return TableName{}, false
	}
	var parts []string
	for _, item := range l.Items {
		parts = append(parts, item.GetString_().GetSval())
	}
	switch len(parts) {
	case 1:
		return TableName{Name: parts[0]}, true
	case 2:
		return TableName{Schema: parts[0], Name: parts[1]}, true
	case 3:
		return TableName{Schema: parts[1], Name: parts[2]}, true
	}
	return TableName{}, false
}

// nodeMessage returns the concrete statement inside a Node wrapper.
func nodeMessage(n *pg_query.Node) any {
	if n == nil {
		return nil
	}
	return codec.NodeValue(n)
}

// Fingerprint returns pg_query's fingerprint of sql: equal for statements
// that differ only in constants and formatting.
func Fingerprint(sql string) (string, error) {
	return pg_query.Fingerprint(sql)
}

// Split returns one Statement for each statement of a multi-statement
// string, each with its own text.
func (st *Statement) Split() []*Statement {
	out := make([]*Statement, 0, len(st.tree.Stmts))
	for _, raw := range st.tree.Stmts {
		start := int(raw.StmtLocation)
		end := len(st.SQL)
		if raw.StmtLen > 0 {
			end = start + int(raw.StmtLen)
		}
		sub := &Statement{
			SQL:   strings.TrimSpace(st.SQL[start:end]),
			Count: 1,
			tree:  &pg_query.ParseResult{Version: st.tree.Version, Stmts: []*pg_query.RawStmt{raw}},
		}
		sub.collect(raw.Stmt)
		out = append(out, sub)
	}
	return out
}

// Identifiers returns the identifiers and keywords of sql as PostgreSQL
// folds them: unquoted words lower-cased, quoted ones as written. It uses
// the lexer only, so it works on text the parser rejects; ok is false when
// even the lexer rejects the text.
func Identifiers(sql string) (names map[string]bool, ok bool) {
	if len(sql) > MaxStatementBytes {
		return nil, false
	}
	scan, err := pg_query.Scan(sql)
	if err != nil {
		return nil, false
	}
	names = map[string]bool{}
	for _, tok := range scan.Tokens {
		if tok.Start < 0 || int(tok.End) > len(sql) || tok.Start >= tok.End {
			continue
		}
		text := sql[tok.Start:tok.End]
		switch {
		case tok.Token == pg_query.Token_IDENT && strings.HasPrefix(text, `"`):
			names[strings.ReplaceAll(strings.Trim(text, `"`), `""`, `"`)] = true
		case tok.Token == pg_query.Token_IDENT || tok.KeywordKind != pg_query.KeywordKind_NO_KEYWORD:
			names[strings.ToLower(text)] = true
		}
	}
	return names, true
}

// Deparse prints a parse tree as SQL, as pg_query.Deparse does.
func Deparse(tree *pg_query.ParseResult) (string, error) { return codec.Deparse(tree) }
