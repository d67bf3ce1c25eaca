package bench

import (
	"strconv"
	"testing"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/catalog"
	"github.com/auditpgx/auditpgx/internal/parse"
	"github.com/auditpgx/auditpgx/internal/rewrite"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// catalog describes the benchmark's table to the rewriter, as auditpgx's
// planner does after reading the database catalog.
type fixedCatalog struct{ target *rewrite.Target }

func newCatalog() *fixedCatalog {
	return &fixedCatalog{target: &rewrite.Target{
		Registered: Table,
		Table: catalog.Table{
			Columns: append([]string{primaryKey}, columns...),
			Types: []string{"bigint", "text", "text", "numeric(12,2)", "boolean", "integer", "text[]", "jsonb",
				"timestamp with time zone", "text", "timestamp with time zone"},
			TypeOIDs:   columnTypeOIDs,
			PrimaryKey: []string{primaryKey},
		},
		Audited: true,
		Audit:   diff.Columns{Names: auditedColumns(), Redacted: map[string]bool{redactedColumn: true}},
	}}
}

func (c *fixedCatalog) Target(n parse.TableName) (*rewrite.Target, error) {
	if n.Name == Table {
		return c.target, nil
	}
	return nil, nil
}

func (c *fixedCatalog) Columns(n parse.TableName) ([]string, error) {
	if n.Name == Table {
		return c.target.Columns, nil
	}
	return nil, &rewrite.UnsupportedError{Reason: "unknown table " + n.String()}
}

// RewriteSQL returns the ExecSQL auditpgx runs for one of the benchmark's
// statements on a server of the given server_version_num, for reading
// the SQL or running EXPLAIN on it. The actor is parameter NumParams+1.
func RewriteSQL(query string, serverVersion int) (string, error) {
	st, err := parse.Parse(query)
	if err != nil {
		return "", err
	}
	fp, err := parse.Fingerprint(query)
	if err != nil {
		return "", err
	}
	rw, err := rewrite.Build(st, newCatalog(), rewrite.Options{
		Entries:       sqlq.Name{Rel: "auditpgx_entry"},
		Fingerprint:   fp,
		Actor:         "$" + strconv.Itoa(st.NumParams+1) + "::text",
		ServerVersion: serverVersion,
	})
	if err != nil {
		return "", err
	}
	return rw.ExecSQL, nil
}

// ParseRewrite is a benchmark of what auditpgx does the first time it sees
// a SQL text: parse, fingerprint and rewrite, here of the GORM Save of the
// benchmark's table, through the parser package's exported API. It is the
// in-process counterpart of the root package's BenchmarkColdRewrite, for
// use with testing.Benchmark.
func ParseRewrite(b *testing.B) {
	cat := newCatalog()
	b.ReportAllocs()
	for b.Loop() {
		st, err := parse.Parse(gormSaveSQL)
		if err != nil {
			b.Fatal(err)
		}
		fp, err := parse.Fingerprint(gormSaveSQL)
		if err != nil {
			b.Fatal(err)
		}
		opt := rewrite.Options{Entries: sqlq.Name{Rel: "auditpgx_entry"}, Fingerprint: fp, Actor: "$12::text", ServerVersion: 150000}
		if _, err := rewrite.Build(st, cat, opt); err != nil {
			b.Fatal(err)
		}
	}
}
