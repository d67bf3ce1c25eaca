package auditpgx_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/store"
)

const baselineSetup = `
CREATE TABLE accounts (id int PRIMARY KEY, name text, secret text, seen timestamptz, n int NOT NULL DEFAULT 0);
INSERT INTO accounts SELECT i, 'acct' || i, 's' || i, now(), 0 FROM generate_series(1, 25) i;
CREATE TABLE stock (sku int, region text, qty int, PRIMARY KEY (region, sku));
INSERT INTO stock VALUES (1, 'eu', 5), (2, 'eu', 6), (1, 'us', 7);
CREATE TABLE links (a int, b int, PRIMARY KEY (a, b));`

func registerBaseline(r *auditpgx.Registry) error {
	return errors.Join(
		r.RegisterTable("accounts", auditpgx.Exclude("seen"), auditpgx.Redact("secret")),
		r.RegisterTable("stock"),
		r.RegisterM2M("links", auditpgx.M2M{Field: "bs",
			Owner: auditpgx.Ref{Table: "accounts", Column: "a"}, Related: auditpgx.Ref{Table: "accounts", Column: "b"}}),
	)
}

// accountKeys are the key columns of accounts, for Replay.
var accountKeys = []string{"id"}

// tableState is what the table holds, as entries would record it.
func tableState(t testing.TB, e *env, table string, keys []string, cols diff.Columns) map[string]diff.Image {
	t.Helper()
	s, err := store.Snapshot(e.ctx, e.plain, table, keys, cols)
	require.NoError(t, err)
	return s
}

var accountCols = diff.Columns{Names: []string{"id", "name", "secret", "n"}, Redacted: map[string]bool{"secret": true}}

