// Package pgxsuite runs pgx's own database/sql test suite (the external test
// package of github.com/jackc/pgx/v5/stdlib) through auditpgx.
//
// Nothing of pgx is copied into this repository: Generate reads the test
// files from the module cache, for the pgx version in go.mod, rewrites every
// way they open a database so that it goes through auditpgx (Rewrites),
// adds the glue testdata/zz_auditpgx_test.go, and writes the result as a
// module of its own that replaces github.com/auditpgx/auditpgx with the
// repository.
//
// TestPgxStdlibSuite runs that module on pgtest's server in four
// registration modes, with the instrumentation of Instrument counting row
// changes, and holds the entry table to them (Verify). Environment:
//
//	AUDITPGX_PGXSUITE_MODES  run only these modes (none,shared,perdb,sharedpk)
//	AUDITPGX_PGXSUITE_DIR    generate the module here and keep it
//
// A kept module runs by hand on a migrated database:
//
//	PGX_TEST_DATABASE=postgres://... AUDITPGX_SUITE_MODE=shared \
//	AUDITPGX_SUITE_TABLES=t,docs,defer_test GOFLAGS=-mod=mod GOWORK=off go test .
package pgxsuite

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

const (
	PgxModule   = "github.com/jackc/pgx/v5"
	pgxStdlib   = PgxModule + "/stdlib"
	databaseSQL = "database/sql"
	ownModule   = "github.com/auditpgx/auditpgx"
)

// GluePrefix starts every identifier the glue defines; pgx's files must not
// use it.
const GluePrefix = "auditpgxsuite"

// Kind is what a Rewrite does with the package-level name it matches.
type Kind int

const (
	// Func replaces every reference to Pkg.Name with the glue function To,
	// of the same signature.
	Func Kind = iota
	// Assert replaces x.(*Pkg.Name) with To(x). A comma-ok assertion or a
	// type switch case would not compile so: they fail the adaptation.
	Assert
	// Forbid fails the adaptation: Pkg.Name opens a database or reaches
	// pgx's driver in a way with no mapping, which would bypass auditpgx.
	Forbid
)

// Rewrite maps one package-level name of pgx's test files to auditpgx.
type Rewrite struct {
	Kind Kind
	Pkg  string // import path
	Name string
	To   string // glue identifier (Func, Assert)
	Why  string
}

func (r Rewrite) String() string { return path.Base(r.Pkg) + "." + r.Name }

// Rewrites maps pgx's ways of opening a database to the glue. When pgx's
// tests gain a new one, a Forbid line (or the compiler) fails the
// adaptation until a line is added here.
var Rewrites = []Rewrite{
	{Func, databaseSQL, "Open", GluePrefix + "SQLOpen", `sql.Open("pgx" or "pgx/v5", dsn) opens driver "auditpgx"`},
	{Func, pgxStdlib, "OpenDB", GluePrefix + "OpenDB", "auditpgx.OpenDB, or NewConnectorFromConfig with WithStdlibOptions"},
	{Func, pgxStdlib, "OpenDBFromPool", GluePrefix + "OpenDBFromPool", "auditpgx.OpenDBFromPool, or NewConnectorFromPool with WithStdlibOptions"},
	{Assert, pgxStdlib, "Conn", GluePrefix + "StdlibConn", "conn.Raw hands over auditpgx's wrapper: auditpgx.StdlibConn"},
	{Forbid, pgxStdlib, "GetConnector", "", "a stdlib connector bypasses auditpgx"},
	{Forbid, pgxStdlib, "GetPoolConnector", "", "a stdlib connector bypasses auditpgx"},
	{Forbid, pgxStdlib, "GetDefaultDriver", "", "pgx's driver bypasses auditpgx"},
	{Forbid, databaseSQL, "OpenDB", "", "sql.OpenDB of a pgx connector bypasses auditpgx"},
	{Forbid, databaseSQL, "Register", "", "registering a driver name"},
}

//go:embed testdata/zz_auditpgx_test.go
var glue []byte

// Adapted is one adapted file.
type Adapted struct {
	Name    string
	Source  []byte
	Applied map[string]int // Rewrite.String() → places rewritten
	// Writes are the tables the SQL in the file's string literals writes,
	// by pattern: to notice pgx writing a table the modes do not register.
	Writes []string
}

