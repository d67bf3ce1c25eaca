package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/store"
)

// partitionsOf returns the partitions of the table as name and bound,
// ordered by name.
func partitionsOf(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT c.relname || ' ' || pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass($1) ORDER BY c.relname`, table)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}

// indexesOf returns the definitions of the indexes of a table, schema
// left out, ordered.
func indexesOf(t *testing.T, db *sql.DB, schema, table string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT replace(pg_get_indexdef(indexrelid), quote_ident($1) || '.', '') FROM pg_index
		WHERE indrelid = to_regclass(quote_ident($1) || '.' || quote_ident($2)) ORDER BY 1`, schema, table)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// A partitioned entry table: the parent has the columns of a plain one
// but for id's default, a primary key with created, the indexes, the
// recorded period, and partitions for the current month, the next three
// and a DEFAULT one, each with the indexes under names of its own.
func TestMigratePartitioned(t *testing.T) {
	ctx := context.Background()
	db, schema := openSchema(t)
	for i := range 2 {
		require.NoError(t, store.Migrate(ctx, db, "auditpgx_entry", store.Partitioned(store.Monthly)), "run %d", i+1)
	}
	got := describe(t, db, schema, "auditpgx_entry")
	require.Equal(t, "id bigint NOT NULL identity= default=nextval('auditpgx_entry_id_seq'::regclass)", got.Columns[0])
	require.Contains(t, got.Constraints, "p PRIMARY KEY (id, created)")
	require.Equal(t, []string{
		"CREATE INDEX auditpgx_entry_actor_idx ON ONLY auditpgx_entry USING btree (created_by, id)",
		"CREATE INDEX auditpgx_entry_changes_idx ON ONLY auditpgx_entry USING gin (changes jsonb_path_ops, context jsonb_path_ops)",
		"CREATE INDEX auditpgx_entry_created_idx ON ONLY auditpgx_entry USING btree (created)",
		"CREATE INDEX auditpgx_entry_object_idx ON ONLY auditpgx_entry USING btree (table_name, object_id, id)",
		"CREATE INDEX auditpgx_entry_related_idx ON ONLY auditpgx_entry USING btree (related_table_name, related_object_id, id) WHERE (related_table_name IS NOT NULL)",
		"CREATE INDEX auditpgx_entry_tx_idx ON ONLY auditpgx_entry USING btree (tx_id)",
		"CREATE UNIQUE INDEX auditpgx_entry_pkey ON ONLY auditpgx_entry USING btree (id, created)",
	}, got.Indexes)
	plainDDL, err := store.DDL("plain_entry")
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, plainDDL)
	require.NoError(t, err)
	require.Equal(t, describe(t, db, schema, "plain_entry").Columns[1:], got.Columns[1:])

	var comment, owner string
	require.NoError(t, db.QueryRow(`SELECT obj_description('auditpgx_entry'::regclass, 'pg_class'),
		(SELECT d.refobjid::regclass || '.' || d.refobjsubid FROM pg_depend d WHERE d.objid = 'auditpgx_entry_id_seq'::regclass AND d.deptype = 'a')`).
		Scan(&comment, &owner))
	require.Equal(t, "auditpgx:partition=monthly", comment)
	require.Equal(t, "auditpgx_entry.1", owner, "the sequence belongs to the id column")

	var now time.Time
	require.NoError(t, db.QueryRow(`SELECT statement_timestamp()`).Scan(&now))
	month := time.Date(now.UTC().Year(), now.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)
	want := []string{"auditpgx_entry_default DEFAULT"}
	for i := range 4 {
		from, to := month.AddDate(0, i, 0), month.AddDate(0, i+1, 0)
		want = append(want, fmt.Sprintf("auditpgx_entry_p%s FOR VALUES FROM ('%s') TO ('%s')", from.Format("2006_01"),
			from.Format("2006-01-02 15:04:05-07"), to.Format("2006-01-02 15:04:05-07")))
	}
	_, err = db.Exec(`SET TimeZone = 'UTC'`)
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	require.Equal(t, want, partitionsOf(t, db, "auditpgx_entry"))

	name := "auditpgx_entry_p" + month.Format("2006_01")
	require.Equal(t, []string{
		"CREATE INDEX " + name + "_actor_idx ON " + name + " USING btree (created_by, id)",
		"CREATE INDEX " + name + "_changes_idx ON " + name + " USING gin (changes jsonb_path_ops, context jsonb_path_ops)",
		"CREATE INDEX " + name + "_created_idx ON " + name + " USING btree (created)",
		"CREATE INDEX " + name + "_object_idx ON " + name + " USING btree (table_name, object_id, id)",
		"CREATE INDEX " + name + "_related_idx ON " + name + " USING btree (related_table_name, related_object_id, id) WHERE (related_table_name IS NOT NULL)",
		"CREATE INDEX " + name + "_tx_idx ON " + name + " USING btree (tx_id)",
		"CREATE UNIQUE INDEX " + name + "_pkey ON " + name + " USING btree (id, created)",
	}, indexesOf(t, db, schema, name))
	require.Len(t, indexesOf(t, db, schema, "auditpgx_entry_default"), 7)

	// Written in order, read back in order, wherever they land.
	_, err = db.Exec(`INSERT INTO auditpgx_entry (created, operation, table_name, object_id, tx_id)
		VALUES (now(), 'create', 'users', '1', 1), ('1999-01-01', 'create', 'users', '2', 1), (now() + interval '40 days', 'create', 'users', '3', 1)`)
	require.NoError(t, err)
	entries, err := store.List(ctx, db, store.Query{})
	require.NoError(t, err)
	require.Len(t, entries, 3)
	for i, e := range entries {
		require.Equal(t, int64(i+1), e.ID)
		require.Equal(t, fmt.Sprint(i+1), e.ObjectID)
	}
}

