// Package browsertest drives a real headless Chromium from Go tests, with
// github.com/chromedp/chromedp, and records what the page reports: dialogs,
// console messages, uncaught exceptions and the browser's log (where Content
// Security Policy violations appear).
//
// A test starts a browser, loads a page, acts on it and then asks that the
// page reported nothing bad:
//
//	func TestPage(t *testing.T) {
//		srv := httptest.NewServer(handler)
//		defer srv.Close()
//		b := browsertest.New(t)
//		b.Run(t, chromedp.Navigate(srv.URL), chromedp.Click(chromedp.CSS("#go")))
//		b.RequireClean(t)
//	}
//
// The browser is the executable named by $AUDITPGX_CHROMIUM, else the first
// of chromium, chromium-browser, google-chrome, google-chrome-stable and
// headless-shell on PATH. When there is none the test fails; browsertest never
// skips a test.
//
// Two things about what the browser reports:
//
//   - A Content Security Policy violation is a log entry of level error,
//     and its wording depends on the Chromium version: Chromium 148 writes
//     "Executing inline script violates the following Content Security
//     Policy directive 'script-src ...'. ... The action has been
//     blocked." (and "Applying inline style violates ..."), where older
//     versions wrote "Refused to execute inline script because it violates
//     the following Content Security Policy directive: ...". Match on
//     "Content Security Policy directive" rather than on "Refused to".
//   - Chromium asks for /favicon.ico after the page has loaded, unless the
//     page links an icon. If the server answers 404, a log error "Failed to
//     load resource: the server responded with a status of 404 (Not Found)"
//     for that URL follows, a moment after the navigation returns, so that
//     RequireClean fails or not depending on timing. A test server should
//     answer /favicon.ico, with 204 No Content if nothing else.
package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// envChromium names the environment variable that points at the browser's
// executable, bypassing the search of PATH.
const envChromium = "AUDITPGX_CHROMIUM"

// executables are the names looked up on PATH, in order, when envChromium is
// unset.
var executables = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"}

const (
	// startTimeout bounds each attempt of New to start the browser and open
	// its first tab, and startAttempts is the number of attempts.
	startTimeout  = 30 * time.Second
	startAttempts = 3
	// runTimeout bounds each call of Run.
	runTimeout = 30 * time.Second
	// closeTimeout bounds the graceful close of the browser at cleanup, after
	// which it is killed.
	closeTimeout = 10 * time.Second
	// syncTimeout bounds the round trip to the page with which Events and
	// RequireClean wait for what the page reported before them.
	syncTimeout = 5 * time.Second
	// urlTimeout bounds Run's look-up of the tab's URL for its failure message.
	urlTimeout = 5 * time.Second
)

// Event kinds.
const (
	KindDialog    = "dialog"    // alert, confirm, prompt or beforeunload
	KindConsole   = "console"   // a call of the console API
	KindException = "exception" // an uncaught exception or unhandled rejection
	KindLog       = "log"       // an entry of the browser's log
)

// Event is one thing the page reported.
type Event struct {
	// Kind is KindDialog, KindConsole, KindException or KindLog.
	Kind string
	// Level is, for a dialog, its type: alert, confirm, prompt or
	// beforeunload. For a console call it is the console method as the
	// protocol names it: log, debug, info, warning (console.warn), error,
	// assert (a failed console.assert), trace, dir, table and so on. An
	// exception's level is error. A log entry's is verbose, info, warning or
	// error.
	Level string
	// Text is the dialog's message; the console call's arguments, each
	// string as it is and any other value as DevTools describes it, joined by
	// spaces (format directives such as %s are not applied); the exception's
	// "Uncaught ..." line; or the log entry's text, such as "Executing inline
	// script violates the following Content Security Policy directive ...".
	Text string
	// URL is where the event comes from, when the browser says: the frame
	// that opened a dialog, the script of a console call or exception, the
	// resource of a log entry (such as the one a 404 was for). It can be
	// empty.
	URL string
}

// String returns the event as "kind level: text", followed by " (URL)" when
// the URL is known.
func (e Event) String() string {
	s := e.Kind + " " + e.Level + ": " + e.Text
	if e.URL != "" {
		s += " (" + e.URL + ")"
	}
	return s
}

