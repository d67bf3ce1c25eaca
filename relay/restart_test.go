package relay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
)

// Stopping the relay anywhere, including between a batch's destination
// commit and its confirmation, and starting it again applies every entry
// once.
func TestRunRestartsExactlyOnce(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	if _, err := e.src.Exec(ctx, "CREATE TABLE unpublished (n int)"); err != nil {
		t.Fatal(err)
	}
	var want []string
	n := 0
	emitRound := func() {
		for range 12 {
			switch rand.IntN(4) {
			case 0: // a transaction without messages
				if _, err := e.src.Exec(ctx, "INSERT INTO unpublished VALUES (1)"); err != nil {
					t.Fatal(err)
				}
			default:
				ids := make([]string, 1+rand.IntN(3))
				for i := range ids {
					n++
					ids[i] = fmt.Sprintf("e%d", n)
				}
				emitTx(t, e.src, ids...)
				want = append(want, ids...)
			}
		}
	}

	crashes := 0
	for round := range 12 {
		setHook(t, nil)
		emitRound()
		cfg := e.cfg
		cfg.BatchEntries = 1 + rand.IntN(4)
		switch round % 3 {
		case 0: // stopped after a destination commit, before its confirmation
			nth := 1 + rand.IntN(3)
			calls := 0
			setHook(t, func(LSN) error {
				if calls++; calls == nth {
					return errHook
				}
				return nil
			})
			run := start(t, cfg)
			select {
			case err := <-run.done:
				close(run.done)
				if !errors.Is(err, errHook) {
					t.Fatalf("round %d: Run returned %v, want the hook's error", round, err)
				}
				crashes++
				st, err := ReadStatus(ctx, e.cfg)
				if err != nil {
					t.Fatal(err)
				}
				if st.Applied <= st.Confirmed {
					t.Fatalf("round %d: state at %s, slot confirmed at %s: the crash left nothing unconfirmed", round, st.Applied, st.Confirmed)
				}
			case <-time.After(5 * time.Second):
				if err := run.stop(); err != nil {
					t.Fatalf("round %d: Run: %v", round, err)
				}
			}
		case 1: // cancelled at a random moment
			run := start(t, cfg)
			time.Sleep(time.Duration(rand.IntN(80)) * time.Millisecond)
			if err := run.stop(); err != nil {
				t.Fatalf("round %d: Run: %v", round, err)
			}
		case 2: // cancelled from inside the hook, after a commit
			ctx, cancel := context.WithCancel(ctx)
			setHook(t, func(LSN) error {
				if rand.IntN(2) == 0 {
					cancel()
				}
				return nil
			})
			err := Run(ctx, cfg)
			cancel()
			if err != nil {
				t.Fatalf("round %d: Run: %v", round, err)
			}
		}
		waitInactive(t, e.cfg)
	}
	setHook(t, nil)
	if crashes == 0 {
		t.Fatal("the hook never stopped Run after a commit")
	}
	run := start(t, e.cfg)
	waitConfirmed(t, e.cfg, currentLSN(t, e.src), run)
	sameIDs(t, objectIDs(t, e.dst, "auditpgx_entry"), want)
}

// waitInactive waits for the slot's walsender to let go of it after a
// relay stopped, so that the next may start.
func waitInactive(t testing.TB, cfg Config) {
	t.Helper()
	for i := 0; ; i++ {
		st, err := ReadStatus(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !st.SlotActive {
			return
		}
		if i == 200 {
			t.Fatal("slot still active 10 s after the relay stopped")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The relay skips transactions that end at or before the state's
// position even when the server sends them, as a server whose slot lost
// its confirmed position in a crash would.
func TestStreamSkipsApplied(t *testing.T) {
	s, err := Config{Source: "postgres://x"}.validate()
	if err != nil {
		t.Fatal(err)
	}
	st := &stream{s: s, applied: 1000}
	tx := func(xid uint32, end LSN, ids ...string) {
		msgs := []pglogrepl.Message{
			&pglogrepl.BeginMessage{Xid: xid},
			&pglogrepl.LogicalDecodingMessage{Transactional: true, Prefix: "auditpgx", Content: []byte(payloadOf(ids...))},
			&pglogrepl.CommitMessage{CommitLSN: pglogrepl.LSN(end - 40), TransactionEndLSN: pglogrepl.LSN(end)},
		}
		for _, m := range msgs {
			if err := st.message(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
	}
	tx(1, 900, "old1")
	tx(2, 1000, "old2")
	tx(3, 1100, "new1", "new2")
	var got []string
	for _, e := range st.b.entries {
		got = append(got, e.values[4].(string))
	}
	sameIDs(t, got, []string{"new1", "new2"})
	if st.b.txs != 1 || st.b.end != 1100 {
		t.Errorf("batch of %d transactions ending at %s, want 1 ending at 0/44C", st.b.txs, st.b.end)
	}
}

// setHook sets the hook every Run started from now on calls between a
// destination commit and its confirmation, until the test ends.
func setHook(t testing.TB, f func(end LSN) error) {
	testHookAfterCommit = f
	t.Cleanup(func() { testHookAfterCommit = nil })
}
