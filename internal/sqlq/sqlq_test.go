package sqlq

import (
	"strings"
	"testing"
)

func TestIdent(t *testing.T) {
	for in, want := range map[string]string{
		"users":   `"users"`,
		"Users":   `"Users"`,
		`a"b`:     `"a""b"`,
		"x; drop": `"x; drop"`,
		"ünïcode": `"ünïcode"`,
	} {
		if got := Ident(in); got != want {
			t.Errorf("Ident(%q) = %s, want %s", in, got, want)
		}
	}
	if got := QualifiedIdent("app", "t"); got != `"app"."t"` {
		t.Errorf("QualifiedIdent = %s", got)
	}
	if got := QualifiedIdent("", "t"); got != `"t"` {
		t.Errorf("QualifiedIdent without schema = %s", got)
	}
}

func TestLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"alice":      `'alice'`,
		"o'brien":    `'o''brien'`,
		`back\slash`: `E'back\\slash'`,
		`'\`:         `E'''\\'`,
	} {
		if got := Literal(in); got != want {
			t.Errorf("Literal(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestParseName(t *testing.T) {
	for in, want := range map[string]Name{
		"users":             {Rel: "users"},
		"Users":             {Rel: "users"},
		`"Users"`:           {Rel: "Users"},
		"App.Projects":      {Schema: "app", Rel: "projects"},
		`"audit.log"`:       {Rel: "audit.log"},
		`"Audit"."Entries"`: {Schema: "Audit", Rel: "Entries"},
		` app . t `:         {Schema: "app", Rel: "t"},
		`"a""b".c`:          {Schema: `a"b`, Rel: "c"},
		"ÄBC":               {Rel: "Äbc"},
		"t$1":               {Rel: "t$1"},
	} {
		got, err := ParseName(in)
		if err != nil || got != want {
			t.Errorf("ParseName(%q) = %+v, %v; want %+v", in, got, err, want)
			continue
		}
		// Rendering and reading back gives the same name.
		if back, err := ParseName(got.Quoted()); err != nil || back != got {
			t.Errorf("ParseName(%s) = %+v, %v; want %+v", got.Quoted(), back, err, got)
		}
	}
	for in, want := range map[string]string{
		"":                                  "empty",
		".":                                 "empty part",
		"a.":                                "empty part",
		".a":                                "empty part",
		"a.b.c":                             "has 3 dot-separated parts",
		`"a`:                                "unterminated quote",
		`""`:                                "empty quoted part",
		"a b":                               `part "a b" is not an identifier`,
		"1t":                                "not an identifier",
		`a"b"`:                              "not an identifier",
		`"a"b`:                              "after a part",
		"a\x00b":                            "NUL",
		"bad\xffutf8":                       "UTF-8",
		strings.Repeat("x", 64):             "exceeds PostgreSQL's limit of 63",
		`"` + strings.Repeat("x", 64) + `"`: "exceeds",
	} {
		_, err := ParseName(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseName(%q) error = %v, want one containing %q", in, err, want)
		}
	}
}
