package relay

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditpgx/auditpgx/store"
)

func TestConfigValidateSeal(t *testing.T) {
	given := &SealConfig{}
	s, err := Config{Source: "postgres://a", Seal: given}.validate()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*s.Seal, SealConfig{Interval: time.Minute, Wait: time.Minute, Table: DefaultSealTable}) || s.sealTable.Quoted() != `"auditpgx_seal"` {
		t.Errorf("defaults not applied: %+v, table %s", *s.Seal, s.sealTable.Quoted())
	}
	if !reflect.DeepEqual(*given, SealConfig{}) {
		t.Errorf("validate changed the caller's SealConfig to %+v", *given)
	}
	s, err = Config{Source: "postgres://a", Seal: &SealConfig{Interval: 5 * time.Second, Table: `Audit."Seal"`}}.validate()
	if err != nil || s.Seal.Wait != 5*time.Second || s.sealTable.Quoted() != `"audit"."Seal"` {
		t.Errorf(`Interval 5s, Table Audit."Seal" gave Wait %s, table %s, %v; want 5s, "audit"."Seal"`, s.Seal.Wait, s.sealTable.Quoted(), err)
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Source: "x", NDJSON: io.Discard, Seal: &SealConfig{}}, "NDJSON"},
		{Config{Source: "x", Seal: &SealConfig{Table: "a.b.c"}}, `Seal.Table "a.b.c"`},
		{Config{Source: "x", Seal: &SealConfig{Table: `"open`}}, "Seal.Table"},
		{Config{Source: "x", Seal: &SealConfig{Signer: make(ed25519.PrivateKey, ed25519.SeedSize)}}, "Seal.Signer is 32 bytes long"},
		{Config{Source: "x", Seal: &SealConfig{Signer: ed25519.PrivateKey{}}}, "Seal.Signer is 0 bytes long"},
	} {
		_, err := c.cfg.validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("validate(%+v) = %v, want ErrConfig naming %s", c.cfg, err, c.want)
		}
		if err := Run(context.Background(), c.cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("Run(%+v) = %v, want ErrConfig", c.cfg, err)
		}
	}
}

// openDB opens dsn with database/sql, for store's functions.
func openDB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// debugLogger returns a logger of every level into buf.
func debugLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// While a workload writes through the driver's WAL sink, a relay with Seal
// seals what it applies, several times while it runs: afterwards Verify
// passes and accounts for every entry, sealed or not yet.
func TestRunSeals(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	dst := openDB(t, e.cfg.Source)
	if err := store.MigrateSeal(ctx, dst, ""); err != nil {
		t.Fatal(err)
	}
	db := openAcctWAL(t, e)

	var logs syncBuffer
	cfg := e.cfg
	cfg.Seal = &SealConfig{Interval: 100 * time.Millisecond}
	cfg.Logger = debugLogger(&logs)
	run := start(t, cfg)

	const writers, ops = 2, 3000
	var (
		count, value atomic.Int64
		mu           sync.Mutex
		want         []string
		rolledBack   int
		wg           sync.WaitGroup
		werr         = make(chan error, writers)
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := writeWorkload(db, w, ops, &count, &value, &mu, &want, &rolledBack); err != nil {
				werr <- err
			}
		}()
	}
	wg.Wait()
	close(werr)
	for err := range werr {
		t.Fatalf("writer: %v", err)
	}
	waitConfirmed(t, cfg, currentLSN(t, e.src), run)
	if err := run.stop(); err != nil {
		t.Fatalf("Run: %v\n%s", err, logs.String())
	}

	var entries int64
	if err := dst.QueryRowContext(ctx, `SELECT count(*) FROM auditpgx_entry`).Scan(&entries); err != nil {
		t.Fatal(err)
	}
	if entries != int64(len(want)) {
		t.Fatalf("%d entries relayed, %d committed", entries, len(want))
	}
	r, err := store.Verify(ctx, dst, store.VerifyOptions{})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if r.Entries+r.Unsealed != entries {
		t.Errorf("Verify: %d entries verified and %d unsealed, want %d in all", r.Entries, r.Unsealed, entries)
	}
	// The entry table was empty when the relay started: the checkpoints
	// were written while it ran, by more than one seal.
	var seals int
	if err := dst.QueryRowContext(ctx, `SELECT count(DISTINCT sealed_at) FROM auditpgx_seal`).Scan(&seals); err != nil {
		t.Fatal(err)
	}
	if seals < 2 || r.Checkpoints < 2 {
		t.Errorf("%d checkpoints written by %d seals, want several seals while the relay ran; log:\n%s", r.Checkpoints, seals, logs.String())
	}
	if !strings.Contains(logs.String(), `msg="auditpgx relay: sealed" checkpoints=`) {
		t.Errorf("no seal logged at Debug:\n%s", logs.String())
	}
	t.Logf("%d entries (%d transactions rolled back), %d sealed in %d checkpoints by %d seals, %d unsealed",
		entries, rolledBack, r.Entries, r.Checkpoints, seals, r.Unsealed)
}

