package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/web"
)

func get(t *testing.T, h http.Handler, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, target, nil))
	return w
}

var rowID = regexp.MustCompile(`<tr data-id="(\d+)"`)

func rowIDs(body string) []string {
	var ids []string
	for _, m := range rowID.FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func TestNewValidates(t *testing.T) {
	w := seed(t)
	_, err := web.New(w.db, web.Config{})
	require.ErrorIs(t, err, web.ErrNoAuthorize)
	_, err = web.New(nil, web.Config{Authorize: readable})
	require.ErrorContains(t, err, "db is nil")
	_, err = web.New(w.db, web.Config{Authorize: readable, EntryTable: "a.b.c.d"})
	require.ErrorContains(t, err, "Config.EntryTable")
}

func TestSecurityHeaders(t *testing.T) {
	w := seed(t)
	h := newHandler(t, w.db, web.Config{})
	for _, target := range []string{"/", "/entries/1", "/static/style.css", "/nowhere"} {
		r := get(t, h, http.MethodGet, target)
		csp := r.Header().Get("Content-Security-Policy")
		require.Contains(t, csp, "script-src 'self'", target)
		require.Contains(t, csp, "frame-ancestors 'none'", target)
		require.NotContains(t, csp, "unsafe-inline", target)
		require.Equal(t, "nosniff", r.Header().Get("X-Content-Type-Options"), target)
		require.Equal(t, "no-referrer", r.Header().Get("Referrer-Policy"), target)
		require.Equal(t, "DENY", r.Header().Get("X-Frame-Options"), target)
	}
	r := get(t, h, http.MethodPost, "/")
	require.Equal(t, http.StatusMethodNotAllowed, r.Code)
	require.Equal(t, "GET, HEAD", r.Header().Get("Allow"))
	r = get(t, h, http.MethodHead, "/")
	require.Equal(t, http.StatusOK, r.Code)
	require.Empty(t, r.Body.String())
	// The pages hold no inline script or style: the CSP would refuse them.
	body := get(t, h, http.MethodGet, "/").Body.String()
	require.NotRegexp(t, `<script>|<script [^>]*>[^<]|<style|style="|onclick|onload`, body)
}

func TestStreamPage(t *testing.T) {
	w := seed(t)
	h := newHandler(t, w.db, web.Config{})
	r := get(t, h, http.MethodGet, "/")
	require.Equal(t, http.StatusOK, r.Code)
	body := r.Body.String()
	require.Len(t, rowIDs(body), 100)
	require.Contains(t, body, "<title>Activity stream · auditpgx</title>")
	// Written values are text, never markup.
	require.NotContains(t, body, xssScript)
	require.NotContains(t, body, "<img")
	require.Contains(t, body, "&lt;script&gt;alert(1)&lt;/script&gt;")
	// The redacted column's value never leaves the database.
	require.NotContains(t, body, "bcrypt:")
	require.Contains(t, body, "password_hash=[redacted]")
	// Bob's transaction: grouped, and the group's count is of what he may see.
	require.Regexp(t, `Transaction \d+</a> · 3 entries`, body)

	// Older and newer pages by id: a page holds ids below the last of the
	// one before, and newer from there gives the first page back.
	ids := rowIDs(body)
	older := regexp.MustCompile(`href="/\?(before=\d+)"`).FindStringSubmatch(body)
	require.NotNil(t, older, "no older link")
	r2 := get(t, h, http.MethodGet, "/?"+older[1])
	ids2 := rowIDs(r2.Body.String())
	require.Len(t, ids2, w.entries-2-100) // the secrets' two entries are not shown
	require.Less(t, atoi(t, ids2[0]), atoi(t, ids[len(ids)-1]))
	newer := regexp.MustCompile(`href="/\?(after=\d+)"`).FindStringSubmatch(r2.Body.String())
	require.NotNil(t, newer, "no newer link")
	require.Equal(t, ids, rowIDs(get(t, h, http.MethodGet, "/?"+newer[1]).Body.String()))
	require.NotContains(t, r2.Body.String(), "Older")
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	_, err := fmt.Sscan(s, &n)
	require.NoError(t, err)
	return n
}

func TestStreamFilters(t *testing.T) {
	w := seed(t)
	h := newHandler(t, w.db, web.Config{})
	count := func(query string) int {
		t.Helper()
		r := get(t, h, http.MethodGet, "/?"+query)
		require.Equal(t, http.StatusOK, r.Code, "%s: %s", query, r.Body)
		return len(rowIDs(r.Body.String()))
	}
	require.Equal(t, 3, count("actor=bob"))
	require.Equal(t, 3, count("request=req-42"))
	require.Equal(t, 1, count("changed=email"))
	require.Equal(t, 1, count("changed=name&table=users"), "Bob's rename and nothing else: the key change is of id")
	require.Equal(t, 1, count("operation=delete"))
	require.Equal(t, 2, count("operation=associate&table=teams"))
	require.Equal(t, 0, count("table=secrets"), "an unreadable table has no entries to show")
	require.Equal(t, 3, count("actor=bob&table=&operation=&since=&until=&changed=&tx=&request="), "empty fields are no filters")
	require.Equal(t, 0, count("since=2999-01-01T00:00"))
	require.Equal(t, 100, count("until=2999-01-01T00:00:00Z"))

	for query, want := range map[string]string{
		"tx=abc":          `the Transaction filter: &#34;abc&#34; is not a transaction id`,
		"since=yesterday": `the From filter: &#34;yesterday&#34; is not a time`,
		"since=2024-02-01T00:00&until=2024-01-01T00:00": "the Until filter: the time is before From",
		"operation=drop":   `the Operation filter: &#34;drop&#34; is not one of`,
		"bogus=1":          `unknown parameter &#34;bogus&#34;`,
		"actor=a&actor=b":  `parameter &#34;actor&#34; is given 2 times`,
		"before=1&after=2": `cannot be given together`,
		"before=x":         `&#34;x&#34; is not an entry id`,
		"actor=%00":        `parameter &#34;actor&#34; is not text`,
	} {
		r := get(t, h, http.MethodGet, "/?"+query)
		require.Equal(t, http.StatusBadRequest, r.Code, query)
		require.Contains(t, r.Body.String(), want, query)
	}
}

func TestUnauthorizedTableNeverAppears(t *testing.T) {
	w := seed(t)
	ctx := context.Background()
	var secretID, secretTx int64
	require.NoError(t, w.db.QueryRowContext(ctx, `SELECT id, tx_id FROM auditpgx_entry WHERE table_name = 'secrets' ORDER BY id LIMIT 1`).
		Scan(&secretID, &secretTx))
	h := newHandler(t, w.db, web.Config{})
	for _, target := range []string{"/", "/?table=secrets", "/?actor=alice", "/?before=100000"} {
		body := get(t, h, http.MethodGet, target).Body.String()
		require.NotContains(t, body, "secrets", target)
		require.NotContains(t, body, secret, target)
	}
	for _, target := range []string{
		fmt.Sprintf("/entries/%d", secretID),
		fmt.Sprintf("/transactions/%d", secretTx),
		"/objects/secrets/1",
		"/entries/999999",
		"/transactions/999999",
		"/objects/users/999",
		"/entries/abc",
	} {
		r := get(t, h, http.MethodGet, target)
		require.Equal(t, http.StatusNotFound, r.Code, target)
		require.NotContains(t, r.Body.String(), secret, target)
	}
	// Alice's insert of users and of secrets share no transaction; a
	// transaction that held both would show only the readable entries.

	// Authorized for every table, the same request sees them.
	all := newHandler(t, w.db, web.Config{Authorize: func(*http.Request, string) bool { return true }})
	require.Contains(t, get(t, all, http.MethodGet, "/").Body.String(), "<option>secrets</option>")
	require.Equal(t, http.StatusOK, get(t, all, http.MethodGet, fmt.Sprintf("/entries/%d", secretID)).Code)

	// An association whose related table is unreadable is not shown either.
	noUsers := newHandler(t, w.db, web.Config{Authorize: func(_ *http.Request, table string) bool { return table == "teams" }})
	body := get(t, noUsers, http.MethodGet, "/?operation=associate").Body.String()
	require.Empty(t, rowIDs(body))
	require.NotContains(t, body, "users")
}

func TestMountedUnderAPrefix(t *testing.T) {
	w := seed(t)
	h := http.StripPrefix("/audit", newHandler(t, w.db, web.Config{}))
	body := get(t, h, http.MethodGet, "/audit/").Body.String()
	require.Contains(t, body, `href="/audit/static/style.css"`)
	require.Contains(t, body, `href="/audit/entries/`)
	require.Contains(t, body, `href="/audit/objects/users/1"`)
	require.NotRegexp(t, `href="/(entries|objects|transactions|\?)`, body)
	require.Equal(t, http.StatusOK, get(t, h, http.MethodGet, "/audit/static/app.js").Code)
}

func TestLiveRows(t *testing.T) {
	w := seed(t)
	off := newHandler(t, w.db, web.Config{})
	require.Equal(t, http.StatusNotFound, get(t, off, http.MethodGet, "/live?after=1").Code)
	require.NotContains(t, get(t, off, http.MethodGet, "/").Body.String(), `id="live"`)

	h := newHandler(t, w.db, web.Config{Live: true})
	body := get(t, h, http.MethodGet, "/?actor=dave").Body.String()
	require.Contains(t, body, `id="live"`)
	require.Contains(t, body, `data-url="/live?actor=dave"`)
	ids := rowIDs(body)
	require.Len(t, ids, 1)
	require.Empty(t, rowIDs(get(t, h, http.MethodGet, "/live?actor=dave&after="+ids[0]).Body.String()))
	_, err := w.db.ExecContext(actorCtx("dave"), `UPDATE teams SET name = 'green' WHERE id = 2`)
	require.NoError(t, err)
	r := get(t, h, http.MethodGet, "/live?actor=dave&after="+ids[0])
	require.Equal(t, http.StatusOK, r.Code)
	require.Len(t, rowIDs(r.Body.String()), 1)
	require.Contains(t, r.Body.String(), `name: &#34;blue&#34; → &#34;green&#34;`)
	require.Equal(t, http.StatusBadRequest, get(t, h, http.MethodGet, "/live?actor=dave").Code)
}

func TestEntryPageHTML(t *testing.T) {
	w := seed(t)
	h := newHandler(t, w.db, web.Config{})
	var id int64
	require.NoError(t, w.db.QueryRow(`SELECT id FROM auditpgx_entry WHERE table_name = 'users' AND operation = 'create' AND object_id = '1'`).Scan(&id))
	body := get(t, h, http.MethodGet, fmt.Sprintf("/entries/%d", id)).Body.String()
	require.Contains(t, body, `<tr class="added" data-field="password_hash">`)
	require.NotContains(t, body, "bcrypt:")
	require.NotContains(t, body, "last_login", "an excluded column")
	require.Contains(t, body, `<span class="redacted">redacted</span>`)
	require.Contains(t, body, "&#34;&lt;script&gt;alert(1)&lt;/script&gt;&#34;")
	require.Contains(t, body, "  &#34;langs&#34;: [\n    &#34;en&#34;,", "JSON pretty-printed")
	require.True(t, strings.Contains(body, `href="/objects/users/1"`))
}

func TestBadAddresses(t *testing.T) {
	w := seed(t)
	h := newHandler(t, w.db, web.Config{})
	var tx int64
	require.NoError(t, w.db.QueryRow(`SELECT tx_id FROM auditpgx_entry WHERE created_by = 'bob' LIMIT 1`).Scan(&tx))
	for target, want := range map[string]string{
		"/objects/users/1?as_of=soon":                `the As of filter: &#34;soon&#34; is not a time`,
		"/objects/users/1?at=1":                      `unknown parameter &#34;at&#34;`,
		fmt.Sprintf("/transactions/%d?page=2", tx):   `unknown parameter &#34;page&#34;`,
		fmt.Sprintf("/transactions/%d?cursor=x", tx): `parameter &#34;cursor&#34;: is not a cursor`,
	} {
		r := get(t, h, http.MethodGet, target)
		require.Equal(t, http.StatusBadRequest, r.Code, target)
		require.Contains(t, r.Body.String(), want, target)
	}
	// An object's state before it existed, and after its delete.
	r := get(t, h, http.MethodGet, "/objects/users/3?as_of=2000-01-01T00:00:00Z")
	require.Equal(t, http.StatusOK, r.Code)
	require.Contains(t, r.Body.String(), "The object did not exist at this time.")
	require.Contains(t, get(t, h, http.MethodGet, "/objects/users/3").Body.String(), "The object did not exist at this time.")
}
