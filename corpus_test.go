package auditpgx_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/internal/parse"
	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/internal/registry"
	"github.com/auditpgx/auditpgx/store"
)

// The golden corpus: testdata/rewrite/<case>/ holds one statement with
// everything needed to run it and what must come of it.
//
//	setup.sql      DDL and data, run through plain pgx in a fresh schema
//	register.json  the tables, join tables and actor (see corpusRegister)
//	input.sql      the statement, exactly as an application sends it
//	args.json      its arguments, a JSON array (optional)
//	case.json      what the case is about, and run options (optional; corpusOptions)
//	rewrite.sql    the rewrite auditpgx runs for Exec, or the pass-through
//	               marker; rewrite.pgNN.sql overrides it from PostgreSQL NN on
//	entries.json   the entries it must write, one JSON object a line
//	refused.txt    for a statement that must be refused: a substring of the
//	               error, which wraps ErrUnaudited or ErrAppendOnly
//
// Each case runs four times on fresh copies of its setup: through pgx and
// through auditpgx, with ExecContext and with QueryContext. The two sides
// must agree on everything a caller sees (errors and SQLSTATE,
// RowsAffected, columns, column types, rows) and leave identical tables and
// sequences; the audited side must match rewrite.sql and, for each call
// that succeeded, entries.json (a failed call must leave no entry). A case
// with refused.txt runs only through auditpgx, and nothing may change.
// Every committed rewrite.sql is also EXPLAINed, unexecuted, on the case's
// setup, so the goldens are known to be SQL PostgreSQL accepts.
//
// go test -run TestCorpus -update rewrites rewrite.sql and entries.json
// from what the code does; read the diff before committing it, since the
// goldens must say what is right, not what the code happens to do. Cases
// whose case.json says "by_hand" keep their hand-written entries.json.

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/rewrite from the code's output")

const corpusDir = "testdata/rewrite"

// passMarker is rewrite.sql of a statement that reaches pgx unchanged.
// corpusCleanup registers cleanups that run after every case of TestCorpus.
var corpusCleanup func(func())

const passMarker = "-- pass-through: the statement reaches pgx unchanged"

type corpusRegister struct {
	Tables []struct {
		Name    string   `json:"name"`
		Exclude []string `json:"exclude"`
		Redact  []string `json:"redact"`
		Only    []string `json:"only"`
		// RecordTruncate registers the table with auditpgx.RecordTruncate.
		RecordTruncate bool `json:"record_truncate"`
	} `json:"tables"`
	M2M []struct {
		Table   string    `json:"table"`
		Field   string    `json:"field"`
		Owner   corpusRef `json:"owner"`
		Related corpusRef `json:"related"`
	} `json:"m2m"`
	// Actor is set on the audited calls' context; entries carry it.
	Actor *string `json:"actor"`
}

type corpusRef struct {
	Table  string `json:"table"`
	Column string `json:"column"`
}

type corpusOptions struct {
	// About says what the case pins down.
	About string `json:"about"`
	// Database runs the case in a fresh database rather than a schema, for
	// setups that create schemas; the search_path is then the default.
	Database bool `json:"database"`
	// AnyOrder compares result rows and entries as multisets, for
	// statements that define no order.
	AnyOrder bool `json:"any_order"`
	// MinServerVersion and MaxServerVersion (server_version_num) bound the
	// servers the case applies to; it is skipped on others.
	MinServerVersion int `json:"min_server_version"`
	MaxServerVersion int `json:"max_server_version"`
	// ByHand marks an entries.json written by hand for behaviour the code
	// did not have yet: -update leaves it alone, and writes rewrite.sql
	// only once the case passes.
	ByHand bool `json:"by_hand"`
	// WALRefused is, for a statement the table sink records and the WAL
	// sink refuses, a substring of the WAL sink's refusal.
	WALRefused string `json:"wal_refused"`
	// PgxQueryRefused is, for a statement the pgx front refuses with
	// Query in the simple protocol (a string of several statements), a
	// substring of the refusal.
	PgxQueryRefused string `json:"pgx_query_refused"`
}

type corpusCase struct {
	name, dir string
	setup     string
	input     string
	args      []any
	reg       corpusRegister
	opt       corpusOptions

	rewrite     string
	hasRewrite  bool
	rewriteFile string   // rewrite.sql, or rewrite.pgNN.sql for servers from NN on
	entries     []string // canonical lines
	hasEntries  bool
	refused     string
	hasRefused  bool

	// -update of a ByHand case: the rewrite, written if the case passes.
	pendingRewrite, pendingFile string
}

