package diff_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/record"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// agreement describes the tables of one Go/SQL agreement run: old_rows and
// new_rows, both (id integer PRIMARY KEY, columns...), holding row pairs
// under the same id.
type agreement struct {
	columns  []genColumn
	redacted map[string]bool
	excluded map[string]bool
	// secret returns text that must never appear in any output for a raw
	// value of a redacted or excluded column ("" for none).
	secret func(column, value string) string
}

// auditCols is what the driver would register: id and every column not
// excluded, in table order.
func (a agreement) auditCols() diff.Columns {
	cols := diff.Columns{Names: []string{"id"}, Redacted: a.redacted}
	for _, c := range a.columns {
		if !a.excluded[c.name] {
			cols.Names = append(cols.Names, c.name)
		}
	}
	return cols
}

func (a agreement) allCols() diff.Columns {
	cols := diff.Columns{Names: []string{"id"}}
	for _, c := range a.columns {
		cols.Names = append(cols.Names, c.name)
	}
	return cols
}

func (a agreement) createTables(t *testing.T, db *sql.DB) {
	defs := []string{"id integer PRIMARY KEY"}
	for _, c := range a.columns {
		defs = append(defs, sqlq.Ident(c.name)+" "+c.typ)
	}
	for _, table := range []string{"old_rows", "new_rows"} {
		mustExec(t, db, "CREATE TABLE "+table+" ("+strings.Join(defs, ", ")+")")
	}
}

// rowPair is one generated pair with the input text of each column.
type rowPair struct {
	id       int
	old, new []*string
}

// genPairs makes n pairs: identical rows, rows respelled in ways jsonb
// treats as equal, rows with a few columns changed or set to NULL, and rows
// changed throughout.
func (a agreement) genPairs(r *rand.Rand, n int) []rowPair {
	pairs := make([]rowPair, n)
	for i := range pairs {
		p := rowPair{id: i + 1, old: make([]*string, len(a.columns)), new: make([]*string, len(a.columns))}
		for j, c := range a.columns {
			p.old[j] = c.value(r)
		}
		copy(p.new, p.old)
		respell := func(j int) {
			if c := a.columns[j]; c.respell != nil && p.new[j] != nil {
				v := c.respell(r, *p.new[j])
				p.new[j] = &v
			}
		}
		switch mode := i % 6; mode {
		case 0: // identical
		case 1: // equal, spelled differently
			for j := range a.columns {
				respell(j)
			}
		case 2: // a few columns regenerated
			for range 1 + r.IntN(3) {
				j := r.IntN(len(a.columns))
				p.new[j] = a.columns[j].value(r)
			}
		case 3: // mixed
			for j, c := range a.columns {
				switch x := r.Float64(); {
				case x < 0.3:
					p.new[j] = c.value(r)
				case x < 0.6:
					respell(j)
				}
			}
		case 4: // NULLs on either side
			for j := range a.columns {
				if r.IntN(4) == 0 {
					if r.IntN(2) == 0 {
						p.old[j] = nil
					} else {
						p.new[j] = nil
					}
				}
			}
		case 5: // everything regenerated
			for j, c := range a.columns {
				p.new[j] = c.value(r)
			}
		}
		pairs[i] = p
	}
	return pairs
}