// AdaptFile rewrites one test file of pgx's stdlib package.
func AdaptFile(name string, src []byte) (*Adapted, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	locals := map[string]string{} // import path → local name
	for _, is := range f.Imports {
		p, _ := strconv.Unquote(is.Path.Value)
		locals[p] = importName(is)
	}
	ad := &Adapted{Name: name, Applied: map[string]int{}}
	type edit struct {
		start, end int
		text       string
	}
	var edits []edit
	var problems []string
	off := func(p token.Pos) int { return fset.Position(p).Offset }
	problem := func(p token.Pos, format string, args ...any) {
		problems = append(problems, fset.Position(p).String()+": "+fmt.Sprintf(format, args...))
	}
	match := func(e ast.Expr, kind Kind) (Rewrite, bool) {
		if kind == Assert { // the type of x.(*T)
			star, ok := e.(*ast.StarExpr)
			if !ok {
				return Rewrite{}, false
			}
			e = star.X
		}
		sel, ok := e.(*ast.SelectorExpr)
		if !ok {
			return Rewrite{}, false
		}
		id, ok := sel.X.(*ast.Ident)
		if !ok || id.Obj != nil { // id.Obj != nil: a local variable, not a package
			return Rewrite{}, false
		}
		for _, r := range Rewrites {
			if r.Kind == kind && r.Name == sel.Sel.Name && locals[r.Pkg] == id.Name {
				return r, true
			}
		}
		return Rewrite{}, false
	}
	commaOK := map[ast.Expr]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			if len(n.Lhs) == 2 && len(n.Rhs) == 1 {
				commaOK[ast.Unparen(n.Rhs[0])] = true
			}
		case *ast.ValueSpec:
			if len(n.Names) == 2 && len(n.Values) == 1 {
				commaOK[ast.Unparen(n.Values[0])] = true
			}
		case *ast.TypeAssertExpr:
			if r, ok := match(n.Type, Assert); ok {
				if commaOK[n] {
					problem(n.Pos(), "comma-ok assertion to *%s: add a rewrite for it", r)
					return true
				}
				x := string(src[off(n.X.Pos()):off(n.X.End())])
				edits = append(edits, edit{off(n.Pos()), off(n.End()), r.To + "(" + x + ")"})
				ad.Applied[r.String()]++
				return false // x is copied as written: nothing in it may need rewriting
			}
		case *ast.TypeSwitchStmt:
			for _, c := range n.Body.List {
				for _, e := range c.(*ast.CaseClause).List {
					if r, ok := match(e, Assert); ok {
						problem(e.Pos(), "type switch case *%s: add a rewrite for it", r)
					}
				}
			}
		case *ast.SelectorExpr:
			if r, ok := match(n, Func); ok {
				edits = append(edits, edit{off(n.Pos()), off(n.End()), r.To})
				ad.Applied[r.String()]++
				return false
			}
			if r, ok := match(n, Forbid); ok {
				problem(n.Pos(), "%s has no rewrite (%s): add one to pgxsuite.Rewrites", r, r.Why)
			}
		case *ast.Ident:
			if strings.HasPrefix(n.Name, GluePrefix) {
				problem(n.Pos(), "identifier %s collides with the glue's prefix", n.Name)
			}
		case *ast.BasicLit:
			if s, err := strconv.Unquote(n.Value); err == nil && n.Kind == token.STRING {
				ad.Writes = append(ad.Writes, WrittenTables(s)...)
			}
		}
		return true
	})
	if len(problems) > 0 {
		return nil, fmt.Errorf("pgxsuite: adapting %s:\n  %s", name, strings.Join(problems, "\n  "))
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	var out bytes.Buffer
	last := 0
	for _, e := range edits {
		out.Write(src[last:e.start])
		out.WriteString(e.text)
		last = e.end
	}
	out.Write(src[last:])
	if ad.Source, err = blankUnusedImports(name, out.Bytes()); err != nil {
		return nil, err
	}
	slices.Sort(ad.Writes)
	ad.Writes = slices.Compact(ad.Writes)
	return ad, nil
}

var majorVersion = regexp.MustCompile(`^v[0-9]+$`)

// importName is the name an import is used by.
func importName(is *ast.ImportSpec) string {
	if is.Name != nil {
		return is.Name.Name
	}
	p, _ := strconv.Unquote(is.Path.Value)
	if base := path.Base(p); !majorVersion.MatchString(base) || !strings.Contains(p, "/") {
		return base
	}
	return path.Base(path.Dir(p))
}

