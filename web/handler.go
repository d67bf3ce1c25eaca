package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/auditpgx/auditpgx/store"
)

// ErrNoAuthorize is returned by [New] for a Config without Authorize.
var ErrNoAuthorize = errors.New("auditpgx: web: Config.Authorize is required: " +
	"give a function that checks the request's credentials (there is no open default)")

// Config configures a [Handler].
type Config struct {
	// Authorize reports whether the request may read the entries of an
	// audited table, named as entries name it; table is "" for every
	// table at once. It is the HTTP API's Authorize: the same function can
	// serve both. Required.
	Authorize func(r *http.Request, table string) bool

	// EntryTable is the entry table to read, optionally schema-qualified,
	// as for store.Query.Table. Default: "auditpgx_entry".
	EntryTable string

	// Location is the time zone times are shown in; each time shows UTC
	// when hovered. Default: time.Local.
	Location *time.Location

	// Live lets the stream page show new entries without a reload: the page
	// then has a "Live" switch, off until the reader turns it on, which
	// polls for entries newer than the newest shown every LiveInterval.
	// Default: false (no switch, no polling route).
	Live bool

	// LiveInterval is how often a live stream polls. Default: 3 s.
	LiveInterval time.Duration

	// Logger receives server errors at error level, which readers see only
	// as a generic message. Default: slog.Default().
	Logger *slog.Logger
}

// Handler serves the pages; see the package documentation.
type Handler struct {
	db     store.Querier
	cfg    Config
	mux    *http.ServeMux
	logger *slog.Logger
	pages  map[string]*template.Template
	static http.Handler
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New returns a handler reading entries through db. The error is
// [ErrNoAuthorize] without cfg.Authorize, and names the field for a nil db
// or an invalid EntryTable.
func New(db store.Querier, cfg Config) (*Handler, error) {
	if cfg.Authorize == nil {
		return nil, ErrNoAuthorize
	}
	if db == nil {
		return nil, errors.New("auditpgx: web: New: db is nil")
	}
	if cfg.EntryTable == "" {
		cfg.EntryTable = "auditpgx_entry"
	}
	if _, err := store.DDL(cfg.EntryTable); err != nil {
		return nil, fmt.Errorf("auditpgx: web: Config.EntryTable: %w", err)
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.LiveInterval <= 0 {
		cfg.LiveInterval = 3 * time.Second
	}
	h := &Handler{db: db, cfg: cfg, mux: http.NewServeMux(), logger: cfg.Logger}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	var err error
	if h.pages, err = parseTemplates(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	h.static = http.StripPrefix("/static/", http.FileServerFS(sub))

	h.mux.HandleFunc("GET /{$}", h.stream)
	h.mux.HandleFunc("GET /entries/{id}", h.entry)
	h.mux.HandleFunc("GET /objects/{table}/{id}", h.object)
	h.mux.HandleFunc("GET /transactions/{tx}", h.transaction)
	h.mux.Handle("GET /static/", h.static)
	if cfg.Live {
		h.mux.HandleFunc("GET /live", h.live)
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.notFound(w, r, "There is no page at this address.")
	})
	return h, nil
}

// contentSecurityPolicy allows the page's own style sheet and script and
// nothing else: no inline script or style, no frame, no form posting
// elsewhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// ServeHTTP answers GET and HEAD; other methods get 405.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		h.render(w, r, http.StatusMethodNotAllowed, "error", "Method not allowed", errorPage{Title: "Method not allowed",
			Detail: fmt.Sprintf("The audit log is read-only: method %s is not allowed.", r.Method)})
		return
	}
	h.mux.ServeHTTP(w, r)
}

// basePath is the path the handler is mounted at, without the trailing
// slash: what http.StripPrefix took off r.URL.Path, read back from the
// request URI, so that links work wherever the handler is mounted.
func basePath(r *http.Request) string {
	if r.RequestURI == "" {
		return ""
	}
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(strings.TrimSuffix(u.Path, r.URL.Path), "/")
}

type errorPage struct {
	Title  string
	Detail string
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request, detail string) {
	h.render(w, r, http.StatusNotFound, "error", "Not found", errorPage{Title: "Not found", Detail: detail})
}

func (h *Handler) badRequest(w http.ResponseWriter, r *http.Request, err error) {
	h.render(w, r, http.StatusBadRequest, "error", "Bad request", errorPage{Title: "Bad request", Detail: err.Error()})
}

// serverError logs err and answers 500 with a generic message; the
// incomplete history of an object is not a server error (see object).
func (h *Handler) serverError(w http.ResponseWriter, r *http.Request, err error) {
	level := slog.LevelError
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		level = slog.LevelDebug
	}
	h.logger.Log(r.Context(), level, "auditpgx: web: request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	h.render(w, r, http.StatusInternalServerError, "error", "Server error", errorPage{Title: "Server error",
		Detail: "The page could not be read from the audit log; the error is in the server's log."})
}
