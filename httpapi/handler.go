package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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

	// Logger receives server errors, which clients see only as a generic
	// message. Default: slog.Default().
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
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route for %s", r.URL.Path))
	})
	return h, nil
}

// ServeHTTP answers GET and HEAD; other methods get 405.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed: the audit log is read-only", r.Method))
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
	params := r.URL.Query()
	table, err := single(params, "table")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !h.cfg.Authorize(r, table) {
		writeForbidden(w, table)
		return
	}
	q, err := parseQuery(params)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	q.Table = h.cfg.EntryTable
	p, err := store.ListPage(r.Context(), h.db, q.Query)
	if err != nil {
		var qe *store.QueryError
		if errors.As(err, &qe) {
			writeError(w, http.StatusBadRequest, q.paramError(qe).Error())
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
		next := nextLink(r, p.Next)
		body.Next = &next
	}
	writeJSON(w, http.StatusOK, body)
}

// nextLink is the request's own path and parameters with cursor replaced,
// as a relative reference. RequestURI keeps a prefix that StripPrefix took
// off r.URL.
func nextLink(r *http.Request, cursor string) string {
	path := r.URL.EscapedPath()
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil && r.RequestURI != "" {
		path = u.EscapedPath()
	}
	params := r.URL.Query()
	params.Set("cursor", cursor)
	return path + "?" + params.Encode()
}

func (h *Handler) entry(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("entry id %q is not a positive integer", raw))
		return
	}
	if len(r.URL.Query()) > 0 {
		writeError(w, http.StatusBadRequest, unknownParam(r.URL.Query(), nil).Error())
		return
	}
	e, err := store.Get(r.Context(), h.db, id, store.WithEntryTable(h.cfg.EntryTable))
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("entry %d not found", id))
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if !h.cfg.Authorize(r, e.TableName) {
		writeForbidden(w, e.TableName)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

func (h *Handler) history(w http.ResponseWriter, r *http.Request) {
	table, objectID := r.PathValue("table"), r.PathValue("id")
	if !h.cfg.Authorize(r, table) {
		writeForbidden(w, table)
		return
	}
	if len(r.URL.Query()) > 0 {
		writeError(w, http.StatusBadRequest, unknownParam(r.URL.Query(), nil).Error())
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
	table, objectID := r.PathValue("table"), r.PathValue("id")
	if !h.cfg.Authorize(r, table) {
		writeForbidden(w, table)
		return
	}
	params := r.URL.Query()
	if err := unknownParam(params, map[string]bool{"as_of": true}); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	asOf := time.Now().UTC()
	if raw, err := single(params, "as_of"); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	} else if raw != "" {
		if asOf, err = parseTime("as_of", raw); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	img, err := store.AsOf(r.Context(), h.db, table, objectID, asOf, store.WithEntryTable(h.cfg.EntryTable))
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s %q did not exist at %s", table, objectID, asOf.Format(time.RFC3339Nano)))
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, object{TableName: table, ObjectID: objectID, AsOf: asOf, Fields: img})
}

func (h *Handler) serverError(w http.ResponseWriter, r *http.Request, err error) {
	h.logger.ErrorContext(r.Context(), "auditpgx: httpapi: request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	writeError(w, http.StatusInternalServerError, "internal server error")
}

func writeForbidden(w http.ResponseWriter, table string) {
	if table == "" {
		writeError(w, http.StatusForbidden, "not allowed to read the entries of all tables")
		return
	}
	writeError(w, http.StatusForbidden, fmt.Sprintf("not allowed to read the entries of table %q", table))
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
