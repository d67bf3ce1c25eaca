// The secrets suite: excluded and redacted values never leave the server in
// an entry, an error or a log record.

package auditpgx_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/store"
)

// sentinel marks every secret value; it must never appear in an entry, a
// log record or an error auditpgx makes.
const sentinel = "SENTINEL"

const secretsDDL = `
CREATE TABLE accounts (
	id int PRIMARY KEY,
	name text NOT NULL,
	email text UNIQUE,
	pw text UNIQUE CHECK (length(pw) < 60),
	token text UNIQUE
);
INSERT INTO accounts VALUES (1, 'a', 'a@x', 'SENTINEL-pw-1', 'SENTINEL-tok-1');`

func registerSecrets(r *auditpgx.Registry) error {
	return r.RegisterTable("accounts", auditpgx.Redact("pw"), auditpgx.Exclude("token"))
}

// syncBuffer is a bytes.Buffer safe for the loggers' concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// secretCase is one statement of TestSecretsNeverLeave. fails says it must
// fail; server says the failure is the server's, to be compared with plain
// pgx's. Before minVersion (server_version_num) the statement is refused.
type secretCase struct {
	name       string
	sql        string
	args       []any
	query      bool
	fails      bool
	server     bool
	minVersion int
}

var secretCases = []secretCase{
	{name: "insert literal", sql: `INSERT INTO accounts VALUES (2, 'b', 'b@x', 'SENTINEL-pw-2', 'SENTINEL-tok-2')`},
	{name: "insert parameters", sql: `INSERT INTO accounts VALUES ($1, $2, $3, $4, $5)`, args: []any{3, "c", "c@x", "SENTINEL-pw-3", "SENTINEL-tok-3"}},
	{name: "update secrets", sql: `UPDATE accounts SET pw = 'SENTINEL-pw-4', token = 'SENTINEL-tok-4' WHERE id = 1`},
	{name: "secret in WHERE", sql: `UPDATE accounts SET name = 'renamed' WHERE pw = 'SENTINEL-pw-4'`},
	{name: "upsert", sql: `INSERT INTO accounts VALUES (2, 'b2', 'b2@x', 'SENTINEL-pw-5', 'SENTINEL-tok-5')
		ON CONFLICT (id) DO UPDATE SET pw = excluded.pw, token = excluded.token, name = excluded.name`},
	{name: "writable CTE", sql: `WITH u AS (UPDATE accounts SET pw = 'SENTINEL-pw-6' WHERE id = 3 RETURNING id, pw) SELECT count(*) FROM u`, query: true},
	{name: "multi-statement string", sql: `UPDATE accounts SET pw = 'SENTINEL-pw-7' WHERE id = 1; UPDATE accounts SET token = 'SENTINEL-tok-7' WHERE id = 2`},
	{name: "RETURNING a secret", sql: `UPDATE accounts SET pw = 'SENTINEL-pw-8' WHERE id = 2 RETURNING pw`, query: true},
	{name: "delete", sql: `DELETE FROM accounts WHERE id = 3`},

	{name: "unique violation on the redacted column", sql: `INSERT INTO accounts VALUES (10, 'x', 'x@x', 'SENTINEL-pw-7', 't10')`, fails: true, server: true},
	{name: "unique violation on the excluded column", sql: `UPDATE accounts SET token = $1 WHERE id = 1`, args: []any{"SENTINEL-tok-7"}, fails: true, server: true},
	{name: "check violation on the redacted column", sql: `UPDATE accounts SET pw = 'SENTINEL-' || repeat('x', 80) WHERE id = 1`, fails: true, server: true},
	{name: "not-null violation beside secrets", sql: `INSERT INTO accounts (id, pw, token) VALUES (11, 'SENTINEL-pw-11', 'SENTINEL-tok-11')`, fails: true, server: true},
	{name: "invalid input", sql: `UPDATE accounts SET id = 'SENTINEL-pw-12' WHERE id = 1`, fails: true, server: true},
	{name: "unique violation in a multi-statement string", sql: `UPDATE accounts SET name = 'z' WHERE id = 1; INSERT INTO accounts VALUES (20, 'q', 'q@x', 'SENTINEL-pw-7', 't20')`, fails: true, server: true},
	{name: "unparseable", sql: `UPDATE accounts SET pw = 'SENTINEL-pw-13' WHERE`, fails: true},
	{name: "refused WHERE CURRENT OF", sql: `UPDATE accounts SET pw = 'SENTINEL-pw-14' WHERE CURRENT OF c`, fails: true},
	{name: "merge", sql: `MERGE INTO accounts a USING (VALUES (1, 'SENTINEL-pw-24', 'SENTINEL-tok-24'), (30, 'SENTINEL-pw-25', 'SENTINEL-tok-25')) s(id, pw, tok)
		ON a.id = s.id WHEN MATCHED THEN UPDATE SET pw = s.pw, token = s.tok WHEN NOT MATCHED THEN INSERT VALUES (s.id, 'm', 'm@x', s.pw, s.tok)`, minVersion: 170000},
	{name: "refused TRUNCATE", sql: `TRUNCATE accounts`, fails: true},
	{name: "too many arguments", sql: `UPDATE accounts SET pw = $1 WHERE id = 1`, args: []any{"SENTINEL-pw-15", "SENTINEL-pw-16"}, fails: true},
	{name: "named arguments", sql: `UPDATE accounts SET pw = @pw WHERE id = 1`, args: []any{pgx.NamedArgs{"pw": "SENTINEL-pw-17"}}, fails: true},
	{name: "multi-statement string with parameters", sql: `UPDATE accounts SET pw = $1; SELECT 1`, args: []any{"SENTINEL-pw-18"}, fails: true},
	{name: "too deeply nested", sql: `UPDATE accounts SET pw = ` + strings.Repeat("(", 1001) + `'SENTINEL-pw-19'` + strings.Repeat(")", 1001), fails: true},
}

