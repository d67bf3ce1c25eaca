package auditpgx_test

import (
	"bytes"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
)

// What pgx's, GORM's and bun's own suites send, which must behave through
// auditpgx exactly as through pgx: the registry's state never makes DDL,
// unregistered writes or unrunnable text fail in another way.

func requirePgCode(t *testing.T, err error, code string) {
	t.Helper()
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr, "want the server's own error %s", code)
	require.Equal(t, code, pgErr.Code)
}

func TestDDLOnAbsentOrKeylessRegisteredTable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, ``, func(r *auditpgx.Registry) error {
		if err := r.RegisterTable("absent"); err != nil {
			return err
		}
		return r.RegisterTable("keyless")
	})
	for _, q := range []string{
		`DROP TABLE IF EXISTS absent`,
		`DROP TABLE IF EXISTS absent CASCADE`,
		`ALTER TABLE IF EXISTS absent ADD COLUMN x int`,
		`CREATE TABLE keyless (a int)`,
		`ALTER TABLE keyless ADD COLUMN b int`,
		`DROP TABLE keyless`,
		`CREATE TABLE keyless (a int)`,
		`DROP TABLE keyless CASCADE`,
	} {
		_, err := e.db.ExecContext(e.ctx, q)
		require.NoError(t, err, q)
	}
	_, err := e.db.ExecContext(e.ctx, `DROP TABLE absent`)
	requirePgCode(t, err, "42P01")
	_, err = e.db.ExecContext(e.ctx, `ALTER TABLE absent ADD COLUMN x int`)
	requirePgCode(t, err, "42P01")
	for _, q := range []string{`INSERT INTO absent VALUES (1)`, `UPDATE absent SET a = 1`, `DELETE FROM absent`} {
		_, err = e.db.ExecContext(e.ctx, q)
		requirePgCode(t, err, "42P01")
		require.NotErrorIs(t, err, auditpgx.ErrInvalidRegistration)
	}
	// The registration error belongs to Check and to writes on a table
	// that exists.
	_, err = e.db.ExecContext(e.ctx, `CREATE TABLE keyless (a int)`)
	require.NoError(t, err)
	_, err = e.db.ExecContext(e.ctx, `INSERT INTO keyless VALUES (1)`)
	require.ErrorIs(t, err, auditpgx.ErrInvalidRegistration)
	require.ErrorContains(t, err, `table "keyless" has no primary key`)
	require.ErrorIs(t, auditpgx.Check(e.ctx, e.db, auditpgx.WithRegistry(e.reg)), auditpgx.ErrInvalidRegistration)
}

func TestTruncateUnregisteredWhileRegisteredAbsent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `CREATE TABLE fixtures (id int PRIMARY KEY); CREATE TABLE other (id int PRIMARY KEY);
		INSERT INTO fixtures VALUES (1);`, func(r *auditpgx.Registry) error { return r.RegisterTable("b") })
	_, err := e.db.ExecContext(e.ctx, `TRUNCATE TABLE fixtures RESTART IDENTITY CASCADE`)
	require.NoError(t, err, "bun's fixture loader")
	// A TRUNCATE that reaches a registered table is still refused.
	_, err = e.db.ExecContext(e.ctx, `CREATE TABLE b (id int PRIMARY KEY, f int REFERENCES other)`)
	require.NoError(t, err)
	_, err = e.db.ExecContext(e.ctx, `TRUNCATE other CASCADE`)
	require.ErrorIs(t, err, auditpgx.ErrUnaudited)
	require.ErrorContains(t, err, `"b"`)
}

