package sqlq

import "testing"

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