func (a agreement) insert(t *testing.T, db *sql.DB, pairs []rowPair) {
	names := []string{"id"}
	params := []string{"$1"}
	for j, c := range a.columns {
		names = append(names, sqlq.Ident(c.name))
		params = append(params, fmt.Sprintf("$%d::text::%s", j+2, c.typ))
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, table := range []string{"old_rows", "new_rows"} {
		query := "INSERT INTO " + table + " (" + strings.Join(names, ", ") + ") VALUES (" + strings.Join(params, ", ") + ")"
		for _, p := range pairs {
			vals := p.old
			if table == "new_rows" {
				vals = p.new
			}
			args := []any{p.id}
			for _, v := range vals {
				if v == nil {
					args = append(args, nil)
				} else {
					args = append(args, *v)
				}
			}
			if _, err := tx.Exec(query, args...); err != nil {
				t.Fatalf("inserting pair %d into %s: %v\nvalues: %q", p.id, table, err, args)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// sqlResult is what one query computes in PostgreSQL for a pair.
type sqlResult struct {
	id                     int
	oldImg, newImg         string // every column, excluded ones too
	auditImg               string // ImageSQL over the audited columns only
	likeToJSONB            bool   // ImageSQL over every column = to_jsonb(row)
	create, delete, update string
	// valuesUpdate and typedUpdate are the update's changes from
	// ChangedValuesSQL and ChangedTypedValuesSQL over the columns' values
	// (and types), as the rewrite builds an UPDATE's.
	valuesUpdate, typedUpdate string
}

// query computes, in one statement, the images of each pair and the changes
// of a create, a delete and an update from them.
func (a agreement) query(t *testing.T, db *sql.DB) []sqlResult {
	all, cols := a.allCols(), a.auditCols()
	oldAll, newAll := record.ImageSQL(`"o"`, all), record.ImageSQL(`"n"`, all)
	olds, news, types := make([]string, len(cols.Names)), make([]string, len(cols.Names)), make([]uint32, len(cols.Names))
	for i, name := range cols.Names {
		olds[i], news[i] = `"o".`+sqlq.Ident(name), `"n".`+sqlq.Ident(name)
		// The type as the catalog's description reads it.
		err := db.QueryRow(`SELECT atttypid FROM pg_catalog.pg_attribute
WHERE attrelid = 'old_rows'::regclass AND attname = $1`, name).Scan(&types[i])
		if err != nil {
			t.Fatal(err)
		}
	}
	q := `WITH s AS MATERIALIZED (
	SELECT "o".id,
	       ` + oldAll + ` AS oi,
	       ` + newAll + ` AS ni,
	       ` + record.ImageSQL(`"o"`, cols) + ` AS oa,
	       ` + oldAll + ` = to_jsonb("o") AND ` + newAll + ` = to_jsonb("n") AS like_to_jsonb,
	       (` + record.UpdateSQL(record.ChangedValuesSQL(olds, news, cols)) + `)::text AS by_values,
	       (` + record.UpdateSQL(record.ChangedTypedValuesSQL(olds, news, types, cols)) + `)::text AS typed
	FROM old_rows "o" JOIN new_rows "n" ON "n".id = "o".id
)
SELECT id, oi::text, ni::text, oa::text, like_to_jsonb,
       (` + record.CreateSQL(`"s"."ni"`, cols) + `)::text,
       (` + record.DeleteSQL(`"s"."oi"`, cols) + `)::text,
       (` + record.UpdateSQL(record.ChangedSQL(`"s"."oi"`, `"s"."ni"`, cols)) + `)::text, by_values, typed
FROM s "s" ORDER BY id`
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%v\nin: %.3000s", err, q)
	}
	defer rows.Close()
	var out []sqlResult
	for rows.Next() {
		var r sqlResult
		if err := rows.Scan(&r.id, &r.oldImg, &r.newImg, &r.auditImg, &r.likeToJSONB, &r.create, &r.delete, &r.update, &r.valuesUpdate, &r.typedUpdate); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// agreementStats counts what the generated pairs exercised, so a test can
// require that its interesting cases really occurred.
type agreementStats struct {
	emptyUpdates    int
	redactedChanges int
	equalRespelled  map[string]int // column -> pairs whose values rendered differently but were equal
	changedByColumn map[string]int
	nullOnOneSide   map[string]int
}

// check runs the pairs through PostgreSQL and Go and requires the same
// changes from both.
func (a agreement) check(t *testing.T, db *sql.DB, pairs []rowPair) agreementStats {
	t.Helper()
	cols := a.auditCols()
	results := a.query(t, db)
	if len(results) != len(pairs) {
		t.Fatalf("query returned %d rows, want %d", len(results), len(pairs))
	}
	stats := agreementStats{equalRespelled: map[string]int{}, changedByColumn: map[string]int{}, nullOnOneSide: map[string]int{}}
	var secrets []string
	for _, p := range pairs {
		for j, c := range a.columns {
			for _, v := range []*string{p.old[j], p.new[j]} {
				if v != nil && a.secret != nil {
					if s := a.secret(c.name, *v); s != "" {
						secrets = append(secrets, s)
					}
				}
			}
		}
	}
	var goAndSQL [][2]string // checked with jsonb equality at the end
	for _, res := range results {
		oldImg, newImg := decodeImage(t, res.oldImg), decodeImage(t, res.newImg)
		if !res.likeToJSONB {
			t.Errorf("pair %d: ImageSQL differs from to_jsonb(row)", res.id)
		}
		// Byte for byte: comparing a type's values as they are must give
		// the entries comparing their to_jsonb values gives.
		if res.typedUpdate != res.valuesUpdate {
			t.Errorf("pair %d: changes from the typed comparison\n%s\ndiffer from those of to_jsonb's\n%s", res.id, res.typedUpdate, res.valuesUpdate)
		}
		auditImg := decodeImage(t, res.auditImg)
		if len(auditImg) != len(cols.Names) {
			t.Errorf("pair %d: audited image has %d keys, want %d", res.id, len(auditImg), len(cols.Names))
		}
		for _, name := range cols.Names {
			if !bytes.Equal(auditImg[name], oldImg[name]) {
				t.Errorf("pair %d: audited image[%q] = %s, full image has %s", res.id, name, auditImg[name], oldImg[name])
			}
		}

		for _, op := range []struct {
			name   string
			sqlOut string
			goOut  diff.Changes
		}{
			{"create", res.create, diff.Create(newImg, cols)},
			{"delete", res.delete, diff.Delete(oldImg, cols)},
			{"update", res.update, diff.Update(oldImg, newImg, cols)},
		} {
			sqlChanges, err := diff.Decode([]byte(op.sqlOut))
			if err != nil {
				t.Fatalf("pair %d %s: decoding SQL output %s: %v", res.id, op.name, op.sqlOut, err)
			}
			if d := changesDiff(sqlChanges, op.goOut); d != nil {
				t.Errorf("pair %d %s: SQL and Go disagree:\n  %s\nold image: %s\nnew image: %s\nSQL: %s",
					res.id, op.name, strings.Join(d, "\n  "), res.oldImg, res.newImg, op.sqlOut)
			}
			goJSON, err := json.Marshal(op.goOut)
			if err != nil {
				t.Fatal(err)
			}
			goAndSQL = append(goAndSQL, [2]string{string(goJSON), op.sqlOut})
			for _, out := range []string{op.sqlOut, string(goJSON)} {
				for _, s := range secrets {
					if strings.Contains(out, s) {
						t.Errorf("pair %d %s: output contains the raw value %q of a redacted or excluded column: %s", res.id, op.name, s, out)
					}
				}
				for name := range a.excluded {
					if strings.Contains(out, jsonString(name)) {
						t.Errorf("pair %d %s: output names excluded column %q: %s", res.id, op.name, name, out)
					}
				}
			}
		}

		upd := diff.Update(oldImg, newImg, cols)
		if upd.Empty() {
			stats.emptyUpdates++
		}
		for name := range cols.Redacted {
			if _, ok := upd.ChangedFields[name]; ok {
				stats.redactedChanges++
			}
		}
		for _, name := range cols.Names {
			o, n := oldImg[name], newImg[name]
			if _, ok := upd.ChangedFields[name]; ok {
				stats.changedByColumn[name]++
			}
			if !bytes.Equal(o, n) && diff.Equal(o, n) {
				stats.equalRespelled[name]++
			}
			if (string(o) == "null") != (string(n) == "null") {
				stats.nullOnOneSide[name]++
			}
		}
	}
	checkJSONBEqual(t, db, goAndSQL)
	return stats
}

func decodeImage(t *testing.T, s string) diff.Image {
	t.Helper()
	var m diff.Image
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("decoding image %s: %v", s, err)
	}
	return m
}

// checkJSONBEqual asks PostgreSQL whether each [Go output, SQL output] pair
// is equal as jsonb, a second opinion that does not rely on diff.Equal.
func checkJSONBEqual(t *testing.T, db *sql.DB, pairs [][2]string) {
	t.Helper()
	arg, err := json.Marshal(pairs)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT p->>0, p->>1 FROM jsonb_array_elements($1::text::jsonb) p
		WHERE (p->>0)::jsonb IS DISTINCT FROM (p->>1)::jsonb`, string(arg))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var goOut, sqlOut string
		if err := rows.Scan(&goOut, &sqlOut); err != nil {
			t.Fatal(err)
		}
		t.Errorf("not equal as jsonb:\nGo:  %s\nSQL: %s", goOut, sqlOut)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

func respellJSON(r *rand.Rand, v string) string {
	dec := json.NewDecoder(strings.NewReader(v))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return v
	}
	var render func(any) string
	render = func(x any) string {
		switch x := x.(type) {
		case json.Number:
			return respellNumber(r, string(x))
		case []any:
			parts := make([]string, len(x))
			for i, e := range x {
				parts[i] = render(e)
			}
			return "[" + strings.Join(parts, ",") + "]"
		case map[string]any:
			var parts []string
			for k, e := range x { // map order is random, which is the point
				parts = append(parts, jsonString(k)+":"+render(e))
			}
			return "{" + strings.Join(parts, ",") + "}"
		}
		b, _ := json.Marshal(x)
		return string(b)
	}
	return render(x)
}

var apiKeyPattern = regexp.MustCompile(`ak-[0-9a-f]{16}`)

func TestSQLAgreesWithGo(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, `CREATE TYPE mood AS ENUM ('happy', 'sad', 'it''s complicated')`)
	r := rand.New(rand.NewPCG(1, 2))
	secretSeq := 0
	a := agreement{
		columns: []genColumn{
			{name: "c_int", typ: "integer", gen: genInt},
			{name: "c_bigint", typ: "bigint", gen: genBigint},
			{name: "c_numeric", typ: "numeric", gen: genNumeric, respell: respellNumber},
			{name: "c_text", typ: "text", gen: genText},
			{name: "c_bool", typ: "boolean", gen: genBool, respell: respellBool},
			{name: "c_ts", typ: "timestamptz", gen: genTimestamptz, respell: respellTimestamptz},
			{name: "c_date", typ: "date", gen: genDate},
			{name: "c_uuid", typ: "uuid", gen: genUUID, respell: respellUUID},
			{name: "c_jsonb", typ: "jsonb", gen: func(r *rand.Rand) string { return genJSONNode(r, 0).render(r, false) }, respell: respellJSON},
			{name: "c_bytea", typ: "bytea", gen: genBytea},
			{name: "c_tags", typ: "text[]", gen: genTextArray},
			{name: "c_mood", typ: "mood", gen: genEnum},
			{name: "c_float", typ: "double precision", gen: genFloat, respell: respellFloat},
			{name: "1", typ: "integer", gen: genInt},          // a key that could be taken for an array index
			{name: `we'ird "col\`, typ: "text", gen: genText}, // needs quoting as identifier, literal and JSON key
			{name: "password", typ: "text", gen: func(r *rand.Rand) string {
				secretSeq++
				return fmt.Sprintf("pw-%d-%016x", secretSeq, r.Uint64())
			}},
			{name: "pin", typ: "numeric", gen: func(r *rand.Rand) string {
				return fmt.Sprintf("97%011d.%03d", r.Int64N(1e11), r.IntN(1000))
			}, respell: respellNumber},
			{name: "api_key", typ: "jsonb", gen: func(r *rand.Rand) string {
				return fmt.Sprintf(`{"key": "ak-%016x", "n": 1.5}`, r.Uint64())
			}, respell: respellJSON},
			{name: "hidden", typ: "text", gen: func(r *rand.Rand) string { return fmt.Sprintf("hidden-%016x", r.Uint64()) }},
		},
		redacted: map[string]bool{"password": true, "pin": true, "api_key": true},
		excluded: map[string]bool{"hidden": true},
		secret: func(column, v string) string {
			switch column {
			case "password", "hidden":
				return v
			case "pin":
				return v[:13] // the integer digits, whatever the scale
			case "api_key":
				return apiKeyPattern.FindString(v)
			}
			return ""
		},
	}
	a.createTables(t, db)
	pairs := a.genPairs(r, 300)
	a.insert(t, db, pairs)
	stats := a.check(t, db, pairs)

	t.Logf("empty updates %d, redacted changes %d, equal but rendered differently %v, changed %v, NULL on one side %v",
		stats.emptyUpdates, stats.redactedChanges, stats.equalRespelled, stats.changedByColumn, stats.nullOnOneSide)
	if stats.emptyUpdates < 30 {
		t.Errorf("only %d pairs had no change; the test should exercise no-op updates", stats.emptyUpdates)
	}
	if stats.redactedChanges < 30 {
		t.Errorf("only %d redacted changes; the test should exercise them", stats.redactedChanges)
	}
	for _, name := range []string{"c_numeric", "c_jsonb", "pin", "api_key"} {
		if stats.equalRespelled[name] < 5 {
			t.Errorf("column %s: only %d pairs rendered equal values differently", name, stats.equalRespelled[name])
		}
	}
	for _, name := range a.auditCols().Names[1:] {
		if stats.changedByColumn[name] < 10 || stats.nullOnOneSide[name] < 5 {
			t.Errorf("column %q: only %d changes and %d NULL-vs-value pairs", name, stats.changedByColumn[name], stats.nullOnOneSide[name])
		}
	}
}

// TestTypedComparisonEdgeCases holds ChangedTypedValuesSQL to the entries
// of ChangedValuesSQL where a type's own equality could part from its
// to_jsonb values': text under a case-insensitive collation, numeric and
// timestamps spelled differently, and arrays with other lower bounds (which
// stay compared as to_jsonb values).
func TestTypedComparisonEdgeCases(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, `CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)`)
	mustExec(t, db, `CREATE TABLE edge (id integer PRIMARY KEY, v varchar(10) COLLATE ci, s text COLLATE ci,
		n numeric(12,2), ts timestamp(3) with time zone, tl timestamp without time zone, sm smallint, a integer[], f float8)`)
	pairs := [][2]string{
		{`(1, 'a', 'x', 1.5, '2024-01-01 10:00:00+00', '2024-01-01 10:00', 1, '{1}', 0)`,
			`(1, 'A', 'X', 1.50, '2024-01-01 12:00:00+02', '2024-01-01 10:00:00.000', 1, '[0:0]={1}', '-0')`},
		{`(2, 'a', 'x', 1.5, '2024-01-01 10:00:00.001+00', '2024-01-01 10:00', 1, '{1}', 0)`,
			`(2, 'a', 'x', 1.51, '2024-01-01 10:00:00.002+00', '2024-01-01 10:00:01', 2, '{2}', 1)`},
		{`(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`, `(3, '', '', 0, 'infinity', '-infinity', 0, '{}', 'NaN')`},
	}
	mustExec(t, db, `CREATE TABLE edge_new (LIKE edge)`)
	for _, p := range pairs {
		mustExec(t, db, `INSERT INTO edge VALUES `+p[0])
		mustExec(t, db, `INSERT INTO edge_new VALUES `+p[1])
	}
	names := []string{"v", "s", "n", "ts", "tl", "sm", "a", "f"}
	cols := diff.Columns{Names: names}
	olds, news, types := make([]string, len(names)), make([]string, len(names)), make([]uint32, len(names))
	for i, name := range names {
		olds[i], news[i] = `o.`+name, `n.`+name
		if err := db.QueryRow(`SELECT atttypid FROM pg_catalog.pg_attribute
WHERE attrelid = 'edge'::regclass AND attname = $1`, name).Scan(&types[i]); err != nil {
			t.Fatal(err)
		}
	}
	typed := record.ChangedTypedValuesSQL(olds, news, types, cols)
	// The types this test is about are compared as they are; the array and
	// the float as to_jsonb values.
	for _, want := range []string{`o.v::pg_catalog.text COLLATE "C" IS DISTINCT FROM n.v::pg_catalog.text COLLATE "C"`,
		`o.s::pg_catalog.text COLLATE "C" IS DISTINCT FROM n.s::pg_catalog.text COLLATE "C"`,
		`o.n IS DISTINCT FROM n.n`, `o.ts IS DISTINCT FROM n.ts`, `o.tl IS DISTINCT FROM n.tl`, `o.sm IS DISTINCT FROM n.sm`,
		`to_jsonb(o.a) IS DISTINCT FROM to_jsonb(n.a)`, `to_jsonb(o.f) IS DISTINCT FROM to_jsonb(n.f)`} {
		if !strings.Contains(typed, want) {
			t.Errorf("typed SQL lacks %q:\n%s", want, typed)
		}
	}
	rows, err := db.Query(`SELECT o.id, (` + typed + `)::text, (` + record.ChangedValuesSQL(olds, news, cols) + `)::text
FROM edge o JOIN edge_new n USING (id) ORDER BY o.id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	want := map[int]string{
		1: `{"s": ["x", "X"], "v": ["a", "A"]}`,
		2: `{"a": [[1], [2]], "f": [0, 1], "n": [1.50, 1.51], "sm": [1, 2], "tl": ["2024-01-01T10:00:00", "2024-01-01T10:00:01"], "ts": ["2024-01-01T10:00:00.001+00:00", "2024-01-01T10:00:00.002+00:00"]}`,
		3: `{"a": [null, []], "f": [null, "NaN"], "n": [null, 0.00], "s": [null, ""], "v": [null, ""], "sm": [null, 0], "tl": [null, "-infinity"], "ts": [null, "infinity"]}`,
	}
	n := 0
	for rows.Next() {
		var id int
		var got, byValues string
		if err := rows.Scan(&id, &got, &byValues); err != nil {
			t.Fatal(err)
		}
		n++
		if got != byValues {
			t.Errorf("pair %d: typed %s, to_jsonb %s", id, got, byValues)
		}
		if got != want[id] {
			t.Errorf("pair %d: typed %s, want %s", id, got, want[id])
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(pairs) {
		t.Fatalf("%d pairs compared, want %d", n, len(pairs))
	}
}
