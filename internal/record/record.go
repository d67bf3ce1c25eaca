// Package record is the pipeline's last room: the one place that knows the
// entry table's columns and payload. The rewrite and Baseline write entries
// through Entry and Columns, store reads them through ReadColumns, and
// store's DDL creates the table with CreateTable, so that a column added
// here reaches every writer and reader at once. changes.go builds the jsonb
// expressions of the changes column, which compute inside the statement what
// package diff computes in Go (diff's tests hold the two together).
package record

import (
	"context"
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

// Suppressed is the operation of the one entry a statement run under
// auditpgx.WithoutAudit writes for each audited table it writes.
const Suppressed = "suppressed"

// Operations are the values the entry table's CHECK on operation allows.
var Operations = []string{"create", "update", "delete", "associate", "disassociate", "truncate", "snapshot", Suppressed}

// SuppressedSQL is the changes of a suppressed entry: {"rows": n}, where
// count is the SQL of n.
func SuppressedSQL(count string) string {
	return "jsonb_build_object('rows', " + count + ")"
}

// operationCheck is the CHECK on operation, as CreateTable writes it.
func operationCheck() string {
	ops := make([]string, len(Operations))
	for i, op := range Operations {
		ops[i] = sqlq.Literal(op)
	}
	return "CHECK (operation IN (" + strings.Join(ops, ", ") + "))"
}

// OperationCheckQuery returns the names of the CHECK constraints on the
// operation column of the entry table $1 (a name as SQL writes it) that do
// not allow every one of Operations: those an entry table made before an
// operation was added still has, until WidenOperationCheck replaces them.
// pg_get_constraintdef reads only this table's constraints (the
// MATERIALIZED query): on another table's, dropped meanwhile by another
// session, it fails with "could not open relation".
const OperationCheckQuery = `WITH c AS MATERIALIZED (SELECT c.oid, c.conname FROM pg_catalog.pg_constraint c
	JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
	WHERE c.conrelid = pg_catalog.to_regclass($1) AND c.contype = 'c' AND a.attname = 'operation')
	SELECT conname FROM c WHERE NOT pg_catalog.pg_get_constraintdef(oid) LIKE '%''` + Suppressed + `''%' ORDER BY conname`

// WidenOperationCheck is the ALTER TABLE that replaces the entry table's
// CHECK constraint named constraint by one that allows every one of
// Operations. It is NOT VALID: the rows already there met the narrower
// check, and the table is not scanned under the lock the ALTER takes; new
// rows are checked all the same.
func WidenOperationCheck(quoted, constraint string) string {
	c := sqlq.Ident(constraint)
	return "ALTER TABLE " + quoted + " DROP CONSTRAINT " + c + ", ADD CONSTRAINT " + c + " " + operationCheck() + " NOT VALID"
}

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
	return createTable(quoted, "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "", "", "")
}

// CreatePartitionedTable is the CREATE TABLE IF NOT EXISTS of an entry
// table partitioned by range on created: its primary key includes the
// partition key, as PostgreSQL requires, and id is drawn from the
// sequence seq (a name as SQL writes it, which must exist) rather than an
// identity, which partitioned tables have only from PostgreSQL 17. The
// CHECK on operation is named check (quoted), as PostgreSQL names that of
// CreateTable: a partition attached to the table must have a CHECK of
// that name, and an unpartitioned entry table in the same schema, such as
// one about to be attached, would make PostgreSQL choose another.
func CreatePartitionedTable(quoted, seq, check string) string {
	return createTable(quoted, "bigint NOT NULL DEFAULT nextval("+sqlq.Literal(seq)+"::regclass)",
		"CONSTRAINT "+check+" ", ",\n    PRIMARY KEY (id, created)", " PARTITION BY RANGE (created)")
}

func createTable(quoted, id, checkName, constraints, partitioning string) string {
	return `CREATE TABLE IF NOT EXISTS ` + quoted + ` (
    id                    ` + id + `,
    created               timestamptz NOT NULL DEFAULT statement_timestamp(),
    created_by            text,
    operation             text NOT NULL ` + checkName + operationCheck() + `,
    table_name            text NOT NULL,
    object_id             text NOT NULL,
    changes               jsonb,
    related_table_name    text,
    related_object_id     text,
    related_field_name    text,
    tx_id                 bigint NOT NULL,
    statement_fingerprint text,
    context               jsonb` + constraints + `
)` + partitioning
}

type migratingKey struct{}

// Migrating returns a context under which the driver hands statements to
// the server without planning them, and then forgets what it knows of the
// catalog, as after any DDL: those of store's Migrate, Maintain, Prune and
// Restore, which alone may alter the entry table, its partitions and its
// rows that the driver otherwise keeps append-only. Only this module can
// make such a context.
func Migrating(ctx context.Context) context.Context {
	return context.WithValue(ctx, migratingKey{}, true)
}

// IsMigrating reports whether ctx was made by Migrating.
func IsMigrating(ctx context.Context) bool {
	return ctx.Value(migratingKey{}) != nil
}
