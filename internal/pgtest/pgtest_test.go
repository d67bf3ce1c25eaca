package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func TestStartLaunchesAndStops(t *testing.T) {
	t.Setenv("PGTEST_UNSET_URL", "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	srv, err := Start(ctx, "PGTEST_UNSET_URL")
	if err != nil {
		t.Fatal(err)
	}
	dir := srv.cluster.dir
	if srv.Version() < 130000 {
		t.Errorf("Version() = %d, want a server_version_num of at least 130000", srv.Version())
	}
	if got := queryString(t, srv.URL(), "SELECT 'ok'"); got != "ok" {
		t.Errorf("SELECT 'ok' = %q", got)
	}

	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster directory %s still there after Stop (stat: %v)", dir, err)
	}
	if _, err := queryVersion(ctx, srv.URL()); err == nil {
		t.Error("server still accepts connections after Stop")
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStartDurable(t *testing.T) {
	durability := `SELECT current_setting('fsync') || ' ' || current_setting('synchronous_commit') || ' ' || current_setting('full_page_writes')`
	if srv := Shared(t); srv.cluster != nil {
		if got := queryString(t, srv.URL(), durability); got != "off off off" {
			t.Errorf("default server: fsync, synchronous_commit, full_page_writes = %q, want off off off", got)
		}
	}
	t.Setenv("PGTEST_UNSET_URL", "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := Start(ctx, "PGTEST_UNSET_URL", Durable())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}()
	if got := queryString(t, srv.URL(), durability); got != "on on on" {
		t.Errorf("Durable: fsync, synchronous_commit, full_page_writes = %q, want on on on", got)
	}
}

func TestStartUsesExistingServer(t *testing.T) {
	base := URL(t)
	t.Setenv("PGTEST_EXISTING_URL", base)

	srv, err := Start(context.Background(), "PGTEST_EXISTING_URL")
	if err != nil {
		t.Fatal(err)
	}
	if srv.URL() != base || srv.Version() != Shared(t).Version() {
		t.Errorf("Start = %s version %d, want the shared server %s", srv.URL(), srv.Version(), base)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if got := queryString(t, base, "SELECT 'still up'"); got != "still up" {
		t.Errorf("after Stop of an existing server: %q", got)
	}
}

func TestStartRejectsKeywordDSN(t *testing.T) {
	t.Setenv("PGTEST_BAD_URL", "host=localhost password=secret")
	_, err := Start(context.Background(), "PGTEST_BAD_URL")
	if err == nil || !strings.Contains(err.Error(), "PGTEST_BAD_URL must be a postgres:// URL") {
		t.Fatalf("Start = %v, want an error naming PGTEST_BAD_URL", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error reveals the DSN: %v", err)
	}
}

func TestNewSchemaIsolates(t *testing.T) {
	dsnA, schemaA := NewSchema(t)
	dsnB, _ := NewSchema(t)

	if got := queryString(t, dsnA, "SHOW search_path"); got != schemaA {
		t.Errorf("search_path = %q, want %q", got, schemaA)
	}
	a := open(t, dsnA)
	if _, err := a.Exec("CREATE TABLE widgets (id int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec("INSERT INTO widgets VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	_, err := open(t, dsnB).Exec("SELECT * FROM widgets")
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != "42P01" {
		t.Errorf("widgets from the other schema: err = %v, want undefined_table (42P01)", err)
	}
}

func TestNewSchemaDroppedAtCleanup(t *testing.T) {
	var schema string
	t.Run("inner", func(t *testing.T) { _, schema = NewSchema(t) })
	if got := queryString(t, URL(t), "SELECT count(*)::text FROM pg_namespace WHERE nspname = '"+schema+"'"); got != "0" {
		t.Errorf("schema %s still exists after its test ended", schema)
	}
}

func TestNewDatabase(t *testing.T) {
	outer := t
	var name string
	t.Run("inner", func(t *testing.T) {
		dsn := NewDatabase(t)
		name = queryString(t, dsn, "SELECT current_database()")
		if !identifier.MatchString(name) || name == "postgres" {
			t.Fatalf("current_database() = %q, want a fresh database", name)
		}
		// Closed only when the outer test ends, so dropping the database
		// must close this pool's idle connection itself.
		db := open(outer, dsn)
		if _, err := db.Exec("CREATE TABLE widgets (id int)"); err != nil {
			t.Fatal(err)
		}
	})
	if got := queryString(t, URL(t), "SELECT count(*)::text FROM pg_database WHERE datname = '"+name+"'"); got != "0" {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestNewSchemaParallelNamesDiffer(t *testing.T) {
	var (
		mu    sync.Mutex
		names []string
	)
	t.Run("group", func(t *testing.T) {
		for _, sub := range []string{"same", "same"} {
			t.Run(sub, func(t *testing.T) {
				t.Parallel()
				_, schema := NewSchema(t)
				mu.Lock()
				names = append(names, schema)
				mu.Unlock()
			})
		}
	})
	if len(names) != 2 || names[0] == names[1] {
		t.Errorf("parallel NewSchema names = %q, want two different names", names)
	}
}

func TestUniqueName(t *testing.T) {
	for _, testName := range []string{
		"TestX",
		"TestInsert/with_RETURNING#01",
		"Test Ünïcode/ 'quoted' \"name\"",
		"///",
		strings.Repeat("TestVeryLongName/", 10),
	} {
		got := uniqueName("t", testName)
		if !identifier.MatchString(got) || !strings.HasPrefix(got, "t_") || strings.Contains(got, "__") {
			t.Errorf("uniqueName(%q) = %q, want t_ then lowercase letters, digits and single underscores, at most 63 bytes", testName, got)
		}
	}
	if got := uniqueName("t", "TestInsert/with_RETURNING#01"); !strings.HasPrefix(got, "t_testinsert_with_returning_01_") {
		t.Errorf("uniqueName kept too little of the test name: %q", got)
	}
}

func open(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func queryString(t *testing.T, dsn, query string) string {
	t.Helper()
	db := open(t, dsn)
	var s string
	if err := db.QueryRow(query).Scan(&s); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return s
}
