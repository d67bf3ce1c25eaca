package httpapi_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/httpapi"
)

// records is a slog.Handler keeping every record, at every level, for the
// test to inspect; the server's goroutines write to it concurrently.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *records) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *records) WithGroup(string) slog.Handler      { return h }

// above returns the records above level, as text.
func (h *records) above(level slog.Level) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.recs {
		if r.Level > level {
			var attrs []string
			r.Attrs(func(a slog.Attr) bool {
				attrs = append(attrs, a.String())
				return true
			})
			out = append(out, r.Level.String()+" "+r.Message+" "+strings.Join(attrs, " "))
		}
	}
	return out
}

func (h *records) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.recs)
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestHostileInput sends, through a real HTTP server, requests that once
// answered 500 (the database refusing a NUL byte, invalid UTF-8, a jsonb
// value or too many bind parameters), a partial filter (a query string
// url.ParseQuery dropped pairs of), or a 403 that told an entry existed.
// Each gets its 4xx naming the parameter, and nothing is logged above
// debug level, by the handler or by the server.
func TestHostileInput(t *testing.T) {
	f := seed(t)
	logs := &records{}
	h, err := httpapi.New(f.db, httpapi.Config{
		Authorize: func(_ *http.Request, table string) bool { return table != "teams" },
		Logger:    slog.New(logs),
	})
	require.NoError(t, err)
	ts := httptest.NewUnstartedServer(h)
	var serverLog syncBuffer
	ts.Config.ErrorLog = log.New(&serverLog, "", 0)
	ts.Start()
	defer ts.Close()

	junk := strings.Repeat("&junk=1", 10_000)
	many := func(format string, n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf(format, i)
		}
		return strings.Join(parts, "&")
	}
	for _, tc := range []struct {
		name, target string
		status       int
		want         string // in the detail: the parameter's name, quoted
	}{
		// NUL bytes and invalid UTF-8, in every filter and path segment.
		{"nul actor", "/entries?actor=%00", 400, `"actor"`},
		{"utf8 actor", "/entries?actor=%ff", 400, `"actor"`},
		{"nul table", "/entries?table=users%00", 400, `"table"`},
		{"nul object_id", "/entries?object_id=1%00", 400, `"object_id"`},
		{"utf8 related_table", "/entries?related_table=%c3", 400, `"related_table"`},
		{"nul related_object_id", "/entries?related_object_id=%00", 400, `"related_object_id"`},
		{"nul cursor", "/entries?cursor=%00", 400, `"cursor"`},
		{"nul tx_id", "/entries?tx_id=1%00", 400, `"tx_id"`},
		{"nul operation", "/entries?operation=create%00", 400, `"operation"`},
		{"nul since", "/entries?since=%00", 400, `"since"`},
		{"nul order", "/entries?order=id%00", 400, `"order"`},
		{"nul limit", "/entries?limit=%00", 400, `"limit"`},
		{"nul added field", "/entries?added=na%00me", 400, `"added"`},
		{"utf8 changed field", "/entries?changed=%fe", 400, `"changed"`},
		{"nul dotted field", "/entries?added.na%00me=1", 400, `"added.na\x00me"`},
		{"utf8 dotted field", "/entries?changed.%ff.to=1", 400, `"changed.\xff.to"`},
		{"nul value", "/entries?added.name=%00", 400, `"added.name"`},
		{"utf8 value", "/entries?changed.name.from=%ff", 400, `"changed.name.from"`},
		{"nul parameter name", "/entries?%00=1", 400, `"\x00"`},
		{"nul as_of", "/objects/users/1?as_of=%00", 400, `"as_of"`},
		{"nul unknown on entry", "/entries/1?x=%00", 400, `"x"`},
		{"nul path table", "/objects/users%00/1", 400, `"table"`},
		{"nul path id", "/objects/users/1%00", 400, `"id"`},
		{"utf8 history id", "/objects/users/%ff/history", 400, `"id"`},
		{"utf8 history table", "/objects/%ff/1/history", 400, `"table"`},
		{"nul entry id", "/entries/1%00", 400, `"id"`},

		// JSON values jsonb refuses or that exceed the documented bounds.
		{"json \\u0000", "/entries?added.name=%22%5Cu0000%22", 400, `"added.name"`},
		{"json \\u0000 in a key", "/entries?added.name=%7B%22%5Cu0000%22:1%7D", 400, `"added.name"`},
		{"json lone high surrogate", "/entries?added.name=%22%5Cud800%22", 400, `"added.name"`},
		{"json lone low surrogate", "/entries?removed.name=%22x%5Cudc00%22", 400, `"removed.name"`},
		{"json reversed surrogates", "/entries?added.name=%22%5Cudc00%5Cud800%22", 400, `"added.name"`},
		{"json huge exponent", "/entries?added.age=1e999999", 400, `"added.age"`},
		{"json tiny exponent", "/entries?changed.age.to=1e-20000", 400, `"changed.age.to"`},
		{"json long integer", "/entries?added.age=1" + strings.Repeat("0", 200_000), 400, `"added.age"`},
		{"json long fraction", "/entries?added.age=0." + strings.Repeat("0", 20_000) + "1", 400, `"added.age"`},
		{"json deep", "/entries?added.x=" + strings.Repeat("%5B", 101) + strings.Repeat("%5D", 101), 400, `"added.x"`},

		// Query strings url.ParseQuery does not parse completely.
		{"semicolon after a value", "/entries?actor=admin;", 400, `"actor"`},
		{"semicolon as separator", "/entries?actor=alice;table=users", 400, `"actor"`},
		{"semicolon in a later pair", "/entries?table=users&actor=bob;", 400, `"actor"`},
		{"semicolon alone", "/entries?table=users&;", 400, `";"`},
		{"semicolon on as_of", "/objects/users/1?as_of=2024-03-01T12:00:00Z;", 400, `"as_of"`},
		{"semicolon on history", "/objects/users/1/history?;", 400, `";"`},
		{"semicolon on an entry", "/entries/1?a;", 400, `"a;"`},
		{"bad escape", "/entries?actor=%zz", 400, `"actor"`},
		{"bad escape in a name", "/entries?act%zzor=alice", 400, `"act%zzor"`},
		{"10,000 junk parameters", "/entries?actor=alice" + junk, 400, "the query string has"},
		{"more than 1000 parameters", "/entries?" + many("added.f%d=1", 1001), 400, "the query string has"},

		// List-valued filters: bounded, duplicates counted.
		{"100,000 operations", "/entries?operation=" + strings.Repeat("create,", 99_999) + "create", 400, `"operation"`},
		{"101 operation parameters", "/entries?" + strings.Repeat("operation=create&", 100) + "operation=update", 400, `"operation"`},
		{"101 added", "/entries?" + many("added=f%d", 101), 400, `"added"`},
		{"101 removed", "/entries?" + strings.Repeat("removed=pw&", 100) + "removed=pw", 400, `"removed"`},
		{"101 changed", "/entries?" + many("changed=f%d", 101), 400, `"changed"`},
		{"101 change filters", "/entries?" + many("added.f%03d=1", 101), 400, `"added.f100"`},
		{"101 change filters of several kinds", "/entries?" + many("added=f%d", 60) + "&" + many("changed.g%d.to=1", 41), 400, `"changed.g`},

		// Messages speak the API's names.
		{"until before since", "/entries?since=2024-03-02T00:00:00Z&until=2024-03-01T00:00:00Z", 400, `"until"`},

		// An entry of a refused table is a 404 like a missing one.
		{"refused entry", "/entries/" + itoa(f.ids["g"]), 404, "entry " + itoa(f.ids["g"]) + " not found"},
		{"missing entry", "/entries/999999", 404, "entry 999999 not found"},

		// Odd but valid input is served.
		{"100 operations", "/entries?operation=" + strings.Repeat("create,", 99) + "update", 200, ""},
		{"100 change filters", "/entries?" + many("added.f%d=1", 100), 200, ""},
		{"escaped NUL text is a string", "/entries?object_id=%5Cu0000", 200, ""},
		{"paired surrogates", "/entries?added.name=%22%5Cud83d%5Cude00%22", 200, ""},
		{"escaped semicolon", "/entries?actor=admin%3B", 200, ""},
		{"1000-digit number", "/entries?added.age=" + strings.Repeat("9", 1000) + "e1000", 200, ""},
		{"deep but bounded", "/entries?added.x=" + strings.Repeat("%5B", 100) + strings.Repeat("%5D", 100), 200, ""},
		{"long actor", "/entries?actor=" + strings.Repeat("a", 100_000), 200, ""},
		{"far times", "/entries?since=0001-01-01T00:00:00Z&until=9999-12-31T23:59:59-23:59", 200, ""},
		{"odd table names", "/objects/a.b.c.d/1/history", 200, ""},
		{"quoted table name", "/objects/%22Users%22%22/1", 404, "did not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := logs.count()
			req, err := http.NewRequest("GET", ts.URL+tc.target, nil)
			if err != nil { // a target the client will not parse: send it as written
				req, err = http.NewRequest("GET", ts.URL, nil)
				require.NoError(t, err)
				path, query, _ := strings.Cut(tc.target, "?")
				req.URL.Opaque, req.URL.RawQuery = path, query
			}
			resp, err := ts.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tc.status, resp.StatusCode, "%.200s: %.300s", tc.target, body)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var detail struct{ Detail string }
			require.NoError(t, json.Unmarshal(body, &detail))
			require.Contains(t, detail.Detail, tc.want, "%.200s", tc.target)
			require.NotRegexp(t, goNames, detail.Detail, "the API's names, not Go's")
			if tc.status >= 400 {
				require.Greater(t, logs.count(), before, "a client error is logged at debug level")
			}
			require.Empty(t, logs.above(slog.LevelDebug), "%.200s", tc.target)
		})
	}
	require.Empty(t, serverLog.String())

	// Messages use the parameters' names, not Go's.
	code, _, body := do(t, h, "GET", "/entries?since=2024-03-02T00:00:00Z&until=2024-03-01T00:00:00Z")
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, `parameter "until": until 2024-03-01T00:00:00Z is before since 2024-03-02T00:00:00Z`, body["detail"])
	code, _, body = do(t, h, "GET", "/entries?table=users&limit=1")
	require.Equal(t, http.StatusOK, code)
	next, err := url.Parse(body["next"].(string))
	require.NoError(t, err)
	code, _, body = do(t, h, "GET", "/entries?order=-id&cursor="+url.QueryEscape(next.Query().Get("cursor")))
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, `parameter "cursor": the cursor is for a listing with order=id`, body["detail"])
}

