package auditpgx

import (
	"strings"

	"github.com/auditpgx/auditpgx/internal/parse"
)

// Text pg_query cannot parse is refused when it may write a registered
// table: mentioned finds the names it holds without a parser.

// mentioned returns a registered table (or the entry table) whose name
// appears in query as an identifier, for refusing text that cannot be
// parsed. Unquoted words compare case-insensitively, quoted ones exactly;
// a match may be a false alarm (a column of that name), never a miss,
// except for names spelled with Unicode escapes (U&"..."), which the
// scan compares as written. Names match whole identifiers only: "t" is not
// found in "select".
func (p *planner) mentioned(query string) string {
	lower := strings.ToLower(query)
	if strings.Contains(lower, "u&") {
		// Unicode escapes can spell any name: refuse if anything is audited.
		for _, t := range p.reg.Tables() {
			return t.Registered
		}
	}
	words, lexed := parse.Identifiers(query)
	if !lexed {
		// Not even lexable (as pg_query lexes; a server with other settings,
		// such as standard_conforming_strings off, may read quotes
		// differently): every word counts, inside quotes too.
		words = plainWords(lower)
	}
	has := func(rel string) bool {
		if lexed || plainIdent(rel) {
			return words[rel]
		}
		return strings.Contains(query, rel) || strings.Contains(lower, strings.ToLower(rel))
	}
	for _, t := range p.reg.Tables() {
		if has(t.Name.Rel) {
			return t.Registered
		}
		for _, c := range t.ChildNames() {
			if has(c) {
				return t.Registered
			}
		}
	}
	if has(p.reg.EntryTable().Rel) {
		return p.reg.EntryTable().String()
	}
	return ""
}

// identByte reports whether b may occur in an unquoted identifier.
func identByte(b byte) bool {
	return b == '_' || b == '$' || b >= 0x80 || ('a' <= b && b <= 'z') || ('A' <= b && b <= 'Z') || ('0' <= b && b <= '9')
}

// plainIdent reports whether name is spelled the same unquoted: lower
// case identifier characters only.
func plainIdent(name string) bool {
	for i := 0; i < len(name); i++ {
		if !identByte(name[i]) || ('A' <= name[i] && name[i] <= 'Z') {
			return false
		}
	}
	return name != ""
}

// plainWords returns the maximal runs of identifier characters in s,
// whatever quotes surround them.
func plainWords(s string) map[string]bool {
	words := map[string]bool{}
	for i := 0; i < len(s); {
		if !identByte(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && identByte(s[j]) {
			j++
		}
		words[s[i:j]] = true
		i = j
	}
	return words
}
