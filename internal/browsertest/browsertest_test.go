package browsertest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// serve returns the URL of a server that answers every path with body as
// text/html, with the header Content-Security-Policy: csp when csp is not
// empty, but /favicon.ico, which Chromium asks for, with 204 No Content. The
// server is closed when the test ends.
func serve(t *testing.T, csp, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/favicon.ico" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if csp != "" {
			w.Header().Set("Content-Security-Policy", csp)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// load starts a browser, loads body (served with the CSP header csp) in its
// tab and returns the browser and the server's URL.
func load(t *testing.T, csp, body string) (*Browser, string) {
	t.Helper()
	url := serve(t, csp, body)
	start := time.Now()
	b := New(t)
	t.Logf("New took %v", time.Since(start))
	b.Run(t, chromedp.Navigate(url))
	for _, e := range b.Events() {
		t.Logf("event: %v", e)
	}
	return b, url
}

// fakeTB is a testing.TB that records failures instead of reporting them.
// Its Fatal methods end the calling goroutine, as the real ones do, so the
// code under test must run in a goroutine of its own (see inGoroutine).
// Everything else goes to the real test it embeds.
type fakeTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
	logs   []string
	fatal  bool
}

func (f *fakeTB) Logf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Error(args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprint(args...))
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = true
	f.mu.Unlock()
	f.Errorf(format, args...)
	runtime.Goexit()
}

func (f *fakeTB) Fatal(args ...any) {
	f.mu.Lock()
	f.fatal = true
	f.mu.Unlock()
	f.Error(args...)
	runtime.Goexit()
}

func (f *fakeTB) failures() (msgs []string, fatal bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.errors...), f.fatal
}

// inGoroutine runs fn on a goroutine of its own and waits for it, so that a
// fakeTB's Fatal ends only that goroutine.
func inGoroutine(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

// withoutURL returns the events with their URLs cleared, to compare them with
// literals.
func withoutURL(events []Event) []Event {
	out := make([]Event, len(events))
	for i, e := range events {
		e.URL = ""
		out[i] = e
	}
	return out
}

// count returns how many events have the kind and a text containing text.
func count(events []Event, kind, text string) int {
	n := 0
	for _, e := range events {
		if e.Kind == kind && strings.Contains(e.Text, text) {
			n++
		}
	}
	return n
}

func TestAlertIsRecordedAndDismissed(t *testing.T) {
	b, url := load(t, "", `<!doctype html><title>t</title><script>alert(1)</script><p id="after">after</p>`)
	want := []Event{{Kind: KindDialog, Level: "alert", Text: "1", URL: url + "/"}}
	if events := b.Events(); !slices.Equal(events, want) {
		t.Fatalf("events: got %v, want %v", events, want)
	}
	// The alert was dismissed: the page went on and parsed the rest.
	ctx, cancel := context.WithTimeout(b.Ctx(), 10*time.Second)
	defer cancel()
	if text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#after"))); err != nil || text != "after" {
		t.Errorf("text of #after: got %q, %v; want after", text, err)
	}

	f := &fakeTB{TB: t}
	inGoroutine(func() { b.RequireClean(f) })
	msgs, fatal := f.failures()
	if len(msgs) != 1 || fatal {
		t.Fatalf("RequireClean: got failures %q (fatal %v), want one Errorf", msgs, fatal)
	}
	if !strings.Contains(msgs[0], "dialog alert: 1") {
		t.Errorf("RequireClean's message does not list the dialog:\n%s", msgs[0])
	}
}

func TestConsoleErrorIsRecorded(t *testing.T) {
	b, _ := load(t, "", `<!doctype html><title>t</title><script>console.log("hello", 42); console.error("boom", {a: 1})</script>`)
	events := b.Events()
	want := []Event{
		{Kind: KindConsole, Level: "log", Text: "hello 42"},
		{Kind: KindConsole, Level: "error", Text: "boom Object"},
	}
	if !slices.Equal(withoutURL(events), want) {
		t.Fatalf("events: got %v, want %v", events, want)
	}
	f := &fakeTB{TB: t}
	inGoroutine(func() { b.RequireClean(f) })
	msgs, _ := f.failures()
	if len(msgs) != 1 || !strings.Contains(msgs[0], "console error: boom") || strings.Contains(msgs[0], "hello") {
		t.Errorf("RequireClean: got %q, want one failure listing the console.error only", msgs)
	}
}

func TestExceptionIsRecorded(t *testing.T) {
	b, _ := load(t, "", `<!doctype html><title>t</title><script>throw new TypeError("bad thing")</script>`)
	events := b.Events()
	want := []Event{{Kind: KindException, Level: "error", Text: "Uncaught TypeError: bad thing"}}
	if !slices.Equal(withoutURL(events), want) {
		t.Fatalf("events: got %v, want %v", events, want)
	}
}

