package store

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"math"
)

// VerifyOptions configures [Verify].
type VerifyOptions struct {
	// EntryTable is the entry table, named as for [Query].Table; "" is
	// auditpgx_entry.
	EntryTable string
	// SealTable is the seal table; "" is auditpgx_seal.
	SealTable string
	// PublicKey, when set, requires every checkpoint verified to carry a
	// signature that it verifies. Nil checks no signature.
	PublicKey ed25519.PublicKey
	// FromID starts at the checkpoint that covers this entry id (or the
	// first after it), taking that checkpoint's Prev as given: entries
	// below are not checked, such as those pruned. 0 starts at the first
	// checkpoint, which must then be number 1 with a Prev of 32 zero bytes
	// (or follow From), and no entry may lie below it.
	FromID int64
	// From is the checkpoint before the first one verified, such as the
	// last checkpoint of an archive of pruned entries: verification
	// starts at checkpoint From.Seq+1 (unless FromID says otherwise),
	// which must follow it (number, ids and hash). Entries up to
	// From.LastID are not checked.
	From *Checkpoint
	// Archives are archives of pruned entries ([PruneOptions].ArchiveDir):
	// paths of archives (NAME.ndjson.gz), of their manifests, or of
	// directories whose every manifest is taken. Each is first checked
	// against its manifest; its entries then stand in for those the
	// entry table no longer holds (an entry the table holds too, such as
	// one restored, is read from the table), so that the chain verifies
	// across pruned entries from its first checkpoint. The chain
	// positions the manifests recorded when the entries were pruned
	// ([ArchiveManifest].Seal) must still be the seal table's.
	Archives []string
	// Expect are checkpoints recorded outside the database, such as the
	// last one Seal or Verify reported, kept in a log or a ticket: each
	// must be in the chain verified, with that hash. A chain rewritten
	// from an entry on, or one whose newest checkpoints were deleted (a
	// valid, shorter chain), then fails. A checkpoint before the first
	// one verified (FromID, From) is not checked.
	Expect []CheckpointHash
}

// CheckpointHash is a checkpoint's number and hash, as recorded outside
// the database ([VerifyOptions].Expect).
type CheckpointHash struct {
	Seq  int64
	Hash [sha256.Size]byte
}

// VerifyResult is how much [Verify] verified; after a difference, how
// much it verified before it.
type VerifyResult struct {
	// Checkpoints is the number of checkpoints verified, Entries the
	// entries they hold.
	Checkpoints int
	Entries     int64
	// FirstID and LastID bound the ids of the checkpoints verified; both
	// 0 when none was.
	FirstID, LastID int64
	// Last is the last checkpoint verified; its Seq is 0 when none was.
	Last Checkpoint
	// Unsealed is the number of entries after the last checkpoint (all of
	// them when there is none): not sealed yet, so not verified. It is
	// not counted when Verify returns an error.
	Unsealed int64
	// Signed is true when PublicKey verified the signature of every
	// checkpoint verified.
	Signed bool
}

// verifyBatch is the number of checkpoints Verify reads per query; the
// entries they cover are read with one query.
const verifyBatch = 50

