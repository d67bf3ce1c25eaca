package main

import (
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/auditpgx/auditpgx/store"
)

// when writes an entry's time in UTC to the second; JSON output keeps the
// full precision.
func when(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// cell makes text safe for one tabwriter cell: text with tabs, newlines or
// other control characters is quoted, as is text that would read as empty.
func cell(s string) string {
	if s == "" || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

func actor(e *store.Entry) string {
	if e.CreatedBy == nil {
		return "-"
	}
	return cell(*e.CreatedBy)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// related describes an association entry's other side: "members: users 7".
func related(e *store.Entry) string {
	return cell(deref(e.RelatedFieldName)) + ": " + cell(deref(e.RelatedTableName)) + " " + cell(deref(e.RelatedObjectID))
}

// fields lists the names an entry's changes mention, sorted.
func fields(e *store.Entry) []string {
	if e.Changes == nil {
		return nil
	}
	var names []string
	for k := range e.Changes.AddedFields {
		names = append(names, k)
	}
	for k := range e.Changes.RemovedFields {
		names = append(names, k)
	}
	for k := range e.Changes.ChangedFields {
		names = append(names, k)
	}
	for k := range e.Changes.ReplacedFields {
		names = append(names, k)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// summary is the CHANGES column of the log table.
func summary(e *store.Entry) string {
	var s string
	switch e.Operation {
	case store.OpAssociate, store.OpDisassociate:
		s = related(e)
	case store.OpSuppressed:
		s = suppressed(e)
	default:
		names := fields(e)
		for i, n := range names {
			names[i] = cell(n)
		}
		s = strings.Join(names, ", ")
	}
	const max = 60
	if r := []rune(s); len(r) > max {
		s = string(r[:max-1]) + "…"
	}
	return s
}

// suppressed describes a suppressed entry: the rows its statement wrote
// without entries of their own.
func suppressed(e *store.Entry) string {
	if e.Rows == nil {
		return "rows not recorded"
	}
	return strconv.FormatInt(*e.Rows, 10) + " rows, no entries"
}

// value writes a JSON value for people: as stored, strings quoted, "null"
// for a missing one.
func value(v json.RawMessage) string {
	if len(v) == 0 {
		return "null"
	}
	return cell(string(v))
}

// jsonLines writes each value as one line of JSON.
func jsonLines[T any](w io.Writer, values []T) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, v := range values {
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return nil
}
