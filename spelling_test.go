package auditpgx_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
)

// A registration is of a table, not of a spelling: whichever way a
// statement names a registered table, its writes fall under the one
// registration, with its redaction; two registrations of one table are an
// error.

const spellingSetup = `
CREATE TABLE users (id int PRIMARY KEY, name text, password_hash text);
CREATE TABLE events (id int, region text, secret text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE events_eu PARTITION OF events FOR VALUES IN ('eu');
CREATE TABLE animals (id int PRIMARY KEY, secret text);
CREATE TABLE dogs (id int PRIMARY KEY) INHERITS (animals);
INSERT INTO users VALUES (1, 'a', 'topsecret0');`

const secret = "topsecret"

func TestOneTableOneRegistration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		regs   func(schema string) []string
		writes []string
	}{
		{"bare and qualified", func(s string) []string { return []string{"users", s + ".users"} },
			[]string{`UPDATE users SET name = 'b'`, `UPDATE %s.users SET name = 'b'`}},
		{"bare and quoted qualified", func(s string) []string { return []string{"users", `"` + s + `"."users"`} },
			[]string{`UPDATE "users" SET name = 'b'`}},
		{"partition and parent", func(string) []string { return []string{"events", "events_eu"} },
			[]string{`INSERT INTO events VALUES (1, 'eu', 'x')`, `INSERT INTO events_eu VALUES (2, 'eu', 'x')`}},
		{"inheritance child and parent", func(s string) []string { return []string{"animals", s + ".dogs"} },
			[]string{`INSERT INTO dogs VALUES (1, 'x')`, `INSERT INTO animals VALUES (2, 'x')`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, spellingSetup, nil)
			regs := tc.regs(e.schema)
			for _, r := range regs {
				require.NoError(t, e.reg.RegisterTable(r))
			}
			err := auditpgx.Check(e.ctx, e.db, auditpgx.WithRegistry(e.reg))
			require.ErrorIs(t, err, auditpgx.ErrInvalidRegistration)
			require.ErrorContains(t, err, "registered twice")
			for _, r := range regs {
				require.ErrorContains(t, err, `"`+strings.ReplaceAll(r, `"`, `\"`)+`"`)
			}
			for _, w := range tc.writes {
				w = strings.ReplaceAll(w, "%s", e.schema)
				_, err := e.db.ExecContext(e.ctx, w)
				require.ErrorIs(t, err, auditpgx.ErrInvalidRegistration, w)
				require.ErrorContains(t, err, "registered twice", w)
			}
			require.Equal(t, 0, e.countEntries())
		})
	}
	// Two spellings PostgreSQL folds alike are one name: refused at once.
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{})
	require.NoError(t, err)
	require.NoError(t, reg.RegisterTable("users"))
	for _, again := range []string{"USERS", `"users"`, " users "} {
		require.ErrorContains(t, reg.RegisterTable(again), "already registered", again)
	}
}

