package auditpgx

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/auditpgx/auditpgx/internal/catalog"
	"github.com/auditpgx/auditpgx/internal/registry"
	"go.opentelemetry.io/otel/trace"
)

// ormUpdate is the UPDATE GORM sends for Save of a five-column model.
const ormUpdate = `UPDATE "users" SET "name"=$1,"email"=$2,"password_hash"=$3,"last_login"=$4,"updated_at"=$5 WHERE "users"."deleted_at" IS NULL AND "id" = $6`

// benchPlanner returns a planner whose "users" table is already checked,
// so that planning needs no database.
func benchPlanner(b testing.TB, absent ...string) *planner {
	b.Helper()
	reg, err := registry.New(registry.Config{})
	if err != nil {
		b.Fatal(err)
	}
	if err := reg.RegisterTable("users", registry.Exclude("last_login"), registry.Redact("password_hash")); err != nil {
		b.Fatal(err)
	}
	// Registering invalidates what was checked: register them all first.
	for _, name := range absent {
		if err := reg.RegisterTable(name); err != nil {
			b.Fatal(err)
		}
	}
	var t *registry.Table
	for _, rt := range reg.Tables() {
		if rt.Registered == "users" {
			t = rt
		}
	}
	if _, err := reg.Resolve(t, &catalog.Table{
		OID: benchOID, NAtts: 7, Schema: "public", Rel: "users",
		Columns:    []string{"id", "name", "email", "password_hash", "last_login", "updated_at", "deleted_at"},
		PrimaryKey: []string{"id"},
	}); err != nil {
		b.Fatal(err)
	}
	p := &planner{reg: reg, cache: newPlanCache(4096, 64<<10), suppressed: newPlanCache(0, 0)}
	p.version.Store(150018) // read once per planner, not per plan
	return p
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

// BenchmarkBindContext is binding a cached rewrite's arguments, the actor
// and the entry context, per statement: with no context (nothing to add),
// and with a five-field context (WithContext, WithReason) and an
// OpenTelemetry span.
func BenchmarkBindContext(b *testing.B) {
	p := benchPlanner(b)
	pl, err := p.plan(context.Background(), benchConn{}, ormUpdate)
	if err != nil || pl.action != audit || !pl.withContext {
		b.Fatalf("plan: %v %v", pl, err)
	}
	args := make([]driver.NamedValue, pl.rewrite.NumParams)
	for i := range args {
		args[i] = driver.NamedValue{Ordinal: i + 1, Value: int64(i)}
	}
	fields := WithActor(context.Background(), "alice")
	fields = WithContext(fields, "request_id", "4f1c2b7e-9d1a-4a55-8c3e-0d2f1e6b7a90")
	fields = WithContext(fields, "remote_addr", "203.0.113.7")
	fields = WithContext(fields, "method", "PATCH")
	fields = WithContext(fields, "route", "/accounts/{id}")
	fields = WithReason(fields, "ticket #123")
	full := trace.ContextWithSpanContext(fields, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, SpanID: trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
	}))
	// The plan of an entry table without the context column binds as
	// before the column existed: the baseline of "none".
	noColumn := *pl
	noColumn.withContext = false
	actorOnly := WithActor(context.Background(), "alice")
	for _, c := range []struct {
		name string
		pl   *plan
		ctx  context.Context
	}{{"baseline-no-column", &noColumn, actorOnly}, {"none", pl, actorOnly}, {"five-fields", pl, fields}, {"five-fields-and-span", pl, full}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := bind(c.ctx, c.pl, c.pl.rewrite.ExecSQL, args); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkColdPlanRegistrySize is planning a new text with 1 and with
// 1,000 registered tables, all but "users" absent from the database: an
// audited UPDATE of users (its description already read) and an INSERT into
// an unregistered table. Planning must not grow with the registry: the
// client time of the two sizes compares in one run, and roundtrips/op
// counts the catalog queries (one: the resolution of the written names).
func BenchmarkColdPlanRegistrySize(b *testing.B) {
	for _, size := range []int{1, 1000} {
		for _, q := range []struct{ name, sql string }{{"audited", ormUpdate}, {"unregistered", `INSERT INTO logs (id, msg) VALUES ($1, $2)`}} {
			b.Run(fmt.Sprintf("tables=%d/%s", size, q.name), func(b *testing.B) {
				var absent []string
				for i := 1; i < size; i++ {
					absent = append(absent, fmt.Sprintf("absent_%d", i))
				}
				p := benchPlanner(b, absent...)
				ctx := context.Background()
				conn := &countingConn{}
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := p.build(ctx, conn, q.sql, false); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(conn.queries)/float64(b.N), "roundtrips/op")
			})
		}
	}
}

// countingConn is benchConn counting the queries it answers.
type countingConn struct{ queries int }

func (c *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	c.queries++
	return benchConn{}.QueryContext(ctx, query, args)
}

// BenchmarkColdRewrite is parse, fingerprint and rewrite of a typical ORM
// UPDATE, as on the first use of a SQL text.
func BenchmarkColdRewrite(b *testing.B) {
	p := benchPlanner(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		pl, _, err := p.build(ctx, benchConn{}, ormUpdate, false)
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
	case query == catalog.ResolveQuery:
		names, _ := args[0].Value.([]string)
		rows := &benchRows{}
		for i, n := range names {
			if n == `"users"` {
				rows.rows = append(rows.rows, []driver.Value{int64(i + 1), int64(0), int64(benchOID), "public", "users", true})
			}
		}
		return rows, nil
	case query == catalog.HasColumnQuery: // the entry table's context column
		return &benchRows{rows: [][]driver.Value{{true}}}, nil
	case strings.Contains(query, "server_version_num"):
		return &benchRows{rows: [][]driver.Value{{int64(150018)}}}, nil
	}
	return nil, fmt.Errorf("benchConn: unexpected query %q", query)
}

type benchRows struct{ rows [][]driver.Value }

func (r *benchRows) Columns() []string { return []string{"v"} }
func (r *benchRows) Close() error      { return nil }
func (r *benchRows) Next(dest []driver.Value) error {
	if len(r.rows) == 0 {
		return io.EOF
	}
	copy(dest, r.rows[0])
	r.rows = r.rows[1:]
	return nil
}

// Binding a cached rewrite's arguments allocates one slice, the arguments
// with the actor after them, and nothing for the actor or an empty entry
// context.
func TestBindAllocatesTheArgumentsOnly(t *testing.T) {
	p := benchPlanner(t)
	pl, err := p.plan(context.Background(), benchConn{}, ormUpdate)
	if err != nil || pl.action != audit {
		t.Fatalf("plan: %v %v", pl, err)
	}
	args := make([]driver.NamedValue, pl.rewrite.NumParams)
	for i := range args {
		args[i] = driver.NamedValue{Ordinal: i + 1, Value: int64(i)}
	}
	ctx := WithActor(context.Background(), "alice")
	var bound []driver.NamedValue
	allocs := testing.AllocsPerRun(100, func() {
		if _, bound, err = bind(ctx, pl, pl.rewrite.ExecSQL, args); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 1 {
		t.Errorf("bind allocated %.0f times, want 1", allocs)
	}
	if got := bound[len(args)].Value; got != "alice" {
		t.Errorf("the actor bound is %v, want alice", got)
	}
}
