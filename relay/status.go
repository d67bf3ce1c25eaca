package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Status is where a relay's slot and state stand.
type Status struct {
	// Slot is the slot's name.
	Slot string
	// SlotExists reports whether Source has the slot; the other Slot
	// fields are zero when it does not.
	SlotExists bool
	// SlotActive reports whether a relay (or another client) is streaming
	// from the slot.
	SlotActive bool
	// Confirmed is the slot's confirmed_flush_lsn: everything before it
	// was applied.
	Confirmed LSN
	// Restart is the slot's restart_lsn: the oldest WAL the slot keeps.
	Restart LSN
	// Current is the server's pg_current_wal_lsn(): the WAL written so
	// far. With synchronous_commit off, a transaction that committed in
	// the last few wal_writer_delay may not be written yet, and counts in
	// neither Current nor LagBytes until it is.
	Current LSN
	// LagBytes is Current - Confirmed: WAL written since the last
	// confirmation, whether or not it holds entries (WAL is shared by the
	// cluster's databases). A relay that has caught up confirms each
	// position the server reports in a keepalive, so LagBytes falls to 0,
	// or near it while the cluster writes.
	LagBytes int64

	// StateFound reports whether the state table has a row for the slot
	// (never with NDJSON); the fields below are zero when it has none.
	StateFound bool
	// Applied is the state row's LSN: the end of the last transaction
	// whose entries were applied. It lags Confirmed when transactions
	// without entries came after.
	Applied LSN
	// AppliedCommit is that transaction's commit time on Source.
	AppliedCommit time.Time
	// AppliedAt is when the relay applied it.
	AppliedAt time.Time
	// Lag is now - AppliedCommit: how old the newest applied entries are.
	// It also grows while no entries are written; read it with LagBytes.
	Lag time.Duration
}

// ReadStatus reads the slot in Source and the state row in Dest (unless
// cfg.NDJSON is set). A missing slot or state table is not an error: it
// shows as SlotExists or StateFound false.
func ReadStatus(ctx context.Context, cfg Config) (Status, error) {
	s, err := cfg.validate()
	if err != nil {
		return Status{}, err
	}
	st := Status{Slot: s.Slot}
	src, err := pgx.Connect(ctx, s.Source)
	if err != nil {
		return st, fmt.Errorf("auditpgx: relay: connecting to Source: %w", err)
	}
	defer src.Close(context.Background())
	slot, err := lookUpSlot(ctx, src, s.Slot)
	if err != nil {
		return st, err
	}
	var current string
	if err := src.QueryRow(ctx, "SELECT pg_catalog.pg_current_wal_lsn()::text").Scan(&current); err != nil {
		return st, fmt.Errorf("auditpgx: relay: reading Source's WAL position: %w", err)
	}
	if st.Current, err = parseLSN(current); err != nil {
		return st, err
	}
	st.SlotExists, st.SlotActive, st.Confirmed, st.Restart = slot.exists, slot.active, slot.confirmed, slot.restart
	if slot.exists && st.Current > st.Confirmed {
		st.LagBytes = int64(st.Current - st.Confirmed)
	}
	if s.NDJSON != nil {
		return st, nil
	}
	dest := src
	if s.Dest != s.Source {
		if dest, err = pgx.Connect(ctx, s.Dest); err != nil {
			return st, fmt.Errorf("auditpgx: relay: connecting to Dest: %w", err)
		}
		defer dest.Close(context.Background())
	}
	if ok, err := stateTableExists(ctx, dest, s); err != nil || !ok {
		return st, err
	}
	row, found, err := readState(ctx, dest, s)
	if err != nil || !found {
		return st, err
	}
	st.StateFound, st.Applied, st.AppliedCommit, st.AppliedAt = true, row.lsn, row.committed, row.updated
	if !row.committed.IsZero() {
		st.Lag = time.Since(row.committed)
	}
	return st, nil
}
