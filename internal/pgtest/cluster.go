package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	envPGBin     = "AUDITPGX_PG_BIN"
	readyTimeout = 30 * time.Second
	stopTimeout  = 30 * time.Second
	logTailLines = 30
)

var errPortInUse = errors.New("port already in use")

// cluster is a data directory and the postmaster serving it, both inside one
// temporary directory that belongs to the server's account.
type cluster struct {
	dir     string
	url     string
	cmd     *exec.Cmd
	exited  chan struct{} // closed once the postmaster has exited
	waitErr error         // the postmaster's exit status, set before exited is closed
	// newCmd makes the postmaster's command again, for a restart.
	newCmd func() (*exec.Cmd, error)
}

// account is the unprivileged user that runs initdb and postgres when the
// tests run as root.
type account struct {
	name     string
	uid, gid uint32
}

// launch creates a cluster, starts its postmaster and waits until it accepts
// connections, returning its server_version_num.
func launch(ctx context.Context, set settings) (c *cluster, version int, err error) {
	bin, err := serverBinaries()
	if err != nil {
		return nil, 0, err
	}
	owner, err := serverAccount()
	if err != nil {
		return nil, 0, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, 0, fmt.Errorf("pgtest: creating the cluster directory: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if owner != nil {
		if err := os.Chown(dir, int(owner.uid), int(owner.gid)); err != nil {
			return nil, 0, fmt.Errorf("pgtest: giving %s to user %s: %w", dir, owner.name, err)
		}
	}
	if err := initdb(ctx, bin, dir, owner); err != nil {
		return nil, 0, err
	}
	c, version, err = startPostmaster(ctx, bin, dir, owner, set)
	if errors.Is(err, errPortInUse) {
		// Another process took the port between freePort and the bind.
		c, version, err = startPostmaster(ctx, bin, dir, owner, set)
	}
	return c, version, err
}

func initdb(ctx context.Context, bin, dir string, owner *account) error {
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", filepath.Join(dir, "data"),
		"--auth=trust", "-U", "postgres", "--encoding=UTF8", "--locale=C", "--no-sync")
	cmd.Dir = dir
	attr, err := procAttr(owner, false)
	if err != nil {
		return err
	}
	cmd.SysProcAttr = attr
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: %s failed: %w\n%s", cmd.Path, err, out)
	}
	return nil
}

// startPostmaster runs postgres on a free port, logging to postgres.log in
// dir, and waits for it to accept connections. On failure the postmaster is
// stopped and the error holds the end of its log, or is errPortInUse.
func startPostmaster(ctx context.Context, bin, dir string, owner *account, set settings) (*cluster, int, error) {
	port, err := freePort()
	if err != nil {
		return nil, 0, err
	}
	logPath := filepath.Join(dir, "postgres.log")
	if err := os.WriteFile(logPath, nil, 0o644); err != nil {
		return nil, 0, fmt.Errorf("pgtest: creating the server log: %w", err)
	}

	args := []string{
		"-D", filepath.Join(dir, "data"),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port=" + strconv.Itoa(port),
		"-c", "unix_socket_directories=" + dir,
		"-c", "max_connections=300",
	}
	if !set.durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	if set.logical {
		args = append(args, "-c", "wal_level=logical", "-c", "max_replication_slots=20", "-c", "max_wal_senders=20")
	}
	newCmd := func() (*exec.Cmd, error) {
		logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("pgtest: opening the server log: %w", err)
		}
		// start closes it once the child holds its own descriptor.
		cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
		cmd.Dir = dir
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if cmd.SysProcAttr, err = procAttr(owner, true); err != nil {
			return nil, err
		}
		return cmd, nil
	}
	cmd, err := newCmd()
	if err != nil {
		return nil, 0, err
	}
	c := &cluster{
		dir:    dir,
		url:    fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
		cmd:    cmd,
		exited: make(chan struct{}),
		newCmd: newCmd,
	}
	if err := c.start(); err != nil {
		return nil, 0, fmt.Errorf("pgtest: starting %s: %w", cmd.Path, err)
	}
	version, err := c.waitReady(ctx)
	if err != nil {
		c.stop()
		log := readTail(logPath)
		if strings.Contains(log, "Address already in use") {
			return nil, 0, errPortInUse
		}
		return nil, 0, fmt.Errorf("pgtest: postgres %w; end of its log:\n%s", err, log)
	}
	return c, version, nil
}

