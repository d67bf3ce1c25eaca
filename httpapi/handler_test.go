package httpapi_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/httpapi"
	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var base = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// fixtures, in id order; created is base plus minute minutes.
var fixtures = []struct {
	label, actor string
	minute       int
	op           string
	table, obj   string
	changes      string
	rel          [3]string // related table, object, field
	tx           int64
}{
	{"a", "alice", 0, "create", "users", "1", `{"added_fields": {"id": 1, "name": "Ann", "age": 30, "pw": "$encrypted$"}}`, [3]string{}, 10},
	{"b", "bob", 10, "update", "users", "1", `{"changed_fields": {"name": ["Ann", "Anne"], "age": [30, 31]}}`, [3]string{}, 11},
	{"c", "alice", 20, "create", "users", "a/b", `{"added_fields": {"id": "a/b", "name": "Slash"}}`, [3]string{}, 12},
	{"d", "", 30, "associate", "teams", "9", "", [3]string{"users", "1", "members"}, 13},
	{"e", "carol", 40, "update", "users", "2", `{"changed_fields": {"id": [1, 2]}}`, [3]string{}, 14},
	{"f", "bob", 50, "delete", "users", "2", `{"removed_fields": {"id": 2, "name": "Anne", "age": 31, "pw": "$encrypted$"}}`, [3]string{}, 15},
	{"g", "carol", 60, "create", "teams", "9", `{"added_fields": {"id": 9, "name": "red"}}`, [3]string{}, 15},
}

type fixture struct {
	db  *sql.DB
	ids map[string]int64
}

func seed(t *testing.T) fixture {
	t.Helper()
	ctx := context.Background()
	dsn, _ := pgtest.NewSchema(t)
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, store.Migrate(ctx, db, "auditpgx_entry"))
	_, err = db.ExecContext(ctx, `CREATE TABLE users (id int PRIMARY KEY)`) // for AsOf's key look-up
	require.NoError(t, err)
	ids := map[string]int64{}
	null := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	for _, f := range fixtures {
		var id int64
		err := db.QueryRowContext(ctx, `INSERT INTO auditpgx_entry
			(created, created_by, operation, table_name, object_id, changes,
			 related_table_name, related_object_id, related_field_name, tx_id, statement_fingerprint)
			VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, 'fp') RETURNING id`,
			base.Add(time.Duration(f.minute)*time.Minute), null(f.actor), f.op, f.table, f.obj, null(f.changes),
			null(f.rel[0]), null(f.rel[1]), null(f.rel[2]), f.tx).Scan(&id)
		require.NoError(t, err)
		ids[f.label] = id
	}
	// Entry contexts, for the context.K filters.
	for label, c := range map[string]string{"c": `{"request_id": "r-1", "n": 3}`, "e": `{"request_id": "r-2", "user": {"id": 7}}`} {
		_, err := db.ExecContext(ctx, `UPDATE auditpgx_entry SET context = $1::jsonb WHERE id = $2`, c, ids[label])
		require.NoError(t, err)
	}
	return fixture{db: db, ids: ids}
}

func allowAll(*http.Request, string) bool { return true }

func newHandler(t *testing.T, db *sql.DB, authorize func(*http.Request, string) bool) http.Handler {
	t.Helper()
	h, err := httpapi.New(db, httpapi.Config{Authorize: authorize, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	return h
}

// do serves one request and decodes the JSON body into a generic value.
func do(t *testing.T, h http.Handler, method, target string) (int, http.Header, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var body map[string]any
	if method != http.MethodHead {
		require.Equal(t, "application/json", w.Header().Get("Content-Type"), "%s %s", method, target)
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body), "%s %s: %s", method, target, w.Body)
	}
	return w.Code, w.Header(), body
}

