package main

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/auditpgx/auditpgx/internal/pgtest"
)

func TestMain(m *testing.M) {
	if err := register(); err != nil {
		panic(err)
	}
	os.Exit(pgtest.Main(m))
}

func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if err := demo(context.Background(), &out, pgtest.NewDatabase(t), nil); err != nil {
		t.Fatal(err)
	}
	checkOutput(t, out.String())
}

// keywordValue rewrites a postgres:// URL as keyword/value pairs.
func keywordValue(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pairs := []string{"host=" + u.Hostname(), "port=" + u.Port(), "user=" + u.User.Username(),
		"dbname=" + strings.TrimPrefix(u.Path, "/")}
	for k, vs := range u.Query() {
		pairs = append(pairs, k+"="+vs[0])
	}
	return strings.Join(pairs, " ")
}

// AUDITPGX_DATABASE_URL may be a URL or keyword/value pairs, as pgx
// accepts; a wrong one is reported as such, not as a failure to launch a
// server.
func TestStartWithExistingServer(t *testing.T) {
	ctx := context.Background()
	for _, form := range []string{"url", "keyword/value"} {
		dsn := pgtest.NewDatabase(t)
		if form == "keyword/value" {
			dsn = keywordValue(t, dsn)
		}
		var out bytes.Buffer
		if err := start(ctx, &out, env(dsn), nil); err != nil {
			t.Fatalf("%s %q: %v", form, dsn, err)
		}
		checkOutput(t, out.String())
	}

	for _, tc := range []struct{ dsn, want string }{
		{"host=127.0.0.1 port=notaport", "AUDITPGX_DATABASE_URL is not a connection string (a postgres:// URL or keyword/value pairs"},
		{"postgres://nobody@127.0.0.1:notaport/x", "AUDITPGX_DATABASE_URL is not a connection string"},
		{"host=127.0.0.1 port=1 user=nobody dbname=x connect_timeout=5", "on the server that AUDITPGX_DATABASE_URL names: "},
		{"postgres://nobody@127.0.0.1:1/x?connect_timeout=5", "on the server that AUDITPGX_DATABASE_URL names: "},
	} {
		err := start(ctx, io.Discard, env(tc.dsn), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want an error containing %q", tc.dsn, err, tc.want)
			continue
		}
		for _, wrong := range []string{"starting PostgreSQL", "set AUDITPGX_DATABASE_URL", "must be a postgres:// URL"} {
			if strings.Contains(err.Error(), wrong) {
				t.Errorf("%q: the error %q says %q", tc.dsn, err, wrong)
			}
		}
	}
}

func env(dsn string) func(string) string {
	return func(k string) string {
		if k == envDSN {
			return dsn
		}
		return ""
	}
}

func TestWithSearchPath(t *testing.T) {
	for _, dsn := range []string{
		"postgres://app@localhost/app",
		"postgresql://app@localhost:5433/app?sslmode=disable&search_path=public",
		"host=localhost dbname=app",
		"host=/tmp dbname=app search_path=public",
		"dbname='my app' user=app",
	} {
		got, err := withSearchPath(dsn, "demo_1")
		if err != nil {
			t.Fatalf("%q: %v", dsn, err)
		}
		cfg, err := pgx.ParseConfig(got)
		if err != nil {
			t.Fatalf("%q gave %q: %v", dsn, got, err)
		}
		if sp := cfg.RuntimeParams["search_path"]; sp != "demo_1" {
			t.Errorf("%q gave %q: search_path %q", dsn, got, sp)
		}
		orig, _ := pgx.ParseConfig(dsn)
		if cfg.Database != orig.Database || cfg.Host != orig.Host || cfg.Port != orig.Port {
			t.Errorf("%q gave %q: database, host or port changed", dsn, got)
		}
	}
}

// checkOutput checks the demo's output.
func checkOutput(t *testing.T, text string) {
	t.Helper()
	t.Log("\n" + text)

	// Rows with their padding collapsed, so the checks do not depend on
	// column widths.
	var rows []string
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.Trim(f[0], "0123456789") == "" {
			rows = append(rows, strings.Join(f, " "))
		}
	}
	count := func(substr string) int {
		n := 0
		for _, r := range rows {
			if strings.Contains(r, substr) {
				n++
			}
		}
		return n
	}
	for _, c := range []struct {
		substr string
		want   int
	}{
		{" create users ", 3},
		{" create projects ", 4},
		{`bob update users 1 name: "Al" → "Alan" password_hash: "$encrypted$" → "$encrypted$"`, 1},
		{" bob ", 1}, // the UPDATE of last_login alone wrote nothing
		{`{"reason": "ticket #123", "request_id": "req-7f3a"}`, 1},
		{"request_id", 1}, // only bob's request carried a context
		{`carol update projects`, 3},
		{`status: "active" → "archived"`, 3},
		{`carol delete users 3 -email="cy@example.com" -id=3 -name="Cy" -password_hash="$encrypted$"`, 1},
		{"mallory", 0},
	} {
		if got := count(c.substr); got != c.want {
			t.Errorf("%d rows contain %q, want %d", got, c.substr, c.want)
		}
	}
	if len(rows) != 12 {
		t.Errorf("%d entry rows, want 12", len(rows))
	}
	for _, never := range []string{"last_login", "bcrypt:"} {
		if strings.Contains(text, never) {
			t.Errorf("output contains %q, which is excluded or redacted", never)
		}
	}
	if want := "mallory's transaction held 2 entries before ROLLBACK; 0 remain"; !strings.Contains(text, want) {
		t.Errorf("output lacks %q", want)
	}
}