// bad reports whether RequireClean rejects the event: every dialog and
// exception, and console calls and log entries at level warning or error (a
// failed console.assert counts as an error, as DevTools shows it).
func (e Event) bad() bool {
	switch e.Kind {
	case KindDialog, KindException:
		return true
	}
	switch e.Level {
	case "error", "warning", "assert":
		return true
	}
	return false
}

// Browser is a headless Chromium started by New, with one tab.
type Browser struct {
	ctx   context.Context // the tab's chromedp context
	close func() error    // closes the browser and waits until it is gone

	mu     sync.Mutex
	events []Event
	closed bool // set by the cleanup, after which no dialog is dismissed

	dialogs sync.WaitGroup // the goroutines that dismiss dialogs
}

// New starts a headless Chromium for the test and returns its first tab,
// showing about:blank, in a window of 1280x900 (whose viewport, innerWidth x
// innerHeight, is 1280x761 in Chromium 148; use chromedp.EmulateViewport for
// an exact one). From the start, the tab records what the page reports
// (see Events) and dismisses every JavaScript dialog, so that an alert never
// blocks the page or an action.
//
// A browser that crashes or hangs while it starts (Chromium in a container
// without D-Bus does, now and then, on a loaded machine) is started again, up
// to three times in all; each failed attempt is logged with t.Logf.
//
// It fails the test (t.Fatal, never Skip) when no Chromium can be found,
// naming what it looked for and how to install one (Debian: apt-get install
// chromium; or set AUDITPGX_CHROMIUM to the browser's path), or when no
// attempt started the browser within 30 seconds, with chromedp's error, which
// holds the browser's output. The browser is closed by t.Cleanup: gracefully
// if it answers within 10 seconds, else it is killed; its temporary profile
// directory is removed.
func New(t testing.TB) *Browser {
	t.Helper()
	path, err := findChromium()
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		b, err := start(path)
		if err == nil {
			t.Cleanup(func() {
				if err := b.close(); err != nil {
					t.Logf("browsertest: closing %s: %v", path, err)
				}
			})
			return b
		}
		if attempt == startAttempts {
			t.Fatalf("browsertest: starting %s (attempt %d of %d): %v", path, attempt, startAttempts, err)
		}
		t.Logf("browsertest: starting %s (attempt %d of %d, trying again): %v", path, attempt, startAttempts, err)
	}
}

// start starts the browser at path and opens its first tab. On an error,
// nothing of the attempt is left running.
func start(path string) (*Browser, error) {
	b := &Browser{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // we may run as root, where the sandbox cannot start
		chromedp.WindowSize(1280, 900),
		chromedp.DisableGPU,
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	// WithListener sees the tab's events from its first message on, in the
	// order in which they arrive.
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(b.listen))
	b.ctx = ctx
	b.close = func() error {
		// Close the browser gracefully, then make sure it is gone: cancel
		// kills it if it is still there, and cancelAlloc waits until the
		// process has exited and its profile directory is removed.
		cctx, ccancel := context.WithTimeout(ctx, closeTimeout)
		err := chromedp.Cancel(cctx)
		ccancel()
		cancel()
		cancelAlloc()
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		b.dialogs.Wait()
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil // killed, as planned when the close takes too long
		}
		return err
	}

	// The first Do starts the browser and binds its life to ctx, so ctx
	// must not carry a timeout; a timer cancels it instead if the start hangs.
	timer := time.AfterFunc(startTimeout, cancel)
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
		// chromedp enables both domains when it attaches the tab; they
		// are enabled again here so that what is recorded does not
		// depend on that. Log.enable also replays the entries so far.
		if _, err := cdp.Call(ctx, tab, runtime.Enable, cdp.Empty{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tab, log.Enable, cdp.Empty{})
		return err
	}))
	if !timer.Stop() {
		// The timer canceled ctx, which kills the browser even if Do
		// returned just before.
		err = errors.Join(fmt.Errorf("not started within %v", startTimeout), err)
	}
	if err != nil {
		cancel()
		cancelAlloc()
		return nil, err
	}
	return b, nil
}

