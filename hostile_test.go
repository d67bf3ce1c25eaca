// The hostile suite: malformed SQL, hostile identifiers and values, and
// registrations that cannot work get the server's own errors or a clear
// refusal, and nothing a user writes is run as SQL by auditpgx.

package auditpgx_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/internal/parse"
)

// hostileDDL is usersDDL (registered) beside notes, which is not.
const hostileDDL = usersDDL + `
CREATE TABLE notes (id int PRIMARY KEY, body text);
CREATE TABLE superusers (id int PRIMARY KEY, name text);
INSERT INTO users (name) VALUES ('keep');
INSERT INTO notes VALUES (1, 'n');`

// requireSamePgError checks that the audited connection returned exactly
// the error plain pgx returned for the same statement.
func requireSamePgError(t *testing.T, plainErr, auditErr error, msg string) {
	t.Helper()
	var want, got *pgconn.PgError
	require.ErrorAs(t, plainErr, &want, "plain pgx: %s", msg)
	require.ErrorAs(t, auditErr, &got, "auditpgx: %s (got %T: %v)", msg, auditErr, auditErr)
	require.Equal(t, want.Severity, got.Severity, msg)
	require.Equal(t, want.Code, got.Code, msg)
	require.Equal(t, want.Message, got.Message, msg)
	require.Equal(t, want.Detail, got.Detail, msg)
	require.Equal(t, want.Position, got.Position, msg)
}

// TestHostileMalformedUnregistered: SQL that does not parse, or that the
// server rejects, on tables that are not registered comes back with the
// server's own *pgconn.PgError, as through plain pgx.
func TestHostileMalformedUnregistered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hostileDDL, registerUsers)
	deep := strings.Repeat("(", parse.MaxNesting+5) + "1" + strings.Repeat(")", parse.MaxNesting+5)
	for _, q := range []string{
		`SELEC 1`,
		`INSERT INTO notes VALUES (`,
		`UPDATE notes SET body = WHERE id = 1`,
		`DELETE FROM notes WHERE`,
		`INSERT INTO notes VALUES (2, 'unterminated)`,
		`SELECT 1 +`,
		`INSERT INTO nosuch VALUES (1)`,
		`UPDATE notes SET nosuch = 1`,
		`INSERT INTO notes VALUES ('x', 'y')`,
		"INSERT INTO notes VALUES (3, '\xff\xfe')",
		"INSERT INTO notes VALUES (3, E'\\xff')",
		`SELECT ` + strings.Repeat("(", 100_000),
		`UPDATE notes SET body = ` + deep + `::text || 1/0`,
		`DO $$ BEGIN RAISE EXCEPTION 'boom' USING DETAIL = 'd', HINT = 'h'; END $$`,
	} {
		label := q
		if len(label) > 80 {
			label = label[:80] + "..."
		}
		_, plainErr := e.plain.ExecContext(e.ctx, q)
		_, auditErr := e.db.ExecContext(e.ctx, q)
		requireSamePgError(t, plainErr, auditErr, "exec "+label)
		_, auditErr = e.db.QueryContext(e.ctx, q) //nolint:rowserrcheck,sqlclosecheck // must fail
		requireSamePgError(t, plainErr, auditErr, "query "+label)
	}
	require.Equal(t, 0, e.countEntries())
}

// TestHostileMalformedNearRegisteredName: text that does not parse and
// names only an unregistered table whose name contains a registered one
// ("superusers" contains "users"), or mentions the registered name only in
// a string or a comment, is not a write to the registered table; the
// caller should see the server's syntax error as with plain pgx.
func TestHostileMalformedNearRegisteredName(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hostileDDL, registerUsers)
	for _, q := range []string{
		`UPDATE superusers SET name = WHERE id = 1`,
		`DELETE FROM notes WHERE body = 'users' AND`,
		`UPDATE notes SET body = 'x' WHERE -- users
		`,
	} {
		_, plainErr := e.plain.ExecContext(e.ctx, q)
		_, auditErr := e.db.ExecContext(e.ctx, q)
		requireSamePgError(t, plainErr, auditErr, q)
	}
}

