package store

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"math"
	"time"
)

// sealFormat is the encoding of entries and checkpoints that Seal writes
// (Checkpoint.Format). A later release that changes the encoding gives it
// a new number and keeps verifying checkpoints of this one.
const sealFormat = 1

// sealColumns are the entry columns an entry is hashed from, in the order
// of record.ReadColumns (TestSealColumnsFollowReadColumns holds the two
// together): the jsonb columns as their text output, which PostgreSQL
// writes in one form whatever the writer sent (keys in jsonb's order,
// shorter first, duplicates dropped, one space after each colon and
// comma), so that the encoding does not depend on how a client wrote a
// JSON object.
const sealColumns = `id, created, created_by, operation, table_name, object_id, changes::text, ` +
	`related_table_name, related_object_id, related_field_name, tx_id, statement_fingerprint, context::text`

// digestSize is the length of the per-entry digests a checkpoint keeps.
const digestSize = 8

// sealRow is one entry as sealing reads it: the scan targets of
// sealColumns, reused from row to row.
type sealRow struct {
	id, txID int64
	created  sealTime
	text     [10]sealText // created_by … context, sealColumns less id, created and tx_id
}

// targets returns the scan destinations in the order of sealColumns.
func (r *sealRow) targets() []any {
	t := &r.text
	return []any{&r.id, &r.created, &t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &t[6], &t[7], &r.txID, &t[8], &t[9]}
}

// encode appends the entry's canonical encoding to b: every column of
// sealColumns in order, each as a 4-byte big-endian length and that many
// bytes, a NULL as the length 0xFFFFFFFF and no bytes. id and tx_id are 8
// bytes big-endian (two's complement); created is the number of
// microseconds since 1970-01-01 00:00:00 UTC in 8 bytes, with infinity and
// -infinity as the largest and smallest int64; text and jsonb columns are
// their UTF-8 text.
func (r *sealRow) encode(b []byte) []byte {
	b = appendInt(b, r.id)
	b = appendInt(b, r.created.micros)
	for i := range 8 {
		b = r.text[i].append(b)
	}
	b = appendInt(b, r.txID)
	b = r.text[8].append(b)
	return r.text[9].append(b)
}

const nullLength = math.MaxUint32

func appendInt(b []byte, v int64) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

func appendBytes(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// sealText is a nullable text column, scanned without an allocation once
// its buffer has grown: database/sql's RawBytes would not tell an empty
// string from NULL.
type sealText struct {
	b     []byte
	valid bool
}

func (t *sealText) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		t.b, t.valid = t.b[:0], false
	case string:
		t.b, t.valid = append(t.b[:0], v...), true
	case []byte:
		t.b, t.valid = append(t.b[:0], v...), true
	default:
		return fmt.Errorf("a text column holds a %T", src)
	}
	return nil
}

func (t *sealText) append(b []byte) []byte {
	if !t.valid {
		return binary.BigEndian.AppendUint32(b, nullLength)
	}
	return appendBytes(b, t.b)
}

// sealTime is the created column in microseconds since the Unix epoch,
// UTC. pgx hands a timestamptz over as a time.Time exact to the
// microsecond, or as the string "infinity" or "-infinity".
type sealTime struct{ micros int64 }

func (t *sealTime) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		t.micros = v.UnixMicro()
	case string:
		switch v {
		case "infinity":
			t.micros = math.MaxInt64
		case "-infinity":
			t.micros = math.MinInt64
		default:
			return fmt.Errorf("created is not a timestamp")
		}
	default:
		return fmt.Errorf("created holds a %T", src)
	}
	return nil
}

// chain is the hash chain over entries in id order:
// h(n) = SHA-256(h(n-1) || enc(entry n)), starting from a checkpoint's
// Prev. It also gives each entry's digest, the first 8 bytes of
// SHA-256(enc(entry)).
type chain struct {
	h   [sha256.Size]byte
	sha hash.Hash
	enc []byte
}

func newChain(from [sha256.Size]byte) *chain {
	return &chain{h: from, sha: sha256.New()}
}

// add hashes the entry r into the chain and returns its digest, valid
// until the next call.
func (c *chain) add(r *sealRow) [digestSize]byte {
	c.enc = r.encode(c.enc[:0])
	c.sha.Reset()
	c.sha.Write(c.h[:])
	c.sha.Write(c.enc)
	c.sha.Sum(c.h[:0])
	sum := sha256.Sum256(c.enc)
	return [digestSize]byte(sum[:digestSize])
}
