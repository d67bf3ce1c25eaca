package parse

import (
	"errors"
	"strings"
	"testing"
)

func TestGuard(t *testing.T) {
	for _, c := range []struct {
		name string
		sql  string
		ok   bool
	}{
		{"plain", `UPDATE users SET name = $1 WHERE id = $2`, true},
		{"plus chain under the limit", `SELECT 1` + strings.Repeat("+1", MaxChain-1), true},
		{"plus chain over the limit", `SELECT 1` + strings.Repeat("+1", MaxChain+1), false},
		{"cast chain", `SELECT 'a'` + strings.Repeat("::text", MaxChain+1), false},
		{"IS NULL chain", `SELECT 1` + strings.Repeat(" IS NULL", MaxChain+1), false},
		{"UNION chain", `SELECT 1` + strings.Repeat(" UNION ALL SELECT 1", MaxChain+1), false},
		{"commas end chains", `INSERT INTO t VALUES ` + strings.Repeat("(1+1+1), ", 10_000) + `(1)`, true},
		{"OR lists do not nest", `SELECT 1 WHERE ` + strings.Repeat("id = 1 OR ", 20_000) + `true`, true},
		{"operators in strings do not count", `SELECT '` + strings.Repeat("+", 100_000) + `'`, true},
		{"operators in comments do not count", "SELECT 1 -- " + strings.Repeat("+", 100_000), true},
		{"block comments", "SELECT 1 /* " + strings.Repeat("+", 100_000) + " */", true},
		{"deep brackets", `SELECT ` + strings.Repeat("(", MaxNesting+1) + `1` + strings.Repeat(")", MaxNesting+1), false},
	} {
		err := guard(c.sql)
		if c.ok && err != nil {
			t.Errorf("%s: refused: %v", c.name, err)
		}
		if !c.ok && !errors.Is(err, ErrTooComplex) {
			t.Errorf("%s: not refused (%v)", c.name, err)
		}
	}
}
