package codec

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// treeTexts are SQL texts whose parse trees the generated walk, encoder and
// decoder are checked on: the corpus's inputs and their audited rewrites
// (its goldens, for every server version), which hold every node kind the
// rewrite adds.
func treeTexts(t *testing.T) []string {
	var texts []string
	for _, name := range []string{"input.sql", "rewrite.sql", "rewrite.pg18.sql"} {
		files, err := filepath.Glob(filepath.Join("..", "..", "..", "..", "testdata", "rewrite", "*", name))
		if err != nil {
			t.Fatal(err)
		}
		if name != "rewrite.pg18.sql" && len(files) < 50 {
			t.Fatalf("found %d corpus files %s: is the corpus where this test looks?", len(files), name)
		}
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			texts = append(texts, string(b))
		}
	}
	return texts
}

// randomTrees are parse trees with every field of every message type set
// at random: each case of Node holding a message whose fields are all set,
// down to a few levels.
func randomTrees() []*pg_query.ParseResult {
	r := rand.New(rand.NewPCG(1, 2))
	var out []*pg_query.ParseResult
	nodeCases := (&pg_query.Node{}).ProtoReflect().Descriptor().Oneofs().ByName("node").Fields()
	for round := 0; round < 3; round++ {
		for i := 0; i < nodeCases.Len(); i++ {
			n := &pg_query.Node{}
			m := n.ProtoReflect()
			child := m.NewField(nodeCases.Get(i))
			fill(r, child.Message(), 3, round == 0)
			m.Set(nodeCases.Get(i), child)
			out = append(out, &pg_query.ParseResult{Version: 170004, Stmts: []*pg_query.RawStmt{{Stmt: n, StmtLocation: int32(i), StmtLen: -1}}})
		}
	}
	return out
}

// fill sets the fields of m: all of them when full, else about half.
func fill(r *rand.Rand, m protoreflect.Message, depth int, full bool) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil {
			// One case of the oneof, at random.
			if od.Fields().Get(0) != fd {
				continue
			}
			fd = od.Fields().Get(r.IntN(od.Fields().Len()))
		}
		if !full && r.IntN(2) == 0 {
			continue
		}
		switch {
		case fd.IsMap():
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range r.IntN(4) {
				if fd.Message() != nil {
					if depth == 0 {
						break
					}
					e := l.NewElement()
					fill(r, e.Message(), depth-1, full && r.IntN(2) == 0)
					l.Append(e)
				} else {
					l.Append(scalar(r, fd))
				}
			}
		case fd.Message() != nil:
			if depth == 0 && fd.ContainingOneof() == nil {
				continue
			}
			v := m.NewField(fd)
			if depth > 0 {
				fill(r, v.Message(), depth-1, full && r.IntN(2) == 0)
			}
			m.Set(fd, v)
		default:
			m.Set(fd, scalar(r, fd))
		}
	}
}

func scalar(r *rand.Rand, fd protoreflect.FieldDescriptor) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(r.IntN(3) > 0)
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(r.IntN(5) - 1))
	case protoreflect.Int32Kind:
		return protoreflect.ValueOfInt32([]int32{0, 1, -1, 127, 128, math.MaxInt32, math.MinInt32}[r.IntN(7)])
	case protoreflect.Uint32Kind:
		return protoreflect.ValueOfUint32([]uint32{0, 1, 127, 128, 300, math.MaxUint32}[r.IntN(6)])
	case protoreflect.Int64Kind:
		return protoreflect.ValueOfInt64([]int64{0, 1, -1, math.MaxInt64, math.MinInt64}[r.IntN(5)])
	case protoreflect.Uint64Kind:
		return protoreflect.ValueOfUint64([]uint64{0, 1, 128, math.MaxUint64}[r.IntN(4)])
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64([]float64{0, math.Copysign(0, -1), 1.5, math.Inf(-1)}[r.IntN(4)])
	case protoreflect.StringKind:
		return protoreflect.ValueOfString([]string{"", "x", "ünï", string(bytes.Repeat([]byte("y"), 200))}[r.IntN(4)])
	}
	panic("scalar kind " + fd.Kind().String())
}

func parsedTrees(t *testing.T) []*pg_query.ParseResult {
	var out []*pg_query.ParseResult
	for _, sql := range treeTexts(t) {
		if tree, err := pg_query.Parse(sql); err == nil {
			out = append(out, tree)
		}
	}
	return append(out, randomTrees()...)
}

// TestEncoderMatchesMarshal: the generated encoder writes what
// proto.Marshal writes, for parsed trees and for trees with every field of
// every message type set.
func TestEncoderMatchesMarshal(t *testing.T) {
	for i, tree := range parsedTrees(t) {
		want, err := proto.Marshal(tree)
		if err != nil {
			t.Fatal(err)
		}
		e := encoder{}
		e.encParseResult(tree)
		if e.err != nil || !bytes.Equal(e.b, want) {
			t.Fatalf("tree %d: encoder differs from proto.Marshal (err %v)\n%v", i, e.err, tree)
		}
	}
}

func TestEncoderRefusesInvalidUTF8(t *testing.T) {
	tree := &pg_query.ParseResult{Stmts: []*pg_query.RawStmt{{Stmt: pg_query.MakeStrNode("a\xffb")}}}
	if _, err := proto.Marshal(tree); err == nil {
		t.Fatal("proto.Marshal accepts invalid UTF-8")
	}
	e := encoder{}
	e.encParseResult(tree)
	if e.err == nil {
		t.Fatal("encoder accepts invalid UTF-8")
	}
}

