// Package testlayout lets a test binary choose how store.Migrate lays out
// the entry tables it creates, so that a package's whole suite runs on a
// partitioned entry table as well as on a plain one:
//
//	AUDITPGX_TEST_ENTRY_LAYOUT=partitioned go test -count=1 ./store ./httpapi ./web
//
// internal/pgtest's Main reads the variable; store.Migrate then creates a
// table that does not exist yet partitioned monthly, when no layout is
// asked for, with partitions for the months the tests' fixed times fall in
// as well as for the current months and a DEFAULT one. Tables that exist
// keep their layout. Nothing outside tests sets it.
package testlayout

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// Env names the environment variable: "partitioned", or "" or "plain" for
// the default layout.
const Env = "AUDITPGX_TEST_ENTRY_LAYOUT"

// Layout is the layout of new entry tables in a test binary.
type Layout struct {
	// Spans are periods that get partitions besides the current one and
	// those after it: each of Count months beginning with the month of
	// From.
	Spans []Span
}

// Span is a run of Count consecutive months beginning with the month of
// From.
type Span struct {
	From  time.Time
	Count int
}

var current atomic.Pointer[Layout]

// Partitioned returns the layout set by Set, nil for plain tables.
func Partitioned() *Layout { return current.Load() }

// Set sets the layout for the rest of the test binary; nil is plain.
func Set(l *Layout) { current.Store(l) }

// FromEnv returns the layout that the variable Env asks for.
func FromEnv() (*Layout, error) {
	switch v := os.Getenv(Env); v {
	case "", "plain":
		return nil, nil
	case "partitioned":
		// The fixed times of the tests' data fall in January to May 2024.
		return &Layout{Spans: []Span{{From: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Count: 5}}}, nil
	default:
		return nil, fmt.Errorf("%s=%q: want partitioned or plain", Env, v)
	}
}
