package store

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/auditpgx/auditpgx/diff"
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

	// ErrIncomplete is wrapped by the *[IncompleteError] that [AsOf]
	// returns when the object's entries do not account for its state at
	// the time asked: there is a gap in them (an update or delete of an
	// object with no known prior state, or an old value that differs
	// from the rebuilt one), and no create, delete or baseline snapshot
	// after the gap established the whole state again.
	ErrIncomplete = errors.New("auditpgx: incomplete history")
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

// IncompleteError is [AsOf]'s answer for an object whose state at the
// time asked is only partly known: its entries have a gap, typically
// because the object existed before auditing began and its table has not
// been baselined (or was baselined later than At), or because a write that
// auditpgx did not see changed it.
//
// errors.Is(err, ErrIncomplete) is true, and so, through Gap, are
// errors.Is(err, ErrInconsistent) and errors.As(err, **ReplayError).
type IncompleteError struct {
	TableName string
	ObjectID  string
	At        time.Time
	// Gap is the first entry since which the object's state is not fully
	// known, and why it does not fit the state before it.
	Gap *ReplayError
	// Known holds the columns whose values at At are known: those that
	// Gap's entry and the object's later entries (up to At) set, as JSON
	// as in the entries. Columns that none of them set are absent: their
	// values are unknown, not null. Empty when nothing is known.
	Known diff.Image
}

func (e *IncompleteError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s %q at %s is only partly known: entry %d (%s", ErrIncomplete, e.TableName, e.ObjectID,
		e.At.UTC().Format(time.RFC3339Nano), e.Gap.EntryID, e.Gap.Operation)
	if e.Gap.TableName != e.TableName || e.Gap.ObjectID != e.ObjectID {
		fmt.Fprintf(&b, " of %s %q", e.Gap.TableName, e.Gap.ObjectID)
	}
	fmt.Fprintf(&b, ") does not fit the state before it: %s; %d column(s) known since", e.Gap.Reason, len(e.Known))
	return b.String()
}

// Unwrap makes errors.Is(err, ErrIncomplete) true, and errors.Is and
// errors.As reach Gap.
func (e *IncompleteError) Unwrap() []error { return []error{ErrIncomplete, e.Gap} }