func TestCorpus(t *testing.T) {
	t.Parallel()
	dirs, err := filepath.Glob(filepath.Join(corpusDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatalf("no cases under %s", corpusDir)
	}
	version := pgtest.Shared(t).Version()
	// The cases' schemas live in a database of their own, so that the WAL
	// slot reading their messages decodes no other test's DDL. A slot the
	// server still fails to decode (on 18: "could not map filenumber") is
	// moved on, and the cases whose messages it held run again: see
	// walCollector.take.
	corpusDatabase.url, corpusDatabase.once, corpusDatabase.db = pgtest.NewDatabase(t), sync.Once{}, nil // anew for -count
	// The shared WAL slot of the cases that run in that database outlives
	// them all, and is dropped before it (cleanups run last first).
	corpusCleanup = t.Cleanup
	// The slot is made before any case's set-up runs DDL in the database:
	// the one occurrence of that error reproduced here came from a set-up
	// transaction that was creating its tables while the first WAL-mode
	// case created the slot.
	collectorFor(t, corpusDB(t), "", corpusCleanup)
	for _, dir := range dirs {
		c := loadCase(t, dir, version)
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if c.opt.MinServerVersion > 0 && version < c.opt.MinServerVersion ||
				c.opt.MaxServerVersion > 0 && version > c.opt.MaxServerVersion {
				t.Skipf("applies to server_version_num %d..%d; this server is %d", c.opt.MinServerVersion, c.opt.MaxServerVersion, version)
			}
			runCase(t, c)
		})
	}
}

func loadCase(t *testing.T, dir string, version int) *corpusCase {
	t.Helper()
	c := &corpusCase{name: filepath.Base(dir), dir: dir}
	read := func(name string, required bool) (string, bool) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) && !required {
			return "", false
		}
		if err != nil {
			t.Fatalf("case %s: %v", c.name, err)
		}
		return string(b), true
	}
	c.setup, _ = read("setup.sql", true)
	c.input, _ = read("input.sql", true)
	c.input = strings.TrimRight(c.input, "\n")
	reg, _ := read("register.json", true)
	dec := json.NewDecoder(strings.NewReader(reg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c.reg); err != nil {
		t.Fatalf("case %s: register.json: %v", c.name, err)
	}
	if s, ok := read("case.json", false); ok {
		dec := json.NewDecoder(strings.NewReader(s))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c.opt); err != nil {
			t.Fatalf("case %s: case.json: %v", c.name, err)
		}
	}
	if createSchema.MatchString(c.setup) && !c.opt.Database {
		t.Fatalf("case %s: setup.sql creates a schema, which parallel copies would share: set \"database\": true in case.json", c.name)
	}
	if s, ok := read("args.json", false); ok {
		c.args = decodeArgs(t, c.name, s)
	}
	c.rewriteFile = rewriteFile(dir, version)
	c.rewrite, c.hasRewrite = read(c.rewriteFile, false)
	c.refused, c.hasRefused = read("refused.txt", false)
	c.refused = strings.TrimSpace(c.refused)
	if s, ok := read("entries.json", false); ok {
		var raw []json.RawMessage
		if err := json.Unmarshal([]byte(s), &raw); err != nil {
			t.Fatalf("case %s: entries.json: %v", c.name, err)
		}
		for _, r := range raw {
			c.entries = append(c.entries, canonicalJSON(t, r))
		}
		c.hasEntries = true
	}
	if c.hasRefused && (c.hasRewrite || c.hasEntries) {
		t.Fatalf("case %s: refused.txt goes without rewrite.sql and entries.json", c.name)
	}
	return c
}

var createSchema = regexp.MustCompile(`(?i)\bcreate\s+schema\b`)

// rewriteFile names the rewrite golden for a server: the rewrite depends on
// the version (PostgreSQL 18 has RETURNING old.*), so rewrite.pgNN.sql,
// for the highest NN not above the server's major version, overrides
// rewrite.sql.
func rewriteFile(dir string, version int) string {
	best, bestMajor := "rewrite.sql", 0
	files, _ := filepath.Glob(filepath.Join(dir, "rewrite.pg*.sql"))
	for _, f := range files {
		major, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "rewrite.pg"), ".sql"))
		if err == nil && major <= version/10000 && major > bestMajor {
			best, bestMajor = filepath.Base(f), major
		}
	}
	return best
}

