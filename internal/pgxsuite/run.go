package pgxsuite

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Build compiles the generated module's tests and returns the executable.
func (m *Module) Build() (string, error) {
	bin := filepath.Join(m.Dir, "suite.test")
	if _, err := goCmd(m.Dir, "test", "-c", "-o", bin, "."); err != nil {
		return "", err
	}
	return bin, nil
}

// Test is one test or subtest of a run.
type Test struct {
	Name       string
	Status     string // pass, fail, skip; "" if it never finished
	Start, End time.Time
	Output     []string
}

// Failed reports whether t failed or never finished.
func (t *Test) Failed() bool { return t.Status != "pass" && t.Status != "skip" }

// Run is the outcome of one run of the suite.
type Run struct {
	Tests    map[string]*Test
	Order    []string // in the order they started
	Package  string   // pass or fail
	Output   []string // outside any test
	Duration time.Duration
}

// RunSuite runs the executable bin in dir through test2json, with env
// added to the environment.
func RunSuite(ctx context.Context, dir, bin string, env []string, timeout time.Duration) (*Run, error) {
	cmd := exec.CommandContext(ctx, "go", "tool", "test2json", "-t", bin,
		"-test.v=test2json", "-test.count=1", "-test.timeout="+timeout.String())
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
	run := &Run{Tests: map[string]*Test{}}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var ev struct {
			Time                 time.Time
			Action, Test, Output string
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
		}
	}
	werr := cmd.Wait()
	if err := sc.Err(); err != nil {
		return nil, err
	}
	run.Duration = time.Since(start)
	if werr != nil && run.Package == "" {
		return nil, fmt.Errorf("pgxsuite: running the suite: %w\n%s", werr, stderr.Bytes())
	}
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
		case strings.Contains(t.Name, "/") == topLevel:
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

// Failures returns the failed tests none of whose subtests failed: where
// the failures are.
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
// latest started of those whose run spans it.
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

var noiseRE = regexp.MustCompile(`^\s*(=== (RUN|PAUSE|CONT|NAME)|--- (PASS|FAIL|SKIP)|Error Trace:|Test:\s)`)

// Summary returns t's output without go test's framing and testify's trace
// lines, on one line of at most n bytes.
func (t *Test) Summary(n int) string {
	var keep []string
	for _, line := range t.Output {
		if !noiseRE.MatchString(line) && strings.TrimSpace(line) != "" {
			keep = append(keep, strings.TrimSpace(line))
		}
	}
	return oneLine(strings.Join(keep, " | "), n)
}
