package diff

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"strings"
)

// Equal reports whether a and b are equal as PostgreSQL jsonb values:
// numbers compare by numeric value (1.0 equals 1.00, 1e2 equals 100), objects
// by key set and values regardless of key order, arrays element by element,
// strings by their decoded bytes, and true, false and null by kind. A raw
// scalar never equals a one-element array holding it, as in jsonb.
//
// An empty or nil value is JSON null. Text that is not valid JSON equals only
// the same text.
func Equal(a, b json.RawMessage) bool {
	va, errA := decodeJSON(a)
	vb, errB := decodeJSON(b)
	if errA != nil || errB != nil {
		return errA != nil && errB != nil && bytes.Equal(bytes.TrimSpace(a), bytes.TrimSpace(b))
	}
	return equalValues(va, vb)
}

func decodeJSON(raw json.RawMessage) (any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errTrailingData
	}
	return v, nil
}

var errTrailingData = errors.New("diff: data after JSON value")

func equalValues(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case json.Number:
		y, ok := b.(json.Number)
		return ok && equalNumbers(string(x), string(y))
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalValues(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !equalValues(xv, yv) {
				return false
			}
		}
		return true
	}
	return false
}

// equalNumbers compares two JSON numbers exactly. It works on the decimal
// digits rather than a big.Rat so that an exponent such as 1e999999999 costs
// nothing.
func equalNumbers(a, b string) bool {
	na, da, ea := canonicalNumber(a)
	nb, db, eb := canonicalNumber(b)
	return na == nb && da == db && ea.Cmp(eb) == 0
}

// canonicalNumber splits a valid JSON number into sign, significant digits
// without leading or trailing zeros, and the power of ten they are scaled by.
// Zero is (false, "", 0) whatever its sign or spelling.
func canonicalNumber(s string) (neg bool, digits string, exp *big.Int) {
	exp = new(big.Int)
	neg = strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		exp.SetString(strings.TrimPrefix(s[i+1:], "+"), 10)
		s = s[:i]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	digits = strings.TrimLeft(intPart+frac, "0")
	exp.Sub(exp, big.NewInt(int64(len(frac))))
	trimmed := strings.TrimRight(digits, "0")
	exp.Add(exp, big.NewInt(int64(len(digits)-len(trimmed))))
	digits = trimmed
	if digits == "" {
		return false, "", new(big.Int)
	}
	return neg, digits, exp
}
