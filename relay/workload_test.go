package relay

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditpgx/auditpgx"
)

// workloadOps is how many audited row writes TestRunSIGKILLWorkload makes.
const workloadOps = 100_000

// A concurrent workload through the driver with the WAL sink (inserts,
// updates and deletes, a tenth of its transactions rolled back) while a
// relay process is killed 20 times and restarted: at the end the entry
// table holds the entries of the committed transactions, each once, and
// each transaction's entries together in commit order.
func TestRunSIGKILLWorkload(t *testing.T) {
	e := newEnv(t, false)
	db := openAcctWAL(t, e)

	cc, err := json.Marshal(childConfig{Source: e.cfg.Source, Slot: e.cfg.Slot, BatchEntries: 500,
		FlushInterval: 10 * time.Millisecond, CommitPause: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}

	const writers = 4
	var (
		ops, value atomic.Int64
		mu         sync.Mutex
		want       []string // op|object_id|v of each committed entry
		rolledBack int
		wg         sync.WaitGroup
		werr       = make(chan error, writers)
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := writeWorkload(db, w, workloadOps, &ops, &value, &mu, &want, &rolledBack); err != nil {
				werr <- err
			}
		}()
	}
	t0 := time.Now()
	inWindow := killRelays(t, e.cfg, cc, 20, 300*time.Millisecond, 1200*time.Millisecond)
	killed := time.Since(t0)
	wg.Wait()
	t.Logf("the kills took %s, the workload %s", killed.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	close(werr)
	for err := range werr {
		t.Fatalf("writer: %v", err)
	}
	t.Logf("%d operations, %d entries committed, %d transactions rolled back; %d of 20 kills left a destination commit unconfirmed",
		ops.Load(), len(want), rolledBack, inWindow)

	run := start(t, e.cfg)
	waitConfirmed(t, e.cfg, currentLSN(t, e.src), run)
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	rows, err := e.dst.Query(context.Background(), `SELECT operation || '|' || object_id || '|' ||
	coalesce(changes->'added_fields'->>'v', changes->'changed_fields'->'v'->>1, changes->'removed_fields'->>'v') FROM auditpgx_entry`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if len(got) != len(want) || !slices.Equal(got, want) {
		missing, extra := diffSorted(want, got)
		t.Fatalf("%d entries relayed, %d committed: %d missing (first %v), %d extra or duplicated (first %v)",
			len(got), len(want), len(missing), first(missing), len(extra), first(extra))
	}
	var split int
	if err := e.dst.QueryRow(context.Background(), `SELECT count(*) FROM (SELECT tx_id FROM auditpgx_entry GROUP BY tx_id
	HAVING max(id) - min(id) + 1 <> count(*)) s`).Scan(&split); err != nil {
		t.Fatal(err)
	}
	if split != 0 {
		t.Errorf("%d transactions' entries are not together", split)
	}
}

// writeWorkload runs transactions of one to three writes on the writer's
// own rows until limit writes are made in all, rolling back one in
// ten, and appends the entries of those that commit to want.
func writeWorkload(db *sql.DB, w int, limit int64, ops, value *atomic.Int64, mu *sync.Mutex, want *[]string, rolledBack *int) error {
	ctx := context.Background()
	live := map[int64]int64{} // id -> v, committed
	nextID := int64(w) << 40
	for ops.Load() < limit {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		var entries []string
		changed := map[int64]int64{}
		deleted := map[int64]bool{}
		for range 1 + rand.IntN(3) {
			ops.Add(1)
			v := value.Add(1)
			var id int64
			for k := range live {
				if !deleted[k] {
					id = k
					break
				}
			}
			switch r := rand.IntN(10); {
			case id == 0 || r < 5:
				nextID++
				id = nextID
				if _, err := tx.ExecContext(ctx, `INSERT INTO acct (id, v) VALUES ($1, $2)`, id, v); err != nil {
					return err
				}
				entries = append(entries, fmt.Sprintf("create|%d|%d", id, v))
				changed[id] = v
			case r < 8:
				if _, err := tx.ExecContext(ctx, `UPDATE acct SET v = $2 WHERE id = $1`, id, v); err != nil {
					return err
				}
				entries = append(entries, fmt.Sprintf("update|%d|%d", id, v))
				changed[id] = v
			default:
				old := live[id]
				if c, ok := changed[id]; ok {
					old = c
				}
				if _, err := tx.ExecContext(ctx, `DELETE FROM acct WHERE id = $1`, id); err != nil {
					return err
				}
				entries = append(entries, fmt.Sprintf("delete|%d|%d", id, old))
				deleted[id] = true
			}
		}
		if rand.IntN(10) == 0 {
			if err := tx.Rollback(); err != nil {
				return err
			}
			mu.Lock()
			*rolledBack++
			mu.Unlock()
			continue
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		for id, v := range changed {
			live[id] = v
		}
		for id := range deleted {
			delete(live, id)
		}
		mu.Lock()
		*want = append(*want, entries...)
		mu.Unlock()
	}
	return nil
}

// diffSorted returns what is in a and not in b, and in b and not in a,
// counting repeats.
func diffSorted(a, b []string) (onlyA, onlyB []string) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i] < b[j]:
			onlyA = append(onlyA, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			onlyB = append(onlyB, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return onlyA, onlyB
}

func first(s []string) []string { return s[:min(len(s), 5)] }

// openAcctWAL creates the table acct in e's source, registered with a WAL
// sink on e's slot, and opens the auditpgx driver on it.
func openAcctWAL(t *testing.T, e *env) *sql.DB {
	t.Helper()
	if _, err := e.src.Exec(context.Background(), `CREATE TABLE acct (id bigint PRIMARY KEY, v bigint NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{Sink: auditpgx.WALSink{Slot: e.cfg.Slot}})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.RegisterTable("acct"); err != nil {
		t.Fatal(err)
	}
	connector, err := auditpgx.NewConnector(e.cfg.Source, auditpgx.WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	t.Cleanup(func() { db.Close() })
	return db
}
