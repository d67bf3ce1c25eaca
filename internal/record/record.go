// Package record is the pipeline's last room: the one place that knows the
// entry table's columns and payload. The rewrite and Baseline write entries
// through Entry and Columns, store reads them through ReadColumns, and
// store's DDL creates the table with CreateTable, so that a column added
// here reaches every writer and reader at once. changes.go builds the jsonb
// expressions of the changes column, which compute inside the statement what
// package diff computes in Go (diff's tests hold the two together).
package record

import (
	"strings"

	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// columns are the entry columns an entry is written with, in the order of
// Entry.Values, context aside; id is an identity column.
const columns = "(created, created_by, operation, table_name, object_id, changes, tx_id, statement_fingerprint, " +
	"related_table_name, related_object_id, related_field_name"

// ContextColumn is the nullable jsonb column holding an entry's request
// context; an entry table made before it existed lacks it until Migrate,
// or AddContextColumn run by the table's owner, adds it.
const ContextColumn = "context"

// ReadColumns are the entry columns readers select, in the order
// store scans them.
const ReadColumns = `id, created, created_by, operation, table_name, object_id, changes, ` +
	`related_table_name, related_object_id, related_field_name, tx_id, statement_fingerprint, context`

// CurrentTx is the SQL of an entry's tx_id: the writing transaction's id,
// assigned by the write itself.
const CurrentTx = "pg_current_xact_id()::text::bigint"

// Operations are the values the entry table's CHECK on operation allows.
var Operations = []string{"create", "update", "delete", "associate", "disassociate", "truncate", "snapshot"}

// Entry is one entry's values as SQL expressions (never as values: the
// caller quotes with sqlq or passes parameters). An empty Created is
// statement_timestamp(); an empty Fingerprint or Related* field is NULL.
type Entry struct {
	Created     string
	Actor       string
	Operation   string
	Table       string
	ObjectID    string
	Changes     string
	Fingerprint string

	RelatedTable, RelatedObjectID, RelatedField string

	// Context is the jsonb expression of the entry's context; empty when
	// the entry is written without the column (InsertInto's withContext).
	Context string
}

// Values renders the expressions in the order of Columns.
func (e Entry) Values() string {
	or := func(s, dflt string) string {
		if s == "" {
			return dflt
		}
		return s
	}
	values := []string{
		or(e.Created, "statement_timestamp()"), e.Actor, e.Operation, e.Table, e.ObjectID, e.Changes, CurrentTx,
		or(e.Fingerprint, "NULL"), or(e.RelatedTable, "NULL"), or(e.RelatedObjectID, "NULL"), or(e.RelatedField, "NULL"),
	}
	if e.Context != "" {
		values = append(values, e.Context)
	}
	return strings.Join(values, ", ")
}

// Select is "SELECT " followed by e's Values.
func (e Entry) Select() string { return "SELECT " + e.Values() }

// InsertInto begins an INSERT of entries into table: the table and its
// columns, context among them when withContext (every Entry then has a
// Context).
func InsertInto(table sqlq.Name, withContext bool) string {
	if withContext {
		return "INSERT INTO " + table.Quoted() + " " + columns + ", " + ContextColumn + ")"
	}
	return "INSERT INTO " + table.Quoted() + " " + columns + ")"
}

// AddContextColumn is the ALTER TABLE that gives an entry table made
// before the context column existed that column.
func AddContextColumn(quoted string) string {
	return "ALTER TABLE " + quoted + " ADD COLUMN IF NOT EXISTS " + ContextColumn + " jsonb"
}

// CreateTable is the CREATE TABLE IF NOT EXISTS of an entry table whose
// quoted name is quoted.
func CreateTable(quoted string) string {
	ops := make([]string, len(Operations))
	for i, op := range Operations {
		ops[i] = sqlq.Literal(op)
	}
	return `CREATE TABLE IF NOT EXISTS ` + quoted + ` (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created               timestamptz NOT NULL DEFAULT statement_timestamp(),
    created_by            text,
    operation             text NOT NULL CHECK (operation IN (` + strings.Join(ops, ", ") + `)),
    table_name            text NOT NULL,
    object_id             text NOT NULL,
    changes               jsonb,
    related_table_name    text,
    related_object_id     text,
    related_field_name    text,
    tx_id                 bigint NOT NULL,
    statement_fingerprint text,
    context               jsonb
)`
}