func TestRedactedUnderEverySpelling(t *testing.T) {
	t.Parallel()
	for _, registered := range []string{"users", "%s.users", `"%s"."users"`} {
		t.Run(registered, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, spellingSetup, nil)
			name := strings.ReplaceAll(registered, "%s", e.schema)
			require.NoError(t, e.reg.RegisterTable(name, auditpgx.Redact("password_hash")))
			require.NoError(t, e.reg.RegisterTable("events", auditpgx.Redact("secret")))
			require.NoError(t, e.reg.RegisterTable("animals", auditpgx.Redact("secret")))
			require.NoError(t, auditpgx.Check(e.ctx, e.db, auditpgx.WithRegistry(e.reg)))
			other := e.schema + "_other"
			_, err := e.plain.ExecContext(e.ctx, `CREATE SCHEMA `+other)
			require.NoError(t, err)
			t.Cleanup(func() { _, _ = e.plain.ExecContext(e.ctx, `DROP SCHEMA `+other+` CASCADE`) })
			conn, err := e.db.Conn(e.ctx)
			require.NoError(t, err)
			defer conn.Close()
			s := e.schema
			writes := []string{
				`UPDATE users SET password_hash = 'topsecret1'`,
				`UPDATE ` + s + `.users SET password_hash = 'topsecret2'`,
				`UPDATE "users" SET password_hash = 'topsecret3'`,
				`UPDATE "` + s + `"."users" SET password_hash = 'topsecret4'`,
				`UPDATE USERS SET password_hash = 'topsecret5'`,
				`UPDATE Users u SET password_hash = 'topsecret6' RETURNING u.id`,
				`INSERT INTO events VALUES (1, 'eu', 'topsecret7')`,
				`INSERT INTO events_eu VALUES (2, 'eu', 'topsecret8')`,
				`UPDATE ` + s + `.events_eu SET secret = 'topsecret9'`,
				`INSERT INTO dogs VALUES (1, 'topsecret10')`,
				`UPDATE animals SET secret = 'topsecret11'`,
				`SET search_path = ` + other + `, ` + s,
				`UPDATE users SET password_hash = 'topsecret12'`,
				`DELETE FROM dogs`,
				`DELETE FROM users`,
			}
			for _, w := range writes {
				_, err := conn.ExecContext(e.ctx, w)
				require.NoError(t, err, w)
			}
			var leaked, entries int
			require.NoError(t, e.plain.QueryRowContext(e.ctx,
				`SELECT count(*) FILTER (WHERE e::text LIKE '%`+secret+`%'), count(*) FROM auditpgx_entry e`).Scan(&leaked, &entries))
			require.Equal(t, 0, leaked, "a redacted value reached the entry table")
			require.Equal(t, 15, entries)
			ops := e.opsOn(name)
			require.Equal(t, map[string]int{"update": 7, "delete": 1}, ops, "every spelling of users falls under %q", name)
			require.Equal(t, map[string]int{"create": 2, "update": 2}, e.opsOn("events"))
			require.Equal(t, map[string]int{"create": 1, "update": 1, "delete": 1}, e.opsOn("animals"))
		})
	}
}

func TestWritesThroughViewsAndRules(t *testing.T) {
	t.Parallel()
	setup := spellingSetup + `
CREATE VIEW v_users AS SELECT * FROM users;
CREATE VIEW v_v_users AS SELECT id, name FROM v_users;
CREATE VIEW v_trig AS SELECT id, name FROM users;
CREATE FUNCTION v_trig_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO users (id, name) VALUES (NEW.id, NEW.name); RETURN NEW; END $$;
CREATE TRIGGER v_trig_ins INSTEAD OF INSERT ON v_trig FOR EACH ROW EXECUTE FUNCTION v_trig_ins();
CREATE TABLE sink (id int, name text);
CREATE RULE sink_to_users AS ON INSERT TO sink DO INSTEAD INSERT INTO users (id, name) VALUES (NEW.id, NEW.name);
CREATE TABLE plain_t (id int PRIMARY KEY);
CREATE VIEW v_plain AS SELECT * FROM plain_t;`
	e := newEnv(t, setup, func(r *auditpgx.Registry) error { return r.RegisterTable("users") })
	for _, w := range []string{
		`INSERT INTO v_users VALUES (5, 'v', 'x')`,
		`UPDATE v_users SET name = 'v'`,
		`DELETE FROM v_users`,
		`UPDATE v_v_users SET name = 'vv'`,
		`INSERT INTO v_trig VALUES (6, 't')`,
		`INSERT INTO sink VALUES (7, 'r')`,
	} {
		_, err := e.db.ExecContext(e.ctx, w)
		require.ErrorIs(t, err, auditpgx.ErrUnaudited, w)
		require.ErrorContains(t, err, `"users"`, w)
		view := strings.Fields(w)[2]
		if strings.HasPrefix(w, "UPDATE") {
			view = strings.Fields(w)[1]
		}
		require.ErrorContains(t, err, `"`+view+`"`, w)
	}
	var n int
	require.NoError(t, e.plain.QueryRowContext(e.ctx, `SELECT count(*) FROM users WHERE name = 'a' AND id = 1`).Scan(&n))
	require.Equal(t, 1, n, "nothing was written")
	require.Equal(t, 0, e.countEntries())
	// A view over unregistered tables is written as it is.
	_, err := e.db.ExecContext(e.ctx, `INSERT INTO v_plain VALUES (1)`)
	require.NoError(t, err)

	// With AllowUnaudited, run and logged.
	var logs bytes.Buffer
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{AllowUnaudited: true, Logger: textLogger(&logs)})
	require.NoError(t, err)
	require.NoError(t, reg.RegisterTable("users"))
	db := openWith(t, e.dsn, reg)
	_, err = db.ExecContext(e.ctx, `UPDATE v_users SET name = 'logged' WHERE id = 1`)
	require.NoError(t, err)
	require.Contains(t, logs.String(), "v_users")
}

