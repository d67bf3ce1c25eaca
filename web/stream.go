package web

import (
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/auditpgx/auditpgx/store"
)

// pageSize is the number of entries on a stream page.
const pageSize = 100

// filters are the stream's filter parameters as the form shows them.
type filters struct {
	Table, Actor, Operation, Since, Until, Changed, Tx, Request, Fingerprint string
}

// filterParams names the filter parameters, in the order links write them.
var filterParams = []string{"table", "actor", "operation", "since", "until", "changed", "tx", "request", "fingerprint"}

func (f *filters) field(name string) *string {
	switch name {
	case "table":
		return &f.Table
	case "actor":
		return &f.Actor
	case "operation":
		return &f.Operation
	case "since":
		return &f.Since
	case "until":
		return &f.Until
	case "changed":
		return &f.Changed
	case "tx":
		return &f.Tx
	case "request":
		return &f.Request
	case "fingerprint":
		return &f.Fingerprint
	}
	return nil
}

// values returns the set filters as URL parameters.
func (f *filters) values() url.Values {
	v := url.Values{}
	for _, name := range filterParams {
		if s := *f.field(name); s != "" {
			v.Set(name, s)
		}
	}
	return v
}

// position is where a stream page starts: before an id (older entries,
// newest first) or after one (newer entries).
type position struct {
	before, after int64
}

// parseStream reads a stream URL's parameters: the filters, and the page
// position. An empty parameter is no filter, as a form submits an empty
// field. Errors name the parameter.
func parseStream(raw string, loc *time.Location) (filters, position, error) {
	var (
		f   filters
		pos position
	)
	params, err := url.ParseQuery(raw)
	if err != nil {
		return f, pos, fmt.Errorf("the address's parameters do not parse: %v", err)
	}
	for _, name := range slices.Sorted(maps.Keys(params)) {
		vs := params[name]
		if len(vs) > 1 {
			return f, pos, fmt.Errorf("parameter %q is given %d times", name, len(vs))
		}
		v := strings.TrimSpace(vs[0])
		if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
			return f, pos, fmt.Errorf("parameter %q is not text", name)
		}
		switch name {
		case "before", "after":
			if v == "" {
				continue
			}
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil || id <= 0 {
				return f, pos, fmt.Errorf("parameter %q: %q is not an entry id", name, v)
			}
			if name == "before" {
				pos.before = id
			} else {
				pos.after = id
			}
			continue
		}
		p := f.field(name)
		if p == nil {
			return f, pos, fmt.Errorf("unknown parameter %q", name)
		}
		*p = v
	}
	if pos.before != 0 && pos.after != 0 {
		return f, pos, errors.New("parameters \"before\" and \"after\" cannot be given together")
	}
	return f, pos, nil
}

// query turns the filters into a store query. Errors name the filter.
func (f *filters) query(loc *time.Location) (store.Query, error) {
	q := store.Query{TableName: f.Table, Actor: f.Actor, Fingerprint: f.Fingerprint}
	if f.Operation != "" {
		op := store.Operation(f.Operation)
		if !op.Valid() {
			return q, fmt.Errorf("the Operation filter: %q is not one of create, update, delete, associate, disassociate, truncate, snapshot, suppressed", f.Operation)
		}
		q.Operations = []store.Operation{op}
	}
	var err error
	if q.Since, err = parseFormTime("From", f.Since, loc); err != nil {
		return q, err
	}
	if q.Until, err = parseFormTime("Until", f.Until, loc); err != nil {
		return q, err
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return q, errors.New("the Until filter: the time is before From")
	}
	if f.Changed != "" {
		q.Changes = []store.ChangeFilter{{Kind: store.FieldChanged, Field: f.Changed}}
	}
	if f.Tx != "" {
		if q.TxID, err = strconv.ParseInt(f.Tx, 10, 64); err != nil || q.TxID <= 0 {
			return q, fmt.Errorf("the Transaction filter: %q is not a transaction id (a positive integer)", f.Tx)
		}
	}
	if f.Request != "" {
		// The key httpctx and auditpgx.WithContext write a request's id under.
		q.Context = map[string]any{"request_id": f.Request}
	}
	return q, nil
}

// formTimeLayouts are what a datetime-local field submits, with and
// without seconds and fractions; RFC 3339 is read too, for shared links.
var formTimeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999999"}

// parseFormTime reads a time filter, in loc unless it names its zone.
func parseFormTime(label, v string, loc *time.Location) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	for _, layout := range formTimeLayouts {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("the %s filter: %q is not a time such as 2024-03-01T12:00", label, v)
}

// formTime writes t as a datetime-local field takes it, in loc: to the
// millisecond, the finest it holds.
func formTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("2006-01-02T15:04:05.000")
}

