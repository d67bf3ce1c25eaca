package relay

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A watched table dropped and created again leaves the publication, and
// pgoutput then sends nothing of it: the relay stops with an error that
// says so, rather than missing its writes in silence.
func TestWatchTableRebuilt(t *testing.T) {
	defer func(d time.Duration) { statusInterval = d }(statusInterval)
	statusInterval = 100 * time.Millisecond
	e := newEnv(t, false)
	ctx := context.Background()
	if _, err := e.src.Exec(ctx, `CREATE TABLE things (id int PRIMARY KEY, v int)`); err != nil {
		t.Fatal(err)
	}
	cfg := e.cfg
	cfg.Watch = []WatchTable{{Table: "things"}}
	cfg.SetReplicaIdentity = true
	if err := Setup(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	run := start(t, cfg)
	if _, err := e.src.Exec(ctx, `INSERT INTO things VALUES (1, 1)`); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, cfg, currentLSN(t, e.src), run)
	if got := objectIDs(t, e.dst, "auditpgx_entry"); len(got) != 1 || got[0] != "1" {
		t.Fatalf("entries before the rebuild: %v, want the outside insert of 1", got)
	}

	if _, err := e.src.Exec(ctx, `DROP TABLE things; CREATE TABLE things (id int PRIMARY KEY, v int)`); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-run.done:
		run.done <- err // for the cleanup's stop
		if err == nil || !strings.Contains(err.Error(), `watched table "things" is not in publication`) {
			t.Fatalf("Run returned %v, want an error naming the table", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the relay did not notice the rebuilt table in 10 s")
	}
}
