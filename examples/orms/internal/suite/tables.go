package suite

import (
	"database/sql"
	"strings"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// entryTable is left out of content comparisons: only the audited side
// has one.
const entryTable = "auditpgx_entry"

// RequireSameTables fails the test unless both schemas hold the same tables
// with the same rows. Rows are compared as to_jsonb renders them, in a
// fixed order, so a failure shows the differing rows. ignore names columns
// left out of the comparison, as "table.column": those that take the
// clock's time, such as updated_at = now().
func (e *Env) RequireSameTables(ignore ...string) {
	e.t.Helper()
	skip := map[string][]string{}
	for _, tc := range ignore {
		table, col, ok := strings.Cut(tc, ".")
		require.True(e.t, ok, "ignore %q is not table.column", tc)
		skip[table] = append(skip[table], col)
	}
	plain := e.contents(e.Plain, e.plainSchema, skip)
	audited := e.contents(e.admin, e.auditedSchema, skip)
	require.Equal(e.t, plain, audited, "table contents through pgx (-) and through auditpgx (+)")
}

// contents returns every table of schema but the entry table, each as its
// rows in to_jsonb's text form.
func (e *Env) contents(db *sql.DB, schema string, skip map[string][]string) map[string][]string {
	e.t.Helper()
	rows, err := db.QueryContext(e.Ctx,
		`SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> $2 ORDER BY tablename`,
		schema, entryTable)
	require.NoError(e.t, err)
	var tables []string
	for rows.Next() {
		var name string
		require.NoError(e.t, rows.Scan(&name))
		tables = append(tables, name)
	}
	require.NoError(e.t, rows.Err())
	out := map[string][]string{}
	for _, table := range tables {
		out[table] = e.rowsOf(db, sqlq.QualifiedIdent(schema, table), skip[table])
	}
	return out
}

func (e *Env) rowsOf(db *sql.DB, quoted string, skip []string) []string {
	e.t.Helper()
	row := `to_jsonb(t)`
	for _, col := range skip {
		row += ` - ` + sqlq.Literal(col)
	}
	rows, err := db.QueryContext(e.Ctx, `SELECT (`+row+`)::text AS r FROM `+quoted+` t ORDER BY r`)
	require.NoError(e.t, err)
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var r string
		require.NoError(e.t, rows.Scan(&r))
		out = append(out, r)
	}
	require.NoError(e.t, rows.Err())
	return out
}