// decodeArgs reads args.json: integers become int64, other numbers
// float64, arrays of strings []string and arrays of integers []int64.
func decodeArgs(t *testing.T, name, s string) []any {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var raw []any
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("case %s: args.json: %v", name, err)
	}
	var conv func(v any) any
	conv = func(v any) any {
		switch x := v.(type) {
		case json.Number:
			if i, err := x.Int64(); err == nil {
				return i
			}
			f, _ := x.Float64()
			return f
		case []any:
			if len(x) > 0 {
				if _, ok := x[0].(string); ok {
					out := make([]string, len(x))
					for i, e := range x {
						out[i], _ = e.(string)
					}
					return out
				}
			}
			out := make([]int64, len(x))
			for i, e := range x {
				out[i], _ = conv(e).(int64)
			}
			return out
		case map[string]any:
			b, _ := json.Marshal(x)
			return string(b)
		}
		return v
	}
	for i := range raw {
		raw[i] = conv(raw[i])
	}
	return raw
}

// corpusEnv is one fresh copy of a case's setup.
type corpusEnv struct {
	t       testing.TB
	ctx     context.Context
	schemas []string // snapshot these; nil for every user schema of the database
	plain   *sql.DB
	db      *sql.DB // through auditpgx; nil on the plain side
	c       *corpusCase
	// wal and walPrefix: the audited side sends its entries to the WAL
	// sink, as messages of that prefix, read through wal.
	wal       *walCollector
	walPrefix string
	walGen    int
	// dsn is the connection string of the case's schema; reg the audited
	// side's registry, for the pgx front.
	dsn string
	reg *auditpgx.Registry
}

// corpusAdmin is a pool on the shared server's base database, where the
// fidelity tests' WAL sink runs read their messages.
var corpusAdmin struct {
	once sync.Once
	db   *sql.DB
	err  error
}

// corpusDatabase is the database of TestCorpus's schemas, set by
// TestCorpus before its cases run; corpusDB opens it once for them all.
var corpusDatabase struct {
	url  string
	once sync.Once
	db   *sql.DB
	err  error
}

func corpusDB(t testing.TB) *sql.DB {
	t.Helper()
	corpusDatabase.once.Do(func() {
		corpusDatabase.db, corpusDatabase.err = sql.Open("pgx", corpusDatabase.url)
		if corpusDatabase.err == nil {
			corpusDatabase.db.SetMaxIdleConns(8)
		}
	})
	if corpusDatabase.err != nil {
		t.Fatal(corpusDatabase.err)
	}
	return corpusDatabase.db
}

func corpusAdminDB(t testing.TB) *sql.DB {
	t.Helper()
	url := pgtest.URL(t)
	corpusAdmin.once.Do(func() {
		corpusAdmin.db, corpusAdmin.err = sql.Open("pgx", url)
		if corpusAdmin.err == nil {
			// Keep the connections that parallel cases need.
			corpusAdmin.db.SetMaxIdleConns(8)
		}
	})
	if corpusAdmin.err != nil {
		t.Fatal(corpusAdmin.err)
	}
	return corpusAdmin.db
}

// newCorpusEnv makes a fresh copy of the case's setup: a new schema (or
// database) holding the setup and, on the audited side, the entry table.
// The schema, the setup and the entry table are made in one round trip, and
// store.DDL stands in for Migrate, whose advisory lock would serialize the
// cases.
func newCorpusEnv(t testing.TB, c *corpusCase, audited bool) *corpusEnv {
	return newCorpusEnvSink(t, c, audited, false)
}

// newCorpusEnvSink is newCorpusEnv with the audited side's entries sent to
// the WAL sink when wal is set.
func newCorpusEnvSink(t testing.TB, c *corpusCase, audited, wal bool) *corpusEnv {
	t.Helper()
	e := &corpusEnv{t: t, ctx: context.Background(), c: c}
	ddl := ""
	if audited {
		var err error
		if ddl, err = store.DDL(registry.DefaultEntryTable); err != nil {
			t.Fatal(err)
		}
	}
	u, err := url.Parse(corpusDatabase.url)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if c.opt.Database {
		if u, err = url.Parse(pgtest.NewDatabase(t)); err != nil {
			t.Fatal(err)
		}
		q = u.Query()
	} else {
		schema := fmt.Sprintf("c_%.40s_%08x", strings.ReplaceAll(c.name, "-", "_"), rand.Uint32())
		admin := corpusDB(t)
		// SET LOCAL lasts for the implicit transaction of this one string.
		if _, err := admin.ExecContext(e.ctx, "CREATE SCHEMA "+schema+"; SET LOCAL search_path = "+schema+";\n"+c.setup+";\n"+ddl); err != nil {
			t.Fatalf("setup.sql: %v", err)
		}
		t.Cleanup(func() {
			if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
				t.Errorf("dropping schema %s: %v", schema, err)
			}
		})
		e.schemas = []string{schema}
		q.Set("search_path", schema)
	}
	// Entries render timestamps in the session's time zone.
	q.Set("timezone", "UTC")
	u.RawQuery = q.Encode()
	dsn := u.String()
	e.dsn = dsn

	if e.plain, err = sql.Open("pgx", dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.plain.Close() })
	if c.opt.Database {
		if _, err := e.plain.ExecContext(e.ctx, c.setup+";\n"+ddl); err != nil {
			t.Fatalf("setup.sql: %v", err)
		}
	}
	if !audited {
		return e
	}
	cfg := auditpgx.RegistryConfig{}
	if wal {
		if c.opt.Database {
			e.useWAL(t, e.plain, dsn, t.Cleanup)
		} else {
			e.useWAL(t, corpusDB(t), "", corpusCleanup)
		}
		cfg.Sink = auditpgx.WALSink{Slot: e.wal.slot, Prefix: e.walPrefix}
	}
	reg, err := c.registry(cfg)
	if err != nil {
		t.Fatalf("register.json: %v", err)
	}
	e.reg = reg
	conn, err := auditpgx.NewConnector(dsn, auditpgx.WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	e.db = sql.OpenDB(conn)
	t.Cleanup(func() { e.db.Close() })
	return e
}