// Verify recomputes the hash chain of the seal table's checkpoints from
// the entries, in id order, and returns the first difference as a
// *[VerifyError] (errors.Is(err, [ErrTampered])) naming the entry or
// checkpoint at fault:
//
//   - an entry whose columns changed ([EntryEdited]), from the digest its
//     checkpoint kept of it;
//   - an entry that was sealed and is gone ([EntryDeleted]);
//   - an entry whose id was unused when sealed ([EntryInserted]): one of
//     a checkpoint's gaps, an id between checkpoints, or below the first;
//   - a checkpoint that does not follow the one before it, is missing,
//     contradicts itself, has a signature that PublicKey does not verify,
//     or whose hash does not match entries that match its digests
//     ([CheckpointAltered]).
//
// Entries after the last checkpoint are not an error: VerifyResult
// counts them as Unsealed. Other errors (the database, a seal table that
// does not exist, a checkpoint format this release does not know) are
// not a *VerifyError.
//
// Without a signing key, anyone who can write both tables can rewrite
// entries and the checkpoints after them consistently; signed
// checkpoints, or a checkpoint's Hash kept outside the database, are what
// make that evident (docs/SECURITY.md). Deleting the last checkpoints
// leaves a valid, shorter chain: compare Last with a copy kept outside,
// or pass that copy as VerifyOptions.Expect.
//
// Entries are read in batches with one query each. Verify takes no lock
// and may run while writes and Seal go on.
func Verify(ctx context.Context, db Querier, opts VerifyOptions) (VerifyResult, error) {
	entries, err := entryTableName(opts.EntryTable)
	if err != nil {
		return VerifyResult{}, err
	}
	seal, err := sealTableName(opts.SealTable)
	if err != nil {
		return VerifyResult{}, err
	}
	if opts.PublicKey != nil && len(opts.PublicKey) != ed25519.PublicKeySize {
		return VerifyResult{}, fmt.Errorf("auditpgx: verify: VerifyOptions.PublicKey is %d bytes long, not an Ed25519 public key (%d)",
			len(opts.PublicKey), ed25519.PublicKeySize)
	}
	v := &verifier{db: db, entries: entries, seal: seal, key: opts.PublicKey, lower: math.MinInt64,
		scan: newCheckpointScanner(), res: VerifyResult{Signed: opts.PublicKey != nil}, expect: map[int64][sha256.Size]byte{}}
	if len(opts.Archives) > 0 {
		if v.archives, err = openVerifyArchives(opts.Archives); err != nil {
			return VerifyResult{}, err
		}
		defer v.archives.close()
	}
	switch {
	case opts.From != nil:
		from := *opts.From
		v.prev, v.lower = &from, from.LastID
	case opts.FromID != 0:
		v.trustFirst = true
	}
	startSeq := int64(math.MinInt64)
	if opts.From != nil {
		startSeq = opts.From.Seq + 1
	}
	if opts.FromID != 0 {
		err := queryRowInto(ctx, db, `SELECT seq FROM `+seal.Quoted()+` WHERE last_id >= $1 ORDER BY last_id LIMIT 1`,
			[]any{opts.FromID}, &startSeq)
		if errors.Is(err, sql.ErrNoRows) {
			startSeq = math.MaxInt64 // nothing sealed from there on
		} else if err != nil {
			return VerifyResult{}, fmt.Errorf("auditpgx: verify: read seal table %s: %w", seal.Quoted(), noSealTableHint(err))
		}
	}
	for _, e := range opts.Expect {
		v.expect[e.Seq] = e.Hash
	}
	err = v.run(ctx, startSeq)
	if err == nil && v.archives != nil {
		err = v.checkManifests(ctx, v.archives)
	}
	if err == nil {
		err = v.checkExpectedReached()
	}
	if err != nil {
		v.res.Signed = v.res.Signed && v.res.Checkpoints > 0
		return v.res, err
	}
	after := v.res.LastID
	if v.res.Last.Seq == 0 {
		// Nothing verified: count from the last checkpoint there is.
		last, ok, err := lastCheckpoint(ctx, db, seal)
		if err != nil {
			return v.res, err
		}
		after = math.MinInt64
		if ok {
			after = last.LastID
		}
	}
	if err := queryRowInto(ctx, db, `SELECT count(*) FROM `+entries.Quoted()+` WHERE id > $1`, []any{after}, &v.res.Unsealed); err != nil {
		return v.res, fmt.Errorf("auditpgx: verify: count the entries of %s after id %d: %w", entries.Quoted(), after, err)
	}
	v.res.Signed = v.res.Signed && v.res.Checkpoints > 0
	return v.res, nil
}