func TestSystemCatalogsAndOptionErrors(t *testing.T) {
	t.Parallel()
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{})
	require.NoError(t, err)
	for _, name := range []string{"pg_catalog.pg_class", "information_schema.tables", "PG_CATALOG.pg_attribute"} {
		err := reg.RegisterTable(name)
		require.ErrorIs(t, err, auditpgx.ErrInvalidRegistration, name)
		require.ErrorContains(t, err, "system schema", name)
	}
	err = reg.RegisterTable("x", auditpgx.Exclude(""))
	require.ErrorIs(t, err, auditpgx.ErrInvalidRegistration)
	require.True(t, strings.HasPrefix(err.Error(), `auditpgx: invalid registration: table "x": Exclude`), err.Error())
	err = reg.RegisterTable("y", auditpgx.Only())
	require.True(t, strings.HasPrefix(err.Error(), `auditpgx: invalid registration: table "y": Only`), err.Error())

	// pg_class unqualified is found in pg_catalog, first in every
	// search_path: Check refuses it.
	e := newEnv(t, ``, func(r *auditpgx.Registry) error { return r.RegisterTable("pg_class") })
	err = auditpgx.Check(e.ctx, e.db, auditpgx.WithRegistry(e.reg))
	require.ErrorIs(t, err, auditpgx.ErrInvalidRegistration)
	require.ErrorContains(t, err, "system catalog")
}

func TestActorValidated(t *testing.T) {
	t.Parallel()
	e := newEnv(t, silentSetup, registerT)
	for name, a := range map[string]string{
		"1 MB":         strings.Repeat("a", 1<<20),
		"2,800 bytes":  strings.Repeat("b", 2800),
		"invalid UTF8": "bob\xff",
		"NUL":          "bob\x00",
	} {
		ctx := auditpgx.WithActor(e.ctx, a)
		_, err := e.db.ExecContext(ctx, `INSERT INTO t VALUES (1, 'a')`)
		require.ErrorIs(t, err, auditpgx.ErrInvalidActor, name)
		require.NotContains(t, err.Error(), "bob", "the error never holds the actor")
		_, err = e.db.QueryContext(ctx, `INSERT INTO t VALUES (1, 'a') RETURNING id`)
		require.ErrorIs(t, err, auditpgx.ErrInvalidActor, name)
		_, err = e.db.ExecContext(ctx, `INSERT INTO t VALUES (1, 'a'); INSERT INTO t VALUES (2, 'b')`)
		require.ErrorIs(t, err, auditpgx.ErrInvalidActor, name)
		require.ErrorIs(t, auditpgx.ValidateActor(a), auditpgx.ErrInvalidActor)
	}
	var n int
	require.NoError(t, e.plain.QueryRowContext(e.ctx, `SELECT count(*) FROM t`).Scan(&n))
	require.Equal(t, 0, n, "nothing was written")
	require.Equal(t, 0, e.countEntries())
	// The longest actor allowed is recorded.
	long := strings.Repeat("é", auditpgx.MaxActorBytes/2)
	_, err := e.db.ExecContext(auditpgx.WithActor(e.ctx, long), `INSERT INTO t VALUES (1, 'a')`)
	require.NoError(t, err)
	require.NoError(t, auditpgx.ValidateActor(long))
}
