// Package otelsql_test runs auditpgx under XSAM/otelsql, the database/sql
// tracing wrapper: otelsql opened over the "auditpgx" driver keeps tracing,
// and every entry records the trace and span of the statement that wrote it.
package otelsql_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/XSAM/otelsql"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestOtelsqlOverAuditpgx(t *testing.T) {
	ctx := context.Background()
	dsn, _ := pgtest.NewSchema(t)
	require.NoError(t, auditpgx.RegisterTable("notes")) // the default registry, which sql.Open("auditpgx") uses

	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	db, err := otelsql.Open("auditpgx", dsn, otelsql.WithTracerProvider(tp))
	require.NoError(t, err)
	defer db.Close()
	_, err = db.ExecContext(ctx, `CREATE TABLE notes (id int PRIMARY KEY, body text)`)
	require.NoError(t, err)
	require.NoError(t, auditpgx.Migrate(ctx, db))

	ctx, parent := tp.Tracer("test").Start(ctx, "request")
	_, err = db.ExecContext(ctx, `INSERT INTO notes VALUES (1, 'a')`)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `UPDATE notes SET body = 'b' WHERE id = $1`, 1)
	require.NoError(t, err)
	parent.End()

	// otelsql traced the statements, as children of the request's span.
	statementSpans := map[string]bool{}
	for _, s := range spans.Ended() {
		if s.Parent().SpanID() == parent.SpanContext().SpanID() && s.Name() == "sql.conn.exec" {
			statementSpans[s.SpanContext().SpanID().String()] = true
		}
	}
	require.Len(t, statementSpans, 2, "otelsql's exec spans under the request")

	// Each entry carries the trace, and the span otelsql opened for the
	// statement that wrote it.
	entries, err := store.List(ctx, db, store.Query{TableName: "notes"})
	require.NoError(t, err)
	require.Len(t, entries, 2)
	for _, e := range entries {
		var c struct {
			TraceID string `json:"trace_id"`
			SpanID  string `json:"span_id"`
		}
		require.NoError(t, json.Unmarshal(e.Context, &c))
		require.Equal(t, parent.SpanContext().TraceID().String(), c.TraceID, "entry %d", e.ID)
		require.True(t, statementSpans[c.SpanID], "entry %d: span %s is one of otelsql's statement spans", e.ID, c.SpanID)
	}
}
