package diff

import (
	"encoding/json"
	"fmt"
)

// Encrypted is the value recorded for a redacted column in place of its
// contents, whether the column held a value or NULL.
const Encrypted = "$encrypted$"

// encryptedJSON is Encrypted as a JSON string.
const encryptedJSON = `"` + Encrypted + `"`

// Changes is the decoded changes column of an activity-stream entry.
//
// Each value is JSON as PostgreSQL's to_jsonb renders the column, or the
// string [Encrypted] for a redacted column. A nil value stands for JSON null.
type Changes struct {
	AddedFields   map[string]json.RawMessage    `json:"added_fields"`
	RemovedFields map[string]json.RawMessage    `json:"removed_fields"`
	ChangedFields map[string][2]json.RawMessage `json:"changed_fields"` // column -> [old, new]
	// ReplacedFields is set, instead of a diff, on an update whose old
	// values could not be read: an INSERT ... ON CONFLICT DO UPDATE that met
	// a row inserted concurrently, after its snapshot, on a server older
	// than PostgreSQL 18. It holds every audited column's new value; the
	// old values are unknown, and no made-up value stands for them.
	ReplacedFields map[string]json.RawMessage `json:"replaced_fields,omitempty"`
}

func newChanges() Changes {
	return Changes{
		AddedFields:   map[string]json.RawMessage{},
		RemovedFields: map[string]json.RawMessage{},
		ChangedFields: map[string][2]json.RawMessage{},
	}
}

// Empty reports whether c records no added, removed or changed field. An
// update whose diff is empty produces no entry.
func (c Changes) Empty() bool {
	return len(c.AddedFields) == 0 && len(c.RemovedFields) == 0 && len(c.ChangedFields) == 0 && len(c.ReplacedFields) == 0
}

// MarshalJSON writes all three keys, with {} for a nil or empty map, so the
// stored object has the same shape whatever the operation.
func (c Changes) MarshalJSON() ([]byte, error) {
	w := struct {
		AddedFields    map[string]json.RawMessage    `json:"added_fields"`
		RemovedFields  map[string]json.RawMessage    `json:"removed_fields"`
		ChangedFields  map[string][2]json.RawMessage `json:"changed_fields"`
		ReplacedFields map[string]json.RawMessage    `json:"replaced_fields,omitempty"`
	}{c.AddedFields, c.RemovedFields, c.ChangedFields, c.ReplacedFields}
	if w.AddedFields == nil {
		w.AddedFields = map[string]json.RawMessage{}
	}
	if w.RemovedFields == nil {
		w.RemovedFields = map[string]json.RawMessage{}
	}
	if w.ChangedFields == nil {
		w.ChangedFields = map[string][2]json.RawMessage{}
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes a changes object. Missing or null keys decode as
// empty maps, never nil. A changed_fields entry that is not a two-element
// array is an error naming the column.
func (c *Changes) UnmarshalJSON(data []byte) error {
	var w struct {
		AddedFields    map[string]json.RawMessage   `json:"added_fields"`
		RemovedFields  map[string]json.RawMessage   `json:"removed_fields"`
		ChangedFields  map[string][]json.RawMessage `json:"changed_fields"`
		ReplacedFields map[string]json.RawMessage   `json:"replaced_fields"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("auditpgx: decoding changes: %w", err)
	}
	out := newChanges()
	for k, v := range w.AddedFields {
		out.AddedFields[k] = v
	}
	for k, v := range w.RemovedFields {
		out.RemovedFields[k] = v
	}
	for k, pair := range w.ChangedFields {
		if len(pair) != 2 {
			return fmt.Errorf("auditpgx: decoding changes: changed_fields[%q] has %d elements, want [old, new]", k, len(pair))
		}
		out.ChangedFields[k] = [2]json.RawMessage{pair[0], pair[1]}
	}
	out.ReplacedFields = w.ReplacedFields
	*c = out
	return nil
}

// Decode decodes a changes column as stored by auditpgx. The maps of the
// result are never nil.
func Decode(data []byte) (Changes, error) {
	var c Changes
	err := c.UnmarshalJSON(data)
	return c, err
}