func (f fixture) labels(t *testing.T, results any) string {
	t.Helper()
	byID := map[int64]string{}
	for l, id := range f.ids {
		byID[id] = l
	}
	var b strings.Builder
	for _, r := range results.([]any) {
		b.WriteString(byID[int64(r.(map[string]any)["id"].(float64))])
	}
	return b.String()
}

func TestNewRequiresAuthorize(t *testing.T) {
	_, err := httpapi.New(&sql.DB{}, httpapi.Config{})
	require.ErrorIs(t, err, httpapi.ErrNoAuthorize)
	require.ErrorContains(t, err, "Config.Authorize is required")

	_, err = httpapi.New(nil, httpapi.Config{Authorize: allowAll})
	require.ErrorContains(t, err, "db is nil")

	_, err = httpapi.New(&sql.DB{}, httpapi.Config{Authorize: allowAll, EntryTable: "a.b.c"})
	require.ErrorIs(t, err, store.ErrInvalidTableName)
	require.ErrorContains(t, err, "Config.EntryTable")
}

func TestEntriesFilters(t *testing.T) {
	f := seed(t)
	h := newHandler(t, f.db, allowAll)
	for _, tc := range []struct{ query, want string }{
		{"", "abcdefg"},
		{"table=users", "abcef"},
		{"object_id=1", "ab"},
		{"table=users&object_id=a%2Fb", "c"},
		{"related_table=users", "d"},
		{"related_object_id=1", "d"},
		{"related_table=users&related_object_id=2", ""},
		{"actor=alice", "ac"},
		{"operation=create", "acg"},
		{"operation=update&operation=delete", "bef"},
		{"operation=associate,delete", "df"},
		{"tx_id=15", "fg"},
		{"since=2024-03-01T12:30:00Z", "defg"},
		{"until=2024-03-01T12:30:00Z", "abc"},
		{"since=2024-03-01T13:10:00%2B01:00&until=2024-03-01T12:40:00.000001Z", "bcde"},
		{"added=name", "acg"},
		{"removed=pw", "f"},
		{"changed=name", "b"},
		{"changed=id", "e"},
		{"added.name=Ann", "a"},
		{"added.name=%22Ann%22", "a"},
		{"added.id=1", "a"},
		{"added.id=%221%22", ""}, // a string, not the number
		{"added.id=a%2Fb", "c"},
		{"changed.name.from=Ann", "b"},
		{"changed.name.to=Ann", ""},
		{"changed.age.from=30&changed.age.to=31.0", "b"},
		{"changed.age.from=30&changed.name.to=Anne", "b"},
		{"removed.pw=%24encrypted%24", "f"},
		{"removed.age=31&actor=alice", ""},
		{"context.request_id=r-1", "c"},
		{"context.request_id=%22r-2%22", "e"},
		{"context.n=3", "c"},
		{"context.n=%223%22", ""}, // a string, not the number
		{"context.user=%7B%22id%22:7%7D", "e"},
		{"context.request_id=r-1&actor=bob", ""},
		{"context.request_id=r-1&context.n=3", "c"},
		{"order=-id", "gfedcba"},
		{"order=id&table=teams", "dg"},
		{"order=-id&limit=3", "gfe"},
	} {
		code, _, body := do(t, h, "GET", "/entries?"+tc.query)
		require.Equal(t, http.StatusOK, code, "%s: %v", tc.query, body)
		require.Equal(t, tc.want, f.labels(t, body["results"]), tc.query)
	}
}

