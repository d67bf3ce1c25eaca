package store

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"unicode/utf8"

	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// defaultTable is the entry table name used when none is configured.
const defaultTable = "auditpgx_entry"

// maxIdentLen is PostgreSQL's identifier limit (NAMEDATALEN-1) in bytes;
// longer names are silently truncated by the server.
const maxIdentLen = 63

// tableName is a parsed entry table name.
type tableName struct {
	schema string // "" when unqualified
	name   string
}

// parseTableName splits table at its dot. The error carries the reason only;
// callers add the prefix and sentinel that fit their API.
func parseTableName(table string) (tableName, error) {
	if table == "" {
		return tableName{}, errors.New("empty")
	}
	if !utf8.ValidString(table) {
		return tableName{}, errors.New("not valid UTF-8")
	}
	if strings.IndexByte(table, 0) >= 0 {
		return tableName{}, errors.New("contains a NUL byte")
	}
	parts := strings.Split(table, ".")
	if len(parts) > 2 {
		return tableName{}, fmt.Errorf("has %d dot-separated parts, want at most 2 (schema.table)", len(parts))
	}
	for _, p := range parts {
		if p == "" {
			return tableName{}, errors.New("has an empty part")
		}
		if len(p) > maxIdentLen {
			return tableName{}, fmt.Errorf("part of %d bytes exceeds PostgreSQL's limit of %d", len(p), maxIdentLen)
		}
	}
	if len(parts) == 2 {
		return tableName{schema: parts[0], name: parts[1]}, nil
	}
	return tableName{name: parts[0]}, nil
}

func (t tableName) quoted() string { return sqlq.QualifiedIdent(t.schema, t.name) }

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
	base := t.name
	if len(base)+longestSuffix > maxIdentLen {
		h := fnv.New32a()
		h.Write([]byte(t.name))
		tag := fmt.Sprintf("_%08x", h.Sum32())
		base = truncateUTF8(base, maxIdentLen-longestSuffix-len(tag)) + tag
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

// qualify prefixes a quoted name with the table's schema, if any.
func (t tableName) qualify(quotedName string) string {
	if t.schema == "" {
		return quotedName
	}
	return sqlq.Ident(t.schema) + "." + quotedName
}
