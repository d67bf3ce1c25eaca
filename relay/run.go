package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/auditpgx/auditpgx/internal/sqlq"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Run streams the messages of cfg.Slot and applies their entries, until
// ctx is cancelled, when it returns nil, or until an error: a connection
// lost, a destination write refused, or a [*PayloadError]. Whatever it had
// not confirmed is sent again by the server to the next Run, which applies
// it once (see the package doc). Entries buffered when ctx is cancelled
// are left to that next Run.
//
// Without cfg.Create, the slot, the publication, the state table and,
// with cfg.Seal, the seal table must exist ([Setup] makes them); the entry
// table must exist either way (store.Migrate, or Setup). With cfg.Seal, a
// seal that fails ends Run with its error (see the package doc).
func Run(ctx context.Context, cfg Config) error {
	s, err := cfg.validate()
	if err != nil {
		return err
	}
	err = run(ctx, s)
	if err != nil && ctx.Err() != nil && !errors.As(err, new(*PayloadError)) {
		return nil
	}
	return err
}

func run(ctx context.Context, s settings) (err error) {
	// The sealer cancels the stream with the error that ended sealing.
	ctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	if s.Create {
		if err := ensureSource(ctx, s); err != nil {
			return err
		}
	}
	var sk sink
	if s.NDJSON != nil {
		sk = newNDJSONSink(s.NDJSON)
	} else {
		t, err := openTableSink(ctx, s)
		if err != nil {
			return err
		}
		sk = t
	}
	defer sk.close()

	if s.Seal != nil {
		var sl *sealer
		if sl, err = startSealer(ctx, s, fail); err != nil {
			return err
		}
		defer func() {
			// What failed after a seal error is its consequence.
			if serr := sl.stop(); serr != nil {
				err = serr
			}
		}()
	}

	var w *watcher
	if len(s.Watch) > 0 {
		if w, err = newWatcher(ctx, s); err != nil {
			return err
		}
		defer w.close()
		if err := w.check(ctx); err != nil {
			return err
		}
	}

	conn, err := connectReplication(ctx, s)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())

	st := &stream{s: s, conn: conn, sink: sk, watch: w, applyDone: make(chan error, 1)}
	if err := st.start(ctx); err != nil {
		return err
	}
	err = st.loop(ctx)
	// The sink is closed after its last apply returns.
	if st.inflight != nil {
		<-st.applyDone
	}
	return err
}

// connectReplication opens a replication connection to Source's database.
func connectReplication(ctx context.Context, s settings) (*pgconn.PgConn, error) {
	pc, err := pgconn.ParseConfig(s.Source)
	if err != nil {
		return nil, fmt.Errorf("%w: Source: %v", ErrConfig, err)
	}
	pc.RuntimeParams["replication"] = "database"
	if pc.RuntimeParams["application_name"] == "" {
		pc.RuntimeParams["application_name"] = "auditpgx-relay"
	}
	conn, err := pgconn.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("auditpgx: relay: opening replication connection to Source: %w", err)
	}
	return conn, nil
}

// stream is one Run's replication stream.
type stream struct {
	s     settings
	conn  *pgconn.PgConn
	sink  sink
	watch *watcher // nil without Config.Watch

	// applied is the position up to which every transaction is applied,
	// or had nothing to apply; the relay confirms it.
	applied    LSN
	confirmed  LSN // last sent to the server
	nextStatus time.Time

	inTx bool
	xid  uint32
	cur  []entry // the open transaction's entries
	b    batch   // whole transactions waiting to be applied

	// inflight is the batch a goroutine is applying while the stream
	// reads on, nil when none; applyDone receives its result. One batch
	// at most is in flight, and its position is confirmed only after
	// its commit, so the order of the state row's positions is kept.
	inflight  *batch
	applyDone chan error
	spare     batch // an applied batch, whose buffer the next one reuses
}

// start checks the slot and the state against the server and starts
// streaming.
func (st *stream) start(ctx context.Context) error {
	sys, err := pglogrepl.IdentifySystem(ctx, st.conn)
	if err != nil {
		return fmt.Errorf("auditpgx: relay: IDENTIFY_SYSTEM on Source: %w", err)
	}
	state := st.sink.applied()
	if state > LSN(sys.XLogPos) {
		return fmt.Errorf("auditpgx: relay: state table %q holds %s for slot %q, past the end of Source's WAL (%s): it belongs to another server",
			st.s.state.String(), state, st.s.Slot, LSN(sys.XLogPos))
	}
	confirmed, err := st.slotConfirmed(ctx)
	if err != nil {
		return err
	}
	// The server starts at the later of the two; the relay skips what ends
	// at or before it, and must not confirm an earlier position, which
	// servers before 17 would let the slot move back to.
	st.applied = max(state, confirmed)
	st.confirmed = confirmed
	err = pglogrepl.StartReplication(ctx, st.conn, st.s.Slot, pglogrepl.LSN(state),
		pglogrepl.StartReplicationOptions{PluginArgs: pluginArgs(st.s)})
	if err != nil {
		return fmt.Errorf("auditpgx: relay: starting replication from slot %q at %s: %w", st.s.Slot, state, err)
	}
	st.s.Logger.Info("auditpgx relay started", "slot", st.s.Slot, "state", state.String(), "confirmed", confirmed.String())
	return nil
}

