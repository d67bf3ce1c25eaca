package store

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"math"
	"time"
)

// SealOptions configures [Seal].
type SealOptions struct {
	// EntryTable is the entry table, named as for [Query].Table; "" is
	// auditpgx_entry.
	EntryTable string
	// SealTable is the seal table, which must exist ([MigrateSeal]); ""
	// is auditpgx_seal.
	SealTable string
	// Signer, when set, signs every checkpoint Seal writes (see
	// [Checkpoint.SignedMessage]); [Verify] checks the signatures with
	// the public key. Keep it out of the database: whoever holds it can
	// sign a rewritten chain. Nil writes unsigned checkpoints.
	Signer ed25519.PrivateKey
	// From is the checkpoint a new chain continues from when the seal
	// table has none, such as the last checkpoint of an archive whose
	// entries were pruned: the first checkpoint gets Seq From.Seq+1 and
	// Prev From.Hash, and entries up to From.LastID are left unsealed.
	// Nil starts the chain at the table's lowest id, from 32 zero bytes.
	// It is ignored once the seal table has a checkpoint.
	From *Checkpoint
	// Wait is how long Seal waits for the transactions that were writing
	// entries when it started to end; 0 is one minute. See [Seal].
	Wait time.Duration
}

// SealResult is what [Seal] did.
type SealResult struct {
	// Horizon is the largest entry id committed when Seal started (0 for
	// an empty entry table): every entry up to it is now sealed.
	Horizon int64
	// Checkpoints is the number of checkpoints written, Entries the
	// number of entries they hold; both 0 when there was nothing new.
	Checkpoints int
	Entries     int64
	// Last is the seal table's last checkpoint: the last one written, or
	// the one that was last already when there was nothing new. Its Seq
	// is 0 when the seal table has none.
	Last Checkpoint
}

// sealBatch is the number of entries Seal reads per query.
const sealBatch = 50000

// Seal extends the hash chain over the entry table (see [Checkpoint]) to
// every entry committed when it starts, writing one checkpoint per 1000
// entries, and one for the rest, to the seal table. With nothing new to
// seal it writes nothing.
//
// It seals only up to a safe horizon: an entry not yet committed may have
// an id below entries that are, and sealing past it would later report it
// as inserted. Seal reads the largest committed id, M, and the
// transactions then holding a write lock on the entry table (pg_locks,
// prepared transactions included), and waits, polling, until all of them
// have ended. Ids are drawn from the identity sequence one at a time in
// the order of time (Seal refuses a sequence with a CACHE other than 1),
// and a writer holds its lock from before it draws an id, so any
// transaction that drew an id below M was among them or had already
// ended: after the wait, every id up to M is committed or never will be.
// Seal takes no lock and blocks no writer; transactions that begin later
// are not waited for. If the listed ones are still running after
// opts.Wait, Seal writes nothing and returns an error wrapping
// [ErrSealWait] that names their server pids. docs/SECURITY.md gives the
// whole argument.
//
// Entries are read in batches of 50,000 with one query each, and the
// checkpoints of a batch are inserted with one statement once it has been
// read; an error leaves the checkpoints written so far, a valid chain that
// the next Seal extends. Two Seal runs at once do not interleave: the second fails on
// the first checkpoint number the first one wrote.
//
// db should be a *sql.DB or *sql.Conn; any other Querier must be a READ
// COMMITTED transaction, since Seal needs each statement to see what the
// writers it waited for committed. The role needs SELECT on the entry
// table and SELECT and INSERT on the seal table; the application's role
// should not have INSERT on the latter (docs/SECURITY.md).
func Seal(ctx context.Context, db Querier, opts SealOptions) (SealResult, error) {
	entries, err := entryTableName(opts.EntryTable)
	if err != nil {
		return SealResult{}, err
	}
	seal, err := sealTableName(opts.SealTable)
	if err != nil {
		return SealResult{}, err
	}
	if opts.Signer != nil && len(opts.Signer) != ed25519.PrivateKeySize {
		return SealResult{}, fmt.Errorf("auditpgx: seal: SealOptions.Signer is %d bytes long, not an Ed25519 private key (%d)",
			len(opts.Signer), ed25519.PrivateKeySize)
	}
	if opts.Wait <= 0 {
		opts.Wait = time.Minute
	}
	if err := checkSnapshots(ctx, db); err != nil {
		return SealResult{}, err
	}
	if err := checkSequence(ctx, db, entries); err != nil {
		return SealResult{}, err
	}
	last, ok, err := lastCheckpoint(ctx, db, seal)
	if err != nil {
		return SealResult{}, err
	}
	var res SealResult
	// Where the chain goes on from: the last checkpoint, From, or a new
	// chain that starts at the first entry.
	s := sealer{db: db, entries: entries, seal: seal, key: opts.Signer, seq: 1, after: math.MinInt64, fresh: true, res: &res}
	switch {
	case ok:
		res.Last = last
		s.seq, s.after, s.prev, s.fresh = last.Seq+1, last.LastID, last.Hash, false
	case opts.From != nil:
		s.seq, s.after, s.prev, s.fresh = opts.From.Seq+1, opts.From.LastID, opts.From.Hash, false
	}
	h, err := waitHorizon(ctx, db, entries, s.after, opts.Wait)
	if err != nil {
		return res, err
	}
	res.Horizon = h.id
	if h.empty || h.id <= s.after {
		return res, nil
	}
	s.sealedAt = h.at
	return res, s.run(ctx, h.id)
}

