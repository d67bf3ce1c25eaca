package store

import (
	"crypto/ed25519"
	"crypto/sha256"
	"time"
)

// Checkpoint is one row of the seal table: the hash chain over a segment
// of the entry table, ids FirstID to LastID, as [Seal] found it.
//
// The chain runs over the entries in id order, from Prev (32 zero bytes
// for the first checkpoint of a table, else the Hash of the checkpoint
// before): h(n) = SHA-256(h(n-1) || enc(entry n)), where enc is the
// canonical encoding of the entry's columns that docs/SECURITY.md
// describes, and Hash is h of the last entry. Checkpoints therefore chain
// too: each one's Prev is its predecessor's Hash.
type Checkpoint struct {
	// Seq numbers the checkpoints of a seal table 1, 2, 3, … (or on from
	// the From checkpoint a chain was continued from).
	Seq int64
	// Format is the encoding of entries and of the checkpoint; 1.
	Format int
	// FirstID and LastID bound the ids the checkpoint covers: every id in
	// between is either one of its Count entries or one of its Gaps.
	// FirstID is the id after the previous checkpoint's LastID, unless
	// more than 1000 ids in a row had no entry when sealed: then it is the
	// next entry's id, and the ids in between belong to no checkpoint
	// ([Verify] checks that they still have no entry).
	FirstID, LastID int64
	// Count is the number of entries: at most 1000.
	Count int
	// Prev is the chain's hash before FirstID, Hash after LastID.
	Prev, Hash [sha256.Size]byte
	// Gaps are the ids between FirstID and LastID that no entry had when
	// sealed, ascending, at most 1000: ids drawn by transactions that
	// rolled back. Never nil.
	Gaps []int64
	// Digests holds the first 8 bytes of SHA-256(enc(entry)) of each of
	// the Count entries in id order, concatenated, so that [Verify] can
	// name an entry changed since.
	Digests []byte
	// SealedAt is the database's time when the entries up to LastID were
	// known to be committed or never to be, in UTC.
	SealedAt time.Time
	// Signature is the Ed25519 signature of [Checkpoint.SignedMessage],
	// or nil when the checkpoint was sealed without a signing key.
	Signature []byte
}

// SignedMessage is what a checkpoint's signature signs: the domain
// string "auditpgx checkpoint" and a zero byte, then Format, Seq, FirstID,
// LastID, Count, Prev, Hash, the number of gaps, each gap, Digests and
// SealedAt (microseconds since the Unix epoch), each as a 4-byte
// big-endian length and its bytes (integers as 8 bytes big-endian), as
// entries are encoded. The signature covers Prev, so a signed checkpoint
// also vouches for the one before it.
func (c *Checkpoint) SignedMessage() []byte {
	b := make([]byte, 0, 20+6*12+2*(4+sha256.Size)+12*len(c.Gaps)+4+len(c.Digests))
	b = append(b, "auditpgx checkpoint\x00"...)
	for _, v := range []int64{int64(c.Format), c.Seq, c.FirstID, c.LastID, int64(c.Count)} {
		b = appendInt(b, v)
	}
	b = appendBytes(b, c.Prev[:])
	b = appendBytes(b, c.Hash[:])
	b = appendInt(b, int64(len(c.Gaps)))
	for _, g := range c.Gaps {
		b = appendInt(b, g)
	}
	b = appendBytes(b, c.Digests)
	return appendInt(b, c.SealedAt.UnixMicro())
}

// sign sets c.Signature with key.
func (c *Checkpoint) sign(key ed25519.PrivateKey) {
	c.Signature = ed25519.Sign(key, c.SignedMessage())
}

// digest returns the i-th entry's digest.
func (c *Checkpoint) digest(i int) []byte {
	return c.Digests[i*digestSize : (i+1)*digestSize]
}

// A checkpoint holds at most segmentEntries entries and segmentGaps gaps.
// A longer run of ids that no entry has lies between two checkpoints.
const (
	segmentEntries = 1000
	segmentGaps    = 1000
)

// segment builds a checkpoint entry by entry, from Prev onwards.
type segment struct {
	c     Checkpoint
	next  int64 // the id after the last one added
	chain *chain
}

func newSegment(seq, firstID int64, prev [sha256.Size]byte, sealedAt time.Time) *segment {
	return &segment{
		c:     Checkpoint{Seq: seq, Format: sealFormat, FirstID: firstID, Prev: prev, SealedAt: sealedAt, Gaps: []int64{}},
		next:  firstID,
		chain: newChain(prev),
	}
}

// fits reports whether the entry r may be added: the segment is not full
// and the ids skipped before r fit in its gaps.
func (s *segment) fits(r *sealRow) bool {
	return s.c.Count < segmentEntries && r.id-s.next <= int64(segmentGaps-len(s.c.Gaps))
}

// add appends the entry r, whose id is above every id added before; the
// ids skipped since become gaps.
func (s *segment) add(r *sealRow) {
	for id := s.next; id < r.id; id++ {
		s.c.Gaps = append(s.c.Gaps, id)
	}
	d := s.chain.add(r)
	s.c.Digests = append(s.c.Digests, d[:]...)
	s.c.Count++
	s.c.LastID, s.next = r.id, r.id+1
}

// done returns the finished checkpoint, signed with key when there is
// one.
func (s *segment) done(key ed25519.PrivateKey) Checkpoint {
	c := s.c
	c.Hash = s.chain.h
	if key != nil {
		c.sign(key)
	}
	return c
}
