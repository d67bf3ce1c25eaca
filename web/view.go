package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/store"
)

// entryView is an entry as the pages show it.
type entryView struct {
	store.Entry
	Time    timeView
	Actor   string // "" for an entry without one
	Summary string
	// Link paths, relative to the mount point.
	EntryPath, ObjectPath, TxPath, RelatedPath string
	// Current marks, in an object's history, the entries of the state shown.
	Current bool
}

// timeView is a time in the page's zone, with its UTC form for the hover
// text and the machine-readable datetime attribute.
type timeView struct {
	Local, UTC, ISO string
}

func newTimeView(t time.Time, loc *time.Location) timeView {
	return timeView{
		Local: t.In(loc).Format("2006-01-02 15:04:05 MST"),
		UTC:   t.UTC().Format("2006-01-02 15:04:05.000000 UTC"),
		ISO:   t.UTC().Format(time.RFC3339Nano),
	}
}

func (h *Handler) view(e store.Entry) entryView {
	v := entryView{
		Entry:     e,
		Time:      newTimeView(e.Created, h.cfg.Location),
		Summary:   summary(&e),
		EntryPath: "/entries/" + strconv.FormatInt(e.ID, 10),
		TxPath:    "/transactions/" + strconv.FormatInt(e.TxID, 10),
	}
	if e.CreatedBy != nil {
		v.Actor = *e.CreatedBy
	}
	if e.ObjectID != "" {
		v.ObjectPath = objectPath(e.TableName, e.ObjectID)
	}
	if e.RelatedTableName != nil && e.RelatedObjectID != nil {
		v.RelatedPath = objectPath(*e.RelatedTableName, *e.RelatedObjectID)
	}
	return v
}

func (h *Handler) views(entries []store.Entry) []entryView {
	views := make([]entryView, len(entries))
	for i, e := range entries {
		views[i] = h.view(e)
	}
	return views
}

func objectPath(table, id string) string {
	return "/objects/" + url.PathEscape(table) + "/" + url.PathEscape(id)
}

// maxSummary bounds the one-line summary of an entry, in runes.
const maxSummary = 160

// summary is a one-line account of what an entry changed.
func summary(e *store.Entry) string {
	var parts []string
	switch {
	case e.IsBaselineMarker():
		return fmt.Sprintf("baseline of %d rows", e.Baseline.Rows)
	case e.Operation == store.OpSuppressed:
		s := "rows written without entries"
		if e.Rows != nil {
			s = fmt.Sprintf("%d rows written without entries", *e.Rows)
		}
		var c struct {
			Reason string `json:"reason"`
		}
		if json.Unmarshal(e.Context, &c) == nil && c.Reason != "" {
			s += ": " + c.Reason
		}
		return s
	case e.Operation == store.OpTruncate:
		return "table truncated"
	case e.Operation == store.OpAssociate || e.Operation == store.OpDisassociate:
		sign := "+"
		if e.Operation == store.OpDisassociate {
			sign = "−"
		}
		return fmt.Sprintf("%s %s %s %s", deref(e.RelatedFieldName), sign, deref(e.RelatedTableName), deref(e.RelatedObjectID))
	case e.Changes == nil:
		return ""
	}
	c := e.Changes
	for _, f := range slices.Sorted(maps.Keys(c.ChangedFields)) {
		pair := c.ChangedFields[f]
		parts = append(parts, f+": "+compact(pair[0])+" → "+compact(pair[1]))
	}
	for _, f := range slices.Sorted(maps.Keys(c.ReplacedFields)) {
		parts = append(parts, f+": ? → "+compact(c.ReplacedFields[f]))
	}
	for _, f := range slices.Sorted(maps.Keys(c.AddedFields)) {
		parts = append(parts, f+"="+compact(c.AddedFields[f]))
	}
	for _, f := range slices.Sorted(maps.Keys(c.RemovedFields)) {
		parts = append(parts, f+"="+compact(c.RemovedFields[f]))
	}
	return truncate(strings.Join(parts, ", "), maxSummary)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// redactedJSON is how a redacted column's value is recorded.
const redactedJSON = `"` + diff.Encrypted + `"`

// compact renders a JSON value on one line, a redacted one as [redacted].
func compact(v json.RawMessage) string {
	if v == nil {
		return "null"
	}
	if string(v) == redactedJSON {
		return "[redacted]"
	}
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return string(v)
	}
	return truncate(b.String(), 60)
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// value is one side of a diff cell.
type value struct {
	Present  bool   // false: the side has no value (an added field's old side)
	Unknown  bool   // the old value could not be read (replaced_fields)
	Redacted bool   // recorded as redacted: shown as such, never as data
	Text     string // the JSON value, pretty-printed
}

func newValue(v json.RawMessage) value {
	if string(v) == redactedJSON {
		return value{Present: true, Redacted: true}
	}
	if v == nil {
		v = json.RawMessage("null")
	}
	var b bytes.Buffer
	if json.Indent(&b, v, "", "  ") != nil {
		return value{Present: true, Text: string(v)}
	}
	return value{Present: true, Text: b.String()}
}

// diffRow is one field of an entry's diff.
type diffRow struct {
	Field    string
	Kind     string // added, removed, changed
	Old, New value
}

// diffRows lists an entry's fields in name order: changed first, then
// added, then removed, as an update, a create and a delete show them.
func diffRows(c *diff.Changes) []diffRow {
	if c == nil {
		return nil
	}
	var rows []diffRow
	for _, f := range slices.Sorted(maps.Keys(c.ChangedFields)) {
		p := c.ChangedFields[f]
		rows = append(rows, diffRow{Field: f, Kind: "changed", Old: newValue(p[0]), New: newValue(p[1])})
	}
	for _, f := range slices.Sorted(maps.Keys(c.ReplacedFields)) {
		rows = append(rows, diffRow{Field: f, Kind: "changed", Old: value{Present: true, Unknown: true}, New: newValue(c.ReplacedFields[f])})
	}
	for _, f := range slices.Sorted(maps.Keys(c.AddedFields)) {
		rows = append(rows, diffRow{Field: f, Kind: "added", New: newValue(c.AddedFields[f])})
	}
	for _, f := range slices.Sorted(maps.Keys(c.RemovedFields)) {
		rows = append(rows, diffRow{Field: f, Kind: "removed", Old: newValue(c.RemovedFields[f])})
	}
	return rows
}

// imageRows lists an object's state, in field order.
func imageRows(img diff.Image) []diffRow {
	var rows []diffRow
	for _, f := range slices.Sorted(maps.Keys(img)) {
		rows = append(rows, diffRow{Field: f, New: newValue(img[f])})
	}
	return rows
}

// txGroup is a run of consecutive entries of one transaction in a listing.
type txGroup struct {
	TxID    int64
	TxPath  string
	Entries []entryView
}

func group(entries []entryView) []txGroup {
	var gs []txGroup
	for _, e := range entries {
		if n := len(gs); n > 0 && gs[n-1].TxID == e.TxID {
			gs[n-1].Entries = append(gs[n-1].Entries, e)
			continue
		}
		gs = append(gs, txGroup{TxID: e.TxID, TxPath: e.TxPath, Entries: []entryView{e}})
	}
	return gs
}