// verifier is one Verify run.
type verifier struct {
	db            Querier
	entries, seal tableName
	key           ed25519.PublicKey
	scan          checkpointScanner

	prev       *Checkpoint     // the checkpoint verified last, or From
	trustFirst bool            // FromID: take the first checkpoint's Prev as given
	archives   *verifyArchives // Archives, nil without
	expect     map[int64][sha256.Size]byte
	lower      int64 // the entries checked so far: ids up to lower
	res        VerifyResult
}

// run verifies the checkpoints from number start on.
func (v *verifier) run(ctx context.Context, start int64) error {
	if start == math.MaxInt64 {
		return nil
	}
	query := `SELECT ` + checkpointColumns + ` FROM ` + v.seal.Quoted() + ` WHERE seq >= $1 ORDER BY seq LIMIT $2`
	for seq := start; ; {
		batch, bads, err := v.readCheckpoints(ctx, query, seq)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		// The checkpoints' own faults are found before their entries are
		// read, so that a forged range is never queried; an entry fault
		// of an earlier checkpoint still comes first.
		good := len(batch)
		var fault error
		p := v.prev
		for i := range batch {
			if err := v.checkCheckpoint(&batch[i], bads[i], p); err != nil {
				good, fault = i, err
				break
			}
			p = &batch[i]
		}
		if good > 0 {
			if err := v.checkEntries(ctx, batch[:good]); err != nil {
				return err
			}
		}
		if fault != nil {
			return fault
		}
		seq = batch[len(batch)-1].Seq + 1
		if len(batch) < verifyBatch {
			return nil
		}
	}
}

func (v *verifier) readCheckpoints(ctx context.Context, query string, seq int64) ([]Checkpoint, []string, error) {
	rows, err := v.db.QueryContext(ctx, query, seq, verifyBatch)
	if err != nil {
		return nil, nil, fmt.Errorf("auditpgx: verify: read seal table %s: %w", v.seal.Quoted(), noSealTableHint(err))
	}
	defer rows.Close()
	var (
		batch []Checkpoint
		bads  []string
	)
	for rows.Next() {
		c, bad, err := v.scan.scan(rows)
		if err != nil {
			return nil, nil, fmt.Errorf("auditpgx: verify: read seal table %s: %w", v.seal.Quoted(), err)
		}
		batch, bads = append(batch, c), append(bads, bad)
	}
	if err := rows.Close(); err != nil {
		return nil, nil, fmt.Errorf("auditpgx: verify: read seal table %s: %w", v.seal.Quoted(), err)
	}
	return batch, bads, nil
}

