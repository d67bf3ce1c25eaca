package relay

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// Defaults of Config's fields.
const (
	DefaultSlot          = "auditpgx"
	DefaultPublication   = "auditpgx"
	DefaultPrefix        = "auditpgx"
	DefaultEntryTable    = "auditpgx_entry"
	DefaultStateTable    = "auditpgx_relay_state"
	DefaultBatchEntries  = 5000
	DefaultFlushInterval = 200 * time.Millisecond
	DefaultSealTable     = "auditpgx_seal"
	DefaultSealInterval  = time.Minute
)

// statusInterval is how often Run confirms its position to the server when
// the server does not ask sooner; well under the default
// wal_sender_timeout of 60 s.
// Tests lower it.
var statusInterval = 10 * time.Second

// ErrConfig is wrapped by the errors of Run, Setup and ReadStatus that a
// Config's field causes.
var ErrConfig = errors.New("auditpgx: relay config")

// Config says where the relay reads messages and where it writes entries.
// Zero fields take the defaults their comments give.
type Config struct {
	// Source is the postgres:// URL of the database whose WAL is read.
	// The role needs the REPLICATION attribute. Required.
	Source string
	// Dest is the postgres:// URL of the database that holds the entry
	// table and the state table. Default: Source.
	Dest string
	// Slot is the logical replication slot, of the pgoutput plugin, in
	// Source's database: lowercase letters, digits and underscores.
	// Default "auditpgx".
	Slot string
	// Publication is passed to pgoutput, which requires one; it may have
	// no tables, as messages do not belong to a table. Default "auditpgx".
	Publication string
	// Prefix is the prefix of the messages to read. Default "auditpgx".
	Prefix string
	// EntryTable is the entry table in Dest, a name as SQL writes it,
	// possibly schema-qualified. Default "auditpgx_entry".
	EntryTable string
	// StateTable is the relay's state table in Dest, a name as SQL writes
	// it. Default "auditpgx_relay_state".
	StateTable string
	// Create makes Run create the slot, the publication and the state
	// table when they are missing, as Setup does. Without it, a missing
	// slot is an error.
	Create bool
	// BatchEntries is how many entries make Run apply the transactions it
	// holds at the next commit. Default 5000.
	BatchEntries int
	// FlushInterval is the longest a committed transaction waits for more
	// to join its batch. Default 200 ms.
	FlushInterval time.Duration
	// Watch lists registered tables whose committed writes no auditpgx
	// entry of their transaction accounts for (psql sessions, functions,
	// triggers, other applications) the relay records as entries with
	// created_by NULL and context {"source": "outside"} (docs/SINKS.md).
	// Their row changes come through the publication, which must hold
	// them (Setup and Create add them), with REPLICA IDENTITY FULL.
	Watch []WatchTable
	// SetReplicaIdentity lets Run and Setup set REPLICA IDENTITY FULL on a
	// watched table that lacks it; without it such a table is an error
	// that names the statement to run.
	SetReplicaIdentity bool
	// NDJSON, when set, receives each entry as one line of JSON instead of
	// the entry table, at least once rather than exactly once (see the
	// package doc). Dest, EntryTable and StateTable are then unused.
	NDJSON io.Writer
	// Seal, when set, makes Run seal the entry table into a seal table of
	// Dest, as store.Seal does, when it starts and then every
	// Seal.Interval (see the package doc). A seal that fails ends Run,
	// unless it only gave up waiting for writers or found its checkpoints
	// written by another sealer. It cannot go with
	// NDJSON. Default: no sealing.
	Seal *SealConfig
	// Logger receives each batch applied and each seal at Debug, each
	// start at Info, and each seal that gave up waiting for writers at
	// Warn. Default: discard.
	Logger *slog.Logger
}

// SealConfig is Config.Seal: how the relay seals the entry table.
type SealConfig struct {
	// Interval is the time from the end of one seal to the start of the
	// next. Default 1 minute.
	Interval time.Duration
	// Table is the seal table in Dest, a name as SQL writes it, possibly
	// schema-qualified. It must exist (store.MigrateSeal, or Setup),
	// unless Config.Create is set, when Run creates it. Default
	// "auditpgx_seal".
	Table string
	// Signer, when set, signs every checkpoint with this Ed25519 key
	// (store.SealOptions.Signer). Default: unsigned checkpoints.
	Signer ed25519.PrivateKey
	// Wait is how long a seal waits for the transactions that were
	// writing to the entry table when it started to end; past it, that
	// seal writes nothing, is logged at Warn, and the next interval tries
	// again. Default: Interval.
	Wait time.Duration
}

