package auditpgx

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/auditpgx/auditpgx/registry"
)

// ormUpdate is the UPDATE GORM sends for Save of a five-column model.
const ormUpdate = `UPDATE "users" SET "name"=$1,"email"=$2,"password_hash"=$3,"last_login"=$4,"updated_at"=$5 WHERE "users"."deleted_at" IS NULL AND "id" = $6`

// benchPlanner returns a planner whose "users" table is already checked,
// so that planning needs no database.
func benchPlanner(b *testing.B) *planner {
	b.Helper()
	reg, err := registry.New(registry.Config{})
	if err != nil {
		b.Fatal(err)
	}
	if err := reg.RegisterTable("users", registry.Exclude("last_login"), registry.Redact("password_hash")); err != nil {
		b.Fatal(err)
	}
	t := reg.Lookup("", "users")
	if _, err := reg.Resolve(t, &registry.Catalog{
		OID: benchOID, NAtts: 7, Schema: "public", Rel: "users",
		Columns:    []string{"id", "name", "email", "password_hash", "last_login", "updated_at", "deleted_at"},
		PrimaryKey: []string{"id"},
	}); err != nil {
		b.Fatal(err)
	}
	return &planner{reg: reg, cache: newPlanCache(4096, 64<<10)}
}

// BenchmarkRewriteCacheHit is the per-statement cost of an audited write
// whose rewrite is cached.
func BenchmarkRewriteCacheHit(b *testing.B) {
	p := benchPlanner(b)
	ctx := context.Background()
	if pl, err := p.plan(ctx, benchConn{}, ormUpdate); err != nil || pl.action != audit {
		b.Fatalf("plan: %v %v", pl, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.plan(ctx, benchConn{}, ormUpdate); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdRewrite is parse, fingerprint and rewrite of a typical ORM
// UPDATE, as on the first use of a SQL text.
func BenchmarkColdRewrite(b *testing.B) {
	p := benchPlanner(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		pl, _, err := p.build(ctx, benchConn{}, ormUpdate)
		if err != nil || pl.action != audit {
			b.Fatalf("build: %v %v", pl, err)
		}
	}
}

const benchOID = 16401

// benchConn answers the planner's own catalog reads as a server would for
// the benchmark's one table, so that planning is measured without I/O.
type benchConn struct{}

func (benchConn) QueryContext(_ context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	switch {
	case strings.Contains(query, "to_regclass"):
		names, _ := args[0].Value.([]string)
		rows := &benchRows{}
		for range names {
			rows.values = append(rows.values, int64(benchOID))
		}
		return rows, nil
	case strings.Contains(query, "server_version_num"):
		return &benchRows{values: []driver.Value{int64(150018)}}, nil
	}
	return nil, fmt.Errorf("benchConn: unexpected query %q", query)
}

type benchRows struct{ values []driver.Value }

func (r *benchRows) Columns() []string { return []string{"v"} }
func (r *benchRows) Close() error      { return nil }
func (r *benchRows) Next(dest []driver.Value) error {
	if len(r.values) == 0 {
		return io.EOF
	}
	dest[0], r.values = r.values[0], r.values[1:]
	return nil
}
