package record

import (
	"strings"
	"unicode/utf8"
)

// ObjectIDSQL is the SQL of an entry's object_id for key expressions of
// those types (as format_type names them, or nil when unknown): the text
// of a single key, a JSON array such as [7,"eu"] for several. Every writer
// of entries renders keys with it: the rewrite, Baseline, and the relay's
// entries of outside writes, which [ObjectIDText] computes in Go when it
// can. A single key of a type whose text is its JSON text is cast, for
// less work a row.
func ObjectIDSQL(exprs, types []string) string {
	if len(exprs) == 1 {
		if types != nil {
			if typ, _, _ := strings.Cut(types[0], "("); textIsJSONText[typ] {
				return exprs[0] + "::text"
			}
		}
		return "to_jsonb(" + exprs[0] + ") #>> '{}'"
	}
	parts := make([]string, len(exprs))
	for i, e := range exprs {
		parts[i] = "to_jsonb(" + e + ")::text"
	}
	return "'[' || " + strings.Join(parts, " || ',' || ") + " || ']'"
}

// textIsJSONText lists the types (as format_type names them) whose text
// form is the text of their to_jsonb value. Not character(n): to_jsonb
// keeps its padding and ::text strips it.
var textIsJSONText = map[string]bool{
	"smallint": true, "integer": true, "bigint": true, "text": true, "character varying": true, "uuid": true,
}

// Type OIDs of ObjectIDText's key types.
const (
	oidInt8    = 20
	oidInt2    = 21
	oidInt4    = 23
	oidText    = 25
	oidVarchar = 1043
	oidUUID    = 2950
)

// ObjectIDText is what [ObjectIDSQL] computes for keys whose values are
// texts (as the types' output functions write them) of the types typeOIDs,
// when every key is an integer, text, varchar or uuid; ok is false for any
// other type, whose rendering only the server knows.
func ObjectIDText(typeOIDs []uint32, texts []string) (id string, ok bool) {
	for _, t := range typeOIDs {
		switch t {
		case oidInt2, oidInt4, oidInt8, oidText, oidVarchar, oidUUID:
		default:
			return "", false
		}
	}
	if len(texts) == 1 {
		return texts[0], true
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, v := range texts {
		if i > 0 {
			b.WriteByte(',')
		}
		switch typeOIDs[i] {
		case oidInt2, oidInt4, oidInt8:
			b.WriteString(v)
		default:
			WriteJSONString(&b, v)
		}
	}
	b.WriteByte(']')
	return b.String(), true
}

// WriteJSONString writes s as PostgreSQL's json and jsonb output (its
// escape_json) writes a string: quotes, backslashes and control
// characters escaped (\b \f \n \r \t, the others as \u00xx in lowercase
// hex), every other byte as it is.
func WriteJSONString(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			_, n := utf8.DecodeRuneInString(s[i:])
			b.WriteString(s[i : i+n])
			i += n
			continue
		}
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			} else {
				b.WriteByte(c)
			}
		}
		i++
	}
	b.WriteByte('"')
}
