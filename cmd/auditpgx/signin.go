package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
)

// sessionCookie holds a browser's proof that it signed in with the token.
const sessionCookie = "auditpgx_session"

// sessionValue is what the session cookie holds for token: a MAC of a
// fixed text under the token, so that the cookie is not the token itself
// and changing the token ends every session.
func sessionValue(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("auditpgx web session v1"))
	return hex.EncodeToString(m.Sum(nil))
}

func hasSession(r *http.Request, session string) bool {
	c, err := r.Cookie(sessionCookie)
	return err == nil && subtle.ConstantTimeCompare([]byte(c.Value), []byte(session)) == 1
}

// login answers the sign-in form: with the token, it sets the session
// cookie and sends the browser to the stream; without it, the form again.
func login(session string, authorize func(*http.Request, string) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		if err := r.ParseForm(); err != nil {
			signIn(w, http.StatusBadRequest, "The form could not be read.")
			return
		}
		probe := r.Clone(r.Context())
		probe.Header = http.Header{"Authorization": {"Bearer " + r.PostForm.Get("token")}}
		if !authorize(probe, "") {
			signIn(w, http.StatusUnauthorized, "That is not the token.")
			return
		}
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: session, Path: "/", HttpOnly: true,
			SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
		http.Redirect(w, r, "/web/", http.StatusSeeOther)
	})
}

var signInPage = template.Must(template.New("signin").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Sign in · auditpgx</title></head>
<body>
<main>
<h1>auditpgx: sign in</h1>
{{if .}}<p role="alert">{{.}}</p>{{end}}
<form method="post" action="/web/login">
<label for="token">Token</label> <input id="token" name="token" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
`))

// signIn writes the sign-in form, with a message when there is one.
func signIn(w http.ResponseWriter, status int, message string) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := signInPage.Execute(w, message); err != nil {
		fmt.Fprintln(w, "internal server error")
	}
}
