package pgtest

import "syscall"

// procAttr returns how to run initdb or, when postmaster is set, postgres:
// as owner when it is non-nil, and for the postmaster with a fast-shutdown
// signal when the thread that started it ends, so that a test binary that is
// killed does not leave a server behind.
func procAttr(owner *account, postmaster bool) (*syscall.SysProcAttr, error) {
	attr := &syscall.SysProcAttr{}
	if owner != nil {
		attr.Credential = &syscall.Credential{Uid: owner.uid, Gid: owner.gid}
	}
	if postmaster {
		attr.Pdeathsig = syscall.SIGINT
	}
	return attr, nil
}
