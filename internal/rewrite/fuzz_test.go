package rewrite

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/catalog"
	"github.com/auditpgx/auditpgx/internal/parse"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// fuzzCatalog is a fixed catalog: a few audited tables, a join table, and
// columns for any other table a RETURNING * may expand.
type fuzzCatalog struct{}

var fuzzTargets = map[parse.TableName]*Target{
	{Name: "users"}: {
		Registered: "users",
		Table: catalog.Table{
			Columns:    []string{"id", "name", "email", "pw"},
			Types:      []string{"bigint", "text", "text", "text"},
			PrimaryKey: []string{"id"},
			Unique:     map[string][]string{"users_pkey": {"id"}, "users_email_key": {"email"}},
		},
		Audited: true,
		Audit:   diff.Columns{Names: []string{"id", "name", "email", "pw"}, Redacted: map[string]bool{"pw": true}},
	},
	{Schema: "app", Name: "items"}: {
		Registered: "app.items",
		Table: catalog.Table{
			Columns:    []string{"org", "sku", "qty"},
			Types:      []string{"integer", "character varying(20)", "numeric(10,2)"},
			PrimaryKey: []string{"org", "sku"},
			Unique:     map[string][]string{"items_pkey": {"org", "sku"}},
		},
		Audited: true,
		Audit:   diff.Columns{Names: []string{"org", "sku", "qty"}},
	},
	{Name: "Odd"}: {
		Registered: `"Odd"`,
		Table: catalog.Table{
			Columns:    []string{"Key", "select", `a"b`},
			Types:      []string{"uuid", "text", "text"},
			PrimaryKey: []string{"Key"},
			Unique:     map[string][]string{"Odd_pkey": {"Key"}},
		},
		Audited: true,
		Audit:   diff.Columns{Names: []string{"Key", "select", `a"b`}},
	},
	{Name: "team_members"}: {
		Registered: "team_members",
		Table: catalog.Table{
			Columns:    []string{"team_id", "user_id", "role"},
			Types:      []string{"integer", "integer", "text"},
			PrimaryKey: []string{"team_id", "user_id"},
			Unique:     map[string][]string{"team_members_pkey": {"team_id", "user_id"}},
		},
		Link: &Link{Field: "members", OwnerTable: "teams", OwnerColumn: "team_id", RelatedTable: "users", RelatedColumn: "user_id"},
	},
}

func (fuzzCatalog) Target(n parse.TableName) (*Target, error) {
	if t, ok := fuzzTargets[n]; ok {
		return t, nil
	}
	if n.Schema == "public" {
		return fuzzTargets[parse.TableName{Name: n.Name}], nil
	}
	return nil, nil
}

func (fuzzCatalog) Columns(n parse.TableName) ([]string, error) {
	if t, _ := (fuzzCatalog{}).Target(n); t != nil {
		return t.Columns, nil
	}
	if n.Name == "nope" {
		return nil, &UnsupportedError{Reason: "not a table"}
	}
	return []string{"id", "v"}, nil
}