func (c *corpusCase) registry(cfg auditpgx.RegistryConfig) (*auditpgx.Registry, error) {
	reg, err := auditpgx.NewRegistry(cfg)
	if err != nil {
		return nil, err
	}
	for _, tb := range c.reg.Tables {
		var opts []auditpgx.TableOption
		if len(tb.Exclude) > 0 {
			opts = append(opts, auditpgx.Exclude(tb.Exclude...))
		}
		if len(tb.Redact) > 0 {
			opts = append(opts, auditpgx.Redact(tb.Redact...))
		}
		if len(tb.Only) > 0 {
			opts = append(opts, auditpgx.Only(tb.Only...))
		}
		if tb.RecordTruncate {
			opts = append(opts, auditpgx.RecordTruncate())
		}
		if err := reg.RegisterTable(tb.Name, opts...); err != nil {
			return nil, err
		}
	}
	for _, m := range c.reg.M2M {
		m2m := auditpgx.M2M{
			Field:   m.Field,
			Owner:   auditpgx.Ref{Table: m.Owner.Table, Column: m.Owner.Column},
			Related: auditpgx.Ref{Table: m.Related.Table, Column: m.Related.Column},
		}
		if err := reg.RegisterM2M(m.Table, m2m); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

func (c *corpusCase) auditCtx() context.Context {
	if c.reg.Actor != nil {
		return auditpgx.WithActor(context.Background(), *c.reg.Actor)
	}
	return context.Background()
}

// modeT is a test's T for one of its goroutines: Fatal ends that goroutine
// only, after marking the test failed.
type modeT struct{ *testing.T }

func (t modeT) Fatal(args ...any) {
	t.Helper()
	t.Error(args...)
	runtime.Goexit()
}

func (t modeT) Fatalf(format string, args ...any) {
	t.Helper()
	t.Errorf(format, args...)
	runtime.Goexit()
}

func (t modeT) FailNow() {
	t.Fail()
	runtime.Goexit()
}

// modeResult is what one call mode left: the entries of a call that
// succeeded (a failed call must leave none).
type modeResult struct {
	ok      bool
	entries []string
}

// runCase runs the Exec and the Query halves of a case side by side: each
// needs its own fresh copies, and the time goes in waiting on the server.
func runCase(t *testing.T, c *corpusCase) {
	modes := []string{"exec", "query", "pgx-exec", "pgx-query"}
	if pgtest.Shared(t).Version() >= 140000 {
		// The WAL sink decodes its messages with pgoutput from 14 on.
		modes = append(modes, "wal-exec", "wal-query")
	}
	results := make([]modeResult, len(modes))
	var wg sync.WaitGroup
	for i, mode := range modes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runMode(modeT{t}, c, mode)
		}()
	}
	wg.Wait()
	var ran []string
	var entries [][]string
	for i, r := range results {
		if r.ok {
			ran = append(ran, modes[i])
			entries = append(entries, r.entries)
		}
	}
	if c.hasRefused {
		return
	}
	if *updateGolden && c.opt.ByHand {
		want := append([]string(nil), c.entries...)
		if c.opt.AnyOrder {
			sort.Strings(want)
		}
		for i := range ran {
			if d := lineDiff(want, entries[i]); d != "" {
				t.Errorf("%s: entries.json, written by hand, (-want +got):\n%s", ran[i], d)
			}
		}
		if !t.Failed() && c.pendingRewrite != "" {
			writeFile(t, c, c.pendingFile, c.pendingRewrite+"\n")
		}
		return
	}
	if *updateGolden {
		var lines []string
		if len(entries) > 0 {
			lines = entries[0]
		}
		writeEntries(t, c, lines)
		return
	}
	want := append([]string(nil), c.entries...)
	if c.opt.AnyOrder {
		sort.Strings(want)
	}
	if !c.hasEntries {
		t.Errorf("no entries.json (run with -update to create it, then check it by hand)")
	}
	for i, mode := range ran {
		if d := lineDiff(want, entries[i]); d != "" {
			t.Errorf("%s: entries.json (-want +got):\n%s", mode, d)
		}
	}
}

