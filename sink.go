package auditpgx

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/auditpgx/auditpgx/internal/record"
	"github.com/auditpgx/auditpgx/internal/registry"
)

// Sink is where a registry's entries go: TableSink or WALSink.
type Sink interface {
	sink()
}

// TableSink, the default, inserts entries into the registry's entry table
// in the audited statement itself: a transaction reads its own entries.
type TableSink struct{}

func (TableSink) sink() {}

// WALSink sends each audited statement's entries as transactional logical
// decoding messages, pg_logical_emit_message(true, Prefix, payload): written
// to the WAL, committed or rolled back with the change, with no row and no
// index to maintain. A relay (package relay, `auditpgx relay`) reading Slot
// writes them to an entry table, here or on another server. It needs
// PostgreSQL 14 or later, wal_level = logical and Slot: a write whose
// messages no slot would read fails with ErrWALSinkUnavailable instead
// (docs/SINKS.md).
type WALSink struct {
	// Slot is the logical replication slot the relay reads; the audited
	// statement checks that it exists in its database. Default "auditpgx".
	Slot string
	// Prefix is the messages' prefix. Default "auditpgx".
	Prefix string
	// ChunkRows is the most entries one message holds: a statement that
	// writes more rows sends several. Default 1,000.
	ChunkRows int
}

func (WALSink) sink() {}

// ErrWALSinkUnavailable is wrapped by the error of an audited write with the
// WAL sink whose entries no relay could read: wal_level is not logical, the
// slot does not exist in the database, or the server predates PostgreSQL 14.
// Nothing was written. The server's error, when there is one, is wrapped
// too.
var ErrWALSinkUnavailable = errors.New("auditpgx: the WAL sink cannot deliver entries")

// walConfig checks a sink and returns the WAL sink's settings, or nil for
// the table sink.
func walConfig(s Sink) (*record.WAL, error) {
	switch s := s.(type) {
	case nil, TableSink, *TableSink:
		return nil, nil
	case *WALSink:
		if s == nil {
			return nil, nil
		}
		return walConfig(*s)
	case WALSink:
		w := &record.WAL{Slot: s.Slot, Prefix: s.Prefix, ChunkRows: s.ChunkRows}
		if w.Slot == "" {
			w.Slot = "auditpgx"
		}
		if w.Prefix == "" {
			w.Prefix = "auditpgx"
		}
		if !validSlot(w.Slot) {
			return nil, fmt.Errorf("%w: WALSink.Slot %q: a replication slot's name is 1 to 63 lower-case letters, digits and underscores", registry.ErrInvalid, w.Slot)
		}
		if !utf8.ValidString(w.Prefix) || strings.IndexByte(w.Prefix, 0) >= 0 {
			return nil, fmt.Errorf("%w: WALSink.Prefix is not valid UTF-8 or holds a NUL byte", registry.ErrInvalid)
		}
		if s.ChunkRows < 0 {
			return nil, fmt.Errorf("%w: WALSink.ChunkRows %d is negative", registry.ErrInvalid, s.ChunkRows)
		}
		return w, nil
	}
	return nil, fmt.Errorf("%w: unknown sink %T", registry.ErrInvalid, s)
}

func validSlot(name string) bool {
	if len(name) == 0 || len(name) > 63 {
		return false
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