func TestEntryShape(t *testing.T) {
	f := seed(t)
	h := newHandler(t, f.db, allowAll)

	r := httptest.NewRequest("GET", "/entries?object_id=1&operation=update", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	require.Equal(t, http.StatusOK, w.Code)
	require.JSONEq(t, `{"next": null, "results": [{
		"id": `+itoa(f.ids["b"])+`,
		"created": "2024-03-01T12:10:00Z",
		"created_by": "bob",
		"operation": "update",
		"table_name": "users",
		"object_id": "1",
		"changes": {"added_fields": {}, "removed_fields": {}, "changed_fields": {"name": ["Ann", "Anne"], "age": [30, 31]}},
		"related_table_name": null,
		"related_object_id": null,
		"related_field_name": null,
		"tx_id": 11,
		"statement_fingerprint": "fp",
		"context": null
	}]}`, w.Body.String())
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))

	code, _, body := do(t, h, "GET", "/entries/"+itoa(f.ids["d"]))
	require.Equal(t, http.StatusOK, code)
	require.Nil(t, body["changes"])
	require.Equal(t, "members", body["related_field_name"])
	require.Nil(t, body["created_by"])

	code, _, body = do(t, h, "GET", "/entries?table=nobody")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, []any{}, body["results"])
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Following next links visits every entry once, in order, and keeps the
// other parameters; under StripPrefix the link keeps the prefix.
func TestEntriesPagination(t *testing.T) {
	f := seed(t)
	h := newHandler(t, f.db, allowAll)
	mux := http.NewServeMux()
	mux.Handle("/audit/", http.StripPrefix("/audit", h))

	for _, tc := range []struct {
		start string
		pages []string
	}{
		{"/audit/entries?limit=2", []string{"ab", "cd", "ef", "g"}},
		{"/audit/entries?limit=3&order=-id", []string{"gfe", "dcb", "a"}},
		{"/audit/entries?limit=2&table=users&order=-id", []string{"fe", "cb", "a"}},
		{"/audit/entries?limit=5&table=users", []string{"abcef"}},
	} {
		var pages []string
		target := tc.start
		for {
			code, _, body := do(t, mux, "GET", target)
			require.Equal(t, http.StatusOK, code, "%s: %v", target, body)
			pages = append(pages, f.labels(t, body["results"]))
			next, ok := body["next"].(string)
			if !ok {
				require.Nil(t, body["next"])
				break
			}
			require.True(t, strings.HasPrefix(next, "/audit/entries?"), next)
			u, err := url.Parse(next)
			require.NoError(t, err)
			start, _ := url.Parse(tc.start)
			for k, v := range start.Query() {
				require.Equal(t, v, u.Query()[k], "next link %s keeps %s", next, k)
			}
			target = next
		}
		require.Equal(t, tc.pages, pages, tc.start)
	}
}

func TestBadParameters(t *testing.T) {
	f := seed(t)
	h := newHandler(t, f.db, allowAll)
	code, _, body := do(t, h, "GET", "/entries?limit=2")
	require.Equal(t, http.StatusOK, code)
	next, err := url.Parse(body["next"].(string))
	require.NoError(t, err)
	ascCursor := url.QueryEscape(next.Query().Get("cursor"))

	for _, tc := range []struct{ target, param string }{
		{"/entries?limit=0", "limit"},
		{"/entries?limit=1001", "limit"},
		{"/entries?limit=ten", "limit"},
		{"/entries?limit=1&limit=2", "limit"},
		{"/entries?table=a&table=b", "table"},
		{"/entries?operation=insert", "operation"},
		{"/entries?operation=create,,update", "operation"},
		{"/entries?tx_id=abc", "tx_id"},
		{"/entries?tx_id=-1", "tx_id"},
		{"/entries?since=yesterday", "since"},
		{"/entries?until=2024-03-01", "until"},
		{"/entries?since=2024-03-02T00:00:00Z&until=2024-03-01T00:00:00Z", "until"},
		{"/entries?order=created", "order"},
		{"/entries?cursor=nonsense", "cursor"},
		{"/entries?order=-id&cursor=" + ascCursor, "cursor"},
		{"/entries?added=", "added"},
		{"/entries?removed.pw=1&removed=pw&changed.x.from=1&changed.x.from=2", "changed.x.from"},
		{"/entries?tabel=users", "tabel"},
		{"/entries?added.=1", "added."},
		{"/entries?changed.name=Ann", "changed.name"},
		{"/entries/abc", "abc"},
		{"/entries/0", "0"},
		{"/entries/1?x=1", "x"},
		{"/objects/users/1?as_of=noon", "as_of"},
		{"/objects/users/1?as_of=2024-03-01T12:00:00Z&as_of=2024-03-01T13:00:00Z", "as_of"},
		{"/objects/users/1?when=now", "when"},
		{"/objects/users/1/history?page=2", "page"},
	} {
		code, _, body := do(t, h, "GET", tc.target)
		require.Equal(t, http.StatusBadRequest, code, "%s: %v", tc.target, body)
		require.Contains(t, body["detail"], `"`+tc.param+`"`, tc.target)
	}
}

