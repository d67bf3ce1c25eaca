package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// stateRow is a slot's row of the state table.
type stateRow struct {
	lsn       LSN
	committed time.Time // zero when unknown
	updated   time.Time
}

// createStateTable creates the state table if it does not exist.
func createStateTable(ctx context.Context, db execer, s settings) error {
	_, err := db.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+s.state.Quoted()+` (
	slot      text PRIMARY KEY,
	lsn       pg_lsn NOT NULL,
	committed timestamptz,
	updated   timestamptz NOT NULL
)`)
	if err != nil {
		return fmt.Errorf("auditpgx: relay: creating state table %q: %w", s.state.String(), err)
	}
	return nil
}

// stateTableExists reports whether the state table exists.
func stateTableExists(ctx context.Context, db querier, s settings) (bool, error) {
	var ok bool
	err := db.QueryRow(ctx, "SELECT pg_catalog.to_regclass($1) IS NOT NULL", s.state.Quoted()).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("auditpgx: relay: looking up state table %q: %w", s.state.String(), err)
	}
	return ok, nil
}

// readState returns the slot's state row; found is false when it has none.
func readState(ctx context.Context, db querier, s settings) (row stateRow, found bool, err error) {
	var lsn string
	var committed *time.Time
	err = db.QueryRow(ctx, "SELECT lsn::text, committed, updated FROM "+s.state.Quoted()+" WHERE slot = $1", s.Slot).
		Scan(&lsn, &committed, &row.updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return stateRow{}, false, nil
	}
	if err != nil {
		return stateRow{}, false, fmt.Errorf("auditpgx: relay: reading state table %q: %w", s.state.String(), err)
	}
	if row.lsn, err = parseLSN(lsn); err != nil {
		return stateRow{}, false, fmt.Errorf("auditpgx: relay: state table %q: %w", s.state.String(), err)
	}
	if committed != nil {
		row.committed = *committed
	}
	return row, true, nil
}

// writeState moves the slot's row from prev to lsn. It fails when the row
// no longer holds prev (0/0 standing for no row): another relay, or an
// operator, moved it, and writing on would apply entries twice.
func writeState(ctx context.Context, tx pgx.Tx, s settings, prev, lsn LSN, committed time.Time) error {
	var c *time.Time
	if !committed.IsZero() {
		c = &committed
	}
	tag, err := tx.Exec(ctx, "INSERT INTO "+s.state.Quoted()+` AS s (slot, lsn, committed, updated)
VALUES ($1, $2::text::pg_lsn, $3, pg_catalog.clock_timestamp())
ON CONFLICT (slot) DO UPDATE SET lsn = excluded.lsn, committed = excluded.committed, updated = excluded.updated
WHERE s.lsn = $4::text::pg_lsn`, s.Slot, lsn.String(), c, prev.String())
	if err != nil {
		return fmt.Errorf("auditpgx: relay: writing state table %q: %w", s.state.String(), err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("auditpgx: relay: state table %q: the row of slot %q no longer holds %s, where this relay left it; another relay may be writing", s.state.String(), s.Slot, prev)
	}
	return nil
}

// execer and querier are what this package needs of *pgx.Conn and pgx.Tx.
type (
	execer interface {
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	}
	querier interface {
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	}
)
