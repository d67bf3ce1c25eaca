// Package sqlq quotes identifiers and literals for SQL that auditpgx generates.
//
// Every name and constant that auditpgx writes into SQL text goes through
// these functions; values supplied by the application travel as parameters.
package sqlq

import "strings"

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