// TestWalkMatchesReflection: the generated walk visits the messages that a
// walk by protobuf reflection visits, each once. (Reflection's Range order
// is unspecified, and protobuf varies it from one binary to the next; the
// generated walk goes parent first, then fields in declaration order.)
func TestWalkMatchesReflection(t *testing.T) {
	for i, tree := range parsedTrees(t) {
		for _, raw := range tree.Stmts {
			want := map[proto.Message]int{}
			reflectWalk(raw.Stmt.ProtoReflect(), func(m protoreflect.Message) { want[m.Interface()]++ })
			var got []proto.Message
			walkNode(raw.Stmt, func(m proto.Message) { got = append(got, m) })
			if got[0] != proto.Message(raw.Stmt) {
				t.Fatalf("tree %d: walk begins at %T, not the root", i, got[0])
			}
			for _, m := range got {
				if want[m]--; want[m] < 0 {
					t.Fatalf("tree %d: walk visits a %T that reflection does not, or more often", i, m)
				}
			}
			for m, n := range want {
				if n > 0 {
					t.Fatalf("tree %d: walk misses a %T", i, m)
				}
			}
		}
	}
}

// reflectWalk calls fn for every message in the tree rooted at m.
func reflectWalk(m protoreflect.Message, fn func(protoreflect.Message)) {
	fn(m)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				reflectWalk(l.Get(i).Message(), fn)
			}
		case fd.Message() != nil && !fd.IsMap():
			reflectWalk(v.Message(), fn)
		}
		return true
	})
}

// TestDecoderMatchesUnmarshal: the generated decoder reads, without falling
// back, what proto.Unmarshal reads from the encoding of parsed trees and of
// trees with every field of every message type set.
func TestDecoderMatchesUnmarshal(t *testing.T) {
	for i, tree := range parsedTrees(t) {
		buf, err := proto.Marshal(tree)
		if err != nil {
			t.Fatal(err)
		}
		d := decoder{b: buf}
		got := &pg_query.ParseResult{}
		d.decParseResult(got, len(buf))
		if d.bad || d.i != len(buf) {
			t.Fatalf("tree %d: the decoder gives up at byte %d of %d\n%v", i, d.i, len(buf), tree)
		}
		if !proto.Equal(got, tree) {
			t.Fatalf("tree %d: decoded\n%v\nwant\n%v", i, got, tree)
		}
	}
}

// TestDecoderFallsBack: what the generated decoder does not take, it leaves
// to proto.Unmarshal, with the same result.
func TestDecoderFallsBack(t *testing.T) {
	good, err := proto.Marshal(&pg_query.ParseResult{Version: 170004, Stmts: []*pg_query.RawStmt{{Stmt: pg_query.MakeStrNode("a")}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, buf := range decodeSeeds(good) {
		checkDecode(t, name, buf)
	}
}

func decodeSeeds(good []byte) map[string][]byte {
	return map[string][]byte{
		"good":           good,
		"unknown field":  append(append([]byte{}, good...), 0xf8, 0x07, 0x01), // field 127, varint 1
		"wrong wire":     append(append([]byte{}, good...), 0x0d, 1, 2, 3, 4), // field 1 as fixed32
		"truncated":      good[:len(good)-1],
		"invalid UTF-8":  {0x12, 0x07, 0x0a, 0x05, 0xda, 0x07, 0x02, 0x0a, 0xff}, // stmts{stmt{string{sval:"\xff"}}}
		"twice singular": append(append([]byte{}, good...), good[2:]...),
		"empty":          {},
	}
}

func checkDecode(t *testing.T, name string, buf []byte) {
	t.Helper()
	want := &pg_query.ParseResult{}
	wantErr := proto.Unmarshal(buf, want)
	got, err := decodeTree(buf)
	switch {
	case (err != nil) != (wantErr != nil):
		t.Fatalf("%s: decodeTree error %v, proto.Unmarshal's %v", name, err, wantErr)
	case err == nil && !proto.Equal(got, want):
		t.Fatalf("%s: decodeTree\n%v\nproto.Unmarshal\n%v", name, got, want)
	}
}

// FuzzDecodeTree: whatever the bytes, decodeTree agrees with
// proto.Unmarshal.
func FuzzDecodeTree(f *testing.F) {
	good, _ := proto.Marshal(randomTrees()[7])
	for _, buf := range decodeSeeds(good) {
		f.Add(buf)
	}
	f.Fuzz(func(t *testing.T, buf []byte) {
		checkDecode(t, "fuzz", buf)
	})
}

// TestNodeValue: nodeValue returns what reflection finds in a Node.
func TestNodeValue(t *testing.T) {
	for _, tree := range randomTrees() {
		n := tree.Stmts[0].Stmt
		m := n.ProtoReflect()
		want := m.Get(m.WhichOneof(m.Descriptor().Oneofs().ByName("node"))).Message().Interface()
		if got := nodeValue(n); got != want {
			t.Fatalf("nodeValue gives %T, reflection %T", got, want)
		}
	}
	if got := nodeValue(&pg_query.Node{}); got != nil {
		t.Fatalf("nodeValue of an empty Node gives %T", got)
	}
}