// sealer is one Seal run past the horizon check.
type sealer struct {
	db            Querier
	entries, seal tableName
	key           ed25519.PrivateKey
	sealedAt      time.Time

	seq   int64             // the next checkpoint's number
	after int64             // the last id covered by a checkpoint
	prev  [sha256.Size]byte // the chain's hash after it
	fresh bool              // no checkpoint before: start at the first entry
	res   *SealResult
}

// run seals the entries with ids in (s.after, upTo].
func (s *sealer) run(ctx context.Context, upTo int64) error {
	query := `SELECT ` + sealColumns + ` FROM ` + s.entries.Quoted() + ` WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3`
	var (
		row     sealRow
		targets = row.targets()
		seg     *segment
		done    []Checkpoint
		next    = s.after + 1
		cursor  = s.after
	)
	finish := func() {
		c := seg.done(s.key)
		done = append(done, c)
		s.prev, next, seg = c.Hash, seg.next, nil
	}
	for {
		rows, err := s.db.QueryContext(ctx, query, cursor, upTo, sealBatch)
		if err != nil {
			return fmt.Errorf("auditpgx: seal: read entries from %s: %w", s.entries.Quoted(), noContextHint(err))
		}
		n := 0
		for rows.Next() {
			if err := rows.Scan(targets...); err != nil {
				rows.Close()
				return fmt.Errorf("auditpgx: seal: read entries from %s after id %d: %w", s.entries.Quoted(), cursor, err)
			}
			if n > 0 && row.id == cursor {
				rows.Close()
				return fmt.Errorf("auditpgx: seal: %s has two entries with id %d; sealing needs ids to be unique", s.entries.Quoted(), row.id)
			}
			n++
			cursor = row.id
			if seg != nil && !seg.fits(&row) {
				finish()
			}
			if seg == nil {
				// A long run of ids without entries is left between
				// checkpoints rather than listed.
				first := next
				if s.fresh || row.id-next > segmentGaps {
					first = row.id
				}
				s.fresh = false
				seg = newSegment(s.seq, first, s.prev, s.sealedAt)
				s.seq++
			}
			seg.add(&row)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("auditpgx: seal: read entries from %s after id %d: %w", s.entries.Quoted(), cursor, err)
		}
		end := n < sealBatch
		if end && seg != nil {
			finish()
		}
		if len(done) > 0 {
			if err := insertCheckpoints(ctx, s.db, s.seal, done); err != nil {
				return err
			}
			for _, c := range done {
				s.res.Checkpoints++
				s.res.Entries += int64(c.Count)
			}
			s.res.Last = done[len(done)-1]
			done = done[:0]
		}
		if end {
			return nil
		}
	}
}