// slotConfirmed returns the slot's confirmed_flush_lsn, failing when
// there is no such logical slot of pgoutput in Source's database.
func (st *stream) slotConfirmed(ctx context.Context) (LSN, error) {
	// A walsender takes the simple query protocol only; the name is
	// validated and quoted.
	rows, err := st.conn.Exec(ctx, `SELECT confirmed_flush_lsn::text, slot_type, plugin, database = pg_catalog.current_database()
FROM pg_catalog.pg_replication_slots WHERE slot_name = `+sqlq.Literal(st.s.Slot)).ReadAll()
	if err != nil {
		return 0, fmt.Errorf("auditpgx: relay: looking up replication slot %q: %w", st.s.Slot, err)
	}
	if len(rows) == 0 || len(rows[0].Rows) == 0 {
		return 0, fmt.Errorf("auditpgx: relay: replication slot %q does not exist in Source (set Create, or call Setup)", st.s.Slot)
	}
	r := rows[0].Rows[0]
	si := slotInfo{logical: string(r[1]) == "logical", plugin: string(r[2]), here: string(r[3]) == "t"}
	if err := si.check(st.s.Slot); err != nil {
		return 0, err
	}
	if r[0] == nil {
		return 0, nil
	}
	return parseLSN(string(r[0]))
}

// loop reads the stream until an error or ctx's end.
func (st *stream) loop(ctx context.Context) error {
	if err := st.sendStatus(ctx, false); err != nil {
		return err
	}
	for {
		now := time.Now()
		if !st.b.empty() && now.Sub(st.b.first) >= st.s.FlushInterval {
			if err := st.flush(ctx); err != nil {
				return err
			}
		}
		if !now.Before(st.nextStatus) {
			if err := st.sendStatus(ctx, true); err != nil {
				return err
			}
			if st.watch != nil {
				if err := st.watch.check(ctx); err != nil {
					return err
				}
			}
		}
		deadline := st.nextStatus
		if f := st.b.first.Add(st.s.FlushInterval); !st.b.empty() && f.Before(deadline) {
			deadline = f
		}
		if f := now.Add(inflightPoll); st.inflight != nil && f.Before(deadline) {
			deadline = f
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		msg, err := st.conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				if err := st.settle(ctx, false); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("auditpgx: relay: reading replication stream: %w", err)
		}
		switch msg := msg.(type) {
		case *pgproto3.CopyData:
			if err := st.copyData(ctx, msg.Data); err != nil {
				return err
			}
			if err := st.settle(ctx, false); err != nil {
				return err
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("auditpgx: relay: replication stream: %w", pgconn.ErrorResponseToPgError(msg))
		case *pgproto3.CopyDone:
			return errors.New("auditpgx: relay: the server ended the replication stream")
		}
	}
}

func (st *stream) copyData(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		k, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return fmt.Errorf("auditpgx: relay: keepalive: %w", err)
		}
		// Every transaction that ended before the server's position has
		// been sent ahead of this message: with none open or waiting,
		// there is nothing before it left to apply.
		if !st.inTx && st.idle() && LSN(k.ServerWALEnd) > st.applied {
			st.applied = LSN(k.ServerWALEnd)
		}
		// Answering a keepalive that moved the position, asked or not,
		// lets the server send the next one, which it holds back until a
		// reply comes.
		return st.sendStatus(ctx, k.ReplyRequested)
	case pglogrepl.XLogDataByteID:
		x, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return fmt.Errorf("auditpgx: relay: XLogData: %w", err)
		}
		m, err := pglogrepl.Parse(x.WALData)
		if err != nil {
			return fmt.Errorf("auditpgx: relay: pgoutput message at %s: %w", LSN(x.WALStart), err)
		}
		return st.message(ctx, m)
	}
	return nil
}

