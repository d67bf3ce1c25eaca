// Statement shapes beyond a plain write: writable WITH queries, strings of
// several statements, RETURNING * over joined tables.

package auditpgx_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
)

const shapesDDL = `
CREATE TABLE a (id int PRIMARY KEY, v text);
CREATE TABLE b (id int PRIMARY KEY, v text);
CREATE TABLE plain_log (id int, v text);
INSERT INTO a VALUES (1, 'one'), (2, 'two'), (3, 'three');
INSERT INTO b VALUES (1, 'uno');`

func registerAB(r *auditpgx.Registry) error {
	if err := r.RegisterTable("a"); err != nil {
		return err
	}
	return r.RegisterTable("b")
}

func TestWritableCTEs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, shapesDDL, registerAB)
	rows, err := e.db.QueryContext(e.ctx, `WITH d AS (DELETE FROM a WHERE id >= $1 RETURNING *)
		INSERT INTO b SELECT * FROM d RETURNING id, v`, 2)
	require.NoError(t, err)
	var got [][2]any
	for rows.Next() {
		var id int
		var v string
		require.NoError(t, rows.Scan(&id, &v))
		got = append(got, [2]any{id, v})
	}
	require.NoError(t, rows.Err())
	require.ElementsMatch(t, [][2]any{{2, "two"}, {3, "three"}}, got)

	res, err := e.db.ExecContext(e.ctx, `WITH u AS (UPDATE a SET v = upper(v) RETURNING id, v AS upper_v)
		INSERT INTO plain_log SELECT id, upper_v FROM u`)
	require.NoError(t, err)
	n, _ := res.RowsAffected()
	require.EqualValues(t, 1, n)

	var count int
	require.NoError(t, e.db.QueryRowContext(e.ctx, `WITH x AS (INSERT INTO a VALUES (9, 'nine') RETURNING 1) SELECT count(*) FROM x`).Scan(&count))
	require.Equal(t, 1, count)

	requireEntries(t, []entry{
		want("delete", "a", "2", `{"added_fields":{},"removed_fields":{"id":2,"v":"two"},"changed_fields":{}}`),
		want("delete", "a", "3", `{"added_fields":{},"removed_fields":{"id":3,"v":"three"},"changed_fields":{}}`),
		want("create", "b", "2", `{"added_fields":{"id":2,"v":"two"},"removed_fields":{},"changed_fields":{}}`),
		want("create", "b", "3", `{"added_fields":{"id":3,"v":"three"},"removed_fields":{},"changed_fields":{}}`),
		want("update", "a", "1", `{"added_fields":{},"removed_fields":{},"changed_fields":{"v":["one","ONE"]}}`),
		want("create", "a", "9", `{"added_fields":{"id":9,"v":"nine"},"removed_fields":{},"changed_fields":{}}`),
	}, e.entries())
}

func TestMultiStatementString(t *testing.T) {
	t.Parallel()
	e := newEnv(t, shapesDDL, registerAB)
	ctx := auditpgx.WithActor(e.ctx, `o'brien; DROP TABLE a; --\`)
	res, err := e.db.ExecContext(ctx, `UPDATE a SET v = 'x' WHERE id = 1; INSERT INTO plain_log VALUES (1, '$1::text'); DELETE FROM b WHERE id = 1`)
	require.NoError(t, err)
	n, _ := res.RowsAffected()
	require.EqualValues(t, 1, n)
	a := actor(`o'brien; DROP TABLE a; --\`)
	wants := []entry{
		want("update", "a", "1", `{"added_fields":{},"removed_fields":{},"changed_fields":{"v":["one","x"]}}`),
		want("delete", "b", "1", `{"added_fields":{},"removed_fields":{"id":1,"v":"uno"},"changed_fields":{}}`),
	}
	wants[0].Actor, wants[1].Actor = a, a
	requireEntries(t, wants, e.entries())
	var logged string
	require.NoError(t, e.plain.QueryRow(`SELECT v FROM plain_log`).Scan(&logged))
	require.Equal(t, "$1::text", logged)
}

func TestReturningStarWithFromItems(t *testing.T) {
	t.Parallel()
	e := newEnv(t, shapesDDL, registerAB)
	for _, db := range []struct {
		name string
		run  func(q string) ([]string, int)
	}{
		{"audited", func(q string) ([]string, int) { return columnsAndRows(t, e.db, q) }},
	} {
		cols, n := db.run(`UPDATE a SET v = b.v FROM b WHERE a.id = b.id RETURNING *`)
		require.Equal(t, []string{"id", "v", "id", "v"}, cols)
		require.Equal(t, 1, n)
		cols, n = db.run(`UPDATE a AS t SET v = s.v FROM (SELECT 2 AS k, 'deux' AS v) s WHERE t.id = s.k RETURNING s.*, t.*`)
		require.Equal(t, []string{"k", "v", "id", "v"}, cols)
		require.Equal(t, 1, n)
		cols, n = db.run(`DELETE FROM a USING b WHERE a.id = b.id RETURNING *`)
		require.Equal(t, []string{"id", "v", "id", "v"}, cols)
		require.Equal(t, 1, n)
	}
	require.Equal(t, 3, e.countEntries())
}
