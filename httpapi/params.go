package httpapi

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/auditpgx/auditpgx/store"
)

// query is a store.Query with the parameter each change filter came from,
// so that store's validation errors can name it.
type query struct {
	store.Query
	changeParams []string
}

// paramError restates a store validation error with the parameter's name.
func (q query) paramError(qe *store.QueryError) error {
	name := "parameters"
	switch {
	case qe.Field == "Limit":
		name = "limit"
	case qe.Field == "Cursor":
		name = "cursor"
		if strings.Contains(qe.Reason, "order") {
			other := "-id"
			if q.Descending {
				other = "id"
			}
			return fmt.Errorf("parameter %q: the cursor is for a listing with order=%s", name, other)
		}
	case qe.Field == "Until", qe.Field == "Since":
		// parseQuery checks the range itself; store's reason names Go fields.
		return fmt.Errorf("parameter %q: until is before since", "until")
	case strings.HasPrefix(qe.Field, "Operations"):
		name = "operation"
	case strings.HasPrefix(qe.Field, "Changes["):
		if i, err := strconv.Atoi(qe.Field[len("Changes["):strings.IndexByte(qe.Field, ']')]); err == nil && i < len(q.changeParams) {
			name = q.changeParams[i]
		}
	}
	return fmt.Errorf("parameter %q: %s", name, qe.Reason)
}

// Single-valued string parameters and the Query field each sets.
var stringParams = map[string]func(*store.Query, string){
	"table":             func(q *store.Query, v string) { q.TableName = v },
	"object_id":         func(q *store.Query, v string) { q.ObjectID = v },
	"related_table":     func(q *store.Query, v string) { q.RelatedTableName = v },
	"related_object_id": func(q *store.Query, v string) { q.RelatedObjectID = v },
	"actor":             func(q *store.Query, v string) { q.Actor = v },
	"cursor":            func(q *store.Query, v string) { q.Cursor = v },
}

// Bounds on what one request may ask for; the package documentation lists
// them.
const (
	maxLimit = 1000
	// maxParams bounds the parameters of a query string, counted as
	// url.ParseQuery counts them (the pieces between "&").
	maxParams = 1000
	// maxListValues bounds the values of one list-valued parameter
	// (operation, added, removed, changed), duplicates included.
	maxListValues = 100
	// maxChangeFilters bounds the distinct change filters (kind and field)
	// of a listing, from added, removed, changed and their dotted forms.
	maxChangeFilters = 100
	// maxValueDepth bounds the nesting of a JSON filter value.
	maxValueDepth = 100
	// maxNumberDigits and maxExponent bound a number in a JSON filter
	// value, well inside what PostgreSQL's numeric reads.
	maxNumberDigits = 1000
	maxExponent     = 1000
)

// parseParams parses a raw query string completely or not at all: a pair
// that url.ParseQuery would drop (an unescaped ";", a bad percent-escape),
// more than maxParams pairs, and a name or value that is not UTF-8 text
// PostgreSQL can take (a NUL byte, invalid UTF-8) are errors naming the
// parameter, never a partial result.
func parseParams(raw string) (url.Values, error) {
	params := url.Values{}
	if raw == "" {
		return params, nil
	}
	if n := strings.Count(raw, "&") + 1; n > maxParams {
		return nil, fmt.Errorf("the query string has %d parameters, more than the %d allowed", n, maxParams)
	}
	for rest := raw; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" {
			continue
		}
		rawName, rawValue, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			return nil, fmt.Errorf("parameter %q: the name is not valid percent-encoding", rawName)
		}
		if strings.Contains(pair, ";") {
			return nil, fmt.Errorf("parameter %q: unescaped \";\" in the query string (write it as %%3B; \";\" does not separate parameters)", name)
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, fmt.Errorf("parameter %q: the value is not valid percent-encoding", name)
		}
		if err := checkText(name); err != nil {
			return nil, fmt.Errorf("parameter %q: the name %v", name, err)
		}
		if err := checkText(value); err != nil {
			return nil, fmt.Errorf("parameter %q: the value %v", name, err)
		}
		params[name] = append(params[name], value)
	}
	// What url.ParseQuery (and so r.URL.Query) cannot parse completely is
	// refused, whatever the checks above missed.
	if _, err := url.ParseQuery(raw); err != nil {
		return nil, fmt.Errorf("the query string does not parse: %v", err)
	}
	return params, nil
}

// checkText reports why s cannot be sent to PostgreSQL as text: a NUL
// byte or invalid UTF-8, which the server refuses (SQLSTATE 22021).
func checkText(s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("contains a NUL byte")
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("is not valid UTF-8")
	}
	return nil
}

