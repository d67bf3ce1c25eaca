// Package pgtest gives tests a throwaway PostgreSQL server.
//
// Each test binary shares one server, started on first use and stopped when
// the tests end. A test package wires it up once in TestMain and then asks for
// an isolated schema or database per test:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
//	func TestInsert(t *testing.T) {
//		dsn, _ := pgtest.NewSchema(t)
//		db, err := sql.Open("pgx", dsn)
//		...
//	}
//
// The server is a fresh cluster made with initdb in a temporary directory,
// using the binaries in $AUDITPGX_PG_BIN, else those on PATH, else the newest
// under /usr/lib/postgresql. When AUDITPGX_TEST_DATABASE_URL is set, that
// server is used instead and nothing is launched. When no server can be had,
// the test fails with the reason; pgtest never skips a test.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver of OpenSchema

	"github.com/auditpgx/auditpgx/internal/testlayout"
)

// envTestDatabaseURL names the environment variable that points the shared
// server at an existing PostgreSQL, given as a postgres:// URL.
const envTestDatabaseURL = "AUDITPGX_TEST_DATABASE_URL"

const (
	sharedStartTimeout = 2 * time.Minute
	adminTimeout       = 30 * time.Second
	maxIdentifierLen   = 63
)

var shared struct {
	mu         sync.Mutex
	mainCalled bool
	srv        *Server
	err        error // why the server could not be started; kept so later tests fail fast
}

// Main is for TestMain: os.Exit(pgtest.Main(m)). It runs the tests and then
// stops the shared server if one was started. A failure to stop it is printed
// and turns a passing run into exit code 1.
//
// Main also applies $AUDITPGX_TEST_ENTRY_LAYOUT (see internal/testlayout):
// with "partitioned", the entry tables that store.Migrate creates are
// partitioned. Any other value but "plain" fails the run.
func Main(m *testing.M) int {
	layout, err := testlayout.FromEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		return 2
	}
	testlayout.Set(layout)

	shared.mu.Lock()
	shared.mainCalled = true
	shared.mu.Unlock()

	code := m.Run()

	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil {
		return code
	}
	if err := shared.srv.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: stopping the shared server: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	shared.srv = nil
	return code
}

// Shared returns the test binary's shared server, starting it on first call.
// It fails t with the reason when no server can be had, or when the package's
// TestMain does not call Main (which is what stops the server).
func Shared(t testing.TB) *Server {
	t.Helper()
	srv, err := sharedServer()
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// URL returns the shared server's base URL, as Shared does.
func URL(t testing.TB) string {
	t.Helper()
	return Shared(t).URL()
}

func sharedServer() (*Server, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.mainCalled {
		return nil, errors.New("pgtest: TestMain must call os.Exit(pgtest.Main(m)) so that the shared server is stopped")
	}
	if shared.srv == nil && shared.err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), sharedStartTimeout)
		defer cancel()
		// Logical: the WAL sink's tests decode the shared server's WAL.
		shared.srv, shared.err = Start(ctx, envTestDatabaseURL, Logical())
	}
	return shared.srv, shared.err
}

// NewSchema creates an empty schema on the shared server and returns a DSN
// whose search_path is exactly that schema, along with the schema's name.
// The name is unique and needs no quoting. The schema and everything in it are
// dropped when the test ends.
func NewSchema(t testing.TB) (dsn, schema string) {
	t.Helper()
	srv := Shared(t)
	schema = uniqueName("t", t.Name())
	if err := srv.exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("pgtest: creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		if err := srv.exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("pgtest: dropping schema %s: %v", schema, err)
		}
	})
	return srv.dsn(func(u *url.URL) {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
	}), schema
}

// NewDatabase creates an empty database on the shared server and returns its
// DSN. The name is unique and needs no quoting. The database is dropped when
// the test ends, closing any connections still open to it.
func NewDatabase(t testing.TB) string {
	t.Helper()
	srv := Shared(t)
	name := uniqueName("d", t.Name())
	if err := srv.exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := srv.exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})
	return srv.dsn(func(u *url.URL) { u.Path = "/" + name })
}

// uniqueName returns prefix_<test name>_<random hex> made of lowercase letters,
// digits and underscores and at most 63 bytes long, PostgreSQL's limit, so it
// can be written into SQL unquoted.
func uniqueName(prefix, testName string) string {
	suffix := fmt.Sprintf("%08x", rand.Uint32())
	name := sanitize(testName)
	if room := maxIdentifierLen - len(prefix) - len(suffix) - 2; len(name) > room {
		name = strings.TrimRight(name[:room], "_")
	}
	if name == "" {
		return prefix + "_" + suffix
	}
	return prefix + "_" + name + "_" + suffix
}

// sanitize lowercases s and turns each run of other characters than ASCII
// letters and digits into a single underscore, trimming them at both ends.
func sanitize(s string) string {
	var b strings.Builder
	gap := false
	for _, r := range strings.ToLower(s) {
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' {
			if gap && b.Len() > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
			gap = false
			continue
		}
		gap = true
	}
	return b.String()
}

// ExampleSchema is NewSchema for a testable example, which has no
// testing.TB: it panics when no server can be had, and done drops the
// schema. The package's TestMain must call Main, as for tests.
func ExampleSchema(name string) (dsn string, done func()) {
	srv, err := sharedServer()
	if err != nil {
		panic(err)
	}
	schema := uniqueName("x", name)
	if err := srv.exec("CREATE SCHEMA " + schema); err != nil {
		panic(fmt.Sprintf("pgtest: creating schema %s: %v", schema, err))
	}
	dsn = srv.dsn(func(u *url.URL) {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
	})
	return dsn, func() {
		if err := srv.exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			panic(fmt.Sprintf("pgtest: dropping schema %s: %v", schema, err))
		}
	}
}

// OpenSchema opens a *sql.DB through pgx on a NewSchema, closed when t
// ends.
func OpenSchema(t testing.TB) *sql.DB {
	t.Helper()
	dsn, _ := NewSchema(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