// findChromium returns the browser's executable: $AUDITPGX_CHROMIUM if set,
// else the first of executables on PATH.
func findChromium() (string, error) {
	if p := os.Getenv(envChromium); p != "" {
		found, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("browsertest: %s=%s is not an executable: %w; "+
				"set it to the path of Chromium or Chrome, or unset it to look for %s on PATH",
				envChromium, p, err, strings.Join(executables, ", "))
		}
		return found, nil
	}
	for _, name := range executables {
		if found, err := exec.LookPath(name); err == nil {
			return found, nil
		}
	}
	return "", fmt.Errorf("browsertest: no Chromium found: %s is unset and none of %s is on PATH; "+
		"install one (Debian: apt-get install chromium) or set %s to the browser's path",
		envChromium, strings.Join(executables, ", "), envChromium)
}

// Ctx is the tab's chromedp context, for chromedp.Run, chromedp.Do,
// chromedp.Call and chromedp.Events in the caller, with any action. It has no
// deadline; it is canceled when the test's cleanup closes the browser.
func (b *Browser) Ctx() context.Context {
	return b.ctx
}

// Run runs actions in the tab, in order, stopping at the first error, with a
// timeout of 30 seconds for the whole call. On an error or the timeout it
// fails t (t.Fatalf) with the error and the tab's current URL. The tab and the
// browser stay usable after a timeout.
func (b *Browser) Run(t testing.TB, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, runTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			err = fmt.Errorf("not done within %v: %w", runTimeout, err)
		}
		t.Fatalf("browsertest: running actions at %s: %v", b.url(), err)
	}
}

// url returns the tab's current URL, asking the browser rather than the page
// so that a page that hangs cannot stop it, or a description of why it is not
// known.
func (b *Browser) url() string {
	c := chromedp.FromContext(b.ctx)
	if c == nil || c.Target == nil {
		return "(no tab)"
	}
	ctx, cancel := context.WithTimeout(b.ctx, urlTimeout)
	defer cancel()
	res, err := chromedp.CallBrowser(ctx, target.GetTargetInfo, target.GetTargetInfoParams{TargetID: c.Target.TargetID})
	if err != nil || res.TargetInfo == nil {
		return fmt.Sprintf("(URL unknown: %v)", err)
	}
	return res.TargetInfo.URL
}

// Events returns what the page reported so far, in the order it arrived:
// JavaScript dialogs (alert, confirm, prompt, beforeunload; each is dismissed
// as it opens, so that the page never blocks: confirm returns false and
// prompt null, while beforeunload is accepted so that navigation goes on),
// console API calls of every level, uncaught exceptions (and unhandled
// promise rejections), and the browser's log entries (Log.entryAdded). Content
// Security Policy violations are log entries of level error whose text names
// the "Content Security Policy directive" (see the package documentation for
// their wording); so are network failures such as a 404 for a sub-resource
// ("Failed to load resource: ...", with the resource in URL).
//
// Before it reads them, Events makes a round trip to the page (up to 5
// seconds, errors ignored), so that everything the page reported before the
// call is included. The slice is a copy; the caller may keep and change it.
func (b *Browser) Events() []Event {
	b.sync()
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Event(nil), b.events...)
}

// RequireClean fails t (t.Errorf; the test goes on) listing every event, as
// Events returns them, that is a dialog, an exception, or a console call or
// log entry at level error or warning (a failed console.assert counts as an
// error). Console calls and log entries of other levels (log, info, debug,
// verbose) are allowed.
func (b *Browser) RequireClean(t testing.TB) {
	t.Helper()
	var bad []string
	for _, e := range b.Events() {
		if e.bad() {
			bad = append(bad, "\n\t"+e.String())
		}
	}
	if len(bad) > 0 {
		t.Errorf("browsertest: the page reported %d problem(s):%s", len(bad), strings.Join(bad, ""))
	}
}

