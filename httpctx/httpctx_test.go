package httpctx_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/httpctx"
	"github.com/auditpgx/auditpgx/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// app is a small application: an audited database and a server whose
// handlers write through it with the request's context.
type app struct {
	db, plain *sql.DB
	srv       *httptest.Server
}

func newApp(t *testing.T, cfg httpctx.Config) *app {
	t.Helper()
	ctx := context.Background()
	dsn, _ := pgtest.NewSchema(t)
	plain, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { plain.Close() })
	_, err = plain.ExecContext(ctx, `CREATE TABLE accounts (id int PRIMARY KEY, name text, email text UNIQUE)`)
	require.NoError(t, err)
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{})
	require.NoError(t, err)
	require.NoError(t, reg.RegisterTable("accounts"))
	conn, err := auditpgx.NewConnector(dsn, auditpgx.WithRegistry(reg))
	require.NoError(t, err)
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, auditpgx.Migrate(ctx, db, auditpgx.WithRegistry(reg)))

	mw := httpctx.Middleware(cfg)
	mux := http.NewServeMux()
	// A transaction with an insert and an upsert, as a handler would.
	mux.Handle("PUT /accounts/{id}", mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		tx, err := db.BeginTx(ctx, nil)
		if err == nil {
			_, err = tx.ExecContext(ctx, `INSERT INTO accounts (id, name, email) VALUES ($1::int, 'new', $1::int::text || '@x')`, r.PathValue("id"))
		}
		if err == nil {
			_, err = tx.ExecContext(ctx, `INSERT INTO accounts (id, name, email) VALUES ($1::int, 'renamed', $1::int::text || '@x')
				ON CONFLICT (id) DO UPDATE SET name = excluded.name`, r.PathValue("id"))
		}
		if err == nil {
			err = tx.Commit()
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})))
	mux.Handle("DELETE /accounts/{id}", mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := db.ExecContext(r.Context(), `DELETE FROM accounts WHERE id = $1`, r.PathValue("id")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &app{db: db, plain: plain, srv: srv}
}

func (a *app) do(t *testing.T, method, path string, header map[string]string) *http.Response {
	t.Helper()
	resp, err := a.request(method, path, header)
	require.NoError(t, err)
	return resp
}

// request sends a request and fails unless it is answered 200 OK.
func (a *app) request(method, path string, header map[string]string) (*http.Response, error) {
	req, err := http.NewRequest(method, a.srv.URL+path, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, body)
	}
	return resp, nil
}

type recorded struct {
	Operation string
	Actor     *string
	Context   map[string]string
}

func (a *app) entries(t *testing.T) []recorded {
	t.Helper()
	rows, err := a.plain.Query(`SELECT operation, created_by, context FROM auditpgx_entry ORDER BY id`)
	require.NoError(t, err)
	defer rows.Close()
	var out []recorded
	for rows.Next() {
		var r recorded
		var raw []byte
		require.NoError(t, rows.Scan(&r.Operation, &r.Actor, &raw))
		require.NoError(t, json.Unmarshal(raw, &r.Context))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

func TestMiddlewareReachesEveryEntry(t *testing.T) {
	a := newApp(t, httpctx.Config{
		TrustedProxyHeader: "X-Forwarded-For",
		Actor: func(r *http.Request) (string, bool) {
			u := r.Header.Get("X-User")
			return u, u != ""
		},
	})
	resp := a.do(t, "PUT", "/accounts/7", map[string]string{"X-Request-Id": "req-1", "X-User": "alice",
		"X-Forwarded-For": "198.51.100.9, 203.0.113.7"})
	require.Equal(t, "req-1", resp.Header.Get("X-Request-Id"), "the id is echoed")
	resp = a.do(t, "DELETE", "/accounts/7", map[string]string{"X-Request-Id": "bad id with spaces"})
	generated := resp.Header.Get("X-Request-Id")
	require.Regexp(t, `^[0-9a-f]{32}$`, generated, "an unusable id is replaced")

	got := a.entries(t)
	require.Len(t, got, 3)
	for _, e := range got[:2] {
		require.Equal(t, "alice", *e.Actor)
		require.Equal(t, map[string]string{"request_id": "req-1", "remote_addr": "203.0.113.7", "method": "PUT",
			"route": "PUT /accounts/{id}"}, e.Context, e.Operation)
	}
	require.Equal(t, []string{"create", "update"}, []string{got[0].Operation, got[1].Operation})
	require.Nil(t, got[2].Actor)
	require.Equal(t, map[string]string{"request_id": generated, "remote_addr": "127.0.0.1", "method": "DELETE",
		"route": "DELETE /accounts/{id}"}, got[2].Context)
}

// TestMiddlewareUntrustedHeader: without a trusted proxy header configured,
// a client's X-Forwarded-For is ignored.
func TestMiddlewareUntrustedHeader(t *testing.T) {
	a := newApp(t, httpctx.Config{})
	a.do(t, "PUT", "/accounts/1", map[string]string{"X-Forwarded-For": "10.9.9.9"})
	got := a.entries(t)
	require.NotEmpty(t, got)
	require.Equal(t, "127.0.0.1", got[0].Context["remote_addr"])
}

// TestMiddlewareConcurrentRequests: requests served at once never see each
// other's context (run with -race).
func TestMiddlewareConcurrentRequests(t *testing.T) {
	a := newApp(t, httpctx.Config{Actor: func(r *http.Request) (string, bool) { return "u-" + r.PathValue("id"), true }})
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := a.request("PUT", fmt.Sprintf("/accounts/%d", i), map[string]string{"X-Request-Id": fmt.Sprintf("req-%d", i)})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	rows, err := a.plain.Query(`SELECT object_id, created_by, context->>'request_id' FROM auditpgx_entry`)
	require.NoError(t, err)
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var id, actor, req string
		require.NoError(t, rows.Scan(&id, &actor, &req))
		require.Equal(t, "u-"+id, actor)
		require.Equal(t, "req-"+id, req)
		seen++
	}
	require.NoError(t, rows.Err())
	require.Equal(t, 2*n, seen)
}
