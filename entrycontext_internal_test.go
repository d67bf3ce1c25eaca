package auditpgx

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// TestEntryContextJSON: the JSON of every mix of fields and span, the one
// encoding shared by concurrent statements, and errors kept with it.
func TestEntryContextJSON(t *testing.T) {
	span := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, SpanID: trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
	}))
	const traceID, spanID = "0102030405060708090a0b0c0d0e0f10", "0102030405060708"
	m := map[string]any{"id": 7}
	for _, c := range []struct {
		name string
		ctx  context.Context
		want map[string]any
	}{
		{"none", context.Background(), nil},
		{"fields", WithReason(WithContext(context.Background(), "request_id", "r"), "why"), map[string]any{"request_id": "r", "reason": "why"}},
		{"span", span, map[string]any{"trace_id": traceID, "span_id": spanID}},
		{"fields and span", WithContext(span, "user", m), map[string]any{"user": map[string]any{"id": 7.0}, "trace_id": traceID, "span_id": spanID}},
		{"trace id set", WithContext(span, ContextTraceID, "t"), map[string]any{"trace_id": "t", "span_id": spanID}},
		{"both set", WithContext(WithContext(span, ContextTraceID, "t"), ContextSpanID, "s"), map[string]any{"trace_id": "t", "span_id": "s"}},
		{"replaced key", WithContext(WithContext(context.Background(), "k", 1), "k", 2), map[string]any{"k": 2.0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var wg sync.WaitGroup
			got := make([]string, 8)
			for i := range got {
				wg.Go(func() {
					b, err := entryContext(c.ctx)
					if err != nil {
						t.Error(err)
					}
					got[i] = b
				})
			}
			wg.Wait()
			for _, b := range got {
				if c.want == nil {
					if b != "" {
						t.Fatalf("got %s, want nil", b)
					}
					continue
				}
				var v map[string]any
				if err := json.Unmarshal([]byte(b), &v); err != nil {
					t.Fatalf("%s: %v", b, err)
				}
				if gb, wb := mustMarshal(t, v), mustMarshal(t, c.want); gb != wb {
					t.Fatalf("got %s, want %s", gb, wb)
				}
			}
		})
	}

	// Encoded once: a map changed after the first statement is recorded
	// as it was then.
	ctx := WithContext(context.Background(), "user", m)
	first, err := entryContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m["id"] = 8
	again, _ := entryContext(ctx)
	if first != again || !strings.Contains(again, `"id":7`) {
		t.Errorf("first %s, again %s", first, again)
	}

	// An error is kept too, and names the key.
	bad := WithContext(context.Background(), "f", func() {})
	for range 2 {
		if _, err := entryContext(bad); err == nil || !strings.Contains(err.Error(), `"f"`) {
			t.Errorf("err = %v", err)
		}
	}
	big := WithContext(span, "big", strings.Repeat("x", MaxContextBytes-20))
	if _, err := entryContext(big); err == nil {
		t.Error("a context the span's ids take over MaxContextBytes was accepted")
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
