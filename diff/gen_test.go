package diff_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// A genColumn is a column of the agreement test's tables with a generator of
// values written as PostgreSQL input text (nil for NULL).
type genColumn struct {
	name, typ string
	gen       func(r *rand.Rand) string
	// respell returns another spelling of the same value, one that to_jsonb
	// may render differently but that jsonb equality treats as equal. Nil
	// when the type has a single spelling.
	respell func(r *rand.Rand, v string) string
}

const nullProbability = 0.15

func (c genColumn) value(r *rand.Rand) *string {
	if r.Float64() < nullProbability {
		return nil
	}
	v := c.gen(r)
	return &v
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

func genInt(r *rand.Rand) string {
	if r.IntN(4) == 0 {
		return pick(r, "0", "-1", "2147483647", "-2147483648")
	}
	return strconv.Itoa(r.IntN(2001) - 1000)
}

func genBigint(r *rand.Rand) string {
	if r.IntN(4) == 0 {
		return pick(r, "0", "9223372036854775807", "-9223372036854775808")
	}
	return strconv.FormatInt(r.Int64()>>r.IntN(63)*int64(pick(r, 1, -1)), 10)
}

func genNumeric(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return pick(r, "0", "-0", "0.000", "1.5", "1.50", "-1.5", "1e3", "1000",
			"123456789012345678901234567890.000000001", "123456789012345678901234567890.0000000010",
			"0.000000000000000000000000000001", "NaN", "Infinity", "-Infinity")
	}
	digits := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteByte(byte('0' + r.IntN(10)))
		}
		return b.String()
	}
	s := strings.TrimLeft(digits(1+r.IntN(25)), "0")
	if s == "" {
		s = "0"
	}
	if r.IntN(2) == 0 {
		s += "." + digits(1+r.IntN(12))
	}
	if r.IntN(3) == 0 {
		s = "-" + s
	}
	return s
}

// respellNumber appends zeros to the fraction: same numeric value, another
// scale, so jsonb keeps the new text.
func respellNumber(r *rand.Rand, v string) string {
	if strings.ContainsAny(v, "NnIieE") {
		return v
	}
	if !strings.Contains(v, ".") {
		v += "."
	}
	return v + strings.Repeat("0", 1+r.IntN(3))
}

const textAlphabet = "abcXYZ 09'\"\\$%{}[],:\n\téß€😀\u2028"

func genText(r *rand.Rand) string {
	if r.IntN(8) == 0 {
		return pick(r, "", "$encrypted$", "null", "1.5", `{"a":1}`, "NULL")
	}
	runes := []rune(textAlphabet)
	n := r.IntN(12)
	var b strings.Builder
	for range n {
		b.WriteRune(runes[r.IntN(len(runes))])
	}
	return b.String()
}

func genBool(r *rand.Rand) string { return pick(r, "true", "false") }

func respellBool(r *rand.Rand, v string) string {
	if v == "true" {
		return pick(r, "t", "yes", "on", "1")
	}
	return pick(r, "f", "no", "off", "0")
}

var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func genTimestamptz(r *rand.Rand) string {
	if r.IntN(10) == 0 {
		return pick(r, "infinity", "-infinity")
	}
	t := epoch.Add(time.Duration(r.Int64N(int64(50 * 365 * 24 * time.Hour)))).Add(-25 * 365 * 24 * time.Hour)
	if r.IntN(2) == 0 {
		t = t.Truncate(time.Second)
	}
	return t.Format("2006-01-02 15:04:05.999999Z07:00")
}

// respellTimestamptz writes the same instant in another zone.
func respellTimestamptz(r *rand.Rand, v string) string {
	t, err := time.Parse("2006-01-02 15:04:05.999999Z07:00", v)
	if err != nil {
		return v
	}
	zone := time.FixedZone("", pick(r, 2, -5, 9)*3600+pick(r, 0, 30)*60)
	return t.In(zone).Format("2006-01-02 15:04:05.999999-07:00")
}

func genDate(r *rand.Rand) string {
	if r.IntN(10) == 0 {
		return pick(r, "infinity", "-infinity")
	}
	return epoch.AddDate(0, 0, r.IntN(20000)-10000).Format("2006-01-02")
}

func genUUID(r *rand.Rand) string {
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xffff, r.Uint32()&0xffff, r.Uint64()&0xffffffffffff)
}