func TestCSPViolationIsRecorded(t *testing.T) {
	b, _ := load(t, "script-src 'self'", `<!doctype html><title>t</title><script>alert(1)</script>`)
	events := b.Events()
	if n := count(events, KindDialog, ""); n != 0 {
		t.Errorf("the inline script ran despite the CSP: %d dialog events in %v", n, events)
	}
	// Chromium 148 says "Executing inline script violates the following
	// Content Security Policy directive 'script-src 'self''. ... The action
	// has been blocked."; older versions said "Refused to execute inline
	// script because it violates the following Content Security Policy
	// directive: ...".
	var refused []Event
	for _, e := range events {
		if strings.Contains(e.Text, "inline script") && strings.Contains(e.Text, "Content Security Policy directive") {
			refused = append(refused, e)
		}
	}
	if len(refused) != 1 {
		t.Fatalf("want one event about the refused inline script, got %v", events)
	}
	if e := refused[0]; e.Kind != KindLog || e.Level != "error" || !strings.Contains(e.Text, "script-src 'self'") {
		t.Errorf("the CSP event: got %+v, want a log error naming the directive", e)
	}
	f := &fakeTB{TB: t}
	inGoroutine(func() { b.RequireClean(f) })
	if msgs, _ := f.failures(); len(msgs) != 1 || !strings.Contains(msgs[0], refused[0].Text) {
		t.Errorf("RequireClean: got %q, want one failure listing the CSP violation", msgs)
	}
}

func TestCleanPageRecordsNothing(t *testing.T) {
	b, _ := load(t, "script-src 'self'", `<!doctype html><title>t</title><p>Nothing to see.</p>`)
	if events := b.Events(); len(events) != 0 {
		t.Errorf("want no events, got %v", events)
	}
	b.RequireClean(t)
}

// TestEventsAfterAction checks that events the page reports after the
// actions returned, here from a timer, are found by Events, and that a
// confirm is dismissed: it returns false.
func TestEventsAfterAction(t *testing.T) {
	b, _ := load(t, "", `<!doctype html><title>t</title><button id="b" onclick="setTimeout(() => console.warn('late', confirm('sure?'), prompt('name?')), 0)">go</button>`)
	b.Run(t, chromedp.Click(chromedp.ID("b")))
	deadline := time.Now().Add(10 * time.Second)
	for count(b.Events(), KindConsole, "late") == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	want := []Event{
		{Kind: KindDialog, Level: "confirm", Text: "sure?"},
		{Kind: KindDialog, Level: "prompt", Text: "name?"},
		{Kind: KindConsole, Level: "warning", Text: "late false null"},
	}
	if events := b.Events(); !slices.Equal(withoutURL(events), want) {
		t.Errorf("events: got %v, want %v", events, want)
	}
}

func TestRunFailureNamesURL(t *testing.T) {
	url := serve(t, "", `<!doctype html><title>t</title>`)
	b := New(t)
	b.Run(t, chromedp.Navigate(url))
	f := &fakeTB{TB: t}
	inGoroutine(func() {
		b.Run(f, chromedp.Evaluate[chromedp.Void](`throw new Error("no")`))
	})
	msgs, fatal := f.failures()
	if !fatal || len(msgs) != 1 || !strings.Contains(msgs[0], url) || !strings.Contains(msgs[0], "no") {
		t.Errorf("Run: got %q (fatal %v), want one Fatal naming %s and the error", msgs, fatal, url)
	}
}

func TestLookupEnvMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-chromium")
	t.Setenv(envChromium, missing)
	if _, err := findChromium(); err == nil || !strings.Contains(err.Error(), envChromium+"="+missing) {
		t.Errorf("findChromium: got %v, want an error naming %s=%s", err, envChromium, missing)
	}

	f := &fakeTB{TB: t}
	inGoroutine(func() {
		New(f)
		t.Error("New returned without failing")
	})
	msgs, fatal := f.failures()
	if !fatal || len(msgs) != 1 || !strings.Contains(msgs[0], missing) || !strings.Contains(msgs[0], "not an executable") {
		t.Errorf("New: got %q (fatal %v), want one Fatal naming %s", msgs, fatal, missing)
	}
}

// TestStartFailure checks that New tries three times to start a browser that
// exits at once, and then fails with its output.
func TestStartFailure(t *testing.T) {
	script := filepath.Join(t.TempDir(), "chromium")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho no browser here >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envChromium, script)
	f := &fakeTB{TB: t}
	inGoroutine(func() {
		New(f)
		t.Error("New returned without failing")
	})
	msgs, fatal := f.failures()
	if !fatal || len(msgs) != 1 || !strings.Contains(msgs[0], "attempt 3 of 3") || !strings.Contains(msgs[0], "no browser here") {
		t.Errorf("New: got %q (fatal %v), want one Fatal for attempt 3 with the browser's output", msgs, fatal)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.logs) != 2 || !strings.Contains(f.logs[0], "attempt 1 of 3, trying again") {
		t.Errorf("New logged %q, want the first two attempts", f.logs)
	}
}

func TestLookupEnvNotExecutable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "chromium")
	if err := os.WriteFile(file, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envChromium, file)
	if _, err := findChromium(); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("findChromium: got %v, want an error naming %s", err, file)
	}
}

func TestLookupPath(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(envChromium, "")
	t.Setenv("PATH", dir)
	_, err := findChromium()
	if err == nil {
		t.Fatal("findChromium found a browser on an empty PATH")
	}
	for _, want := range append(executables, envChromium, "apt-get install chromium") {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %q: %v", want, err)
		}
	}

	// The names are tried in order.
	for _, name := range []string{"google-chrome", "chromium-browser"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got, err := findChromium()
	if want := filepath.Join(dir, "chromium-browser"); got != want || err != nil {
		t.Errorf("findChromium: got %q, %v; want %q", got, err, want)
	}
}