// TestHostileRegisteredInputs: hostile text aimed at a registered table is
// refused before anything runs or executed exactly, and never crashes.
func TestHostileRegisteredInputs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hostileDDL, registerUsers)
	unchanged := func(msg string) {
		t.Helper()
		var names string
		require.NoError(t, e.plain.QueryRow(`SELECT string_agg(name, ',' ORDER BY id) FROM users`).Scan(&names), msg)
		require.Equal(t, "keep", names, msg)
		require.Equal(t, 0, e.countEntries(), msg)
	}
	refusedOrServerError := func(err error, msg string) {
		t.Helper()
		require.Error(t, err, msg)
		var pgErr *pgconn.PgError
		if !errors.Is(err, auditpgx.ErrUnaudited) && !errors.As(err, &pgErr) {
			t.Fatalf("%s: %T %v is neither a refusal nor a server error", msg, err, err)
		}
		unchanged(msg)
	}

	t.Run("refused", func(t *testing.T) {
		for _, q := range []string{
			`UPDATE users SET name = 'x' WHERE`,
			`INSERT INTO users (name) VALUES ('a'`,
			`UPDATE users SET name = ` + strings.Repeat("(", parse.MaxNesting+1) + `'x'` + strings.Repeat(")", parse.MaxNesting+1),
			`UPDATE users SET name = ` + strings.Repeat("(", 100_000) + `'x'` + strings.Repeat(")", 100_000),
			`UPDATE users SET name = ` + strings.Repeat("(", 100_000),
			`UPDATE users SET name = 'x' WHERE id = ANY(ARRAY` + strings.Repeat("[", 100_000) + `1`,
			"INSERT INTO users (name) VALUES ('a\x00b')",
			"DELETE FROM users WHERE id = 0\x00; DELETE FROM users",
		} {
			_, err := e.db.ExecContext(e.ctx, q)
			require.ErrorIs(t, err, auditpgx.ErrUnaudited, "%.80q", q)
			unchanged(fmt.Sprintf("%.80q", q))
		}
	})

	t.Run("nesting at the limit runs", func(t *testing.T) {
		q := `UPDATE users SET name = ` + strings.Repeat("(", parse.MaxNesting) + `'deep'` + strings.Repeat(")", parse.MaxNesting)
		_, err := e.db.ExecContext(e.ctx, q)
		require.NoError(t, err)
		require.Equal(t, 1, e.countEntries())
		_, err = e.plain.ExecContext(e.ctx, `UPDATE users SET name = 'keep'; TRUNCATE auditpgx_entry`)
		require.NoError(t, err)
	})

	t.Run("invalid UTF-8 and NUL", func(t *testing.T) {
		_, err := e.db.ExecContext(e.ctx, "INSERT INTO users (name) VALUES ('\xff\xfe')")
		refusedOrServerError(err, "invalid UTF-8 in the text")
		_, err = e.db.ExecContext(e.ctx, "UPDATE users SET name = '\xc3' WHERE id = 1")
		refusedOrServerError(err, "truncated UTF-8 sequence in the text")
		_, err = e.db.ExecContext(e.ctx, `INSERT INTO users (name) VALUES ($1)`, "\xff\xfe")
		requireCode(t, err, "22021", "invalid UTF-8 as a parameter")
		unchanged("invalid UTF-8 as a parameter")
		_, err = e.db.ExecContext(e.ctx, `INSERT INTO users (name) VALUES ($1)`, "a\x00b")
		requireCode(t, err, "22021", "NUL in a parameter")
		unchanged("NUL in a parameter")
		_, err = e.db.ExecContext(auditpgx.WithActor(e.ctx, "a\x00b"), `UPDATE users SET name = 'x'`)
		require.ErrorIs(t, err, auditpgx.ErrInvalidActor, "NUL in the actor")
		_, err = e.db.ExecContext(auditpgx.WithActor(e.ctx, "a\x00b"), `UPDATE users SET name = 'x'; UPDATE users SET name = 'y'`)
		require.ErrorIs(t, err, auditpgx.ErrInvalidActor, "NUL in the actor of a multi-statement string")
		_, err = e.db.ExecContext(auditpgx.WithActor(e.ctx, "\xff"), `UPDATE users SET name = 'x'; UPDATE users SET name = 'y'`)
		require.ErrorIs(t, err, auditpgx.ErrInvalidActor, "invalid UTF-8 in the actor of a multi-statement string")
		unchanged("invalid actors")
	})

	t.Run("1 MB statements", func(t *testing.T) {
		big := strings.Repeat("x", 1<<20)
		res, err := e.db.ExecContext(e.ctx, `INSERT INTO users (name) VALUES ('`+big+`')`)
		require.NoError(t, err)
		n, _ := res.RowsAffected()
		require.EqualValues(t, 1, n)
		var length int
		require.NoError(t, e.plain.QueryRow(`SELECT length(changes->'added_fields'->>'name') FROM auditpgx_entry`).Scan(&length))
		require.Equal(t, 1<<20, length)

		var b strings.Builder
		b.WriteString(`INSERT INTO users (name) VALUES `)
		rows := 0
		for b.Len() < 1<<20 {
			if rows > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "('%s')", strings.Repeat(strconv.Itoa(rows%10), 120))
			rows++
		}
		res, err = e.db.ExecContext(e.ctx, b.String())
		require.NoError(t, err)
		n, _ = res.RowsAffected()
		require.EqualValues(t, rows, n)
		require.Equal(t, rows+1, e.countEntries())
		_, err = e.plain.ExecContext(e.ctx, `DELETE FROM users WHERE name <> 'keep'; TRUNCATE auditpgx_entry`)
		require.NoError(t, err)
	})
}

