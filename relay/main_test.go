package relay

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for store.Migrate
)

func TestMain(m *testing.M) {
	if raw := os.Getenv(childEnv); raw != "" {
		os.Exit(runChild(raw)) // a relay process for TestRunSIGKILLExactlyOnce
	}
	os.Exit(pgtest.Main(m))
}

// env is a source database with a slot, its publication, and the entry
// and state tables, in the source database unless dest was given.
type env struct {
	cfg Config
	src *pgx.Conn // the source database, for emitting
	dst *pgx.Conn // the destination database, for reading
}

// newEnv makes a fresh source database, and a fresh destination one when
// separateDest, a slot of its own, and runs Setup. The slot is dropped at
// cleanup, after every relay of the test has stopped.
func newEnv(t testing.TB, separateDest bool) *env {
	t.Helper()
	ctx := context.Background()
	cfg := Config{
		Source:        pgtest.NewDatabase(t),
		Slot:          fmt.Sprintf("relay_test_%08x", rand.Uint32()),
		FlushInterval: 20 * time.Millisecond,
	}
	if separateDest {
		cfg.Dest = pgtest.NewDatabase(t)
	}
	if err := Setup(ctx, cfg); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() { dropSlot(t, cfg) })
	e := &env{cfg: cfg, src: connect(t, cfg.Source), dst: connect(t, cfg.Source)}
	if separateDest {
		e.dst = connect(t, cfg.Dest)
	}
	return e
}

func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// dropSlot drops the test's slot, waiting for the walsender of a relay
// just stopped to let go of it.
func dropSlot(t testing.TB, cfg Config) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, cfg.Source)
	if err != nil {
		t.Errorf("dropping slot %s: %v", cfg.Slot, err)
		return
	}
	defer conn.Close(ctx)
	for i := 0; ; i++ {
		_, err = conn.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", cfg.Slot)
		if err == nil {
			return
		}
		if i == 50 {
			t.Errorf("dropping slot %s: %v", cfg.Slot, err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// relayRun is a Run in the background.
type relayRun struct {
	cancel context.CancelFunc
	done   chan error
}

// start runs the relay with cfg until stop or the test's end.
func start(t testing.TB, cfg Config) *relayRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &relayRun{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- Run(ctx, cfg) }()
	t.Cleanup(func() { r.stop() })
	return r
}

// stop cancels the run and returns what it returned.
func (r *relayRun) stop() error {
	r.cancel()
	err, ok := <-r.done
	if ok {
		close(r.done)
	}
	return err
}

// entryJSON is a payload entry for object id, with every key.
func entryJSON(id string) map[string]any {
	return map[string]any{
		"created":               "2026-12-06T09:55:08.123456+00:00",
		"created_by":            "alice",
		"operation":             "update",
		"table_name":            "public.items",
		"object_id":             id,
		"changes":               map[string]any{"name": []any{"a", "b"}},
		"tx_id":                 int64(7),
		"statement_fingerprint": "fp",
		"related_table_name":    nil,
		"related_object_id":     nil,
		"related_field_name":    nil,
		"context":               nil,
	}
}

// payloadOf is a version 1 payload of entries for the object ids.
func payloadOf(ids ...string) string {
	es := make([]any, len(ids))
	for i, id := range ids {
		es[i] = entryJSON(id)
	}
	b, err := json.Marshal(map[string]any{"v": 1, "entries": es})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// emit emits a transactional message of the default prefix.
func emit(t testing.TB, db execer, content string) {
	t.Helper()
	if _, err := db.Exec(context.Background(), "SELECT pg_logical_emit_message(true, 'auditpgx', $1::text)", content); err != nil {
		t.Fatal(err)
	}
}

// emitTx emits one message of entries for ids in a transaction of its own.
func emitTx(t testing.TB, conn *pgx.Conn, ids ...string) {
	t.Helper()
	emit(t, conn, payloadOf(ids...))
}

// objectIDs returns the entry table's object ids in id order.
func objectIDs(t testing.TB, conn *pgx.Conn, table string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT object_id FROM "+table+" ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// currentLSN is the end of the source's WAL as inserted: past the commits
// made so far, which pg_current_wal_lsn may not be before the WAL writer
// writes them (the test server commits asynchronously).
func currentLSN(t testing.TB, conn *pgx.Conn) LSN {
	t.Helper()
	var s string
	if err := conn.QueryRow(context.Background(), "SELECT pg_current_wal_insert_lsn()::text").Scan(&s); err != nil {
		t.Fatal(err)
	}
	l, err := parseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// waitConfirmed waits until the slot is confirmed at lsn or later, which
// the relay does once everything before is applied.
func waitConfirmed(t testing.TB, cfg Config, lsn LSN, run *relayRun) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	// One connection polls: a connection per look would load the server
	// the relay is measured on.
	conn, err := pgx.Connect(context.Background(), cfg.Source)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for {
		st, err := lookUpSlot(context.Background(), conn, cmp.Or(cfg.Slot, DefaultSlot))
		if err != nil {
			t.Fatal(err)
		}
		if st.confirmed >= lsn {
			return
		}
		select {
		case err := <-run.done:
			t.Fatalf("relay stopped before confirming %s (at %s): %v", lsn, st.confirmed, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot confirmed at %s after 30 s, want %s or later", st.confirmed, lsn)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// seq returns prefix1 ... prefixN.
func seq(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i+1)
	}
	return out
}

// sameIDs fails t, naming duplicates and missing ids, when got is not
// want.
func sameIDs(t *testing.T, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	seen := map[string]int{}
	for _, g := range got {
		seen[g]++
	}
	var dup, missing []string
	for g, n := range seen {
		if n > 1 {
			dup = append(dup, g)
		}
	}
	for _, w := range want {
		if seen[w] == 0 {
			missing = append(missing, w)
		}
	}
	slices.Sort(dup)
	t.Fatalf("entries differ: %d rows, want %d; duplicated %v, missing %v\ngot  %s\nwant %s",
		len(got), len(want), dup, missing, strings.Join(got, " "), strings.Join(want, " "))
}

var errHook = errors.New("test hook: stopping after the destination commit")

// syncBuffer is a bytes.Buffer safe to read while Run writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
