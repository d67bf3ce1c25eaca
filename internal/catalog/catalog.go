// Package catalog is the pipeline's room for what the server says about
// tables: the queries that resolve a written name in the session (with its
// ancestors, cascading referrers and the tables views read), that describe
// a table (columns, keys, partitions, triggers), that list what a
// statement reached, and the one struct a description is decoded into.
// The planner caches what it reads (per registration and table OID, in
// package registry); nothing else asks the server about tables.
package catalog

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// Table is what the server says about a table: one struct for the
// planner, the registry's check and the rewrite.
type Table struct {
	OID uint32 `json:"oid"`
	// NAtts is pg_class.relnatts: it grows with every column added.
	NAtts int `json:"natts"`
	// Kind is pg_class.relkind: "r" for a table, "p" for a partitioned one.
	Kind string `json:"kind"`
	// Generated lists the stored generated columns.
	Generated []string `json:"generated"`
	// BeforeUpdate is true when a BEFORE UPDATE row trigger on the table
	// or a child may change columns an UPDATE does not assign.
	BeforeUpdate bool     `json:"before_update"`
	Schema       string   `json:"schema"`
	Rel          string   `json:"rel"`
	Columns      []string `json:"columns"`
	Types        []string `json:"types"`
	// TypeOIDs are the columns' pg_attribute.atttypid, in Columns' order.
	TypeOIDs   []uint32 `json:"type_oids"`
	PrimaryKey []string `json:"primary_key"`
	// Unique maps unique and primary key constraint names to columns.
	Unique map[string][]string `json:"unique"`
	// Children are the table's partitions and inheritance children, at
	// any depth.
	Children []Child `json:"children"`
	// FKs are the table's single-column foreign keys.
	FKs []FK `json:"fks"`
}

// FK is a single-column foreign key of a registered table.
type FK struct {
	Column    string `json:"column"`
	RefOID    uint32 `json:"ref_oid"`
	RefSchema string `json:"ref_schema"`
	RefRel    string `json:"ref_rel"`
	RefColumn string `json:"ref_column"`
	// OnDelete is pg_constraint.confdeltype: "c" for CASCADE.
	OnDelete string `json:"on_delete"`
}

// Child is a partition or inheritance child of a registered table.
type Child struct {
	OID    uint32 `json:"oid"`
	Schema string `json:"schema"`
	Rel    string `json:"rel"`
	// Visible: the session's search_path finds the child by its bare name.
	Visible bool `json:"visible"`
}

// ByNameQuery reads a table's description as one JSON text value (no row
// when the table does not exist), given the quoted name as $1.
const ByNameQuery = catalogSelect + `
WHERE c.oid = pg_catalog.to_regclass($1)`

// ByOIDQuery is ByNameQuery given the table's OID as $1 (bigint).
const ByOIDQuery = catalogSelect + `
WHERE c.oid = $1::bigint::oid`

const catalogSelect = `SELECT json_build_object(
  'oid', c.oid::bigint,
  'natts', c.relnatts,
  'kind', c.relkind,
  'generated', (SELECT json_agg(a.attname ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = 's'),
  'before_update', EXISTS (SELECT FROM pg_catalog.pg_trigger g
              WHERE (g.tgrelid = c.oid OR g.tgrelid IN (SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid)
                     OR g.tgrelid IN (SELECT p.relid FROM pg_catalog.pg_partition_tree(c.oid) p))
              AND NOT g.tgisinternal AND g.tgtype & 19 = 19),
  'schema', n.nspname,
  'rel', c.relname,
  'columns', (SELECT json_agg(a.attname ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
  'types', (SELECT json_agg(pg_catalog.format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
  'type_oids', (SELECT json_agg(a.atttypid::bigint ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
  'unique', (SELECT json_object_agg(k.conname, (SELECT json_agg(a.attname ORDER BY u.ord)
              FROM unnest(k.conkey) WITH ORDINALITY AS u(attnum, ord)
              JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = u.attnum))
              FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype IN ('p', 'u')),
  'fks', (SELECT json_agg(json_build_object('column', a.attname, 'ref_oid', k.confrelid::bigint,
              'ref_schema', rn.nspname, 'ref_rel', rc.relname, 'ref_column', ra.attname, 'on_delete', k.confdeltype))
              FROM pg_catalog.pg_constraint k
              JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
              JOIN pg_catalog.pg_attribute ra ON ra.attrelid = k.confrelid AND ra.attnum = k.confkey[1]
              JOIN pg_catalog.pg_class rc ON rc.oid = k.confrelid
              JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
              WHERE k.conrelid = c.oid AND k.contype = 'f' AND cardinality(k.conkey) = 1),
  'children', (WITH RECURSIVE d(oid) AS (
                 SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid
                 UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN d ON i.inhparent = d.oid)
              SELECT json_agg(json_build_object('oid', cc.oid::bigint, 'schema', cn.nspname, 'rel', cc.relname, 'visible', pg_catalog.pg_table_is_visible(cc.oid)))
              FROM d JOIN pg_catalog.pg_class cc ON cc.oid = d.oid JOIN pg_catalog.pg_namespace cn ON cn.oid = cc.relnamespace),
  'primary_key', (SELECT json_agg(a.attname ORDER BY k.ord) FROM pg_catalog.pg_index i
              CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
              JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE i.indrelid = c.oid AND i.indisprimary))::text
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace`

// Partitioned reports a partitioned table (relkind p).
func (t *Table) Partitioned() bool { return t.Kind == "p" }

// Quoted returns the table's name quoted for SQL.
func (t *Table) Quoted() string { return sqlq.QualifiedIdent(t.Schema, t.Rel) }

// Describe runs ByNameQuery (arg a quoted name) or
// ByOIDQuery (arg an OID); it returns nil when there is no
// such table.
func Describe(ctx context.Context, q driver.QueryerContext, query string, arg any) (*Table, error) {
	rows, err := q.QueryContext(ctx, query, []driver.NamedValue{{Ordinal: 1, Value: arg}})
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	switch err := rows.Next(dest); {
	case errors.Is(err, io.EOF):
		return nil, nil
	case err != nil:
		return nil, err
	}
	var text []byte
	switch v := dest[0].(type) {
	case string:
		text = []byte(v)
	case []byte:
		text = v
	default:
		return nil, fmt.Errorf("auditpgx: catalog query for %v returned %T", arg, dest[0])
	}
	c, err := Decode(text)
	if err != nil {
		return nil, fmt.Errorf("auditpgx: catalog query for %v: %w", arg, err)
	}
	return c, rows.Close()
}

// Decode reads the JSON text value of ByNameQuery or ByOIDQuery.
func Decode(text []byte) (*Table, error) {
	var c Table
	if err := json.Unmarshal(text, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// HasColumnQuery is HasColumn's query: the quoted table name is $1, the
// column $2.
const HasColumnQuery = `SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute
	WHERE attrelid = pg_catalog.to_regclass($1) AND attname = $2 AND attnum > 0 AND NOT attisdropped)`

// HasColumn reports whether the table the quoted name means has a column
// of that name; false when there is no such table.
func HasColumn(ctx context.Context, q driver.QueryerContext, quoted, column string) (bool, error) {
	rows, err := q.QueryContext(ctx, HasColumnQuery, []driver.NamedValue{{Ordinal: 1, Value: quoted}, {Ordinal: 2, Value: column}})
	if err != nil {
		return false, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		return false, err
	}
	exists, ok := dest[0].(bool)
	if !ok {
		return false, fmt.Errorf("auditpgx: column query for %s returned %T", quoted, dest[0])
	}
	return exists, rows.Close()
}