func respellUUID(_ *rand.Rand, v string) string { return strings.ToUpper(v) }

func genBytea(r *rand.Rand) string {
	b := make([]byte, r.IntN(8))
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return fmt.Sprintf(`\x%x`, b)
}

func genTextArray(r *rand.Rand) string {
	n := r.IntN(4)
	elems := make([]string, n)
	for i := range elems {
		if r.IntN(6) == 0 {
			elems[i] = "NULL"
			continue
		}
		s := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(genText(r))
		elems[i] = `"` + s + `"`
	}
	return "{" + strings.Join(elems, ",") + "}"
}

var moods = []string{"happy", "sad", "it's complicated"}

func genEnum(r *rand.Rand) string { return pick(r, moods...) }

func genFloat(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return pick(r, "0", "-0", "NaN", "Infinity", "-Infinity", "1e300", "-1e-300", "5e-324",
			"0.1", "1.5", "1.7976931348623157e308", "123456789.123456789")
	}
	return strconv.FormatFloat(r.NormFloat64()*math.Pow(10, float64(r.IntN(20)-10)), 'g', -1, 64)
}

// respellFloat writes the same double another way; -0 and 0 are also equal
// in jsonb, since to_jsonb renders -0 as 0.
func respellFloat(r *rand.Rand, v string) string {
	switch v {
	case "0":
		return "-0"
	case "-0":
		return "0"
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return v
	}
	return pick(r, strconv.FormatFloat(f, 'e', -1, 64), respellNumber(r, strconv.FormatFloat(f, 'f', -1, 64)))
}

// jsonNode is a generated JSON value that can be rendered in more than one
// spelling.
type jsonNode struct {
	kind string // null, bool, num, str, arr, obj
	text string // bool, num, str
	kids []jsonNode
	keys []string
}

func genJSONNode(r *rand.Rand, depth int) jsonNode {
	kinds := []string{"null", "bool", "num", "num", "str", "str"}
	if depth < 3 {
		kinds = append(kinds, "arr", "obj", "obj")
	}
	n := jsonNode{kind: pick(r, kinds...)}
	switch n.kind {
	case "bool":
		n.text = genBool(r)
	case "num":
		n.text = pick(r, "0", "1", "1.0", "-2.50", "1e2", "3.14159", "123456789012345678901234567890.5", genNumeric(r))
		if strings.ContainsAny(n.text, "NI") {
			n.text = "7"
		}
	case "str":
		n.text = jsonString(genText(r))
	case "arr":
		for range r.IntN(4) {
			n.kids = append(n.kids, genJSONNode(r, depth+1))
		}
	case "obj":
		seen := map[string]bool{}
		for range r.IntN(4) {
			k := pick(r, "a", "b", "key", "Ü", "", "a b", `q"t`)
			if seen[k] {
				continue
			}
			seen[k] = true
			n.keys = append(n.keys, k)
			n.kids = append(n.kids, genJSONNode(r, depth+1))
		}
	}
	return n
}

// render writes n as JSON; respelled, numbers gain trailing zeros and object
// keys come in reverse order, which jsonb equality ignores.
func (n jsonNode) render(r *rand.Rand, respelled bool) string {
	switch n.kind {
	case "null":
		return "null"
	case "bool", "str":
		return n.text
	case "num":
		if respelled && r.IntN(2) == 0 {
			return respellNumber(r, n.text)
		}
		return n.text
	case "arr":
		parts := make([]string, len(n.kids))
		for i, k := range n.kids {
			parts[i] = k.render(r, respelled)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	parts := make([]string, len(n.kids))
	for i, k := range n.kids {
		parts[i] = jsonString(n.keys[i]) + ": " + k.render(r, respelled)
	}
	if respelled {
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// genJSONPair returns a random JSON value and either another spelling of it
// or a value derived from it that may or may not be equal.
func genJSONPair(r *rand.Rand) (string, string) {
	n := genJSONNode(r, 0)
	if r.IntN(2) == 0 {
		return n.render(r, false), n.render(r, true)
	}
	m := n
	if len(m.kids) > 0 && r.IntN(2) == 0 {
		m.kids = append([]jsonNode(nil), m.kids...)
		m.kids[r.IntN(len(m.kids))] = genJSONNode(r, 1)
	} else {
		m = genJSONNode(r, 0)
	}
	return n.render(r, false), m.render(r, r.IntN(2) == 0)
}

func jsonString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}