// parseQuery reads the parameters of GET /entries. Errors name the
// parameter.
func parseQuery(params url.Values) (query, error) {
	var q query
	// Sorted, so that of several bad parameters the same one is reported.
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	slices.Sort(names)

	changes := map[string]int{} // index in q.Changes by kind and field
	change := func(param string, kind store.ChangeKind, field string) (*store.ChangeFilter, error) {
		key := string(kind) + "\x00" + field
		i, ok := changes[key]
		if !ok {
			if len(q.Changes) == maxChangeFilters {
				return nil, fmt.Errorf("parameter %q: more than %d change filters (added, removed, changed and their dotted forms)", param, maxChangeFilters)
			}
			i = len(q.Changes)
			changes[key] = i
			q.Changes = append(q.Changes, store.ChangeFilter{Kind: kind, Field: field})
			q.changeParams = append(q.changeParams, param)
		}
		return &q.Changes[i], nil
	}
	for _, name := range names {
		values := params[name]
		if set, ok := stringParams[name]; ok {
			v, err := single(params, name)
			if err != nil {
				return query{}, err
			}
			set(&q.Query, v)
			continue
		}
		switch name {
		case "operation":
			n := 0
			for _, v := range values {
				for op := range strings.SplitSeq(v, ",") {
					if n++; n > maxListValues {
						return query{}, fmt.Errorf("parameter %q: more than %d values", name, maxListValues)
					}
					op = strings.TrimSpace(op)
					if !store.Operation(op).Valid() {
						return query{}, fmt.Errorf("parameter %q: %q is not one of create, update, delete, associate, disassociate, truncate, snapshot, suppressed", name, op)
					}
					if !slices.Contains(q.Operations, store.Operation(op)) {
						q.Operations = append(q.Operations, store.Operation(op))
					}
				}
			}
			continue
		case "added", "removed", "changed":
			if len(values) > maxListValues {
				return query{}, fmt.Errorf("parameter %q: more than %d values", name, maxListValues)
			}
			for _, field := range values {
				if field == "" {
					return query{}, fmt.Errorf("parameter %q: empty field name", name)
				}
				if _, err := change(name, store.ChangeKind(name), field); err != nil {
					return query{}, err
				}
			}
			continue
		}
		v, err := single(params, name)
		if err != nil {
			return query{}, err
		}
		switch {
		case name == "tx_id":
			if q.TxID, err = strconv.ParseInt(v, 10, 64); err != nil || q.TxID <= 0 {
				return query{}, fmt.Errorf("parameter %q: %q is not a positive integer", name, v)
			}
		case name == "since":
			if q.Since, err = parseTime(name, v); err != nil {
				return query{}, err
			}
		case name == "until":
			if q.Until, err = parseTime(name, v); err != nil {
				return query{}, err
			}
		case name == "limit":
			if q.Limit, err = strconv.Atoi(v); err != nil || q.Limit < 1 || q.Limit > maxLimit {
				return query{}, fmt.Errorf("parameter %q: %q is not an integer from 1 to %d", name, v, maxLimit)
			}
		case name == "order":
			switch v {
			case "id":
			case "-id":
				q.Descending = true
			default:
				return query{}, fmt.Errorf("parameter %q: %q is not id or -id", name, v)
			}
		case strings.HasPrefix(name, "added.") && len(name) > len("added."):
			err = setChange(change, name, store.FieldAdded, name[len("added."):], v, true)
		case strings.HasPrefix(name, "removed.") && len(name) > len("removed."):
			err = setChange(change, name, store.FieldRemoved, name[len("removed."):], v, false)
		case strings.HasPrefix(name, "changed.") && strings.HasSuffix(name, ".from") && len(name) > len("changed..from"):
			err = setChange(change, name, store.FieldChanged, name[len("changed."):len(name)-len(".from")], v, false)
		case strings.HasPrefix(name, "changed.") && strings.HasSuffix(name, ".to") && len(name) > len("changed..to"):
			err = setChange(change, name, store.FieldChanged, name[len("changed."):len(name)-len(".to")], v, true)
		case strings.HasPrefix(name, "context.") && len(name) > len("context."):
			err = setContext(&q.Query, name, v)
		default:
			return query{}, unknownParam(url.Values{name: nil}, nil)
		}
		if err != nil {
			return query{}, err
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return query{}, fmt.Errorf("parameter %q: until %s is before since %s", "until",
			q.Until.Format(time.RFC3339Nano), q.Since.Format(time.RFC3339Nano))
	}
	return q, nil
}

// setContext adds the filter of a context.<key> parameter: the entry
// context's key holds the value, read as JSON when it is JSON and as a
// string otherwise (context.request_id=r-42).
func setContext(q *store.Query, param, v string) error {
	if len(q.Context) == maxChangeFilters {
		return fmt.Errorf("parameter %q: more than %d context filters", param, maxChangeFilters)
	}
	raw, err := jsonValue(param, v)
	if err != nil {
		return err
	}
	var value any
	if err := json.Unmarshal(raw, &value); err != nil {
		return fmt.Errorf("parameter %q: %v", param, err)
	}
	if q.Context == nil {
		q.Context = map[string]any{}
	}
	q.Context[param[len("context."):]] = value
	return nil
}

// setChange sets the value of a dotted change parameter: the To (after)
// value when to, else the From (before) value.
func setChange(change func(string, store.ChangeKind, string) (*store.ChangeFilter, error),
	param string, kind store.ChangeKind, field, v string, to bool) error {
	value, err := jsonValue(param, v)
	if err != nil {
		return err
	}
	f, err := change(param, kind, field)
	if err != nil {
		return err
	}
	if to {
		f.To = value
	} else {
		f.From = value
	}
	return nil
}

// jsonValue reads a filter value: JSON when it parses, else a string. JSON
// that PostgreSQL's jsonb cannot read is an error naming the parameter.
func jsonValue(param, v string) (json.RawMessage, error) {
	if !json.Valid([]byte(v)) {
		b, err := json.Marshal(v) // v is valid UTF-8 without NUL: parseParams checked
		return b, err
	}
	if err := checkJSON(v); err != nil {
		return nil, fmt.Errorf("parameter %q: %v", param, err)
	}
	return json.RawMessage(v), nil
}

// checkJSON reports what in valid JSON text PostgreSQL's jsonb refuses or
// the bounds above exclude: the escape \u0000, an unpaired UTF-16
// surrogate escape, a number beyond maxNumberDigits or maxExponent, and
// nesting deeper than maxValueDepth.
func checkJSON(v string) error {
	depth := 0
	for i := 0; i < len(v); {
		switch c := v[i]; {
		case c == '"':
			i++
			for v[i] != '"' {
				if v[i] != '\\' {
					i++
					continue
				}
				if v[i+1] != 'u' {
					i += 2
					continue
				}
				r := hex4(v[i+2 : i+6])
				i += 6
				switch {
				case r == 0:
					return fmt.Errorf(`the JSON escape \u0000 cannot be matched (jsonb does not store it)`)
				case utf16.IsSurrogate(r) && r < 0xdc00 && i+6 <= len(v) && v[i] == '\\' && v[i+1] == 'u' &&
					utf16.DecodeRune(r, hex4(v[i+2:i+6])) != utf8.RuneError:
					i += 6 // a surrogate pair
				case utf16.IsSurrogate(r):
					return fmt.Errorf(`the JSON escape \u%04x is an unpaired UTF-16 surrogate`, r)
				}
			}
			i++
		case c == '[' || c == '{':
			if depth++; depth > maxValueDepth {
				return fmt.Errorf("the JSON value is nested more than %d deep", maxValueDepth)
			}
			i++
		case c == ']' || c == '}':
			depth--
			i++
		case c == '-' || '0' <= c && c <= '9':
			j := i
			for j < len(v) && strings.IndexByte("+-.eE0123456789", v[j]) >= 0 {
				j++
			}
			if err := checkNumber(v[i:j]); err != nil {
				return err
			}
			i = j
		default:
			i++
		}
	}
	return nil
}

// hex4 reads the four hex digits of a \u escape in valid JSON.
func hex4(s string) rune {
	n, _ := strconv.ParseUint(s, 16, 32)
	return rune(n)
}

// checkNumber bounds a JSON number's digits and exponent.
func checkNumber(n string) error {
	mantissa, exp, hasExp := strings.Cut(strings.ToLower(n), "e")
	intPart, frac, _ := strings.Cut(strings.TrimPrefix(mantissa, "-"), ".")
	if len(strings.TrimLeft(intPart, "0"))+len(frac) > maxNumberDigits {
		return fmt.Errorf("the number %s has more than %d digits", abbrev(n), maxNumberDigits)
	}
	if hasExp {
		e, err := strconv.Atoi(exp)
		if err != nil || e < -maxExponent || e > maxExponent {
			return fmt.Errorf("the number %s has an exponent beyond ±%d", abbrev(n), maxExponent)
		}
	}
	return nil
}

// abbrev shortens text quoted in an error.
func abbrev(s string) string {
	if len(s) <= 40 {
		return s
	}
	return s[:20] + "…" + s[len(s)-10:]
}

// single returns the one value of a parameter, "" when absent.
func single(params url.Values, name string) (string, error) {
	switch vs := params[name]; len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	default:
		return "", fmt.Errorf("parameter %q: given %d times, want once", name, len(vs))
	}
}

// unknownParam returns an error for the first parameter (in sorted order)
// not in known, nil when there is none.
func unknownParam(params url.Values, known map[string]bool) error {
	var names []string
	for name := range params {
		if !known[name] {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	return fmt.Errorf("unknown parameter %q", names[0])
}

func parseTime(name, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("parameter %q: %q is not an RFC 3339 time such as 2024-03-01T12:00:00Z", name, v)
	}
	return t, nil
}
