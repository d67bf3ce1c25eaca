package diff_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/record"
)

func TestImageSQLChunks(t *testing.T) {
	names := func(n int) diff.Columns {
		var cols diff.Columns
		for i := range n {
			cols.Names = append(cols.Names, fmt.Sprintf("c%d", i))
		}
		return cols
	}
	for _, c := range []struct{ columns, calls int }{{1, 1}, {50, 1}, {51, 2}, {100, 2}, {101, 3}, {1600, 32}} {
		cols := names(c.columns)
		if got := strings.Count(record.ImageSQL(`"t"`, cols), "jsonb_build_object("); got != c.calls {
			t.Errorf("ImageSQL, %d columns: %d jsonb_build_object calls, want %d", c.columns, got, c.calls)
		}
		// One more call builds the changes object around the columns.
		for op, s := range map[string]string{"CreateSQL": record.CreateSQL("x", cols), "DeleteSQL": record.DeleteSQL("x", cols)} {
			if got := strings.Count(s, "jsonb_build_object("); got != c.calls+1 {
				t.Errorf("%s, %d columns: %d jsonb_build_object calls, want %d", op, c.columns, got, c.calls+1)
			}
		}
	}
	if got := record.ImageSQL(`"t"`, diff.Columns{}); got != `'{}'::jsonb` {
		t.Errorf("ImageSQL with no columns = %s", got)
	}
}

// wideAgreement has n columns besides id: integers, booleans, text and
// numerics in turn, every seventh redacted and every eleventh excluded.
func wideAgreement(n int, types []genColumn) agreement {
	a := agreement{redacted: map[string]bool{}, excluded: map[string]bool{}}
	for i := range n {
		c := types[i%len(types)]
		c.name = fmt.Sprintf("c%04d", i+1)
		a.columns = append(a.columns, c)
		switch {
		case i%7 == 3:
			a.redacted[c.name] = true
		case i%11 == 5:
			a.excluded[c.name] = true
		}
	}
	return a
}

func TestSQLAgreesWithGoWide(t *testing.T) {
	for _, c := range []struct {
		columns, pairs int
		types          []genColumn
	}{
		{
			columns: 130, pairs: 60,
			types: []genColumn{
				{typ: "integer", gen: genInt},
				{typ: "boolean", gen: genBool},
				{typ: "text", gen: genText},
				{typ: "numeric", gen: genNumeric, respell: respellNumber},
			},
		},
		{
			// PostgreSQL's limit is 1600 columns including id; integers and
			// booleans keep the row within a page.
			columns: 1599, pairs: 12,
			types: []genColumn{
				{typ: "integer", gen: genInt},
				{typ: "boolean", gen: genBool},
			},
		},
	} {
		t.Run(fmt.Sprint(c.columns), func(t *testing.T) {
			db := openDB(t)
			a := wideAgreement(c.columns, c.types)
			a.createTables(t, db)
			pairs := a.genPairs(rand.New(rand.NewPCG(3, uint64(c.columns))), c.pairs)
			a.insert(t, db, pairs)
			stats := a.check(t, db, pairs)
			if stats.emptyUpdates == 0 || stats.redactedChanges == 0 {
				t.Errorf("the pairs exercised %d empty updates and %d redacted changes", stats.emptyUpdates, stats.redactedChanges)
			}
		})
	}
}
