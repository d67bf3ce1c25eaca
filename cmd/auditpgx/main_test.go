package main

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/internal/pgtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(pgtest.Main(m))
}

var base = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// fixtures are written with fixed times and transaction ids, into a fresh
// entry table whose ids start at 1, so that output is the same every run.
var fixtures = []struct {
	minute         int
	actor          *string
	op, table, obj string
	changes        string
	rel            [3]string
}{
	{0, ptr("alice"), "create", "users", "1", `{"added_fields": {"id": 1, "name": "Ann", "age": 30, "pw": "$encrypted$"}}`, [3]string{}},
	{10, ptr("bob"), "update", "users", "1", `{"changed_fields": {"name": ["Ann", "Anne"], "age": [30, 31]}}`, [3]string{}},
	{15, ptr("alice"), "create", "stock", `[7,"eu"]`, `{"added_fields": {"sku": 7, "region": "eu", "qty": 5, "price": 1.50, "tags": ["a", "b"]}}`, [3]string{}},
	{20, nil, "associate", "teams", "9", "", [3]string{"users", "1", "members"}},
	{30, ptr("carol"), "update", "users", "2", `{"changed_fields": {"id": [1, 2]}}`, [3]string{}},
	{35, ptr("bob"), "update", "stock", `[7,"us"]`, `{"changed_fields": {"region": ["eu", "us"], "qty": [5, null]}}`, [3]string{}},
	{40, ptr("ops\tbot"), "disassociate", "teams", "9", "", [3]string{"users", "2", "members"}},
	{50, ptr("bob"), "delete", "users", "2", `{"removed_fields": {"id": 2, "name": "Anne", "age": 31, "pw": "$encrypted$"}}`, [3]string{}},
	{70, ptr("bob"), "update", "stock", `[7,"us"]`, `{"changed_fields": {}, "replaced_fields": {"sku": 7, "region": "us", "qty": 9, "price": 2.00, "tags": ["a"]}}`, [3]string{}},
	{60, ptr("mallory"), "create", "notes", "a\tb", `{"added_fields": {"id": "a\tb", "body": "line one\nline two", "long": "` + strings.Repeat("x", 80) + `"}}`, [3]string{}},
}

func ptr(s string) *string { return &s }

// seed migrates a fresh schema with the CLI itself and writes the
// fixtures; it returns the environment pointing at it.
func seed(t *testing.T) map[string]string {
	t.Helper()
	ctx := context.Background()
	dsn, _ := pgtest.NewSchema(t)
	env := map[string]string{"DATABASE_URL": dsn}
	out := runOK(t, env, "migrate")
	require.Equal(t, "entry table auditpgx_entry is ready\n", out)

	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	defer db.Close()
	// Tables whose primary keys history and as-of look up.
	_, err = db.ExecContext(ctx, `CREATE TABLE users (id int PRIMARY KEY);
		CREATE TABLE stock (sku int, region text, PRIMARY KEY (sku, region))`)
	require.NoError(t, err)
	null := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	for i, f := range fixtures {
		_, err := db.ExecContext(ctx, `INSERT INTO auditpgx_entry
			(created, created_by, operation, table_name, object_id, changes,
			 related_table_name, related_object_id, related_field_name, tx_id, statement_fingerprint)
			VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, 'fp')`,
			base.Add(time.Duration(f.minute)*time.Minute), f.actor, f.op, f.table, f.obj, null(f.changes),
			null(f.rel[0]), null(f.rel[1]), null(f.rel[2]), 100+i)
		require.NoError(t, err)
	}
	return env
}

func call(env map[string]string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut, func(k string) string { return env[k] })
	return code, out.String(), errOut.String()
}

func runOK(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	code, out, errOut := call(env, args...)
	require.Equal(t, exitOK, code, "auditpgx %s: %s", strings.Join(args, " "), errOut)
	return out
}

// golden compares got with testdata/name.golden, or rewrites it under
// -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./cmd/auditpgx -update to create it")
	if string(want) != got {
		t.Errorf("%s differs (-want +got); if the change is intended, run go test ./cmd/auditpgx -update\n%s",
			path, lineDiff(string(want), got))
	}
}

