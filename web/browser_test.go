package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/browsertest"
	"github.com/auditpgx/auditpgx/store"
	"github.com/auditpgx/auditpgx/web"
)

// tab is a browser tab on a test server, with helpers that fail the test.
type tab struct {
	t    *testing.T
	b    *browsertest.Browser
	base string // the server's URL and the handler's mount path
}

// newTab serves h under /audit on a test server and opens a browser on it.
func newTab(t *testing.T, h http.Handler) *tab {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/audit/", http.StripPrefix("/audit", h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &tab{t: t, b: browsertest.New(t), base: srv.URL + "/audit"}
}

func eval[T any](tb *tab, js string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.b.Ctx(), 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	require.NoError(tb.t, err, js)
	return v
}

// try evaluates js without failing the test: while a page is being
// replaced, its execution context may be gone.
func try[T any](tb *tab, js string) (T, bool) {
	ctx, cancel := context.WithTimeout(tb.b.Ctx(), 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	return v, err == nil
}

// open loads a page of the handler, path relative to its mount point.
func (tb *tab) open(path string) {
	tb.t.Helper()
	tb.b.Run(tb.t, chromedp.Navigate(tb.base+path), chromedp.WaitReady(chromedp.CSS("main")))
	// The page's script is deferred: it has run once the load is complete.
	require.Eventually(tb.t, func() bool { v, ok := try[bool](tb, `document.readyState === "complete"`); return v && ok },
		10*time.Second, 10*time.Millisecond)
}

// follow clicks the element and waits for the page it leads to.
func (tb *tab) follow(sel string) {
	tb.t.Helper()
	before := eval[string](tb, `location.href`)
	tb.b.Run(tb.t, chromedp.Click(chromedp.CSS(sel)))
	require.Eventually(tb.t, func() bool {
		v, ok := try[bool](tb, fmt.Sprintf(`location.href !== %q && document.readyState === "complete"`, before))
		return v && ok
	}, 10*time.Second, 20*time.Millisecond, "clicking %s led nowhere from %s", sel, before)
}

// location returns the page's path and query relative to the mount point.
func (tb *tab) location() *url.URL {
	tb.t.Helper()
	u, err := url.Parse(eval[string](tb, `location.href`))
	require.NoError(tb.t, err)
	u.Path = strings.TrimPrefix(u.Path, "/audit")
	return u
}

const rowIDsJS = `[...document.querySelectorAll("table.stream tr[data-id]")].map(tr => tr.dataset.id)`

func (tb *tab) rowIDs() []string { return eval[[]string](tb, rowIDsJS) }

// column returns the text of one cell of every stream row.
func (tb *tab) column(n int) []string {
	return eval[[]string](tb, fmt.Sprintf(`[...document.querySelectorAll("table.stream tr[data-id]")].map(tr => tr.cells[%d].innerText)`, n))
}

// state reads the shown state of an object as entries record values:
// each field's JSON, "$encrypted$" for a redacted one.
func (tb *tab) state() diff.Image {
	tb.t.Helper()
	rows := eval[[][2]string](tb, `[...document.querySelectorAll("table.state tbody tr")].map(tr =>
		[tr.dataset.field, tr.querySelector(".redacted") ? "\"$encrypted$\"" : tr.querySelector("td").innerText])`)
	img := diff.Image{}
	for _, r := range rows {
		require.True(tb.t, json.Valid([]byte(r[1])), "field %s shows %q, not JSON", r[0], r[1])
		img[r[0]] = json.RawMessage(r[1])
	}
	return img
}

func requireSameImage(t *testing.T, want, got diff.Image) {
	t.Helper()
	norm := func(img diff.Image) map[string]any {
		out := map[string]any{}
		for k, v := range img {
			var x any
			require.NoError(t, json.Unmarshal(v, &x))
			out[k] = x
		}
		return out
	}
	require.True(t, reflect.DeepEqual(norm(want), norm(got)), "want %v\ngot  %v", norm(want), norm(got))
}

// The pages as a reader uses them, in Chromium: the stream, its filters
// and pages, an entry's diff, an object's history and state as of each of
// its entries, a transaction; hostile values stay text, and the table the
// reader may not read appears nowhere.
func TestBrowserReadsTheStream(t *testing.T) {
	w := seed(t)
	ctx := context.Background()
	h := newHandler(t, w.db, web.Config{})
	tb := newTab(t, h)

	tb.open("/")
	require.Equal(t, "Activity stream · auditpgx", eval[string](tb, `document.title`))
	first := tb.rowIDs()
	require.Len(t, first, 100)
	body := eval[string](tb, `document.body.innerText`)
	require.Contains(t, body, "name="+`"`+xssScript+`"`, "the hostile value is shown as text")
	require.Contains(t, body, `bio="\"><img src=x onerror=alert(1)>"`)
	require.Zero(t, eval[int](tb, `document.querySelectorAll("img, script:not([src])").length`), "no element came from a value")
	require.NotContains(t, eval[string](tb, `document.documentElement.outerHTML`), "secrets")
	require.NotContains(t, body, secret)
	require.Equal(t, []string{"", "teams", "users"}, eval[[]string](tb, `[...document.querySelectorAll("#f-table option")].map(o => o.value)`))
	require.Equal(t, 2, eval[int](tb, `document.querySelectorAll("tbody.tx.multi").length`), "Alice's insert of three users and Bob's transaction, grouped")

	// Filter by actor, with the form: only the set field is in the address.
	tb.b.Run(t, chromedp.SendKeys(chromedp.ID("f-actor"), "bob"))
	tb.follow(`form.filters button[type="submit"]`)
	require.Equal(t, "actor=bob", tb.location().RawQuery)
	require.Equal(t, []string{"bob", "bob", "bob"}, tb.column(2))
	require.Equal(t, "bob", eval[string](tb, `document.getElementById("f-actor").value`), "the form shows the filter in use")

	// Then by changed field instead.
	eval[bool](tb, `(document.getElementById("f-actor").value = "") === ""`)
	tb.b.Run(t, chromedp.SendKeys(chromedp.ID("f-changed"), "email"))
	tb.follow(`form.filters button[type="submit"]`)
	require.Equal(t, "changed=email", tb.location().RawQuery)
	require.Len(t, tb.rowIDs(), 1)
	require.Contains(t, tb.column(6)[0], `email: "bea@example.com" → "bea@example.org"`)

	// Page forward and back.
	tb.open("/")
	tb.follow(`a[rel="next"]`)
	older := tb.rowIDs()
	require.Len(t, older, w.entries-2-100)
	require.Less(t, atoi(t, older[0]), atoi(t, first[len(first)-1]))
	require.Zero(t, eval[int](tb, `document.querySelectorAll('a[rel="next"]').length`), "the last page")
	tb.follow(`a[rel="prev"]`)
	require.Equal(t, first, tb.rowIDs())

	// An entry: Bob's update of user 1.
	var updateID int64
	require.NoError(t, w.db.QueryRowContext(ctx, `SELECT id FROM auditpgx_entry WHERE table_name = 'users' AND operation = 'update' AND created_by = 'bob'`).Scan(&updateID))
	tb.open("/")
	tb.follow(fmt.Sprintf(`a[href$="/entries/%d"]`, updateID))
	cells := eval[[][4]string](tb, `[...document.querySelectorAll("table.diff tbody tr")].map(tr =>
		[tr.dataset.field, tr.className, tr.querySelector(".old").innerText, tr.querySelector(".new").innerText])`)
	require.Equal(t, [][4]string{
		{"name", "changed", `"` + xssScript + `"`, `"Anne"`},
		{"password_hash", "changed", "redacted", "redacted"},
	}, cells)
	require.Equal(t, fmt.Sprintf("Entry %d · auditpgx", updateID), eval[string](tb, `document.title`))

	// Its transaction: the update and the two associations.
	tb.follow(`a[href*="/transactions/"]`)
	require.Len(t, tb.rowIDs(), 3)
	require.Equal(t, []string{"update", "associate", "associate"}, tb.column(3))

	// The object's history, across the key change of user 2 (now 20), and
	// its state as of each entry, stepping back from the newest.
	tb.open("/objects/users/20")
	history, err := store.History(ctx, w.db, "users", "20")
	require.NoError(t, err)
	require.Len(t, tb.rowIDs(), len(history))
	require.Contains(t, tb.column(6), "members + users 2", "the association, filed under the team, is in the user's history")
	steps := 0
	for {
		asOf, err := time.Parse(time.RFC3339Nano, eval[string](tb, `document.querySelector("#state-h time").getAttribute("datetime")`))
		require.NoError(t, err)
		want, err := store.AsOf(ctx, w.db, "users", "20", asOf)
		if err == nil {
			requireSameImage(t, want, tb.state())
		} else {
			require.ErrorIs(t, err, store.ErrNotFound)
			require.Contains(t, eval[string](tb, `document.querySelector(".note").innerText`), "did not exist")
		}
		steps++
		if eval[int](tb, `document.querySelectorAll("#step-prev").length`) == 0 {
			break
		}
		tb.follow("#step-prev")
	}
	require.Equal(t, 4, steps, "create, associate, email change, key change")
	for range 3 {
		tb.follow("#step-next")
	}
	require.Zero(t, eval[int](tb, `document.querySelectorAll("#step-next").length`))
	require.Equal(t, `20`, string(tb.state()["id"]))

	// A time typed into the as-of field, to the millisecond as the field
	// takes it: the state shown is store.AsOf's at that time.
	tb.open("/objects/users/1")
	require.Contains(t, eval[string](tb, `document.body.innerText`), xssImg)
	var created time.Time
	require.NoError(t, w.db.QueryRowContext(ctx, `SELECT created FROM auditpgx_entry WHERE table_name = 'users' AND object_id = '1' AND operation = 'create'`).Scan(&created))
	typed := created.UTC().Truncate(time.Millisecond).Add(time.Millisecond)
	eval[string](tb, fmt.Sprintf(`document.getElementById("as-of").value = %q`, typed.Format("2006-01-02T15:04:05.000")))
	tb.follow(`form.asof button`)
	want, err := store.AsOf(ctx, w.db, "users", "1", typed)
	require.NoError(t, err)
	requireSameImage(t, want, tb.state())
	require.Equal(t, typed.Format(time.RFC3339Nano), eval[string](tb, `document.querySelector("#state-h time").getAttribute("datetime")`))

	// A time range typed into the stream's form.
	tb.open("/")
	until := created.UTC().Truncate(time.Millisecond).Add(time.Millisecond)
	since := until.Add(-time.Second)
	eval[string](tb, fmt.Sprintf(`document.getElementById("f-since").value = %q`, since.Format("2006-01-02T15:04:05.000")))
	eval[string](tb, fmt.Sprintf(`document.getElementById("f-until").value = %q`, until.Format("2006-01-02T15:04:05.000")))
	tb.follow(`form.filters button[type="submit"]`)
	inRange, err := store.List(ctx, w.db, store.Query{Since: since, Until: until, Tables: []string{"teams", "users"}, Limit: 1000})
	require.NoError(t, err)
	require.NotEmpty(t, inRange)
	require.Len(t, tb.rowIDs(), min(len(inRange), 100))

	// The hostile values on every page: no dialog, no console error, no
	// refused inline script.
	tb.b.RequireClean(t)
}

// A reader moves through the stream with the keyboard alone, and the page
// says what it is to assistive technology.
func TestBrowserKeyboardAndLandmarks(t *testing.T) {
	w := seed(t)
	tb := newTab(t, newHandler(t, w.db, web.Config{}))
	tb.open("/")
	require.True(t, eval[bool](tb, `!!document.querySelector("header") && !!document.querySelector("nav") &&
		!!document.querySelector("main") && !!document.querySelector("footer") && !!document.querySelector("form[role=search]")`))
	require.True(t, eval[bool](tb, `[...document.querySelectorAll("input, select")].every(e => e.labels.length > 0)`), "every field is labelled")
	require.Equal(t, "en", eval[string](tb, `document.documentElement.lang`))

	var reached []string
	for range 300 {
		tb.b.Run(t, chromedp.KeyEvent("\t"))
		el := eval[string](tb, `(e => e.id || e.getAttribute("rel") || (e.tagName + ":" + e.innerText.trim().slice(0, 20)))(document.activeElement)`)
		if !slices.Contains(reached, el) {
			reached = append(reached, el)
		}
		if el == "next" {
			break
		}
	}
	for _, want := range []string{"f-table", "f-actor", "f-operation", "f-since", "f-until", "f-changed", "f-tx", "f-request",
		"BUTTON:Filter", "next"} {
		require.Contains(t, reached, want, "reached with Tab: %v", reached)
	}
	require.True(t, slices.ContainsFunc(reached, func(s string) bool { return strings.HasPrefix(s, "A:#") }), "an entry link: %v", reached)
	// Enter on a focused link follows it.
	tb.open("/")
	require.True(t, eval[bool](tb, `(document.querySelector("td.id a").focus(), document.activeElement.matches("td.id a"))`))
	before := eval[string](tb, `location.href`)
	tb.b.Run(t, chromedp.KeyEvent("\r"))
	require.Eventually(t, func() bool {
		v, ok := try[bool](tb, fmt.Sprintf(`location.href !== %q && document.readyState === "complete"`, before))
		return v && ok
	},
		10*time.Second, 20*time.Millisecond)
	require.Contains(t, tb.location().Path, "/entries/")
	tb.b.RequireClean(t)
}

// Live mode: with the switch on, an entry written after the page loaded
// appears without a reload.
func TestBrowserLiveStream(t *testing.T) {
	w := seed(t)
	tb := newTab(t, newHandler(t, w.db, web.Config{Live: true, LiveInterval: 100 * time.Millisecond}))
	tb.open("/?table=teams")
	top := tb.rowIDs()[0]
	_, err := w.db.ExecContext(actorCtx("zoe"), `UPDATE teams SET name = 'violet' WHERE id = 1`)
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, top, tb.rowIDs()[0], "nothing changes while the switch is off")
	tb.b.Run(t, chromedp.Click(chromedp.ID("live")))
	require.Eventually(t, func() bool { ids, ok := try[[]string](tb, rowIDsJS); return ok && len(ids) > 0 && ids[0] != top },
		10*time.Second, 50*time.Millisecond)
	require.Equal(t, "zoe", tb.column(2)[0])
	_, err = w.db.ExecContext(actorCtx("zoe"), `UPDATE users SET name = 'Zed' WHERE id = 1`)
	require.NoError(t, err)
	_, err = w.db.ExecContext(actorCtx("zoe"), `UPDATE teams SET name = 'indigo' WHERE id = 1`)
	require.NoError(t, err)
	require.Eventually(t, func() bool { ids, ok := try[[]string](tb, rowIDsJS); return ok && len(ids) == 102 },
		10*time.Second, 50*time.Millisecond)
	require.Equal(t, []string{"teams", "teams"}, tb.column(4)[:2], "the filter holds for live rows")
	tb.b.RequireClean(t)
}

