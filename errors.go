package auditpgx

import (
	"errors"
	"fmt"

	"github.com/auditpgx/auditpgx/internal/registry"
)

var (
	// ErrUnaudited is wrapped by the error returned for a write to an
	// audited table that auditpgx cannot audit. Nothing was executed.
	ErrUnaudited = errors.New("auditpgx: statement cannot be audited")

	// ErrAppendOnly is wrapped by the error returned for a statement that
	// would change or remove entries. Nothing was executed.
	ErrAppendOnly = errors.New("auditpgx: the entry table is append-only")

	// ErrInvalidRegistration is wrapped by registration errors and by the
	// errors of the catalog check at first use: a missing table, a table
	// without a primary key, a column that does not exist.
	ErrInvalidRegistration = registry.ErrInvalid
)

// UnauditedError says which table a refused statement writes and why it
// cannot be audited. It never includes the statement's text or values.
type UnauditedError struct {
	Table  string // the table as registered, or as written in the statement
	Reason string
}

func (e *UnauditedError) Error() string {
	if e.Table == "" {
		return fmt.Sprintf("%s: %s", ErrUnaudited, e.Reason)
	}
	return fmt.Sprintf("%s: table %q: %s", ErrUnaudited, e.Table, e.Reason)
}

// Unwrap makes errors.Is(err, ErrUnaudited) true.
func (e *UnauditedError) Unwrap() error { return ErrUnaudited }

// ArgumentCountError is returned when an audited statement is given a
// different number of arguments than it has parameters.
type ArgumentCountError struct {
	Want, Got int
}

func (e *ArgumentCountError) Error() string {
	return fmt.Sprintf("auditpgx: statement has %d parameters but %d arguments were given", e.Want, e.Got)
}
