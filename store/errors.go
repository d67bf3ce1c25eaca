package store

import "errors"

var (
	// ErrInvalidTableName is wrapped by the error [DDL] and [Migrate] return
	// for an entry table name they cannot use; the message says why.
	ErrInvalidTableName = errors.New("auditpgx: invalid entry table name")

	// ErrInvalidQuery is wrapped by the error [List] returns for a [Query]
	// that fails validation; the message names the field at fault.
	ErrInvalidQuery = errors.New("auditpgx: invalid query")
)
