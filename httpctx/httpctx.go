// Package httpctx is net/http middleware that puts who, from where and
// which request into the context of every request, where auditpgx records
// it in each entry the request's writes make: the actor (created_by), and
// in the entry context a request id, the client's address, the method and
// the route.
//
//	mux := http.NewServeMux()
//	mw := httpctx.Middleware(httpctx.Config{Actor: sessionUser})
//	mux.Handle("PATCH /accounts/{id}", mw(http.HandlerFunc(updateAccount)))
//
// A handler runs its statements with r.Context(), as it would for
// cancellation; nothing else changes.
package httpctx

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"strings"

	"github.com/auditpgx/auditpgx"
)

// Keys of the entry context the middleware sets.
const (
	RequestID  = "request_id"
	RemoteAddr = "remote_addr"
	Method     = "method"
	Route      = "route"
)

// DefaultRequestIDHeader is the header a request id is read from, and
// written back to the response in, unless Config says otherwise.
const DefaultRequestIDHeader = "X-Request-Id"

// maxRequestIDBytes bounds a request id taken from a request header.
const maxRequestIDBytes = 128

// Config configures Middleware. The zero value is usable: a request id from
// X-Request-Id or generated, the address of the connection's peer, the
// method and the ServeMux pattern, and no actor.
type Config struct {
	// RequestIDHeader is the header that carries a request id from the
	// client or a proxy; "" means DefaultRequestIDHeader. A value that is
	// empty, longer than 128 bytes or not printable ASCII is replaced by a
	// generated one. The id is also set on the response.
	RequestIDHeader string
	// TrustedProxyHeader names the header a proxy in front of the
	// application sets to the client's address, e.g. "X-Forwarded-For" or
	// "X-Real-Ip". Only this header is honoured, and only its last
	// comma-separated value, which is the address the trusted proxy saw;
	// without it the remote address is the connection's peer. Set it only
	// when every request comes through such a proxy: a client can send
	// any header.
	TrustedProxyHeader string
	// Actor returns the acting user of a request (its session's user),
	// recorded as created_by; ok false records none.
	Actor func(r *http.Request) (actor string, ok bool)
	// Route returns the route of a request; nil means r.Pattern, the
	// pattern of the ServeMux route that matched (set when the middleware
	// wraps a handler registered on a ServeMux, empty when it wraps the
	// mux itself). An empty route is not recorded.
	Route func(r *http.Request) string
}

// Middleware returns the middleware Config describes.
func Middleware(cfg Config) func(http.Handler) http.Handler {
	header := cfg.RequestIDHeader
	if header == "" {
		header = DefaultRequestIDHeader
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			id := r.Header.Get(header)
			if !validRequestID(id) {
				id = newRequestID()
			}
			w.Header().Set(header, id)
			ctx = auditpgx.WithContext(ctx, RequestID, id)
			if addr := remoteAddr(r, cfg.TrustedProxyHeader); addr != "" {
				ctx = auditpgx.WithContext(ctx, RemoteAddr, addr)
			}
			ctx = auditpgx.WithContext(ctx, Method, r.Method)
			route := r.Pattern
			if cfg.Route != nil {
				route = cfg.Route(r)
			}
			if route != "" {
				ctx = auditpgx.WithContext(ctx, Route, route)
			}
			if cfg.Actor != nil {
				if actor, ok := cfg.Actor(r); ok {
					ctx = auditpgx.WithActor(ctx, actor)
				}
			}
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// validRequestID reports whether a request id from a header may be kept.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// newRequestID returns 16 random bytes in hex.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail
	return hex.EncodeToString(b[:])
}

// remoteAddr is the client's address: the last value of the trusted proxy
// header when configured and present, else the connection's peer, without
// its port.
func remoteAddr(r *http.Request, trusted string) string {
	if trusted != "" {
		if v := r.Header.Values(trusted); len(v) > 0 {
			last := v[len(v)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if ip := net.ParseIP(strings.TrimSpace(last)); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
