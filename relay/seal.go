package relay

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/auditpgx/auditpgx/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// sealer seals Dest's entry table in a goroutine of its own while the
// stream reads on, through a connection of its own: Seal may wait up to
// Config.Seal.Wait for writers, which the stream must not.
type sealer struct {
	s      settings
	db     *sql.DB
	cancel context.CancelFunc
	done   chan struct{}
	err    error // what ended sealing; read after done
}

// startSealer checks the seal table, or with Create creates it, and
// starts sealing at once and then every Interval. A seal error cancels
// ctx through fail with that error.
func startSealer(ctx context.Context, s settings, fail context.CancelCauseFunc) (*sealer, error) {
	pc, err := pgx.ParseConfig(s.Dest)
	if err != nil {
		return nil, fmt.Errorf("%w: Dest: %v", ErrConfig, err)
	}
	db := stdlib.OpenDB(*pc)
	db.SetMaxOpenConns(1)
	if err := prepareSealTable(ctx, db, s); err != nil {
		db.Close()
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	sl := &sealer{s: s, db: db, cancel: cancel, done: make(chan struct{})}
	go sl.loop(sctx, fail)
	return sl, nil
}

// prepareSealTable fails when the seal table is missing, unless Create
// lets it create the table.
func prepareSealTable(ctx context.Context, db *sql.DB, s settings) error {
	if s.Create {
		return store.MigrateSeal(ctx, db, s.sealTable.Quoted())
	}
	var ok bool
	if err := db.QueryRowContext(ctx, "SELECT pg_catalog.to_regclass($1) IS NOT NULL", s.sealTable.Quoted()).Scan(&ok); err != nil {
		return fmt.Errorf("auditpgx: relay: looking up seal table %q: %w", s.sealTable.String(), err)
	}
	if !ok {
		return fmt.Errorf("auditpgx: relay: seal table %q does not exist in Dest (set Create, or call Setup)", s.sealTable.String())
	}
	return nil
}

func (sl *sealer) loop(ctx context.Context, fail context.CancelCauseFunc) {
	defer close(sl.done)
	for {
		if err := sl.seal(ctx); err != nil {
			// An error that the relay's stopping caused is no failure.
			if ctx.Err() == nil {
				sl.err = err
				fail(err)
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(sl.s.Seal.Interval):
		}
	}
}

// seal runs store.Seal once. Writers that outlast Wait, and another seal
// run (auditpgx seal from cron) writing the same checkpoints first, are no
// error: the next interval tries again, from the checkpoints there are.
func (sl *sealer) seal(ctx context.Context) error {
	r, err := store.Seal(ctx, sl.db, store.SealOptions{
		EntryTable: sl.s.entry.Quoted(),
		SealTable:  sl.s.sealTable.Quoted(),
		Signer:     sl.s.Seal.Signer,
		Wait:       sl.s.Seal.Wait,
	})
	if errors.Is(err, store.ErrSealWait) || errors.Is(err, store.ErrSealConflict) {
		sl.s.Logger.Warn("auditpgx relay: not sealed this time; trying again at the next interval",
			"table", sl.s.sealTable.String(), "error", err.Error())
		return nil
	}
	if err != nil {
		return fmt.Errorf("auditpgx: relay: sealing %q into seal table %q: %w", sl.s.entry.String(), sl.s.sealTable.String(), err)
	}
	sl.s.Logger.Debug("auditpgx relay: sealed", "checkpoints", r.Checkpoints, "entries", r.Entries, "horizon", r.Horizon)
	return nil
}

// stop ends sealing, waits for a seal under way to return, closes the
// connection, and returns the error that ended sealing before, if any.
func (sl *sealer) stop() error {
	sl.cancel()
	<-sl.done
	sl.db.Close()
	return sl.err
}