func TestAuthorization(t *testing.T) {
	f := seed(t)
	var asked []string
	onlyUsers := func(r *http.Request, table string) bool {
		asked = append(asked, table)
		return table == "users" && r.Header.Get("Authorization") == ""
	}
	h := newHandler(t, f.db, onlyUsers)
	for _, tc := range []struct {
		target string
		code   int
		table  string // the table Authorize was asked about first
	}{
		{"/entries", http.StatusForbidden, ""},
		{"/entries?table=teams", http.StatusForbidden, "teams"},
		{"/entries?table=teams&limit=bad", http.StatusForbidden, "teams"}, // refused before validation
		{"/entries?table=users", http.StatusOK, "users"},
		{"/entries/" + itoa(f.ids["g"]), http.StatusNotFound, "teams"}, // as if it did not exist
		{"/entries/" + itoa(f.ids["a"]), http.StatusOK, "users"},
		{"/objects/teams/9", http.StatusForbidden, "teams"},
		{"/objects/teams/9/history", http.StatusForbidden, "teams"},
		{"/objects/users/1/history", http.StatusOK, "users"},
	} {
		asked = nil
		code, _, body := do(t, h, "GET", tc.target)
		require.Equal(t, tc.code, code, "%s: %v", tc.target, body)
		require.NotEmpty(t, asked, tc.target)
		require.Equal(t, tc.table, asked[0], tc.target)
		if code == http.StatusForbidden {
			require.Contains(t, body["detail"], "not allowed", tc.target)
		}
	}

	// An entry of a refused table gets the very answer of a missing id: no
	// existence oracle, no table name.
	forbiddenID, missingID := f.ids["g"], int64(999999)
	r := httptest.NewRequest("GET", "/entries/"+itoa(forbiddenID), nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	forbidden := w.Body.String()
	r = httptest.NewRequest("GET", "/entries/"+itoa(missingID), nil)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	require.Equal(t, http.StatusNotFound, w.Code)
	require.Equal(t, strings.ReplaceAll(w.Body.String(), itoa(missingID), itoa(forbiddenID)), forbidden)
	require.NotContains(t, forbidden, "teams")

	// The history of users 1 leaves out the association filed under teams.
	code, _, body := do(t, h, "GET", "/objects/users/1/history")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "abe", f.labels(t, body["results"]))

	allowTeams := newHandler(t, f.db, func(_ *http.Request, table string) bool { return table != "" })
	code, _, body = do(t, allowTeams, "GET", "/objects/users/1/history")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "abde", f.labels(t, body["results"]))

	// The request reaches Authorize.
	r = httptest.NewRequest("GET", "/entries?table=users", nil)
	r.Header.Set("Authorization", "Bearer x")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	require.Equal(t, http.StatusForbidden, w.Code)
}

