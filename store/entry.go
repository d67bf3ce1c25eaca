package store

import (
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
	// Changes is nil for associate, disassociate and truncate entries.
	Changes              *diff.Changes `json:"changes"`
	RelatedTableName     *string       `json:"related_table_name"`
	RelatedObjectID      *string       `json:"related_object_id"`
	RelatedFieldName     *string       `json:"related_field_name"`
	TxID                 int64         `json:"tx_id"`
	StatementFingerprint *string       `json:"statement_fingerprint"`
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
)

// Valid reports whether op is one of the operations above.
func (op Operation) Valid() bool {
	switch op {
	case OpCreate, OpUpdate, OpDelete, OpAssociate, OpDisassociate, OpTruncate:
		return true
	}
	return false
}
