package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/store"
)

// ErrNoAuthorize is returned by [New] for a Config without Authorize.
var ErrNoAuthorize = errors.New("auditpgx: httpapi: Config.Authorize is required: " +
	"give a function that checks the request's credentials (there is no open default)")

// Config configures a [Handler].
type Config struct {
	// Authorize reports whether the request may read the entries of an
	// audited table, named as entries name it; table is "" for a listing
	// across all tables. Required.
	Authorize func(r *http.Request, table string) bool

	// EntryTable is the entry table to read, optionally schema-qualified,
	// as for store.Query.Table. Default: "auditpgx_entry".
	EntryTable string

	// Logger receives server errors at error level, which clients see only
	// as a generic message, and client errors (4xx answers) at debug level.
	// Default: slog.Default().
	Logger *slog.Logger
}

// Handler serves the activity stream; see the package documentation for
// its routes.
type Handler struct {
	db     store.Querier
	cfg    Config
	mux    *http.ServeMux
	logger *slog.Logger
}

// New returns a handler reading entries through db. The error is
// [ErrNoAuthorize] without cfg.Authorize, and names the field for a nil db
// or an invalid EntryTable.
func New(db store.Querier, cfg Config) (*Handler, error) {
	if cfg.Authorize == nil {
		return nil, ErrNoAuthorize
	}
	if db == nil {
		return nil, errors.New("auditpgx: httpapi: New: db is nil")
	}
	if cfg.EntryTable == "" {
		cfg.EntryTable = "auditpgx_entry"
	}
	if _, err := store.DDL(cfg.EntryTable); err != nil {
		return nil, fmt.Errorf("auditpgx: httpapi: Config.EntryTable: %w", err)
	}
	h := &Handler{db: db, cfg: cfg, mux: http.NewServeMux(), logger: cfg.Logger}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	h.mux.HandleFunc("GET /entries", h.list)
	h.mux.HandleFunc("GET /entries/{id}", h.entry)
	h.mux.HandleFunc("GET /objects/{table}/{id}/history", h.history)
	h.mux.HandleFunc("GET /objects/{table}/{id}", h.object)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.clientError(w, r, http.StatusNotFound, fmt.Sprintf("no route for %q", r.URL.Path))
	})
	return h, nil
}

// ServeHTTP answers GET and HEAD; other methods get 405.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.clientError(w, r, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed: the audit log is read-only", r.Method))
		return
	}
	h.mux.ServeHTTP(w, r)
}

// page is the body of GET /entries.
type page struct {
	Next    *string       `json:"next"`
	Results []store.Entry `json:"results"`
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	params, ok := h.params(w, r)
	if !ok {
		return
	}
	table, err := single(params, "table")
	if err != nil {
		h.badRequest(w, r, err)
		return
	}
	if !h.cfg.Authorize(r, table) {
		h.forbidden(w, r, table)
		return
	}
	q, err := parseQuery(params)
	if err != nil {
		h.badRequest(w, r, err)
		return
	}
	q.Table = h.cfg.EntryTable
	p, err := store.ListPage(r.Context(), h.db, q.Query)
	if err != nil {
		var qe *store.QueryError
		if errors.As(err, &qe) {
			h.badRequest(w, r, q.paramError(qe))
			return
		}
		h.serverError(w, r, err)
		return
	}
	body := page{Results: p.Entries}
	if body.Results == nil {
		body.Results = []store.Entry{}
	}
	if p.Next != "" {
		next := nextLink(r, params, p.Next)
		body.Next = &next
	}
	writeJSON(w, http.StatusOK, body)
}

// nextLink is the request's own path and parameters with cursor replaced,
// as a relative reference. RequestURI keeps a prefix that StripPrefix took
// off r.URL.
func nextLink(r *http.Request, params url.Values, cursor string) string {
	path := r.URL.EscapedPath()
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil && r.RequestURI != "" {
		path = u.EscapedPath()
	}
	next := maps.Clone(params)
	next.Set("cursor", cursor)
	return path + "?" + next.Encode()
}

// params parses the request's query string (see parseParams), answering
// 400 when it does not parse completely.
func (h *Handler) params(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	params, err := parseParams(r.URL.RawQuery)
	if err != nil {
		h.badRequest(w, r, err)
		return nil, false
	}
	return params, true
}

// pathValues returns the path's table and id, answering 400 when either is
// not text PostgreSQL can take.
func (h *Handler) pathValues(w http.ResponseWriter, r *http.Request) (table, id string, ok bool) {
	table, id = r.PathValue("table"), r.PathValue("id")
	for _, p := range []struct{ name, value string }{{"table", table}, {"id", id}} {
		if err := checkText(p.value); err != nil {
			h.badRequest(w, r, fmt.Errorf("path parameter %q: %v", p.name, err))
			return "", "", false
		}
	}
	return table, id, true
}

