package web_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/store"
	"github.com/auditpgx/auditpgx/web"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// Values an attacker could write into an audited column: the pages must
// show them as text.
const (
	xssScript = `<script>alert(1)</script>`
	xssImg    = `"><img src=x onerror=alert(1)>`
	secret    = "TOPSECRET-7d1f"
)

// workload is a seeded schema: its audited writes, made through the
// driver, and the ids the tests look for.
type workload struct {
	db        *sql.DB // through auditpgx
	entries   int     // entries written
	scoreRuns int
}

// seed runs a workload through the driver on a fresh schema: users (a
// redacted and an excluded column), teams, a join table recorded as
// associations, and secrets, which the tests' Authorize refuses. The
// teams' score updates come first, so that the newest page holds the
// other entries.
func seed(t *testing.T) workload {
	t.Helper()
	ctx := context.Background()
	dsn, _ := pgtest.NewSchema(t)
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{})
	require.NoError(t, err)
	require.NoError(t, reg.RegisterTable("users", auditpgx.Redact("password_hash"), auditpgx.Exclude("last_login")))
	require.NoError(t, reg.RegisterTable("teams"))
	require.NoError(t, reg.RegisterTable("secrets"))
	require.NoError(t, reg.RegisterM2M("team_members", auditpgx.M2M{Field: "members",
		Owner: auditpgx.Ref{Table: "teams", Column: "team_id"}, Related: auditpgx.Ref{Table: "users", Column: "user_id"}}))
	connector, err := auditpgx.NewConnector(dsn, auditpgx.WithRegistry(reg))
	require.NoError(t, err)
	db := sql.OpenDB(connector)
	t.Cleanup(func() { db.Close() })
	for _, ddl := range []string{
		`CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL, email text, bio text, password_hash text, last_login timestamptz, prefs jsonb)`,
		`CREATE TABLE teams (id int PRIMARY KEY, name text NOT NULL, score int NOT NULL DEFAULT 0)`,
		`CREATE TABLE team_members (team_id int REFERENCES teams, user_id int REFERENCES users ON UPDATE CASCADE, PRIMARY KEY (team_id, user_id))`,
		`CREATE TABLE secrets (id int PRIMARY KEY, value text)`,
	} {
		_, err := db.ExecContext(ctx, ddl)
		require.NoError(t, err)
	}
	require.NoError(t, auditpgx.Migrate(ctx, db))

	w := workload{db: db, scoreRuns: 150}
	as := func(actor string) context.Context { return auditpgx.WithActor(ctx, actor) }
	exec := func(ctx context.Context, q string, args ...any) {
		t.Helper()
		_, err := db.ExecContext(ctx, q, args...)
		require.NoError(t, err, q)
	}
	exec(as("alice"), `INSERT INTO teams (id, name) VALUES (1, 'red'), (2, 'blue')`)
	for i := range w.scoreRuns {
		exec(as("erin"), `UPDATE teams SET score = $1 WHERE id = $2`, i+1, 1+i%2)
	}
	exec(as("alice"), `INSERT INTO users (id, name, email, bio, password_hash, last_login, prefs) VALUES
		(1, $1, 'ann@example.com', $2, 'bcrypt:ann', now(), '{"theme": "dark", "langs": ["en", "fr"]}'),
		(2, 'Bea', 'bea@example.com', NULL, 'bcrypt:bea', NULL, NULL),
		(3, 'Cy', 'cy@example.com', 'plain', NULL, NULL, NULL)`, xssScript, xssImg)
	exec(as("alice"), `INSERT INTO secrets VALUES (1, $1)`, secret)

	// Bob's request: one transaction, an update and two associations.
	bob := auditpgx.WithContext(as("bob"), "request_id", "req-42")
	tx, err := db.BeginTx(bob, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(bob, `UPDATE users SET name = 'Anne', password_hash = 'bcrypt:anne' WHERE id = 1`)
	require.NoError(t, err)
	_, err = tx.ExecContext(bob, `INSERT INTO team_members VALUES (1, 1), (1, 2)`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())

	exec(as("carol"), `UPDATE users SET email = 'bea@example.org' WHERE id = 2`)
	exec(as("carol"), `UPDATE users SET id = 20 WHERE id = 2`)
	exec(as("dave"), `DELETE FROM users WHERE id = 3`)
	exec(as("alice"), `UPDATE secrets SET value = $1 WHERE id = 1`, secret+"-2")

	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM auditpgx_entry`).Scan(&w.entries))
	return w
}

// readable is the tests' Authorize: every table but secrets, and not
// "every table" at once.
func readable(_ *http.Request, table string) bool { return table != "" && table != "secrets" }

func newHandler(t testing.TB, db store.Querier, cfg web.Config) *web.Handler {
	t.Helper()
	if cfg.Authorize == nil {
		cfg.Authorize = readable
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := web.New(db, cfg)
	require.NoError(t, err)
	return h
}

func actorCtx(actor string) context.Context { return auditpgx.WithActor(context.Background(), actor) }
