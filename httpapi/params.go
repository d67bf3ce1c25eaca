package httpapi

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

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
	case qe.Field == "Until":
		name = "until"
	case qe.Field == "Since":
		name = "since"
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

const maxLimit = 1000

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
	change := func(param string, kind store.ChangeKind, field string) *store.ChangeFilter {
		key := string(kind) + "\x00" + field
		i, ok := changes[key]
		if !ok {
			i = len(q.Changes)
			changes[key] = i
			q.Changes = append(q.Changes, store.ChangeFilter{Kind: kind, Field: field})
			q.changeParams = append(q.changeParams, param)
		}
		return &q.Changes[i]
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
			for _, v := range values {
				for op := range strings.SplitSeq(v, ",") {
					op = strings.TrimSpace(op)
					if !store.Operation(op).Valid() {
						return query{}, fmt.Errorf("parameter %q: %q is not one of create, update, delete, associate, disassociate, truncate", name, op)
					}
					q.Operations = append(q.Operations, store.Operation(op))
				}
			}
			continue
		case "added", "removed", "changed":
			for _, field := range values {
				if field == "" {
					return query{}, fmt.Errorf("parameter %q: empty field name", name)
				}
				change(name, store.ChangeKind(name), field)
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
			f := change(name, store.FieldAdded, name[len("added."):])
			f.To = jsonValue(v)
		case strings.HasPrefix(name, "removed.") && len(name) > len("removed."):
			f := change(name, store.FieldRemoved, name[len("removed."):])
			f.From = jsonValue(v)
		case strings.HasPrefix(name, "changed.") && strings.HasSuffix(name, ".from") && len(name) > len("changed..from"):
			f := change(name, store.FieldChanged, name[len("changed."):len(name)-len(".from")])
			f.From = jsonValue(v)
		case strings.HasPrefix(name, "changed.") && strings.HasSuffix(name, ".to") && len(name) > len("changed..to"):
			f := change(name, store.FieldChanged, name[len("changed."):len(name)-len(".to")])
			f.To = jsonValue(v)
		default:
			return query{}, unknownParam(url.Values{name: nil}, nil)
		}
	}
	return q, nil
}

// jsonValue reads a filter value: JSON when it parses, else a string.
func jsonValue(v string) json.RawMessage {
	if json.Valid([]byte(v)) {
		return json.RawMessage(v)
	}
	b, _ := json.Marshal(v)
	return b
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
