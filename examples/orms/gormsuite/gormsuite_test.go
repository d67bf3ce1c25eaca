//go:build gormsuite

package gormsuite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditpgx/auditpgx/examples/orms/gormsuite"
	"github.com/auditpgx/auditpgx/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestGormSuite runs GORM's suite (see the package comment) once per form,
// each on a fresh database of the pgtest server, one after the other. It
// fails on a failure of a GORM test that knownFailures does not expect for
// the form, on a write to a table that is neither registered nor in
// keyless, and when the audited forms wrote no create or associate
// entries. It logs each form's counts and wall time, the known failures
// met, and those that passed. Environment:
//
//	AUDITPGX_GORM_SRC         GORM's source (gormsuite.EnvSource); required
//	AUDITPGX_GORMSUITE_FORMS  forms to run, comma-separated, default "A,B": A, B,
//	                          the controls plain, pgx, pgxnamed, pgxconn (see
//	                          testdata/glue.go.txt), each optionally with
//	                          ":MODE" for default_query_exec_mode=MODE in the DSN
//	                          (A:simple_protocol, B:exec, ...)
//	AUDITPGX_GORMSUITE_RUN    run only the GORM tests this regexp matches
//	AUDITPGX_GORMSUITE_DIR    work here and keep it: the suite's copy, the module,
//	                          the glue's reports and report-FORM-failures.txt
//	AUDITPGX_GORMSUITE_REPO   test another auditpgx tree (e.g. from git archive)
//
// The file builds only with the tag gormsuite: GORM's suite is not a module,
// and CI reaches no Git host to fetch it.
func TestGormSuite(t *testing.T) {
	src := os.Getenv(gormsuite.EnvSource)
	if src == "" {
		t.Fatalf("%s is not set: point it at a clone of https://github.com/go-gorm/gorm to run GORM's suite through auditpgx", gormsuite.EnvSource)
	}
	ctx := context.Background()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	examplesDir := filepath.Dir(wd)
	repoRoot := filepath.Dir(filepath.Dir(examplesDir))
	if r := os.Getenv("AUDITPGX_GORMSUITE_REPO"); r != "" {
		// Another auditpgx tree, e.g. from git archive, for a stable one
		// while this one is being edited.
		repoRoot = r
	}
	versions, err := gormsuite.Versions(ctx, examplesDir, "gorm.io/gorm")
	if err != nil {
		t.Fatal(err)
	}
	work := os.Getenv("AUDITPGX_GORMSUITE_DIR")
	if work == "" {
		work = t.TempDir()
	}
	testsDir, from, err := gormsuite.Source(ctx, src, versions["gorm.io/gorm"], work)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("GORM's suite from %s", from)
	modDir := filepath.Join(work, "module")
	if err := os.MkdirAll(modDir, 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	mod, err := gormsuite.Generate(ctx, testsDir, modDir, examplesDir, repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := mod.Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("adapted %d files (%v), built in %v", len(mod.Files), mod.Applied, time.Since(start).Round(time.Second))
	specPath := filepath.Join(work, "spec.json")
	b, err := json.Marshal(registered)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(specPath, b, 0o644); err != nil {
		t.Fatal(err)
	}

	tests := mod.Tests
	if re := os.Getenv("AUDITPGX_GORMSUITE_RUN"); re != "" {
		// Only these tests, for a closer look.
		rx := regexp.MustCompile(re)
		tests = slices.DeleteFunc(slices.Clone(tests), func(name string) bool { return !rx.MatchString(name) })
	}
	forms := strings.Split(os.Getenv("AUDITPGX_GORMSUITE_FORMS"), ",")
	if forms[0] == "" {
		forms = []string{"A", "B"}
	}
	for _, form := range forms {
		t.Run(form, func(t *testing.T) {
			runForm(t, form, modDir, bin, tests, specPath, filepath.Join(work, "report-"+form))
		})
	}
}

func runForm(t *testing.T, form, modDir, bin string, tests []string, specPath, reportBase string) {
	base, mode, _ := strings.Cut(form, ":")
	if !slices.Contains([]string{"plain", "pgx", "pgxnamed", "pgxconn", "A", "B"}, base) {
		t.Fatalf("unknown form %q", form)
	}
	dsn := pgtest.NewDatabase(t)
	if mode != "" {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("default_query_exec_mode", mode)
		u.RawQuery = q.Encode()
		dsn = u.String()
	}
	var reports []string
	run, attempts, err := gormsuite.RunAll(context.Background(), modDir, bin, tests, func(attempt int) []string {
		reports = append(reports, fmt.Sprintf("%s-%d.json", reportBase, attempt))
		return []string{
			"GORM_DIALECT=postgres",
			"GORM_DSN=" + dsn,
			"AUDITPGX_GORMSUITE_FORM=" + base,
			"AUDITPGX_GORMSUITE_SPEC=" + specPath,
			"AUDITPGX_GORMSUITE_REPORT=" + reports[len(reports)-1],
		}
	}, 20*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if attempts > 1 {
		t.Logf("form %s: %d processes: these tests ended the process: %s", form, attempts, strings.Join(run.Aborted, ", "))
	}
	pass, fail, skip := run.Counts(true)
	spass, sfail, sskip := run.Counts(false)
	t.Logf("form %s: %d tests passed, %d failed, %d skipped (subtests: %d, %d, %d) in %v; package %s",
		form, pass, fail, skip, spass, sfail, sskip, run.Duration.Round(time.Second), run.Package)
	var skipped []string
	for _, name := range run.Order {
		if rt := run.Tests[name]; rt.TopLevel() && rt.Status == "skip" {
			skipped = append(skipped, name)
		}
	}
	t.Logf("skipped by the suite itself: %s", strings.Join(skipped, " "))
	if run.Package != "pass" && fail == 0 {
		t.Errorf("the suite failed outside any test:\n%s", strings.Join(run.Output, "\n"))
	}
	var full strings.Builder
	for _, name := range run.Order {
		if ft := run.Tests[name]; ft.Failed() {
			fmt.Fprintf(&full, "=== %s\n%s\n\n", ft.Name, strings.Join(ft.Output, "\n"))
		}
	}
	// The failures in full, next to the reports.
	if err := os.WriteFile(reportBase+"-failures.txt", []byte(full.String()), 0o644); err != nil {
		t.Error(err)
	}
	for _, ft := range run.Failures() {
		k, ok := knownFailures[strings.SplitN(ft.Name, "/", 2)[0]]
		switch {
		case ok && k.forms(form):
			t.Logf("known failure %s: %s", ft.Name, ft.Summary(160))
		default:
			t.Errorf("unexpected failure %s: %s", ft.Name, ft.Summary(600))
		}
	}
	for name, k := range knownFailures {
		if k.forms(form) {
			if rt := run.Tests[name]; rt != nil && !rt.Failed() {
				t.Logf("known failure %s now %ss in form %s: take it off the list", name, rt.Status, form)
			}
		}
	}
	checkReport(t, base == "A" || base == "B", reports, run)
}

// report is what the glue observed.
type report struct {
	Writes []struct {
		Table        string
		PK           []string
		Writes       int
		Registered   bool
		Incarnations int
		Shapes       []string
	}
	Joins []struct {
		Table   string
		Field   string
		Owner   ref
		Related ref
	}
	Entries map[string]int64
}

func checkReport(t *testing.T, audited bool, paths []string, run *gormsuite.Run) {
	firstWriter := map[string]string{}
	for _, name := range run.Order {
		for _, line := range run.Tests[name].Output {
			if table, ok := strings.CutPrefix(strings.TrimSpace(line), "auditpgxsuite: write to unregistered table "); ok {
				firstWriter[table] = name
			}
		}
	}
	// Merge the reports of the processes; one that a test ended has no
	// entry counts.
	var r report
	index := map[string]int{}
	entries := map[string]int64{}
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var one report
		if err := json.Unmarshal(b, &one); err != nil {
			t.Fatal(err)
		}
		for _, w := range one.Writes {
			i, ok := index[w.Table]
			if !ok {
				index[w.Table] = len(r.Writes)
				r.Writes = append(r.Writes, w)
				continue
			}
			m := &r.Writes[i]
			m.Writes += w.Writes
			m.Incarnations += w.Incarnations
			for _, pk := range w.PK {
				if !slices.Contains(m.PK, pk) {
					m.PK = append(m.PK, pk)
				}
			}
		}
		r.Joins = append(r.Joins, one.Joins...)
		// Each process counts every entry so far: keep the largest.
		for k, n := range one.Entries {
			entries[k] = max(entries[k], n)
		}
	}
	r.Entries = entries
	if len(r.Writes) == 0 {
		t.Errorf("no report from the glue in %v", paths)
		return
	}
	var unregistered []string
	for _, w := range r.Writes {
		if !w.Registered {
			unregistered = append(unregistered, fmt.Sprintf("%s(pk=%s,n=%d,tables=%d,first in %s)", w.Table, strings.Join(w.PK, "|"), w.Writes, w.Incarnations, firstWriter[w.Table]))
		}
	}
	t.Logf("written tables not registered: %s", strings.Join(unregistered, " "))
	if audited {
		for _, w := range r.Writes {
			if _, ok := keyless[w.Table]; !w.Registered && !ok {
				t.Errorf("the suite wrote table %s (primary key: %s; in %s), which is neither registered nor listed in keyless: register it",
					w.Table, strings.Join(w.PK, "|"), firstWriter[w.Table])
			}
		}
	}
	var total int64
	byOp := map[string]int64{}
	tables := map[string]bool{}
	for k, n := range r.Entries {
		total += n
		table, op, _ := strings.Cut(k, " ")
		byOp[op] += n
		tables[table] = true
	}
	if audited {
		t.Logf("%d entries for %d tables: %v (by table in the glue's report)", total, len(tables), byOp)
	}
	if audited && (r.Entries["users create"] == 0 || r.Entries["users associate"] == 0) {
		t.Errorf("no create or no associate entries for users: the tables were not registered, or not audited")
	}
}

type ref struct {
	Table  string `json:"table"`
	Column string `json:"column"`
}

// registered is what the glue registers before the suite's first
// statement: every table the suite writes (as the glue's observer of GORM
// v1.31.2's suite reports them) that has a primary key with RegisterTable,
// and its join tables whose link is one column a side with RegisterM2M.
// The suite reuses names for different models in different tests (level1
// is 21 tables of 7 shapes over a run), and a registration is of a name,
// so each of these is registered once, for every shape: auditpgx reads the
// columns anew after DDL through the driver.
//
// Left out, and so written unaudited (a table that is not registered is
// not refused; AllowUnaudited is about registered tables, and stays off
// so that any refusal of a write to a registered table fails a test):
// the tables in keyless, which have no primary key, which RegisterTable
// requires. The join tables blog_tags and levels (in one of its shapes)
// link by two columns a side, which M2M cannot describe; they have a
// primary key and are registered as tables.
var registered = struct {
	Tables []string `json:"tables"`
	M2M    []m2m    `json:"m2m"`
}{
	Tables: []string{
		"accounts", "address_by_zip_codes", "addresses", "animals",
		"auto_increment_structs", "blog_tags", "blogs", "books", "buildings",
		"categories", "children", "cities", "companies", "composite_key_products",
		"countries", "coupon_products", "coupons", "customize_accounts",
		"customize_columns", "customize_field_structs", "customize_users",
		"customized_type_primary_keys", "deleted_users",
		"element_with_ignored_fields", "embedded_addresses", "embedded_tags",
		"empty_structs", "engadget_posts", "events", "hamsters", "harumphs",
		"hn_posts", "item_children", "item_contents", "item_parents", "items",
		"joins", "labels", "langs", "languages", "level0", "level1", "level2",
		"level2_1", "level3", "level4", "level_a1", "level_a2", "level_a3",
		"level_b1", "level_b3", "level_c1", "level_c2", "level_c3", "levels",
		"members", "men", "museums", "named_users", "nesteds", "on_conflict_users",
		"orders", "orgs", "parents", "people", "pets", "posts", "preloads",
		"product2", "product3", "product4", "product5", "product6", "product_item2",
		"product_items", "product_with_anies", "products", "profiles",
		"query_reset_items", "query_reset_null_values", "regions",
		"scanner_valuer_structs", "serializer_structs", "soft_delete_books", "tags",
		"things", "token_owners", "tokens", "tools", "toys", "users", "values",
		"yasuos",
	},
	M2M: []m2m{
		{"user_speaks", "languages", ref{"users", "user_id"}, ref{"languages", "language_code"}},
		{"user_friends", "friends", ref{"users", "user_id"}, ref{"users", "friend_id"}},
		{"post_categories", "categories", ref{"posts", "post_id"}, ref{"categories", "category_id"}},
		{"level1_level2", "level1s", ref{"level2", "level2_id"}, ref{"level1", "level1_id"}},
		{"level1_level2s", "level2s", ref{"level1", "level1_id"}, ref{"level2", "level2_id"}},
		{"level2_level3", "level3s", ref{"level2", "level2_id"}, ref{"level3", "level3_id"}},
		// No primary key (TestOverrideJoinTable's own join model); a
		// join table needs none.
		{"person_addresses", "addresses", ref{"people", "person_id"}, ref{"addresses", "address_id"}},
	},
}

// keyless are the tables the suite writes that have no primary key, and
// are therefore not registered.
var keyless = map[string]string{
	"belongs_to_users": "TestBelongsToDefaultValue: a model without an ID",
	"join_tables":      "TestCreateWithNoGORMPrimaryKey: a model without a primary key",
}

type m2m struct {
	Table   string `json:"table"`
	Field   string `json:"field"`
	Owner   ref    `json:"owner"`
	Related ref    `json:"related"`
}

type known struct {
	Forms  []string // the forms it fails in, exactly as named in AUDITPGX_GORMSUITE_FORMS
	Reason string
}

func (k known) forms(form string) bool { return slices.Contains(k.Forms, form) }

// Why forms A and B fail tests that GORM's own setting passes.
//
// GORM's suite opens postgres.Config{DSN: dsn, PreferSimpleProtocol: true}.
// gorm.io/driver/postgres (v1.6.3, postgres.go, Dialector.Initialize) reads
// PreferSimpleProtocol, and the DSN's TimeZone (session time zone and the
// scan location of timestamp columns), and OptionOpenDB, only when it opens
// pgx itself, that is when both DriverName and Conn are empty. Given
// DriverName it calls sql.Open(DriverName, DSN); given Conn it uses it; so
// in forms A and B pgx runs in its default mode,
// QueryExecModeCacheStatement: each connection prepares every query once
// and keeps the prepared statement. When the suite changes a table's
// columns (DROP and CREATE, AutoMigrate's ALTER TABLE), a kept SELECT *
// fails with "cached plan must not change result type" (SQLSTATE 0A000).
//
// Its migrator (migrator.go, Migrator.GetRows, behind ColumnTypes and so
// behind AutoMigrate of an existing table) guards its own SELECT * ...
// LIMIT 1 by passing pgx.QueryExecModeSimpleProtocol as an argument, but
// only when DriverName is "" or "pgx" (and PrepareStmt is off): form B
// (DriverName "") gets the guard, auditpgx passing the argument on to pgx;
// form A (DriverName "auditpgx") does not, and AutoMigrate of a changed
// table fails.
//
// Both failures are pgx's and the GORM driver's, not auditpgx's: the
// controls fail the same tests with pgx alone, pgxnamed (pgx's driver
// registered under another name, with DriverName) exactly as A, and
// pgxconn (Conn: sql.Open("pgx", dsn)) exactly as B. With
// default_query_exec_mode=simple_protocol in the DSN, forms A and B pass
// every test (A:simple_protocol, B:simple_protocol).
const (
	cachedPlan = "cached plan must not change result type (0A000): pgx's statement cache in its default exec mode, which GORM's suite avoids with PreferSimpleProtocol, ignored with DriverName or Conn"
	getRows    = "cached plan (0A000) in AutoMigrate/ColumnTypes: gorm.io/driver/postgres's Migrator.GetRows uses the simple protocol only when DriverName is \"\" or \"pgx\""
	alterLeft  = "follows from getRows: TestAlterColumnDataType's AutoMigrate back from companies.name bigint failed, unchecked, so creating a company fails with 22P02 (invalid input syntax for type bigint)"
)

// knownFailures are the GORM tests expected to fail, by form, with why.
// Nothing here is a failure of auditpgx.
var knownFailures = map[string]known{
	// Forms A and B, and the controls pgx, pgxnamed and pgxconn.
	"TestForeignKeyConstraintsBelongsTo": {[]string{"A", "B"}, cachedPlan},
	// Then dereferences the nil its failed query left, ending the test
	// process; the harness runs the tests after it in a new one.
	"TestEmbeddedPointerTypeStruct":         {[]string{"A", "B"}, cachedPlan},
	"TestNestedPreload3":                    {[]string{"A", "B"}, cachedPlan},
	"TestNestedPreload9":                    {[]string{"A", "B"}, cachedPlan},
	"TestManyToManyPreloadForNestedPointer": {[]string{"A", "B"}, cachedPlan},
	"TestNestedManyToManyPreload":           {[]string{"A", "B"}, cachedPlan},
	"TestNestedManyToManyPreload3":          {[]string{"A", "B"}, cachedPlan},
	"TestManyToManyPreloadForPointer":       {[]string{"A", "B"}, cachedPlan},
	"TestNilPointerSlice":                   {[]string{"A", "B"}, cachedPlan},
	"TestPrefixedPreloadDuplication":        {[]string{"A", "B"}, cachedPlan},

	// Form A only, and the control pgxnamed.
	"TestSmartMigrateColumn":                    {[]string{"A"}, getRows},
	"TestSmartMigrateColumnGaussDB":             {[]string{"A"}, getRows}, // runs on postgres too
	"TestMigrateColumns":                        {[]string{"A"}, getRows},
	"TestMigrateColumnOrder":                    {[]string{"A"}, getRows},
	"TestInvalidCachedPlanSimpleProtocol":       {[]string{"A"}, getRows},
	"TestDifferentTypeWithoutDeclaredLength":    {[]string{"A"}, getRows + "; then ends the test process"},
	"TestMigrateSameEmbeddedFieldName":          {[]string{"A"}, getRows},
	"TestMigrateWithDefaultValue":               {[]string{"A"}, getRows + "; then ends the test process"},
	"TestMigrateExistingBoolColumnPGAndGaussDB": {[]string{"A"}, getRows},
	"TestMigrateWithUniqueIndexAndUnique":       {[]string{"A"}, getRows},
	"TestAutoMigrateDecimal":                    {[]string{"A"}, getRows},
	"TestScannerValuerWithFirstOrCreate":        {[]string{"A"}, getRows + " (AutoMigrate reads companies' columns)"},
	"TestPreloadWithAssociations":               {[]string{"A"}, alterLeft},
	"TestQueryWithAssociation":                  {[]string{"A"}, alterLeft},
	"TestSearchWithMap":                         {[]string{"A"}, alterLeft},
}
