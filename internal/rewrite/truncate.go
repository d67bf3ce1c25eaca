package rewrite

import (
	"strings"

	"github.com/auditpgx/auditpgx/internal/record"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// TruncateEntries is an INSERT of one "truncate" entry for each of tables
// (registered names), to run in the same transaction as the TRUNCATE:
// TRUNCATE cannot sit in a WITH query, so the two travel as two statements
// of one simple-protocol string, which PostgreSQL runs as one transaction.
// opt supplies the entry table, the actor expression and the fingerprint.
// With the WAL sink it is the SELECT that emits the entries instead.
func TruncateEntries(tables []string, opt Options) string {
	if opt.WAL != nil {
		selects := make([]string, len(tables))
		for i, t := range tables {
			selects[i] = truncateEntry(t, opt).Select()
		}
		return opt.WAL.Emit(selects)
	}
	var sb strings.Builder
	sb.WriteString(record.InsertInto(opt.Entries, opt.Context != "") + " VALUES ")
	for i, t := range tables {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("(" + truncateEntry(t, opt).Values() + ")")
	}
	return sb.String()
}

func truncateEntry(table string, opt Options) record.Entry {
	return record.Entry{Actor: opt.Actor, Operation: "'truncate'", Table: sqlq.Literal(table), ObjectID: "''",
		Changes: "NULL::jsonb", Fingerprint: sqlq.Literal(opt.Fingerprint), Context: opt.Context}
}
