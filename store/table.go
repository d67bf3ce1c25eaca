package store

import (
	"fmt"
	"hash/fnv"
	"unicode/utf8"

	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// defaultTable is the entry table name used when none is configured.
const defaultTable = "auditpgx_entry"

// tableName is an entry table's name, read as SQL reads a table name
// (sqlq.ParseName): "Audit.Entries" is audit.entries, `"audit.log"` one
// table named audit.log, exactly as the driver writes to it.
type tableName struct{ sqlq.Name }

// parseTableName reads table. The error carries the reason only; callers
// add the prefix and sentinel that fit their API.
func parseTableName(table string) (tableName, error) {
	n, err := sqlq.ParseName(table)
	return tableName{n}, err
}

// indexName derives an index name from the table's own name (indexes always
// live in the table's schema, so the schema is not part of it). When the
// result would pass the identifier limit the table name is shortened and a
// hash of it appended, so that the server does not truncate the three index
// names into one.
func (t tableName) indexName(suffix string) string {
	// Every suffix is at most this long ("_related_idx" and "_changes_idx"
	// tie with it). Raising it would rename the indexes of existing long-named
	// tables, and Migrate would then build them a second time.
	const longestSuffix = len("_created_idx")
	base := t.Rel
	if len(base)+longestSuffix > sqlq.MaxIdentLen {
		h := fnv.New32a()
		h.Write([]byte(t.Rel))
		tag := fmt.Sprintf("_%08x", h.Sum32())
		base = truncateUTF8(base, sqlq.MaxIdentLen-longestSuffix-len(tag)) + tag
	}
	return base + suffix
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// derived names a relation in t's schema whose name is t's own with
// suffix, shortened as indexName shortens index names: the id sequence and
// the partitions of a partitioned entry table. Every suffix used is at
// most as long as the longest index suffix, so that names do not change
// with the suffix's length.
func (t tableName) derived(suffix string) tableName {
	return tableName{sqlq.Name{Schema: t.Schema, Rel: t.indexName(suffix)}}
}

// checkName is the name PostgreSQL gives the entry table's CHECK on
// operation when the table is created without naming it: the table's
// name, cut short to fit the identifier limit, and _operation_check.
func (t tableName) checkName() string {
	const suffix = "_operation_check"
	return truncateUTF8(t.Rel, sqlq.MaxIdentLen-len(suffix)) + suffix
}

// qualify prefixes a quoted name with the table's schema, if any.
func (t tableName) qualify(quotedName string) string {
	if t.Schema == "" {
		return quotedName
	}
	return sqlq.Ident(t.Schema) + "." + quotedName
}
