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

// partitioned returns a pool on a fresh schema, in UTC, with a partitioned
// entry table of period p whose partitions are only those Maintain makes
// with opts.
func partitioned(t *testing.T, p store.PartitionPeriod, opts store.MaintainOptions) *sql.DB {
	t.Helper()
	ctx := context.Background()
	db, _ := openSchema(t)
	db.SetMaxOpenConns(4)
	ddl, err := store.DDL("auditpgx_entry", store.Partitioned(p))
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, ddl)
	require.NoError(t, err)
	_, err = store.Maintain(ctx, db, "auditpgx_entry", opts)
	require.NoError(t, err)
	return db
}

// utcConn is a connection whose session writes times in UTC, as the
// expected partition bounds are written.
func utcConn(t *testing.T, db *sql.DB) *sql.DB {
	t.Helper()
	_, err := db.Exec(`SET TimeZone = 'UTC'`)
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	return db
}

func TestMaintain(t *testing.T) {
	ctx := context.Background()
	db := partitioned(t, store.Monthly, store.MaintainOptions{Now: utc("2026-11-30T23:59:59Z"), Future: 2})
	res, err := store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{Now: utc("2026-12-01T00:00:00Z"), Future: 3})
	require.NoError(t, err)
	require.Equal(t, store.MaintainResult{Partitioned: true, Period: store.Monthly, Created: []string{"auditpgx_entry_p2027_02", "auditpgx_entry_p2027_03"}}, res)
	res, err = store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{Now: utc("2026-12-01T00:00:00Z"), Future: 3})
	require.NoError(t, err)
	require.Empty(t, res.Created, "a second run makes nothing")
	require.Equal(t, []string{
		"auditpgx_entry_default DEFAULT",
		"auditpgx_entry_p2026_11 FOR VALUES FROM ('2026-11-01 00:00:00+00') TO ('2026-12-01 00:00:00+00')",
		"auditpgx_entry_p2026_12 FOR VALUES FROM ('2026-12-01 00:00:00+00') TO ('2027-01-01 00:00:00+00')",
		"auditpgx_entry_p2027_01 FOR VALUES FROM ('2027-01-01 00:00:00+00') TO ('2027-02-01 00:00:00+00')",
		"auditpgx_entry_p2027_02 FOR VALUES FROM ('2027-02-01 00:00:00+00') TO ('2027-03-01 00:00:00+00')",
		"auditpgx_entry_p2027_03 FOR VALUES FROM ('2027-03-01 00:00:00+00') TO ('2027-04-01 00:00:00+00')",
	}, partitionsOf(t, utcConn(t, db), "auditpgx_entry"))
}

func TestMaintainDaily(t *testing.T) {
	ctx := context.Background()
	db := partitioned(t, store.Daily, store.MaintainOptions{Now: utc("2024-02-28T12:00:00Z"), Future: -1})
	res, err := store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{Now: utc("2024-02-28T12:00:00Z"), Future: 2})
	require.NoError(t, err)
	require.Equal(t, []string{"auditpgx_entry_p2024_02_29", "auditpgx_entry_p2024_03_01"}, res.Created)
	require.Equal(t, []string{
		"auditpgx_entry_default DEFAULT",
		"auditpgx_entry_p2024_02_28 FOR VALUES FROM ('2024-02-28 00:00:00+00') TO ('2024-02-29 00:00:00+00')",
		"auditpgx_entry_p2024_02_29 FOR VALUES FROM ('2024-02-29 00:00:00+00') TO ('2024-03-01 00:00:00+00')",
		"auditpgx_entry_p2024_03_01 FOR VALUES FROM ('2024-03-01 00:00:00+00') TO ('2024-03-02 00:00:00+00')",
	}, partitionsOf(t, utcConn(t, db), "auditpgx_entry"))
}

