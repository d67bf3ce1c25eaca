// Package gormsuite runs GORM's own test suite (the tests/ directory of
// github.com/go-gorm/gorm, a Go module of its own, gorm.io/gorm/tests)
// through auditpgx, with the tables it writes registered.
//
// Nothing of GORM's is copied into this repository. The suite is not
// published as a module (the proxy has no gorm.io/gorm/tests, and the
// gorm.io/gorm module zip leaves tests/ out), so it is read from a clone of
// GORM's repository, at the tag of the gorm.io/gorm version that
// examples/orms/go.mod selects (see [Source]). [Generate] copies its test
// files into a temporary directory and rewrites how they open the
// database (see [AdaptFile]), adds the glue in testdata/glue.go.txt, stub
// modules for the other dialects' drivers, and a go.mod that replaces
// github.com/auditpgx/auditpgx with this repository; [Module.Build] compiles it
// once and [RunAll] runs it through test2json.
//
// The glue opens the database in one of these forms, chosen per run by
// AUDITPGX_GORMSUITE_FORM:
//
//	A      postgres.New(postgres.Config{DriverName: "auditpgx", DSN: dsn}), with the default registry
//	B      postgres.New(postgres.Config{Conn: sql.OpenDB(connector)}), connector from auditpgx.NewConnector
//
// or, as controls without auditpgx, plain (GORM's own setting, DSN with
// PreferSimpleProtocol), pgx, pgxnamed (form A's path with pgx's driver)
// and pgxconn (form B's); see testdata/glue.go.txt. The glue registers the
// tables of the JSON file AUDITPGX_GORMSUITE_SPEC before
// the suite's first statement. It also watches every statement GORM runs
// and writes, to AUDITPGX_GORMSUITE_REPORT, which tables were written (and
// whether registered), the many2many join tables of the models used, and
// the number of entries by table and operation.
package gormsuite

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// GluePrefix starts every identifier the glue defines; GORM's files must
// not use it.
const GluePrefix = "auditpgxsuite"

const (
	gormModule     = "gorm.io/gorm"
	postgresDriver = "gorm.io/driver/postgres"
	ownModule      = "github.com/auditpgx/auditpgx"
)

// StubbedDrivers are the dialect drivers the suite imports that the
// adapted suite replaces with stubs whose Open always fails.
var StubbedDrivers = []string{"gorm.io/driver/mysql", "gorm.io/driver/sqlite", "gorm.io/driver/sqlserver", "gorm.io/driver/gaussdb"}

// pinned are modules whose version the adapted suite takes from
// examples/orms/go.mod rather than from the suite's go.mod: what the
// examples, and docs/ORMS.md's advice, are tested with.
var pinned = []string{gormModule, postgresDriver, "github.com/jackc/pgx/v5"}

var (
	//go:embed testdata/glue.go.txt
	glueSource []byte
	//go:embed testdata/stub.go.txt
	stubSource string
)

