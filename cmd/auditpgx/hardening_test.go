package main

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func readGolden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".golden"))
	require.NoError(t, err)
	return string(b)
}

// Times are printed in UTC whatever offset they were given with, or the
// local zone of now for a duration.
func TestOutputTimesUTC(t *testing.T) {
	env := seed(t)
	out := runOK(t, env, "as-of", "--json", "users", "2", "2024-03-01T13:40:00+01:00")
	require.Contains(t, out, `"as_of":"2024-03-01T12:40:00Z"`)

	code, _, errOut := call(env, "as-of", "users", "2", "2024-03-01T13:29:00+01:00")
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, `users "2" did not exist at 2024-03-01T12:29:00Z`)

	code, _, errOut = call(env, "log", "--since", "2024-03-02T01:00:00+01:00", "--until", "2024-03-01T01:00:00+01:00")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "--until 2024-03-01T00:00:00Z is before --since 2024-03-02T00:00:00Z")

	// A duration back from a now in another zone.
	var stdout, stderr bytes.Buffer
	e := env2(env, &stdout, &stderr, time.Date(2024, 3, 1, 13, 50, 0, 0, time.FixedZone("CET", 3600)))
	require.NoError(t, runAsOf(context.Background(), e, []string{"users", "1", "30m"}))
	require.True(t, strings.HasPrefix(stdout.String(), "users 1 as of 2024-03-01T12:20:00Z\n"), stdout.String())
}

// env2 is an env for calling a command directly, with a fixed now.
func env2(vars map[string]string, stdout, stderr io.Writer, now time.Time) env {
	return env{stdout: stdout, stderr: stderr, getenv: func(k string) string { return vars[k] },
		now: func() time.Time { return now }}
}

// A key written in any JSON spelling finds the object its canonical
// object_id names.
func TestKeySpellings(t *testing.T) {
	env := seed(t)
	for _, id := range []string{`[7, "us"]`, ` [ 7 ,"us" ] `, `[7e0,"\u0075s"]`, "[7,\n\"us\"]"} {
		require.Equal(t, readGolden(t, "history_composite"), runOK(t, env, "history", "stock", id), id)
		require.Equal(t, readGolden(t, "as_of_json"), runOK(t, env, "as-of", "stock", id, "2024-03-02", "--json"), id)
		require.Equal(t, readGolden(t, "log_object"), runOK(t, env, "log", "--table=stock", "--id="+id), id)
	}
	require.Equal(t, runOK(t, env, "history", "users", "2"), runOK(t, env, "history", "users", `"2"`))
	require.Equal(t, runOK(t, env, "log", "--id", "2"), runOK(t, env, "log", "--id", ` "2"`))
	out := runOK(t, env, "as-of", "stock", `[7, "eu"]`, "2024-03-01T12:20:00Z")
	require.True(t, strings.HasPrefix(out, `stock [7,"eu"] as of 2024-03-01T12:20:00Z`), out)

	code, out, errOut := call(env, "history", "stock", `[8, "us"]`)
	require.Equal(t, exitOK, code)
	require.Empty(t, out)
	require.Equal(t, "no entries for stock \"[8, \\\"us\\\"]\"\n", errOut)
}

// A table that neither entries nor the catalog know is an error; a table
// that merely has no entries is not.
func TestUnknownTable(t *testing.T) {
	env := seed(t)
	db, err := sql.Open("pgx", env["DATABASE_URL"])
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`CREATE TABLE quiet (id int PRIMARY KEY)`)
	require.NoError(t, err)

	for _, args := range [][]string{
		{"history", "usres", "1"},
		{"as-of", "usres", "1", "2024-03-02"},
		{"log", "--table", "usres"},
		{"log", "--table", "usres", "--id", `[1, "x"]`},
		{"history", `"unterminated`, "1"},
	} {
		code, out, errOut := call(env, args...)
		require.Equal(t, exitError, code, "%q: %s", args, errOut)
		require.Empty(t, out)
		require.Contains(t, errOut, "unknown table", "%q", args)
		require.Contains(t, errOut, "no entry names it and the database has no such table", "%q", args)
	}

	code, out, errOut := call(env, "history", "quiet", "1")
	require.Equal(t, exitOK, code, errOut)
	require.Empty(t, out)
	require.Equal(t, "no entries for quiet \"1\"\n", errOut)
	code, out, _ = call(env, "log", "--table", "quiet")
	require.Equal(t, exitOK, code)
	require.Equal(t, "ID  CREATED  ACTOR  OPERATION  TABLE  OBJECT  CHANGES\n", out)
	code, _, errOut = call(env, "as-of", "quiet", "1", "2024-03-02")
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, `quiet "1" did not exist at 2024-03-02T00:00:00Z`)

	// Known from its entries only (no such table in the catalog).
	code, out, _ = call(env, "history", "teams", "9")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "associate teams 9")

	// Text PostgreSQL cannot take is refused before anything is sent.
	for _, args := range [][]string{
		{"history", "users", "\xff"},
		{"as-of", "us\xffers", "1", "2024-03-02"},
		{"log", "--actor", "\xfe"},
	} {
		code, _, errOut := call(env, args...)
		require.Equal(t, exitUsage, code, "%q", args)
		require.Contains(t, errOut, "is not valid UTF-8 text", "%q", args)
	}
}

// serve listens on loopback unless an address says otherwise.
func TestServeDefaultAddress(t *testing.T) {
	env := seed(t)
	env["AUDITPGX_TOKEN"] = "t"
	_, _, errOut := call(env, "help", "serve")
	require.Contains(t, errOut, `(default "127.0.0.1:8080")`)

	serve := func(args ...string) string {
		ctx, cancel := context.WithCancel(context.Background())
		var stderr syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, append([]string{"serve", "--auth", "token"}, args...), io.Discard, &stderr,
				func(k string) string { return env[k] })
		}()
		require.Eventually(t, func() bool {
			s := stderr.String()
			return strings.Contains(s, "serving the audit log on") || strings.Contains(s, "--addr")
		}, 10*time.Second, 10*time.Millisecond)
		cancel()
		<-done
		return stderr.String()
	}
	// Without --addr: 127.0.0.1:8080, or, should another process hold that
	// port, an error naming it.
	if ln, err := net.Listen("tcp", defaultAddr); err == nil {
		ln.Close()
		require.Contains(t, serve(), "serving the audit log on http://127.0.0.1:8080 ")
	} else {
		require.Contains(t, serve(), "--addr: listen tcp 127.0.0.1:8080")
	}
	// An address without a host means every interface.
	out := serve("--addr", ":0")
	_, rest, ok := strings.Cut(out, "serving the audit log on http://")
	require.True(t, ok, out)
	host, _, err := net.SplitHostPort(strings.Fields(rest)[0])
	require.NoError(t, err)
	require.True(t, net.ParseIP(host).IsUnspecified(), out)
}
