package auditpgx

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/ngrok/sqlmw"

	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/internal/registry"
)

// probe is the interceptor with a look at the connections sqlmw hands it.
type probe struct {
	*interceptor
	seen func(conn any)
}

func (p probe) ConnExecContext(ctx context.Context, conn driver.ExecerContext, query string, args []driver.NamedValue) (driver.Result, error) {
	p.seen(conn)
	return p.interceptor.ConnExecContext(ctx, conn, query, args)
}

// TestConnIdentitySurvivesSqlmw: the search_path tracking, the retry after
// DDL and the verified writes need to know the pgx connection behind the
// value sqlmw hands the interceptor, and whether it is in a transaction.
// connID finds it by reflection on sqlmw's wrapper; this test fails, loudly,
// if a sqlmw update moves it.
func TestConnIdentitySurvivesSqlmw(t *testing.T) {
	dsn, _ := pgtest.NewSchema(t)
	reg, err := registry.New(registry.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var got []any
	var idles []bool
	p := probe{interceptor: newInterceptor(reg), seen: func(conn any) {
		id, ok := connID(conn)
		if !ok {
			t.Errorf("connID(%T) found no connection", conn)
		}
		got = append(got, id)
		idles = append(idles, idle(conn))
	}}
	d := sqlmw.Driver(stdlib.GetDefaultDriver(), p).(driver.DriverContext)
	c, err := d.OpenConnector(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{`SELECT 1`, `BEGIN`, `SELECT 2`, `COMMIT`} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 4 {
		t.Fatalf("saw %d executions, want 4", len(got))
	}
	for i, id := range got {
		if _, ok := id.(*stdlib.Conn); !ok {
			t.Errorf("execution %d: connID gave %T, want *stdlib.Conn", i, id)
		}
		if id != got[0] {
			t.Errorf("execution %d: another connection than the first", i)
		}
	}
	if want := []bool{true, true, false, false}; len(idles) != 4 || idles[0] != want[0] || idles[2] != want[2] {
		t.Errorf("idle before each statement = %v, want %v", idles, want)
	}
}
