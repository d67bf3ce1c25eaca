package main

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/relay"
)

// assertEventually reports whether cond becomes true within 20 s.
func assertEventually(cond func() bool) bool {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}

// TestRelay: relay --create makes what it needs and copies committed
// messages' entries; relay status shows the slot and what was applied.
func TestRelay(t *testing.T) {
	env, db, slot := relayDatabase(t)
	var err error

	code, _, errOut := call(env, "relay", "status", "--slot", slot)
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "no slot")

	ctx, cancel := context.WithCancel(context.Background())
	var out, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"relay", "--create", "--slot", slot, "--publication", slot}, &out, &stderr, func(k string) string { return env[k] })
	}()
	waitSlotActive(t, db, slot, &stderr)
	entry := `{"created": "2026-12-06T10:00:00+00:00", "created_by": "ops", "operation": "create", "table_name": "users", "object_id": "7",
		"changes": {"added_fields": {"id": 7}, "changed_fields": {}, "removed_fields": {}}, "tx_id": 42, "statement_fingerprint": null,
		"related_table_name": null, "related_object_id": null, "related_field_name": null, "context": {"request_id": "r-1"}}`
	_, err = db.Exec(`SELECT pg_logical_emit_message(true, 'auditpgx', $1)`, `{"v": 1, "entries": [`+entry+`]}`)
	require.NoError(t, err)
	tx, err := db.Begin()
	require.NoError(t, err)
	_, err = tx.Exec(`SELECT pg_logical_emit_message(true, 'auditpgx', $1)`, `{"v": 1, "entries": [`+strings.Replace(entry, `"7"`, `"8"`, 1)+`]}`)
	require.NoError(t, err)
	require.NoError(t, tx.Rollback())
	if !assertEventually(func() bool {
		var n int
		return db.QueryRow(`SELECT count(*) FROM auditpgx_entry`).Scan(&n) == nil && n == 1
	}) {
		_, st, _ := call(env, "relay", "status", "--slot", slot)
		t.Fatalf("the entry was not relayed; relay's log:\n%s\nstatus:\n%s", stderr.String(), st)
	}
	cancel()
	require.Equal(t, exitOK, <-done, stderr.String())

	got := runOK(t, env, "log", "--json")
	require.Contains(t, got, `"object_id":"7"`)
	require.NotContains(t, got, `"object_id":"8"`, "a rolled-back message")
	status := runOK(t, env, "relay", "status", "--slot", slot)
	require.Regexp(t, `(?m)^exists\s+true$`, status)
	require.Regexp(t, `(?m)^applied\s+[0-9A-F]+/[0-9A-F]+$`, status)
	require.Regexp(t, `(?m)^lag\s+\d+ bytes$`, status)

	code, _, errOut = call(env, "relay", "--slot", "Bad Name")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "Slot")
}

// TestRelayWatch: with --watch, a write of a watched table by another
// client becomes an outside entry, with the table's options applied.
func TestRelayWatch(t *testing.T) {
	env, db, slot := relayDatabase(t)
	var err error
	_, err = db.Exec(`CREATE TABLE accounts (id int PRIMARY KEY, owner text, pin text, seen timestamptz)`)
	require.NoError(t, err)

	for _, bad := range []string{":redact=pin", "accounts:redact", "accounts:hide=pin", "accounts:only=,pin",
		"links:field=f:owner=a(x)", "links:field=f:owner=a:related=b(y)", "links:owner=a(x):related=b(y)"} {
		code, _, errOut := call(env, "relay", "--slot", slot, "--watch", bad)
		require.Equal(t, exitUsage, code, bad)
		require.Contains(t, errOut, "-watch", bad)
	}
	code, _, errOut := call(env, "relay", "--create", "--slot", slot, "--publication", slot, "--watch", "accounts")
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "--set-replica-identity")

	ctx, cancel := context.WithCancel(context.Background())
	var out, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"relay", "--create", "--slot", slot, "--publication", slot,
			"--watch", "accounts:redact=pin:exclude=seen", "--set-replica-identity"}, &out, &stderr, func(k string) string { return env[k] })
	}()
	waitSlotActive(t, db, slot, &stderr)
	_, err = db.Exec(`INSERT INTO accounts VALUES (1, 'ann', '1234', now())`)
	require.NoError(t, err)
	if !assertEventually(func() bool {
		var n int
		return db.QueryRow(`SELECT count(*) FROM auditpgx_entry`).Scan(&n) == nil && n == 1
	}) {
		t.Fatalf("no outside entry; relay's log:\n%s", stderr.String())
	}
	cancel()
	require.Equal(t, exitOK, <-done, stderr.String())
	var changes, context_ string
	require.NoError(t, db.QueryRow(`SELECT changes::text, context::text FROM auditpgx_entry`).Scan(&changes, &context_))
	require.JSONEq(t, `{"added_fields": {"id": 1, "owner": "ann", "pin": "$encrypted$"}, "changed_fields": {}, "removed_fields": {}}`, changes)
	require.JSONEq(t, `{"source": "outside"}`, context_)
}