// blankUnusedImports makes the imports the rewrites left unused blank
// (keeping their init side effects) and formats the file.
func blankUnusedImports(name string, src []byte) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
	if err != nil {
		return nil, fmt.Errorf("pgxsuite: the adapted %s does not parse: %w", name, err)
	}
	used := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok && id.Obj == nil {
				used[id.Name] = true
			}
		}
		return true
	})
	for _, is := range f.Imports {
		if local := importName(is); local != "_" && local != "." && !used[local] {
			is.Name = ast.NewIdent("_")
		}
	}
	var buf bytes.Buffer
	if err := format.Node(&buf, fset, f); err != nil {
		return nil, fmt.Errorf("pgxsuite: formatting the adapted %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

var writeRE = regexp.MustCompile(`(?i)\b(?:insert\s+into|update|delete\s+from|merge\s+into)\s+(?:only\s+)?([a-z_][a-z0-9_]*)`)

// notTables are words the pattern catches in SQL that writes nothing
// ("after insert or update on t" in a trigger definition).
var notTables = map[string]bool{"on": true, "of": true, "or": true, "set": true}

// WrittenTables returns the tables SQL text s writes, by pattern.
func WrittenTables(s string) []string {
	var out []string
	for _, m := range writeRE.FindAllStringSubmatch(s, -1) {
		if name := strings.ToLower(m[1]); !notTables[name] {
			out = append(out, name)
		}
	}
	return out
}

// Module is a generated suite module.
type Module struct {
	Dir        string
	PgxVersion string
	Files      []*Adapted
	Skipped    []string // pgx test files not adapted, with the reason
}

// Writes returns every table the adapted files' SQL writes.
func (m *Module) Writes() []string {
	var all []string
	for _, f := range m.Files {
		all = append(all, f.Writes...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// Generate writes the adapted suite into dir (which must exist) as module
// auditpgxsuite, with the requirements of the repository at repoRoot (so
// the same pgx) and auditpgx replaced by that repository.
func Generate(repoRoot, dir string) (*Module, error) {
	repoRoot, err := filepath.Abs(repoRoot)
	if err != nil {
		return nil, err
	}
	out, err := goCmd(repoRoot, "mod", "download", "-json", PgxModule)
	if err != nil {
		return nil, err
	}
	var pgx struct{ Dir, Version, Error string }
	if err := json.Unmarshal(out, &pgx); err != nil || pgx.Error != "" || pgx.Dir == "" {
		return nil, fmt.Errorf("pgxsuite: go mod download %s: %v %s", PgxModule, err, pgx.Error)
	}
	m := &Module{Dir: dir, PgxVersion: pgx.Version}
	names, err := filepath.Glob(filepath.Join(pgx.Dir, "stdlib", "*_test.go"))
	if err != nil {
		return nil, err
	}
	for _, p := range names {
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		base := filepath.Base(p)
		f, err := parser.ParseFile(token.NewFileSet(), base, src, parser.PackageClauseOnly)
		if err != nil {
			return nil, err
		}
		if f.Name.Name != "stdlib_test" { // tests of pgx's internals, unbuildable outside pgx
			m.Skipped = append(m.Skipped, base+" (package "+f.Name.Name+")")
			continue
		}
		ad, err := AdaptFile(base, src)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, base), ad.Source, 0o644); err != nil {
			return nil, err
		}
		m.Files = append(m.Files, ad)
	}
	if len(m.Files) == 0 {
		return nil, fmt.Errorf("pgxsuite: no external test files in %s/stdlib", pgx.Dir)
	}
	if err := os.WriteFile(filepath.Join(dir, "zz_auditpgx_test.go"), glue, 0o644); err != nil {
		return nil, err
	}
	// The repository's go.mod and go.sum, renamed and pointed at the
	// repository. (A replace by relative path would need making absolute.)
	for _, name := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, name))
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return nil, err
		}
	}
	_, err = goCmd(dir, "mod", "edit", "-module", "auditpgxsuite",
		"-require", ownModule+"@v0.0.0-00010101000000-000000000000", "-replace", ownModule+"="+repoRoot)
	return m, err
}

// GoEnv is the environment of go commands in a generated module: no
// workspace, and go.mod and go.sum may be completed.
var GoEnv = []string{"GOWORK=off", "GOFLAGS=-mod=mod"}

// goCmd runs the go command (go test puts its own first on PATH) in dir.
func goCmd(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), GoEnv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("pgxsuite: go %s in %s: %w\n%s", strings.Join(args, " "), dir, err, stderr.Bytes())
	}
	return out, nil
}
