package store_test

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/store"
)

// Walking pages while other sessions insert entries visits every entry
// that existed when the walk began exactly once, never repeats one, keeps
// the order, and visits an entry inserted meanwhile at most once.
func TestListPageWithConcurrentInserts(t *testing.T) {
	ctx := context.Background()
	db, _ := openSchema(t)
	db.SetMaxOpenConns(8)
	require.NoError(t, store.Migrate(ctx, db, "auditpgx_entry"))
	_, err := db.ExecContext(ctx, `INSERT INTO auditpgx_entry (operation, table_name, object_id, tx_id)
		SELECT 'create', CASE WHEN i % 4 = 0 THEN 'other' ELSE 'paged' END, i::text, i
		FROM generate_series(1, 600) i`)
	require.NoError(t, err)

	for _, descending := range []bool{false, true} {
		name := "ascending"
		if descending {
			name = "descending"
		}
		t.Run(name, func(t *testing.T) {
			before := pagedIDs(t, db)

			// Writers insert into both tables, one row or several per
			// transaction, during the first pages of the walk (an ascending
			// walk would otherwise chase them for ever).
			var (
				stop     atomic.Bool
				wg       sync.WaitGroup
				inserted atomic.Int64
			)
			for w := range 4 {
				wg.Go(func() {
					for i := 0; !stop.Load(); i++ {
						_, err := db.ExecContext(ctx, `INSERT INTO auditpgx_entry (operation, table_name, object_id, tx_id)
							SELECT 'create', CASE WHEN g % 3 = 0 THEN 'other' ELSE 'paged' END, 'w' || $1::int || '-' || g, txid_current()
							FROM generate_series(1, $2::int) g`, w, 1+i%3)
						if err != nil {
							t.Error(err)
							return
						}
						inserted.Add(1)
						time.Sleep(time.Millisecond)
					}
				})
			}

			q := store.Query{TableName: "paged", Limit: 7, Descending: descending}
			var walked []int64
			pages := 0
			for {
				p, err := store.ListPage(ctx, db, q)
				require.NoError(t, err)
				for _, e := range p.Entries {
					walked = append(walked, e.ID)
				}
				pages++
				if p.Next == "" {
					break
				}
				q.Cursor = p.Next
				if pages == 60 {
					stop.Store(true)
				}
				if pages%5 == 0 {
					time.Sleep(5 * time.Millisecond) // let the writers interleave
				}
			}
			stop.Store(true)
			wg.Wait()
			require.Positive(t, inserted.Load())
			after := pagedIDs(t, db)

			seen := map[int64]bool{}
			for i, id := range walked {
				require.False(t, seen[id], "entry %d visited twice", id)
				seen[id] = true
				if i > 0 {
					if descending {
						require.Less(t, id, walked[i-1], "order at %d", i)
					} else {
						require.Greater(t, id, walked[i-1], "order at %d", i)
					}
				}
				require.True(t, after[id], "entry %d is not a paged entry", id)
			}
			for id := range before {
				require.True(t, seen[id], "entry %d, there before the walk, was skipped", id)
			}
			t.Logf("%d pages, %d entries before, %d visited, %d after", pages, len(before), len(walked), len(after))
		})
	}
}

func pagedIDs(t *testing.T, db *sql.DB) map[int64]bool {
	t.Helper()
	rows, err := db.Query(`SELECT id FROM auditpgx_entry WHERE table_name = 'paged'`)
	require.NoError(t, err)
	defer rows.Close()
	ids := map[int64]bool{}
	for rows.Next() {
		var id int64
		require.NoError(t, rows.Scan(&id))
		ids[id] = true
	}
	require.NoError(t, rows.Err())
	return ids
}