// TestRelaySeal: with --seal-interval and --seal-key-file, relay --create
// makes the seal table and seals what it relays, signed; the seal flags'
// mistakes are usage errors.
func TestRelaySeal(t *testing.T) {
	env, db, slot := relayDatabase(t)
	var err error

	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	keyFile, pubFile := filepath.Join(dir, "seal.pem"), filepath.Join(dir, "seal.pub")
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	der, err = x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644))

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--seal-interval", "-1s"}, "--seal-interval: -1s is negative"},
		{[]string{"--seal-key-file", keyFile}, "--seal-key-file needs --seal-interval"},
		{[]string{"--seal-table", "s"}, "--seal-table needs --seal-interval"},
		{[]string{"--seal-interval", "1m", "--seal-table", "a.b.c"}, "--seal-table: auditpgx: invalid seal table name"},
		{[]string{"--seal-interval", "1m", "--seal-key-file", pubFile}, `--seal-key-file: ` + pubFile + ` holds no PEM block "PRIVATE KEY"`},
		{[]string{"--seal-interval", "1m", "--ndjson", "-"}, "--seal-interval needs an entry table"},
	} {
		code, _, errOut := call(env, append([]string{"relay", "--slot", slot}, tc.args...)...)
		require.Equal(t, exitUsage, code, "%q: %s", tc.args, errOut)
		require.Contains(t, errOut, tc.want, "%q", tc.args)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var out, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"relay", "--create", "--slot", slot, "--publication", slot,
			"--seal-interval", "100ms", "--seal-table", "relay_seal", "--seal-key-file", keyFile}, &out, &stderr, func(k string) string { return env[k] })
	}()
	waitSlotActive(t, db, slot, &stderr)
	entry := `{"created": "2026-12-06T10:00:00+00:00", "created_by": "ops", "operation": "create", "table_name": "users", "object_id": "7",
		"changes": null, "tx_id": 42, "statement_fingerprint": null, "related_table_name": null, "related_object_id": null,
		"related_field_name": null, "context": null}`
	_, err = db.Exec(`SELECT pg_logical_emit_message(true, 'auditpgx', $1)`, `{"v": 1, "entries": [`+entry+`, `+entry+`]}`)
	require.NoError(t, err)
	if !assertEventually(func() bool {
		var n int
		return db.QueryRow(`SELECT coalesce(sum(count), 0) FROM relay_seal`).Scan(&n) == nil && n == 2
	}) {
		t.Fatalf("the entries were not sealed; relay's log:\n%s", stderr.String())
	}
	cancel()
	require.Equal(t, exitOK, <-done, stderr.String())

	got := runOK(t, env, "verify", "--seal-table", "relay_seal", "--public-key", pubFile)
	require.True(t, strings.HasPrefix(got, "verified 2 entries (ids 1 to 2) in 1 checkpoint(s), signatures checked\n"), got)
}

func TestWatchFlag(t *testing.T) {
	var w watchFlag
	require.NoError(t, w.Set("app.users:exclude=last_login:redact=pw,pin"))
	require.NoError(t, w.Set("members:field=members:owner=teams(team_id):related=app.users(user_id)"))
	require.Equal(t, watchFlag{
		{Table: "app.users", Exclude: []string{"last_login"}, Redact: []string{"pw", "pin"}},
		{Table: "members", Link: &relay.WatchLink{Field: "members", OwnerTable: "teams", OwnerColumn: "team_id",
			RelatedTable: "app.users", RelatedColumn: "user_id"}},
	}, w)
	require.Equal(t, "app.users,members", w.String())
}

// waitSlotActive waits until a relay streams from slot.
func waitSlotActive(t *testing.T, db *sql.DB, slot string, stderr *syncBuffer) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n int
		return db.QueryRow(`SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND active`, slot).Scan(&n) == nil && n == 1
	}, 20*time.Second, 50*time.Millisecond, stderr.String())
}

// relayDatabase makes a database of its own for a relay test and returns
// the environment that names it, a pool on it, and a slot name of its
// own, whose slot is dropped at the end.
func relayDatabase(t *testing.T) (env map[string]string, db *sql.DB, slot string) {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	slot = fmt.Sprintf("cli_%08x", rand.Uint32())
	env = map[string]string{"DATABASE_URL": dsn}
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() {
		db.Exec(`SELECT pg_drop_replication_slot($1)`, slot) //nolint:errcheck // the database goes too
		db.Close()
	})
	return env, db, slot
}
