package web

import (
	"net/http"
	"slices"

	"github.com/auditpgx/auditpgx/store"
)

// access is what one request may read, asked of Config.Authorize once per
// table.
type access struct {
	authorize func(*http.Request, string) bool
	r         *http.Request
	all       bool // Authorize(r, ""): every table
	asked     map[string]bool
}

func (h *Handler) access(r *http.Request) *access {
	return &access{authorize: h.cfg.Authorize, r: r, all: h.cfg.Authorize(r, ""), asked: map[string]bool{}}
}

// may reports whether the request may read the entries of table.
func (a *access) may(table string) bool {
	if a.all {
		return true
	}
	ok, seen := a.asked[table]
	if !seen {
		ok = a.authorize(a.r, table)
		a.asked[table] = ok
	}
	return ok
}

// mayEntry reports whether the request may see e: its table, and the
// related table of an association, are readable.
func (a *access) mayEntry(e *store.Entry) bool {
	return a.may(e.TableName) && (e.RelatedTableName == nil || a.may(*e.RelatedTableName))
}

// restrict returns the readable tables among those the entry table names,
// sorted, and restricts q to them unless every table is readable: a table
// the request may not read appears in no listing, filter or count. An
// empty restriction matches no entry (store.Query.Tables).
func (h *Handler) restrict(r *http.Request, a *access, q *store.Query) ([]string, error) {
	names, err := store.Tables(r.Context(), h.db, store.WithEntryTable(h.cfg.EntryTable))
	if err != nil {
		return nil, err
	}
	readable := slices.DeleteFunc(names, func(t string) bool { return !a.may(t) })
	if !a.all {
		q.Tables = append([]string{}, readable...)
	}
	return readable, nil
}

// filterEntries drops the entries the request may not see.
func filterEntries(a *access, entries []store.Entry) []store.Entry {
	return slices.DeleteFunc(entries, func(e store.Entry) bool { return !a.mayEntry(&e) })
}
