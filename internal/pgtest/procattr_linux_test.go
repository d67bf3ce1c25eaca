package pgtest

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// A Ctrl-C in the terminal signals the foreground process group: the
// server a program launched is not in it, so the program can still use it
// while it stops (the quickstart drops its data then).
func TestPostmasterHasItsOwnProcessGroup(t *testing.T) {
	t.Setenv("PGTEST_UNSET_URL", "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := Start(ctx, "PGTEST_UNSET_URL")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	pgid, err := syscall.Getpgid(srv.cluster.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if pgid == syscall.Getpgrp() {
		t.Fatalf("the postmaster is in the test's process group %d", pgid)
	}
	if pgid != srv.cluster.cmd.Process.Pid {
		t.Errorf("the postmaster's process group is %d, want its own (%d)", pgid, srv.cluster.cmd.Process.Pid)
	}
	if got := queryString(t, srv.URL(), "SELECT 'ok'"); got != "ok" {
		t.Errorf("SELECT 'ok' = %q", got)
	}
}