// goNames matches store.Query's field names, which error messages must not
// show.
var goNames = regexp.MustCompile(`\b(Since|Until|Limit|Cursor|Operations|Changes|TableName|ObjectID|Actor|TxID)\b`)

// querier records the arguments of each query it passes on.
type querier struct {
	*sql.DB
	mu   sync.Mutex
	args [][]any
}

func (q *querier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	q.mu.Lock()
	q.args = append(q.args, args)
	q.mu.Unlock()
	return q.DB.QueryContext(ctx, query, args...)
}

// Repeated values of a list-valued filter are sent once.
func TestListValuesDeduplicated(t *testing.T) {
	f := seed(t)
	db := &querier{DB: f.db}
	h, err := httpapi.New(db, httpapi.Config{Authorize: allowAll, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	for _, tc := range []struct {
		query string
		args  int // bind parameters, the LIMIT's included
		want  string
	}{
		{"operation=create,create,update&operation=create", 3, "abceg"},
		{"operation=" + strings.Repeat("delete,", 99) + "delete", 2, "f"},
		{"added=name&added=name&added=id", 3, "acg"},
		{"changed=name&changed.name.to=Anne&changed.name.from=Ann", 5, "b"},
	} {
		db.args = nil
		code, _, body := do(t, h, "GET", "/entries?"+tc.query)
		require.Equal(t, http.StatusOK, code, "%s: %v", tc.query, body)
		require.Equal(t, tc.want, f.labels(t, body["results"]), tc.query)
		require.Len(t, db.args, 1)
		require.Len(t, db.args[0], tc.args, "%s: %v", tc.query, db.args[0])
	}
}
