package web

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"time"
)

// pageNames are the templates/<name>.html files, each defining "content".
var pageNames = []string{"error", "stream", "entry", "object", "transaction"}

var funcs = template.FuncMap{
	"deref": deref,
	"deref64": func(p *int64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatInt(*p, 10)
	},
}

func parseTemplates() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/base.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("auditpgx: web: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// frame is what the base template renders a page with.
type frame struct {
	Title string
	Base  string // the mount path, "" at the root
	Nav   string // the navigation entry of the page
	Zone  string // the zone times are shown in
	Page  any
}

// tableData is a listing of entries grouped by transaction.
type tableData struct {
	Base    string
	Caption string
	Groups  []txGroup
}

// render writes a page. A template that fails is a server error before
// anything is written: the page is rendered into a buffer first.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name, title string, page any) {
	nav := ""
	if name == "stream" {
		nav = "stream"
	}
	var b bytes.Buffer
	err := h.pages[name].ExecuteTemplate(&b, "base", frame{Title: title, Base: basePath(r), Nav: nav,
		Zone: zoneName(h.cfg.Location), Page: page})
	if err != nil {
		h.logger.ErrorContext(r.Context(), "auditpgx: web: rendering a page", "page", name, "error", err)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintln(w, "internal server error")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(b.Bytes()) //nolint:errcheck // the client went away; nothing to do
	}
}

// zoneName names loc for the footer: its IANA name, or for time.Local,
// whose name is "Local", the current abbreviation (CET, UTC).
func zoneName(loc *time.Location) string {
	if loc == time.Local {
		return time.Now().In(loc).Format("MST")
	}
	return loc.String()
}
