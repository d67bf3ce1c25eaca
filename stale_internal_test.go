package auditpgx

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// The guard's column check is told by the error's code and position, not
// its message, which the server translates under lc_messages; a syntax
// error of the statement's own text is left alone.
func TestShapeChangedIgnoresTheMessage(t *testing.T) {
	sent := `WITH w AS (INSERT INTO t (id) SELECT 1 UNION ALL SELECT 1, 2 RETURNING t.id, ` +
		`(false AND EXISTS (SELECT "t".* UNION ALL SELECT "t"."id")) AS __auditpgx_shape) SELECT FROM w`
	at := func(s string) int32 { return int32(len([]rune(sent[:strings.Index(sent, s)]))) + 1 }
	for _, tc := range []struct {
		err   *pgconn.PgError
		stale bool
	}{
		{&pgconn.PgError{Code: "42601", Message: "each UNION query must have the same number of columns"}, true},
		{&pgconn.PgError{Code: "42601", Message: "jede UNION-Anfrage muss die gleiche Anzahl Spalten haben"}, true},
		{&pgconn.PgError{Code: "42601", Message: "each UNION query must have the same number of columns", Position: at(`"t"."id"))`)}, true},
		{&pgconn.PgError{Code: "42601", Message: "each UNION query must have the same number of columns", Position: at(`1, 2`)}, false},
		{&pgconn.PgError{Code: "42601", Message: `syntax error at or near "RETURNING"`, Position: at(`RETURNING`)}, false},
		{&pgconn.PgError{Code: "42703", Message: `column "x" does not exist`}, false},
	} {
		err := staleError(tc.err, sent)
		var stale *StaleError
		if got := errors.As(err, &stale); got != tc.stale {
			t.Errorf("%s %q at %d: StaleError %v, want %v", tc.err.Code, tc.err.Message, tc.err.Position, got, tc.stale)
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr != tc.err {
			t.Errorf("%s %q: the server's error is not kept: %v", tc.err.Code, tc.err.Message, err)
		}
	}
}

// An audited statement that succeeded is returned as it is: the error
// handling that decides on a retry and maps an error's position back
// costs the success path no allocation.
func TestRunAuditedSucceededAllocatesNothing(t *testing.T) {
	i := &interceptor{}
	p := &plan{}
	run := func(*plan) error { return nil }
	allocs := testing.AllocsPerRun(100, func() {
		if err := i.runAudited(t.Context(), nil, p, "UPDATE t SET a = 1", execForm, run); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("runAudited of a statement that succeeded allocated %.0f times, want 0", allocs)
	}
}
