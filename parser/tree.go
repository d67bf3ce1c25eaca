package parser

import (
	"errors"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/pganalyze/pg_query_go/v6/parser"
	"google.golang.org/protobuf/encoding/protowire"
)

// walk_gen.go and encode_gen.go hold, for every message type of the parse
// tree, a walk that calls a function on each message (parent first, then
// fields in declaration order) and an encoder that writes the bytes
// proto.Marshal writes. Both cost a fraction of their reflective
// counterparts, which took a third of a cold rewrite; tree_test.go checks
// them against protobuf's reflection on trees with every field set.
//
//go:generate go run ./internal/treegen

// deparse is pg_query.Deparse with the tree encoded by encode_gen.go.
func deparse(tree *pg_query.ParseResult) (string, error) {
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
