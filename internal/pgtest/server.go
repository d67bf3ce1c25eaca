package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"syscall"

	"github.com/jackc/pgx/v5"
)

// Option changes how Start launches a server.
type Option func(*settings)

type settings struct {
	durable bool
	logical bool
}

// Durable launches the server with PostgreSQL's default durability: fsync,
// synchronous_commit and full_page_writes on, so that each commit waits for
// its WAL to reach the disk, as on a real deployment. Without it they are
// off, which is faster and what tests want. It has no effect on an existing
// server.
func Durable() Option {
	return func(s *settings) { s.durable = true }
}

// Logical launches the server with wal_level=logical and room for 20
// replication slots and WAL senders, as logical decoding (the WAL sink and
// its relay) needs. It has no effect on an existing server.
func Logical() Option {
	return func(s *settings) { s.logical = true }
}

// Server is a running PostgreSQL that Start launched, or an existing one it
// was pointed at.
type Server struct {
	url     string
	version int
	cluster *cluster // nil for an existing server

	stopOnce sync.Once
	stopErr  error
}

// Start returns a PostgreSQL server to connect to.
//
// When envURL names an environment variable that is set, Start uses the
// server at that postgres:// URL and launches nothing. Otherwise it makes a
// throwaway cluster in a new temporary directory (initdb, then postgres) with
// trust authentication and superuser "postgres", listening on 127.0.0.1 at a
// free port with its unix socket in that directory. Durability is turned off
// for speed unless opts include Durable. Run as root, Start runs the server as user "postgres" (or
// "nobody"), since PostgreSQL refuses to run as root.
//
// Start returns once the server accepts connections. The caller must call
// Stop; should the calling process die first, the server shuts itself down
// on Linux, though its temporary directory remains.
func Start(ctx context.Context, envURL string, opts ...Option) (*Server, error) {
	var set settings
	for _, opt := range opts {
		opt(&set)
	}
	if envURL != "" {
		if raw := os.Getenv(envURL); raw != "" {
			return existing(ctx, envURL, raw)
		}
	}
	c, version, err := launch(ctx, set)
	if err != nil {
		return nil, err
	}
	return &Server{url: c.url, version: version, cluster: c}, nil
}

func existing(ctx context.Context, envName, raw string) (*Server, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("pgtest: %s must be a postgres:// URL", envName)
	}
	version, err := queryVersion(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("pgtest: connecting to the server named by %s: %w", envName, err)
	}
	return &Server{url: raw, version: version}, nil
}

// URL returns the base URL of the server's "postgres" database, such as
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable for a launched
// server.
func (s *Server) URL() string { return s.url }

// Version returns the server's server_version_num, such as 150018 for 15.18.
func (s *Server) Version() int { return s.version }

// Stop shuts down a server that Start launched and deletes its directory.
// It does nothing for an existing server. Later calls return the first
// call's result. Stop reports an error if the server had already exited.
func (s *Server) Stop() error {
	if s.cluster == nil {
		return nil
	}
	s.stopOnce.Do(func() { s.stopErr = s.cluster.destroy() })
	return s.stopErr
}

// Crash stops a server that Start launched as a crash would: an immediate
// shutdown (SIGQUIT to the postmaster), with no checkpoint, so that the
// next start recovers from the WAL. Restart starts it again.
func (s *Server) Crash() error {
	if s.cluster == nil {
		return errors.New("pgtest: Crash: the server was not launched by Start")
	}
	return s.cluster.signal(syscall.SIGQUIT)
}

// Restart starts a crashed server again, on the same port and data
// directory, and returns once it accepts connections (after recovery).
func (s *Server) Restart(ctx context.Context) error {
	if s.cluster == nil {
		return errors.New("pgtest: Restart: the server was not launched by Start")
	}
	c := s.cluster
	cmd, err := c.newCmd()
	if err != nil {
		return err
	}
	c.cmd, c.exited, c.waitErr = cmd, make(chan struct{}), nil
	if err := c.start(); err != nil {
		return fmt.Errorf("pgtest: Restart: %w", err)
	}
	if _, err := c.waitReady(ctx); err != nil {
		return fmt.Errorf("pgtest: Restart: postgres %w", err)
	}
	return nil
}

// exec runs one administrative statement on the server's base database.
func (s *Server) exec(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// dsn returns the server's URL as changed by edit.
func (s *Server) dsn(edit func(*url.URL)) string {
	u, err := url.Parse(s.url)
	if err != nil {
		panic("pgtest: Start accepted a URL that does not parse: " + err.Error())
	}
	edit(u)
	return u.String()
}

func queryVersion(ctx context.Context, url string) (int, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var version int
	err = conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version)
	return version, err
}