type streamPage struct {
	F            filters
	Tables       []string
	Operations   []store.Operation
	Error        string
	Groups       []txGroup
	Table        tableData
	Newer, Older template.URL // query strings of the neighbouring pages, "" when none
	Live         bool
	LiveQuery    template.URL
	LiveInterval int64 // milliseconds
}

var operations = []store.Operation{store.OpCreate, store.OpUpdate, store.OpDelete, store.OpAssociate,
	store.OpDisassociate, store.OpTruncate, store.OpSnapshot, store.OpSuppressed}

func (h *Handler) stream(w http.ResponseWriter, r *http.Request) {
	f, pos, err := parseStream(r.URL.RawQuery, h.cfg.Location)
	p := streamPage{F: f, Operations: operations, Live: h.cfg.Live, LiveInterval: h.cfg.LiveInterval.Milliseconds()}
	if err != nil {
		p.Error = err.Error()
		h.render(w, r, http.StatusBadRequest, "stream", "Activity stream", p)
		return
	}
	a := h.access(r)
	q, qerr := f.query(h.cfg.Location)
	// A table filter naming an unreadable table finds nothing, as one that
	// was never written.
	if p.Tables, err = h.restrict(r, a, &q); err != nil {
		h.serverError(w, r, err)
		return
	}
	p.LiveQuery = template.URL(f.values().Encode())
	// The form shows a time as its field takes it; links keep the
	// parameter as given.
	if !q.Since.IsZero() {
		p.F.Since = formTime(q.Since, h.cfg.Location)
	}
	if !q.Until.IsZero() {
		p.F.Until = formTime(q.Until, h.cfg.Location)
	}
	if qerr != nil {
		p.Error = qerr.Error()
		h.render(w, r, http.StatusBadRequest, "stream", "Activity stream", p)
		return
	}
	entries, newer, older, err := h.page(r, q, pos)
	if err != nil {
		h.listError(w, r, p, err)
		return
	}
	views := h.views(entries)
	p.Groups = group(views)
	p.Table = tableData{Base: basePath(r), Caption: "Entries, newest first", Groups: p.Groups}
	link := func(param string, id int64) template.URL {
		v := f.values()
		v.Set(param, strconv.FormatInt(id, 10))
		return template.URL(v.Encode())
	}
	if newer && len(entries) > 0 {
		p.Newer = link("after", entries[0].ID)
	}
	if older && len(entries) > 0 {
		p.Older = link("before", entries[len(entries)-1].ID)
	}
	h.render(w, r, http.StatusOK, "stream", "Activity stream", p)
}

// page reads one page of a stream, newest first, at pos, and says whether
// newer and older entries may follow. A page after an id is read oldest
// first and turned around.
func (h *Handler) page(r *http.Request, q store.Query, pos position) (entries []store.Entry, newer, older bool, err error) {
	q.Table = h.cfg.EntryTable
	q.Limit = pageSize + 1
	if pos.after != 0 {
		q.AfterID = pos.after
		entries, err = store.List(r.Context(), h.db, q)
		if err != nil {
			return nil, false, false, err
		}
		if newer = len(entries) > pageSize; newer {
			entries = entries[:pageSize]
		}
		slices.Reverse(entries)
		return entries, newer, true, nil
	}
	q.Descending = true
	q.BeforeID = pos.before
	entries, err = store.List(r.Context(), h.db, q)
	if err != nil {
		return nil, false, false, err
	}
	if older = len(entries) > pageSize; older {
		entries = entries[:pageSize]
	}
	return entries, pos.before != 0, older, nil
}

// listError shows a query the store refused as a bad request on the
// stream page, anything else as a server error.
func (h *Handler) listError(w http.ResponseWriter, r *http.Request, p streamPage, err error) {
	var qe *store.QueryError
	if errors.As(err, &qe) {
		p.Error = "The filters cannot be used: " + qe.Reason
		h.render(w, r, http.StatusBadRequest, "stream", "Activity stream", p)
		return
	}
	h.serverError(w, r, err)
}

// live answers a live stream's poll: the rows of the entries after the
// given id that the stream's filters match, newest first, as an HTML
// fragment the page inserts above its rows.
func (h *Handler) live(w http.ResponseWriter, r *http.Request) {
	f, pos, err := parseStream(r.URL.RawQuery, h.cfg.Location)
	if err == nil && pos.after == 0 {
		err = errors.New(`parameter "after" is required`)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q, err := f.query(h.cfg.Location)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if _, err := h.restrict(r, h.access(r), &q); err != nil {
		h.serverError(w, r, err)
		return
	}
	entries, _, _, err := h.page(r, q, pos)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	views := h.views(entries)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := h.pages["stream"].ExecuteTemplate(w, "rows", tableData{Base: basePath(r), Groups: group(views)}); err != nil {
		h.logger.ErrorContext(r.Context(), "auditpgx: web: rendering live rows", "error", err)
	}
}
