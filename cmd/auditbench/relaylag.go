package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/auditpgx/auditpgx/internal/bench"
	"github.com/auditpgx/auditpgx/relay"
)

// relayLag runs auditpgx's relay beside the workloads, reading the
// auditpgx-wal variant's slot into an entry table of the same database,
// and samples how far behind it is.
type relayLag struct {
	cfg  relay.Config
	conn *pgx.Conn

	cancel context.CancelFunc
	done   chan error
	wg     sync.WaitGroup

	mu       sync.Mutex
	maxBytes int64
	maxDelay time.Duration
	started  time.Time
}

// relayConfig is the relay of -relay: the slot the auditpgx-wal variant
// checks, and tables of its own.
func relayConfig(dsn string) relay.Config {
	return relay.Config{Source: dsn, Slot: bench.WALSlot, Publication: "auditbench_relay",
		EntryTable: "auditbench_relay_entry", StateTable: "auditbench_relay_state"}
}

// setUpRelay creates the publication and then the slot, before the suite
// would create the slot: pgoutput needs the publication to exist at every
// position it decodes.
func setUpRelay(ctx context.Context, dsn string) error {
	cfg := relayConfig(dsn)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, q := range []string{`DROP TABLE IF EXISTS auditbench_relay_entry, auditbench_relay_state`,
		`DROP PUBLICATION IF EXISTS auditbench_relay`} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return err
		}
	}
	return relay.Setup(ctx, cfg)
}

// startRelayLag starts the relay and the sampler, every 100 ms: the
// slot's unconfirmed WAL in bytes, and for each sampled WAL position the
// time until the relay confirmed it.
func startRelayLag(ctx context.Context, dsn string) (*relayLag, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	r := &relayLag{cfg: relayConfig(dsn), conn: conn, done: make(chan error, 1)}
	rctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	go func() { r.done <- relay.Run(rctx, r.cfg) }()
	// The seeding's WAL first: the lag is the workloads'.
	if _, err := r.waitCaughtUp(ctx, conn, 2*time.Minute); err != nil {
		cancel()
		conn.Close(context.Background())
		return nil, err
	}
	r.started = time.Now()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.sample(rctx)
	}()
	return r, nil
}

type lsnSample struct {
	at  time.Time
	lsn int64
}

func (r *relayLag) sample(ctx context.Context) {
	var pending []lsnSample
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		current, confirmed, err := r.positions(ctx, r.conn)
		if err != nil {
			continue
		}
		now := time.Now()
		pending = append(pending, lsnSample{now, current})
		r.mu.Lock()
		r.maxBytes = max(r.maxBytes, current-confirmed)
		for len(pending) > 0 && pending[0].lsn <= confirmed {
			r.maxDelay = max(r.maxDelay, now.Sub(pending[0].at))
			pending = pending[1:]
		}
		if len(pending) > 0 {
			r.maxDelay = max(r.maxDelay, now.Sub(pending[0].at))
		}
		r.mu.Unlock()
	}
}

// waitCaughtUp waits until the slot has confirmed the server's current
// WAL position, and returns how long that took.
func (r *relayLag) waitCaughtUp(ctx context.Context, conn *pgx.Conn, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	target, _, err := r.positions(ctx, conn)
	if err != nil {
		return 0, err
	}
	for {
		_, confirmed, err := r.positions(ctx, conn)
		if err != nil {
			return 0, err
		}
		if confirmed >= target {
			return time.Since(start), nil
		}
		if time.Since(start) > limit {
			return 0, fmt.Errorf("-relay: the relay did not catch up within %s", limit)
		}
		select {
		case err := <-r.done:
			return 0, fmt.Errorf("-relay: the relay stopped: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// positions returns the server's WAL position and the slot's confirmed
// one, as byte offsets.
func (r *relayLag) positions(ctx context.Context, conn *pgx.Conn) (current, confirmed int64, err error) {
	err = conn.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,
	pg_wal_lsn_diff(confirmed_flush_lsn, '0/0')::bigint FROM pg_replication_slots WHERE slot_name = $1`, r.cfg.Slot).Scan(&current, &confirmed)
	return current, confirmed, err
}

// stop waits for the relay to confirm what was written (at most a
// minute), stops it, and writes the figures.
func (r *relayLag) stop(ctx context.Context, w io.Writer) error {
	defer r.conn.Close(context.Background())
	ended := time.Now()
	// A connection of its own: the sampler's goes on until the relay
	// has caught up.
	conn, err := pgx.Connect(ctx, r.cfg.Source)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	caughtUp, err := r.waitCaughtUp(ctx, conn, time.Minute)
	if err != nil {
		return err
	}
	r.cancel()
	r.wg.Wait()
	if err := <-r.done; err != nil {
		return fmt.Errorf("-relay: %w", err)
	}
	var entries int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM auditbench_relay_entry`).Scan(&entries); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(w, "\n## Relay lag (-relay)\n\nThe relay ran beside the workloads, in this process, reading the auditpgx-wal variant's messages into an entry table with all its indexes in the same database; the slot also decodes every other variant's WAL.\n\n")
	fmt.Fprintf(w, "| entries relayed | over | most unconfirmed WAL | longest wait of a sampled WAL position for its confirmation | caught up after the workloads in |\n|--:|--:|--:|--:|--:|\n")
	fmt.Fprintf(w, "| %d | %s | %.1f MB | %s | %s |\n", entries, ended.Sub(r.started).Round(time.Second),
		float64(r.maxBytes)/1e6, r.maxDelay.Round(time.Millisecond), caughtUp.Round(time.Millisecond))
	return nil
}
