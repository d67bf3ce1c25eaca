//go:build !linux

package pgtest

import (
	"fmt"
	"runtime"
	"syscall"
)

// procAttr returns how to run initdb or postgres. Outside Linux pgtest does
// not switch users, so it refuses to run them as owner.
func procAttr(owner *account, postmaster bool) (*syscall.SysProcAttr, error) {
	if owner != nil {
		return nil, fmt.Errorf("pgtest: cannot run PostgreSQL as user %s on %s; run the tests as an ordinary user", owner.name, runtime.GOOS)
	}
	return nil, nil
}