// runMode runs a case in one call mode. A WAL mode whose messages the
// server lost (see walCollector.take) runs again, once.
func runMode(t testing.TB, c *corpusCase, mode string) modeResult {
	r, lost := runModeOnce(t, c, mode)
	if lost {
		t.Logf("%s: the WAL slot's messages were lost (logged above); running the mode again", mode)
		if r, lost = runModeOnce(t, c, mode); lost {
			t.Fatalf("%s: the WAL slot's messages were lost again", mode)
		}
	}
	return r
}

func runModeOnce(t testing.TB, c *corpusCase, mode string) (r modeResult, lost bool) {
	if call, ok := strings.CutPrefix(mode, "pgx-"); ok {
		return runPgxMode(t, c, call), false
	}
	mode, wal := strings.CutPrefix(mode, "wal-")
	audited := newCorpusEnvSink(t, c, true, wal)
	if mode == "exec" && !wal {
		checkRewrite(t, c, audited)
		explainGolden(t, c, audited)
	}
	viaDriver := func() *outcome { return run(audited, audited.db, c.auditCtx(), mode) }
	if c.hasRefused {
		return modeResult{}, checkRefused(t, audited, mode, c.refused, viaDriver)
	}
	if wal && c.opt.WALRefused != "" {
		return modeResult{}, checkRefused(t, audited, mode, c.opt.WALRefused, viaDriver)
	}
	plain := newCorpusEnv(t, c, false)
	if wal {
		mode = "wal-" + mode // in messages
	}
	call := strings.TrimPrefix(mode, "wal-")
	want := run(plain, plain.plain, context.Background(), call)
	got := run(audited, audited.db, c.auditCtx(), call)
	if d := lineDiff(want.lines(c.opt.AnyOrder), got.lines(c.opt.AnyOrder)); d != "" {
		t.Errorf("%s: what the caller sees differs between pgx and auditpgx (-pgx +auditpgx):\n%s\npgx error: %v\nauditpgx error: %v",
			mode, d, want.err, got.err)
	}
	if d := lineDiff(plain.snapshot(), audited.snapshot()); d != "" {
		t.Errorf("%s: tables afterwards differ between pgx and auditpgx (-pgx +auditpgx):\n%s", mode, d)
	}
	entries := audited.entries()
	if wal {
		if len(entries) > 0 {
			t.Errorf("%s: the WAL sink wrote %d entry rows", mode, len(entries))
		}
		var ok bool
		if entries, ok = audited.walEntries(); !ok {
			return modeResult{}, true
		}
	}
	if got.err != nil {
		if len(entries) > 0 {
			t.Errorf("%s: the statement failed (%v) but left %d entries", mode, got.err, len(entries))
		}
		return modeResult{}, false
	}
	if c.opt.AnyOrder {
		sort.Strings(entries)
	}
	return modeResult{ok: true, entries: entries}, false
}

// checkRefused runs a case that must be refused: the call fails with
// ErrUnaudited or ErrAppendOnly naming refused.txt, and nothing changes.
// It returns true when the WAL sink's messages were lost (see
// walCollector.take), and so not checked.
func checkRefused(t testing.TB, e *corpusEnv, mode, refused string, run func() *outcome) (lost bool) {
	before := e.snapshot()
	o := run()
	refusal := o.err != nil && (errors.Is(o.err, auditpgx.ErrUnaudited) || errors.Is(o.err, auditpgx.ErrAppendOnly))
	switch {
	case o.err == nil:
		t.Errorf("%s: ran, want refused with %q", mode, refused)
	case !refusal:
		t.Errorf("%s: failed with %v, want a refusal (ErrUnaudited or ErrAppendOnly) with %q", mode, o.err, refused)
	case !strings.Contains(o.err.Error(), refused):
		t.Errorf("%s: refused with %q, want it to contain %q", mode, o.err, refused)
	}
	if d := lineDiff(before, e.snapshot()); d != "" {
		t.Errorf("%s: a refused statement changed the tables (-before +after):\n%s", mode, d)
	}
	if n := len(e.entries()); n > 0 {
		t.Errorf("%s: a refused statement wrote %d entries", mode, n)
	}
	if e.wal != nil {
		entries, ok := e.walEntries()
		if !ok {
			return true
		}
		if n := len(entries); n > 0 {
			t.Errorf("%s: a refused statement sent %d entries to the WAL sink", mode, n)
		}
	}
	return false
}

