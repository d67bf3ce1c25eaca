package pgxsuite_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/internal/pgxsuite"
)

const adaptSrc = `package stdlib_test

import (
	"database/sql"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

func open(t *testing.T) *sql.DB {
	config, _ := pgx.ParseConfig(os.Getenv("PGX_TEST_DATABASE"))
	return stdlib.OpenDB(*config)
}

func TestX(t *testing.T) {
	db, _ := sql.Open("pgx", os.Getenv("PGX_TEST_DATABASE"))
	c, _ := db.Conn(nil)
	c.Raw(func(dc any) error {
		_ = dc.(*stdlib.Conn).Conn()
		return nil
	})
	db.Exec("insert into t values (1)")
	db.Exec("create trigger z after insert or update on defer_test for each row execute function f()")
	sql := "update docs set a = 1"
	_ = sql
}
`

func TestAdaptFileRewrites(t *testing.T) {
	ad, err := pgxsuite.AdaptFile("x_test.go", []byte(adaptSrc))
	require.NoError(t, err)
	out := string(ad.Source)
	require.Contains(t, out, "return auditpgxsuiteOpenDB(*config)")
	require.Contains(t, out, `db, _ := auditpgxsuiteSQLOpen("pgx", os.Getenv("PGX_TEST_DATABASE"))`)
	require.Contains(t, out, "_ = auditpgxsuiteStdlibConn(dc).Conn()")
	require.Equal(t, map[string]int{"sql.Open": 1, "stdlib.OpenDB": 1, "stdlib.Conn": 1}, ad.Applied)
	require.Equal(t, []string{"docs", "t"}, ad.Writes)
	// stdlib is no longer referenced: kept for its init, blank.
	require.Contains(t, out, `_ "github.com/jackc/pgx/v5/stdlib"`)
}

func TestAdaptFileRefusesUnmapped(t *testing.T) {
	for name, body := range map[string]string{
		"forbidden": `var c = stdlib.GetConnector(pgx.ConnConfig{})`,
		"comma-ok":  `func f(dc any) { c, ok := dc.(*stdlib.Conn); _, _ = c, ok }`,
		"switch":    `func f(dc any) { switch dc.(type) { case *stdlib.Conn: } }`,
		"prefix":    `var auditpgxsuiteX = 1`,
	} {
		t.Run(name, func(t *testing.T) {
			src := "package stdlib_test\n\nimport (\n\t\"github.com/jackc/pgx/v5\"\n\t\"github.com/jackc/pgx/v5/stdlib\"\n)\n\nvar _ = pgx.ConnConfig{}\nvar _ stdlib.Conn\n\n" + body + "\n"
			_, err := pgxsuite.AdaptFile("x_test.go", []byte(src))
			require.Error(t, err)
			require.True(t, strings.Contains(err.Error(), "rewrite") || strings.Contains(err.Error(), "prefix"), err.Error())
		})
	}
}

func TestWrittenTables(t *testing.T) {
	require.Equal(t, []string{"t"}, pgxsuite.WrittenTables("insert into t(id) values ($1)"))
	require.Equal(t, []string{"a", "b", "c"}, pgxsuite.WrittenTables("UPDATE a SET x = 1; DELETE FROM b; MERGE INTO c USING d ON true"))
	require.Empty(t, pgxsuite.WrittenTables("create constraint trigger x after insert or update on defer_test"))
	require.Empty(t, pgxsuite.WrittenTables("update 1 failed: %d %w"))
}