// TestBaseline: a table with rows from before auditing gets one snapshot
// entry per row, masked as any entry is, and a marker; its history then
// replays; a second run skips it, a forced one records it again.
func TestBaseline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, baselineSetup, registerBaseline)
	ctx := auditpgx.WithActor(e.ctx, "adopter")

	// Before the baseline, an update of a row that existed before auditing
	// began leaves its state unknown: AsOf says so, with what it knows.
	_, err := e.db.ExecContext(e.ctx, `UPDATE accounts SET name = 'renamed' WHERE id = 3`)
	require.NoError(t, err)
	_, err = store.AsOf(e.ctx, e.plain, "accounts", "3", time.Now())
	var inc *store.IncompleteError
	require.ErrorAs(t, err, &inc)
	require.ErrorIs(t, err, store.ErrIncomplete)
	require.ErrorIs(t, err, store.ErrInconsistent)
	require.Equal(t, store.OpUpdate, inc.Gap.Operation)
	require.JSONEq(t, `{"name": "renamed"}`, mustJSON(inc.Known))
	_, err = store.ReplayTable(e.ctx, e.plain, "", "accounts", accountKeys)
	require.ErrorIs(t, err, store.ErrInconsistent)

	var seen []auditpgx.BaselineProgress
	results, err := auditpgx.Baseline(ctx, e.db, auditpgx.WithRegistry(e.reg), auditpgx.BaselineBatchSize(10),
		auditpgx.OnBaselineProgress(func(p auditpgx.BaselineProgress) { seen = append(seen, p) }))
	require.NoError(t, err)
	require.Len(t, results, 2, "the join table is left out")
	require.Equal(t, "accounts", results[0].Table)
	require.EqualValues(t, 25, results[0].Rows)
	require.Equal(t, "stock", results[1].Table)
	require.EqualValues(t, 3, results[1].Rows)
	// accounts: the count, three batches of 10, 10 and 5 rows, the commit.
	var accountRows []int64
	for _, p := range seen {
		if p.Table == "accounts" {
			accountRows = append(accountRows, p.Rows)
		}
	}
	require.Equal(t, []int64{0, 10, 20, 25, 25}, accountRows)
	require.True(t, seen[len(seen)-1].Done)

	// The entries: masked as the driver masks, created at the snapshot.
	var (
		op, oid, changes, by string
		created              time.Time
	)
	require.NoError(t, e.plain.QueryRow(`SELECT operation, object_id, changes::text, created, created_by FROM auditpgx_entry
		WHERE table_name = 'accounts' AND object_id = '7' AND operation = 'snapshot'`).Scan(&op, &oid, &changes, &created, &by))
	require.JSONEq(t, `{"added_fields": {"id": 7, "name": "acct7", "secret": "$encrypted$", "n": 0},
		"removed_fields": {}, "changed_fields": {}}`, changes)
	require.Equal(t, "adopter", by)
	require.WithinDuration(t, results[0].At, created, 0)
	var stockID string
	require.NoError(t, e.plain.QueryRow(`SELECT string_agg(object_id, ' ' ORDER BY id) FROM auditpgx_entry
		WHERE table_name = 'stock' AND operation = 'snapshot'`).Scan(&stockID))
	require.Equal(t, `["eu",1] ["eu",2] ["us",1] `, stockID, "composite keys as entries write them, in key order, then the marker")
	marker, err := store.Get(e.ctx, e.plain, results[0].Marker)
	require.NoError(t, err)
	require.True(t, marker.IsBaselineMarker())
	require.Nil(t, marker.Changes)
	require.EqualValues(t, 25, marker.Baseline.Rows)
	require.Regexp(t, `^\d+:\d+:[\d,]*$`, marker.Baseline.Snapshot)

	// The history replays and agrees with the table.
	got, err := store.ReplayTable(e.ctx, e.plain, "", "accounts", accountKeys)
	require.NoError(t, err)
	require.NoError(t, store.EqualStates(got, tableState(t, e, "accounts", accountKeys, accountCols)))
	img, err := store.AsOf(e.ctx, e.plain, "accounts", "3", time.Now())
	require.NoError(t, err)
	require.JSONEq(t, `{"id": 3, "name": "renamed", "secret": "$encrypted$", "n": 0}`, mustJSON(img))
	h, err := store.History(e.ctx, e.plain, "accounts", "3")
	require.NoError(t, err)
	var ops []store.Operation
	for _, en := range h {
		ops = append(ops, en.Operation)
	}
	require.Equal(t, []store.Operation{store.OpUpdate, store.OpSnapshot, store.OpSnapshot}, ops, "the update, the snapshot entry, the marker")
	// Before the snapshot, AsOf still says what it knows.
	_, err = store.AsOf(e.ctx, e.plain, "accounts", "3", results[0].At.Add(-time.Microsecond))
	require.ErrorIs(t, err, store.ErrIncomplete)

	// Again: skipped, nothing written.
	n := e.countEntries()
	again, err := auditpgx.Baseline(ctx, e.db, auditpgx.WithRegistry(e.reg))
	require.NoError(t, err)
	require.Len(t, again, 2)
	for i, r := range again {
		require.True(t, r.Skipped, r.Table)
		require.Equal(t, results[i].Marker, r.Marker)
	}
	require.Equal(t, n, e.countEntries())

	// Forced, for one table: a second snapshot, which replaces the first.
	_, err = e.db.ExecContext(e.ctx, `UPDATE accounts SET n = n + 1 WHERE id <= 5`)
	require.NoError(t, err)
	_, err = e.plain.ExecContext(e.ctx, `DELETE FROM accounts WHERE id = 25`) // unseen by auditpgx
	require.NoError(t, err)
	_, err = store.AsOf(e.ctx, e.plain, "accounts", "25", time.Now())
	require.NoError(t, err, "the delete was not seen")
	forced, err := auditpgx.Baseline(ctx, e.db, auditpgx.WithRegistry(e.reg), auditpgx.BaselineTables("accounts"), auditpgx.BaselineForce())
	require.NoError(t, err)
	require.Len(t, forced, 1)
	require.EqualValues(t, 24, forced[0].Rows)
	got, err = store.ReplayTable(e.ctx, e.plain, "", "accounts", accountKeys)
	require.NoError(t, err)
	require.NoError(t, store.EqualStates(got, tableState(t, e, "accounts", accountKeys, accountCols)))
	_, err = store.AsOf(e.ctx, e.plain, "accounts", "25", time.Now())
	require.ErrorIs(t, err, store.ErrNotFound, "the second baseline did not find it")
	img, err = store.AsOf(e.ctx, e.plain, "accounts", "25", forced[0].At.Add(-time.Microsecond))
	require.NoError(t, err, "it existed before")
	require.JSONEq(t, `{"id": 25, "name": "acct25", "secret": "$encrypted$", "n": 0}`, mustJSON(img))

	// Naming a join table or an unregistered one is an error.
	_, err = auditpgx.Baseline(ctx, e.db, auditpgx.WithRegistry(e.reg), auditpgx.BaselineTables("links"))
	require.ErrorContains(t, err, "join table")
	_, err = auditpgx.Baseline(ctx, e.db, auditpgx.WithRegistry(e.reg), auditpgx.BaselineTables("nope"))
	require.ErrorContains(t, err, `table "nope" is not registered`)
}