func TestAllowUnauditedRunsKeylessWrite(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	dsn, schema := pgtestSchema(t)
	e := newEnvDSN(t, dsn, schema, `CREATE TABLE keyless (a int, secret text)`, nil)
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{AllowUnaudited: true, Logger: textLogger(&logs)})
	require.NoError(t, err)
	require.NoError(t, reg.RegisterTable("keyless", auditpgx.Redact("secret")))
	db := openWith(t, dsn, reg)
	res, err := db.ExecContext(e.ctx, `INSERT INTO keyless VALUES (1, 'hunter2')`)
	require.NoError(t, err)
	n, err := res.RowsAffected()
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	require.Contains(t, logs.String(), "has no primary key")
	require.NotContains(t, logs.String(), "hunter2")
	require.Equal(t, 0, e.countEntries())
	require.ErrorIs(t, auditpgx.Check(e.ctx, db, auditpgx.WithRegistry(reg)), auditpgx.ErrInvalidRegistration)
}

func TestUnlexableTextReachesServer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, silentSetup, registerT)
	for _, q := range []string{`select 'foo`, `select "foo`, `select $$foo`} {
		_, err := e.db.ExecContext(e.ctx, q)
		requirePgCode(t, err, "42601")
		_, err = e.db.QueryContext(e.ctx, q)
		requirePgCode(t, err, "42601")
	}
	// A registered name as a whole word of text that cannot be lexed is
	// still refused: a server reading quotes otherwise could run a write.
	_, err := e.db.ExecContext(e.ctx, `select 'a\''; delete from t; --`)
	require.ErrorIs(t, err, auditpgx.ErrUnaudited)
}

func TestCreateThenWriteInOneString(t *testing.T) {
	t.Parallel()
	e := newEnv(t, ``, func(r *auditpgx.Registry) error { return r.RegisterTable("docs") })
	_, err := e.db.ExecContext(e.ctx, `create temporary table docs (id int primary key, body text); insert into docs values (1, 'a')`)
	require.ErrorIs(t, err, auditpgx.ErrUnaudited)
	require.ErrorContains(t, err, "send them separately")
	require.NotErrorIs(t, err, auditpgx.ErrInvalidRegistration)
	// Unregistered names in such a string run as they are.
	_, err = e.db.ExecContext(e.ctx, `create temporary table scratch (id int); insert into scratch values (1)`)
	require.NoError(t, err)
	// Sent separately, the write is audited.
	_, err = e.db.ExecContext(e.ctx, `create table docs (id int primary key, body text)`)
	require.NoError(t, err)
	_, err = e.db.ExecContext(e.ctx, `insert into docs values (1, 'a')`)
	require.NoError(t, err)
	require.Equal(t, 1, e.countEntries())
	// CREATE TABLE ... AS of a registered name fills it without an INSERT.
	_, err = e.db.ExecContext(e.ctx, `create temporary table docs as select 2 as id, 'b' as body`)
	require.ErrorIs(t, err, auditpgx.ErrUnaudited)
}

func TestM2MUpdateWithoutKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `CREATE TABLE person_addresses (person_id int, address_id int, deleted_at timestamptz);
		INSERT INTO person_addresses VALUES (1, 1, NULL), (1, 2, NULL);`,
		func(r *auditpgx.Registry) error {
			return r.RegisterM2M("person_addresses", auditpgx.M2M{Field: "addresses",
				Owner:   auditpgx.Ref{Table: "people", Column: "person_id"},
				Related: auditpgx.Ref{Table: "addresses", Column: "address_id"}})
		})
	// GORM's soft delete of a join row changes no link.
	res, err := e.db.ExecContext(e.ctx, `UPDATE person_addresses SET deleted_at = now() WHERE person_id = 1 AND address_id = 1`)
	require.NoError(t, err)
	n, err := res.RowsAffected()
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	require.Equal(t, 0, e.countEntries())
	// One that moves a link is audited where RETURNING old.* exists.
	_, err = e.db.ExecContext(e.ctx, `UPDATE person_addresses SET address_id = 3 WHERE person_id = 1 AND address_id = 2`)
	if e.serverVersion() < 180000 {
		require.ErrorIs(t, err, auditpgx.ErrUnaudited)
		require.ErrorContains(t, err, "no primary key")
		return
	}
	require.NoError(t, err)
	require.Equal(t, map[string]int{"associate": 1, "disassociate": 1}, e.opsOn("people"))
}
