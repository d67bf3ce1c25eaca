package rewrite

import (
	"strings"
	"testing"

	"github.com/auditpgx/auditpgx/internal/parse"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// A write that its WHERE pins to one primary key value ends its exec form
// in a zero-column SELECT of its rows, whose tag counts them; any other
// write that needs a count reads count(*). Which it is changes no entry,
// only what the client reads (the corpus runs both kinds).
func TestExecFormOfPinnedWrites(t *testing.T) {
	for _, tc := range []struct {
		sql    string
		pinned bool
	}{
		{`UPDATE users SET name = $1 WHERE id = $2`, true},
		{`UPDATE users SET name = $1 WHERE $2 = users.id`, true},
		{`UPDATE users AS u SET name = $1 WHERE u.id = 7::bigint AND name <> $1`, true},
		{`UPDATE users SET name = 'x' WHERE (id = $1 AND email IS NOT NULL) AND name IS NULL`, true},
		{`UPDATE users u SET name = o.name FROM users o WHERE u.id = $1 AND o.id = $2`, true},
		// (A DELETE of an audited table without cascades ends in its
		// entries' INSERT; a join table's DELETE counts.)
		{`DELETE FROM team_members WHERE team_id = $1 AND user_id = $2`, true},
		{`UPDATE app.items SET qty = 0 WHERE sku = $1 AND org = 3 AND qty > 0`, true},
		{`INSERT INTO users (id, name) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET name = excluded.name`, true},

		{`UPDATE users SET name = $1 WHERE id = $2 OR id = $3`, false},
		{`UPDATE users SET name = $1 WHERE id IN ($2, $3)`, false},
		{`UPDATE users SET name = $1 WHERE id = id`, false},
		{`UPDATE users SET name = $1 WHERE id > $2`, false},
		{`UPDATE users SET name = $1 WHERE id = NULL`, false},
		{`UPDATE users SET name = $1 WHERE NOT (id = $2)`, false},
		{`UPDATE users u SET name = o.name FROM users o WHERE o.id = $1`, false},
		{`UPDATE users SET name = $1`, false},
		{`DELETE FROM team_members WHERE team_id = $1`, false},
		{`UPDATE users SET name = $1 WHERE email = $2`, false}, // unique, but not the key
		{`INSERT INTO users (id, name) VALUES ($1, $2), ($3, $4) ON CONFLICT (id) DO UPDATE SET name = excluded.name`, false},
		{`INSERT INTO users (id, name) SELECT id + 1, name FROM users ON CONFLICT (id) DO UPDATE SET name = excluded.name`, false},
		{`WITH a AS (UPDATE users SET name = $1 WHERE id = $2 RETURNING id) UPDATE app.items SET qty = 1 WHERE org = $3 AND sku = $4`, false},
	} {
		for _, version := range []int{150000, 180000} {
			st, err := parse.Parse(tc.sql) // Build edits the tree
			if err != nil {
				t.Fatalf("%s: %v", tc.sql, err)
			}
			rw, err := Build(st, fuzzCatalog{}, Options{Entries: sqlq.Name{Rel: "auditpgx_entry"}, Fingerprint: "fp", Actor: "NULL", ServerVersion: version})
			if err != nil {
				t.Fatalf("%s: %v", tc.sql, err)
			}
			zeroColumns := strings.HasSuffix(rw.ExecSQL, " SELECT FROM "+cteWrite+"0")
			if zeroColumns != tc.pinned || rw.ExecCounts == tc.pinned {
				t.Errorf("on %d, %s\nexec form ends %q, ExecCounts %v; want pinned %v", version, tc.sql,
					rw.ExecSQL[max(0, len(rw.ExecSQL)-40):], rw.ExecCounts, tc.pinned)
			}
		}
	}
}

// InShapeCheck tells the guard's column check failing apart from the
// same error of the statement's own UNION.
func TestInShapeCheck(t *testing.T) {
	own := `SELECT 1 UNION ALL SELECT 1, 2`
	sent := `WITH w AS (UPDATE "tä" SET v = 1 RETURNING (` + own + `), ` + shapeStart + `"tä".* UNION ALL SELECT "tä"."id", "tä"."v"))` + shapeEnd + `, 2 AS z) SELECT FROM w`
	pos := func(s string) int { return len([]rune(sent[:strings.Index(sent, s)])) + 1 }
	for _, tc := range []struct {
		at   int
		want bool
	}{
		{pos(`"tä".* UNION`), true},
		{pos(`"tä"."id", "tä"."v"))`), true},
		{pos(`SELECT 1, 2`), false},
		{pos(`2 AS z`), false},
		{pos(`WITH`), false},
		{0, false},
		{len([]rune(sent)) + 5, false},
	} {
		if got := InShapeCheck(sent, tc.at); got != tc.want {
			t.Errorf("InShapeCheck at %d (%q...) = %v, want %v", tc.at, string([]rune(sent)[max(0, min(tc.at-1, len([]rune(sent))-1)):][:1]), got, tc.want)
		}
	}
}