// lineDiff marks the lines of want and got that differ, position by
// position: enough to read a golden failure.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl == gl {
			b.WriteString("  " + wl + "\n")
			continue
		}
		if i < len(w) {
			b.WriteString("- " + wl + "\n")
		}
		if i < len(g) {
			b.WriteString("+ " + gl + "\n")
		}
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	env := seed(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"log", []string{"log"}},
		{"log_json", []string{"log", "--json"}},
		{"log_filtered", []string{"log", "--table", "users", "--actor", "bob"}},
		{"log_object", []string{"log", "--table=stock", `--id=[7,"us"]`}},
		{"log_since", []string{"log", "--since", "2024-03-01T12:30:00Z", "--until", "2024-03-01 12:50:00"}},
		{"log_limit", []string{"log", "--limit", "2"}},
		{"history", []string{"history", "users", "2"}},
		{"history_json", []string{"history", "--json", "users", "2"}},
		{"history_composite", []string{"history", "stock", `[7,"us"]`}},
		{"history_quoted", []string{"history", "notes", "a\tb"}},
		{"as_of", []string{"as-of", "users", "1", "2024-03-01T12:10:00Z"}},
		{"as_of_moved", []string{"as-of", "users", "2", "2024-03-01T13:40:00+01:00"}},
		{"as_of_json", []string{"as-of", "stock", `[7,"us"]`, "2024-03-02", "--json"}},
		{"as_of_composite", []string{"as-of", "stock", `[7,"us"]`, "2024-03-01 13:00:00"}},
		{"help", []string{"help"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name, runOK(t, env, tc.args...))
		})
	}

	// The note that more entries match goes to stderr.
	_, _, errOut := call(env, "log", "--limit", "2")
	require.Equal(t, "(the latest 2 entries; earlier ones match too: raise --limit or narrow with --since)\n", errOut)
	_, _, errOut = call(env, "log")
	require.Empty(t, errOut)
}