// checkRewrite compares the planner's rewrite with rewrite.sql.
func checkRewrite(t testing.TB, c *corpusCase, e *corpusEnv) {
	reg, err := c.registry(auditpgx.RegistryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := auditpgx.PlanForCorpus(e.ctx, e.plain, reg, c.input)
	if err != nil {
		t.Fatalf("planning: %v", err)
	}
	var got string
	switch p.Action {
	case "audit":
		got = formatRewrite(p.ExecSQL)
		for _, schema := range e.schemas {
			got = strings.NewReplacer(`"`+schema+`"`, "<schema>", schema, "<schema>").Replace(got)
		}
	case "pass":
		got = passMarker
	case "refuse":
		if !c.hasRefused && !*updateGolden {
			t.Errorf("refused (%v); no refused.txt expects that", p.Err)
		}
		return
	}
	if c.hasRefused {
		t.Errorf("planned as %q, but refused.txt expects a refusal", p.Action)
		return
	}
	if *updateGolden {
		name := c.rewriteFile
		if v := pgtest.Shared(t).Version(); v >= 160000 && (!c.hasRewrite || normalizeSpace(c.rewrite) != normalizeSpace(got)) {
			name = fmt.Sprintf("rewrite.pg%d.sql", v/10000)
		}
		if c.opt.ByHand {
			c.pendingRewrite, c.pendingFile = got, name
			return
		}
		writeFile(t, c, name, got+"\n")
		return
	}
	if !c.hasRewrite {
		t.Errorf("no rewrite.sql (run with -update to create it); the rewrite is:\n%s", got)
		return
	}
	if normalizeSpace(c.rewrite) != normalizeSpace(got) {
		t.Errorf("%s (-want +got):\n%s", c.rewriteFile, lineDiff(strings.Split(strings.TrimSpace(c.rewrite), "\n"), strings.Split(got, "\n")))
	}
}

// explainGolden has PostgreSQL plan, without running, each statement of
// the committed rewrite.sql on the case's setup.
func explainGolden(t testing.TB, c *corpusCase, e *corpusEnv) {
	if !c.hasRewrite || strings.HasPrefix(c.rewrite, passMarker) {
		return
	}
	schema := "public"
	if len(e.schemas) > 0 {
		schema = e.schemas[0]
	}
	text := strings.NewReplacer("<actor>", "'corpus'::text", "<context>", "NULL::jsonb", "<oid>", "0", "<schema>", schema).Replace(c.rewrite)
	st, err := parse.Parse(text)
	if err != nil {
		t.Errorf("rewrite.sql does not parse: %v", err)
		return
	}
	args := c.args
	if st.Count == 1 {
		args = append(append([]any(nil), c.args...), "corpus", nil) // the actor and the entry context
	}
	conn, err := e.plain.Conn(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, sub := range st.Split() {
		switch strings.ToUpper(strings.Fields(sub.SQL)[0]) {
		case "SELECT", "INSERT", "UPDATE", "DELETE", "WITH":
		case "SET":
			// A SET in a string of statements changes how the rest resolve.
			if _, err := conn.ExecContext(e.ctx, sub.SQL); err != nil {
				t.Errorf("rewrite.sql: %v\n%s", err, sub.SQL)
			}
			continue
		default:
			continue
		}
		rows, err := conn.QueryContext(e.ctx, "EXPLAIN "+sub.SQL, args...)
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
			rows.Close()
		}
		if err != nil {
			t.Errorf("EXPLAIN of rewrite.sql: %v\n%s", err, sub.SQL)
		}
	}
	if st.Count > 1 {
		// Leave the pool's connection as it was.
		_, _ = conn.ExecContext(e.ctx, "RESET ALL")
	}
}

var (
	cteStart    = regexp.MustCompile(`(,|WITH|WITH RECURSIVE) (__auditpgx_[a-z]+[0-9]* AS )`)
	tail        = regexp.MustCompile(` (SELECT (count\(\*\) )?FROM __auditpgx_w[0-9]+)$`)
	tableOID    = regexp.MustCompile(`\bc\.oid = [0-9]+\b`)
	resolvedOID = regexp.MustCompile(`\) = [0-9]+::oid\b`)
	nameOID     = regexp.MustCompile(`regclass = [0-9]+::pg_catalog\.oid\b`)
)

// formatRewrite puts each WITH query of the rewrite on a line of its own;
// only whitespace changes, and comparisons ignore whitespace. Table OIDs
// and the case's schema, which differ between copies of a setup, read
// <oid> and <schema>; the actor and the entry context spliced into a
// string of several statements read <actor> and <context>.
func formatRewrite(sql string) string {
	sql = strings.ReplaceAll(sql, "\x00context\x00", "<context>")
	sql = strings.ReplaceAll(sql, "\x00", "<actor>")
	sql = tableOID.ReplaceAllString(sql, "c.oid = <oid>")
	sql = resolvedOID.ReplaceAllString(sql, ") = <oid>::oid")
	sql = nameOID.ReplaceAllString(sql, "regclass = <oid>::pg_catalog.oid")
	// Statements of a string are joined by "\n; " (a statement may end in
	// a line comment, which the newline ends).
	parts := strings.Split(sql, "\n; ")
	var b strings.Builder
	for i, p := range parts {
		p = cteStart.ReplaceAllString(p, "$1\n$2")
		p = strings.ReplaceAll(p, " UNION ALL SELECT ", "\n  UNION ALL SELECT ")
		b.WriteString(tail.ReplaceAllString(p, "\n$1"))
		if i == len(parts)-1 {
			break
		}
		if last := p[strings.LastIndexByte(p, '\n')+1:]; strings.Contains(last, "--") {
			b.WriteString("\n")
		}
		b.WriteString(";\n\n")
	}
	return b.String()
}

func normalizeSpace(s string) string { return strings.Join(strings.Fields(s), " ") }

// outcome is what a caller of database/sql sees.
type outcome struct {
	mode     string
	err      error
	errClass string // "" on success, "pg <SQLSTATE>" or "error"
	affected int64
	tag      string // the pgx front's command tag
	columns  []string
	types    []string
	rows     []string
}

func (o *outcome) fail(err error) {
	o.err = err
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		o.errClass = "pg " + pgErr.Code
	} else {
		o.errClass = "error"
	}
}

