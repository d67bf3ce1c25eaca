package pgxsuite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/internal/pgxsuite"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// The modes. sharedpk is shared with primary keys given to the tables pgx
// creates without one (t in most tests; docs's only column is json, which
// cannot be a key), so that their writes are audited instead of refused.
const (
	none     = "none"     // nothing registered
	shared   = "shared"   // suiteTables in the default registry
	perDB    = "perdb"    // a new registry with suiteTables for each sql.DB
	sharedPK = "sharedpk" // shared, with keys added
)

var modes = []string{none, shared, perDB, sharedPK}

// suiteTables are the tables pgx's stdlib tests write, all created by the
// tests (most as temporary tables). The test fails when the adapter finds
// SQL writing another.
var suiteTables = []string{"t", "docs", "defer_test"}

// known is an expected failure of Test or its subtests, in Modes (nil:
// all). A failure whose summary lacks Match is unexpected all the same, and
// an expected failure that does not happen fails the test: the list stays
// exact. Entry mismatches are never expected.
type known struct {
	Modes  []string
	Test   string
	Match  string
	Reason string
}

var (
	registering = []string{shared, perDB, sharedPK}
	keyless     = []string{shared, perDB} // t has no primary key
)

// knownFailures are the failures expected of auditpgx today, all refusals
// by design. Mode none has none: no test of pgx's suite depends on the
// driver being pgx's own.
var knownFailures = []known{
	// A registered table needs a primary key: writes to t (keyless except in
	// TestConnConcurrency) and docs are refused with ErrInvalidRegistration.
	{keyless, "TestConnExec", `invalid registration: table "t" has no primary key`, "t has no primary key"},
	{keyless, "TestStmtExec", `invalid registration: table "t" has no primary key`, "t has no primary key"},
	{keyless, "TestTransactionLifeCycle", `invalid registration: table "t" has no primary key`, "t has no primary key"},
	{registering, "TestConnExecInsertByteSliceIntoJSON", `invalid registration: table "docs" has no primary key`, "docs has no primary key"},
	// "create temporary table docs ...; insert into docs ..." in one string:
	// refused with ErrUnaudited, since names may mean another table once the
	// catalog has changed.
	{registering, "TestConnQueryJSONIntoByteSlice",
		"changes search_path, the role or the catalog and then writes a table that may be registered",
		"CREATE TABLE docs; INSERT INTO docs in one string is refused"},
}