// An entry table created before snapshot entries refuses them: Baseline
// says how to widen its CHECK, and writes nothing.
func TestBaselineOldCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t, baselineSetup, registerBaseline)
	_, err := e.plain.ExecContext(e.ctx, `ALTER TABLE auditpgx_entry DROP CONSTRAINT auditpgx_entry_operation_check,
		ADD CONSTRAINT auditpgx_entry_operation_check CHECK (operation IN ('create', 'update', 'delete', 'associate', 'disassociate', 'truncate'))`)
	require.NoError(t, err)
	_, err = auditpgx.Baseline(e.ctx, e.db, auditpgx.WithRegistry(e.reg))
	require.ErrorIs(t, err, auditpgx.ErrBaselineCheck)
	require.ErrorContains(t, err, "auditpgx_entry_operation_check")
	require.Zero(t, e.countEntries())
}

// An interrupted baseline leaves nothing of the table it was in; run
// again, it skips the tables done and does that one.
func TestBaselineResumes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, baselineSetup, registerBaseline)
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	_, err := auditpgx.Baseline(ctx, e.db, auditpgx.WithRegistry(e.reg), auditpgx.BaselineBatchSize(10),
		auditpgx.BaselineTables("stock", "accounts"),
		auditpgx.OnBaselineProgress(func(p auditpgx.BaselineProgress) {
			if p.Table == "accounts" && p.Rows == 20 {
				cancel()
			}
		}))
	require.ErrorIs(t, err, context.Canceled)
	var tables []string
	rows, err := e.plain.Query(`SELECT DISTINCT table_name FROM auditpgx_entry ORDER BY 1`)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		tables = append(tables, s)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"stock"}, tables, "stock committed, accounts rolled back")

	results, err := auditpgx.Baseline(e.ctx, e.db, auditpgx.WithRegistry(e.reg), auditpgx.BaselineTables("stock", "accounts"))
	require.NoError(t, err)
	require.True(t, results[0].Skipped)
	require.False(t, results[1].Skipped)
	require.EqualValues(t, 25, results[1].Rows)
	got, err := store.ReplayTable(e.ctx, e.plain, "", "accounts", accountKeys)
	require.NoError(t, err)
	require.NoError(t, store.EqualStates(got, tableState(t, e, "accounts", accountKeys, accountCols)))
}

// A partitioned table is baselined through its parent, its rows under
// the parent's name, keyed as the driver keys them.
func TestBaselinePartitioned(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `CREATE TABLE events (region text, id int, body text, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
		CREATE TABLE events_eu PARTITION OF events FOR VALUES IN ('eu');
		CREATE TABLE events_us PARTITION OF events FOR VALUES IN ('us');
		INSERT INTO events SELECT CASE WHEN i % 2 = 0 THEN 'eu' ELSE 'us' END, i, 'b' || i FROM generate_series(1, 30) i`,
		func(r *auditpgx.Registry) error { return r.RegisterTable("events") })
	results, err := auditpgx.Baseline(e.ctx, e.db, auditpgx.WithRegistry(e.reg), auditpgx.BaselineBatchSize(7))
	require.NoError(t, err)
	require.EqualValues(t, 30, results[0].Rows)
	_, err = e.db.ExecContext(e.ctx, `UPDATE events SET body = 'x' WHERE id % 3 = 0`)
	require.NoError(t, err)
	keys := []string{"region", "id"}
	got, err := store.ReplayTable(e.ctx, e.plain, "", "events", keys)
	require.NoError(t, err)
	cols := diff.Columns{Names: []string{"region", "id", "body"}}
	require.NoError(t, store.EqualStates(got, tableState(t, e, "events", keys, cols)))
	img, err := store.AsOf(e.ctx, e.plain, "events", `["us",3]`, time.Now())
	require.NoError(t, err)
	require.JSONEq(t, `{"region": "us", "id": 3, "body": "x"}`, mustJSON(img))
}