func (o *outcome) lines(anyOrder bool) []string {
	out := []string{"error: " + o.errClass}
	if o.mode == "exec" {
		return append(out, fmt.Sprintf("rows affected: %d", o.affected))
	}
	if o.tag != "" {
		out = append(out, "tag: "+o.tag)
	}
	out = append(out, "columns: "+strings.Join(o.columns, ", "))
	for _, ty := range o.types {
		out = append(out, "type: "+ty)
	}
	rows := append([]string(nil), o.rows...)
	if anyOrder {
		sort.Strings(rows)
	}
	for _, r := range rows {
		out = append(out, "row: "+r)
	}
	return out
}

func run(e *corpusEnv, db *sql.DB, ctx context.Context, mode string) *outcome {
	o := &outcome{mode: mode}
	c := e.c
	if mode == "exec" {
		res, err := db.ExecContext(ctx, c.input, c.args...)
		if err != nil {
			o.fail(err)
			return o
		}
		if o.affected, err = res.RowsAffected(); err != nil {
			o.fail(err)
		}
		return o
	}
	rows, err := db.QueryContext(ctx, c.input, c.args...)
	if err != nil {
		o.fail(err)
		return o
	}
	defer rows.Close()
	o.columns, _ = rows.Columns()
	cts, _ := rows.ColumnTypes()
	for _, ct := range cts {
		nullable, nullOK := ct.Nullable()
		length, lengthOK := ct.Length()
		prec, scale, decOK := ct.DecimalSize()
		scan := ""
		if st := ct.ScanType(); st != nil {
			scan = st.String()
		}
		o.types = append(o.types, fmt.Sprintf("%s %s nullable=%v/%v length=%d/%v decimal=%d,%d/%v scan=%s",
			ct.Name(), e.typeName(ct.DatabaseTypeName()), nullable, nullOK, length, lengthOK, prec, scale, decOK, scan))
	}
	for rows.Next() {
		vals := make([]any, len(o.columns))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			o.fail(err)
			return o
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = renderValue(v)
		}
		o.rows = append(o.rows, strings.Join(parts, " | "))
	}
	if err := rows.Err(); err != nil {
		o.fail(err)
	}
	return o
}

var oidOnly = regexp.MustCompile(`^[0-9]+$`)

// typeName names a type pgx reports by OID (enums, row types), which
// differs between the copies of a setup.
func (e *corpusEnv) typeName(name string) string {
	if !oidOnly.MatchString(name) {
		return name
	}
	var out string
	if err := e.plain.QueryRowContext(e.ctx, `SELECT format_type($1::oid, NULL)`, name).Scan(&out); err != nil {
		e.t.Fatal(err)
	}
	return "oid:" + out
}

func renderValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return "time " + x.UTC().Format(time.RFC3339Nano)
	case []byte:
		return fmt.Sprintf("bytes %x", x)
	case string:
		return "string " + strconv.Quote(x)
	}
	return fmt.Sprintf("%T %v", v, v)
}