func requireCode(t *testing.T, err error, code, msg string) {
	t.Helper()
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr, msg)
	require.Equal(t, code, pgErr.Code, "%s: %v", msg, err)
}

// TestHostileMaxParameters: a statement with the protocol's maximum of
// 65,535 parameters runs through plain pgx; through auditpgx it must run
// too (the actor must not push it over the limit) or be refused with an
// auditpgx error, and never half-run.
func TestHostileMaxParameters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hostileDDL, registerUsers)
	for _, n := range []int{65534, 65535} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			var b strings.Builder
			b.WriteString(`UPDATE users SET name = $1 WHERE id IN (`)
			args := []any{"p" + strconv.Itoa(n)}
			for i := 2; i <= n; i++ {
				if i > 2 {
					b.WriteByte(',')
				}
				b.WriteString("$" + strconv.Itoa(i))
				args = append(args, int64(i-1)) // users.id 1 exists
			}
			b.WriteByte(')')
			q := b.String()
			_, err := e.plain.ExecContext(e.ctx, strings.Replace(q, "users", "superusers", 1), args...)
			require.NoError(t, err, "plain pgx accepts %d parameters", n)

			res, err := e.db.ExecContext(e.ctx, q, args...)
			require.NoError(t, err, "auditpgx with %d parameters", n)
			affected, _ := res.RowsAffected()
			require.EqualValues(t, 1, affected)
			var name string
			require.NoError(t, e.plain.QueryRow(`SELECT name FROM users WHERE id = 1`).Scan(&name))
			require.Equal(t, args[0], name)
		})
	}
}

