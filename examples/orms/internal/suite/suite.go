// Package suite is the harness the client suites share: it gives a test two
// identical empty schemas on the throwaway PostgreSQL server, one reached
// through auditpgx and one through plain pgx, and checks what auditpgx
// promises about a client's writes:
//
//   - the client sees the same results through both (compare them with
//     require.Equal; compare errors by message, since a *pgconn.PgError
//     names the schema, which differs), and both schemas end with the same
//     contents ([Env.RequireSameTables]);
//   - the entries are exactly the expected ones ([Env.RequireEntries]);
//   - replaying every entry from empty rebuilds every audited table
//     ([Env.RequireReplay]).
//
// A package using it wires the server up in TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(suite.Main(m)) }
//
//	func TestCreate(t *testing.T) {
//		e := suite.New(t, suite.Config{Register: func(r *auditpgx.Registry) error {
//			return r.RegisterTable("users")
//		}})
//		// ... run the client against e.Audited and e.Plain ...
//		e.RequireSameTables()
//		e.RequireEntries(suite.Create("users", "1", `{"id": 1, "name": "Al"}`))
//		e.RequireReplay()
//	}
package suite

import (
	"context"
	"database/sql"
	"net/url"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver of the plain side
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/internal/pgtest"
)

// Main is for TestMain: os.Exit(suite.Main(m)). It stops the shared server
// once the tests are done.
func Main(m *testing.M) int { return pgtest.Main(m) }

// Config describes one test's tables.
type Config struct {
	// DDL is run on both schemas, through plain pgx, before the entry table
	// is created. Leave it empty when the client creates its own tables
	// (GORM's AutoMigrate, ent's schema migration).
	DDL string
	// Register registers the audited tables in the test's own registry.
	Register func(r *auditpgx.Registry) error
}

// Env is one test's pair of databases.
type Env struct {
	t   testing.TB
	Ctx context.Context

	// Registry holds the tables Config.Register registered.
	Registry *auditpgx.Registry
	// Audited reaches AuditedDSN through auditpgx with Registry.
	Audited    *sql.DB
	AuditedDSN string
	// Plain reaches PlainDSN, a schema identical to the audited one at the
	// start, through pgx's own "pgx" driver.
	Plain    *sql.DB
	PlainDSN string

	// admin reaches the audited schema through plain pgx, to read entries
	// and contents without going through the driver under test.
	admin         *sql.DB
	auditedSchema string
	plainSchema   string
}

// New makes the two schemas, runs cfg.DDL on both, registers the tables and
// creates the entry table in the audited schema. Everything is dropped when
// the test ends. Sessions use the UTC time zone, so that timestamps in
// entries read the same on every machine.
func New(t testing.TB, cfg Config) *Env {
	t.Helper()
	ctx := context.Background()
	e := &Env{t: t, Ctx: ctx}
	e.AuditedDSN, e.auditedSchema = newSchema(t)
	e.PlainDSN, e.plainSchema = newSchema(t)

	e.Plain = open(t, "pgx", e.PlainDSN)
	e.admin = open(t, "pgx", e.AuditedDSN)
	if cfg.DDL != "" {
		for _, db := range []*sql.DB{e.Plain, e.admin} {
			_, err := db.ExecContext(ctx, cfg.DDL)
			require.NoError(t, err, "running Config.DDL")
		}
	}

	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{})
	require.NoError(t, err)
	if cfg.Register != nil {
		require.NoError(t, cfg.Register(reg), "Config.Register")
	}
	e.Registry = reg
	conn, err := auditpgx.NewConnector(e.AuditedDSN, auditpgx.WithRegistry(reg))
	require.NoError(t, err)
	e.Audited = sql.OpenDB(conn)
	t.Cleanup(func() { e.Audited.Close() })
	require.NoError(t, auditpgx.Migrate(ctx, e.Audited, auditpgx.WithRegistry(reg)))
	return e
}

// newSchema is pgtest.NewSchema with the session time zone set to UTC.
func newSchema(t testing.TB) (dsn, schema string) {
	t.Helper()
	dsn, schema = pgtest.NewSchema(t)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	q.Set("timezone", "UTC")
	u.RawQuery = q.Encode()
	return u.String(), schema
}

func open(t testing.TB, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}