// checkCheckpoint checks what c says of itself and of the checkpoint
// before it, p (nil when there is none to follow).
func (v *verifier) checkCheckpoint(c *Checkpoint, bad string, p *Checkpoint) error {
	if c.Format != sealFormat {
		// Not a difference this release can judge: a newer one wrote it.
		return fmt.Errorf("auditpgx: verify: checkpoint %d in %s has format %d, which this release does not know; verify with the release that sealed it",
			c.Seq, v.seal.Quoted(), c.Format)
	}
	if bad != "" {
		return checkpointAltered(c.Seq, "is malformed: %s", bad)
	}
	if v.key != nil {
		if len(c.Signature) == 0 {
			return checkpointAltered(c.Seq, "is not signed")
		}
		if !ed25519.Verify(v.key, c.SignedMessage(), c.Signature) {
			return checkpointAltered(c.Seq, "has a signature that the public key does not verify: the checkpoint was altered or signed with another key")
		}
	}
	switch {
	case p != nil:
		switch {
		case c.Seq > p.Seq+1:
			return checkpointAltered(p.Seq+1, "is missing (the checkpoint after %d is %d)", p.Seq, c.Seq)
		case c.Seq != p.Seq+1:
			return checkpointAltered(c.Seq, "follows checkpoint %d", p.Seq)
		case c.FirstID <= p.LastID:
			return checkpointAltered(c.Seq, "starts at id %d, which checkpoint %d covers (up to %d)", c.FirstID, p.Seq, p.LastID)
		case c.Prev != p.Hash:
			return checkpointAltered(c.Seq, "does not chain to checkpoint %d: its previous hash is not that checkpoint's hash", p.Seq)
		}
	case !v.trustFirst:
		switch {
		case c.Seq != 1:
			return checkpointAltered(c.Seq, "is the first: checkpoints before it are missing (verify from an entry id, or from the last checkpoint of an archive)")
		case c.Prev != [sha256.Size]byte{}:
			return checkpointAltered(c.Seq, "is the first but does not start from the zero hash")
		}
	}
	switch {
	case c.LastID < c.FirstID:
		return checkpointAltered(c.Seq, "ends (id %d) before it starts (id %d)", c.LastID, c.FirstID)
	case c.Count < 1:
		return checkpointAltered(c.Seq, "holds %d entries", c.Count)
	case len(c.Digests) != c.Count*digestSize:
		return checkpointAltered(c.Seq, "holds %d bytes of digests for %d entries", len(c.Digests), c.Count)
	case uint64(c.LastID-c.FirstID) != uint64(c.Count)+uint64(len(c.Gaps))-1:
		return checkpointAltered(c.Seq, "covers ids %d to %d but holds %d entries and %d gaps", c.FirstID, c.LastID, c.Count, len(c.Gaps))
	}
	for i, g := range c.Gaps {
		if g < c.FirstID || g >= c.LastID || i > 0 && g <= c.Gaps[i-1] {
			return checkpointAltered(c.Seq, "lists gaps that are not ascending ids from %d to %d", c.FirstID, c.LastID-1)
		}
	}
	return nil
}

// checkEntries reads the entries up to the last of batch, whose
// checkpoints checkCheckpoint passed, and compares them with it.
func (v *verifier) checkEntries(ctx context.Context, batch []Checkpoint) error {
	if v.trustFirst && v.prev == nil {
		v.lower = batch[0].FirstID - 1
	}
	upper := batch[len(batch)-1].LastID
	query, args := `SELECT `+sealColumns+` FROM `+v.entries.Quoted()+` WHERE id > $1 AND id <= $2 ORDER BY id`, []any{v.lower, upper}
	if v.archives != nil {
		archived, n, err := v.archives.between(v.lower, upper)
		if err != nil {
			return err
		}
		if n > 0 {
			// The archived entries the table does not hold, as the server
			// reads them back into entry rows: their text columns then
			// come out as the table's would.
			e := v.entries.Quoted()
			query = `SELECT ` + sealColumns + ` FROM (SELECT * FROM ` + e + ` WHERE id > $1 AND id <= $2
				UNION ALL SELECT * FROM pg_catalog.jsonb_populate_recordset(NULL::` + e + `, $3::jsonb) AS a
				WHERE NOT EXISTS (SELECT FROM ` + e + ` AS t WHERE t.id = a.id)) AS e ORDER BY id`
			args = append(args, archived)
		}
	}
	rows, err := v.db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("auditpgx: verify: read entries from %s: %w", v.entries.Quoted(), noContextHint(err))
	}
	defer rows.Close()
	s := &entryStream{rows: rows}
	s.targets = s.row.targets()
	for i := range batch {
		c := &batch[i]
		if err := v.checkSegment(c, s); err != nil {
			return err
		}
		if h, ok := v.expect[c.Seq]; ok && h != c.Hash {
			return checkpointAltered(c.Seq, "has a hash other than the one recorded outside the database: the chain was rewritten")
		}
		if s.err != nil {
			return fmt.Errorf("auditpgx: verify: read entries from %s: %w", v.entries.Quoted(), s.err)
		}
		if v.res.Checkpoints == 0 {
			v.res.FirstID = c.FirstID
		}
		v.res.Checkpoints++
		v.res.Entries += int64(c.Count)
		v.res.LastID, v.res.Last = c.LastID, *c
		v.prev, v.lower = c, c.LastID
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("auditpgx: verify: read entries from %s: %w", v.entries.Quoted(), err)
	}
	return nil
}