func TestMethodNotAllowed(t *testing.T) {
	f := seed(t)
	h := newHandler(t, f.db, allowAll)
	for _, method := range []string{"POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		for _, target := range []string{"/entries", "/entries/1", "/objects/users/1", "/objects/users/1/history"} {
			code, header, body := do(t, h, method, target)
			require.Equal(t, http.StatusMethodNotAllowed, code, "%s %s", method, target)
			require.Equal(t, "GET, HEAD", header.Get("Allow"))
			require.Contains(t, body["detail"], "read-only")
		}
	}
	code, _, _ := do(t, h, "HEAD", "/entries")
	require.Equal(t, http.StatusOK, code)
	// Nothing was changed.
	code, _, body := do(t, h, "GET", "/entries")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, body["results"], len(fixtures))
}

func TestNotFound(t *testing.T) {
	f := seed(t)
	h := newHandler(t, f.db, allowAll)
	for _, target := range []string{"/entries/999999", "/objects/users/42", "/nope", "/objects/users"} {
		code, _, body := do(t, h, "GET", target)
		require.Equal(t, http.StatusNotFound, code, "%s: %v", target, body)
		require.NotEmpty(t, body["detail"])
	}
}

func TestHistoryAndAsOf(t *testing.T) {
	f := seed(t)
	h := newHandler(t, f.db, allowAll)

	code, _, body := do(t, h, "GET", "/objects/users/2/history")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "abdef", f.labels(t, body["results"])) // follows the key change from 1
	code, _, body = do(t, h, "GET", "/objects/users/a%2Fb/history")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "c", f.labels(t, body["results"]))
	code, _, body = do(t, h, "GET", "/objects/users/42/history")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, []any{}, body["results"])

	for _, tc := range []struct {
		target string
		want   string // fields as JSON, "" for 404
	}{
		{"/objects/users/1?as_of=2024-03-01T11:59:59Z", ""}, // before creation
		{"/objects/users/1?as_of=2024-03-01T12:00:00Z", `{"id": 1, "name": "Ann", "age": 30, "pw": "$encrypted$"}`},
		{"/objects/users/1?as_of=2024-03-01T12:10:00Z", `{"id": 1, "name": "Anne", "age": 31, "pw": "$encrypted$"}`},
		{"/objects/users/1?as_of=2024-03-01T13:10:00%2B01:00", `{"id": 1, "name": "Anne", "age": 31, "pw": "$encrypted$"}`},
		{"/objects/users/1?as_of=2024-03-01T12:40:00Z", ""}, // its key changed
		{"/objects/users/2?as_of=2024-03-01T12:45:00Z", `{"id": 2, "name": "Anne", "age": 31, "pw": "$encrypted$"}`},
		{"/objects/users/2?as_of=2024-03-01T12:50:00Z", ""}, // after deletion
		{"/objects/users/2", ""},
		{"/objects/users/a%2Fb", `{"id": "a/b", "name": "Slash"}`},
	} {
		code, _, body := do(t, h, "GET", tc.target)
		if tc.want == "" {
			require.Equal(t, http.StatusNotFound, code, "%s: %v", tc.target, body)
			require.Contains(t, body["detail"], "did not exist at")
			continue
		}
		require.Equal(t, http.StatusOK, code, "%s: %v", tc.target, body)
		require.JSONEq(t, tc.want, string(mustJSON(body["fields"])), tc.target)
		require.Equal(t, "users", body["table_name"])
		require.NotEmpty(t, body["as_of"])
	}
	_, _, body = do(t, h, "GET", "/objects/users/1?as_of=2024-03-01T13:10:00%2B01:00")
	require.Equal(t, "2024-03-01T13:10:00+01:00", body["as_of"])
}

// A database failure is a 500 with a generic message, logged in full.
func TestServerError(t *testing.T) {
	f := seed(t)
	var logged bytes.Buffer
	h, err := httpapi.New(f.db, httpapi.Config{Authorize: allowAll, EntryTable: "missing_table",
		Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	require.NoError(t, err)
	code, _, body := do(t, h, "GET", "/entries")
	require.Equal(t, http.StatusInternalServerError, code)
	require.Equal(t, "internal server error", body["detail"])
	require.Contains(t, logged.String(), "missing_table")
}