// GoEnv is added to the environment of every go command run on the
// adapted suite: go.mod and go.sum may be completed, with the caller's
// GOFLAGS kept.
var GoEnv = []string{"GOWORK=off", "GOFLAGS=" + strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=mod"), "CGO_ENABLED=1"}

// Adapted is one rewritten file of the suite.
type Adapted struct {
	Source []byte
	// Tests are the file's test functions.
	Tests []string
	// Applied counts the rewrites done, by kind.
	Applied map[string]int
}

// AdaptFile rewrites one test file of the suite:
//
//   - in tests_test.go, OpenTestConnection and the postgresDSN variable
//     are removed (the glue defines both: the postgres branch opens the
//     form under test, postgresDSN is GORM_DSN);
//   - every call postgres.Open(dsn) becomes auditpgxsuiteOpen(dsn), the
//     glue's dialector for the form under test;
//   - imports left unused are removed.
//
// It fails when the file opens the database some other way the adapter
// does not map (postgres.New, another use of gorm.io/driver/postgres, pgx,
// sql.Open of a postgres driver, lib/pq's connectors), or uses an
// identifier with the glue's prefix: an unmapped way would bypass auditpgx
// without anyone noticing.
func AdaptFile(name string, src []byte) (*Adapted, error) {
	if bytes.Contains(bytes.ToLower(src), []byte(GluePrefix)) {
		return nil, fmt.Errorf("%s: uses the glue's prefix %q", name, GluePrefix)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	ad := &Adapted{Applied: map[string]int{}}
	if filepath.Base(name) == "tests_test.go" {
		if err := removeDecls(f, ad); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	names := importNames(f)
	var problems []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		if pkg, sel, ok := selector(call.Fun); ok && names[pkg] == postgresDriver && sel == "Open" {
			call.Fun = ast.NewIdent(GluePrefix + "Open")
			ad.Applied["postgres.Open"]++
		}
		return true
	})
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			pkg, sel, ok := selector(n)
			if !ok {
				return true
			}
			switch path := names[pkg]; {
			case path == postgresDriver:
				problems = append(problems, fmt.Sprintf("%s: postgres.%s is not mapped", fset.Position(n.Pos()), sel))
			case strings.HasPrefix(path, "github.com/jackc/pgx"):
				problems = append(problems, fmt.Sprintf("%s: %s.%s reaches pgx directly", fset.Position(n.Pos()), pkg, sel))
			case path == "github.com/lib/pq" && (sel == "Open" || strings.HasPrefix(sel, "NewConnector")):
				problems = append(problems, fmt.Sprintf("%s: pq.%s opens a connection", fset.Position(n.Pos()), sel))
			}
		case *ast.CallExpr:
			if pkg, sel, ok := selector(n.Fun); ok && names[pkg] == "database/sql" && (sel == "Open" || sel == "OpenDB") {
				drv := ""
				if len(n.Args) > 0 {
					if lit, ok := n.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						drv, _ = strconv.Unquote(lit.Value)
					}
				}
				if sel == "OpenDB" || drv == "" || drv == "pgx" || drv == "postgres" || drv == "auditpgx" {
					problems = append(problems, fmt.Sprintf("%s: sql.%s(%s...) is not mapped", fset.Position(n.Pos()), sel, drv))
				}
			}
		}
		return true
	})
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s: ways of opening the database the adapter does not map:\n%s", name, strings.Join(problems, "\n"))
	}
	removeUnusedImports(f)
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && isTest(fd, names) {
			ad.Tests = append(ad.Tests, fd.Name.Name)
		}
	}
	var buf bytes.Buffer
	if err := format.Node(&buf, fset, f); err != nil {
		return nil, err
	}
	ad.Source = buf.Bytes()
	return ad, nil
}

// isTest reports whether fd is a test function: TestXxx(t *testing.T).
func isTest(fd *ast.FuncDecl, names map[string]string) bool {
	if fd.Recv != nil || !strings.HasPrefix(fd.Name.Name, "Test") || fd.Type.Params.NumFields() != 1 {
		return false
	}
	star, ok := fd.Type.Params.List[0].Type.(*ast.StarExpr)
	if !ok {
		return false
	}
	pkg, sel, ok := selector(star.X)
	return ok && names[pkg] == "testing" && sel == "T"
}

// removeDecls removes OpenTestConnection and postgresDSN from
// tests_test.go.
func removeDecls(f *ast.File, ad *Adapted) error {
	var decls []ast.Decl
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil && d.Name.Name == "OpenTestConnection" {
				ad.Applied["OpenTestConnection"]++
				continue
			}
		case *ast.GenDecl:
			if d.Tok == token.VAR {
				var specs []ast.Spec
				for _, s := range d.Specs {
					vs := s.(*ast.ValueSpec)
					if len(vs.Names) == 1 && vs.Names[0].Name == "postgresDSN" {
						ad.Applied["postgresDSN"]++
						continue
					}
					specs = append(specs, s)
				}
				if len(specs) == 0 {
					continue
				}
				d.Specs = specs
			}
		}
		decls = append(decls, d)
	}
	f.Decls = decls
	if ad.Applied["OpenTestConnection"] != 1 || ad.Applied["postgresDSN"] != 1 {
		return errors.New("OpenTestConnection or postgresDSN not found where expected: the suite changed, adapt the adapter")
	}
	return nil
}

// importNames maps the names a file refers to its imports by to their
// paths.
func importNames(f *ast.File) map[string]string {
	out := map[string]string{}
	for _, is := range f.Imports {
		p, _ := strconv.Unquote(is.Path.Value)
		out[importName(is, p)] = p
	}
	return out
}

