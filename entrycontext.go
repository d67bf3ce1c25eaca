package auditpgx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"
)

// Keys the driver sets in an entry's context itself.
const (
	// ContextReason is the key WithReason sets.
	ContextReason = "reason"
	// ContextTraceID and ContextSpanID hold the OpenTelemetry trace and span
	// of the statement's context, when it carries a valid span: hex, as
	// the W3C traceparent writes them.
	ContextTraceID = "trace_id"
	ContextSpanID  = "span_id"
)

// MaxContextBytes is the largest entry context accepted, as JSON.
const MaxContextBytes = 64 << 10

// ErrInvalidContext is wrapped by the error an audited write returns when
// its entry context cannot be recorded: a key that is empty or not UTF-8, a
// value that does not encode as JSON, or a context beyond MaxContextBytes.
// Nothing was written. The error names the key, never the value.
var ErrInvalidContext = errors.New("auditpgx: invalid entry context")

// ErrNoContextColumn is wrapped by the error an audited write that carries
// an entry context returns when the entry table has no context column (it
// was made before the column existed): nothing was written. The error
// gives the ALTER TABLE to run; Migrate runs it when its role owns the
// table. Writes without a context keep working meanwhile.
var ErrNoContextColumn = errors.New("auditpgx: the entry table has no context column")

type contextKey struct{}

// contextField is one WithContext call: the fields form a list from the
// newest to the oldest, so that a derived context adds to its parent's
// without copying it.
type contextField struct {
	key    string
	value  any
	parent *contextField
}

// WithContext returns a context that adds key, with value, to the entry
// context of every entry written by statements run with it: a jsonb object
// in the entry table's context column. Calls accumulate; a later call with
// the same key replaces the value. value is stored as encoding/json encodes
// it (strings, numbers, bools, maps, slices, structs). The context is the
// application's: it is stored as given, so keep secrets out of it; auditpgx
// never writes a value into its own logs or errors.
//
// It travels as a parameter of the audited statement, never in its text:
// whatever it holds, the cached plan of the statement is reused.
func WithContext(ctx context.Context, key string, value any) context.Context {
	parent, _ := ctx.Value(contextKey{}).(*contextField)
	return context.WithValue(ctx, contextKey{}, &contextField{key: key, value: value, parent: parent})
}

// WithReason records why a change is made ("ticket #123") in the entry
// context, under ContextReason.
func WithReason(ctx context.Context, reason string) context.Context {
	return WithContext(ctx, ContextReason, reason)
}

// ContextFrom returns the fields WithContext and WithReason stored in ctx,
// the newest value of each key, or nil. The OpenTelemetry ids, which are
// added when the entry is written, are not among them.
func ContextFrom(ctx context.Context) map[string]any {
	f, _ := ctx.Value(contextKey{}).(*contextField)
	if f == nil {
		return nil
	}
	out := map[string]any{}
	for ; f != nil; f = f.parent {
		if _, ok := out[f.key]; !ok {
			out[f.key] = f.value
		}
	}
	return out
}

// entryContext returns the JSON text of the entry context ctx carries: its
// fields and, when it carries a valid span, the span's trace and span ids
// (unless the application set those keys itself); nil when there is none.
// Without either it allocates nothing.
func entryContext(ctx context.Context) ([]byte, error) {
	fields := ContextFrom(ctx)
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		if fields == nil {
			fields = map[string]any{}
		}
		if _, ok := fields[ContextTraceID]; !ok {
			fields[ContextTraceID] = sc.TraceID().String()
		}
		if _, ok := fields[ContextSpanID]; !ok {
			fields[ContextSpanID] = sc.SpanID().String()
		}
	}
	if fields == nil {
		return nil, nil
	}
	b, err := json.Marshal(fields)
	if err != nil {
		return nil, invalidContext(fields)
	}
	for k := range fields {
		if k == "" || !utf8.ValidString(k) {
			return nil, fmt.Errorf("%w: a key is empty or not valid UTF-8", ErrInvalidContext)
		}
	}
	if hasNULEscape(b) {
		return nil, fmt.Errorf("%w: a key or value holds a NUL character, which jsonb cannot store", ErrInvalidContext)
	}
	if len(b) > MaxContextBytes {
		return nil, fmt.Errorf("%w: %d bytes of JSON, more than the %d allowed", ErrInvalidContext, len(b), MaxContextBytes)
	}
	return b, nil
}

// invalidContext names the key whose value does not encode as JSON.
func invalidContext(fields map[string]any) error {
	for k, v := range fields {
		if _, err := json.Marshal(v); err != nil {
			return fmt.Errorf("%w: the value of key %q does not encode as JSON (%T)", ErrInvalidContext, k, v)
		}
	}
	return fmt.Errorf("%w: it does not encode as JSON", ErrInvalidContext)
}

// hasNULEscape reports whether JSON text b holds the escape \u0000 (a NUL
// character, which encoding/json writes so), not merely the text of it
// after an escaped backslash.
func hasNULEscape(b []byte) bool {
	for i := bytes.Index(b, []byte(`\u0000`)); i >= 0; {
		backslashes := 0
		for j := i - 1; j >= 0 && b[j] == '\\'; j-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return true
		}
		next := bytes.Index(b[i+1:], []byte(`\u0000`))
		if next < 0 {
			return false
		}
		i += 1 + next
	}
	return false
}
