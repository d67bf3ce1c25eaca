package relay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/auditpgx/auditpgx/internal/pgtest"
)

var errRollback = errors.New("rolled back on purpose")

// TestSourceCrashExactlyOnce: the source server crashes (an immediate
// shutdown, no checkpoint) while a writer commits and rolls back messages
// and the relay streams them into the same database; after recovery and a
// relay restarted in a loop, every entry of a transaction that survived
// the crash is applied once, and none of a rolled-back or lost one.
func TestSourceCrashExactlyOnce(t *testing.T) {
	ctx := context.Background()
	srv, err := pgtest.Start(ctx, "", pgtest.Logical())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() }) //nolint:errcheck // best effort
	cfg := Config{Source: srv.URL(), Slot: "crash_test", FlushInterval: 10 * time.Millisecond, BatchEntries: 50}
	if err := Setup(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	admin := connect(t, srv.URL())
	// The ground truth: a row per committed message, in the same
	// transaction, which the crash keeps or loses with it.
	if _, err := admin.Exec(ctx, `CREATE TABLE sent (id text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	// The relay, started again whenever it stops (the server went away).
	runs := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			runs++
			go func() { done <- Run(runCtx, cfg) }()
			select {
			case <-stop:
				cancel()
				<-done
				return
			case <-done:
				cancel()
				time.Sleep(50 * time.Millisecond)
			}
		}
	}()
	// The writer: transactions of 1 to 5 entries, one in four rolled back;
	// errors while the server is down are expected.
	wg.Add(1)
	go func() {
		defer wg.Done()
		n := 0
		var conn *pgx.Conn
		for {
			select {
			case <-stop:
				if conn != nil {
					conn.Close(ctx)
				}
				return
			default:
			}
			if conn == nil || conn.IsClosed() {
				c, cerr := pgx.Connect(ctx, srv.URL())
				if cerr != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				conn = c
			}
			ids := make([]string, 1+rand.IntN(5))
			for i := range ids {
				n++
				ids[i] = fmt.Sprintf("k%06d", n)
			}
			rollback := rand.IntN(4) == 0
			_ = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "SELECT pg_logical_emit_message(true, 'auditpgx', $1::text)", payloadOf(ids...)); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, "INSERT INTO sent SELECT unnest($1::text[])", ids); err != nil {
					return err
				}
				if rollback {
					return errRollback
				}
				return nil
			})
		}
	}()

	time.Sleep(1500 * time.Millisecond)
	if err := srv.Crash(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()

	// Catch up with a last relay, then compare.
	check := connect(t, srv.URL())
	run := start(t, cfg)
	waitConfirmed(t, cfg, currentLSN(t, check), run)
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	var want []string
	rows, err := check.Query(ctx, `SELECT id FROM sent`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	got := objectIDs(t, check, "auditpgx_entry")
	if len(want) < 100 {
		t.Fatalf("only %d entries were committed: the test exercised too little", len(want))
	}
	if !slices.IsSorted(got) {
		t.Errorf("entries are not in commit order (one writer commits them in id order)")
	}
	sort.Strings(want)
	applied := slices.Clone(got)
	sort.Strings(applied)
	sameIDs(t, applied, want)
	t.Logf("%d entries applied exactly once across a source crash, %d relay runs", len(got), runs)
}
