package auditpgx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
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
	// encoded is the list's JSON, made the first time a statement uses it.
	encoded atomic.Pointer[encodedFields]
}

// WithContext returns a context that adds key, with value, to the entry
// context of every entry written by statements run with it: a jsonb object
// in the entry table's context column. Calls accumulate; a later call with
// the same key replaces the value. value is stored as encoding/json encodes
// it (strings, numbers, bools, maps, slices, structs), when the first
// statement run with the returned context (or one derived from it without
// another WithContext) encodes it: a map or slice changed after that is
// recorded as it was then. The context is the
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
// (unless the application set those keys itself); "" when there is none.
// Without either it allocates nothing. The fields are encoded once per
// WithContext call, the first time a statement uses them: a request's
// statements share the encoding.
func entryContext(ctx context.Context) (string, error) {
	f, _ := ctx.Value(contextKey{}).(*contextField)
	sc := trace.SpanContextFromContext(ctx)
	if f == nil && !sc.IsValid() {
		return "", nil
	}
	var enc *encodedFields
	if f != nil {
		if enc = f.encoded.Load(); enc == nil {
			enc = encodeFields(f)
			f.encoded.Store(enc)
		}
		if enc.err != nil {
			return "", enc.err
		}
		if !sc.IsValid() || (enc.hasTrace && enc.hasSpan) {
			return enc.json, nil
		}
	}
	// The span's ids, added to the fields' object.
	b := make([]byte, 0, 80+len(enc.jsonOrEmpty()))
	b = append(b, '{')
	if !enc.hasTraceID() {
		b = append(b, `"`+ContextTraceID+`":"`...)
		b = append(b, sc.TraceID().String()...)
		b = append(b, `",`...)
	}
	if !enc.hasSpanID() {
		b = append(b, `"`+ContextSpanID+`":"`...)
		b = append(b, sc.SpanID().String()...)
		b = append(b, `",`...)
	}
	if rest := enc.jsonOrEmpty(); len(rest) > 2 {
		b = append(b, rest[1:]...)
	} else {
		b[len(b)-1] = '}'
	}
	if len(b) > MaxContextBytes {
		return "", fmt.Errorf("%w: %d bytes of JSON, more than the %d allowed", ErrInvalidContext, len(b), MaxContextBytes)
	}
	return string(b), nil
}

// encodedFields is the JSON object of a list of fields, or why it cannot
// be recorded.
type encodedFields struct {
	json              string
	err               error
	hasTrace, hasSpan bool // the fields set ContextTraceID, ContextSpanID
}

func (e *encodedFields) jsonOrEmpty() string {
	if e == nil {
		return ""
	}
	return e.json
}

func (e *encodedFields) hasTraceID() bool { return e != nil && e.hasTrace }
func (e *encodedFields) hasSpanID() bool  { return e != nil && e.hasSpan }

// encodeFields encodes the newest value of each key of the list f begins.
func encodeFields(f *contextField) *encodedFields {
	fields := map[string]any{}
	for ; f != nil; f = f.parent {
		if _, ok := fields[f.key]; !ok {
			fields[f.key] = f.value
		}
	}
	_, hasTrace := fields[ContextTraceID]
	_, hasSpan := fields[ContextSpanID]
	b, err := json.Marshal(fields)
	if err != nil {
		return &encodedFields{err: invalidContext(fields)}
	}
	for k := range fields {
		if k == "" || !utf8.ValidString(k) {
			return &encodedFields{err: fmt.Errorf("%w: a key is empty or not valid UTF-8", ErrInvalidContext)}
		}
	}
	if hasNULEscape(b) {
		return &encodedFields{err: fmt.Errorf("%w: a key or value holds a NUL character, which jsonb cannot store", ErrInvalidContext)}
	}
	if len(b) > MaxContextBytes {
		return &encodedFields{err: fmt.Errorf("%w: %d bytes of JSON, more than the %d allowed", ErrInvalidContext, len(b), MaxContextBytes)}
	}
	return &encodedFields{json: string(b), hasTrace: hasTrace, hasSpan: hasSpan}
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
