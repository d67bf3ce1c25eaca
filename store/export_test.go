package store

import (
	"math"

	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// ListSQL returns the statement and arguments List sends for q, which must
// be valid, so that tests can EXPLAIN it.
func ListSQL(q Query) (string, []any) {
	t, err := parseTableName(cmpOr(q.Table, defaultTable))
	if err != nil {
		panic(err)
	}
	return buildList(t, q, cmpOr(q.Limit, defaultLimit)+1)
}

// HistorySQL returns the statement History sends first for an object of
// table whose key columns are keys.
func HistorySQL(table, objectID string, keys []string) (string, []any) {
	l := &lineage{t: tableName{sqlq.Name{Rel: defaultTable}}, table: table, keys: keys, related: true}
	return l.query(objectID, math.MaxInt64)
}

// TablesSQL returns the statement Tables sends for the entry table table.
func TablesSQL(table string) string {
	t, err := parseTableName(cmpOr(table, defaultTable))
	if err != nil {
		panic(err)
	}
	return tablesQuery(t)
}
