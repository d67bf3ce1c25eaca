package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/auditpgx/auditpgx/internal/record"
)

// ObjectID renders primary-key values as the object_id column spells them,
// each value being JSON as to_jsonb renders the key column:
//
//	ObjectID(json.RawMessage(`7`))                          // 7
//	ObjectID(json.RawMessage(`"eu"`))                       // eu
//	ObjectID(json.RawMessage(`7`), json.RawMessage(`"eu"`)) // [7,"eu"]
//
// One value is written as PostgreSQL's to_jsonb(key) #>> '{}' writes it: a
// string without its quotes, anything else as its JSON text. Several are a
// JSON array with no space after its commas, each element written as
// to_jsonb(key)::text writes it.
//
// JSON text is put in the form PostgreSQL's jsonb output uses, so values
// read back from entries come out unchanged and values built in Go agree
// with them: numbers as numeric prints them (1e2 is 100, 1.50 stays 1.50),
// arrays and objects with a space after each comma and colon, object keys
// in jsonb's order (shorter first), and strings escaped only where JSON
// requires it. A value that is not valid JSON is used as its trimmed text.
func ObjectID(values ...json.RawMessage) string {
	if len(values) == 1 {
		v, err := decodeValue(values[0])
		if err != nil {
			return string(bytes.TrimSpace(values[0]))
		}
		if s, ok := v.(string); ok {
			return s
		}
		return pgJSON(v)
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, raw := range values {
		if i > 0 {
			b.WriteByte(',')
		}
		v, err := decodeValue(raw)
		if err != nil {
			b.Write(bytes.TrimSpace(raw))
			continue
		}
		b.WriteString(pgJSON(v))
	}
	b.WriteByte(']')
	return b.String()
}

// keyValues is the inverse of ObjectID for a key of n columns: the JSON of
// each key value. One column cannot be inverted (a string and a number
// print alike), so it is only defined for n > 1.
func keyValues(objectID string, n int) ([]json.RawMessage, error) {
	var vals []json.RawMessage
	if err := json.Unmarshal([]byte(objectID), &vals); err != nil || len(vals) != n {
		return nil, fmt.Errorf("object id %q is not a JSON array of %d key values", objectID, n)
	}
	return vals, nil
}

// decodeValue decodes one JSON value, keeping numbers as written.
func decodeValue(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the JSON value")
	}
	return v, nil
}

// pgJSON writes a decoded value as jsonb's output function does.
func pgJSON(v any) string {
	var b strings.Builder
	writePGJSON(&b, v)
	return b.String()
}

func writePGJSON(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case json.Number:
		b.WriteString(pgNumber(string(x)))
	case string:
		record.WriteJSONString(b, x)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writePGJSON(b, e)
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		// jsonb orders keys by length, then bytewise.
		slices.SortFunc(keys, func(a, b string) int {
			if len(a) != len(b) {
				return len(a) - len(b)
			}
			return strings.Compare(a, b)
		})
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			record.WriteJSONString(b, k)
			b.WriteString(": ")
			writePGJSON(b, x[k])
		}
		b.WriteByte('}')
	}
}

// pgNumber writes a JSON number as numeric_out writes the numeric that
// numeric_in reads from it: the exponent applied, the scale kept
// (1.50 stays 1.50, 1.5e1 is 15, 1e-2 is 0.01), no sign on zero.
func pgNumber(s string) string {
	neg := strings.HasPrefix(s, "-")
	m := strings.TrimPrefix(s, "-")
	exp := 0
	if i := strings.IndexAny(m, "eE"); i >= 0 {
		e, err := strconv.Atoi(strings.TrimPrefix(m[i+1:], "+"))
		if err != nil || e > 1000 || e < -1000 {
			return s // beyond what numeric accepts
		}
		exp, m = e, m[:i]
	}
	intPart, frac, _ := strings.Cut(m, ".")
	digits := intPart + frac
	shift := exp - len(frac) // value = digits × 10^shift
	var out string
	if shift >= 0 {
		out = strings.TrimLeft(digits+strings.Repeat("0", shift), "0")
		if out == "" {
			out = "0"
		}
	} else {
		scale := -shift
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		ip := strings.TrimLeft(digits[:len(digits)-scale], "0")
		if ip == "" {
			ip = "0"
		}
		out = ip + "." + digits[len(digits)-scale:]
	}
	if neg && strings.Trim(out, "0.") != "" {
		out = "-" + out
	}
	return out
}