// hostileDeepCases are inputs aimed at the C parser's recursion. The
// parenthesis guard (parse.MaxNesting) covers the first ones; the rest
// nest as deeply without any parenthesis or bracket: left-recursive
// operator chains build one tree level per operator.
var hostileDeepCases = []struct {
	name string
	sql  func() string
}{
	{"parens at MaxNesting", func() string { return nest("(", ")", parse.MaxNesting) }},
	{"parens just over MaxNesting", func() string { return nest("(", ")", parse.MaxNesting+1) }},
	{"parens far over MaxNesting", func() string { return nest("(", ")", 1_000_000) }},
	{"unbalanced open parens", func() string { return `UPDATE users SET name = ` + strings.Repeat("(", 100_000) }},
	{"unbalanced open brackets", func() string { return `UPDATE users SET name = x` + strings.Repeat("[", 100_000) }},
	{"unbalanced close parens", func() string { return `UPDATE users SET name = 'x'` + strings.Repeat(")", 100_000) }},
	{"NOT chain", func() string { return `UPDATE users SET name = 'x' WHERE ` + strings.Repeat("NOT ", 100_000) + `true` }},
	{"unary minus chain", func() string { return `UPDATE users SET name = ` + strings.Repeat("- ", 100_000) + `1` }},
	{"dotted name", func() string { return `UPDATE users SET name = a` + strings.Repeat(".b", 10_000) }},
	{"subscripts", func() string { return `UPDATE users SET name = (ARRAY['x'])` + strings.Repeat("[1]", 10_000) }},
	{"nested CASE", func() string {
		return `UPDATE users SET name = ` + strings.Repeat("CASE WHEN true THEN ", 3000) + `'x'` + strings.Repeat(" END", 3000)
	}},
	{"AND chain", func() string { return `DELETE FROM users WHERE id = 0` + strings.Repeat(" AND true", 20_000) }},
	// Each of these nests one level per operator, with no bracket at all.
	{"plus chain 10k", func() string { return `UPDATE users SET name = 1` + strings.Repeat("+1", 10_000) }},
	{"plus chain 40k", func() string { return `UPDATE users SET name = 1` + strings.Repeat("+1", 40_000) }},
	{"plus chain 100k", func() string { return `UPDATE users SET name = 1` + strings.Repeat("+1", 100_000) }},
	{"concatenation chain", func() string { return `UPDATE users SET name = 'a'` + strings.Repeat("||'a'", 100_000) }},
	{"cast chain", func() string { return `UPDATE users SET name = 'a'` + strings.Repeat("::text", 100_000) }},
	{"COLLATE chain", func() string { return `UPDATE users SET name = 'a'` + strings.Repeat(` COLLATE "C"`, 100_000) }},
	{"IS NULL chain", func() string { return `DELETE FROM users WHERE id` + strings.Repeat(" IS NULL", 100_000) }},
	{"json arrow chain", func() string { return `UPDATE users SET name = '{}'::jsonb` + strings.Repeat("->'a'", 100_000) }},
	{"UNION ALL chain", func() string {
		return `INSERT INTO users (name) SELECT 'a'` + strings.Repeat(" UNION ALL SELECT 'a'", 50_000)
	}},
	// Chains that hide their operators from a token-counting guard: commas
	// inside calls, dollar quotes holding commas, an E'' string's escaped
	// quote that makes the rest of the chain look quoted, commas after the
	// first */ of a nested comment.
	{"plus chain of calls with commas", func() string {
		return `UPDATE users SET name = 1` + strings.Repeat("+coalesce(1,1)", 100_000)
	}},
	{"concatenation chain of dollar-quoted commas", func() string {
		return `UPDATE users SET name = 'a'` + strings.Repeat("||$$,$$", 100_000)
	}},
	{"plus chain after an escaped quote", func() string {
		return `UPDATE users SET name = E'\'' || ` + strings.Repeat("1+", 100_000) + `1 || ''`
	}},
	{"plus chain with commas in nested comments", func() string {
		return `UPDATE users SET name = 1` + strings.Repeat(" + /* /* */ , */ 1", 100_000)
	}},
	{"unregistered SELECT plus chain", func() string { return `SELECT 1` + strings.Repeat("+1", 100_000) }},
}

func nest(open, closing string, n int) string {
	return `UPDATE users SET name = ` + strings.Repeat(open, n) + `'deep'` + strings.Repeat(closing, n)
}

const hostileChildEnv = "AUDITPGX_HOSTILE_CHILD"

// TestHostileDeepInputs runs each deep input in a child process (this test
// binary, re-executed), because a C stack overflow kills the process
// rather than failing a test. The child must exit normally, whatever the
// statement's outcome.
func TestHostileDeepInputs(t *testing.T) {
	t.Parallel()
	for _, c := range hostileDeepCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// The schema is the parent's, so that it is dropped even when the
			// child dies.
			dsn, schema := pgtestSchema(t)
			cmd := exec.Command(os.Args[0], "-test.run=^TestHostileChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), hostileChildEnv+"="+c.name, hostileChildEnv+"_DSN="+dsn, hostileChildEnv+"_SCHEMA="+schema)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("the child crashed or failed (%v) on %s; its output begins:\n%s", err, c.name, head(string(out), 12))
			}
			require.Contains(t, string(out), "hostile-child "+c.name+": ", "child output:\n%s", head(string(out), 12))
			t.Logf("%s", grepLine(string(out), "hostile-child "))
		})
	}
}

