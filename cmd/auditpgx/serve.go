package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/auditpgx/auditpgx/httpapi"
	"github.com/auditpgx/auditpgx/store"
	"github.com/auditpgx/auditpgx/web"
)

// defaultAddr is where serve listens without --addr: loopback only, so that
// the audit log is not reachable from the network unless asked for.
const defaultAddr = "127.0.0.1:8080"

// Authorization modes of serve.
const (
	authToken = "token" // a bearer token from an environment variable
	authNone  = "none"  // anyone who can reach the address
)

func runServe(ctx context.Context, e env, args []string) error {
	fs, c := newFlags("serve", "", "Serve the read-only HTTP API (see the httpapi package) and, under /web/, the\n"+
		"activity stream's web pages (see the web package) until interrupted.\n"+
		"--auth is required: token checks \"Authorization: Bearer <token>\" against the variable\n"+
		"--token-env names and grants every table (a browser signs in once at /web/ with the token,\n"+
		"kept in a cookie); none serves everyone and says so", e.stderr)
	addr := fs.String("addr", defaultAddr, "listen on this `address`: the default is loopback only; :8080 listens on every interface")
	auth := fs.String("auth", "", "authorization `mode`: token or none (required)")
	tokenEnv := fs.String("token-env", "AUDITPGX_TOKEN", "the environment `variable` holding the bearer token for --auth token")
	live := fs.Bool("live", false, "let the web page's stream show new entries without a reload (a switch on the page, off until turned on)")
	if _, err := parse(fs, args); err != nil {
		return err
	}

	var (
		authorize func(*http.Request, string) bool
		session   string // the web page's session cookie value, for --auth token
	)
	switch *auth {
	case authToken:
		token := e.getenv(*tokenEnv)
		if token == "" {
			return usagef("--auth token: the environment variable %s is empty or unset", *tokenEnv)
		}
		session = sessionValue(token)
		authorize = func(r *http.Request, _ string) bool { return bearer(r, token) || hasSession(r, session) }
	case authNone:
		authorize = func(*http.Request, string) bool { return true }
	case "":
		return usagef("--auth is required: token (a bearer token from $%s) or none (no authorization)", *tokenEnv)
	default:
		return usagef("--auth: %q is not token or none", *auth)
	}

	db, err := c.open(ctx, e)
	if err != nil {
		return err
	}
	defer db.Close()
	logger := slog.New(slog.NewTextHandler(e.stderr, nil))
	h, err := httpapi.New(db, httpapi.Config{Authorize: authorize, EntryTable: c.entryTable, Logger: logger})
	if errors.Is(err, store.ErrInvalidTableName) {
		return usagef("--entry-table: %v", err)
	}
	if err != nil {
		return err
	}
	page, err := web.New(db, web.Config{Authorize: authorize, EntryTable: c.entryTable, Logger: logger, Live: *live})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.Handle("/web/", http.StripPrefix("/web", page))
	mux.Handle("GET /web", http.RedirectHandler("/web/", http.StatusMovedPermanently))
	var handler http.Handler = mux
	if *auth == authToken {
		mux.Handle("POST /web/login", login(session, authorize))
		handler = requireBearer(mux, authorize)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	if *auth == authNone {
		fmt.Fprintf(e.stderr, "WARNING: --auth none: anyone who can reach %s can read the audit log\n", ln.Addr())
	}
	fmt.Fprintf(e.stderr, "serving the audit log on http://%s (auth: %s); web pages on http://%s/web/\n", ln.Addr(), *auth, ln.Addr())

	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	fmt.Fprintln(e.stderr, "stopped")
	return nil
}

// bearer reports whether the request carries the token.
func bearer(r *http.Request, token string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// requireBearer answers 401, with the challenge, a request without the
// token; the handler's own check would answer 403. A web page asked for
// without it gets the sign-in form instead.
func requireBearer(next http.Handler, authorize func(*http.Request, string) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/web/login" && r.Method == http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		if !authorize(r, "") && (r.URL.Path == "/web" || strings.HasPrefix(r.URL.Path, "/web/")) {
			signIn(w, http.StatusUnauthorized, "")
			return
		}
		if !authorize(r, "") {
			w.Header().Set("WWW-Authenticate", `Bearer realm="auditpgx"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintln(w, `{"detail":"a valid bearer token is required"}`)
			return
		}
		next.ServeHTTP(w, r)
	})
}
