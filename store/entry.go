package store

import (
	"encoding/json"
	"time"

	"github.com/auditpgx/auditpgx/diff"
)

// Entry is one row of the entry table: one audited change to one object.
// Pointer fields are nil where the column is NULL.
type Entry struct {
	ID        int64     `json:"id"`
	Created   time.Time `json:"created"`
	CreatedBy *string   `json:"created_by"`
	Operation Operation `json:"operation"`
	TableName string    `json:"table_name"`
	ObjectID  string    `json:"object_id"`
	// Changes is nil for associate, disassociate and truncate entries
	// and for the marker entry of a baseline (see [Entry.Baseline]).
	Changes              *diff.Changes `json:"changes"`
	RelatedTableName     *string       `json:"related_table_name"`
	RelatedObjectID      *string       `json:"related_object_id"`
	RelatedFieldName     *string       `json:"related_field_name"`
	TxID                 int64         `json:"tx_id"`
	StatementFingerprint *string       `json:"statement_fingerprint"`
	// Context is the entry context the write carried (auditpgx.WithContext,
	// WithReason, the OpenTelemetry ids), a JSON object; nil when none.
	Context json.RawMessage `json:"context"`
	// Rows is set on a suppressed entry (OpSuppressed): the number of rows
	// its statement wrote in the table, which its changes column holds as
	// {"rows": N} (decoded here, not into Changes). Nil for every other
	// entry.
	Rows *int64 `json:"rows,omitempty"`
	// Baseline is set on the marker entry that a baseline writes for a
	// table, after its snapshot entries and in the same transaction:
	// operation snapshot, an empty ObjectID, and a changes column holding
	// {"snapshot": "xmin:xmax:xip,…", "rows": N} (decoded here, not into
	// Changes). Nil for every other entry.
	Baseline *Baseline `json:"baseline,omitempty"`
}

// Baseline is what the marker entry of a baseline records: the snapshot in
// which the table's rows were read, so that readers can tell which other
// entries the snapshot entries already account for, and how many rows it
// recorded.
type Baseline struct {
	// Snapshot is the transaction snapshot of the baseline's REPEATABLE
	// READ transaction, as PostgreSQL writes a pg_snapshot
	// ("xmin:xmax:xip1,xip2"). An entry whose tx_id it does not see was
	// committed after the snapshot: its change is not in the snapshot
	// entries, and it applies after them whatever its id.
	Snapshot string `json:"snapshot"`
	// Rows is the number of snapshot entries written for the table.
	Rows int64 `json:"rows"`
}

// IsBaselineMarker reports whether e is the marker entry of a baseline.
func (e *Entry) IsBaselineMarker() bool {
	return e.Operation == OpSnapshot && e.Baseline != nil
}

// Operation is the kind of change an entry records.
type Operation string

// The operations the entry table accepts; its CHECK constraint lists the same.
const (
	OpCreate       Operation = "create"
	OpUpdate       Operation = "update"
	OpDelete       Operation = "delete"
	OpAssociate    Operation = "associate"
	OpDisassociate Operation = "disassociate"
	// OpTruncate records a TRUNCATE of a table registered with
	// RecordTruncate: ObjectID is empty and Changes nil.
	OpTruncate Operation = "truncate"
	// OpSnapshot records an object as a baseline found it: Changes holds
	// every audited column under added_fields, as a create does, and the
	// entry replaces whatever state was known for the object. Its created
	// is the time of the baseline's snapshot. A baseline also writes one
	// OpSnapshot entry per table with an empty ObjectID: the marker, with
	// [Entry.Baseline] set.
	OpSnapshot Operation = "snapshot"
	// OpSuppressed records a statement run under auditpgx.WithoutAudit:
	// one entry per statement and table written, with an empty ObjectID,
	// the reason in Context["reason"], Changes nil, and [Entry.Rows] the
	// number of rows the statement wrote. The rows have no entries of
	// their own, so the state of the table's objects is not known after it.
	OpSuppressed Operation = "suppressed"
)

// Valid reports whether op is one of the operations above.
func (op Operation) Valid() bool {
	switch op {
	case OpCreate, OpUpdate, OpDelete, OpAssociate, OpDisassociate, OpTruncate, OpSnapshot, OpSuppressed:
		return true
	}
	return false
}
