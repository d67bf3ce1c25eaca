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
// when they would pass PostgreSQL's 63-byte identifier limit. Of the options
// of [Migrate], [WithoutIndexes] leaves indexes out and [Partitioned] makes
// the statements create a partitioned table (and its id sequence, and the
// comment recording its period) with no partitions: run [Maintain] after
// them, before the first write.
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
// or invalid UTF-8; an invalid option is an error too.
func DDL(table string, opts ...MigrateOption) (string, error) {
	c, err := newMigrateConfig("DDL", opts)
	if err != nil {
		return "", err
	}
	t, err := parseTableName(table)
	if err != nil {
		return "", fmt.Errorf("%w %q: %v", ErrInvalidTableName, table, err)
	}
	return strings.Join(ddlStatements(t, c), ";\n") + ";\n", nil
}

// entryIndex is one of the entry table's secondary indexes.
type entryIndex struct{ suffix, def string }

// entryIndexes are the entry table's secondary indexes, in the order
// ddlStatements creates them after the table: the index of table t with
// suffix s is t.indexName(s), and def follows ON and the table's name.
var entryIndexes = []entryIndex{
	{"_object_idx", "(table_name, object_id, id)"},
	{"_created_idx", "(created)"},
	{"_tx_idx", "(tx_id)"},
	{"_actor_idx", "(created_by, id)"},
	{"_related_idx", "(related_table_name, related_object_id, id) WHERE related_table_name IS NOT NULL"},
	// One GIN index over both jsonb columns: a write with a context adds
	// its keys to the same index insertion as its changes, which costs far
	// less than a second index (docs/PERFORMANCE.md).
	{"_changes_idx", "USING gin (changes jsonb_path_ops, context jsonb_path_ops)"},
}

// createIndex is the CREATE INDEX IF NOT EXISTS of t's index def, named
// t.indexName(suffix).
func createIndex(t tableName, suffix, def string) string {
	return `CREATE INDEX IF NOT EXISTS ` + sqlq.Ident(t.indexName(suffix)) + ` ON ` + t.Quoted() + ` ` + def
}

// sequence is the sequence that the ids of the partitioned entry table t
// come from; it lives in t's schema.
func (t tableName) sequence() tableName { return t.derived("_id_seq") }

// ddlStatements returns the statements of DDL for t with the options c.
func ddlStatements(t tableName, c migrateConfig) []string {
	q := t.Quoted()
	var stmts []string
	if c.partitioned {
		seq := t.sequence().Quoted()
		stmts = append(stmts,
			`CREATE SEQUENCE IF NOT EXISTS `+seq,
			record.CreatePartitionedTable(q, seq, sqlq.Ident(t.checkName())),
			`ALTER SEQUENCE `+seq+` OWNED BY `+q+`.id`,
			`COMMENT ON TABLE `+q+` IS `+sqlq.Literal(layoutCommentPrefix+c.period.String()))
	} else {
		stmts = append(stmts, record.CreateTable(q), record.AddContextColumn(q))
	}
	for _, ix := range entryIndexes {
		if !c.skip[ix.suffix] {
			stmts = append(stmts, createIndex(t, ix.suffix, ix.def))
		}
	}
	return stmts
}
