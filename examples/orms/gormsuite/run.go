package gormsuite

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/auditpgx/auditpgx/internal/testjson"
)

// EnvSource names the environment variable that points at GORM's source:
// a clone of github.com/go-gorm/gorm (bare or not, shallow is fine) that
// has the tag of the gorm.io/gorm version under test, or else a directory
// whose tests/ holds the suite as is.
const EnvSource = "AUDITPGX_GORM_SRC"

// Source extracts GORM's tests/ at tag version from src (see EnvSource)
// into dir/tests and returns that directory. from says where it came
// from.
func Source(ctx context.Context, src, version, dir string) (testsDir, from string, err error) {
	testsDir = filepath.Join(dir, "tests")
	verify := exec.CommandContext(ctx, "git", "-C", src, "rev-parse", "--verify", "--quiet", version+"^{commit}")
	if commit, err := verify.Output(); err == nil {
		cmd := exec.CommandContext(ctx, "git", "-C", src, "archive", "--format=tar", version, "tests")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", "", fmt.Errorf("gormsuite: git archive %s tests in %s: %w\n%s", version, src, err, stderr.Bytes())
		}
		if err := untar(bytes.NewReader(out), dir); err != nil {
			return "", "", err
		}
		return testsDir, fmt.Sprintf("%s at %s (%s)", src, version, strings.TrimSpace(string(commit))[:12]), nil
	}
	if _, err := os.Stat(filepath.Join(src, "tests", "go.mod")); err != nil {
		return "", "", fmt.Errorf("gormsuite: %s=%s is neither a git clone of GORM with the tag %s nor a directory with tests/go.mod", EnvSource, src, version)
	}
	if err := os.MkdirAll(testsDir, 0o755); err != nil {
		return "", "", err
	}
	entries, err := os.ReadDir(filepath.Join(src, "tests"))
	if err != nil {
		return "", "", err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, "tests", e.Name()))
		if err != nil {
			return "", "", err
		}
		if err := os.WriteFile(filepath.Join(testsDir, e.Name()), b, 0o644); err != nil {
			return "", "", err
		}
	}
	return testsDir, src + "/tests as is (not a git clone with tag " + version + ")", nil
}

func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			return fmt.Errorf("gormsuite: unsafe path %q in the archive", h.Name)
		}
		p := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				return err
			}
		}
	}
}

// Run is the outcome of a run of the suite over one or more test
// processes (RunAll).
type Run struct {
	*testjson.Run
	// Aborted are the tests that ended the test process.
	Aborted []string
}

// RunAll runs the top-level tests named by tests as RunSuite does, and
// when a test ends the process (a panic; GORM's tests share one database
// and one *gorm.DB, and some dereference what an unexpected error left
// nil), marks it and its unfinished subtests failed and runs the tests
// that had not started in a new process, until every test has run. env
// gives the environment of each attempt, numbered from 1. The Duration of
// the result is the sum of the attempts'.
func RunAll(ctx context.Context, dir, bin string, tests []string, env func(attempt int) []string, timeout time.Duration) (run *Run, attempts int, err error) {
	all := &Run{Run: &testjson.Run{Tests: map[string]*testjson.Test{}, Package: "pass"}}
	remaining := tests
	for attempts = 1; len(remaining) > 0; attempts++ {
		r, err := RunSuite(ctx, dir, bin, env(attempts), timeout, "-test.run=^("+strings.Join(remaining, "|")+")$")
		if err != nil {
			return nil, attempts, err
		}
		all.Duration += r.Duration
		all.Output = append(all.Output, r.Output...)
		if r.Package != "pass" {
			all.Package = "fail"
		}
		for _, name := range r.Order {
			t := r.Tests[name]
			if t.Status == "" {
				t.Status = "fail"
				t.Output = append(t.Output, "(unfinished when the test process ended)")
			}
			all.Tests[name] = t
			all.Order = append(all.Order, name)
		}
		var next []string
		for _, name := range remaining {
			if r.Tests[name] == nil {
				next = append(next, name)
			}
		}
		if len(next) == 0 {
			break
		}
		if len(next) == len(remaining) {
			return nil, attempts, fmt.Errorf("gormsuite: the suite ended before any test ran:\n%s", strings.Join(tail(r.Output, 40), "\n"))
		}
		// The last top-level test started ended the process.
		for i := len(r.Order) - 1; i >= 0; i-- {
			if t := r.Tests[r.Order[i]]; t.TopLevel() {
				t.Status = "fail"
				t.Output = append(t.Output, "(this test ended the test process)")
				all.Aborted = append(all.Aborted, t.Name)
				break
			}
		}
		remaining = next
	}
	return all, attempts, nil
}

// RunSuite runs the suite executable bin in dir through test2json, with
// env added to the environment, and collects the results (see
// testjson.Exec). A run in which no test started is an error.
func RunSuite(ctx context.Context, dir, bin string, env []string, timeout time.Duration, args ...string) (*testjson.Run, error) {
	run, err := testjson.Exec(ctx, dir, bin, env, timeout, args...)
	if err != nil {
		return nil, err
	}
	if run.Err != nil && len(run.Tests) == 0 {
		return nil, fmt.Errorf("gormsuite: running the suite: %w\n%s", run.Err, strings.Join(tail(run.Output, 40), "\n"))
	}
	return run, nil
}

func tail(s []string, n int) []string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