// snapshot renders every table (bar the entry table) and sequence of the
// case's schemas, one line each.
func (e *corpusEnv) snapshot() []string {
	e.t.Helper()
	filter := `n.nspname = ANY($1)`
	arg := any(e.schemas)
	if e.schemas == nil {
		filter = `n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema' AND $1::text[] IS NULL`
	}
	rows, err := e.plain.QueryContext(e.ctx, `SELECT quote_ident(n.nspname), quote_ident(c.relname), c.relkind::text
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'S') AND c.relname NOT IN ('auditpgx_entry', 'auditpgx_entry_id_seq') AND `+filter+`
		ORDER BY n.nspname, c.relname`, arg)
	if err != nil {
		e.t.Fatal(err)
	}
	type rel struct{ schema, name, kind string }
	var rels []rel
	for rows.Next() {
		var r rel
		if err := rows.Scan(&r.schema, &r.name, &r.kind); err != nil {
			e.t.Fatal(err)
		}
		rels = append(rels, r)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	rows.Close()
	var out []string
	for _, r := range rels {
		q := `SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY to_jsonb(x)::text), '[]')::text FROM ` + r.schema + `.` + r.name + ` x`
		if r.kind == "S" {
			q = `SELECT jsonb_build_object('last_value', last_value, 'is_called', is_called)::text FROM ` + r.schema + `.` + r.name
		}
		var s string
		if err := e.plain.QueryRowContext(e.ctx, q).Scan(&s); err != nil {
			e.t.Fatalf("reading %s.%s: %v", r.schema, r.name, err)
		}
		name := r.name
		if e.schemas == nil {
			name = r.schema + "." + r.name
		}
		out = append(out, name+": "+s)
	}
	return out
}

// corpusEntry is an entry as entries.json writes it.
type corpusEntry struct {
	Operation        string          `json:"operation"`
	TableName        string          `json:"table_name"`
	ObjectID         string          `json:"object_id"`
	RelatedTableName *string         `json:"related_table_name,omitempty"`
	RelatedObjectID  *string         `json:"related_object_id,omitempty"`
	RelatedFieldName *string         `json:"related_field_name,omitempty"`
	CreatedBy        *string         `json:"created_by"`
	Changes          json.RawMessage `json:"changes,omitempty"`
}

// entries returns the entries written, in order, as canonical JSON lines.
func (e *corpusEnv) entries() []string {
	e.t.Helper()
	rows, err := e.plain.QueryContext(e.ctx, `SELECT operation, table_name, object_id, related_table_name, related_object_id,
		related_field_name, created_by, changes::text FROM auditpgx_entry ORDER BY id`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var en corpusEntry
		var changes sql.NullString
		if err := rows.Scan(&en.Operation, &en.TableName, &en.ObjectID, &en.RelatedTableName, &en.RelatedObjectID,
			&en.RelatedFieldName, &en.CreatedBy, &changes); err != nil {
			e.t.Fatal(err)
		}
		if changes.Valid {
			en.Changes = json.RawMessage(changes.String)
		}
		b, err := json.Marshal(en)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, canonicalJSON(e.t, b))
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// canonicalJSON re-renders JSON with sorted keys and no spaces; numbers
// keep their digits, so 1.50 and 1.5 differ as they do in jsonb.
func canonicalJSON(t testing.TB, b []byte) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func writeEntries(t testing.TB, c *corpusCase, lines []string) {
	var b strings.Builder
	b.WriteString("[")
	for i, l := range lines {
		if i > 0 {
			b.WriteString(",")
		}
		// Field order: who and what first, the changes last.
		var en corpusEntry
		if err := json.Unmarshal([]byte(l), &en); err != nil {
			t.Fatal(err)
		}
		one, err := json.Marshal(en)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("\n  " + string(one))
	}
	b.WriteString("\n]\n")
	writeFile(t, c, "entries.json", b.String())
}

func writeFile(t testing.TB, c *corpusCase, name, content string) {
	if err := os.WriteFile(filepath.Join(c.dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// lineDiff returns a "-want +got" line diff, or "" when the lines are equal.
func lineDiff(want, got []string) string {
	n, m := len(want), len(got)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if want[i] == got[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var b strings.Builder
	changed := false
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && want[i] == got[j]:
			b.WriteString("  " + want[i] + "\n")
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			b.WriteString("+ " + got[j] + "\n")
			j, changed = j+1, true
		default:
			b.WriteString("- " + want[i] + "\n")
			i, changed = i+1, true
		}
	}
	if !changed {
		return ""
	}
	return b.String()
}