// TestSecretsNeverLeave plants secrets in a redacted and an excluded column,
// runs every kind of statement, failing ones included, and scans every
// entry, every error auditpgx returned and every log record for them.
//
// Errors from the server are compared with plain pgx's for the same
// statement: auditpgx adds nothing to them. PostgreSQL itself echoes values
// the application sent (DETAIL: Key (pw)=(...) already exists, Failing row
// contains (...), invalid input syntax ... "..."); the test logs where.
//
// Not parallel: it captures slog's and log's default output, which other
// tests share.
func TestSecretsNeverLeave(t *testing.T) {
	logs := &syncBuffer{}
	handler := slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})
	prevSlog, prevLog := slog.Default(), log.Writer()
	slog.SetDefault(slog.New(handler))
	log.SetOutput(logs)
	t.Cleanup(func() {
		slog.SetDefault(prevSlog)
		log.SetOutput(prevLog)
	})

	dsn, schema := pgtestSchema(t)
	e := newEnvDSN(t, dsn, schema, secretsDDL, nil)
	open := func(allow bool) *sql.DB {
		reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{AllowUnaudited: allow, Logger: slog.New(handler)})
		require.NoError(t, err)
		require.NoError(t, registerSecrets(reg))
		return openWith(t, dsn, reg)
	}
	strict, allow := open(false), open(true)

	var echoed []string
	for _, c := range secretCases {
		if e.serverVersion() < c.minVersion {
			c.fails = true
		}
		err := runSecretCase(e.ctx, strict, c)
		if !c.fails {
			require.NoError(t, err, c.name)
			continue
		}
		require.Error(t, err, c.name)
		var pgErr *pgconn.PgError
		if !c.server {
			require.False(t, errors.As(err, &pgErr), "%s: %v should be auditpgx's", c.name, err)
			require.NotContains(t, err.Error(), sentinel, c.name)
			continue
		}
		require.ErrorAs(t, err, &pgErr, c.name)
		var plainErr *pgconn.PgError
		require.ErrorAs(t, runSecretCase(e.ctx, e.plain, c), &plainErr, c.name)
		// Every field that carries text; Position is TestHostileErrorPosition's.
		for _, f := range [][2]string{{plainErr.Code, pgErr.Code}, {plainErr.Message, pgErr.Message}, {plainErr.Detail, pgErr.Detail},
			{plainErr.Hint, pgErr.Hint}, {plainErr.Where, pgErr.Where}, {plainErr.InternalQuery, pgErr.InternalQuery},
			{plainErr.SchemaName, pgErr.SchemaName}, {plainErr.TableName, pgErr.TableName}, {plainErr.ColumnName, pgErr.ColumnName},
			{plainErr.ConstraintName, pgErr.ConstraintName}} {
			require.Equal(t, f[0], f[1], "%s: auditpgx adds nothing to the server's error", c.name)
		}
		require.Equal(t, plainErr.Error(), err.Error(), c.name)
		for field, v := range map[string]string{"message": pgErr.Message, "detail": pgErr.Detail, "hint": pgErr.Hint, "where": pgErr.Where} {
			if strings.Contains(v, sentinel) {
				echoed = append(echoed, fmt.Sprintf("%s (%s %s): %s", c.name, pgErr.Code, field, v))
			}
		}
	}
	for _, s := range echoed {
		t.Logf("PostgreSQL echoes, as with plain pgx: %s", s)
	}

	// With AllowUnaudited the refused statements run unaudited and are
	// logged; the log names the reason, never the text.
	for _, q := range []string{
		`UPDATE accounts SET pw = 'SENTINEL-pw-20' WHERE`,
		`UPDATE accounts SET pw = 'SENTINEL-pw-21' WHERE CURRENT OF c`,
		`UPDATE accounts SET pw = $1; SELECT 1`,
	} {
		_, err := allow.ExecContext(e.ctx, q)
		var pgErr *pgconn.PgError
		if err != nil && !errors.As(err, &pgErr) {
			t.Fatalf("%s: %v", q, err)
		}
	}

	// A table changed behind auditpgx's back takes the retry path.
	_, err := e.plain.ExecContext(e.ctx, `ALTER TABLE accounts ADD COLUMN note text DEFAULT 'SENTINEL-note'`)
	require.NoError(t, err)
	_, err = strict.ExecContext(e.ctx, `UPDATE accounts SET pw = 'SENTINEL-pw-22', token = 'SENTINEL-tok-22' WHERE id = 2`)
	require.NoError(t, err)

	var dump string
	require.NoError(t, e.plain.QueryRow(`SELECT count(*) || ' ' || string_agg(e::text, ' ') FROM auditpgx_entry e`).Scan(&dump))
	require.NotContains(t, dump, sentinel, "entries")
	require.Contains(t, dump, "$encrypted$")
	t.Logf("%.12s... entries scanned", dump)

	out := logs.String()
	require.Contains(t, out, "cannot be audited", "the AllowUnaudited runs were logged")
	require.NotContains(t, out, sentinel, "log output:\n%s", out)
	t.Logf("%d bytes of log output scanned", len(out))
}