func (h *Handler) entry(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		h.badRequest(w, r, fmt.Errorf("path parameter %q: %q is not a positive integer", "id", raw))
		return
	}
	params, ok := h.params(w, r)
	if !ok {
		return
	}
	if len(params) > 0 {
		h.badRequest(w, r, unknownParam(params, nil))
		return
	}
	e, err := store.Get(r.Context(), h.db, id, store.WithEntryTable(h.cfg.EntryTable))
	// An entry of a table the request may not read gets the answer of a
	// missing one: a 403 would tell that the id exists, and its table.
	if errors.Is(err, store.ErrNotFound) || err == nil && !h.cfg.Authorize(r, e.TableName) {
		h.clientError(w, r, http.StatusNotFound, fmt.Sprintf("entry %d not found", id))
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

func (h *Handler) history(w http.ResponseWriter, r *http.Request) {
	table, objectID, ok := h.pathValues(w, r)
	if !ok {
		return
	}
	params, ok := h.params(w, r)
	if !ok {
		return
	}
	if !h.cfg.Authorize(r, table) {
		h.forbidden(w, r, table)
		return
	}
	if len(params) > 0 {
		h.badRequest(w, r, unknownParam(params, nil))
		return
	}
	entries, err := store.History(r.Context(), h.db, table, objectID, store.WithEntryTable(h.cfg.EntryTable))
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	allowed := map[string]bool{table: true}
	results := []store.Entry{}
	for _, e := range entries {
		ok, asked := allowed[e.TableName]
		if !asked {
			ok = h.cfg.Authorize(r, e.TableName)
			allowed[e.TableName] = ok
		}
		if ok {
			results = append(results, e)
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Results []store.Entry `json:"results"`
	}{results})
}

// object is the body of GET /objects/{table}/{id}.
type object struct {
	TableName string     `json:"table_name"`
	ObjectID  string     `json:"object_id"`
	AsOf      time.Time  `json:"as_of"`
	Fields    diff.Image `json:"fields"`
}

func (h *Handler) object(w http.ResponseWriter, r *http.Request) {
	table, objectID, ok := h.pathValues(w, r)
	if !ok {
		return
	}
	params, ok := h.params(w, r)
	if !ok {
		return
	}
	if !h.cfg.Authorize(r, table) {
		h.forbidden(w, r, table)
		return
	}
	if err := unknownParam(params, map[string]bool{"as_of": true}); err != nil {
		h.badRequest(w, r, err)
		return
	}
	asOf := time.Now().UTC()
	if raw, err := single(params, "as_of"); err != nil {
		h.badRequest(w, r, err)
		return
	} else if raw != "" {
		if asOf, err = parseTime("as_of", raw); err != nil {
			h.badRequest(w, r, err)
			return
		}
	}
	img, err := store.AsOf(r.Context(), h.db, table, objectID, asOf, store.WithEntryTable(h.cfg.EntryTable))
	if errors.Is(err, store.ErrNotFound) {
		h.clientError(w, r, http.StatusNotFound, fmt.Sprintf("%s %q did not exist at %s", table, objectID, asOf.Format(time.RFC3339Nano)))
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, object{TableName: table, ObjectID: objectID, AsOf: asOf, Fields: img})
}

// serverError logs err at error level and answers 500 with a generic
// message. A request that ended because its client went away is logged at
// debug level: nothing failed on the server. An incomplete history is
// answered 409 instead (see incomplete).
func (h *Handler) serverError(w http.ResponseWriter, r *http.Request, err error) {
	if h.incomplete(w, r, err) {
		return
	}
	level := slog.LevelError
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		level = slog.LevelDebug
	}
	h.logger.Log(r.Context(), level, "auditpgx: httpapi: request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	writeError(w, http.StatusInternalServerError, "internal server error")
}

// clientError answers a 4xx status with detail, logged at debug level
// only: a client's mistake is not the server's concern.
func (h *Handler) clientError(w http.ResponseWriter, r *http.Request, status int, detail string) {
	h.logger.DebugContext(r.Context(), "auditpgx: httpapi: request refused", "method", r.Method, "path", r.URL.Path,
		"status", status, "detail", detail)
	writeError(w, status, detail)
}

func (h *Handler) badRequest(w http.ResponseWriter, r *http.Request, err error) {
	h.clientError(w, r, http.StatusBadRequest, err.Error())
}

func (h *Handler) forbidden(w http.ResponseWriter, r *http.Request, table string) {
	if table == "" {
		h.clientError(w, r, http.StatusForbidden, "not allowed to read the entries of all tables")
		return
	}
	h.clientError(w, r, http.StatusForbidden, fmt.Sprintf("not allowed to read the entries of table %q", table))
}

func writeError(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, struct {
		Detail string `json:"detail"`
	}{detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"detail":"internal server error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n')) //nolint:errcheck // the client went away; nothing to do
}
