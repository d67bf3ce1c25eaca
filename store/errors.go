package store

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidTableName is wrapped by the error [DDL] and [Migrate] return
	// for an entry table name they cannot use; the message says why.
	ErrInvalidTableName = errors.New("auditpgx: invalid entry table name")

	// ErrInvalidQuery is wrapped by the error [List] returns for a [Query]
	// that fails validation; the message names the field at fault. The error
	// is a *[QueryError].
	ErrInvalidQuery = errors.New("auditpgx: invalid query")

	// ErrNotFound is wrapped by the error [Get] returns for an entry id that
	// does not exist and by the error [AsOf] returns for an object that did
	// not exist at the time asked about.
	ErrNotFound = errors.New("auditpgx: not found")

	// ErrInconsistent is wrapped by the *[ReplayError] that [Replay] and the
	// functions built on it return when the entries contradict each other.
	ErrInconsistent = errors.New("auditpgx: inconsistent entries")
)

// QueryError is a [Query] field that fails validation.
type QueryError struct {
	// Field is the field at fault as written in Go: "Limit", "Cursor",
	// "Operations[1]", "Changes[0].To".
	Field string
	// Reason says what is wrong, starting with the value where one helps.
	Reason string
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("%s: %s %s", ErrInvalidQuery, e.Field, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalidQuery) true.
func (e *QueryError) Unwrap() error { return ErrInvalidQuery }

func queryError(field, format string, args ...any) error {
	return &QueryError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ReplayError is an entry that cannot be applied to the state rebuilt from
// the entries before it: an update or delete of an object that does not
// exist, a create of one that does, an old value that differs from the
// rebuilt one.
type ReplayError struct {
	EntryID   int64
	Operation Operation
	TableName string
	ObjectID  string
	Reason    string
}

func (e *ReplayError) Error() string {
	return fmt.Sprintf("%s: entry %d (%s of %s %q): %s", ErrInconsistent, e.EntryID, e.Operation,
		e.TableName, e.ObjectID, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInconsistent) true.
func (e *ReplayError) Unwrap() error { return ErrInconsistent }
