package parse

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/pganalyze/pg_query_go/v6/parser"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// walk_gen.go, encode_gen.go and decode_gen.go hold, for every message type
// of the parse tree, a walk that calls a function on each message (parent
// first, then fields in declaration order), an encoder that writes the bytes
// proto.Marshal writes, and a decoder that reads them as proto.Unmarshal
// does. They cost a fraction of their reflective counterparts, which took a
// third of a cold rewrite; tree_test.go checks them against protobuf's own
// on parsed trees and on trees with every field set.
//
//go:generate go run ./internal/treegen

// parseTree is pg_query.Parse with the tree decoded by decode_gen.go.
func parseTree(sql string) (*pg_query.ParseResult, error) {
	buf, err := pgparser.ParseToProtobuf(sql)
	if err != nil {
		return nil, err
	}
	return decodeTree(buf)
}

// deparse is pg_query.Deparse with the tree encoded by encode_gen.go.
func Deparse(tree *pg_query.ParseResult) (string, error) {
	e := encoder{b: make([]byte, 0, 2048)}
	e.encParseResult(tree)
	if e.err != nil {
		return "", e.err
	}
	return pgparser.DeparseFromProtobuf(e.b)
}

// encoder appends the protobuf encoding of messages to b.
type encoder struct {
	b   []byte
	err error
}

var errInvalidUTF8 = errors.New("string field contains invalid UTF-8")

// open reserves one byte for the length of the message that follows.
func (e *encoder) open() int {
	e.b = append(e.b, 0)
	return len(e.b)
}

// close writes the length of the message begun at start, moving it along
// when the length takes more than one byte.
func (e *encoder) close(start int) {
	n := len(e.b) - start
	if n < 0x80 {
		e.b[start-1] = byte(n)
		return
	}
	k := protowire.SizeVarint(uint64(n))
	e.b = append(e.b, make([]byte, k-1)...)
	copy(e.b[start+k-1:], e.b[start:start+n])
	protowire.AppendVarint(e.b[:start-1], uint64(n))
}

// string writes a length-delimited string; proto3 strings must be valid
// UTF-8, as proto.Marshal checks.
func (e *encoder) string(s string) {
	if !utf8.ValidString(s) {
		e.err = errInvalidUTF8
	}
	e.b = protowire.AppendVarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}

// packed writes a packed repeated uint64.
func (e *encoder) packed(v []uint64) {
	n := 0
	for _, x := range v {
		n += protowire.SizeVarint(x)
	}
	e.b = protowire.AppendVarint(e.b, uint64(n))
	for _, x := range v {
		e.b = protowire.AppendVarint(e.b, x)
	}
}

// decodeTree decodes a parse result as proto.Unmarshal does, and with it
// whatever the generated decoder does not take.
func decodeTree(buf []byte) (*pg_query.ParseResult, error) {
	d := decoder{b: buf}
	tree := &pg_query.ParseResult{}
	d.decParseResult(tree, len(buf))
	if !d.bad && d.i == len(buf) {
		return tree, nil
	}
	tree = &pg_query.ParseResult{}
	if err := proto.Unmarshal(buf, tree); err != nil {
		return nil, err
	}
	return tree, nil
}

// decoder reads the protobuf encoding in b from i on. It sets bad, and
// the caller falls back on proto.Unmarshal, on anything it does not take.
type decoder struct {
	b     []byte
	i     int
	depth int
	bad   bool
}

// maxDecodeDepth is the deepest nesting of messages decoded here; deeper
// trees, rare and near proto.Unmarshal's own limit of 10,000, are left to it.
const maxDecodeDepth = 1000

func (d *decoder) tag(end int) (protowire.Number, protowire.Type) {
	v := d.varint(end)
	return protowire.Number(v >> 3), protowire.Type(v & 7)
}

func (d *decoder) varint(end int) uint64 {
	v, n := protowire.ConsumeVarint(d.b[d.i:end])
	if n < 0 {
		d.bad, d.i = true, end
		return 0
	}
	d.i += n
	return v
}

func (d *decoder) fixed64(end int) uint64 {
	if end-d.i < 8 {
		d.bad, d.i = true, end
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b[d.i:])
	d.i += 8
	return v
}

// open reads the length of an embedded message and returns where it ends,
// or -1.
func (d *decoder) open(end int) int {
	n := d.varint(end)
	if d.bad || n > uint64(end-d.i) || d.depth >= maxDecodeDepth {
		d.bad = true
		return -1
	}
	d.depth++
	return d.i + int(n)
}

// close checks that the embedded message ending at sub was read to its end.
func (d *decoder) close(sub int) {
	d.depth--
	if d.i != sub {
		d.bad = true
	}
}

func (d *decoder) string(end int) string {
	n := d.varint(end)
	if d.bad || n > uint64(end-d.i) {
		d.bad = true
		return ""
	}
	b := d.b[d.i : d.i+int(n)]
	d.i += int(n)
	if !utf8.Valid(b) {
		// proto.Unmarshal refuses it.
		d.bad = true
		return ""
	}
	return string(b)
}

// uint64s appends a repeated uint64, packed or not.
func (d *decoder) uint64s(list []uint64, wt protowire.Type, end int) []uint64 {
	switch wt {
	case protowire.VarintType:
		return append(list, d.varint(end))
	case protowire.BytesType:
		sub := d.open(end)
		if sub < 0 {
			return list
		}
		for d.i < sub && !d.bad {
			list = append(list, d.varint(sub))
		}
		d.close(sub)
		return list
	}
	d.bad = true
	return list
}
