package pgxsuite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/auditpgx/auditpgx/internal/testjson"
)

// Build compiles the generated module's tests and returns the executable.
func (m *Module) Build() (string, error) {
	bin := filepath.Join(m.Dir, "suite.test")
	if _, err := goCmd(m.Dir, "test", "-c", "-o", bin, "."); err != nil {
		return "", err
	}
	return bin, nil
}

// RunSuite runs the executable bin in dir through test2json, with env
// added to the environment. A run without the package's result is an
// error: test2json itself failed.
func RunSuite(ctx context.Context, dir, bin string, env []string, timeout time.Duration) (*testjson.Run, error) {
	run, err := testjson.Exec(ctx, dir, bin, env, timeout)
	if err != nil {
		return nil, err
	}
	if run.Err != nil && run.Package == "" {
		return nil, fmt.Errorf("pgxsuite: running the suite: %w\n%s", run.Err, strings.Join(run.Output, "\n"))
	}
	return run, nil
}
