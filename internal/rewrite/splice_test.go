package rewrite

import (
	"strings"
	"testing"

	"github.com/auditpgx/auditpgx/internal/parse"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// TestRewriteRefusesMarkerText: text that spells a marker as the deparser
// prints it makes the rewrite refuse, naming the marker, rather than splice
// at the wrong place.
func TestRewriteRefusesMarkerText(t *testing.T) {
	for sql, marker := range map[string]string{
		`UPDATE users SET name = '__auditpgx_m_ret_0_' WHERE id = 1`:                                 "'" + markReturning + "0_'",
		`UPDATE users SET name = 'x' WHERE id = 1 AND name <> '__auditpgx_m_pre_0_'`:                 "'" + markPre + "0_'",
		`UPDATE users SET name = 'x' WHERE id = 1 AND '__auditpgx_m_join_0_'::bool`:                  "'" + markJoin + "0_'",
		`WITH d AS (DELETE FROM users RETURNING id) SELECT '__auditpgx_m_proj_0_' FROM d`:            "SELECT '" + markProject + "0_'",
		`INSERT INTO users (id, name) VALUES (1, '__auditpgx_m_ret_0_') ON CONFLICT (id) DO NOTHING`: "'" + markReturning + "0_'",
	} {
		st, err := parse.Parse(sql)
		if err != nil {
			t.Fatalf("Parse(%q): %v", sql, err)
		}
		_, err = Build(st, fuzzCatalog{}, Options{Entries: sqlq.Name{Rel: "e"}, Actor: "$1::text", ServerVersion: 170000})
		want := "the statement contains the text " + marker + ", which the rewrite uses"
		if err == nil || err.Error() != want {
			t.Errorf("Rewrite(%q) = %v, want %q", sql, err, want)
		}
	}
	// Text that holds a marker but is not the quoted marker is left alone.
	for _, constant := range []string{
		`'__auditpgx_m_tail __auditpgx_m_ret_1_ __auditpgx_m_'`,
		`'x__auditpgx_m_pre_0__auditpgx_m_pre_0_'`,
		`'__auditpgx_m_ret_0_ '`,
		`'__auditpgx_m_entries'`,
		`'__auditpgx_m_tail'`,
	} {
		st, err := parse.Parse(`UPDATE users SET name = ` + constant + ` WHERE id = 1`)
		if err != nil {
			t.Fatal(err)
		}
		rw, err := Build(st, fuzzCatalog{}, Options{Entries: sqlq.Name{Rel: "e"}, Actor: "$1::text", ServerVersion: 170000})
		if err != nil {
			t.Fatalf("%s: %v", constant, err)
		}
		if !strings.Contains(rw.ExecSQL, "SET name = "+constant+" FROM") {
			t.Errorf("constant %s changed:\n%s", constant, rw.ExecSQL)
		}
	}
}

// TestSplicerAgreesWithReplace: one pass gives what counting and replacing
// each marker in turn gives.
func TestSplicerAgreesWithReplace(t *testing.T) {
	keys := []struct {
		key    string
		anchor int
	}{
		{markReturning + "1_", 0},
		{markReturning + "11_", 0},
		{"SELECT " + markProject + "1_", len("SELECT ")},
		{markEntries + " AS (SELECT " + markEntries + ")", 0},
	}
	texts := []string{
		"a __auditpgx_m_ret_1_ b __auditpgx_m_ret_11_ SELECT __auditpgx_m_proj_1_ __auditpgx_m_entries AS (SELECT __auditpgx_m_entries) z",
		"__auditpgx_m_entries AS (SELECT __auditpgx_m_entries)SELECT __auditpgx_m_proj_1___auditpgx_m_ret_11___auditpgx_m_ret_1_",
		"__auditpgx_m_ret_1_ __auditpgx_m_ret_11_ __auditpgx_m_proj_1_ __auditpgx_m_entries AS (SELECT __auditpgx_m_entries)",
		"__auditpgx_m_ret_1_ __auditpgx_m_ret_1_ __auditpgx_m_ret_11_ SELECT __auditpgx_m_proj_1_ __auditpgx_m_entries AS (SELECT __auditpgx_m_entries)",
		"__auditpgx_m_ret_1_ __auditpgx_m_ret_11_ SELECT __auditpgx_m_proj_1_ __auditpgx_m_entries AS (SELECT __auditpgx_m_entries) __auditpgx_m_",
		"",
	}
	for _, text := range texts {
		var sp splicer
		want, wantErr := text, ""
		for i, k := range keys {
			with := strings.Repeat("x", i+1)
			sp.add(k.key, k.anchor, with)
			if wantErr == "" && strings.Count(text, k.key) != 1 {
				wantErr = "the statement contains the text " + k.key + ", which the rewrite uses"
			}
			want = strings.Replace(want, k.key, with, 1)
		}
		got, err := sp.apply(text)
		switch {
		case wantErr != "" && (err == nil || err.Error() != wantErr):
			t.Errorf("apply(%q) = %q, %v; want error %q", text, got, err, wantErr)
		case wantErr == "" && (err != nil || got != want):
			t.Errorf("apply(%q) = %q, %v; want %q", text, got, err, want)
		}
	}
}