func TestErrors(t *testing.T) {
	env := seed(t)
	noDB := map[string]string{}
	for _, tc := range []struct {
		env    map[string]string
		args   []string
		code   int
		stderr string
	}{
		{env, nil, exitUsage, "Usage:"},
		{env, []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{noDB, []string{"log"}, exitUsage, "auditpgx log: no database: pass --dsn or set DATABASE_URL"},
		{noDB, []string{"migrate"}, exitUsage, "no database"},
		{env, []string{"log", "--limit", "5000"}, exitUsage, "--limit: 5000 is not from 1 to 1000"},
		{env, []string{"log", "--limit", "many"}, exitUsage, `invalid value "many" for flag -limit`},
		{env, []string{"log", "--since", "yesterday"}, exitUsage, `--since: "yesterday" is not a time`},
		{env, []string{"log", "--since", "2024-03-02", "--until", "2024-03-01"}, exitUsage, "--until 2024-03-01T00:00:00Z is before --since"},
		{env, []string{"log", "--nope"}, exitUsage, "flag provided but not defined: -nope"},
		{env, []string{"log", "extra"}, exitUsage, `unexpected argument "extra"`},
		{env, []string{"log", "--entry-table", "a.b.c"}, exitUsage, "--entry-table"},
		{env, []string{"log", "--entry-table", "missing"}, exitError, `"missing"`},
		{env, []string{"history", "users"}, exitUsage, "missing ID"},
		{env, []string{"history"}, exitUsage, "missing TABLE and ID"},
		{env, []string{"history", "users", "1", "2"}, exitUsage, `unexpected argument "2"`},
		{env, []string{"as-of", "users", "1", "noon"}, exitUsage, `TIME: "noon" is not a time`},
		{env, []string{"as-of", "users", "2", "2024-03-01T12:29:00Z"}, exitError, `auditpgx as-of: users "2" did not exist at 2024-03-01T12:29:00Z`},
		{env, []string{"as-of", "users", "2", "2024-03-01T12:50:00Z"}, exitError, `users "2" did not exist`},
		{env, []string{"serve"}, exitUsage, "--auth is required: token (a bearer token from $AUDITPGX_TOKEN) or none"},
		{env, []string{"serve", "--auth", "token"}, exitUsage, "--auth token: the environment variable AUDITPGX_TOKEN is empty or unset"},
		{env, []string{"serve", "--auth", "token", "--token-env", "MY_TOKEN"}, exitUsage, "MY_TOKEN is empty"},
		{env, []string{"serve", "--auth", "basic"}, exitUsage, `--auth: "basic" is not token or none`},
		{env, []string{"log", "--dsn", "postgres://nobody@127.0.0.1:1/none?connect_timeout=5"}, exitError, "auditpgx log: connecting to the database"},
	} {
		code, out, errOut := call(tc.env, tc.args...)
		require.Equal(t, tc.code, code, "auditpgx %q: %s", tc.args, errOut)
		require.Contains(t, errOut, tc.stderr, "auditpgx %q", tc.args)
		require.Empty(t, out, "auditpgx %q", tc.args)
	}

	// history of an object without entries is not an error.
	code, out, errOut := call(env, "history", "users", "42")
	require.Equal(t, exitOK, code)
	require.Empty(t, out)
	require.Equal(t, "no entries for users \"42\"\n", errOut)

	// help for one command prints its flags.
	code, _, errOut = call(env, "help", "log")
	require.Equal(t, exitOK, code)
	require.Contains(t, errOut, "Usage: auditpgx log [flags]")
	require.Contains(t, errOut, "-json")
}

func TestParseTime(t *testing.T) {
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2024-03-01T12:00:00Z":          base,
		"2024-03-01T13:00:00+01:00":     base,
		"2024-03-01T12:00:00.5Z":        base.Add(500 * time.Millisecond),
		"2024-03-01T12:00:00":           base,
		"2024-03-01 12:00:00":           base,
		"2024-03-01":                    base.Add(-12 * time.Hour),
		"90m":                           now.Add(-90 * time.Minute),
		"0s":                            now,
		"2024-03-01T12:00:00.000+00:00": base,
	} {
		got, err := parseTime("--since", in, now)
		require.NoError(t, err, in)
		require.True(t, got.Equal(want), "%s: got %s, want %s", in, got, want)
	}
	for _, in := range []string{"", "-5m", "yesterday", "2024-13-01"} {
		_, err := parseTime("--since", in, now)
		require.Error(t, err, in)
		require.True(t, isUsage(err))
	}
}

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServe(t *testing.T) {
	env := seed(t)
	env["AUDITPGX_TOKEN"] = "s3cret-token"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--auth", "token"}, &stdout, &stderr,
			func(k string) string { return env[k] })
	}()

	var base string
	require.Eventually(t, func() bool {
		_, rest, ok := strings.Cut(stderr.String(), "serving the audit log on ")
		if ok {
			base, _, _ = strings.Cut(rest, " ")
		}
		return ok
	}, 10*time.Second, 10*time.Millisecond, "stderr: %s", stderr.String())

	request := func(method, path, token string) (int, string) {
		req, err := http.NewRequest(method, base+path, nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	code, body := request("GET", "/entries?limit=2", "")
	require.Equal(t, http.StatusUnauthorized, code, body)
	code, _ = request("GET", "/entries", "wrong")
	require.Equal(t, http.StatusUnauthorized, code)
	code, body = request("GET", "/entries?limit=2&table=users", "s3cret-token")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"next":"/entries?cursor=`)
	code, body = request("GET", "/objects/users/1?as_of=2024-03-01T12:10:00Z", "s3cret-token")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"name":"Anne"`)
	code, _ = request("DELETE", "/entries/1", "s3cret-token")
	require.Equal(t, http.StatusMethodNotAllowed, code)
	code, body = request("GET", "/entries?limit=0", "s3cret-token")
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, `parameter \"limit\"`)

	// The web pages: a browser without the token gets the sign-in form,
	// signs in once, and reads the pages with the session cookie.
	code, body = request("GET", "/web/", "")
	require.Equal(t, http.StatusUnauthorized, code)
	require.Contains(t, body, `<form method="post" action="/web/login">`)
	code, body = request("GET", "/web/", "s3cret-token")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "<h1>Activity stream</h1>")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	signIn := func(token string) *http.Response {
		resp, err := noRedirect.PostForm(base+"/web/login", url.Values{"token": {token}})
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	resp := signIn("wrong")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Empty(t, resp.Cookies())
	resp = signIn("s3cret-token")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/web/", resp.Header.Get("Location"))
	require.Len(t, resp.Cookies(), 1)
	cookie := resp.Cookies()[0]
	require.True(t, cookie.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, cookie.SameSite)
	require.NotContains(t, cookie.Value, "s3cret-token")
	req, err := http.NewRequest("GET", base+"/web/?table=users", nil)
	require.NoError(t, err)
	req.AddCookie(cookie)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(page))
	require.Contains(t, string(page), `href="/web/objects/users/1"`)
	resp, err = noRedirect.Get(base + "/web")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the redirect, too, needs the token")

	cancel()
	select {
	case code := <-done:
		require.Equal(t, exitOK, code, stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	require.Contains(t, stderr.String(), "stopped")
	require.Empty(t, stdout.String())
	require.NotContains(t, stderr.String(), "s3cret-token")
}

func TestServeWithoutAuthWarns(t *testing.T) {
	env := seed(t)
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--auth", "none"}, io.Discard, &stderr,
			func(k string) string { return env[k] })
	}()
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "serving the audit log") },
		10*time.Second, 10*time.Millisecond)
	require.Contains(t, stderr.String(), "WARNING: --auth none: anyone who can reach")
	cancel()
	require.Equal(t, exitOK, <-done)
}

