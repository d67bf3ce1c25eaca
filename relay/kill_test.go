package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// childEnv carries the Config of a relay run by the test binary as a child
// process, for TestRunSIGKILLExactlyOnce.
const childEnv = "AUDITPGX_RELAY_CHILD"

// childConfig is the part of a Config a child process is given.
type childConfig struct {
	Source, Slot  string
	BatchEntries  int
	FlushInterval time.Duration
	// CommitPause is the longest the child waits between a destination
	// commit and its confirmation, to widen the window a kill may hit.
	CommitPause time.Duration
}

// runChild is the child process of TestRunSIGKILLExactlyOnce, which
// TestMain runs instead of the tests when childEnv is set: a relay that
// runs until killed. It returns the exit code.
func runChild(raw string) int {
	var cc childConfig
	if err := json.Unmarshal([]byte(raw), &cc); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg := Config{Source: cc.Source, Slot: cc.Slot, BatchEntries: cc.BatchEntries, FlushInterval: cc.FlushInterval}
	testHookAfterCommit = func(LSN) error {
		time.Sleep(time.Duration(rand.Int64N(int64(cc.CommitPause) + 1)))
		return nil
	}
	fmt.Fprintf(os.Stderr, "Run returned: %v\n", Run(context.Background(), cfg))
	return 1
}

// Killing the relay's process at random moments, while a writer emits
// messages, and starting it again applies every committed entry once.
func TestRunSIGKILLExactlyOnce(t *testing.T) {
	e := newEnv(t, false)
	cc, err := json.Marshal(childConfig{Source: e.cfg.Source, Slot: e.cfg.Slot, BatchEntries: 7,
		FlushInterval: 5 * time.Millisecond, CommitPause: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu   sync.Mutex
		want []string
	)
	writerCtx, stopWriter := context.WithCancel(context.Background())
	writerDone := make(chan error, 1)
	wconn := connect(t, e.cfg.Source)
	go func() {
		n := 0
		for writerCtx.Err() == nil {
			ids := make([]string, 1+rand.IntN(5))
			for i := range ids {
				n++
				ids[i] = fmt.Sprintf("k%d", n)
			}
			err := pgx.BeginFunc(context.Background(), wconn, func(tx pgx.Tx) error {
				_, err := tx.Exec(context.Background(), "SELECT pg_logical_emit_message(true, 'auditpgx', $1::text)", payloadOf(ids...))
				return err
			})
			if err != nil {
				writerDone <- err
				return
			}
			mu.Lock()
			want = append(want, ids...)
			mu.Unlock()
			time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
		}
		writerDone <- nil
	}()

	inWindow := killRelays(t, e.cfg, cc, 10, 150*time.Millisecond, 650*time.Millisecond)
	stopWriter()
	if err := <-writerDone; err != nil {
		t.Fatalf("writer: %v", err)
	}
	t.Logf("%d of 10 kills left a destination commit unconfirmed", inWindow)

	run := start(t, e.cfg)
	waitConfirmed(t, e.cfg, currentLSN(t, e.src), run)
	mu.Lock()
	defer mu.Unlock()
	if len(want) == 0 {
		t.Fatal("the writer emitted nothing")
	}
	sameIDs(t, objectIDs(t, e.dst, "auditpgx_entry"), want)
	t.Logf("%d entries applied exactly once", len(want))
}

// killRelays runs a relay process of config cc n times, each killed with
// SIGKILL after a random time in [lo, hi), and returns how many kills left
// a destination commit unconfirmed.
func killRelays(t *testing.T, cfg Config, cc []byte, n int, lo, hi time.Duration) int {
	t.Helper()
	inWindow := 0
	for i := range n {
		var stderr bytes.Buffer
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+string(cc))
		cmd.Stderr, cmd.Stdout = &stderr, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(lo + time.Duration(rand.Int64N(int64(hi-lo))))
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err == nil || cmd.ProcessState.Exited() {
			t.Fatalf("kill %d: the child had exited by itself: %v\n%s", i+1, err, stderr.Bytes())
		}
		waitInactive(t, cfg)
		st, err := ReadStatus(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if st.Applied > st.Confirmed {
			inWindow++
		}
	}
	return inWindow
}
