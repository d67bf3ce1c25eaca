package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/auditpgx/auditpgx/store"
)

type entryPage struct {
	Entry            entryView
	Diff             []diffRow
	Context          string
	FingerprintQuery template.URL // the statement's entries in every transaction, in the entry's table
	StatementQuery   template.URL // the statement's entries in the entry's transaction
}

func (h *Handler) entry(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		h.notFound(w, r, "There is no entry with this id.")
		return
	}
	e, err := store.Get(r.Context(), h.db, id, store.WithEntryTable(h.cfg.EntryTable))
	// An entry of a table the request may not read is answered as a
	// missing one: anything else would tell that it exists.
	if errors.Is(err, store.ErrNotFound) || err == nil && !h.access(r).mayEntry(&e) {
		h.notFound(w, r, fmt.Sprintf("There is no entry %d.", id))
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	p := entryPage{Entry: h.view(e), Diff: diffRows(e.Changes)}
	if len(e.Context) > 0 {
		var b bytes.Buffer
		if json.Indent(&b, e.Context, "", "  ") == nil {
			p.Context = b.String()
		}
	}
	if e.StatementFingerprint != nil {
		p.StatementQuery = template.URL(url.Values{"fingerprint": {*e.StatementFingerprint},
			"tx": {strconv.FormatInt(e.TxID, 10)}}.Encode())
		p.FingerprintQuery = template.URL(url.Values{"fingerprint": {*e.StatementFingerprint}, "table": {e.TableName}}.Encode())
	}
	h.render(w, r, http.StatusOK, "entry", fmt.Sprintf("Entry %d", e.ID), p)
}

type objectPage struct {
	TableName, ObjectID string
	Path                string // the page's own path
	AsOf                timeView
	AsOfInput           string
	Prev, Next          template.URL // query strings stepping to the neighbouring entries' times
	State               []diffRow
	StateNote           string
	Table               tableData
}

func (h *Handler) object(w http.ResponseWriter, r *http.Request) {
	table, objectID := r.PathValue("table"), r.PathValue("id")
	a := h.access(r)
	if !a.may(table) {
		h.notFound(w, r, "There is no such object.")
		return
	}
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err == nil {
		for name := range params {
			if name != "as_of" {
				err = fmt.Errorf("unknown parameter %q", name)
			}
		}
	}
	var asOf time.Time
	if raw := params.Get("as_of"); err == nil && raw != "" {
		asOf, err = parseFormTime("As of", raw, h.cfg.Location)
	}
	if err != nil {
		h.badRequest(w, r, err)
		return
	}
	opt := store.WithEntryTable(h.cfg.EntryTable)
	history, err := store.History(r.Context(), h.db, table, objectID, opt)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	history = filterEntries(a, history)
	if !slices.ContainsFunc(history, func(e store.Entry) bool { return e.ObjectID != "" }) {
		h.notFound(w, r, "There is no such object.")
		return
	}
	if asOf.IsZero() {
		asOf = slices.MaxFunc(history, func(a, b store.Entry) int { return a.Created.Compare(b.Created) }).Created
	}
	p := objectPage{TableName: table, ObjectID: objectID, Path: objectPath(table, objectID),
		AsOf: newTimeView(asOf, h.cfg.Location), AsOfInput: formTime(asOf, h.cfg.Location)}

	// The steps are the distinct times of the object's entries: entries of
	// one statement share theirs.
	var times []time.Time
	for _, e := range history {
		times = append(times, e.Created)
	}
	slices.SortFunc(times, time.Time.Compare)
	times = slices.CompactFunc(times, time.Time.Equal)
	step := func(t time.Time) template.URL {
		return template.URL(url.Values{"as_of": {t.UTC().Format(time.RFC3339Nano)}}.Encode())
	}
	// The state shown is the one the last entry at or before asOf left.
	var current time.Time
	if i := slices.IndexFunc(times, func(t time.Time) bool { return t.After(asOf) }); i >= 0 {
		p.Next = step(times[i])
		if i > 0 {
			current = times[i-1]
		}
		if i > 1 {
			p.Prev = step(times[i-2])
		}
	} else {
		current = times[len(times)-1]
		if len(times) > 1 {
			p.Prev = step(times[len(times)-2])
		}
	}

	img, err := store.AsOf(r.Context(), h.db, table, objectID, asOf, opt)
	var incomplete *store.IncompleteError
	switch {
	case errors.Is(err, store.ErrNotFound):
		p.StateNote = "The object did not exist at this time."
	case errors.As(err, &incomplete):
		p.StateNote = "Its entries do not account for the object's whole state at this time " +
			"(a write the audit log did not see, or rows that existed before auditing began); " +
			"the fields shown are those known since."
		p.State = imageRows(incomplete.Known)
	case err != nil:
		h.serverError(w, r, err)
		return
	default:
		p.State = imageRows(img)
	}
	views := make([]entryView, len(history))
	for i, e := range history {
		v := h.view(e)
		v.Current = e.Created.Equal(current)
		views[len(history)-1-i] = v
	}
	p.Table = tableData{Base: basePath(r), Caption: "The object's entries, newest first", Groups: group(views)}
	h.render(w, r, http.StatusOK, "object", table+" "+objectID, p)
}

// txPageSize is the most entries a transaction page shows at once.
const txPageSize = 1000

type txPage struct {
	TxID  int64
	Path  string
	Count int
	Next  template.URL
	Table tableData
}

func (h *Handler) transaction(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("tx")
	tx, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || tx <= 0 {
		h.notFound(w, r, "There is no transaction with this id.")
		return
	}
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err == nil {
		for name := range params {
			if name != "cursor" {
				err = fmt.Errorf("unknown parameter %q", name)
			}
		}
	}
	if err != nil {
		h.badRequest(w, r, err)
		return
	}
	a := h.access(r)
	q := store.Query{Table: h.cfg.EntryTable, TxID: tx, Limit: txPageSize, Cursor: params.Get("cursor")}
	if _, err := h.restrict(r, a, &q); err != nil {
		h.serverError(w, r, err)
		return
	}
	pg, err := store.ListPage(r.Context(), h.db, q)
	var qe *store.QueryError
	if errors.As(err, &qe) {
		h.badRequest(w, r, fmt.Errorf("parameter %q: %s", "cursor", qe.Reason))
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if len(pg.Entries) == 0 {
		h.notFound(w, r, fmt.Sprintf("There are no entries of transaction %d.", tx))
		return
	}
	views := h.views(pg.Entries)
	p := txPage{TxID: tx, Path: "/transactions/" + strconv.FormatInt(tx, 10), Count: len(views),
		Table: tableData{Base: basePath(r), Caption: "The transaction's entries, in the order they were written",
			Groups: []txGroup{{TxID: tx, Entries: views}}}}
	if pg.Next != "" {
		p.Next = template.URL(url.Values{"cursor": {pg.Next}}.Encode())
	}
	h.render(w, r, http.StatusOK, "transaction", fmt.Sprintf("Transaction %d", tx), p)
}
