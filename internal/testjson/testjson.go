// Package testjson runs a test executable through test2json and reads what
// it reports (the events of go test -json) into a Run. The harnesses that
// run a peer's suite through auditpgx (internal/pgxsuite,
// examples/orms/gormsuite) judge it test by test against their lists of
// known failures, so they need each test's status and output, not go
// test's text.
package testjson

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// Test is one test or subtest of a run.
type Test struct {
	Name   string
	Status string // pass, fail, skip; "" if it never finished
	// Start is the time of its first event, End of its pass, fail or
	// skip: to tell which test was running at a given time (Run.At).
	Start, End time.Time
	Elapsed    time.Duration // as go test reports it
	Output     []string      // its lines, without the newlines
}

// TopLevel reports whether t is not a subtest.
func (t *Test) TopLevel() bool { return !strings.Contains(t.Name, "/") }

// Failed reports whether t failed or never finished: a test the process
// died in counts as failed.
func (t *Test) Failed() bool { return t.Status != "pass" && t.Status != "skip" }

// Run is the outcome of one run of a test executable.
type Run struct {
	Tests   map[string]*Test
	Order   []string // names in the order they started
	Package string   // the package's final action: pass or fail; "" if none came
	Output  []string // outside any test, and lines that are not events
	// Duration is the wall time of the run (Exec).
	Duration time.Duration
	// Err is the test command's error (Exec). A failed test makes the
	// command fail too, so only the caller can tell whether it matters.
	Err error
}

// Parse reads test2json events from r, one a line, into a Run. Lines that
// are not events go to Output.
func Parse(r io.Reader) (*Run, error) {
	run := &Run{Tests: map[string]*Test{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 64<<20) // a test may print long lines
	for sc.Scan() {
		var ev struct {
			Time                 time.Time
			Action, Test, Output string
			Elapsed              float64 // seconds
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			run.Output = append(run.Output, sc.Text())
			continue
		}
		line := strings.TrimRight(ev.Output, "\n")
		t := run.Tests[ev.Test]
		if t == nil && ev.Test != "" {
			t = &Test{Name: ev.Test, Start: ev.Time}
			run.Tests[ev.Test] = t
			run.Order = append(run.Order, ev.Test)
		}
		switch {
		case ev.Action == "output" && t == nil:
			run.Output = append(run.Output, line)
		case ev.Action == "output":
			t.Output = append(t.Output, line)
		case ev.Action != "pass" && ev.Action != "fail" && ev.Action != "skip":
		case t == nil:
			run.Package = ev.Action
		default:
			t.Status, t.End = ev.Action, ev.Time
			t.Elapsed = time.Duration(ev.Elapsed * float64(time.Second))
		}
	}
	return run, sc.Err()
}

// Exec runs the test executable bin (from go test -c) in dir through go
// tool test2json, with env added to the environment, the flags
// -test.v=test2json, -test.count=1 and -test.timeout, then args, and
// parses its events. test2json's own stderr ends the run's Output. The
// error is for a run that could not start or be read; how the command
// ended is in Run.Err.
func Exec(ctx context.Context, dir, bin string, env []string, timeout time.Duration, args ...string) (*Run, error) {
	cmd := exec.CommandContext(ctx, "go", append([]string{"tool", "test2json", "-t", bin,
		"-test.v=test2json", "-test.count=1", "-test.timeout=" + timeout.String()}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	run, perr := Parse(stdout)
	werr := cmd.Wait()
	if perr != nil {
		return nil, perr
	}
	run.Duration, run.Err = time.Since(start), werr
	if stderr.Len() > 0 {
		run.Output = append(run.Output, strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")...)
	}
	return run, nil
}

// Counts returns how many top-level tests (or, with !topLevel, subtests)
// passed, failed (or never finished) and were skipped.
func (r *Run) Counts(topLevel bool) (pass, fail, skip int) {
	for _, t := range r.Tests {
		switch {
		case t.TopLevel() != topLevel:
		case t.Status == "pass":
			pass++
		case t.Status == "skip":
			skip++
		default:
			fail++
		}
	}
	return
}

// Failures returns the failed tests none of whose subtests failed, in the
// order they started: where the failures are, each reported once.
func (r *Run) Failures() []*Test {
	var out []*Test
	for _, name := range r.Order {
		if !r.Tests[name].Failed() {
			continue
		}
		leaf := true
		for _, other := range r.Order {
			if strings.HasPrefix(other, name+"/") && r.Tests[other].Failed() {
				leaf = false
				break
			}
		}
		if leaf {
			out = append(out, r.Tests[name])
		}
	}
	return out
}

// At returns the innermost test running at time at ("" if none): the
// latest started of those whose run spans it. It attributes what the
// database saw at a time to a test.
func (r *Run) At(at time.Time) string {
	best := ""
	for _, name := range r.Order {
		t := r.Tests[name]
		if !at.Before(t.Start) && (t.End.IsZero() || !at.After(t.End)) &&
			(best == "" || !t.Start.Before(r.Tests[best].Start)) {
			best = name
		}
	}
	return best
}

// noiseRE matches go test's framing and testify's trace lines, which say
// nothing of why a test failed.
var noiseRE = regexp.MustCompile(`^\s*(=== (RUN|PAUSE|CONT|NAME)|--- (PASS|FAIL|SKIP)|Error Trace:|Test:\s|Error:\s*$)`)

// Summary returns t's output without the noise, white space collapsed, on
// one line of at most n bytes (and "…"): for a log line, or to match a
// known failure by.
func (t *Test) Summary(n int) string {
	var keep []string
	for _, line := range t.Output {
		if !noiseRE.MatchString(line) && strings.TrimSpace(line) != "" {
			keep = append(keep, strings.Join(strings.Fields(line), " "))
		}
	}
	s := strings.Join(keep, " | ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