func TestPgxStdlibSuite(t *testing.T) {
	dir := os.Getenv("AUDITPGX_PGXSUITE_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := pgxsuite.Generate(filepath.Join("..", ".."), dir)
	if err != nil {
		t.Fatal(err)
	}
	applied := map[string]int{}
	for _, f := range m.Files {
		for r, n := range f.Applied {
			applied[r] += n
		}
	}
	t.Logf("pgx %s: %d files adapted (%v), skipped %v; module in %s", m.PgxVersion, len(m.Files), applied, m.Skipped, dir)
	for _, w := range m.Writes() {
		if !slices.Contains(suiteTables, w) {
			t.Errorf("pgx's tests write table %s, which suiteTables does not register: add it", w)
		}
	}
	start := time.Now()
	bin, err := m.Build()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built in %v", time.Since(start).Round(time.Millisecond))

	selected := modes
	if env := os.Getenv("AUDITPGX_PGXSUITE_MODES"); env != "" {
		selected = strings.Split(env, ",")
	}
	for _, mode := range selected {
		if !slices.Contains(modes, mode) {
			t.Fatalf("unknown mode %q (want %s)", mode, strings.Join(modes, ", "))
		}
		t.Run(mode, func(t *testing.T) { runMode(t, dir, bin, mode) })
	}
}

func runMode(t *testing.T, dir, bin, mode string) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	registered := suiteTables
	if mode == none {
		registered = nil
	}

	// The entry table, made by auditpgx; the instrumentation, as the
	// superuser pgtest connects as.
	conn, err := auditpgx.NewConnector(dsn)
	if err != nil {
		t.Fatal(err)
	}
	audited := sql.OpenDB(conn)
	defer audited.Close()
	if err := auditpgx.Migrate(ctx, audited); err != nil {
		t.Fatal(err)
	}
	plain, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	dblink, err := pgxsuite.Instrument(ctx, plain, registered, mode == sharedPK, libpqConnString(t, dsn))
	if err != nil {
		t.Fatal(err)
	}
	if !dblink {
		t.Logf("no dblink: statements whose transaction rolls back are not checked")
	}

	glueMode := mode
	if mode == sharedPK {
		glueMode = shared
	}
	run, err := pgxsuite.RunSuite(ctx, dir, bin, []string{
		"PGX_TEST_DATABASE=" + dsn,
		"AUDITPGX_SUITE_MODE=" + glueMode,
		"AUDITPGX_SUITE_TABLES=" + strings.Join(registered, ","),
	}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	v, err := pgxsuite.Verify(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}

	tp, tf, ts := run.Counts(true)
	sp, sf, ss := run.Counts(false)
	t.Logf("mode %s: tests %d passed, %d failed, %d skipped; subtests %d passed, %d failed, %d skipped; in %v",
		mode, tp, tf, ts, sp, sf, ss, run.Duration.Round(time.Millisecond))
	t.Logf("committed row changes %v; entries %v", v.Changes, v.Entries)

	happened := map[int]bool{} // index in knownFailures
	for _, ft := range run.Failures() {
		summary := ft.Summary(700)
		i := expected(mode, ft.Name, summary)
		if i < 0 {
			t.Errorf("unexpected failure of %s: %s", ft.Name, summary)
			continue
		}
		happened[i] = true
		t.Logf("known failure: %s (%s)", ft.Name, knownFailures[i].Reason)
	}
	if run.Package == "fail" && len(run.Failures()) == 0 {
		t.Errorf("the suite failed outside any test:\n  %s", strings.Join(run.Output[max(0, len(run.Output)-30):], "\n  "))
	}
	for i, k := range knownFailures {
		if (k.Modes == nil || slices.Contains(k.Modes, mode)) && !happened[i] {
			t.Errorf("expected failure of %s did not happen (%s): remove it from knownFailures", k.Test, k.Reason)
		}
	}

	// Every mismatch between entries and row changes, committed or (with
	// dblink) rolled back, fails, attributed to the test running then.
	byTest := map[string][]string{}
	for _, mm := range slices.Concat(v.Statements, v.Committed) {
		name := run.At(mm.At)
		if name == "" {
			name = "(between tests)"
		}
		byTest[name] = append(byTest[name], mm.String())
	}
	names := make([]string, 0, len(byTest))
	for name := range byTest {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		mms := byTest[name]
		if len(mms) > 5 {
			mms = append(mms[:5], fmt.Sprintf("… and %d more", len(mms)-5))
		}
		t.Errorf("entries do not match row changes in %s:\n  %s", name, strings.Join(mms, "\n  "))
	}
}

// expected returns the index in knownFailures of the failure of test, with
// summary, in mode; -1 if none.
func expected(mode, test, summary string) int {
	for i, k := range knownFailures {
		if (k.Modes == nil || slices.Contains(k.Modes, mode)) &&
			(test == k.Test || strings.HasPrefix(test, k.Test+"/")) && strings.Contains(summary, k.Match) {
			return i
		}
	}
	return -1
}

// libpqConnString renders dsn as a libpq keyword/value string, for dblink.
func libpqConnString(t *testing.T, dsn string) string {
	c, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := func(s string) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'" }
	s := "host=" + q(c.Host) + " port=" + strconv.Itoa(int(c.Port)) + " dbname=" + q(c.Database) + " user=" + q(c.User)
	if c.Password != "" {
		s += " password=" + q(c.Password)
	}
	return s
}
