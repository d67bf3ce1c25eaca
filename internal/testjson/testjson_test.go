package testjson_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditpgx/auditpgx/internal/testjson"
)

const stream = `{"Time":"2025-01-01T00:00:00Z","Action":"start","Package":"p"}
{"Time":"2025-01-01T00:00:01Z","Action":"run","Package":"p","Test":"TestA"}
{"Time":"2025-01-01T00:00:01Z","Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Time":"2025-01-01T00:00:02Z","Action":"run","Package":"p","Test":"TestA/sub"}
{"Time":"2025-01-01T00:00:02Z","Action":"output","Package":"p","Test":"TestA/sub","Output":"    a_test.go:9: \n"}
{"Time":"2025-01-01T00:00:02Z","Action":"output","Package":"p","Test":"TestA/sub","Output":"        \tError Trace:\ta_test.go:9\n"}
{"Time":"2025-01-01T00:00:02Z","Action":"output","Package":"p","Test":"TestA/sub","Output":"        \tError:      \tbroken   in\ttwo\n"}
{"Time":"2025-01-01T00:00:02Z","Action":"output","Package":"p","Test":"TestA/sub","Output":"        \tTest:       \tTestA/sub\n"}
{"Time":"2025-01-01T00:00:03Z","Action":"fail","Package":"p","Test":"TestA/sub","Elapsed":1.5}
{"Time":"2025-01-01T00:00:03Z","Action":"run","Package":"p","Test":"TestA/ok"}
{"Time":"2025-01-01T00:00:04Z","Action":"pass","Package":"p","Test":"TestA/ok","Elapsed":0}
{"Time":"2025-01-01T00:00:04Z","Action":"fail","Package":"p","Test":"TestA","Elapsed":3}
not an event
{"Time":"2025-01-01T00:00:05Z","Action":"run","Package":"p","Test":"TestB"}
{"Time":"2025-01-01T00:00:05Z","Action":"skip","Package":"p","Test":"TestB","Elapsed":0}
{"Time":"2025-01-01T00:00:06Z","Action":"run","Package":"p","Test":"TestC"}
{"Time":"2025-01-01T00:00:06Z","Action":"output","Package":"p","Output":"FAIL\n"}
{"Time":"2025-01-01T00:00:07Z","Action":"fail","Package":"p","Elapsed":7}
`

func TestParse(t *testing.T) {
	run, err := testjson.Parse(strings.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"TestA", "TestA/sub", "TestA/ok", "TestB", "TestC"}; !slices.Equal(run.Order, want) {
		t.Errorf("Order %v, want %v", run.Order, want)
	}
	if run.Package != "fail" || !slices.Equal(run.Output, []string{"not an event", "FAIL"}) {
		t.Errorf("Package %q, Output %q", run.Package, run.Output)
	}
	sub := run.Tests["TestA/sub"]
	if sub.Status != "fail" || sub.Elapsed != 1500*time.Millisecond || sub.TopLevel() ||
		!sub.Start.Equal(time.Date(2025, 1, 1, 0, 0, 2, 0, time.UTC)) || !sub.End.Equal(sub.Start.Add(time.Second)) {
		t.Errorf("TestA/sub: %+v", sub)
	}
	if got, want := sub.Summary(100), "a_test.go:9: | Error: broken in two"; got != want {
		t.Errorf("Summary %q, want %q", got, want)
	}
	if got := sub.Summary(5); got != "a_tes…" {
		t.Errorf("Summary(5) %q", got)
	}
	// TestC never finished: it counts as failed, and is where a failure is.
	if p, f, s := run.Counts(true); p != 0 || f != 2 || s != 1 {
		t.Errorf("top-level counts %d %d %d", p, f, s)
	}
	if p, f, s := run.Counts(false); p != 1 || f != 1 || s != 0 {
		t.Errorf("subtest counts %d %d %d", p, f, s)
	}
	var failures []string
	for _, ft := range run.Failures() {
		failures = append(failures, ft.Name)
	}
	if want := []string{"TestA/sub", "TestC"}; !slices.Equal(failures, want) {
		t.Errorf("Failures %v, want %v", failures, want)
	}
	for sec, want := range map[int]string{0: "", 1: "TestA", 2: "TestA/sub", 4: "TestA/ok", 5: "TestB", 9: "TestC"} {
		if got := run.At(time.Date(2025, 1, 1, 0, 0, sec, 0, time.UTC)); got != want {
			t.Errorf("At(%ds) = %q, want %q", sec, got, want)
		}
	}
}

func TestExec(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a test executable")
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module x\n\ngo 1.22\n",
		"x_test.go": `package x

import ("fmt"; "os"; "testing")

func TestPass(t *testing.T) { fmt.Println("hello"); fmt.Fprintln(os.Stderr, "to stderr") }
func TestFail(t *testing.T) { t.Run("sub", func(t *testing.T) { t.Error("wrong") }) }
func TestOther(t *testing.T) { t.Skip("not this one") }
`,
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "x.test")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Dir, build.Env = dir, append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	run, err := testjson.Exec(context.Background(), dir, bin, nil, time.Minute, "-test.run=^Test(Pass|Fail)$")
	if err != nil {
		t.Fatal(err)
	}
	if run.Err == nil || run.Package != "fail" || run.Duration <= 0 {
		t.Errorf("Err %v, Package %q, Duration %v", run.Err, run.Package, run.Duration)
	}
	if want := []string{"TestPass", "TestFail", "TestFail/sub"}; !slices.Equal(run.Order, want) {
		t.Errorf("Order %v, want %v", run.Order, want)
	}
	if out := run.Tests["TestPass"].Output; !slices.Contains(out, "hello") || !slices.Contains(out, "to stderr") {
		t.Errorf("TestPass's output %q", out)
	}
	if f := run.Failures(); len(f) != 1 || f[0].Name != "TestFail/sub" || !strings.Contains(f[0].Summary(100), "wrong") {
		t.Errorf("Failures %v", f)
	}
}