// sync makes a round trip to the page's renderer. The protocol delivers a
// session's messages in order, and the listener runs before the reply is
// read, so every event the page sent before the reply has been recorded when
// sync returns.
func (b *Browser) sync() {
	ctx, cancel := context.WithTimeout(b.ctx, syncTimeout)
	defer cancel()
	// Errors (a page navigating away, a closed browser) are ignored: the
	// events are then as complete as can be.
	_, _ = chromedp.Call(ctx, runtime.Evaluate, runtime.EvaluateParams{Expression: "0"})
}

// listen records an event of the tab and dismisses dialogs. chromedp calls
// it on the goroutine that reads the tab's messages, so it must not wait for
// the browser: it leaves the command that dismisses a dialog to a goroutine.
func (b *Browser) listen(ev any) {
	var e Event
	switch ev := ev.(type) {
	case *page.EventJavascriptDialogOpening:
		e = Event{Kind: KindDialog, Level: string(ev.Type), Text: ev.Message, URL: ev.URL}
		b.dismiss(ev.Type)
	case *runtime.EventConsoleAPICalled:
		e = Event{Kind: KindConsole, Level: string(ev.Type), Text: argsText(ev.Args), URL: stackURL(ev.StackTrace)}
	case *runtime.EventExceptionThrown:
		e = Event{Kind: KindException, Level: "error"}
		if d := ev.ExceptionDetails; d != nil {
			e.Text = exceptionText(d)
			e.URL = d.URL
			if e.URL == "" {
				e.URL = stackURL(d.StackTrace)
			}
		}
	case *log.EventEntryAdded:
		if ev.Entry == nil {
			return
		}
		e = Event{Kind: KindLog, Level: string(ev.Entry.Level), Text: ev.Entry.Text, URL: ev.Entry.URL}
		if e.URL == "" {
			e.URL = stackURL(ev.Entry.StackTrace)
		}
	default:
		return
	}
	b.mu.Lock()
	b.events = append(b.events, e)
	b.mu.Unlock()
}

// dismiss closes the dialog that is opening, from a goroutine: the command
// cannot be sent from the listener, which must return before the reply can be
// read. Confirm and prompt are dismissed (they return false and null), and
// beforeunload is accepted, so that the navigation goes on.
func (b *Browser) dismiss(typ page.DialogType) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.dialogs.Add(1)
	go func() {
		defer b.dialogs.Done()
		params := page.HandleJavaScriptDialogParams{Accept: typ == page.DialogTypeBeforeunload}
		// The error is ignored: it means that the dialog is gone already,
		// or the browser is.
		_, _ = chromedp.Call(b.ctx, page.HandleJavaScriptDialog, params)
	}()
}

// argsText renders the arguments of a console call.
func argsText(args []*runtime.RemoteObject) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = valueText(a)
	}
	return strings.Join(parts, " ")
}

// valueText renders one value: a string as it is, a primitive as its value
// and an object as its description (e.g. "Error: boom\n    at ...", "Object",
// "Array(3)").
func valueText(o *runtime.RemoteObject) string {
	switch {
	case o == nil:
		return "null"
	case o.Type == runtime.RemoteObjectTypeString:
		var s string
		if json.Unmarshal(o.Value, &s) == nil {
			return s
		}
	case o.Type == runtime.RemoteObjectTypeUndefined:
		return "undefined"
	case o.Subtype == runtime.RemoteObjectSubtypeNull:
		return "null"
	}
	switch {
	case o.UnserializableValue != "":
		return string(o.UnserializableValue)
	case o.Description != "":
		return o.Description
	case len(o.Value) > 0:
		return string(o.Value)
	}
	return string(o.Type)
}

// stackURL returns the script of the innermost frame of st, or "".
func stackURL(st *runtime.StackTrace) string {
	if st == nil || len(st.CallFrames) == 0 {
		return ""
	}
	return st.CallFrames[0].URL
}

// exceptionText renders an uncaught exception as DevTools' first line of it:
// "Uncaught Error: boom", "Uncaught (in promise) TypeError: ...".
func exceptionText(d *runtime.ExceptionDetails) string {
	text := d.Text
	if d.Exception != nil {
		desc, _, _ := strings.Cut(valueText(d.Exception), "\n")
		text = strings.TrimSpace(text + " " + desc)
	}
	return text
}