// load is a workload of audited writes on items, run by several writers
// until stopped: increments, relabels, inserts, deletes, key changes, and
// transactions of two statements (some rolled back).
type load struct {
	e       *env
	rows    int64
	nextID  atomic.Int64
	stop    atomic.Bool
	wg      sync.WaitGroup
	entries atomic.Int64 // rows changed by committed statements: one entry each
	writes  atomic.Int64 // committed statements
	errs    chan error
}

func startLoad(e *env, rows int64, writers int) *load {
	l := &load{e: e, rows: rows, errs: make(chan error, writers)}
	l.nextID.Store(rows + 1000)
	for w := range writers {
		l.wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			ctx := auditpgx.WithActor(e.ctx, "writer"+strconv.Itoa(w))
			for i := 0; !l.stop.Load(); i++ {
				if err := l.step(ctx, rng, w, i); err != nil {
					l.errs <- err
					return
				}
			}
		})
	}
	return l
}

func (l *load) randomID(rng *rand.Rand) int64 { return 1 + rng.Int64N(l.rows) }

func (l *load) step(ctx context.Context, rng *rand.Rand, w, i int) error {
	exec := func(q string, args ...any) error {
		res, err := l.e.db.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		l.entries.Add(n)
		l.writes.Add(1)
		return err
	}
	switch p := rng.IntN(100); {
	case p < 45:
		return exec(`UPDATE items SET n = n + 1 WHERE id = $1`, l.randomID(rng))
	case p < 60:
		return exec(`UPDATE items SET label = $2, secret = $2 WHERE id = $1`, l.randomID(rng), fmt.Sprintf("w%d-%d", w, i))
	case p < 70:
		return exec(`UPDATE items SET n = n + 1 WHERE id BETWEEN $1 AND $1 + 4`, l.randomID(rng))
	case p < 80:
		id := l.nextID.Add(1)
		return exec(`INSERT INTO items (id, grp, n, label, secret) VALUES ($1, $2, 0, 'new', 'pw')`, id, id%100)
	case p < 88:
		return exec(`DELETE FROM items WHERE id = $1`, l.randomID(rng))
	case p < 92:
		return exec(`UPDATE items SET id = $2 WHERE id = $1`, l.randomID(rng), l.nextID.Add(1))
	default:
		// Two statements in one transaction, held open a moment; one in
		// four rolled back.
		tx, err := l.e.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck
		var n int64
		for _, id := range []int64{l.randomID(rng), l.randomID(rng)} {
			res, err := tx.ExecContext(ctx, `UPDATE items SET n = n + 10 WHERE id = $1`, id)
			if err != nil {
				return err
			}
			k, _ := res.RowsAffected()
			n += k
			time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
		}
		if rng.IntN(4) == 0 {
			return tx.Rollback()
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		l.entries.Add(n)
		l.writes.Add(2)
		return nil
	}
}

func (l *load) finish(t testing.TB) {
	t.Helper()
	l.stop.Store(true)
	l.wg.Wait()
	close(l.errs)
	for err := range l.errs {
		require.NoError(t, err)
	}
}

var itemCols = diff.Columns{Names: []string{"id", "grp", "n", "label", "secret"}, Redacted: map[string]bool{"secret": true}}

func itemsEnv(t testing.TB, rows int64) *env {
	t.Helper()
	e := newEnv(t, `CREATE TABLE items (id bigint PRIMARY KEY, grp int NOT NULL, n int NOT NULL, label text, secret text, note text)`,
		func(r *auditpgx.Registry) error {
			return r.RegisterTable("items", auditpgx.Redact("secret"), auditpgx.Exclude("note"))
		})
	_, err := e.plain.ExecContext(e.ctx, `INSERT INTO items SELECT i, i % 100, 0, 'l' || i, 'pw' || i, 'x'
		FROM generate_series(1, $1::bigint) i`, rows)
	require.NoError(t, err)
	_, err = e.plain.ExecContext(e.ctx, `ANALYZE items`)
	require.NoError(t, err)
	return e
}

// checkItems checks that the entries account for every row of items, and
// each write exactly once: the table replays strictly (an old value that
// a write doubled or lost would not match), every object's AsOf now is
// its row, and there is one entry per row that committed writes changed.
func checkItems(t testing.TB, e *env, l *load, before int64) {
	t.Helper()
	want := tableState(t, e, "items", []string{"id"}, itemCols)
	got, err := store.ReplayTable(e.ctx, e.plain, "", "items", []string{"id"})
	require.NoError(t, err)
	require.NoError(t, store.EqualStates(got, want), "replay (a) and table (b)")

	var writes int64
	require.NoError(t, e.plain.QueryRow(`SELECT count(*) FROM auditpgx_entry WHERE operation <> 'snapshot'`).Scan(&writes))
	require.Equal(t, before+l.entries.Load(), writes, "one entry per row written")
	var doubled int
	require.NoError(t, e.plain.QueryRow(`SELECT count(*) FROM (SELECT object_id FROM auditpgx_entry WHERE operation = 'snapshot'
		GROUP BY tx_id, object_id HAVING count(*) > 1) d`).Scan(&doubled))
	require.Zero(t, doubled, "one snapshot entry per row and baseline")
}

// TestBaselineConcurrentWrites: writes through the driver run while a
// table of 20,000 rows is baselined, among them a transaction open across
// the snapshot, and writes to rows whose snapshot entries come later;
// afterwards each is in the history once, in its place.
func TestBaselineConcurrentWrites(t *testing.T) {
	t.Parallel()
	const rows = 20000
	e := itemsEnv(t, rows)
	ctx := e.ctx

	// Writes before the baseline, to rows that existed before auditing.
	_, err := e.db.ExecContext(ctx, `UPDATE items SET n = n + 1 WHERE id % 1000 = 0`)
	require.NoError(t, err)
	before := int64(rows / 1000)

	// A transaction open across the snapshot: its entry has a lower id
	// than every snapshot entry, but it commits after the snapshot.
	open, err := e.db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer open.Rollback() //nolint:errcheck
	_, err = open.ExecContext(ctx, `UPDATE items SET n = n + 1000, label = 'open' WHERE id = 1`)
	require.NoError(t, err)
	before++

	l := startLoad(e, rows, 4)
	var (
		inBatches atomic.Bool
		hookErr   error
	)
	results, err := auditpgx.Baseline(ctx, e.db, auditpgx.WithRegistry(e.reg), auditpgx.BaselineBatchSize(500),
		auditpgx.OnBaselineProgress(func(p auditpgx.BaselineProgress) {
			switch {
			case p.Rows == 0 && !p.Done:
				// The snapshot is taken.
				hookErr = errors.Join(hookErr, open.Commit())
			case p.Rows == 500 && inBatches.CompareAndSwap(false, true):
				// Rows whose snapshot entries are still to come: their
				// entries get lower ids than their snapshot entries.
				for _, q := range []string{
					`UPDATE items SET label = 'late' WHERE id = ` + strconv.Itoa(rows),
					`DELETE FROM items WHERE id = ` + strconv.Itoa(rows-1),
					`UPDATE items SET id = 5000000 WHERE id = ` + strconv.Itoa(rows-2),
					`INSERT INTO items (id, grp, n) VALUES (5000001, 1, 1)`,
				} {
					_, err := e.db.ExecContext(ctx, q)
					hookErr = errors.Join(hookErr, err)
				}
				before += 4
			}
		}))
	require.NoError(t, err)
	require.NoError(t, hookErr)
	time.Sleep(50 * time.Millisecond) // writes after the baseline too
	l.finish(t)
	require.Len(t, results, 1)
	t.Logf("baseline of %d rows in %s; %d writes (%d rows) ran meanwhile", results[0].Rows, results[0].Duration,
		l.writes.Load(), l.entries.Load())
	require.Positive(t, l.writes.Load())

	checkItems(t, e, l, before)

	// The deterministic cases, object by object.
	asOf := func(id string) string {
		t.Helper()
		img, err := store.AsOf(ctx, e.plain, "items", id, time.Now())
		require.NoError(t, err, "items %s", id)
		return mustJSON(img)
	}
	row := func(id string) string {
		t.Helper()
		s := tableState(t, e, "items", []string{"id"}, itemCols)
		return mustJSON(s[id])
	}
	for _, id := range []string{"1", strconv.Itoa(rows), "5000000", "5000001"} {
		require.JSONEq(t, row(id), asOf(id), "items %s", id)
	}
	require.Contains(t, asOf("1"), `"label":"open"`)
	_, err = store.AsOf(ctx, e.plain, "items", strconv.Itoa(rows-1), time.Now())
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = store.AsOf(ctx, e.plain, "items", strconv.Itoa(rows-2), time.Now())
	require.ErrorIs(t, err, store.ErrNotFound)

	// History: the open transaction's update comes after the snapshot
	// entry and the marker, though its id is lower.
	h, err := store.History(ctx, e.plain, "items", "1")
	require.NoError(t, err)
	var ops []string
	for _, en := range h {
		ops = append(ops, string(en.Operation))
	}
	require.GreaterOrEqual(t, len(ops), 3)
	require.Equal(t, []string{"snapshot", "snapshot", "update"}, ops[:3], "%v", ops)
	require.Less(t, h[2].ID, h[0].ID)
	require.Equal(t, results[0].Marker, h[1].ID)

	// A sample of objects, AsOf now against the table.
	state := tableState(t, e, "items", []string{"id"}, itemCols)
	checked := 0
	for id, img := range state {
		if checked == 200 {
			break
		}
		got, err := store.AsOf(ctx, e.plain, "items", id, time.Now())
		require.NoError(t, err, "items %s", id)
		require.NoError(t, store.EqualStates(map[string]diff.Image{id: got}, map[string]diff.Image{id: img}))
		checked++
	}
}

// BenchmarkBaseline baselines items, $AUDITPGX_BASELINE_ROWS rows (default
// 20,000), while $AUDITPGX_BASELINE_WRITERS writers (default 4) change it
// through the driver, in the same process, then checks
// the history as TestBaselineConcurrentWrites does (untimed). It reports
// rows/s and the Go heap: peak-heap-MB is the highest HeapAlloc sampled
// every millisecond during Baseline, alloc-MB what Baseline allocated in
// all. The rows never pass through the client, so both stay flat whatever
// the table's size:
//
//	AUDITPGX_BASELINE_ROWS=1000000 go test -run '^$' -bench BenchmarkBaseline -benchtime=1x .
func BenchmarkBaseline(b *testing.B) {
	rows := int64(20000)
	if s := os.Getenv("AUDITPGX_BASELINE_ROWS"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		require.NoError(b, err)
		rows = n
	}
	writers := 4
	if s := os.Getenv("AUDITPGX_BASELINE_WRITERS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(b, err)
		writers = n
	}
	e := itemsEnv(b, rows)
	var before int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		l := startLoad(e, rows, writers)
		time.Sleep(20 * time.Millisecond)
		runtime.GC()
		var start runtime.MemStats
		runtime.ReadMemStats(&start)
		peak := start.HeapAlloc
		done := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			var m runtime.MemStats
			for {
				select {
				case <-done:
					return
				case <-time.After(time.Millisecond):
				}
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapAlloc)
			}
		}()
		b.StartTimer()
		t0 := time.Now()
		results, err := auditpgx.Baseline(e.ctx, e.db, auditpgx.WithRegistry(e.reg), auditpgx.BaselineForce())
		elapsed := time.Since(t0)
		b.StopTimer()
		close(done)
		<-sampled
		var end runtime.MemStats
		runtime.ReadMemStats(&end)
		require.NoError(b, err)
		l.finish(b)
		b.ReportMetric(float64(results[0].Rows)/elapsed.Seconds(), "rows/s")
		b.ReportMetric(float64(peak-start.HeapAlloc)/(1<<20), "peak-heap-MB")
		b.ReportMetric(float64(end.TotalAlloc-start.TotalAlloc)/(1<<20), "alloc-MB")
		b.Logf("%d rows in %s (%.0f rows/s); heap %.1f MB before, peak %.1f MB, %.2f MB allocated; %d writes (%d rows) meanwhile",
			results[0].Rows, elapsed, float64(results[0].Rows)/elapsed.Seconds(), float64(start.HeapAlloc)/(1<<20),
			float64(peak)/(1<<20), float64(end.TotalAlloc-start.TotalAlloc)/(1<<20), l.writes.Load(), l.entries.Load())
		var size string
		require.NoError(b, e.plain.QueryRow(`SELECT pg_size_pretty(pg_total_relation_size('auditpgx_entry'))`).Scan(&size))
		b.Logf("entry table with its indexes: %s", size)
		before += l.entries.Load()
		l.entries.Store(before)
		checkItems(b, e, l, 0)
		b.StartTimer()
	}
}