func importName(is *ast.ImportSpec, p string) string {
	if is.Name != nil {
		return is.Name.Name
	}
	base := path.Base(p)
	if len(base) > 1 && base[0] == 'v' && strings.Trim(base[1:], "0123456789") == "" {
		base = path.Base(path.Dir(p))
	}
	return base
}

// selector returns pkg and sel of an expression pkg.sel.
func selector(e ast.Expr) (pkg, sel string, ok bool) {
	se, ok := e.(*ast.SelectorExpr)
	if !ok {
		return "", "", false
	}
	id, ok := se.X.(*ast.Ident)
	if !ok || id.Obj != nil {
		return "", "", false
	}
	return id.Name, se.Sel.Name, true
}

func removeUnusedImports(f *ast.File) {
	used := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if pkg, _, ok := selector(asExpr(n)); ok {
			used[pkg] = true
		}
		return true
	})
	keep := func(is *ast.ImportSpec) bool {
		p, _ := strconv.Unquote(is.Path.Value)
		name := importName(is, p)
		return name == "_" || name == "." || used[name]
	}
	var imports []*ast.ImportSpec
	for _, is := range f.Imports {
		if keep(is) {
			imports = append(imports, is)
		}
	}
	f.Imports = imports
	var decls []ast.Decl
	for _, d := range f.Decls {
		if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.IMPORT {
			var specs []ast.Spec
			for _, s := range gd.Specs {
				if keep(s.(*ast.ImportSpec)) {
					specs = append(specs, s)
				}
			}
			if len(specs) == 0 {
				continue
			}
			gd.Specs = specs
		}
		decls = append(decls, d)
	}
	f.Decls = decls
}

func asExpr(n ast.Node) ast.Expr {
	e, _ := n.(ast.Expr)
	return e
}

// Module is a generated copy of the suite.
type Module struct {
	Dir string
	// Applied counts the rewrites over all files.
	Applied map[string]int
	// Files are the suite's test files, adapted.
	Files []string
	// Tests are the names of the suite's top-level tests.
	Tests []string
}

// Versions returns the versions examples/orms/go.mod selects for mods,
// read by go list in dir (a directory of the examples module). Modules
// the examples module does not use are left out.
func Versions(ctx context.Context, dir string, mods ...string) (map[string]string, error) {
	args := append([]string{"list", "-m", "-e", "-json"}, mods...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("gormsuite: go list -m in %s: %w", dir, err)
	}
	versions := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var m struct {
			Path, Version string
			Error         *struct{ Err string }
		}
		if err := dec.Decode(&m); err != nil {
			return nil, err
		}
		if m.Error == nil && m.Version != "" {
			versions[m.Path] = m.Version
		}
	}
	return versions, nil
}

// Generate writes the adapted suite into dir (which must exist) as the
// module gorm.io/gorm/tests: the test files of testsDir (GORM's tests/)
// rewritten by AdaptFile, the glue, stub modules for StubbedDrivers, and a
// go.mod that requires the suite's modules, with the versions of
// examplesDir's go.mod for the pinned modules, and replaces
// github.com/auditpgx/auditpgx with repoRoot. It then runs go mod tidy,
// which fills go.sum (downloading what the module cache lacks).
func Generate(ctx context.Context, testsDir, dir, examplesDir, repoRoot string) (*Module, error) {
	m := &Module{Dir: dir, Applied: map[string]int{}}
	entries, err := os.ReadDir(testsDir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		if !strings.HasSuffix(e.Name(), "_test.go") {
			return nil, fmt.Errorf("gormsuite: %s is not a test file; the suite changed, adapt the adapter", e.Name())
		}
		src, err := os.ReadFile(filepath.Join(testsDir, e.Name()))
		if err != nil {
			return nil, err
		}
		ad, err := AdaptFile(e.Name(), src)
		if err != nil {
			return nil, fmt.Errorf("gormsuite: %w", err)
		}
		for k, v := range ad.Applied {
			m.Applied[k] += v
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), ad.Source, 0o644); err != nil {
			return nil, err
		}
		m.Files = append(m.Files, e.Name())
		m.Tests = append(m.Tests, ad.Tests...)
	}
	if m.Applied["OpenTestConnection"] != 1 {
		return nil, errors.New("gormsuite: tests_test.go not found in the suite")
	}
	if err := os.WriteFile(filepath.Join(dir, "zz_auditpgxsuite_test.go"), glueSource, 0o644); err != nil {
		return nil, err
	}
	if err := writeGoMod(ctx, testsDir, dir, examplesDir, repoRoot); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "go", "mod", "tidy")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), GoEnv...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("gormsuite: go mod tidy in %s: %w\n%s", dir, err, out)
	}
	return m, nil
}

