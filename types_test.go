// Column types, NULLs, Only and composite keys as entries record them, and
// no raw secret in any entry.

package auditpgx_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
)

const typesDDL = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE things (
	id uuid PRIMARY KEY,
	i int, b bigint, num numeric(30,10), t text, flag bool, ts timestamptz, d date,
	j jsonb, raw bytea, tags text[], m mood
);`

func TestColumnTypesAndNulls(t *testing.T) {
	t.Parallel()
	e := newEnv(t, typesDDL+`SET TIME ZONE 'UTC';`, func(r *auditpgx.Registry) error { return r.RegisterTable("things") })
	_, err := e.db.ExecContext(e.ctx, `SET TIME ZONE 'UTC'`)
	require.NoError(t, err)
	db, err := e.db.Conn(e.ctx)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.ExecContext(e.ctx, `SET TIME ZONE 'UTC'`)
	require.NoError(t, err)
	_, err = db.ExecContext(e.ctx, `INSERT INTO things VALUES ($1, 1, 9007199254740993, 12345678901234567890.0123456789, 'tëxt "q"', true,
		'2024-01-02 03:04:05.123456+00', '2024-02-29', '{"a": {"b": [1, null, "x"]}}', '\x00ff', ARRAY['a', NULL, 'c'], 'ok')`,
		"6a1e1c1e-0000-4000-8000-000000000001")
	require.NoError(t, err)
	_, err = db.ExecContext(e.ctx, `INSERT INTO things (id) VALUES ('6a1e1c1e-0000-4000-8000-000000000002')`)
	require.NoError(t, err)
	_, err = db.ExecContext(e.ctx, `UPDATE things SET i = NULL, num = 1.50, flag = NULL, j = '{"a": 2}', tags = '{}', m = 'happy', d = NULL
		WHERE id = '6a1e1c1e-0000-4000-8000-000000000001'`)
	require.NoError(t, err)
	// 1.50 and 1.5000000000 are the same numeric: no entry.
	_, err = db.ExecContext(e.ctx, `UPDATE things SET num = 1.5 WHERE id = '6a1e1c1e-0000-4000-8000-000000000001'`)
	require.NoError(t, err)
	_, err = db.ExecContext(e.ctx, `DELETE FROM things WHERE i IS NULL AND b IS NULL`)
	require.NoError(t, err)

	const id1, id2 = "6a1e1c1e-0000-4000-8000-000000000001", "6a1e1c1e-0000-4000-8000-000000000002"
	full := `{"id":"` + id1 + `","i":1,"b":9007199254740993,"num":12345678901234567890.0123456789,"t":"tëxt \"q\"","flag":true,
		"ts":"2024-01-02T03:04:05.123456+00:00","d":"2024-02-29","j":{"a":{"b":[1,null,"x"]}},"raw":"\\x00ff","tags":["a",null,"c"],"m":"ok"}`
	nulls := `{"id":"` + id2 + `","i":null,"b":null,"num":null,"t":null,"flag":null,"ts":null,"d":null,"j":null,"raw":null,"tags":null,"m":null}`
	requireEntries(t, []entry{
		want("create", "things", id1, `{"added_fields":`+full+`,"removed_fields":{},"changed_fields":{}}`),
		want("create", "things", id2, `{"added_fields":`+nulls+`,"removed_fields":{},"changed_fields":{}}`),
		want("update", "things", id1, `{"added_fields":{},"removed_fields":{},"changed_fields":{
			"i":[1,null],"num":[12345678901234567890.0123456789,1.5000000000],"flag":[true,null],"j":[{"a":{"b":[1,null,"x"]}},{"a":2}],
			"tags":[["a",null,"c"],[]],"m":["ok","happy"],"d":["2024-02-29",null]}}`),
		want("delete", "things", id2, `{"added_fields":{},"removed_fields":`+nulls+`,"changed_fields":{}}`),
	}, e.entries())
}

func TestOnlyAndCompositeKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `CREATE TABLE stock (sku text, region text, qty int, price numeric, secret text, PRIMARY KEY (region, sku));`,
		func(r *auditpgx.Registry) error {
			return r.RegisterTable("stock", auditpgx.Only("qty", "secret"), auditpgx.Redact("secret"))
		})
	exec := func(q string) {
		t.Helper()
		_, err := e.db.ExecContext(e.ctx, q)
		require.NoError(t, err)
	}
	exec(`INSERT INTO stock VALUES ('a-1', 'eu', 5, 9.99, 'shh')`)
	exec(`UPDATE stock SET price = 1`) // not audited: no entry
	exec(`UPDATE stock SET qty = 6, secret = 'shh'`)
	exec(`UPDATE stock SET secret = 'new'`)
	exec(`DELETE FROM stock`)
	requireEntries(t, []entry{
		want("create", "stock", `["eu","a-1"]`, `{"added_fields":{"qty":5,"secret":"$encrypted$"},"removed_fields":{},"changed_fields":{}}`),
		want("update", "stock", `["eu","a-1"]`, `{"added_fields":{},"removed_fields":{},"changed_fields":{"qty":[5,6]}}`),
		want("update", "stock", `["eu","a-1"]`, `{"added_fields":{},"removed_fields":{},"changed_fields":{"secret":["$encrypted$","$encrypted$"]}}`),
		want("delete", "stock", `["eu","a-1"]`, `{"added_fields":{},"removed_fields":{"qty":6,"secret":"$encrypted$"},"changed_fields":{}}`),
	}, e.entries())
}

// TestSecretsStayInTheServer scans every entry for the raw values of
// excluded and redacted columns.
func TestSecretsStayInTheServer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersDDL, registerUsers)
	const sentinel = "SENTINEL-7f3a"
	for _, q := range []string{
		`INSERT INTO users (name, password_hash, last_login) VALUES ('a', 'SENTINEL-7f3a', now())`,
		`UPDATE users SET password_hash = 'SENTINEL-7f3a-2', last_login = now()`,
		`DELETE FROM users`,
	} {
		_, err := e.db.ExecContext(e.ctx, q)
		require.NoError(t, err)
	}
	var dump string
	require.NoError(t, e.plain.QueryRow(`SELECT string_agg(e::text, ' ') FROM auditpgx_entry e`).Scan(&dump))
	require.NotContains(t, dump, sentinel)
	require.NotContains(t, dump, "last_login")
	require.Contains(t, dump, "$encrypted$")
}
