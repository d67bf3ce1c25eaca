// Command auditpgx reads the activity stream that the auditpgx driver
// writes: it creates the entry table, lists entries, shows one object's
// history or its state at an instant, and serves the read-only HTTP API.
//
//	go install github.com/auditpgx/auditpgx/cmd/auditpgx@latest
//
//	export DATABASE_URL=postgres://app@localhost/app
//	auditpgx migrate
//	auditpgx log --table users --since 24h
//	auditpgx history users 42
//	auditpgx as-of users 42 2024-03-01T12:00:00Z
//	AUDITPGX_TOKEN=s3cret auditpgx serve --addr :8080 --auth token
//
// Run auditpgx help for every command and flag.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // the command line is wrong
)

// env is what a command may use from its surroundings.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
}

type command struct {
	name    string
	args    string // positional arguments, for usage
	summary string
	run     func(ctx context.Context, e env, args []string) error
}

var commands = []command{
	{"migrate", "", "create the entry table and its indexes if they are absent", runMigrate},
	{"maintain", "", "create the partitions of a partitioned entry table ahead of time", runMaintain},
	{"prune", "--before TIME", "remove the entries created before a time, archiving them first if asked", runPrune},
	{"restore", "FILE…", "load archived entries back into the entry table", runRestore},
	{"baseline", "TABLE…", "record the rows tables hold now, for their history to start from", runBaseline},
	{"revert", "--tx N | --entry ID", "undo a transaction's or an entry's changes, recording the revert", runRevert},
	{"log", "", "list entries, the latest last", runLog},
	{"history", "TABLE ID", "show every change to one object", runHistory},
	{"as-of", "TABLE ID TIME", "show one object's audited columns at an instant", runAsOf},
	{"serve", "", "serve the read-only HTTP API", runServe},
	{"relay", "[status]", "copy the WAL sink's entries into an entry table, exactly once", runRelay},
	{"seal", "", "hash-chain the committed entries into checkpoints in the seal table", runSeal},
	{"verify", "", "check the entries against the seal table's checkpoints", runVerify},
}

// run is the whole program: args without the program name, the streams, and
// the environment. It returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	e := env{stdout: stdout, stderr: stderr, getenv: getenv, now: time.Now}
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "-help" || name == "--help" {
		if len(args) > 1 {
			return run(ctx, []string{args[1], "-h"}, stdout, stderr, getenv)
		}
		usage(stdout)
		return exitOK
	}
	for _, c := range commands {
		if c.name != name {
			continue
		}
		err := c.run(ctx, e, args[1:])
		switch {
		case err == nil:
			return exitOK
		case err == errHelp:
			return exitOK
		case isUsage(err):
			fmt.Fprintf(stderr, "auditpgx %s: %v\nRun 'auditpgx help %s' for usage.\n", name, err, name)
			return exitUsage
		case isIncomplete(err):
			fmt.Fprintf(stderr, "auditpgx %s: %v\n", name, err)
			return exitIncomplete
		case isTampered(err):
			fmt.Fprintf(stderr, "auditpgx %s: %v\n", name, err)
			return exitTampered
		default:
			fmt.Fprintf(stderr, "auditpgx %s: %v\n", name, err)
			return exitError
		}
	}
	fmt.Fprintf(stderr, "auditpgx: unknown command %q\n\n", name)
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `auditpgx reads the activity stream written by the auditpgx driver.

Usage:
  auditpgx COMMAND [flags] [arguments]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-28s %s\n", c.name+" "+c.args, c.summary)
	}
	fmt.Fprint(w, `
The database is --dsn, else $DATABASE_URL. Times are RFC 3339
(2024-03-01T12:00:00Z), a date or date and time in UTC (2024-03-01,
"2024-03-01 12:00:00"), or a duration back from now (90m, 24h).

Exit status: 0 done, 1 failed, 2 wrong command line, 3 the entries do not
account for the object's state (as-of of a row from before auditing began,
before its table was baselined), 4 verify found entries or checkpoints
changed since they were sealed.

Run 'auditpgx help COMMAND' for a command's flags.
`)
}
