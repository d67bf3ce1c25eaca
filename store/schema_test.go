package store_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/auditpgx/auditpgx/store"
)

// normalize drops comments, identifier quotes and layout, so that Schema
// (written by hand) and DDL (generated, quoted) compare as text.
func normalize(ddl string) string {
	ddl = regexp.MustCompile(`(?m)--.*$`).ReplaceAllString(ddl, "")
	ddl = strings.ReplaceAll(ddl, `"`, "")
	ddl = strings.Join(strings.Fields(ddl), " ")
	ddl = strings.ReplaceAll(ddl, "( ", "(")
	return strings.ReplaceAll(ddl, " )", ")")
}

func TestSchemaIsDDLForDefaultName(t *testing.T) {
	ddl, err := store.DDL("auditpgx_entry")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := normalize(store.Schema), normalize(ddl); got != want {
		t.Errorf("schema.sql and DDL(\"auditpgx_entry\") differ:\nschema.sql: %s\nDDL:        %s", got, want)
	}
}

func TestDDLNames(t *testing.T) {
	for _, tc := range []struct {
		table   string
		want    []string // substrings of the DDL
		notWant []string
	}{
		{
			table: "auditpgx_entry",
			want: []string{
				`CREATE TABLE IF NOT EXISTS "auditpgx_entry" (`,
				`CREATE INDEX IF NOT EXISTS "auditpgx_entry_object_idx" ON "auditpgx_entry" (table_name, object_id, id);`,
				`CREATE INDEX IF NOT EXISTS "auditpgx_entry_created_idx" ON "auditpgx_entry" (created);`,
				`CREATE INDEX IF NOT EXISTS "auditpgx_entry_tx_idx" ON "auditpgx_entry" (tx_id);`,
				`CREATE INDEX IF NOT EXISTS "auditpgx_entry_actor_idx" ON "auditpgx_entry" (created_by, id);`,
				`CREATE INDEX IF NOT EXISTS "auditpgx_entry_related_idx" ON "auditpgx_entry" (related_table_name, related_object_id, id) WHERE related_table_name IS NOT NULL;`,
				`CREATE INDEX IF NOT EXISTS "auditpgx_entry_changes_idx" ON "auditpgx_entry" USING gin (changes jsonb_path_ops, context jsonb_path_ops);`,
			},
		},
		{
			table: "audit.entries",
			want: []string{
				`CREATE TABLE IF NOT EXISTS "audit"."entries" (`,
				`"entries_object_idx" ON "audit"."entries"`,
			},
			notWant: []string{`"audit_entries`, `"audit.entries`},
		},
		{
			// Read as SQL reads a name: unquoted is folded, and a dot
			// inside quotes is part of the name.
			table: `Audit.Entries`,
			want:  []string{`CREATE TABLE IF NOT EXISTS "audit"."entries" (`},
		},
		{
			table: `"audit.log"`,
			want:  []string{`CREATE TABLE IF NOT EXISTS "audit.log" (`, `"audit.log_tx_idx" ON "audit.log"`},
		},
		{
			table: `"My""Schema"."Audit Log"`,
			want: []string{
				`CREATE TABLE IF NOT EXISTS "My""Schema"."Audit Log" (`,
				`"Audit Log_tx_idx" ON "My""Schema"."Audit Log"`,
			},
		},
	} {
		ddl, err := store.DDL(tc.table)
		if err != nil {
			t.Errorf("DDL(%q): %v", tc.table, err)
			continue
		}
		for _, s := range tc.want {
			if !strings.Contains(ddl, s) {
				t.Errorf("DDL(%q) lacks %s:\n%s", tc.table, s, ddl)
			}
		}
		for _, s := range tc.notWant {
			if strings.Contains(ddl, s) {
				t.Errorf("DDL(%q) contains %s:\n%s", tc.table, s, ddl)
			}
		}
	}
}

var indexNameRE = regexp.MustCompile(`CREATE INDEX IF NOT EXISTS "((?:[^"]|"")*)"`)

// Names near PostgreSQL's 63-byte limit must not yield index names the
// server would truncate, nor truncate them into one another.
func TestDDLLongNames(t *testing.T) {
	for _, name := range []string{
		strings.Repeat("a", 51),
		strings.Repeat("b", 52),
		strings.Repeat("c", 63),
		strings.Repeat("é", 31), // 62 bytes, cut must not split a character
		"s." + strings.Repeat("d", 63),
	} {
		ddl, err := store.DDL(name)
		if err != nil {
			t.Fatalf("DDL(%q): %v", name, err)
		}
		seen := map[string]bool{}
		for _, m := range indexNameRE.FindAllStringSubmatch(ddl, -1) {
			idx := strings.ReplaceAll(m[1], `""`, `"`)
			if len(idx) > 63 {
				t.Errorf("DDL(%q): index name %q is %d bytes", name, idx, len(idx))
			}
			if !utf8.ValidString(idx) {
				t.Errorf("DDL(%q): index name %q is not valid UTF-8", name, idx)
			}
			if seen[idx] {
				t.Errorf("DDL(%q): index name %q repeated", name, idx)
			}
			seen[idx] = true
		}
		if len(seen) != 6 {
			t.Errorf("DDL(%q): %d index names, want 6", name, len(seen))
		}
	}
	// Two long names sharing a prefix get different index names.
	a, _ := store.DDL(strings.Repeat("x", 60) + "_a")
	b, _ := store.DDL(strings.Repeat("x", 60) + "_b")
	if indexNameRE.FindStringSubmatch(a)[1] == indexNameRE.FindStringSubmatch(b)[1] {
		t.Errorf("long names with a common prefix share index name %s", indexNameRE.FindStringSubmatch(a)[1])
	}
}

func TestDDLInvalidNames(t *testing.T) {
	for _, table := range []string{
		"",
		".",
		"a.",
		".a",
		"a.b.c",
		strings.Repeat("x", 64),
		strings.Repeat("x", 64) + ".t",
		"a\x00b",
		"bad\xffutf8",
	} {
		_, err := store.DDL(table)
		if !errors.Is(err, store.ErrInvalidTableName) {
			t.Errorf("DDL(%q) error = %v, want ErrInvalidTableName", table, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), "auditpgx: ") {
			t.Errorf("DDL(%q) error %q lacks the auditpgx: prefix", table, err)
		}
	}
	_, err := store.DDL("a.b.c")
	if want := `auditpgx: invalid entry table name "a.b.c": has 3 dot-separated parts`; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error = %q, want prefix %q", err, want)
	}
}