// fuzzSeeds are tricky texts beside the golden corpus's inputs.
var fuzzSeeds = []string{
	`INSERT INTO users (name) VALUES ($1)`,
	`UPDATE users SET name = 'x' WHERE id = 1 RETURNING *`,
	`DELETE FROM users u USING other o WHERE u.id = o.id RETURNING *`,
	`INSERT INTO users (id, email) VALUES (1, 'a') ON CONFLICT (email) DO UPDATE SET name = excluded.name WHERE users.id > 0 RETURNING id`,
	`INSERT INTO users AS u (id) VALUES (DEFAULT) ON CONFLICT ON CONSTRAINT users_pkey DO UPDATE SET pw = u.pw`,
	`INSERT INTO users (email) SELECT email FROM users ON CONFLICT (email) DO UPDATE SET name = 'n'`,
	`INSERT INTO users DEFAULT VALUES ON CONFLICT (id) DO UPDATE SET name = 'n'`,
	`INSERT INTO app.items VALUES (1, 'a', 2.5) ON CONFLICT (org, sku) DO UPDATE SET qty = excluded.qty`,
	`UPDATE app.items i SET (qty, sku) = (SELECT 1, 'b') WHERE i.org = $1`,
	`WITH d AS (DELETE FROM users RETURNING *) INSERT INTO users SELECT * FROM d`,
	`WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3), u AS (UPDATE users SET name = 'r' FROM r WHERE id = r.n RETURNING users.*, r.*) SELECT * FROM u`,
	`WITH "_data" ("id", "name") AS (VALUES (1::BIGINT, 'a'::VARCHAR)) UPDATE "users" AS "u" SET "name" = _data."name" FROM _data WHERE ("u"."id" = _data."id")`,
	`UPDATE users SET name = 'x'; DELETE FROM users; INSERT INTO team_members VALUES (1, 2)`,
	`UPDATE team_members SET user_id = 3 WHERE team_id = 1 RETURNING *`,
	`INSERT INTO team_members (team_id, user_id) VALUES (1, 2) ON CONFLICT (team_id, user_id) DO UPDATE SET role = 'r'`,
	`UPDATE "Odd" SET "select" = U&"d\0061t\+000061" WHERE "Key" = U&'\0041'`,
	`INSERT INTO "Odd" VALUES ($$a'b$$, $tag$x$y$tag$, E'\x41\'') RETURNING "a""b", "Odd".*`,
	"DELETE FROM users /* c /* nested */ */ WHERE id = 1 -- trailing\n",
	"UPDATE users SET name = 'a\x00b'",
	"DELETE FROM users WHERE id = 1\x00",
	`UPDATE users SET name = 'x' WHERE CURRENT OF c`,
	`SELECT (WITH d AS (DELETE FROM users RETURNING *) SELECT count(*) FROM d)`,
	`MERGE INTO users u USING other o ON u.id = o.id WHEN MATCHED THEN UPDATE SET name = o.v`,
	`TRUNCATE users`,
	`COPY users FROM STDIN`,
	`EXPLAIN ANALYZE DELETE FROM users`,
	`PREPARE p AS DELETE FROM users`,
	`CREATE RULE r AS ON INSERT TO users DO INSTEAD DELETE FROM users`,
	`INSERT INTO users SELECT * FROM nope RETURNING nope.*`,
	`UPDATE users SET name = t.v FROM (VALUES (1, 'a')) t(id, v), LATERAL (SELECT 1) l WHERE users.id = t.id RETURNING t.*, l.*, *`,
	`DELETE FROM users WHERE id IN (SELECT id FROM users FOR UPDATE SKIP LOCKED) RETURNING public.users.*`,
	`INSERT INTO public.users (id) VALUES (1) RETURNING (SELECT 1), EXISTS (SELECT 1), ARRAY(SELECT 1), CASE WHEN true THEN 1 END`,
	`UPDATE users SET name = __auditpgx_x`,
	`UPDATE users SET name = $2 WHERE id = $1 RETURNING $3::int`,
	strings.Repeat("(", parse.MaxNesting-3) + "SELECT 1" + strings.Repeat(")", parse.MaxNesting-3),
	"UPDATE users SET id = " + strings.Repeat("(", parse.MaxNesting-10) + "1" + strings.Repeat(")", parse.MaxNesting-10),
	"INSERT INTO users (id) VALUES " + strings.Repeat("(", parse.MaxNesting-2) + "1" + strings.Repeat(")", parse.MaxNesting-2),
	"INSERT INTO users (id) VALUES " + strings.Repeat("(", parse.MaxNesting+1) + "1" + strings.Repeat(")", parse.MaxNesting+1),
	"UPDATE users SET name = ')' || '(((' WHERE id = ARRAY[[[1]]][1][1][1]",
	`UPDATE users SET name = "(" FROM "((" WHERE id = 1`,
	"DELETE FROM users WHERE id = 1 -- )))\n AND name = ')'",
	`INSERT INTO users (id) VALUES (1) ON CONFLICT DO NOTHING RETURNING *`,
	`INSERT INTO users (id) SELECT 1 UNION ALL SELECT 2 ON CONFLICT (id) DO UPDATE SET id = excluded.id + 100`,
	`INSERT INTO users (name, name) VALUES ('a', 'b')`,
	`INSERT INTO users (id) VALUES (1), (2, 3)`,
	`INSERT INTO users VALUES ((1), 'x', 'y', 'z', 'extra')`,
	`UPDATE users SET name[1] = 'x', email.f = 'y' WHERE id = 1`,
	`INSERT INTO users (name[1], email.f) VALUES ('a', 'b') ON CONFLICT (email) DO UPDATE SET name = 'c'`,
	`WITH a AS (UPDATE users SET name = 'a' RETURNING id), b AS (DELETE FROM team_members RETURNING *) UPDATE app.items SET qty = 1 RETURNING *`,
	`WITH w AS (WITH i AS (INSERT INTO users DEFAULT VALUES RETURNING id) SELECT * FROM i) SELECT * FROM w`,
	`DECLARE c CURSOR FOR SELECT 1; UPDATE users SET name = 'x' WHERE CURRENT OF c`,
}