// migrate --without-indexes leaves the named indexes out; an unknown one is
// an error that names it.
func TestMigrateWithoutIndexes(t *testing.T) {
	dsn, _ := pgtest.NewSchema(t)
	env := map[string]string{"DATABASE_URL": dsn}
	code, _, stderr := call(env, "migrate", "--without-indexes", "changes,gin")
	require.NotZero(t, code)
	require.Contains(t, stderr, `"gin"`)
	require.Equal(t, "entry table auditpgx_entry is ready\n", runOK(t, env, "migrate", "--without-indexes", "changes,actor"))
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	defer db.Close()
	var n int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'auditpgx_entry'`).Scan(&n))
	require.Equal(t, 5, n, "the primary key and four secondary indexes")
}

// TestLogContext: --context selects entries by their entry context.
func TestLogContext(t *testing.T) {
	env := seed(t)
	db, err := sql.Open("pgx", env["DATABASE_URL"])
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`UPDATE auditpgx_entry SET context = CASE WHEN id % 2 = 0 THEN '{"request_id": "r-even", "n": 2}'::jsonb
		ELSE '{"request_id": "r-odd", "n": 1}'::jsonb END`)
	require.NoError(t, err)
	var even int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM auditpgx_entry WHERE id % 2 = 0`).Scan(&even))
	require.NotZero(t, even)

	for _, args := range [][]string{
		{"log", "--json", "--context", "request_id=r-even"},
		{"log", "--json", "--context", "n=2"},
		{"log", "--json", "--context=request_id=r-even", "--context", "n=2"},
	} {
		out := runOK(t, env, args...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.Len(t, lines, even, "%v", args)
		for _, l := range lines {
			require.Contains(t, l, `"request_id":"r-even"`)
		}
	}
	require.Empty(t, strings.TrimSpace(runOK(t, env, "log", "--json", "--context", `n="2"`)), "a string does not match the number")
	code, _, errOut := call(env, "log", "--context", "no-equals-sign")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "is not key=value")
}

// TestSuppressedEntries: log and history show a suppressed entry as the
// number of rows its statement wrote without entries.
func TestSuppressedEntries(t *testing.T) {
	env := seed(t)
	db, err := sql.Open("pgx", env["DATABASE_URL"])
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`INSERT INTO auditpgx_entry (created, created_by, operation, table_name, object_id, changes, tx_id, context)
		VALUES (now(), 'ops', 'suppressed', 'users', '', '{"rows": 1500}', 999, '{"reason": "backfill"}')`)
	require.NoError(t, err)

	out := runOK(t, env, "log", "--op", "suppressed")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	require.Regexp(t, `ops\s+suppressed\s+users\s+""\s+1500 rows, no entries$`, lines[1])
	out = runOK(t, env, "history", "users", "1")
	require.Contains(t, out, `suppressed users "" at`)
	require.Contains(t, out, "    1500 rows, no entries\n")
	out = runOK(t, env, "log", "--json", "--op", "suppressed")
	require.Contains(t, out, `"rows":1500`)
	code, _, errOut := call(env, "log", "--op", "create,bogus")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, `"bogus" is not a known operation`)
}