// writeGoMod writes go.mod, go.sum and the stub modules.
func writeGoMod(ctx context.Context, testsDir, dir, examplesDir, repoRoot string) error {
	cmd := exec.CommandContext(ctx, "go", "mod", "edit", "-json", filepath.Join(testsDir, "go.mod"))
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("gormsuite: reading the suite's go.mod: %w", err)
	}
	var suiteMod struct {
		Require []struct {
			Path, Version string
			Indirect      bool
		}
	}
	if err := json.Unmarshal(out, &suiteMod); err != nil {
		return err
	}
	pins, err := Versions(ctx, examplesDir, pinned...)
	if err != nil {
		return err
	}
	examplesGo, err := goDirective(ctx, filepath.Join(examplesDir, "go.mod"))
	if err != nil {
		return err
	}
	require := map[string]string{ownModule: "v0.0.0-00010101000000-000000000000"}
	for _, r := range suiteMod.Require {
		if !r.Indirect {
			require[r.Path] = r.Version
		}
	}
	for _, p := range pinned {
		v, ok := pins[p]
		if !ok {
			return fmt.Errorf("gormsuite: examples/orms/go.mod does not require %s", p)
		}
		require[p] = v
	}
	var b strings.Builder
	fmt.Fprintf(&b, "// Generated by the auditpgx gormsuite adapter.\n\nmodule gorm.io/gorm/tests\n\ngo %s\n\nrequire (\n", examplesGo)
	paths := make([]string, 0, len(require))
	for p := range require {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fmt.Fprintf(&b, "\t%s %s\n", p, require[p])
	}
	fmt.Fprintf(&b, ")\n\nreplace %s => %s\n", ownModule, repoRoot)
	for _, drv := range StubbedDrivers {
		if _, ok := require[drv]; !ok {
			continue
		}
		pkg := path.Base(drv)
		stubDir := filepath.Join(dir, "stubs", pkg)
		if err := os.MkdirAll(stubDir, 0o755); err != nil {
			return err
		}
		mod := fmt.Sprintf("module %s\n\ngo %s\n\nrequire %s %s\n", drv, examplesGo, gormModule, require[gormModule])
		if err := os.WriteFile(filepath.Join(stubDir, "go.mod"), []byte(mod), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(stubDir, pkg+".go"), []byte(strings.ReplaceAll(stubSource, "PKG", pkg)), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(&b, "replace %s => ./stubs/%s\n", drv, pkg)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	// Start go.sum from the sums the repository already trusts, so that
	// tidy downloads only what they lack.
	var sum []byte
	for _, f := range []string{filepath.Join(examplesDir, "go.sum"), filepath.Join(repoRoot, "go.sum"), filepath.Join(testsDir, "go.sum")} {
		if s, err := os.ReadFile(f); err == nil {
			sum = append(sum, s...)
		}
	}
	return os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644)
}

func goDirective(ctx context.Context, gomod string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "mod", "edit", "-json", gomod).Output()
	if err != nil {
		return "", fmt.Errorf("gormsuite: reading %s: %w", gomod, err)
	}
	var m struct{ Go string }
	if err := json.Unmarshal(out, &m); err != nil {
		return "", err
	}
	return m.Go, nil
}

// Build compiles the adapted suite into an executable in its directory
// and returns the executable's path.
func (m *Module) Build(ctx context.Context) (string, error) {
	bin := filepath.Join(m.Dir, "gormsuite.test")
	cmd := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, ".")
	cmd.Dir = m.Dir
	cmd.Env = append(os.Environ(), GoEnv...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("gormsuite: building the adapted suite in %s: %w\n%s", m.Dir, err, out)
	}
	return bin, nil
}
