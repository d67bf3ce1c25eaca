package store_test

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/store"
)

// docSQL returns the SQL block of the document file (under docs/) that
// follows the marker <!-- sql:name -->, with the words of names replaced.
func docSQL(t *testing.T, file, name string, names map[string]string) string {
	t.Helper()
	doc, err := os.ReadFile("../docs/" + file)
	require.NoError(t, err)
	m := regexp.MustCompile("(?s)<!-- sql:" + name + " -->\\s*```sql\\n(.*?)```").FindSubmatch(doc)
	require.NotNil(t, m, "docs/%s has no block <!-- sql:%s -->", file, name)
	s := string(m[1])
	for from, to := range names {
		s = regexp.MustCompile(`\b`+regexp.QuoteMeta(from)+`\b`).ReplaceAllString(s, to)
	}
	return s
}

// The roles and grants of docs/SECURITY.md on a partitioned entry table,
// as it says to apply them there: the owner makes the table and its
// partitions, and the application writes audited rows through the driver
// but can touch no partition by name.
func TestPartitionedRolesFromSecurityDoc(t *testing.T) {
	ctx := context.Background()
	dsn, schema := pgtest.NewSchema(t)
	suffix := strconv.FormatUint(rand.Uint64(), 36)
	owner, app := "auditpgx_owner_"+suffix, "app_user_"+suffix
	names := map[string]string{"auditpgx_owner": owner, "app_user": app, "appschema": schema}
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	// Registered before the application's pool, so it runs after it closes.
	t.Cleanup(func() {
		_, err := db.Exec(`DROP OWNED BY ` + owner + `, ` + app + ` CASCADE; DROP ROLE ` + owner + `; DROP ROLE ` + app)
		require.NoError(t, err)
		db.Close()
	})
	db.SetMaxOpenConns(1) // one session, whose role the test sets
	_, err = db.ExecContext(ctx, docSQL(t, "SECURITY.md", "roles", names))
	require.NoError(t, err)

	_, err = db.ExecContext(ctx, `SET ROLE `+owner)
	require.NoError(t, err)
	require.NoError(t, store.Migrate(ctx, db, "auditpgx_entry", store.Partitioned(store.Monthly)))
	_, err = db.ExecContext(ctx, `RESET ROLE`)
	require.NoError(t, err)
	grants := docSQL(t, "SECURITY.md", "grants", names)
	last := "REVOKE CREATE ON SCHEMA " + schema + " FROM " + owner + ";"
	require.Contains(t, grants, last, "the statement the partitioned layout leaves out")
	_, err = db.ExecContext(ctx, strings.Replace(grants, last, "", 1))
	require.NoError(t, err)

	// Maintain as the owner, and as a superuser: the partitions are the
	// owner's either way.
	_, err = db.ExecContext(ctx, `SET ROLE `+owner)
	require.NoError(t, err)
	res, err := store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{Future: 4})
	require.NoError(t, err)
	require.Len(t, res.Created, 1)
	_, err = db.ExecContext(ctx, `RESET ROLE`)
	require.NoError(t, err)
	res, err = store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{Future: 5})
	require.NoError(t, err)
	require.Len(t, res.Created, 1)
	var owners []string
	rows, err := db.QueryContext(ctx, `SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'auditpgx_entry'::regclass`)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		owners = append(owners, s)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{owner}, owners)

	// The application, through the driver.
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{})
	require.NoError(t, err)
	require.NoError(t, reg.RegisterTable("notes"))
	connector, err := auditpgx.NewConnector(dsn, auditpgx.WithRegistry(reg),
		auditpgx.WithStdlibOptions(stdlib.OptionAfterConnect(func(ctx context.Context, c *pgx.Conn) error {
			_, err := c.Exec(ctx, `SET ROLE `+app)
			return err
		})))
	require.NoError(t, err)
	appDB := sql.OpenDB(connector)
	defer appDB.Close()
	require.NoError(t, auditpgx.Migrate(ctx, appDB, auditpgx.WithRegistry(reg)))
	_, err = store.Maintain(ctx, appDB, "auditpgx_entry", store.MaintainOptions{Future: 6})
	require.ErrorContains(t, err, "SQLSTATE 42501", "the application cannot make partitions")
	for _, q := range []string{
		`CREATE TABLE notes (id int PRIMARY KEY, body text)`,
		`INSERT INTO notes VALUES (1, 'one')`,
		`UPDATE notes SET body = 'uno' WHERE id = 1`,
	} {
		_, err := appDB.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	entries, err := store.List(ctx, appDB, store.Query{})
	require.NoError(t, err)
	require.Len(t, entries, 2)

	// Nor prune: an old partition, made by the owner, stays.
	_, err = store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{Now: utc("2024-01-01T00:00:00Z"), Future: -1})
	require.NoError(t, err)
	_, err = store.Prune(ctx, appDB, "auditpgx_entry", store.PruneOptions{Before: utc("2024-06-01T00:00:00Z")})
	require.ErrorContains(t, err, "SQLSTATE 42501")
	require.Contains(t, strings.Join(partitionsOf(t, db, "auditpgx_entry"), " "), "auditpgx_entry_p2024_01")

	current := "auditpgx_entry_p" + entries[0].Created.UTC().Format("2006_01")
	for _, q := range []string{
		`SELECT count(*) FROM ` + current,
		`DELETE FROM ` + current,
		`UPDATE auditpgx_entry_default SET created_by = 'mallory'`,
		`INSERT INTO ` + current + ` (operation, table_name, object_id, tx_id) VALUES ('create', 'notes', '9', 1)`,
		`DROP TABLE ` + current,
		`ALTER TABLE auditpgx_entry DETACH PARTITION ` + current,
		`DELETE FROM auditpgx_entry`,
	} {
		_, err := appDB.ExecContext(ctx, q)
		require.Error(t, err, q)
	}
	_, err = db.ExecContext(ctx, `SET ROLE `+app)
	require.NoError(t, err)
	for _, q := range []string{
		`SELECT count(*) FROM ` + current,
		`DELETE FROM ` + current,
		`DROP TABLE ` + current,
		`CREATE TABLE mine (LIKE auditpgx_entry)`,
		`ALTER TABLE auditpgx_entry ATTACH PARTITION mine FOR VALUES FROM ('2000-01-01') TO ('2000-02-01')`,
	} {
		_, err := db.ExecContext(ctx, q)
		if strings.HasPrefix(q, "CREATE") {
			require.NoError(t, err, "the application may create tables of its own")
			continue
		}
		require.ErrorContains(t, err, "SQLSTATE 42501", q)
	}
	_, err = db.ExecContext(ctx, `RESET ROLE`)
	require.NoError(t, err)
}
