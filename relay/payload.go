package relay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/auditpgx/auditpgx/internal/record"
)

// payloadVersion is the only "v" this relay reads.
const payloadVersion = record.PayloadVersion

// entryColumns are the entry table's columns the relay writes, in the
// order of entry.values; id is an identity column.
var entryColumns = record.EntryKeys

// payload is a message's content.
type payload struct {
	V       *int        `json:"v"`
	Entries []wireEntry `json:"entries"`
}

// rawPayload is a message's content with its entries left as they are,
// for NDJSON.
type rawPayload struct {
	V       *int              `json:"v"`
	Entries []json.RawMessage `json:"entries"`
}

// wireEntry is an entry as the payload holds it: a row of the entry table
// as to_jsonb writes it.
type wireEntry struct {
	Created              *string         `json:"created"`
	CreatedBy            *string         `json:"created_by"`
	Operation            *string         `json:"operation"`
	TableName            *string         `json:"table_name"`
	ObjectID             *string         `json:"object_id"`
	Changes              json.RawMessage `json:"changes"`
	TxID                 *int64          `json:"tx_id"`
	StatementFingerprint *string         `json:"statement_fingerprint"`
	RelatedTableName     *string         `json:"related_table_name"`
	RelatedObjectID      *string         `json:"related_object_id"`
	RelatedFieldName     *string         `json:"related_field_name"`
	Context              json.RawMessage `json:"context"`
}

// entry is one decoded entry: its column values for COPY, and, for
// NDJSON, its JSON as the payload wrote it.
type entry struct {
	values []any
	raw    json.RawMessage
}

// decodePayload reads a message's content, in one pass, and a second
// that keeps each entry's JSON when keepRaw is set. The error gives the
// reason; the caller names the message.
func decodePayload(content []byte, keepRaw bool) ([]entry, error) {
	var p payload
	if err := strictUnmarshal(content, &p); err != nil {
		return nil, fmt.Errorf("payload does not parse: %w", err)
	}
	if p.V == nil {
		return nil, errors.New(`payload has no "v"`)
	}
	if *p.V != payloadVersion {
		return nil, fmt.Errorf("payload version %d, this relay reads version %d only", *p.V, payloadVersion)
	}
	if p.Entries == nil {
		return nil, errors.New(`payload has no "entries" array`)
	}
	var raw rawPayload
	if keepRaw {
		if err := json.Unmarshal(content, &raw); err != nil || len(raw.Entries) != len(p.Entries) {
			return nil, fmt.Errorf("payload does not parse the second time: %v", err)
		}
	}
	out := make([]entry, len(p.Entries))
	for i := range p.Entries {
		e, err := p.Entries[i].entry()
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		if keepRaw {
			e.raw = raw.Entries[i]
		}
		out[i] = e
	}
	return out, nil
}

// entry checks a decoded entry and returns its column values.
func (w *wireEntry) entry() (entry, error) {
	for _, req := range []struct {
		name string
		ok   bool
	}{
		{"created", w.Created != nil}, {"operation", w.Operation != nil}, {"table_name", w.TableName != nil},
		{"object_id", w.ObjectID != nil}, {"tx_id", w.TxID != nil},
	} {
		if !req.ok {
			return entry{}, fmt.Errorf("%q is missing or null", req.name)
		}
	}
	created, err := parseTimestamptz(*w.Created)
	if err != nil {
		return entry{}, fmt.Errorf(`"created": %w`, err)
	}
	changes, err := jsonObject("changes", w.Changes)
	if err != nil {
		return entry{}, err
	}
	ctx, err := jsonObject("context", w.Context)
	if err != nil {
		return entry{}, err
	}
	return entry{
		values: []any{created, w.CreatedBy, *w.Operation, *w.TableName, *w.ObjectID, changes, *w.TxID,
			w.StatementFingerprint, w.RelatedTableName, w.RelatedObjectID, w.RelatedFieldName, ctx},
	}, nil
}

// strictUnmarshal is json.Unmarshal that refuses keys v has no field for
// and anything after the value.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}

// jsonObject returns a jsonb column's value: nil for SQL NULL when absent
// or null, else the object.
func jsonObject(name string, raw json.RawMessage) (any, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil, nil
	}
	if t[0] != '{' {
		return nil, fmt.Errorf("%q is neither an object nor null", name)
	}
	return json.RawMessage(t), nil
}

// parseTimestamptz reads a timestamptz as to_jsonb writes it:
// 2026-12-06T09:55:08.123456+00:00, or infinity.
func parseTimestamptz(s string) (pgtype.Timestamptz, error) {
	switch s {
	case "infinity":
		return pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}, nil
	case "-infinity":
		return pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return pgtype.Timestamptz{}, err
	}
	return pgtype.Timestamptz{Time: t, Valid: true}, nil
}