func runSecretCase(ctx context.Context, db *sql.DB, c secretCase) error {
	if !c.query {
		_, err := db.ExecContext(ctx, c.sql, c.args...)
		return err
	}
	rows, err := db.QueryContext(ctx, c.sql, c.args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}

// appendOnlySQL returns the SQL block of docs/SECURITY.md that follows the
// marker <!-- sql:name -->, with its role and schema names replaced.
func appendOnlySQL(t *testing.T, name string, names map[string]string) string {
	t.Helper()
	doc, err := os.ReadFile("docs/SECURITY.md")
	require.NoError(t, err)
	m := regexp.MustCompile("(?s)<!-- sql:" + name + " -->\\s*```sql\\n(.*?)```").FindSubmatch(doc)
	require.NotNil(t, m, "docs/SECURITY.md has no block <!-- sql:%s -->", name)
	s := string(m[1])
	for from, to := range names {
		s = regexp.MustCompile(`\b`+from+`\b`).ReplaceAllString(s, to)
	}
	return s
}

// TestSecretsAppendOnlyInTheDatabase applies the roles and grants of
// docs/SECURITY.md and checks that the application role writes audited
// rows through auditpgx but can neither change nor remove entries, through
// auditpgx or plain pgx.
func TestSecretsAppendOnlyInTheDatabase(t *testing.T) {
	t.Parallel()
	dsn, schema := pgtestSchema(t)
	e := newEnvDSN(t, dsn, schema, "", nil)
	suffix := strconv.FormatUint(rand.Uint64(), 36)
	owner, app := "auditpgx_owner_"+suffix, "app_user_"+suffix
	names := map[string]string{"auditpgx_owner": owner, "app_user": app, "appschema": schema}
	// Registered before the application's pools, so it runs after they close.
	t.Cleanup(func() {
		_, err := e.plain.Exec(`DROP OWNED BY ` + owner + `, ` + app + ` CASCADE; DROP ROLE ` + owner + `; DROP ROLE ` + app)
		require.NoError(t, err)
	})
	_, err := e.plain.ExecContext(e.ctx, `DROP TABLE auditpgx_entry`) // newEnvDSN migrated it as the superuser
	require.NoError(t, err)
	_, err = e.plain.ExecContext(e.ctx, appendOnlySQL(t, "roles", names))
	require.NoError(t, err)

	ownerConn, err := e.plain.Conn(e.ctx)
	require.NoError(t, err)
	_, err = ownerConn.ExecContext(e.ctx, `SET ROLE `+owner)
	require.NoError(t, err)
	require.NoError(t, store.Migrate(e.ctx, ownerConn, "auditpgx_entry"))
	_, err = ownerConn.ExecContext(e.ctx, `RESET ROLE`)
	require.NoError(t, err)
	require.NoError(t, ownerConn.Close())
	_, err = e.plain.ExecContext(e.ctx, appendOnlySQL(t, "grants", names))
	require.NoError(t, err)

	appDSN := strings.Replace(dsn, "postgres://postgres@", "postgres://"+app+"@", 1)
	require.NotEqual(t, dsn, appDSN)
	appPlain, err := sql.Open("pgx", appDSN)
	require.NoError(t, err)
	t.Cleanup(func() { appPlain.Close() })
	_, err = appPlain.ExecContext(e.ctx, usersDDL)
	require.NoError(t, err, "the application creates its own tables")

	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{})
	require.NoError(t, err)
	require.NoError(t, registerUsers(reg))
	appDB := openWith(t, appDSN, reg)
	for _, q := range []string{
		`INSERT INTO users (name, password_hash) VALUES ('a', 'x'), ('b', 'y')`,
		`UPDATE users SET name = 'c' WHERE name = 'a'`,
		`DELETE FROM users WHERE name = 'b'`,
	} {
		_, err := appDB.ExecContext(e.ctx, q)
		require.NoError(t, err, "audited write as the application role: %s", q)
	}
	var entries int
	require.NoError(t, appPlain.QueryRowContext(e.ctx, `SELECT count(*) FROM auditpgx_entry`).Scan(&entries))
	require.Equal(t, 4, entries)

	for _, q := range []string{
		`UPDATE auditpgx_entry SET created_by = 'mallory'`,
		`DELETE FROM auditpgx_entry`,
		`TRUNCATE auditpgx_entry`,
		`DROP TABLE auditpgx_entry`,
		`ALTER TABLE auditpgx_entry DROP COLUMN changes`,
		`ALTER TABLE auditpgx_entry DISABLE TRIGGER ALL`,
		`CREATE TRIGGER t BEFORE INSERT ON auditpgx_entry FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()`,
		`SELECT id FROM auditpgx_entry FOR UPDATE`,
	} {
		_, err := appPlain.ExecContext(e.ctx, q)
		requireCode(t, err, "42501", "as the application role, plain pgx: "+q)
		_, err = appDB.ExecContext(e.ctx, q)
		require.Error(t, err, "as the application role, auditpgx: %s", q)
	}
	require.NoError(t, appPlain.QueryRowContext(e.ctx, `SELECT count(*) FROM auditpgx_entry`).Scan(&entries))
	require.Equal(t, 4, entries, "entries after the attempts")

	// What the setup cannot prevent: the application role may add entries.
	_, err = appPlain.ExecContext(e.ctx, `INSERT INTO auditpgx_entry (operation, table_name, object_id, tx_id) VALUES ('create', 'users', '99', 1)`)
	require.NoError(t, err, "INSERT stays possible for the application role (documented)")

	// The package documentation has applications call Migrate at start-up;
	// with the table in place it should change nothing and succeed.
	t.Run("Migrate as the application role", func(t *testing.T) {
		require.NoError(t, auditpgx.Migrate(e.ctx, appDB, auditpgx.WithRegistry(reg)))
	})
}
