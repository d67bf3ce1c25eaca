package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/auditpgx/auditpgx/internal/pgtest"
)

func TestMain(m *testing.M) {
	if err := register(); err != nil {
		panic(err)
	}
	os.Exit(pgtest.Main(m))
}

func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if err := demo(context.Background(), &out, pgtest.NewDatabase(t)); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	t.Log("\n" + text)

	// Rows with their padding collapsed, so the checks do not depend on
	// column widths.
	var rows []string
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.Trim(f[0], "0123456789") == "" {
			rows = append(rows, strings.Join(f, " "))
		}
	}
	count := func(substr string) int {
		n := 0
		for _, r := range rows {
			if strings.Contains(r, substr) {
				n++
			}
		}
		return n
	}
	for _, c := range []struct {
		substr string
		want   int
	}{
		{" create users ", 3},
		{" create projects ", 4},
		{`bob update users 1 name: "Al" → "Alan" password_hash: "$encrypted$" → "$encrypted$"`, 1},
		{" bob ", 1}, // the UPDATE of last_login alone wrote nothing
		{`carol update projects`, 3},
		{`status: "active" → "archived"`, 3},
		{`carol delete users 3 -email="cy@example.com" -id=3 -name="Cy" -password_hash="$encrypted$"`, 1},
		{"mallory", 0},
	} {
		if got := count(c.substr); got != c.want {
			t.Errorf("%d rows contain %q, want %d", got, c.substr, c.want)
		}
	}
	if len(rows) != 12 {
		t.Errorf("%d entry rows, want 12", len(rows))
	}
	for _, never := range []string{"last_login", "bcrypt:"} {
		if strings.Contains(text, never) {
			t.Errorf("output contains %q, which is excluded or redacted", never)
		}
	}
	if want := "mallory's transaction held 2 entries before ROLLBACK; 0 remain"; !strings.Contains(text, want) {
		t.Errorf("output lacks %q", want)
	}
}