// entryStream is the entries of a batch in id order, with one row of
// look-ahead.
type entryStream struct {
	rows    *sql.Rows
	row     sealRow
	targets []any
	ok      bool // row holds an entry not yet consumed
	done    bool
	err     error
}

// peek returns the next entry, or nil at the end or after an error.
func (s *entryStream) peek() *sealRow {
	if s.ok {
		return &s.row
	}
	if s.done {
		return nil
	}
	if !s.rows.Next() {
		s.done, s.err = true, s.rows.Err()
		return nil
	}
	if err := s.rows.Scan(s.targets...); err != nil {
		s.done, s.err = true, err
		return nil
	}
	s.ok = true
	return &s.row
}

func (s *entryStream) next() { s.ok = false }

// checkSegment compares the entries with ids after v.lower and up to
// c.LastID with c.
func (v *verifier) checkSegment(c *Checkpoint, s *entryStream) error {
	var (
		first  *VerifyError // the first entry that differs
		ch     = newChain(c.Prev)
		gaps   = c.Gaps
		expect = c.FirstID // the next id that should have an entry
		i      = 0         // its index among the entries
	)
	note := func(e *VerifyError) {
		if first == nil {
			first = e
		}
	}
	skipGaps := func() {
		for len(gaps) > 0 && gaps[0] == expect {
			gaps, expect = gaps[1:], expect+1
		}
	}
	skipGaps()
	for r := s.peek(); r != nil && r.id <= c.LastID; r = s.peek() {
		s.next()
		if r.id < c.FirstID {
			// Every id before it checked out: this is the first change.
			where := "no checkpoint covers it, and no entry had its id when the entries around it were sealed"
			if v.prev == nil {
				where = "its id is below the first checkpoint's"
			}
			return entryInserted(r.id, c.Seq, where)
		}
		for expect < r.id {
			note(entryDeleted(expect, c.Seq))
			expect++
			i++
			skipGaps()
		}
		d := ch.add(r)
		if r.id < expect {
			note(entryInserted(r.id, c.Seq, fmt.Sprintf("checkpoint %d lists its id among the ids no entry had", c.Seq)))
			continue
		}
		if !bytes.Equal(d[:], c.digest(i)) {
			note(entryEdited(r.id, c.Seq))
		}
		expect++
		i++
		skipGaps()
	}
	if s.err != nil {
		return nil // reported by the caller
	}
	if expect <= c.LastID {
		note(entryDeleted(expect, c.Seq))
	}
	switch {
	case ch.h != c.Hash && first != nil:
		return first
	case ch.h != c.Hash:
		return checkpointAltered(c.Seq, "has a hash that its entries do not give, although each matches its digest: the hash was altered")
	case first != nil:
		return checkpointAltered(c.Seq, "lists digests or gaps that its entries, which still give its hash, do not match: the list was altered")
	}
	return nil
}

// checkExpectedReached fails when an expected checkpoint lies after the
// last one verified: checkpoints were deleted from the end of the chain.
func (v *verifier) checkExpectedReached() error {
	var missing int64
	for seq := range v.expect {
		if seq > v.res.Last.Seq && (missing == 0 || seq < missing) {
			missing = seq
		}
	}
	if missing == 0 {
		return nil
	}
	if v.res.Last.Seq == 0 {
		return checkpointAltered(missing, "is missing: no checkpoint was verified, but this one was recorded outside the database")
	}
	return checkpointAltered(missing, "is missing: the chain ends at checkpoint %d, but this one was recorded outside the database: checkpoints were deleted",
		v.res.Last.Seq)
}