// start starts the postmaster and reaps it in the background. The goroutine
// that starts it keeps its OS thread until the postmaster exits, because on
// Linux the postmaster is told to shut down when that thread ends.
func (c *cluster) start() error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		err := c.cmd.Start()
		if f, ok := c.cmd.Stdout.(*os.File); ok {
			f.Close() // the postmaster has its own descriptor
		}
		if err != nil {
			started <- err
			return
		}
		started <- nil
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()
	return <-started
}

// waitReady polls until the server answers a query, the postmaster exits, or
// readyTimeout passes.
func (c *cluster) waitReady(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		version, err := queryVersion(ctx, c.url)
		if err == nil {
			return version, nil
		}
		select {
		case <-c.exited:
			return 0, fmt.Errorf("exited during startup (%v)", c.waitErr)
		case <-ctx.Done():
			return 0, fmt.Errorf("did not accept connections in time: %w", err)
		case <-tick.C:
		}
	}
}

// destroy stops the postmaster and deletes the cluster's directory.
func (c *cluster) destroy() error {
	var exitedEarly error
	select {
	case <-c.exited:
		exitedEarly = fmt.Errorf("postgres had exited before Stop (%v); end of its log:\n%s",
			c.waitErr, readTail(filepath.Join(c.dir, "postgres.log")))
	default:
	}
	return errors.Join(exitedEarly, c.stop(), os.RemoveAll(c.dir))
}

// stop asks the postmaster for a fast shutdown, as pg_ctl stop -m fast does,
// and kills it if it has not exited within stopTimeout.
func (c *cluster) stop() error { return c.signal(syscall.SIGINT) }

// signal sends the postmaster sig (SIGINT: a fast shutdown; SIGQUIT: an
// immediate one, as a crash) and waits for it to exit, killing it after
// stopTimeout.
func (c *cluster) signal(sig syscall.Signal) error {
	if err := c.cmd.Process.Signal(sig); err != nil {
		c.cmd.Process.Kill()
	}
	select {
	case <-c.exited:
		return nil
	case <-time.After(stopTimeout):
		c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("postgres did not shut down within %v and was killed", stopTimeout)
	}
}

// serverBinaries returns the directory holding initdb and postgres: the one
// named by $AUDITPGX_PG_BIN, else that of initdb on PATH (following
// symlinks), else the newest /usr/lib/postgresql/*/bin.
func serverBinaries() (string, error) {
	if dir := os.Getenv(envPGBin); dir != "" {
		if err := hasServerBinaries(dir); err != nil {
			return "", fmt.Errorf("pgtest: %s: %w", envPGBin, err)
		}
		return dir, nil
	}
	if path, err := exec.LookPath("initdb"); err == nil {
		if resolved, err := filepath.EvalSymlinks(path); err == nil {
			path = resolved
		}
		if dir := filepath.Dir(path); hasServerBinaries(dir) == nil {
			return dir, nil
		}
	}
	if dir := newestDebianBinaries(); dir != "" {
		return dir, nil
	}
	return "", errors.New("pgtest: no PostgreSQL server binaries found: set " + envPGBin +
		", install postgresql, or set " + envTestDatabaseURL)
}

func hasServerBinaries(dir string) error {
	for _, name := range []string{"initdb", "postgres"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
			return fmt.Errorf("no %s in %s", name, dir)
		}
	}
	return nil
}

// newestDebianBinaries returns the bin directory of the highest version
// installed under /usr/lib/postgresql, or "" if there is none.
func newestDebianBinaries() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	best, bestVersion := "", 0.0
	for _, dir := range dirs {
		// Versions are "9.6" or "15", so they compare correctly as numbers.
		version, err := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		if err == nil && version > bestVersion && hasServerBinaries(dir) == nil {
			best, bestVersion = dir, version
		}
	}
	return best
}

// serverAccount returns nil when the tests run as an ordinary user, who runs
// the server directly. Root cannot (initdb and postgres refuse), so then it
// returns user "postgres", or "nobody" where there is no such user.
func serverAccount() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, uidErr := strconv.ParseUint(u.Uid, 10, 32)
		gid, gidErr := strconv.ParseUint(u.Gid, 10, 32)
		if uidErr != nil || gidErr != nil {
			return nil, fmt.Errorf("pgtest: user %s has a non-numeric uid %q or gid %q", name, u.Uid, u.Gid)
		}
		return &account{name: name, uid: uint32(uid), gid: uint32(gid)}, nil
	}
	return nil, errors.New(`pgtest: running as root, which PostgreSQL refuses, and there is no user "postgres" or "nobody" to run it as`)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// readTail returns the last logTailLines lines of the file at path.
func readTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	return strings.Join(lines, "\n")
}
