package rewrite

import (
	"fmt"
	"slices"
	"strings"

	"github.com/auditpgx/auditpgx/internal/record"
)

// splice replaces each marker in the deparsed text by generated SQL, in
// one pass over the text. It returns the statement that inserts the
// entries, which it splices in too, as a WITH query, when inline is set.
func (rw *rewriter) splice(sql string, inline bool) (out, insert string, err error) {
	var sp splicer
	entries := make([]string, 0, len(rw.writes))
	for _, w := range rw.writes {
		g := w.generated()
		i := w.suffix()
		sp.marker("", markReturning+i, "", g.returning)
		if g.pre != "" {
			sp.marker("", markPre+i, "", g.pre)
		}
		if g.join != "" {
			sp.marker("", markJoin+i, "", g.join)
		}
		for n := 0; n < w.gates; n++ {
			sp.marker("", w.gateMarker(n), "", g.gate)
		}
		if w.projected {
			sp.marker("SELECT ", markProject+i, "", w.projectSQL())
		}
		if rw.opt.Suppressed {
			g.entries = w.suppressedEntry()
		}
		entries = append(entries, g.entries)
	}
	// One INSERT for all entries, in the order of the writes.
	if rw.opt.WAL != nil {
		insert = rw.opt.WAL.Emit(entries)
	} else {
		insert = record.InsertInto(rw.opt.Entries, rw.opt.Context != "") + " " + strings.Join(entries, " UNION ALL ")
	}
	if inline {
		sp.marker(markEntries+" AS (SELECT ", markEntries, ")", entriesQuery(insert))
	}
	out, err = sp.apply(sql)
	return out, insert, err
}

// entriesQuery is the WITH query of insert, the entries' statement.
func entriesQuery(insert string) string { return cteEntries + " AS (" + insert + ")" }

// markPrefix begins every marker.
const markPrefix = "__auditpgx_m_"

// splicer replaces markers, each of which must occur exactly once.
type splicer struct {
	repl []replacement
}

type replacement struct {
	key  string
	with string
	// anchor is the offset of markPrefix in key.
	anchor int
	// at is where key occurs in the text; n counts its occurrences.
	at, n int
}

// marker adds the replacement of marker name, quoted as the deparser
// quotes it, with the text around it.
func (sp *splicer) marker(before, name, after, with string) {
	anchor := strings.Index(before, markPrefix)
	if anchor < 0 {
		anchor = len(before) + 1
	}
	sp.add(before+"'"+name+"'"+after, anchor, with)
}

func (sp *splicer) add(key string, anchor int, with string) {
	sp.repl = append(sp.repl, replacement{key: key, with: with, anchor: anchor})
}

// apply finds every occurrence of markPrefix in sql, counts the keys that
// occur there, and, when each occurs exactly once, writes sql with each key
// replaced.
func (sp *splicer) apply(sql string) (string, error) {
	for p := 0; ; p++ {
		i := strings.Index(sql[p:], markPrefix)
		if i < 0 {
			break
		}
		p += i
		for j := range sp.repl {
			r := &sp.repl[j]
			if start := p - r.anchor; start >= 0 && strings.HasPrefix(sql[start:], r.key) {
				r.at = start
				r.n++
			}
		}
	}
	size := len(sql)
	for _, r := range sp.repl {
		if r.n != 1 {
			// A constant that spells a marker; refuse rather than guess.
			return "", unsupported("the statement contains the text %s, which the rewrite uses", r.key)
		}
		size += len(r.with) - len(r.key)
	}
	slices.SortFunc(sp.repl, func(a, b replacement) int { return a.at - b.at })
	var b strings.Builder
	b.Grow(size)
	last := 0
	for _, r := range sp.repl {
		if r.at < last {
			return "", fmt.Errorf("auditpgx internal error: marker %s overlaps another", r.key)
		}
		b.WriteString(sql[last:r.at])
		b.WriteString(r.with)
		last = r.at + len(r.key)
	}
	b.WriteString(sql[last:])
	return b.String(), nil
}
