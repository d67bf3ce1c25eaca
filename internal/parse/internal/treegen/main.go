// Command treegen writes internal/parse/internal/codec/walk_gen.go, a walk over pg_query's parse
// tree, and internal/parse/internal/codec/encode_gen.go and decode_gen.go, a protobuf encoder and
// decoder for it: one function per message type, so that none goes through
// protobuf reflection on the hot path.
//
// It reads the Go types of every message reachable from
// pg_query.ParseResult and fails on a field kind it does not know, so that
// an upgrade of pg_query that brings one stops here rather than yielding a
// walk that misses a subtree. Run it with go generate in package codec;
// the tests of package codec compare all three with protobuf's own.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"log"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/runtime/protoimpl"
)

func main() {
	dir := flag.String("dir", ".", "directory of package codec")
	flag.Parse()
	files, err := generate()
	if err != nil {
		log.Fatal(err)
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(*dir, name), src, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// field is one protobuf field of a message, or one case of a oneof.
type field struct {
	goName string
	num    protowire.Number
	// kind is bool, int32, uint32, int64, uint64, double, string, message,
	// []message, []string or []uint64 (packed).
	kind string
	// goType is the Go type of a scalar, such as int32 or
	// pg_query.SetOperation.
	goType string
	elem   reflect.Type // the message type of a message field
	// wrapper and oneof are set for a oneof case: the wrapper type, and
	// the interface field of the message that holds it.
	wrapper, oneof string
}

type message struct {
	name string
	// fields are in declaration order, the order of protobuf reflection's
	// Range, with each oneof's cases where the oneof is declared.
	fields []field
	// onlyOneof is set when every field is a case of that one oneof.
	onlyOneof string
}

func generate() (map[string][]byte, error) {
	msgs := map[string]*message{}
	var order []string
	var visit func(t reflect.Type) error
	visit = func(t reflect.Type) error {
		st := t.Elem()
		if msgs[st.Name()] != nil {
			return nil
		}
		m := &message{name: st.Name()}
		msgs[m.name] = m
		order = append(order, m.name)
		mi, ok := reflect.New(st).Interface().(proto.Message).ProtoReflect().Type().(*protoimpl.MessageInfo)
		if !ok {
			return fmt.Errorf("%s: not a generated message", m.name)
		}
		oneofs := 0
		for i := 0; i < st.NumField(); i++ {
			sf := st.Field(i)
			if !sf.IsExported() {
				continue
			}
			if sf.Tag.Get("protobuf_oneof") != "" {
				oneofs++
				found := false
				for _, w := range mi.OneofWrappers {
					wt := reflect.TypeOf(w)
					if !wt.Implements(sf.Type) {
						continue
					}
					found = true
					if wt.Elem().NumField() != 1 {
						return fmt.Errorf("%s: oneof wrapper %s has %d fields", m.name, wt, wt.Elem().NumField())
					}
					f, err := plainField(wt.Elem().Field(0))
					if err != nil {
						return fmt.Errorf("%s.%s: %w", m.name, sf.Name, err)
					}
					if f.kind != "message" {
						return fmt.Errorf("%s.%s: oneof case of kind %s", m.name, sf.Name, f.kind)
					}
					f.wrapper, f.oneof = wt.Elem().Name(), sf.Name
					m.fields = append(m.fields, f)
				}
				if !found {
					return fmt.Errorf("%s.%s: a oneof without cases", m.name, sf.Name)
				}
				continue
			}
			f, err := plainField(sf)
			if err != nil {
				return fmt.Errorf("%s.%s: %w", m.name, sf.Name, err)
			}
			m.fields = append(m.fields, f)
		}
		if oneofs == 1 && m.fields[0].oneof != "" && m.fields[len(m.fields)-1].oneof == m.fields[0].oneof &&
			!slices.ContainsFunc(m.fields, func(f field) bool { return f.oneof == "" }) {
			m.onlyOneof = m.fields[0].oneof
		}
		if got, want := len(m.fields), mi.Desc.Fields().Len(); got != want {
			return fmt.Errorf("%s: %d fields in Go, %d in the descriptor", m.name, got, want)
		}
		for _, f := range m.fields {
			if f.elem != nil {
				if err := visit(f.elem); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := visit(reflect.TypeOf(&pg_query.ParseResult{})); err != nil {
		return nil, err
	}
	slices.Sort(order)
	var w, e, d bytes.Buffer
	w.WriteString(header + `
import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)
`)
	e.WriteString(header + `
import (
	"errors"
	"math"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/encoding/protowire"
)

` + encodeRuntime)
	d.WriteString(header + `
import (
	"encoding/binary"
	"math"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/encoding/protowire"
)

` + decodeRuntime)
	for _, name := range order {
		writeWalk(&w, msgs[name])
		writeEncode(&e, msgs[name])
		writeDecode(&d, msgs[name])
	}
	files := map[string][]byte{}
	for name, b := range map[string]*bytes.Buffer{"walk_gen.go": &w, "encode_gen.go": &e, "decode_gen.go": &d} {
		src, err := format.Source(b.Bytes())
		if err != nil {
			return nil, fmt.Errorf("formatting %s: %w", name, err)
		}
		files[name] = src
	}
	return files, nil
}

const header = "// Code generated by go run ../treegen; DO NOT EDIT.\n\npackage codec\n"

var messageType = reflect.TypeOf((*proto.Message)(nil)).Elem()

// plainField describes a struct field of a message or oneof wrapper.
func plainField(sf reflect.StructField) (field, error) {
	tag := strings.Split(sf.Tag.Get("protobuf"), ",")
	if len(tag) < 3 {
		return field{}, fmt.Errorf("tag %q", sf.Tag.Get("protobuf"))
	}
	n, err := strconv.Atoi(tag[1])
	if err != nil {
		return field{}, fmt.Errorf("tag %q: %w", sf.Tag.Get("protobuf"), err)
	}
	f := field{goName: sf.Name, num: protowire.Number(n), goType: sf.Type.String()}
	wire := tag[0]
	t := sf.Type
	switch {
	case t.Kind() == reflect.Pointer && t.Implements(messageType) && wire == "bytes":
		f.kind, f.elem = "message", t
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Pointer && t.Elem().Implements(messageType) && wire == "bytes":
		f.kind, f.elem = "[]message", t.Elem()
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String && wire == "bytes":
		f.kind = "[]string"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint64 && wire == "varint" && slices.Contains(tag, "packed"):
		f.kind = "[]uint64"
	case t.Kind() == reflect.String && wire == "bytes":
		f.kind = "string"
	case t.Kind() == reflect.Bool && wire == "varint":
		f.kind = "bool"
	case t.Kind() == reflect.Int32 && wire == "varint":
		f.kind = "int32" // enums too
	case t.Kind() == reflect.Uint32 && wire == "varint":
		f.kind = "uint32"
	case t.Kind() == reflect.Int64 && wire == "varint":
		f.kind = "int64"
	case t.Kind() == reflect.Uint64 && wire == "varint":
		f.kind = "uint64"
	case t.Kind() == reflect.Float64 && wire == "fixed64":
		f.kind = "double"
	default:
		return field{}, fmt.Errorf("unsupported field type %s with wire type %s", t, wire)
	}
	return f, nil
}

func writeWalk(b *bytes.Buffer, m *message) {
	if m.name == "Node" {
		b.WriteString("\n// nodeValue returns the message a Node holds, or nil.\nfunc nodeValue(x *pg_query.Node) proto.Message {\n\tswitch v := x.Node.(type) {\n")
		for _, f := range m.fields {
			fmt.Fprintf(b, "\tcase *pg_query.%s:\n\t\treturn v.%s\n", f.wrapper, f.goName)
		}
		b.WriteString("\t}\n\treturn nil\n}\n")
	}
	fmt.Fprintf(b, "\nfunc walk%s(x *pg_query.%s, fn func(proto.Message)) {\n\tif x == nil {\n\t\treturn\n\t}\n\tfn(x)\n", m.name, m.name)
	for i := 0; i < len(m.fields); i++ {
		f := m.fields[i]
		switch {
		case f.oneof != "":
			fmt.Fprintf(b, "\tswitch v := x.%s.(type) {\n", f.oneof)
			for ; i < len(m.fields) && m.fields[i].oneof == f.oneof; i++ {
				c := m.fields[i]
				fmt.Fprintf(b, "\tcase *pg_query.%s:\n\t\twalk%s(v.%s, fn)\n", c.wrapper, c.elem.Elem().Name(), c.goName)
			}
			i--
			b.WriteString("\t}\n")
		case f.kind == "message":
			fmt.Fprintf(b, "\twalk%s(x.%s, fn)\n", f.elem.Elem().Name(), f.goName)
		case f.kind == "[]message":
			fmt.Fprintf(b, "\tfor _, c := range x.%s {\n\t\twalk%s(c, fn)\n\t}\n", f.goName, f.elem.Elem().Name())
		}
	}
	b.WriteString("}\n")
}

func writeEncode(b *bytes.Buffer, m *message) {
	fmt.Fprintf(b, "\nfunc (e *encoder) enc%s(x *pg_query.%s) {\n\tif x == nil {\n\t\treturn\n\t}\n", m.name, m.name)
	if m.onlyOneof != "" {
		fmt.Fprintf(b, "\tswitch v := x.%s.(type) {\n", m.onlyOneof)
		for _, f := range m.fields {
			fmt.Fprintf(b, "\tcase *pg_query.%s:\n\t\te.b = append(e.b, %s)\n\t\ts := e.open()\n\t\te.enc%s(v.%s)\n\t\te.close(s)\n",
				f.wrapper, tagBytes(f.num, protowire.BytesType), f.elem.Elem().Name(), f.goName)
		}
		b.WriteString("\t}\n}\n")
		return
	}
	// proto.Marshal's order: fields outside oneofs by number, then each
	// oneof in declaration order (github.com/golang/protobuf's order).
	var oneofs []string
	for _, f := range m.fields {
		if f.oneof != "" && !slices.Contains(oneofs, f.oneof) {
			oneofs = append(oneofs, f.oneof)
		}
	}
	rank := func(f field) int {
		if f.oneof == "" {
			return -1
		}
		return slices.Index(oneofs, f.oneof)
	}
	fields := slices.Clone(m.fields)
	slices.SortStableFunc(fields, func(a, b field) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return int(a.num) - int(b.num)
	})
	for _, f := range fields {
		x := "x." + f.goName
		switch {
		case f.oneof != "":
			fmt.Fprintf(b, "\tif v, ok := x.%s.(*pg_query.%s); ok {\n\t\te.b = append(e.b, %s)\n\t\ts := e.open()\n\t\te.enc%s(v.%s)\n\t\te.close(s)\n\t}\n",
				f.oneof, f.wrapper, tagBytes(f.num, protowire.BytesType), f.elem.Elem().Name(), f.goName)
		case f.kind == "message":
			fmt.Fprintf(b, "\tif %s != nil {\n\t\te.b = append(e.b, %s)\n\t\ts := e.open()\n\t\te.enc%s(%s)\n\t\te.close(s)\n\t}\n",
				x, tagBytes(f.num, protowire.BytesType), f.elem.Elem().Name(), x)
		case f.kind == "[]message":
			fmt.Fprintf(b, "\tfor _, c := range %s {\n\t\te.b = append(e.b, %s)\n\t\ts := e.open()\n\t\te.enc%s(c)\n\t\te.close(s)\n\t}\n",
				x, tagBytes(f.num, protowire.BytesType), f.elem.Elem().Name())
		case f.kind == "[]string":
			fmt.Fprintf(b, "\tfor _, c := range %s {\n\t\te.b = append(e.b, %s)\n\t\te.string(c)\n\t}\n", x, tagBytes(f.num, protowire.BytesType))
		case f.kind == "[]uint64":
			fmt.Fprintf(b, "\tif len(%s) > 0 {\n\t\te.b = append(e.b, %s)\n\t\te.packed(%s)\n\t}\n", x, tagBytes(f.num, protowire.BytesType), x)
		case f.kind == "string":
			fmt.Fprintf(b, "\tif %s != \"\" {\n\t\te.b = append(e.b, %s)\n\t\te.string(%s)\n\t}\n", x, tagBytes(f.num, protowire.BytesType), x)
		case f.kind == "bool":
			fmt.Fprintf(b, "\tif %s {\n\t\te.b = append(e.b, %s, 1)\n\t}\n", x, tagBytes(f.num, protowire.VarintType))
		case f.kind == "double":
			fmt.Fprintf(b, "\tif %s != 0 || math.Signbit(%s) {\n\t\te.b = append(e.b, %s)\n\t\te.b = protowire.AppendFixed64(e.b, math.Float64bits(%s))\n\t}\n",
				x, x, tagBytes(f.num, protowire.Fixed64Type), x)
		default: // varints
			fmt.Fprintf(b, "\tif %s != 0 {\n\t\te.b = append(e.b, %s)\n\t\te.b = protowire.AppendVarint(e.b, uint64(%s))\n\t}\n",
				x, tagBytes(f.num, protowire.VarintType), x)
		}
	}
	b.WriteString("}\n")
}

func tagBytes(n protowire.Number, t protowire.Type) string {
	var parts []string
	for _, c := range protowire.AppendTag(nil, n, t) {
		parts = append(parts, fmt.Sprintf("%#02x", c))
	}
	return strings.Join(parts, ", ")
}

// writeDecode writes the decoder of one message type. It reads what
// proto.Unmarshal reads into the same values, and sets d.bad, for the
// caller to fall back on proto.Unmarshal, wherever the two could differ:
// an unknown field or wire type, a repeated singular message or oneof, and
// anything malformed.
func writeDecode(b *bytes.Buffer, m *message) {
	if m.name == "Node" {
		writeDecodeNode(b, m)
	}
	if len(m.fields) == 0 {
		fmt.Fprintf(b, "\nfunc (d *decoder) dec%s(_ *pg_query.%s, end int) {\n\tif d.i < end {\n\t\td.bad = true\n\t}\n}\n", m.name, m.name)
		return
	}
	fmt.Fprintf(b, "\nfunc (d *decoder) dec%s(x *pg_query.%s, end int) {\n\tfor d.i < end && !d.bad {\n\t\tnum, wt := d.tag(end)\n\t\tswitch num {\n", m.name, m.name)
	for _, f := range m.fields {
		x := "x." + f.goName
		fmt.Fprintf(b, "\t\tcase %d:\n", f.num)
		switch {
		case f.oneof != "":
			fmt.Fprintf(b, "\t\t\tif wt != 2 || x.%s != nil {\n\t\t\t\td.bad = true\n\t\t\t\treturn\n\t\t\t}\n", f.oneof)
			fmt.Fprintf(b, "\t\t\tv := new(pg_query.%s)\n\t\t\tif sub := d.open(end); sub >= 0 {\n\t\t\t\td.dec%s(v, sub)\n\t\t\t\td.close(sub)\n\t\t\t}\n\t\t\tx.%s = &pg_query.%s{%s: v}\n",
				f.elem.Elem().Name(), f.elem.Elem().Name(), f.oneof, f.wrapper, f.goName)
		case f.kind == "message" && f.elem.Elem().Name() == "Node":
			fmt.Fprintf(b, "\t\t\tif wt != 2 || %s != nil {\n\t\t\t\td.bad = true\n\t\t\t\treturn\n\t\t\t}\n", x)
			fmt.Fprintf(b, "\t\t\tif sub := d.open(end); sub >= 0 {\n\t\t\t\t%s = d.node(sub)\n\t\t\t\td.close(sub)\n\t\t\t}\n", x)
		case f.kind == "[]message" && f.elem.Elem().Name() == "Node":
			fmt.Fprintf(b, "\t\t\tif wt != 2 {\n\t\t\t\td.bad = true\n\t\t\t\treturn\n\t\t\t}\n")
			fmt.Fprintf(b, "\t\t\tif sub := d.open(end); sub >= 0 {\n\t\t\t\t%s = append(%s, d.node(sub))\n\t\t\t\td.close(sub)\n\t\t\t}\n", x, x)
		case f.kind == "message":
			fmt.Fprintf(b, "\t\t\tif wt != 2 || %s != nil {\n\t\t\t\td.bad = true\n\t\t\t\treturn\n\t\t\t}\n", x)
			fmt.Fprintf(b, "\t\t\t%s = new(pg_query.%s)\n\t\t\tif sub := d.open(end); sub >= 0 {\n\t\t\t\td.dec%s(%s, sub)\n\t\t\t\td.close(sub)\n\t\t\t}\n",
				x, f.elem.Elem().Name(), f.elem.Elem().Name(), x)
		case f.kind == "[]message":
			fmt.Fprintf(b, "\t\t\tif wt != 2 {\n\t\t\t\td.bad = true\n\t\t\t\treturn\n\t\t\t}\n")
			fmt.Fprintf(b, "\t\t\tv := new(pg_query.%s)\n\t\t\tif sub := d.open(end); sub >= 0 {\n\t\t\t\td.dec%s(v, sub)\n\t\t\t\td.close(sub)\n\t\t\t}\n\t\t\t%s = append(%s, v)\n",
				f.elem.Elem().Name(), f.elem.Elem().Name(), x, x)
		case f.kind == "[]string":
			fmt.Fprintf(b, "\t\t\tif wt != 2 {\n\t\t\t\td.bad = true\n\t\t\t\treturn\n\t\t\t}\n\t\t\t%s = append(%s, d.string(end))\n", x, x)
		case f.kind == "[]uint64":
			fmt.Fprintf(b, "\t\t\t%s = d.uint64s(%s, wt, end)\n", x, x)
		case f.kind == "string":
			fmt.Fprintf(b, "\t\t\tif wt != 2 {\n\t\t\t\td.bad = true\n\t\t\t\treturn\n\t\t\t}\n\t\t\t%s = d.string(end)\n", x)
		case f.kind == "double":
			fmt.Fprintf(b, "\t\t\tif wt != 1 {\n\t\t\t\td.bad = true\n\t\t\t\treturn\n\t\t\t}\n\t\t\t%s = math.Float64frombits(d.fixed64(end))\n", x)
		default:
			// Enums too take the value's low 32 bits, as int32 does.
			conv := strings.Replace(f.goType, "pg_query_go.", "pg_query.", 1) + "(d.varint(end))"
			switch f.kind {
			case "bool":
				conv = "d.varint(end) != 0"
			case "uint64":
				conv = "d.varint(end)"
			}
			fmt.Fprintf(b, "\t\t\tif wt != 0 {\n\t\t\t\td.bad = true\n\t\t\t\treturn\n\t\t\t}\n\t\t\t%s = %s\n", x, conv)
		}
	}
	b.WriteString("\t\tdefault:\n\t\t\td.bad = true\n\t\t}\n\t}\n}\n")
}

// writeDecodeNode writes node, which decodes a Node with its value in one
// allocation: a Node is a oneof and nothing else, and most of the tree.
func writeDecodeNode(b *bytes.Buffer, m *message) {
	b.WriteString(`
// node decodes a Node that ends at end, allocating it with its wrapper and
// its value at once.
func (d *decoder) node(end int) *pg_query.Node {
	if d.i == end {
		return new(pg_query.Node)
	}
	var n *pg_query.Node
	num, wt := d.tag(end)
	if wt != 2 {
		d.bad = true
		return nil
	}
	switch num {
`)
	for _, f := range m.fields {
		elem := f.elem.Elem().Name()
		fmt.Fprintf(b, "\tcase %d:\n\t\tc := new(struct {\n\t\t\tn pg_query.Node\n\t\t\tw pg_query.%s\n\t\t\tv pg_query.%s\n\t\t})\n", f.num, f.wrapper, elem)
		fmt.Fprintf(b, "\t\tc.w.%s, c.n.Node, n = &c.v, &c.w, &c.n\n", f.goName)
		fmt.Fprintf(b, "\t\tif sub := d.open(end); sub >= 0 {\n\t\t\td.dec%s(&c.v, sub)\n\t\t\td.close(sub)\n\t\t}\n", elem)
	}
	b.WriteString(`	default:
		d.bad = true
	}
	if d.i != end {
		// A second value: proto.Unmarshal keeps the last, or merges.
		d.bad = true
	}
	return n
}
`)
}

// encodeRuntime and decodeRuntime are the encoder's and decoder's own
// methods, written into the generated files with the per-message code that
// calls them, so that each file holds one whole codec.
const encodeRuntime = `// encoder appends the protobuf encoding of messages to b.
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
`

const decodeRuntime = `// decoder reads the protobuf encoding in b from i on. It sets bad, and
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
`