// FuzzRewrite: whatever the text, Parse errors or returns a statement;
// Rewrite of one that writes a table of the fake catalog returns an error
// or a rewrite; nothing panics (and the C deparser does not crash). A
// rewrite parses again, takes the original's parameters plus the actor, and
// makes the original's writes plus the entry inserts.
func FuzzRewrite(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	inputs, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "rewrite", "*", "input.sql"))
	for _, p := range inputs {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
	f.Fuzz(func(t *testing.T, sql string) {
		checkRewrite(t, sql)
	})
}

func checkRewrite(t *testing.T, sql string) {
	st, err := parse.Parse(sql)
	if err != nil {
		var se *parse.SyntaxError
		if !errors.As(err, &se) && !errors.Is(err, parse.ErrTooComplex) {
			t.Fatalf("Parse: unexpected error type %T: %v", err, err)
		}
		return
	}
	subs := []*parse.Statement{st}
	if st.Count > 1 {
		subs = st.Split()
	}
	for _, sub := range subs {
		if !writesFuzzTarget(sub) {
			continue
		}
		// The rewrite differs by server version: a pre-image before 18,
		// RETURNING old.* from 18 on; MERGE from 17 on.
		for i, version := range []int{170000, 180000} {
			if i > 0 {
				// Rewrite consumes its statement: parse the text again.
				text := sub.SQL
				if sub, err = parse.Parse(text); err != nil {
					t.Fatalf("Parse(%q) again: %v", text, err)
				}
			}
			opt := Options{
				Entries:       sqlq.Name{Rel: "auditpgx_entry"},
				Fingerprint:   "0123456789abcdef",
				Actor:         "$" + strconv.Itoa(sub.NumParams+1) + "::text",
				RowsForExec:   st.Count > 1,
				ServerVersion: version,
			}
			rw, err := Build(sub, fuzzCatalog{}, opt)
			if err != nil {
				if strings.Contains(err.Error(), "internal error") {
					t.Fatalf("Rewrite(%q) for server %d: %v", sub.SQL, version, err)
				}
				continue
			}
			for _, text := range []string{rw.ExecSQL, rw.QuerySQL} {
				checkReparse(t, sub, text)
			}
		}
	}
}

func writesFuzzTarget(st *parse.Statement) bool {
	for _, w := range st.Writes {
		if t, _ := (fuzzCatalog{}).Target(w.Table); t != nil {
			return true
		}
	}
	return false
}

func checkReparse(t *testing.T, orig *parse.Statement, text string) {
	again, err := parse.Parse(text)
	if errors.Is(err, parse.ErrTooComplex) {
		// The rewrite nests the user's text a few levels deeper; the
		// guard is for untrusted text, which the rewrite is not.
		if _, err := pg_query.Parse(text); err != nil {
			t.Fatalf("rewrite of %q does not parse: %v\n%s", orig.SQL, err, text)
		}
		return
	}
	if err != nil {
		if !roundTrips(orig.SQL) {
			// pg_query's deparser cannot reprint this input itself (for
			// example ('').a prints as ''.a); the rewrite inherits that,
			// and PostgreSQL rejects it with a syntax error: no write runs.
			return
		}
		t.Fatalf("rewrite of %q does not parse: %v\n%s", orig.SQL, err, text)
	}
	if again.Count != 1 {
		t.Fatalf("rewrite of %q is %d statements:\n%s", orig.SQL, again.Count, text)
	}
	if again.NumParams != orig.NumParams+1 {
		t.Fatalf("rewrite of %q takes %d parameters, want %d (the original's and the actor):\n%s", orig.SQL, again.NumParams, orig.NumParams+1, text)
	}
	want, got := writeKinds(orig.Writes), writeKinds(again.Writes)
	got["INSERT auditpgx_entry"]--
	if got["INSERT auditpgx_entry"] == 0 {
		delete(got, "INSERT auditpgx_entry")
	}
	if len(want) != len(got) {
		t.Fatalf("rewrite of %q writes %v, want %v plus one entry insert:\n%s", orig.SQL, again.Writes, orig.Writes, text)
	}
	for k, n := range want {
		if got[k] != n {
			t.Fatalf("rewrite of %q writes %v, want %v plus one entry insert:\n%s", orig.SQL, again.Writes, orig.Writes, text)
		}
	}
}

func writeKinds(ws []parse.Write) map[string]int {
	m := map[string]int{}
	for _, w := range ws {
		m[w.Kind.String()+" "+w.Table.String()]++
	}
	return m
}

// roundTrips reports whether pg_query deparses sql into text it parses.
func roundTrips(sql string) bool {
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return false
	}
	text, err := pg_query.Deparse(tree)
	if err != nil {
		return false
	}
	_, err = pg_query.Parse(text)
	return err == nil
}