// settings is a Config with its defaults applied and its names parsed.
type settings struct {
	Config
	entry, state sqlq.Name
	sealTable    sqlq.Name // with Seal
	// afterCommit runs after a batch's destination commit and before its
	// confirmation; an error stops Run there. Tests set it through
	// testHookAfterCommit.
	afterCommit func(end LSN) error
}

// testHookAfterCommit is read by each Run as it starts, into
// settings.afterCommit; only tests, which do not run in parallel, set it.
var testHookAfterCommit func(end LSN) error

// validate applies the defaults and checks the fields.
func (c Config) validate() (settings, error) {
	s := settings{Config: c, afterCommit: testHookAfterCommit}
	if s.Source == "" {
		return s, fmt.Errorf("%w: Source is empty", ErrConfig)
	}
	if s.Dest == "" {
		s.Dest = s.Source
	}
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&s.Slot, DefaultSlot)
	def(&s.Publication, DefaultPublication)
	def(&s.Prefix, DefaultPrefix)
	def(&s.EntryTable, DefaultEntryTable)
	def(&s.StateTable, DefaultStateTable)
	if s.BatchEntries <= 0 {
		s.BatchEntries = DefaultBatchEntries
	}
	if s.FlushInterval <= 0 {
		s.FlushInterval = DefaultFlushInterval
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if err := validSlotName(s.Slot); err != nil {
		return s, fmt.Errorf("%w: Slot %q %v", ErrConfig, s.Slot, err)
	}
	if len(s.Publication) > sqlq.MaxIdentLen {
		return s, fmt.Errorf("%w: Publication %q is longer than %d bytes", ErrConfig, s.Publication, sqlq.MaxIdentLen)
	}
	var err error
	if s.entry, err = sqlq.ParseName(s.EntryTable); err != nil {
		return s, fmt.Errorf("%w: EntryTable %q: %v", ErrConfig, s.EntryTable, err)
	}
	if s.state, err = sqlq.ParseName(s.StateTable); err != nil {
		return s, fmt.Errorf("%w: StateTable %q: %v", ErrConfig, s.StateTable, err)
	}
	for _, w := range s.Watch {
		if _, err := sqlq.ParseName(w.Table); err != nil {
			return s, fmt.Errorf("%w: Watch %q: %v", ErrConfig, w.Table, err)
		}
	}
	if s.Seal != nil {
		if err := s.validateSeal(); err != nil {
			return s, err
		}
	}
	return s, nil
}

// validateSeal applies Seal's defaults, to a copy, and checks its fields.
func (s *settings) validateSeal() error {
	sc := *s.Seal
	s.Seal = &sc
	if s.NDJSON != nil {
		return fmt.Errorf("%w: Seal needs an entry table, and NDJSON has none", ErrConfig)
	}
	if sc.Interval <= 0 {
		sc.Interval = DefaultSealInterval
	}
	if sc.Wait <= 0 {
		sc.Wait = sc.Interval
	}
	if sc.Table == "" {
		sc.Table = DefaultSealTable
	}
	var err error
	if s.sealTable, err = sqlq.ParseName(sc.Table); err != nil {
		return fmt.Errorf("%w: Seal.Table %q: %v", ErrConfig, sc.Table, err)
	}
	if sc.Signer != nil && len(sc.Signer) != ed25519.PrivateKeySize {
		return fmt.Errorf("%w: Seal.Signer is %d bytes long, not an Ed25519 private key (%d)", ErrConfig, len(sc.Signer), ed25519.PrivateKeySize)
	}
	return nil
}

// validSlotName applies the server's rule for slot names, which
// START_REPLICATION takes unquoted.
func validSlotName(name string) error {
	if len(name) > sqlq.MaxIdentLen {
		return fmt.Errorf("is longer than %d bytes", sqlq.MaxIdentLen)
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return errors.New("may hold only lowercase letters, digits and underscores")
		}
	}
	return nil
}
