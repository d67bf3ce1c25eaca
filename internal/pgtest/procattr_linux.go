package pgtest

import "syscall"

// procAttr returns how to run initdb or, when postmaster is set, postgres:
// as owner when it is non-nil, and for the postmaster with a fast-shutdown
// signal when the thread that started it ends, so that a test binary that is
// killed does not leave a server behind. The postmaster runs in a process
// group of its own: a Ctrl-C in the terminal, which signals the whole
// foreground group, reaches the program (the quickstart stops on it and
// drops its data) but not the server it still needs for that.
func procAttr(owner *account, postmaster bool) (*syscall.SysProcAttr, error) {
	attr := &syscall.SysProcAttr{}
	if owner != nil {
		attr.Credential = &syscall.Credential{Uid: owner.uid, Gid: owner.gid}
	}
	if postmaster {
		attr.Pdeathsig = syscall.SIGINT
		attr.Setpgid = true
	}
	return attr, nil
}