// With Signer, the checkpoints, in Dest, verify with its public key and
// with no other.
func TestRunSealSigned(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.cfg
	cfg.Create = true
	cfg.Seal = &SealConfig{Interval: 50 * time.Millisecond, Table: "signed_seal", Signer: priv}
	run := start(t, cfg)
	ids := seq("s", 30)
	for _, id := range ids {
		emitTx(t, e.src, id)
	}
	waitConfirmed(t, cfg, currentLSN(t, e.src), run)
	dst := openDB(t, cfg.Dest)
	waitSealed(t, dst, "signed_seal", len(ids), run)
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	r, err := store.Verify(ctx, dst, store.VerifyOptions{SealTable: "signed_seal", PublicKey: pub})
	if err != nil || !r.Signed || r.Entries != int64(len(ids)) {
		t.Errorf("Verify with the public key: %+v, %v; want %d entries, signed", r, err, len(ids))
	}
	_, err = store.Verify(ctx, dst, store.VerifyOptions{SealTable: "signed_seal", PublicKey: other})
	if !errors.Is(err, store.ErrTampered) {
		t.Errorf("Verify with another key: %v, want ErrTampered", err)
	}
}

// waitSealed waits until the seal table's checkpoints hold n entries.
func waitSealed(t *testing.T, db *sql.DB, table string, n int, run *relayRun) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var sealed int
		if err := db.QueryRow(`SELECT coalesce(sum(count), 0) FROM ` + table).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		if sealed == n {
			return
		}
		select {
		case err := <-run.done:
			t.Fatalf("relay stopped with %d entries sealed, want %d: %v", sealed, n, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d entries sealed after 30 s, want %d", sealed, n)
		}
	}
}

// A missing seal table fails Run at once, naming it; with Create, Run
// creates it, and so does Setup.
func TestRunSealTableMissing(t *testing.T) {
	e := newEnv(t, false)
	cfg := e.cfg
	cfg.Seal = &SealConfig{Table: "app_seal", Interval: 50 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := Run(ctx, cfg)
	if err == nil || ctx.Err() != nil || errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), `seal table "app_seal" does not exist`) {
		t.Fatalf("Run without the seal table: %v, want an error at once naming it", err)
	}

	exists := func(table string) bool {
		var ok bool
		if err := e.dst.QueryRow(context.Background(), "SELECT to_regclass($1) IS NOT NULL", table).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	cfg.Create = true
	run := start(t, cfg)
	emitTx(t, e.src, "c1")
	waitConfirmed(t, cfg, currentLSN(t, e.src), run)
	waitSealed(t, openDB(t, cfg.Source), "app_seal", 1, run)
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}

	cfg = e.cfg
	cfg.Seal = &SealConfig{Table: "setup_seal"}
	if err := Setup(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if !exists("setup_seal") {
		t.Error("Setup with Seal did not create the seal table")
	}
}

// A seal that gives up waiting for a writer is logged and tried again;
// any other seal error stops Run with that error.
func TestRunSealErrors(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	var logs syncBuffer
	cfg := e.cfg
	cfg.Create = true
	cfg.Seal = &SealConfig{Interval: 50 * time.Millisecond, Wait: 50 * time.Millisecond}
	cfg.Logger = debugLogger(&logs)
	run := start(t, cfg)
	dst := openDB(t, cfg.Source)

	emitTx(t, e.src, "w1")
	waitConfirmed(t, cfg, currentLSN(t, e.src), run)
	waitSealed(t, dst, "auditpgx_seal", 1, run)
	// A writer of the entry table that stays open, with an id below the
	// relay's next entries.
	writer, err := e.dst.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writer.Exec(ctx, `INSERT INTO auditpgx_entry (operation, table_name, object_id, tx_id) VALUES ('create', 't', 'open', 1)`); err != nil {
		t.Fatal(err)
	}
	mark := len(logs.String())
	emitTx(t, e.src, "w2")
	waitConfirmed(t, cfg, currentLSN(t, e.src), run)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(logs.String()[mark:], "level=WARN"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no warning after 30 s with a writer open; log:\n%s", logs.String())
		}
	}
	if !strings.Contains(logs.String()[mark:], "gave up waiting for writers") {
		t.Errorf("the warning does not say why:\n%s", logs.String())
	}
	if err := writer.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	waitSealed(t, dst, "auditpgx_seal", 2, run)

	// Another sealer of the same seal table, as auditpgx seal from cron:
	// when it writes a checkpoint first, the relay tries again later.
	for i := range 40 {
		emitTx(t, e.src, fmt.Sprintf("c%d", i))
		if _, err := store.Seal(ctx, dst, store.SealOptions{}); err != nil && !errors.Is(err, store.ErrSealConflict) {
			t.Fatal(err)
		}
	}
	waitConfirmed(t, cfg, currentLSN(t, e.src), run)
	select {
	case err := <-run.done:
		t.Fatalf("Run ended beside another sealer: %v", err)
	default:
	}
	t.Logf("seal conflicts the relay met: %d", strings.Count(logs.String(), "another seal run"))
	if _, err := store.Seal(ctx, dst, store.SealOptions{}); err != nil && !errors.Is(err, store.ErrSealConflict) {
		t.Fatal(err)
	}
	if _, err := store.Verify(ctx, dst, store.VerifyOptions{}); err != nil {
		t.Fatalf("verify after two sealers: %v", err)
	}

	if _, err := dst.ExecContext(ctx, `DROP TABLE auditpgx_seal`); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-run.done:
		close(run.done)
		if err == nil || !strings.Contains(err.Error(), `seal table "auditpgx_seal"`) {
			t.Errorf("Run after the seal table was dropped: %v, want an error naming it", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run still runs 30 s after its seal table was dropped")
	}
}
