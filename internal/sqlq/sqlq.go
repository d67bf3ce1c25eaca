// Package sqlq quotes identifiers and literals for SQL that auditpgx generates.
//
// Every name and constant that auditpgx writes into SQL text goes through
// these functions; values supplied by the application travel as parameters.
package sqlq

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Ident quotes a single identifier: "Users" stays "Users", a"b becomes "a""b".
func Ident(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// QualifiedIdent quotes a possibly schema-qualified name given as separate parts.
func QualifiedIdent(schema, name string) string {
	if schema == "" {
		return Ident(name)
	}
	return Ident(schema) + "." + Ident(name)
}

// Literal quotes s as a string constant that means the same whatever the
// session's standard_conforming_strings setting: a string containing a
// backslash is written in the E” form with the backslash doubled.
func Literal(s string) string {
	s = strings.ReplaceAll(s, `'`, `''`)
	if strings.Contains(s, `\`) {
		return `E'` + strings.ReplaceAll(s, `\`, `\\`) + `'`
	}
	return `'` + s + `'`
}

// Name is a relation name, possibly schema-qualified, as SQL reads it: the
// one form in which auditpgx holds the name of a registered table or of
// the entry table, whoever wrote it (the driver, store, the CLI).
type Name struct {
	Schema string // "" when unqualified
	Rel    string
}

// MaxIdentLen is PostgreSQL's identifier limit (NAMEDATALEN-1) in bytes;
// the server silently truncates a longer name.
const MaxIdentLen = 63

// ParseName reads "users", "app.projects", `"Users"` or `"audit.log"` the
// way PostgreSQL reads a table name in SQL: unquoted parts have their ASCII
// letters lower-cased, quoted parts are taken as written ("" for a quote).
// The error gives the reason only; callers name the setting it came from.
func ParseName(s string) (Name, error) {
	switch {
	case strings.TrimSpace(s) == "":
		return Name{}, errors.New("empty")
	case !utf8.ValidString(s):
		return Name{}, errors.New("not valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		return Name{}, errors.New("contains a NUL byte")
	}
	var parts []string
	rest := strings.TrimSpace(s)
	for {
		var part string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest); i++ {
				if rest[i] == '"' {
					if i+1 < len(rest) && rest[i+1] == '"' {
						b.WriteByte('"')
						i++
						continue
					}
					break
				}
				b.WriteByte(rest[i])
			}
			if i >= len(rest) {
				return Name{}, errors.New("has an unterminated quote")
			}
			part, rest = b.String(), strings.TrimLeft(rest[i+1:], " ")
			if part == "" {
				return Name{}, errors.New("has an empty quoted part")
			}
		} else {
			end := strings.IndexByte(rest, '.')
			if end < 0 {
				end = len(rest)
			}
			part, rest = strings.TrimSpace(rest[:end]), rest[end:]
			if part == "" {
				return Name{}, errors.New("has an empty part")
			}
			if !plainIdent(part) {
				return Name{}, fmt.Errorf("part %q is not an identifier unquoted (quote it as in SQL)", part)
			}
			part = foldASCII(part)
		}
		if len(part) > MaxIdentLen {
			return Name{}, fmt.Errorf("part of %d bytes exceeds PostgreSQL's limit of %d", len(part), MaxIdentLen)
		}
		parts = append(parts, part)
		if rest == "" {
			break
		}
		if rest[0] != '.' {
			return Name{}, fmt.Errorf("has %q after a part, not a dot", rest)
		}
		rest = strings.TrimLeft(rest[1:], " ")
		if rest == "" {
			return Name{}, errors.New("has an empty part")
		}
	}
	switch len(parts) {
	case 1:
		return Name{Rel: parts[0]}, nil
	case 2:
		return Name{Schema: parts[0], Rel: parts[1]}, nil
	}
	return Name{}, fmt.Errorf("has %d dot-separated parts, want at most 2 (schema.table)", len(parts))
}

// plainIdent reports whether s may stand unquoted as an identifier: a
// letter, underscore or non-ASCII character, then those, digits or $.
func plainIdent(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x80, c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '$'):
		default:
			return false
		}
	}
	return true
}

// foldASCII lower-cases ASCII letters only, as the server folds unquoted
// identifiers in a multibyte encoding.
func foldASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// Quoted renders the name for SQL: "app"."projects", or "users".
func (n Name) Quoted() string { return QualifiedIdent(n.Schema, n.Rel) }

// String renders the name for messages and for entries' table_name:
// schema.rel, unquoted.
func (n Name) String() string {
	if n.Schema == "" {
		return n.Rel
	}
	return n.Schema + "." + n.Rel
}