// Entries written while their period had no partition wait in the
// DEFAULT one, and move to the partition when it is made, ids and all.
func TestMaintainMovesFromDefault(t *testing.T) {
	ctx := context.Background()
	db := partitioned(t, store.Monthly, store.MaintainOptions{Now: utc("2024-01-15T00:00:00Z"), Future: -1})
	_, err := db.ExecContext(ctx, `INSERT INTO auditpgx_entry (created, operation, table_name, object_id, tx_id, context)
		SELECT timestamptz '2024-01-31 00:00:00+00' + i * interval '1 day', 'create', 'users', i::text, 1, '{"k": 1}'
		FROM generate_series(0, 70) i`)
	require.NoError(t, err)
	count := func(table string) (n int) {
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM `+table).Scan(&n))
		return n
	}
	require.Equal(t, 70, count("auditpgx_entry_default"))
	before, err := store.List(ctx, db, store.Query{Limit: 1000})
	require.NoError(t, err)

	res, err := store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{Now: utc("2024-02-10T00:00:00Z"), Future: 1})
	require.NoError(t, err)
	require.Equal(t, []string{"auditpgx_entry_p2024_02", "auditpgx_entry_p2024_03"}, res.Created)
	require.Equal(t, int64(29+31), res.Moved, "February's and March's; April's stay")
	require.Equal(t, 29, count("auditpgx_entry_p2024_02"))
	require.Equal(t, 31, count("auditpgx_entry_p2024_03"))
	require.Equal(t, 10, count("auditpgx_entry_default"))
	after, err := store.List(ctx, db, store.Query{Limit: 1000})
	require.NoError(t, err)
	require.Equal(t, before, after)
}

// A period that another partition overlaps gets none; its name is
// reported.
func TestMaintainOverlapping(t *testing.T) {
	ctx := context.Background()
	db := partitioned(t, store.Monthly, store.MaintainOptions{Now: utc("2024-01-15T00:00:00Z"), Future: -1})
	_, err := db.ExecContext(ctx, `CREATE TABLE legacy (LIKE auditpgx_entry INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
		ALTER TABLE auditpgx_entry ATTACH PARTITION legacy FOR VALUES FROM ('2024-02-01') TO ('2024-03-10')`)
	require.NoError(t, err)
	res, err := store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{Now: utc("2024-01-15T00:00:00Z"), Future: 3})
	require.NoError(t, err)
	require.Equal(t, []string{"auditpgx_entry_p2024_04"}, res.Created)
	require.Equal(t, []string{"auditpgx_entry_p2024_02", "auditpgx_entry_p2024_03"}, res.Overlapping)
}

func TestMaintainPlainTable(t *testing.T) {
	ctx := context.Background()
	db, schema := openSchema(t)
	_, err := db.ExecContext(ctx, store.Schema)
	require.NoError(t, err)
	before := describe(t, db, schema, "auditpgx_entry")
	res, err := store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{})
	require.NoError(t, err)
	require.Equal(t, store.MaintainResult{}, res)
	require.Equal(t, before, describe(t, db, schema, "auditpgx_entry"))
}

func TestMaintainErrors(t *testing.T) {
	ctx := context.Background()
	db := partitioned(t, store.Monthly, store.MaintainOptions{Now: utc("2024-01-15T00:00:00Z"), Future: -1})
	_, err := store.Maintain(ctx, db, "missing", store.MaintainOptions{})
	require.ErrorContains(t, err, `maintain "missing": the entry table does not exist`)
	_, err = store.Maintain(ctx, db, "a.b.c", store.MaintainOptions{})
	require.ErrorIs(t, err, store.ErrInvalidTableName)
	_, err = store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{LockTimeout: -time.Second})
	require.ErrorContains(t, err, "LockTimeout")

	// A table in the way of a partition's name.
	_, err = db.ExecContext(ctx, `CREATE TABLE auditpgx_entry_p2024_02 (x int)`)
	require.NoError(t, err)
	_, err = store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{Now: utc("2024-01-15T00:00:00Z"), Future: 1})
	require.ErrorContains(t, err, `"auditpgx_entry_p2024_02" exists and is not a partition`)
	require.Len(t, partitionsOf(t, db, "auditpgx_entry"), 2, "nothing made")

	_, err = db.ExecContext(ctx, `COMMENT ON TABLE auditpgx_entry IS 'ours'`)
	require.NoError(t, err)
	_, err = store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{})
	require.ErrorContains(t, err, "does not record its period")
}

// Two processes at once: each partition is made once, and both succeed.
func TestMaintainConcurrent(t *testing.T) {
	ctx := context.Background()
	db := partitioned(t, store.Daily, store.MaintainOptions{Now: utc("2024-01-15T00:00:00Z"), Future: -1})
	var wg sync.WaitGroup
	results := make([]store.MaintainResult, 4)
	errs := make([]error, len(results))
	for i := range results {
		wg.Go(func() {
			results[i], errs[i] = store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{Now: utc("2024-01-15T00:00:00Z"), Future: 5})
		})
	}
	wg.Wait()
	made := 0
	for i := range results {
		require.NoError(t, errs[i])
		made += len(results[i].Created)
	}
	require.Equal(t, 5, made)
	require.Len(t, partitionsOf(t, db, "auditpgx_entry"), 7)
}

// Maintain waits for a reader of the DEFAULT partition, and entries are
// written to the current partition, and read from it, meanwhile; with
// LockTimeout it gives up instead, having made nothing.
func TestMaintainLocks(t *testing.T) {
	ctx := context.Background()
	db := partitioned(t, store.Monthly, store.MaintainOptions{Future: 1})
	reader, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer reader.Rollback() //nolint:errcheck // ended below
	var n int
	require.NoError(t, reader.QueryRowContext(ctx, `SELECT count(*) FROM auditpgx_entry`).Scan(&n))

	_, err = store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{Future: 2, LockTimeout: 200 * time.Millisecond})
	require.ErrorContains(t, err, "lock timeout")
	require.Len(t, partitionsOf(t, db, "auditpgx_entry"), 3, "nothing made")

	done := make(chan error, 1)
	go func() {
		_, err := store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{Future: 2})
		done <- err
	}()
	var now time.Time
	require.NoError(t, db.QueryRow(`SELECT statement_timestamp()`).Scan(&now))
	month := time.Date(now.UTC().Year(), now.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)
	time.Sleep(300 * time.Millisecond) // Maintain waits for the reader
	writeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for i := range 3 {
		_, err := db.ExecContext(writeCtx, `INSERT INTO auditpgx_entry (operation, table_name, object_id, tx_id) VALUES ('create', 'users', $1, 1)`, fmt.Sprint(i))
		require.NoError(t, err, "a write while Maintain waits")
		var other []store.Entry
		other, err = store.List(writeCtx, db, store.Query{Since: month, Until: month.AddDate(0, 2, 0)})
		require.NoError(t, err, "a time-bounded read while Maintain waits")
		require.Len(t, other, i+1)
	}
	select {
	case err := <-done:
		t.Fatalf("Maintain did not wait for the reader: %v", err)
	default:
	}
	require.NoError(t, reader.Rollback())
	require.NoError(t, <-done)
	require.Len(t, partitionsOf(t, db, "auditpgx_entry"), 4)
}

// The partitions go to the entry table's schema, though the search_path
// would create a table elsewhere.
func TestMaintainSearchPath(t *testing.T) {
	ctx := context.Background()
	db, schema := openSchema(t)
	db.SetMaxOpenConns(1)
	first := schema + "_first"
	_, err := db.ExecContext(ctx, `CREATE SCHEMA `+first)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := db.ExecContext(context.Background(), `DROP SCHEMA `+first+` CASCADE`)
		require.NoError(t, err)
	})
	require.NoError(t, store.Migrate(ctx, db, schema+".auditpgx_entry", store.Partitioned(store.Monthly)))
	_, err = db.ExecContext(ctx, `SET search_path = `+first+`, `+schema)
	require.NoError(t, err)
	res, err := store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{Future: 5})
	require.NoError(t, err)
	require.Len(t, res.Created, 2)
	require.NotContains(t, res.Created[0], ".", "named as the entry table is")
	var elsewhere int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM pg_class WHERE relnamespace = $1::regnamespace`, first).Scan(&elsewhere))
	require.Zero(t, elsewhere)
	require.Len(t, partitionsOf(t, db, schema+".auditpgx_entry"), 7)

	// Prune names them as the entry table is named, too, and removes none
	// of another schema.
	_, err = store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{Now: utc("2024-01-01T00:00:00Z"), Future: -1})
	require.NoError(t, err)
	pr, err := store.Prune(ctx, db, "auditpgx_entry", store.PruneOptions{Before: utc("2024-02-01T00:00:00Z")})
	require.NoError(t, err)
	require.Equal(t, "auditpgx_entry_p2024_01", pr.Steps[0].Partition)
}
