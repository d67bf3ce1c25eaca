package record

import (
	"strconv"
	"strings"

	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// PayloadVersion is the "v" of every WAL sink message.
const PayloadVersion = 1

// DefaultChunkRows is how many entries one WAL sink message holds at most,
// when WAL.ChunkRows is 0.
const DefaultChunkRows = 1000

// WALMarker begins the message of the error a statement fails with when
// the WAL sink cannot deliver its entries: wal_level is not logical, or
// the slot is missing.
const WALMarker = "auditpgx: WAL sink unavailable"

// WAL is the WAL sink: entries travel as transactional logical decoding
// messages, pg_logical_emit_message(true, Prefix, payload), which a relay
// reading Slot writes to an entry table.
type WAL struct {
	Prefix, Slot string
	// ChunkRows is the most entries one message holds; 0 is
	// DefaultChunkRows.
	ChunkRows int
}

// EntryKeys are the payload's keys, in the order of an Entry's Values
// with its context: the entry table's columns but id.
var EntryKeys = []string{"created", "created_by", "operation", "table_name", "object_id", "changes", "tx_id",
	"statement_fingerprint", "related_table_name", "related_object_id", "related_field_name", "context"}

// Emit is the SELECT that emits the entries the SELECTs in selects return
// (each an Entry's Select with a Context, and a FROM), in order, as
// messages of at most ChunkRows entries: {"v": 1, "entries": [...]}, each
// entry an object of the entry table's columns but id. Its one row, n, is
// the number of messages. It first checks, once, that the messages will be
// decoded (Guard); read from a WITH query, it must be referred to by the
// statement's final query, or it does not run (EmitGate).
func (w WAL) Emit(selects []string) string {
	chunk := w.ChunkRows
	if chunk <= 0 {
		chunk = DefaultChunkRows
	}
	// to_json of the row, and text concatenated: building jsonb, or json
	// object by object, costs several times more for a bulk statement.
	group := "(x.ord - 1) / " + strconv.Itoa(chunk)
	return "SELECT count(pg_catalog.pg_logical_emit_message(true, " + sqlq.Literal(w.Prefix) + ", m.p)) AS n FROM (" +
		"SELECT '{\"v\": " + strconv.Itoa(PayloadVersion) + ", \"entries\": [' || string_agg(x.entry, ', ' ORDER BY x.ord) || ']}' AS p FROM (" +
		"SELECT to_json(e)::text AS entry, row_number() OVER () AS ord FROM (" +
		strings.Join(selects, " UNION ALL ") + ") AS e(" + strings.Join(EntryKeys, ", ") + ")) x GROUP BY " + group +
		" ORDER BY " + group + ") m WHERE " + w.Guard()
}

// Guard is a condition, true when it does not fail, that fails the
// statement with WALMarker in its error unless wal_level is logical and
// Slot is a logical replication slot of the current database: otherwise
// the messages would be written and never read. It is evaluated once per
// statement.
func (w WAL) Guard() string {
	slot := sqlq.Literal(w.Slot)
	return "(SELECT CASE WHEN pg_catalog.current_setting('wal_level') <> 'logical' THEN (" +
		sqlq.Literal(WALMarker+": wal_level is ") + " || pg_catalog.current_setting('wal_level') || ', not logical')::int " +
		"WHEN NOT EXISTS (SELECT FROM pg_catalog.pg_get_replication_slots() s WHERE s.slot_name = " + slot +
		" AND s.slot_type = 'logical' AND " + slotInThisDatabase + ") THEN (" +
		sqlq.Literal(WALMarker+": no logical replication slot ") + " || " + sqlq.Literal(sqlq.Ident(w.Slot)) +
		" || ' in database ' || pg_catalog.current_database())::int ELSE 1 END) = 1"
}

// slotInThisDatabase is true for a row s of pg_get_replication_slots whose
// database is the current one. The view pg_replication_slots compares
// names through a join with pg_database, which took the guard 13 µs a
// statement against 6 µs for this lookup of the slot's database by OID in
// the catalog cache (pgbench, PostgreSQL 15); identity is the name as
// quote_ident writes it.
const slotInThisDatabase = "(pg_catalog.pg_identify_object('pg_catalog.pg_database'::pg_catalog.regclass, s.datoid, 0)).identity = " +
	"pg_catalog.quote_ident(pg_catalog.current_database())"

// EmitGate is a condition on the final query that makes it read the WITH
// query name, which holds Emit, once, whatever rows it returns: true when
// keep, else false (the final query of a write without RETURNING, run for
// its rows, returns none).
func EmitGate(name string, keep bool) string {
	if keep {
		return "(SELECT n FROM " + name + ") >= 0"
	}
	return "(SELECT n FROM " + name + ") < 0"
}