func (st *stream) message(ctx context.Context, m pglogrepl.Message) error {
	switch m := m.(type) {
	case *pglogrepl.BeginMessage:
		st.inTx, st.xid, st.cur = true, m.Xid, st.cur[:0]
		if st.watch != nil {
			st.watch.begin()
		}
	case *pglogrepl.RelationMessage:
		if st.watch != nil {
			return st.watch.relation(ctx, m)
		}
	case *pglogrepl.InsertMessage, *pglogrepl.UpdateMessage, *pglogrepl.DeleteMessage:
		if st.watch != nil && st.inTx {
			return st.watch.change(m)
		}
	case *pglogrepl.LogicalDecodingMessage:
		if !m.Transactional || !st.inTx || m.Prefix != st.s.Prefix {
			return nil
		}
		entries, err := decodePayload(m.Content, st.s.NDJSON != nil)
		if err != nil {
			perr := &PayloadError{LSN: LSN(m.LSN), Xid: st.xid, Err: err}
			// The whole transactions before it are good: apply them, so
			// that the slot waits at the bad one exactly.
			if !st.b.empty() {
				if ferr := st.flush(ctx); ferr != nil {
					return errors.Join(perr, ferr)
				}
			}
			if ferr := st.settle(ctx, true); ferr != nil {
				return errors.Join(perr, ferr)
			}
			return perr
		}
		st.cur = append(st.cur, entries...)
	case *pglogrepl.CommitMessage:
		st.inTx = false
		end := LSN(m.TransactionEndLSN)
		if end > st.applied && st.watch != nil {
			out, err := st.watch.outside(ctx, st.xid, m.CommitTime, st.cur)
			if err != nil {
				return fmt.Errorf("%w (transaction %d, ending at %s)", err, st.xid, end)
			}
			st.cur = append(st.cur, out...)
		}
		switch {
		case end <= st.applied:
			st.s.Logger.Debug("auditpgx relay: skipping a transaction applied before", "end", end.String(), "entries", len(st.cur))
		case len(st.cur) == 0 && st.idle():
			st.applied = end
		default:
			if st.b.empty() {
				st.b.first = time.Now()
			}
			st.b.entries = append(st.b.entries, st.cur...)
			st.b.txs++
			st.b.end, st.b.committed = end, m.CommitTime
			if len(st.b.entries) >= st.s.BatchEntries {
				return st.flush(ctx)
			}
		}
		st.cur = st.cur[:0]
	}
	return nil
}

// idle reports whether no transaction waits to be applied or is being
// applied, so that the stream's position may be confirmed as it moves.
func (st *stream) idle() bool { return st.b.empty() && st.inflight == nil }

// inflightPoll is how often the stream, waiting for the server, looks
// whether the batch in flight has been applied, to confirm it.
const inflightPoll = 2 * time.Millisecond

// flush hands the batch to a goroutine that applies it, after the one in
// flight is applied and confirmed; settle confirms it. The stream reads and
// decodes the next transactions meanwhile, which on a busy slot keeps the
// walsender and the destination's COPY working at once.
func (st *stream) flush(ctx context.Context) error {
	if err := st.settle(ctx, true); err != nil {
		return err
	}
	b := new(batch)
	*b, st.b = st.b, st.spare
	st.b.reset()
	st.inflight = b
	go func() { st.applyDone <- st.sink.apply(ctx, b) }()
	return nil
}

// settle confirms the batch in flight once it is applied, waiting for it
// when wait is set; it returns the apply's error.
func (st *stream) settle(ctx context.Context, wait bool) error {
	if st.inflight == nil {
		return nil
	}
	var err error
	if wait {
		err = <-st.applyDone
	} else {
		select {
		case err = <-st.applyDone:
		default:
			return nil
		}
	}
	b := st.inflight
	st.inflight = nil
	if err != nil {
		return err
	}
	end := b.end
	st.s.Logger.Debug("auditpgx relay: applied", "transactions", b.txs, "entries", len(b.entries), "end", end.String())
	b.reset()
	st.spare = *b
	if st.s.afterCommit != nil {
		if err := st.s.afterCommit(end); err != nil {
			return err
		}
	}
	st.applied = end
	return st.sendStatus(ctx, false)
}

// sendStatus confirms the applied position. periodic marks the updates
// that keep the connection alive; they are sent even with nothing new.
func (st *stream) sendStatus(ctx context.Context, periodic bool) error {
	st.nextStatus = time.Now().Add(statusInterval)
	if !periodic && st.applied == st.confirmed {
		return nil
	}
	pos := pglogrepl.LSN(st.applied)
	err := pglogrepl.SendStandbyStatusUpdate(ctx, st.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pos, WALFlushPosition: pos, WALApplyPosition: pos,
	})
	if err != nil {
		return fmt.Errorf("auditpgx: relay: confirming %s to slot %q: %w", st.applied, st.s.Slot, err)
	}
	st.confirmed = st.applied
	return nil
}