func head(s string, lines int) string {
	parts := strings.SplitN(s, "\n", lines+1)
	if len(parts) > lines {
		parts = parts[:lines]
	}
	return strings.Join(parts, "\n")
}

func grepLine(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if i := strings.Index(l, prefix); i >= 0 {
			return l[i:]
		}
	}
	return ""
}

// TestHostileChild is TestHostileDeepInputs's child: it runs one deep input
// through auditpgx and prints the outcome.
func TestHostileChild(t *testing.T) {
	name := os.Getenv(hostileChildEnv)
	if name == "" {
		t.Skip("runs only as the child process of TestHostileDeepInputs")
	}
	var q string
	for _, c := range hostileDeepCases {
		if c.name == name {
			q = c.sql()
		}
	}
	require.NotEmpty(t, q, "unknown case %q", name)
	e := newEnvDSN(t, os.Getenv(hostileChildEnv+"_DSN"), os.Getenv(hostileChildEnv+"_SCHEMA"), hostileDDL, registerUsers)
	ctx, cancel := context.WithTimeout(e.ctx, time.Minute)
	defer cancel()
	_, err := e.db.ExecContext(ctx, q)
	var pgErr *pgconn.PgError
	outcome := "ok"
	switch {
	case err == nil:
	case errors.Is(err, auditpgx.ErrUnaudited):
		outcome = "refused: " + err.Error()
	case errors.As(err, &pgErr):
		outcome = "server error " + pgErr.Code + ": " + pgErr.Message
	default:
		outcome = fmt.Sprintf("error %T: %v", err, err)
	}
	if err != nil {
		var n int
		require.NoError(t, e.plain.QueryRow(`SELECT count(*) FROM users WHERE name <> 'keep'`).Scan(&n))
		require.Zero(t, n, "a failed statement changed users")
		require.Zero(t, e.countEntries(), "a failed statement wrote entries")
	}
	fmt.Printf("hostile-child %s: %.200s\n", name, outcome)
}

// hostileActors are actor strings that try to break out of their quoting.
var hostileActors = []string{
	`x'; DROP TABLE users; --`,
	`\'; DELETE FROM users; --`,
	`E'\\'`,
	`$$; DROP TABLE users; $$`,
	`$1`,
	`"quoted" and 'single'`,
	`back\slash\`,
	`\\\\`,
	`''`,
	`;`,
	"tab\tnew\nline\r",
	`ünïcødé ☃ 🎉 עברית`,
	"\u202eright-to-left override",
	strings.Repeat(`'\`, auditpgx.MaxActorBytes/2), // the longest allowed
}

// TestHostileActors: every actor string is stored verbatim, through each
// way a statement reaches the server (a parameter for single statements,
// a quoted literal inside multi-statement strings), and changes nothing
// else.
func TestHostileActors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hostileDDL, registerUsers)
	for _, a := range hostileActors {
		ctx := auditpgx.WithActor(e.ctx, a)
		label := fmt.Sprintf("%.40q", a)
		_, err := e.db.ExecContext(ctx, `UPDATE users SET name = name || '1'`)
		require.NoError(t, err, label)
		rows, err := e.db.QueryContext(ctx, `UPDATE users SET name = name || '2' RETURNING id`)
		require.NoError(t, err, label)
		for rows.Next() {
		}
		require.NoError(t, rows.Err(), label)
		st, err := e.db.PrepareContext(ctx, `UPDATE users SET name = name || $1`)
		require.NoError(t, err, label)
		_, err = st.ExecContext(ctx, "3")
		require.NoError(t, err, label)
		require.NoError(t, st.Close())
		_, err = e.db.ExecContext(ctx, `UPDATE users SET name = name || '4'; UPDATE users SET name = name || '5'`)
		require.NoError(t, err, label)

		var got []string
		rs, err := e.plain.Query(`SELECT created_by FROM auditpgx_entry ORDER BY id`)
		require.NoError(t, err)
		for rs.Next() {
			var s sql.NullString
			require.NoError(t, rs.Scan(&s))
			require.True(t, s.Valid, label)
			got = append(got, s.String)
		}
		require.NoError(t, rs.Err())
		require.Equal(t, []string{a, a, a, a, a}, got, label)
		var names string
		require.NoError(t, e.plain.QueryRow(`SELECT string_agg(name, ',') FROM users`).Scan(&names))
		require.Equal(t, "keep12345", names, label)
		_, err = e.plain.ExecContext(e.ctx, `UPDATE users SET name = 'keep'; TRUNCATE auditpgx_entry`)
		require.NoError(t, err)
	}
}

