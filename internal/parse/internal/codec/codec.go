// Package codec is pg_query's parse tree at the speed the planner needs:
// generated, per message type, a walk, a protobuf encoder and a decoder, in
// place of protobuf's reflection. Package parse alone uses it.
package codec

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/pganalyze/pg_query_go/v6/parser"
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
//go:generate go run ../treegen

// Parse is pg_query.Parse with the tree decoded by decode_gen.go.
func Parse(sql string) (*pg_query.ParseResult, error) {
	buf, err := pgparser.ParseToProtobuf(sql)
	if err != nil {
		return nil, err
	}
	return decodeTree(buf)
}

// Deparse is pg_query.Deparse with the tree encoded by encode_gen.go.
func Deparse(tree *pg_query.ParseResult) (string, error) {
	e := encoder{b: make([]byte, 0, 2048)}
	e.encParseResult(tree)
	if e.err != nil {
		return "", e.err
	}
	return pgparser.DeparseFromProtobuf(e.b)
}

// Walk calls fn on n and on every message below it, parent first, then
// fields in declaration order.
func Walk(n *pg_query.Node, fn func(proto.Message)) { walkNode(n, fn) }

// NodeValue returns the message a Node holds, or nil.
func NodeValue(n *pg_query.Node) proto.Message { return nodeValue(n) }

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