// Live mode against a server slower than the interval: one request at a
// time, so an entry is shown once, not once for every request that was in
// flight when it was written.
func TestBrowserLiveSlowServer(t *testing.T) {
	w := seed(t)
	h := newHandler(t, w.db, web.Config{Live: true, LiveInterval: 10 * time.Millisecond})
	var inFlight, most atomic.Int32
	slow := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/live") {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(200 * time.Millisecond)
		}
		h.ServeHTTP(rw, r)
	})
	tb := newTab(t, slow)
	tb.open("/?table=teams")
	before := len(tb.rowIDs())
	tb.b.Run(t, chromedp.Click(chromedp.ID("live")))
	time.Sleep(300 * time.Millisecond) // requests are under way before the write
	_, err := w.db.ExecContext(actorCtx("zoe"), `UPDATE teams SET name = 'violet' WHERE id = 1`)
	require.NoError(t, err)
	require.Eventually(t, func() bool { ids, ok := try[[]string](tb, rowIDsJS); return ok && len(ids) > before },
		10*time.Second, 50*time.Millisecond)
	time.Sleep(700 * time.Millisecond) // a few more answers arrive
	ids := tb.rowIDs()
	require.Len(t, ids, before+1, "the new entry shown once: %v", ids[:3])
	require.Equal(t, int32(1), most.Load(), "live requests in flight at once")
	// Off: no more requests once the one in flight has answered.
	tb.b.Run(t, chromedp.Click(chromedp.ID("live")))
	time.Sleep(300 * time.Millisecond)
	require.Zero(t, inFlight.Load())
	_, err = w.db.ExecContext(actorCtx("zoe"), `UPDATE teams SET name = 'indigo' WHERE id = 1`)
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond)
	require.Len(t, tb.rowIDs(), before+1, "nothing added once the switch is off")
	tb.b.RequireClean(t)
}