// DDL with Partitioned gives the statements Migrate runs, without
// partitions; Maintain then makes them.
func TestDDLPartitioned(t *testing.T) {
	ctx := context.Background()
	ddl, err := store.DDL("audit.entries", store.Partitioned(store.Weekly), store.WithoutIndexes("changes"))
	require.NoError(t, err)
	require.Contains(t, ddl, `CREATE SEQUENCE IF NOT EXISTS "audit"."entries_id_seq";`)
	require.Contains(t, ddl, `DEFAULT nextval('"audit"."entries_id_seq"'::regclass)`)
	require.Contains(t, ddl, `PARTITION BY RANGE (created);`)
	require.Contains(t, ddl, `COMMENT ON TABLE "audit"."entries" IS 'auditpgx:partition=weekly';`)
	require.NotContains(t, ddl, "changes_idx")

	db, schema := openSchema(t)
	other, otherSchema := openSchema(t)
	ddl, err = store.DDL("entries", store.Partitioned(store.Weekly))
	require.NoError(t, err)
	for range 2 {
		_, err = db.ExecContext(ctx, ddl)
		require.NoError(t, err)
	}
	fromDDL := describe(t, db, schema, "entries")
	require.Empty(t, partitionsOf(t, db, "entries"))
	res, err := store.Maintain(ctx, db, "entries", store.MaintainOptions{Now: utc("2026-01-01T10:00:00Z"), Future: 1})
	require.NoError(t, err)
	// 2026-01-01 is a Thursday of ISO week 1 of 2026.
	require.Equal(t, store.MaintainResult{Partitioned: true, Period: store.Weekly,
		Created: []string{"entries_p2026w01", "entries_p2026w02", "entries_default"}}, res)
	_, err = db.Exec(`SET TimeZone = 'UTC'`)
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	require.Equal(t, []string{
		"entries_default DEFAULT",
		"entries_p2026w01 FOR VALUES FROM ('2025-12-29 00:00:00+00') TO ('2026-01-05 00:00:00+00')",
		"entries_p2026w02 FOR VALUES FROM ('2026-01-05 00:00:00+00') TO ('2026-01-12 00:00:00+00')",
	}, partitionsOf(t, db, "entries"))

	require.NoError(t, store.Migrate(ctx, other, "entries", store.Partitioned(store.Weekly)))
	require.Equal(t, fromDDL, describe(t, other, otherSchema, "entries"))
}

// Partitioned on an unpartitioned table is an error naming the procedure
// that converts it, and changes nothing; Migrate without it works on
// either layout.
func TestMigratePartitionedRefusesPlainTable(t *testing.T) {
	ctx := context.Background()
	db, schema := openSchema(t)
	_, err := db.ExecContext(ctx, store.Schema)
	require.NoError(t, err)
	before := describe(t, db, schema, "auditpgx_entry")
	err = store.Migrate(ctx, db, "auditpgx_entry", store.Partitioned(store.Monthly))
	require.ErrorContains(t, err, `"auditpgx_entry"`)
	require.ErrorContains(t, err, "is not partitioned")
	require.ErrorContains(t, err, "docs/RETENTION.md")
	require.Equal(t, before, describe(t, db, schema, "auditpgx_entry"))
	require.NoError(t, store.Migrate(ctx, db, "auditpgx_entry"))

	require.NoError(t, store.Migrate(ctx, db, "parted", store.Partitioned(store.Daily)))
	parted := describe(t, db, schema, "parted")
	require.NoError(t, store.Migrate(ctx, db, "parted"))
	require.Equal(t, parted, describe(t, db, schema, "parted"))

	// Another period is recorded; the partitions made stay.
	parts := partitionsOf(t, db, "parted")
	require.NoError(t, store.Migrate(ctx, db, "parted", store.Partitioned(store.Monthly)))
	var comment string
	require.NoError(t, db.QueryRow(`SELECT obj_description('parted'::regclass, 'pg_class')`).Scan(&comment))
	require.Equal(t, "auditpgx:partition=monthly", comment)
	require.Equal(t, parts, partitionsOf(t, db, "parted"))

	_, err = db.ExecContext(ctx, `CREATE TABLE by_tx (id bigint, created timestamptz, tx_id bigint) PARTITION BY RANGE (tx_id)`)
	require.NoError(t, err)
	require.ErrorContains(t, store.Migrate(ctx, db, "by_tx", store.Partitioned(store.Monthly)), "not by range on created")

	require.ErrorContains(t, store.Migrate(ctx, db, "x", store.Partitioned(store.PartitionPeriod(7))), "PartitionPeriod(7)")
}

func TestMigratePartitionedConcurrent(t *testing.T) {
	ctx := context.Background()
	db, _ := openSchema(t)
	db.SetMaxOpenConns(8)
	for round := range 2 {
		table := fmt.Sprintf("entries_%d", round)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { errs[i] = store.Migrate(ctx, db, table, store.Partitioned(store.Monthly)) })
		}
		wg.Wait()
		for i, err := range errs {
			require.NoError(t, err, "round %d, goroutine %d", round, i)
		}
		require.Len(t, partitionsOf(t, db, table), 5)
	}
}

func TestParsePartitionPeriod(t *testing.T) {
	for _, p := range []store.PartitionPeriod{store.Monthly, store.Weekly, store.Daily} {
		got, err := store.ParsePartitionPeriod(p.String())
		require.NoError(t, err)
		require.Equal(t, p, got)
	}
	_, err := store.ParsePartitionPeriod("yearly")
	require.ErrorContains(t, err, `"yearly"`)
	require.Equal(t, store.Monthly, store.PartitionPeriod(0), "monthly is the default")
}