// hostileNames are a schema, table, columns and an M2M field whose names
// hold quotes, semicolons, backslashes, spaces and non-ASCII letters.
const hostileNamesDDL = `
CREATE SCHEMA "sch""ema ☃";
CREATE TABLE "sch""ema ☃"."we""ird; DROP TABLE users; --" (
	"i""d" int PRIMARY KEY,
	"na'me; --" text,
	"sé cret\" text,
	"Ünï ☃" text
);
CREATE TABLE "jo'in; --" ("own""er" int, "rel'ated" int, PRIMARY KEY ("own""er", "rel'ated"));`

const hostileTable = `"sch""ema ☃"."we""ird; DROP TABLE users; --"`

// TestHostileRegisteredNames: registered names are identifiers: they are
// quoted whenever they reach SQL, stored verbatim in entries, and cannot
// change the statement.
func TestHostileRegisteredNames(t *testing.T) {
	t.Parallel()
	dsn, schema := pgtestSchema(t)
	e := newEnvDSN(t, dsn, schema, hostileDDL+hostileNamesDDL, func(r *auditpgx.Registry) error {
		if err := r.RegisterTable(hostileTable, auditpgx.Redact(`sé cret\`), auditpgx.Exclude(`Ünï ☃`)); err != nil {
			return err
		}
		if err := r.RegisterM2M(`"jo'in; --"`, auditpgx.M2M{
			Field:   `fi"eld'; --\`,
			Owner:   auditpgx.Ref{Table: hostileTable, Column: `own"er`},
			Related: auditpgx.Ref{Table: `re'l; --`, Column: `rel'ated`},
		}); err != nil {
			return err
		}
		return registerUsers(r)
	})
	t.Cleanup(func() { _, _ = e.plain.Exec(`DROP SCHEMA "sch""ema ☃" CASCADE`) })
	require.NoError(t, auditpgx.Check(e.ctx, e.db, auditpgx.WithRegistry(e.reg)))
	for _, q := range []string{
		`INSERT INTO ` + hostileTable + ` VALUES (1, 'a', 's1', 'u1')`,
		`UPDATE ` + hostileTable + ` SET "na'me; --" = 'b', "sé cret\" = 's2', "Ünï ☃" = 'u2'`,
		`INSERT INTO "jo'in; --" VALUES (1, 2)`,
		`DELETE FROM "jo'in; --"`,
		`DELETE FROM ` + hostileTable,
	} {
		_, err := e.db.ExecContext(e.ctx, q)
		require.NoError(t, err, q)
	}
	rows, err := e.plain.Query(`SELECT operation, table_name, object_id, coalesce(changes::text, ''),
		coalesce(related_table_name, ''), coalesce(related_field_name, '') FROM auditpgx_entry ORDER BY id`)
	require.NoError(t, err)
	var got [][6]string
	for rows.Next() {
		var r [6]string
		require.NoError(t, rows.Scan(&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]))
		got = append(got, r)
	}
	require.NoError(t, rows.Err())
	require.Len(t, got, 5)
	for i, op := range []string{"create", "update", "associate", "disassociate", "delete"} {
		require.Equal(t, op, got[i][0])
		require.Equal(t, hostileTable, got[i][1], "table_name is the name as registered")
		require.Equal(t, "1", got[i][2])
	}
	require.JSONEq(t, `{"added_fields":{"i\"d":1,"na'me; --":"a","sé cret\\":"$encrypted$"},"removed_fields":{},"changed_fields":{}}`, got[0][3])
	require.JSONEq(t, `{"added_fields":{},"removed_fields":{},"changed_fields":{"na'me; --":["a","b"],"sé cret\\":["$encrypted$","$encrypted$"]}}`, got[1][3])
	require.Equal(t, `re'l; --`, got[2][4])
	require.Equal(t, `fi"eld'; --\`, got[2][5])
	var n int
	require.NoError(t, e.plain.QueryRow(`SELECT count(*) FROM users`).Scan(&n), "users still exists")
	require.Equal(t, 1, n)
}

// TestHostileRegistrationErrors: registrations that cannot work say why,
// naming the table or column as registered, at registration or at the
// first check, and a name is never run as SQL.
func TestHostileRegistrationErrors(t *testing.T) {
	t.Parallel()
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{})
	require.NoError(t, err)
	for _, name := range []string{``, `"unterminated`, `two words`, `a.b.c`, `x'y`, `"a"b`, `users;drop`} {
		err := reg.RegisterTable(name)
		require.ErrorIs(t, err, auditpgx.ErrInvalidRegistration, "%q", name)
	}
	require.NoError(t, reg.RegisterTable(`"Users"`))
	require.NoError(t, reg.RegisterTable(`users`), `"Users" and users are different tables`)
	require.ErrorContains(t, reg.RegisterTable(`"users"`), "already registered")
	require.NoError(t, reg.RegisterTable(`public."Users"`), "a qualified name is another registration")
	require.NoError(t, reg.RegisterTable(hostileTable))
	require.ErrorContains(t, reg.RegisterTable(hostileTable), "already registered")

	for _, tc := range []struct {
		name, ddl string
		register  func(*auditpgx.Registry) error
		message   string
	}{
		{"unknown quoted table", ``, func(r *auditpgx.Registry) error { return r.RegisterTable(`"gh""ost; DROP TABLE users; --"`) },
			`does not exist`},
		{"unknown Only column", `CREATE TABLE ghosts (a int PRIMARY KEY);`,
			func(r *auditpgx.Registry) error { return r.RegisterTable("ghosts", auditpgx.Only(`b"; --`)) }, `has no column "b\"; --"`},
		{"unknown Exclude column", `CREATE TABLE ghosts (a int PRIMARY KEY, b int);`,
			func(r *auditpgx.Registry) error { return r.RegisterTable("ghosts", auditpgx.Exclude("B")) }, `has no column "B"`},
		{"no primary key, unique index only", `CREATE TABLE ghosts (a int NOT NULL UNIQUE);`,
			func(r *auditpgx.Registry) error { return r.RegisterTable("ghosts") }, `has no primary key`},
		{"a view", `CREATE TABLE base (a int PRIMARY KEY); CREATE VIEW ghosts AS SELECT * FROM base;`,
			func(r *auditpgx.Registry) error { return r.RegisterTable("ghosts") }, `ghosts`},
		{"M2M unknown join table", ``, func(r *auditpgx.Registry) error {
			return r.RegisterM2M("ghosts", auditpgx.M2M{Field: "f", Owner: auditpgx.Ref{Table: "a", Column: "a_id"}, Related: auditpgx.Ref{Table: "b", Column: "b_id"}})
		}, `does not exist`},
		{"M2M unknown owner column", `CREATE TABLE ghosts (a_id int, b_id int, PRIMARY KEY (a_id, b_id));`, func(r *auditpgx.Registry) error {
			return r.RegisterM2M("ghosts", auditpgx.M2M{Field: "f", Owner: auditpgx.Ref{Table: "a", Column: "nope"}, Related: auditpgx.Ref{Table: "b", Column: "b_id"}})
		}, `has no column "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, usersDDL+tc.ddl, tc.register)
			err := auditpgx.Check(e.ctx, e.db, auditpgx.WithRegistry(e.reg))
			require.ErrorIs(t, err, auditpgx.ErrInvalidRegistration)
			require.ErrorContains(t, err, tc.message)
			var n int
			require.NoError(t, e.plain.QueryRow(`SELECT count(*) FROM users`).Scan(&n), "users still exists")
		})
	}
}

// TestHostileErrorPosition: a server error in an audited statement points
// into the text the caller sent, as with plain pgx, or carries no position;
// never a position in the rewrite, which the caller has not seen.
func TestHostileErrorPosition(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hostileDDL, registerUsers)
	for _, q := range []string{
		`UPDATE users SET id = 'x' WHERE id = 1`,
		`UPDATE users SET name = nosuch WHERE id = 1`,
		`INSERT INTO users (name) VALUES (1/0)`,
	} {
		_, plainErr := e.plain.ExecContext(e.ctx, q) // fails, so it may run on the audited table
		_, auditErr := e.db.ExecContext(e.ctx, q)
		var want, got *pgconn.PgError
		require.ErrorAs(t, plainErr, &want, q)
		require.ErrorAs(t, auditErr, &got, q)
		require.Equal(t, want.Code, got.Code, q)
		if got.Position != 0 {
			require.Equal(t, want.Position, got.Position, "%s: position %d of %d characters", q, got.Position, len(q))
		}
	}
}

// TestHostileWithQueryShadowedByTable: a writing WITH query without
// RETURNING whose name is also written where it does not mean the WITH
// query (in an earlier sibling, in its own body, as an INSERT target) means
// a real table of that name. PostgreSQL then runs the statement; the
// write to the registered table must be audited or refused, never run
// without entries.
func TestHostileWithQueryShadowedByTable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersDDL+`CREATE TABLE w (id bigint); INSERT INTO users (name) VALUES ('a'), ('b'), ('c');`, registerUsers)
	for _, q := range []string{
		`WITH a AS (SELECT * FROM w), w AS (DELETE FROM users WHERE name = 'a') SELECT 1`,
		`WITH w AS (DELETE FROM users WHERE name = 'b' AND id NOT IN (SELECT id FROM w)) SELECT 1`,
		`WITH w AS (DELETE FROM users WHERE name = 'c') INSERT INTO w VALUES (1)`,
	} {
		before := e.countEntries()
		var rowsBefore, rowsAfter int
		require.NoError(t, e.plain.QueryRow(`SELECT count(*) FROM users`).Scan(&rowsBefore))
		_, err := e.db.ExecContext(e.ctx, q)
		require.NoError(t, e.plain.QueryRow(`SELECT count(*) FROM users`).Scan(&rowsAfter))
		if err != nil {
			require.ErrorIs(t, err, auditpgx.ErrUnaudited, q)
			require.Equal(t, rowsBefore, rowsAfter, "%s: refused, yet rows changed", q)
			continue
		}
		require.Equal(t, rowsBefore-rowsAfter, e.countEntries()-before, "%s: rows deleted vs entries written", q)
	}
}

// TestHostileUnparseableButAccepted: pg_query (PostgreSQL 17's grammar)
// rejects some text that an older server accepts: SYSTEM_USER is reserved
// since PostgreSQL 16, so "SET system_user = ..." is a syntax error to
// pg_query and a plain column assignment to a 15 server. Such text is
// refused when it names a registered table; a quote inside an E” or a
// dollar-quoted string must not hide that name. Whatever the server's
// version, a write to the registered table is refused, fails, or is
// audited; it never runs without its entries.
func TestHostileUnparseableButAccepted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `CREATE TABLE accounts (id int PRIMARY KEY, "system_user" text); INSERT INTO accounts VALUES (1, 'a');`,
		func(r *auditpgx.Registry) error { return r.RegisterTable("accounts") })
	for _, q := range []string{
		`UPDATE accounts SET system_user = 'v0'`,
		`WITH x AS (SELECT E'\'' AS a) UPDATE accounts SET system_user = 'v1'`,
		`WITH x AS (SELECT $$'$$ AS a) UPDATE accounts SET system_user = 'v2'`,
		`WITH x AS (SELECT $q$'$q$ AS a) UPDATE accounts SET system_user = 'v3'`,
	} {
		t.Run(q, func(t *testing.T) {
			var before, after string
			require.NoError(t, e.plain.QueryRow(`SELECT "system_user" FROM accounts`).Scan(&before))
			entries := e.countEntries()
			_, err := e.db.ExecContext(e.ctx, q)
			require.NoError(t, e.plain.QueryRow(`SELECT "system_user" FROM accounts`).Scan(&after))
			if before == after {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, entries+1, e.countEntries(), "the update ran without its entry")
		})
	}
}
