package store

import (
	"errors"
	"fmt"
)

// ErrTampered is wrapped by the *[VerifyError] that [Verify] returns when
// the entry table or the seal table differs from what was sealed.
var ErrTampered = errors.New("auditpgx: entries or checkpoints changed since sealing")

// TamperKind is what [Verify] found changed.
type TamperKind string

const (
	// EntryEdited is an entry whose columns differ from when it was
	// sealed.
	EntryEdited TamperKind = "edited"
	// EntryDeleted is an entry that was sealed and is gone.
	EntryDeleted TamperKind = "deleted"
	// EntryInserted is an entry whose id had no entry when the ids around
	// it were sealed: one of a checkpoint's gaps, an id between two
	// checkpoints, or below the first.
	EntryInserted TamperKind = "inserted"
	// CheckpointAltered is a checkpoint changed, removed or forged: it
	// does not follow the one before it (number, ids or hash), its
	// signature does not verify, its fields contradict each other, or
	// its hash or digests do not match entries that match the rest of it.
	CheckpointAltered TamperKind = "checkpoint"
)

// VerifyError is the first difference [Verify] found, in id order.
// errors.Is(err, ErrTampered) is true.
type VerifyError struct {
	Kind TamperKind
	// EntryID is the entry at fault; 0 for CheckpointAltered.
	EntryID int64
	// Checkpoint is the Seq of the checkpoint at fault or that covers the
	// entry (for an entry between two checkpoints, the later one).
	Checkpoint int64
	// Reason says what differs, in words; it never holds an entry's
	// values.
	Reason string
}

func (e *VerifyError) Error() string {
	if e.Kind == CheckpointAltered {
		return fmt.Sprintf("%s: checkpoint %d %s", ErrTampered, e.Checkpoint, e.Reason)
	}
	return fmt.Sprintf("%s: entry %d %s", ErrTampered, e.EntryID, e.Reason)
}

// Unwrap makes errors.Is(err, ErrTampered) true.
func (e *VerifyError) Unwrap() error { return ErrTampered }

func entryEdited(id, seq int64) *VerifyError {
	return &VerifyError{Kind: EntryEdited, EntryID: id, Checkpoint: seq,
		Reason: fmt.Sprintf("was changed since checkpoint %d sealed it", seq)}
}

func entryDeleted(id, seq int64) *VerifyError {
	return &VerifyError{Kind: EntryDeleted, EntryID: id, Checkpoint: seq,
		Reason: fmt.Sprintf("was deleted since checkpoint %d sealed it", seq)}
}

func entryInserted(id, seq int64, where string) *VerifyError {
	return &VerifyError{Kind: EntryInserted, EntryID: id, Checkpoint: seq,
		Reason: "was inserted after sealing: " + where}
}

func checkpointAltered(seq int64, format string, args ...any) *VerifyError {
	return &VerifyError{Kind: CheckpointAltered, Checkpoint: seq, Reason: fmt.Sprintf(format, args...)}
}
