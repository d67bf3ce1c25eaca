package store

import (
	_ "embed"
	"fmt"
	"strings"

	"github.com/auditpgx/auditpgx/internal/record"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// Schema is the DDL for the entry table under its default name,
// auditpgx_entry, for use with migration tools. It creates the same table and
// indexes as DDL("auditpgx_entry") and, like it, is safe to run again.
//
//go:embed schema.sql
var Schema string

// DDL returns the statements that create the entry table named table and its
// indexes if they do not exist, separated by semicolons and newlines. The name
// may be schema-qualified ("audit.entries"); the schema must already exist.
// Index names are derived from the table's name, shortened with a hash suffix
// when they would pass PostgreSQL's 63-byte identifier limit.
//
// The indexes serve the filters of [Query]: (table_name, object_id, id) for
// an object's history, created, tx_id, (created_by, id) for an actor,
// (related_table_name, related_object_id, id) over association entries only,
// and a GIN index with jsonb_path_ops on changes for [ChangeFilter] values.
// Creating an index on a large existing table blocks writes to it while it
// builds: create it first with CREATE INDEX CONCURRENTLY under the same name,
// and the IF NOT EXISTS here skips it.
//
// The error wraps [ErrInvalidTableName] when table is empty, has more than two
// dot-separated parts, an empty part, a part longer than 63 bytes, a NUL byte
// or invalid UTF-8.
func DDL(table string) (string, error) {
	stmts, err := ddlStatements(table)
	if err != nil {
		return "", err
	}
	return strings.Join(stmts, ";\n") + ";\n", nil
}

// indexSuffixes names the entry table's secondary indexes, in the order
// ddlStatements creates them after the table: the index of table t is
// t.indexName(suffix).
var indexSuffixes = []string{"_object_idx", "_created_idx", "_tx_idx", "_actor_idx", "_related_idx", "_changes_idx"}

func ddlStatements(table string) ([]string, error) {
	t, err := parseTableName(table)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrInvalidTableName, table, err)
	}
	q := t.Quoted()
	return []string{
		record.CreateTable(q),
		record.AddContextColumn(q),
		`CREATE INDEX IF NOT EXISTS ` + sqlq.Ident(t.indexName("_object_idx")) + ` ON ` + q + ` (table_name, object_id, id)`,
		`CREATE INDEX IF NOT EXISTS ` + sqlq.Ident(t.indexName("_created_idx")) + ` ON ` + q + ` (created)`,
		`CREATE INDEX IF NOT EXISTS ` + sqlq.Ident(t.indexName("_tx_idx")) + ` ON ` + q + ` (tx_id)`,
		`CREATE INDEX IF NOT EXISTS ` + sqlq.Ident(t.indexName("_actor_idx")) + ` ON ` + q + ` (created_by, id)`,
		`CREATE INDEX IF NOT EXISTS ` + sqlq.Ident(t.indexName("_related_idx")) + ` ON ` + q +
			` (related_table_name, related_object_id, id) WHERE related_table_name IS NOT NULL`,
		// One GIN index over both jsonb columns: a write with a context
		// adds its keys to the same index insertion as its changes, which
		// costs far less than a second index (docs/PERFORMANCE.md).
		`CREATE INDEX IF NOT EXISTS ` + sqlq.Ident(t.indexName("_changes_idx")) + ` ON ` + q +
			` USING gin (changes jsonb_path_ops, context jsonb_path_ops)`,
	}, nil
}
