package store_test

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/store"
)

// sealSchema opens a fresh schema with an entry table and a seal table.
func sealSchema(t testing.TB) *sql.DB {
	t.Helper()
	ctx := context.Background()
	dsn, _ := pgtest.NewSchema(t)
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, store.Migrate(ctx, db, "auditpgx_entry"))
	require.NoError(t, store.MigrateSeal(ctx, db, ""))
	return db
}

// execer is what writeEntries needs of a *sql.DB or *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// writeEntries inserts n entries straight into the entry table, with
// NULLs, empty strings, jsonb and contexts among their values.
func writeEntries(t testing.TB, db execer, n int) {
	t.Helper()
	_, err := db.ExecContext(context.Background(), `INSERT INTO auditpgx_entry
		(created, created_by, operation, table_name, object_id, changes, tx_id, statement_fingerprint,
		 related_table_name, related_object_id, related_field_name, context)
		SELECT statement_timestamp() + i * interval '1 microsecond',
			CASE i % 3 WHEN 0 THEN NULL WHEN 1 THEN '' ELSE 'user' || i END,
			CASE WHEN i % 5 = 0 THEN 'associate' ELSE 'update' END, 'items', i::text,
			CASE WHEN i % 5 <> 0 THEN jsonb_build_object('changed_fields', jsonb_build_object('n', jsonb_build_array(i, i + 1), 'name', 'x' || i)) END,
			pg_current_xact_id()::text::bigint, 'fp',
			CASE WHEN i % 5 = 0 THEN 'tags' END, CASE WHEN i % 5 = 0 THEN (i * 7)::text END, CASE WHEN i % 5 = 0 THEN 'items' END,
			CASE WHEN i % 2 = 0 THEN jsonb_build_object('reason', 'r' || i, 'trace', 'abc') END
		FROM generate_series(1, $1) AS i`, n)
	require.NoError(t, err)
}

// rollBack draws n ids in a transaction that rolls back: a gap of n ids.
func rollBack(t testing.TB, db *sql.DB, n int) {
	t.Helper()
	tx, err := db.Begin()
	require.NoError(t, err)
	writeEntries(t, tx, n)
	require.NoError(t, tx.Rollback())
}

func countEntries(t testing.TB, db *sql.DB, where string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM auditpgx_entry WHERE `+where, args...).Scan(&n))
	return n
}

// TestSeal: checkpoints of at most 1000 entries and one for the rest, the
// gaps left by rolled-back transactions, a second run with nothing new
// that writes nothing, and a run that extends the chain.
func TestSeal(t *testing.T) {
	ctx := context.Background()
	db := sealSchema(t)

	r, err := store.Seal(ctx, db, store.SealOptions{})
	require.NoError(t, err)
	require.Equal(t, store.SealResult{}, r, "an empty entry table: nothing to do")
	v, err := store.Verify(ctx, db, store.VerifyOptions{})
	require.NoError(t, err)
	require.Equal(t, store.VerifyResult{}, v)

	writeEntries(t, db, 600)  // 1–600
	rollBack(t, db, 3)        // 601–603
	writeEntries(t, db, 1900) // 604–2503
	r, err = store.Seal(ctx, db, store.SealOptions{})
	require.NoError(t, err)
	require.Equal(t, int64(2503), r.Horizon)
	require.Equal(t, 3, r.Checkpoints)
	require.Equal(t, int64(2500), r.Entries)
	last := r.Last
	require.Equal(t, int64(3), last.Seq)
	require.Equal(t, int64(2004), last.FirstID)
	require.Equal(t, int64(2503), last.LastID)
	require.Equal(t, 500, last.Count)
	require.Empty(t, last.Gaps)
	require.Len(t, last.Digests, 500*8)
	require.Nil(t, last.Signature)

	var firstID, lastID int64
	var gaps string
	require.NoError(t, db.QueryRow(`SELECT first_id, last_id, gaps::text FROM auditpgx_seal WHERE seq = 1`).Scan(&firstID, &lastID, &gaps))
	require.Equal(t, []any{int64(1), int64(1003), "{601,602,603}"}, []any{firstID, lastID, gaps})

	// Nothing new: no checkpoint, the same last one.
	again, err := store.Seal(ctx, db, store.SealOptions{})
	require.NoError(t, err)
	require.Equal(t, 0, again.Checkpoints)
	require.Equal(t, last.Seq, again.Last.Seq)
	require.Equal(t, last.Hash, again.Last.Hash)
	var n int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM auditpgx_seal`).Scan(&n))
	require.Equal(t, 3, n)

	v, err = store.Verify(ctx, db, store.VerifyOptions{})
	require.NoError(t, err)
	require.Equal(t, 3, v.Checkpoints)
	require.Equal(t, int64(2500), v.Entries)
	require.Equal(t, [2]int64{1, 2503}, [2]int64{v.FirstID, v.LastID})
	require.Equal(t, last.Hash, v.Last.Hash)
	require.Zero(t, v.Unsealed)
	require.False(t, v.Signed)

	// Rolled back ids before the next entries belong to the next
	// checkpoint; a run of more than 1000 lies between checkpoints.
	rollBack(t, db, 2)     // 2504–2505
	writeEntries(t, db, 5) // 2506–2510
	rollBack(t, db, 1500)  // 2511–4010
	writeEntries(t, db, 5) // 4011–4015
	r, err = store.Seal(ctx, db, store.SealOptions{})
	require.NoError(t, err)
	require.Equal(t, 2, r.Checkpoints)
	require.NoError(t, db.QueryRow(`SELECT first_id, last_id, gaps::text FROM auditpgx_seal WHERE seq = 4`).Scan(&firstID, &lastID, &gaps))
	require.Equal(t, []any{int64(2504), int64(2510), "{2504,2505}"}, []any{firstID, lastID, gaps})
	require.NoError(t, db.QueryRow(`SELECT first_id, last_id, gaps::text FROM auditpgx_seal WHERE seq = 5`).Scan(&firstID, &lastID, &gaps))
	require.Equal(t, []any{int64(4011), int64(4015), "{}"}, []any{firstID, lastID, gaps})

	writeEntries(t, db, 7)
	v, err = store.Verify(ctx, db, store.VerifyOptions{})
	require.NoError(t, err)
	require.Equal(t, 5, v.Checkpoints)
	require.Equal(t, int64(2510), v.Entries)
	require.Equal(t, int64(7), v.Unsealed, "entries after the last checkpoint are unsealed, not an error")
}

// TestVerifyNamesTheChange changes the tables as their owner would, each
// case in a transaction rolled back afterwards, and requires Verify to
// name the first change.
func TestVerifyNamesTheChange(t *testing.T) {
	ctx := context.Background()
	db := sealSchema(t)
	writeEntries(t, db, 1500) // 1–1500: checkpoint 1 is 1–1000
	rollBack(t, db, 4)        // 1501–1504, gaps of checkpoint 2
	writeEntries(t, db, 600)  // 1505–2104: checkpoint 2 is 1001–1504+496=2000
	rollBack(t, db, 1200)     // 2105–3304: between checkpoints 3 and 4
	writeEntries(t, db, 10)   // 3305–3314
	r, err := store.Seal(ctx, db, store.SealOptions{})
	require.NoError(t, err)
	require.Equal(t, 4, r.Checkpoints)
	var c2 struct{ first, last int64 }
	require.NoError(t, db.QueryRow(`SELECT first_id, last_id FROM auditpgx_seal WHERE seq = 2`).Scan(&c2.first, &c2.last))
	require.Equal(t, int64(1001), c2.first)
	require.Equal(t, int64(2004), c2.last)

	for _, tc := range []struct {
		name  string
		sql   string
		want  *store.VerifyError // Reason not compared when empty
		clean bool               // a change that changes nothing sealed
	}{
		{"edit a value", `UPDATE auditpgx_entry SET changes = jsonb_set(changes, '{changed_fields,n,1}', '999') WHERE id = 1234`,
			&store.VerifyError{Kind: store.EntryEdited, EntryID: 1234, Checkpoint: 2}, false},
		{"edit the time by a microsecond", `UPDATE auditpgx_entry SET created = created + interval '1 microsecond' WHERE id = 17`,
			&store.VerifyError{Kind: store.EntryEdited, EntryID: 17, Checkpoint: 1}, false},
		{"NULL for an empty actor", `UPDATE auditpgx_entry SET created_by = NULL WHERE id = 1 AND created_by = ''`,
			&store.VerifyError{Kind: store.EntryEdited, EntryID: 1, Checkpoint: 1}, false},
		{"edit the context", `UPDATE auditpgx_entry SET context = '{"reason": "other"}' WHERE id = 3310`,
			&store.VerifyError{Kind: store.EntryEdited, EntryID: 3310, Checkpoint: 4}, false},
		{"the same JSON written otherwise", `UPDATE auditpgx_entry SET changes = (SELECT jsonb_object_agg(k, v) FROM jsonb_each(changes) AS e(k, v)),
			context = ('{ "trace" : "abc",  "reason":"r' || id || '"}')::jsonb WHERE id = 10`, nil, true},
		{"delete an entry", `DELETE FROM auditpgx_entry WHERE id = 1600`,
			&store.VerifyError{Kind: store.EntryDeleted, EntryID: 1600, Checkpoint: 2}, false},
		{"delete the last entry of a checkpoint", `DELETE FROM auditpgx_entry WHERE id = 1000`,
			&store.VerifyError{Kind: store.EntryDeleted, EntryID: 1000, Checkpoint: 1}, false},
		{"delete two, the first is named", `DELETE FROM auditpgx_entry WHERE id IN (2000, 40)`,
			&store.VerifyError{Kind: store.EntryDeleted, EntryID: 40, Checkpoint: 1}, false},
		{"insert into a gap", insertWithID(1503),
			&store.VerifyError{Kind: store.EntryInserted, EntryID: 1503, Checkpoint: 2}, false},
		{"insert between checkpoints", insertWithID(2500),
			&store.VerifyError{Kind: store.EntryInserted, EntryID: 2500, Checkpoint: 4}, false},
		{"insert below the first", insertWithID(0),
			&store.VerifyError{Kind: store.EntryInserted, EntryID: 0, Checkpoint: 1}, false},
		{"insert after the last", insertWithID(5000), nil, true},
		{"alter a checkpoint's hash", `UPDATE auditpgx_seal SET hash = sha256(hash) WHERE seq = 2`,
			&store.VerifyError{Kind: store.CheckpointAltered, Checkpoint: 2,
				Reason: "has a hash that its entries do not give, although each matches its digest: the hash was altered"}, false},
		// The second entry's digest, its first byte inverted: an overwrite
		// with a fixed byte would change nothing when the byte was that
		// one already (1 run in 256).
		{"alter a checkpoint's digests", `UPDATE auditpgx_seal SET digests = set_byte(digests, 8, get_byte(digests, 8) # 255) WHERE seq = 1`,
			&store.VerifyError{Kind: store.CheckpointAltered, Checkpoint: 1,
				Reason: "lists digests or gaps that its entries, which still give its hash, do not match: the list was altered"}, false},
		{"alter a checkpoint's gaps", `UPDATE auditpgx_seal SET gaps = '{1502,1503,1504}', count = count + 1 WHERE seq = 2`,
			&store.VerifyError{Kind: store.CheckpointAltered, Checkpoint: 2,
				Reason: "holds 8000 bytes of digests for 1001 entries"}, false},
		{"forge the first checkpoint's start", `UPDATE auditpgx_seal SET prev_hash = sha256(prev_hash) WHERE seq = 1`,
			&store.VerifyError{Kind: store.CheckpointAltered, Checkpoint: 1, Reason: "is the first but does not start from the zero hash"}, false},
		{"delete a checkpoint", `DELETE FROM auditpgx_seal WHERE seq = 2`,
			&store.VerifyError{Kind: store.CheckpointAltered, Checkpoint: 2, Reason: "is missing (the checkpoint after 1 is 3)"}, false},
		{"delete the first checkpoint", `DELETE FROM auditpgx_seal WHERE seq = 1`,
			&store.VerifyError{Kind: store.CheckpointAltered, Checkpoint: 2,
				Reason: "is the first: checkpoints before it are missing (verify from an entry id, or from the last checkpoint of an archive)"}, false},
		{"rewrite a checkpoint's chain link", `UPDATE auditpgx_seal SET prev_hash = sha256(prev_hash) WHERE seq = 3`,
			&store.VerifyError{Kind: store.CheckpointAltered, Checkpoint: 3,
				Reason: "does not chain to checkpoint 2: its previous hash is not that checkpoint's hash"}, false},
		{"an entry edited before a later checkpoint is altered", `UPDATE auditpgx_entry SET object_id = 'x' WHERE id = 5;
			UPDATE auditpgx_seal SET hash = sha256(hash) WHERE seq = 3`,
			&store.VerifyError{Kind: store.EntryEdited, EntryID: 5, Checkpoint: 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tx, err := db.BeginTx(ctx, nil)
			require.NoError(t, err)
			defer tx.Rollback()
			_, err = tx.ExecContext(ctx, tc.sql)
			require.NoError(t, err)
			got, err := store.Verify(ctx, tx, store.VerifyOptions{})
			if tc.clean {
				require.NoError(t, err)
				require.Equal(t, 4, got.Checkpoints)
				return
			}
			var ve *store.VerifyError
			require.ErrorAs(t, err, &ve)
			require.ErrorIs(t, err, store.ErrTampered)
			if tc.want.Reason == "" {
				ve.Reason = ""
			}
			require.Equal(t, tc.want, ve, "%v", err)
			require.Less(t, got.Checkpoints, 4, "what was verified before the change")
		})
	}

	t.Run("messages", func(t *testing.T) {
		for sql, want := range map[string]string{
			`UPDATE auditpgx_entry SET changes = NULL WHERE id = 1234`: "auditpgx: entries or checkpoints changed since sealing: entry 1234 was changed since checkpoint 2 sealed it",
			`DELETE FROM auditpgx_entry WHERE id = 7`:                  "auditpgx: entries or checkpoints changed since sealing: entry 7 was deleted since checkpoint 1 sealed it",
			insertWithID(1502): "auditpgx: entries or checkpoints changed since sealing: entry 1502 was inserted after sealing: " +
				"checkpoint 2 lists its id among the ids no entry had",
			insertWithID(3000): "auditpgx: entries or checkpoints changed since sealing: entry 3000 was inserted after sealing: " +
				"no checkpoint covers it, and no entry had its id when the entries around it were sealed",
		} {
			func() {
				tx, err := db.BeginTx(ctx, nil)
				require.NoError(t, err)
				defer tx.Rollback()
				_, err = tx.ExecContext(ctx, sql)
				require.NoError(t, err)
				_, err = store.Verify(ctx, tx, store.VerifyOptions{})
				require.EqualError(t, err, want)
			}()
		}
	})
}

func insertWithID(id int64) string {
	return `INSERT INTO auditpgx_entry (id, operation, table_name, object_id, tx_id) OVERRIDING SYSTEM VALUE
		VALUES (` + strconv.FormatInt(id, 10) + `, 'create', 'items', 'forged', 1)`
}

// TestSealSigned: signed checkpoints verify with the public key, not with
// another; unsigned ones fail when a key is given; a signed checkpoint
// altered fails on its signature first.
func TestSealSigned(t *testing.T) {
	ctx := context.Background()
	db := sealSchema(t)
	pub, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	other, _, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)

	writeEntries(t, db, 1200)
	r, err := store.Seal(ctx, db, store.SealOptions{Signer: priv})
	require.NoError(t, err)
	require.Equal(t, 2, r.Checkpoints)
	require.True(t, ed25519.Verify(pub, r.Last.SignedMessage(), r.Last.Signature))

	v, err := store.Verify(ctx, db, store.VerifyOptions{PublicKey: pub})
	require.NoError(t, err)
	require.True(t, v.Signed)
	require.Equal(t, int64(1200), v.Entries)

	_, err = store.Verify(ctx, db, store.VerifyOptions{PublicKey: other})
	var ve *store.VerifyError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, store.CheckpointAltered, ve.Kind)
	require.Equal(t, int64(1), ve.Checkpoint)
	require.Contains(t, ve.Reason, "signature that the public key does not verify")

	// Altered and re-chained by someone without the key: the signature
	// gives it away before the entries are read.
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, `UPDATE auditpgx_entry SET object_id = 'x' WHERE id = 1100;
		UPDATE auditpgx_seal SET sealed_at = sealed_at + interval '1 second' WHERE seq = 2`)
	require.NoError(t, err)
	_, err = store.Verify(ctx, tx, store.VerifyOptions{PublicKey: pub})
	require.ErrorAs(t, err, &ve)
	require.Equal(t, store.CheckpointAltered, ve.Kind)
	require.Equal(t, int64(2), ve.Checkpoint)
	_, err = store.Verify(ctx, tx, store.VerifyOptions{})
	require.ErrorAs(t, err, &ve)
	require.Equal(t, store.EntryEdited, ve.Kind, "without the key, the entry")
	require.NoError(t, tx.Rollback())

	// More entries sealed without the key: those checkpoints are unsigned.
	writeEntries(t, db, 3)
	_, err = store.Seal(ctx, db, store.SealOptions{})
	require.NoError(t, err)
	v, err = store.Verify(ctx, db, store.VerifyOptions{PublicKey: pub})
	require.ErrorAs(t, err, &ve)
	require.Equal(t, &store.VerifyError{Kind: store.CheckpointAltered, Checkpoint: 3, Reason: "is not signed"}, ve)
	require.Equal(t, 2, v.Checkpoints, "the signed ones verified")
	require.True(t, v.Signed)

	_, err = store.Seal(ctx, db, store.SealOptions{Signer: priv[:10]})
	require.ErrorContains(t, err, "not an Ed25519 private key")
}

// TestSealWaitsForWriters: an entry not yet committed below a committed
// one holds the seal back until its transaction ends; a writer that does
// not end in time makes Seal give up without sealing.
func TestSealWaitsForWriters(t *testing.T) {
	ctx := context.Background()
	db := sealSchema(t)

	slow, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	writeEntries(t, slow, 2) // ids 1–2, uncommitted
	writeEntries(t, db, 3)   // ids 3–5, committed

	// A reader of the entry table is not waited for.
	reader, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer reader.Rollback()
	var n int
	require.NoError(t, reader.QueryRowContext(ctx, `SELECT count(*) FROM auditpgx_entry`).Scan(&n))

	type result struct {
		r   store.SealResult
		err error
	}
	done := make(chan result)
	go func() {
		r, err := store.Seal(ctx, db, store.SealOptions{Wait: time.Minute})
		done <- result{r, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("Seal returned while a writer of ids below the horizon was running: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
	require.NoError(t, slow.Commit())
	got := <-done
	require.NoError(t, got.err)
	require.Equal(t, int64(5), got.r.Entries, "the slow writer's entries are sealed with the rest")
	require.Empty(t, got.r.Last.Gaps)

	// Still running after Wait: nothing sealed, the pid named.
	stuck, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	var pid int
	require.NoError(t, stuck.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid))
	writeEntries(t, stuck, 1) // id 6
	writeEntries(t, db, 1)    // id 7
	_, err = store.Seal(ctx, db, store.SealOptions{Wait: 200 * time.Millisecond})
	require.ErrorIs(t, err, store.ErrSealWait)
	require.ErrorContains(t, err, fmt.Sprintf("(server pids %d; 0 is a prepared transaction)", pid))
	var seals int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM auditpgx_seal`).Scan(&seals))
	require.Equal(t, 1, seals)

	// Rolled back: its id is a gap.
	require.NoError(t, stuck.Rollback())
	r, err := store.Seal(ctx, db, store.SealOptions{})
	require.NoError(t, err)
	require.Equal(t, []int64{6}, r.Last.Gaps)
	require.Equal(t, int64(7), r.Last.LastID)

	// Cancelled while waiting.
	stuck, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer stuck.Rollback()
	writeEntries(t, stuck, 1)
	writeEntries(t, db, 1)
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = store.Seal(cctx, db, store.SealOptions{})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// TestSealConcurrentWriters seals repeatedly, from two goroutines, while
// 8 goroutines write entries, a third of their transactions rolled back
// (some after a savepoint), holding each transaction open a little so
// that uncommitted ids lie below committed ones. Every checkpoint then
// verifies, and the sealed entries are exactly the committed ones.
func TestSealConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	db := sealSchema(t)
	db.SetMaxOpenConns(20)

	const writers, txs = 8, 60
	var committed atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range txs {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					t.Error(err)
					return
				}
				n := 1 + rng.IntN(5)
				writeEntries(t, tx, n)
				time.Sleep(time.Duration(rng.IntN(4)) * time.Millisecond)
				if i%4 == 1 {
					_, err := tx.ExecContext(ctx, `SAVEPOINT s`)
					require.NoError(t, err)
					writeEntries(t, tx, 2)
					_, err = tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT s`)
					require.NoError(t, err)
				}
				if rng.IntN(3) == 0 {
					require.NoError(t, tx.Rollback())
					continue
				}
				require.NoError(t, tx.Commit())
				committed.Add(int64(n))
			}
		}()
	}
	stop := make(chan struct{})
	var seals atomic.Int64
	var sealers sync.WaitGroup
	for range 2 {
		sealers.Add(1)
		go func() {
			defer sealers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := store.Seal(ctx, db, store.SealOptions{Wait: 30 * time.Second})
				if err != nil {
					// Two sealers: one may find the other's checkpoint.
					require.ErrorIs(t, err, store.ErrSealConflict)
					require.ErrorContains(t, err, "were written meanwhile by another seal run")
					continue
				}
				seals.Add(int64(r.Checkpoints))
				time.Sleep(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	close(stop)
	sealers.Wait()
	require.Positive(t, seals.Load())

	r, err := store.Seal(ctx, db, store.SealOptions{})
	require.NoError(t, err)
	v, err := store.Verify(ctx, db, store.VerifyOptions{})
	require.NoError(t, err, "no false alarm")
	require.Zero(t, v.Unsealed)
	require.Equal(t, committed.Load(), countEntries(t, db, "true"))
	require.Equal(t, countEntries(t, db, "id <= $1", r.Horizon), v.Entries, "sealed = committed up to the horizon")
	require.Equal(t, committed.Load(), v.Entries)
	var sealed int64
	require.NoError(t, db.QueryRow(`SELECT sum(count) FROM auditpgx_seal`).Scan(&sealed))
	require.Equal(t, committed.Load(), sealed)
	t.Logf("%d entries committed, %d checkpoints (%d written while writing)", committed.Load(), v.Checkpoints, seals.Load())
}

// TestSealFrom continues a chain from a checkpoint kept elsewhere, and
// verifies from it or from an entry id.
func TestSealFrom(t *testing.T) {
	ctx := context.Background()
	db := sealSchema(t)
	writeEntries(t, db, 2500)
	from := &store.Checkpoint{Seq: 41, LastID: 400}
	from.Hash[0] = 0xab
	r, err := store.Seal(ctx, db, store.SealOptions{From: from})
	require.NoError(t, err)
	require.Equal(t, int64(2100), r.Entries)
	var seq, first int64
	var prev []byte
	require.NoError(t, db.QueryRow(`SELECT seq, first_id, prev_hash FROM auditpgx_seal ORDER BY seq LIMIT 1`).Scan(&seq, &first, &prev))
	require.Equal(t, []any{int64(42), int64(401), from.Hash[:]}, []any{seq, first, prev})

	v, err := store.Verify(ctx, db, store.VerifyOptions{From: from})
	require.NoError(t, err)
	require.Equal(t, int64(2100), v.Entries)
	_, err = store.Verify(ctx, db, store.VerifyOptions{})
	var ve *store.VerifyError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, int64(42), ve.Checkpoint)
	wrong := *from
	wrong.Hash[0] = 0xac
	_, err = store.Verify(ctx, db, store.VerifyOptions{From: &wrong})
	require.ErrorAs(t, err, &ve)
	require.Contains(t, ve.Reason, "does not chain to checkpoint 41")

	// Pruned: the entries of the first checkpoint are gone.
	_, err = db.ExecContext(ctx, `DELETE FROM auditpgx_entry WHERE id <= 1400`)
	require.NoError(t, err)
	_, err = store.Verify(ctx, db, store.VerifyOptions{From: from})
	require.ErrorAs(t, err, &ve)
	require.Equal(t, &store.VerifyError{Kind: store.EntryDeleted, EntryID: 401, Checkpoint: 42,
		Reason: "was deleted since checkpoint 42 sealed it"}, ve)
	v, err = store.Verify(ctx, db, store.VerifyOptions{FromID: 1401})
	require.NoError(t, err)
	require.Equal(t, [3]int64{2, 1401, 2500}, [3]int64{int64(v.Checkpoints), v.FirstID, v.LastID})
	v, err = store.Verify(ctx, db, store.VerifyOptions{FromID: 3000})
	require.NoError(t, err)
	require.Zero(t, v.Checkpoints)
	writeEntries(t, db, 2)
	v, err = store.Verify(ctx, db, store.VerifyOptions{FromID: 3000})
	require.NoError(t, err)
	require.Equal(t, int64(2), v.Unsealed)
}

// TestSealRefuses what would make its horizon unsafe or its reads stale.
func TestSealRefuses(t *testing.T) {
	ctx := context.Background()
	db := sealSchema(t)
	writeEntries(t, db, 3)

	_, err := db.ExecContext(ctx, `ALTER SEQUENCE auditpgx_entry_id_seq CACHE 20`)
	require.NoError(t, err)
	_, err = store.Seal(ctx, db, store.SealOptions{})
	require.ErrorContains(t, err, `caches 20 values per session`)
	require.ErrorContains(t, err, `ALTER SEQUENCE auditpgx_entry_id_seq CACHE 1`)
	_, err = db.ExecContext(ctx, `ALTER SEQUENCE auditpgx_entry_id_seq CACHE 1`)
	require.NoError(t, err)

	// A sequence the column's default draws from, which it does not own.
	_, err = db.ExecContext(ctx, `CREATE SEQUENCE other_seq CACHE 5;
		CREATE TABLE other (LIKE auditpgx_entry INCLUDING DEFAULTS);
		ALTER TABLE other ALTER COLUMN id SET DEFAULT nextval('other_seq')`)
	require.NoError(t, err)
	_, err = store.Seal(ctx, db, store.SealOptions{EntryTable: "other"})
	require.ErrorContains(t, err, `the id sequence other_seq of "other" caches 5 values per session`)
	_, err = db.ExecContext(ctx, `ALTER SEQUENCE other_seq CACHE 1;
		INSERT INTO other (id, operation, table_name, object_id, tx_id) VALUES (1, 'create', 't', '1', 1), (1, 'create', 't', '2', 1)`)
	require.NoError(t, err)
	_, err = store.Seal(ctx, db, store.SealOptions{EntryTable: "other"})
	require.EqualError(t, err, `auditpgx: seal: "other" has two entries with id 1; sealing needs ids to be unique`)

	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
	require.NoError(t, err)
	_, err = store.Seal(ctx, tx, store.SealOptions{})
	require.ErrorContains(t, err, "in a REPEATABLE READ transaction")
	require.NoError(t, tx.Rollback())

	// A READ COMMITTED transaction will do, and sees its own entries.
	tx, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	writeEntries(t, tx, 2)
	r, err := store.Seal(ctx, tx, store.SealOptions{})
	require.NoError(t, err)
	require.Equal(t, int64(5), r.Entries)
	require.NoError(t, tx.Rollback())

	_, err = store.Seal(ctx, db, store.SealOptions{EntryTable: "missing"})
	require.EqualError(t, err, `auditpgx: seal: entry table "missing" does not exist`)
	_, err = store.Seal(ctx, db, store.SealOptions{SealTable: "missing"})
	require.ErrorContains(t, err, "no seal table: create it with MigrateSeal")
	_, err = store.Verify(ctx, db, store.VerifyOptions{SealTable: "missing"})
	require.ErrorContains(t, err, "no seal table")
	_, err = store.Seal(ctx, db, store.SealOptions{SealTable: "a.b.c"})
	require.EqualError(t, err, `auditpgx: invalid seal table name "a.b.c": has 3 dot-separated parts, want at most 2 (schema.table)`)

	_, err = db.ExecContext(ctx, `CREATE TABLE plain (id bigint PRIMARY KEY)`)
	require.NoError(t, err)
	_, err = store.Seal(ctx, db, store.SealOptions{EntryTable: "plain"})
	require.ErrorContains(t, err, "does not take its values from a sequence")

	// MigrateSeal again: nothing to do.
	require.NoError(t, store.MigrateSeal(ctx, db, ""))
	ddl, err := store.SealDDL("audit.seal")
	require.NoError(t, err)
	require.Contains(t, ddl, `CREATE TABLE IF NOT EXISTS "audit"."seal" (`)
	require.Contains(t, ddl, `CREATE UNIQUE INDEX IF NOT EXISTS "seal_last_id_idx" ON "audit"."seal" (last_id);`)
}

// TestSealPartitioned: with a partitioned entry table, a writer holds its
// lock on the parent and on the partition it writes; Seal waits for it
// all the same.
func TestSealPartitioned(t *testing.T) {
	ctx := context.Background()
	db := sealSchema(t)
	_, err := db.ExecContext(ctx, `CREATE TABLE pentry (LIKE auditpgx_entry INCLUDING DEFAULTS INCLUDING IDENTITY) PARTITION BY RANGE (id);
		ALTER TABLE pentry ADD PRIMARY KEY (id);
		CREATE TABLE pentry_1 PARTITION OF pentry FOR VALUES FROM (MINVALUE) TO (3);
		CREATE TABLE pentry_2 PARTITION OF pentry FOR VALUES FROM (3) TO (MAXVALUE)`)
	require.NoError(t, err)
	insert := `INSERT INTO pentry (operation, table_name, object_id, tx_id) VALUES ('create', 'items', '1', 1)`
	slow, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer slow.Rollback()
	_, err = slow.ExecContext(ctx, insert) // id 1, in pentry_1
	require.NoError(t, err)
	for range 3 {
		_, err = db.ExecContext(ctx, insert) // ids 2–4
		require.NoError(t, err)
	}
	done := make(chan error)
	go func() {
		_, err := store.Seal(ctx, db, store.SealOptions{EntryTable: "pentry"})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Seal returned while a writer of ids below the horizon was running: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	require.NoError(t, slow.Commit())
	require.NoError(t, <-done)
	v, err := store.Verify(ctx, db, store.VerifyOptions{EntryTable: "pentry"})
	require.NoError(t, err)
	require.Equal(t, int64(4), v.Entries)
}

// TestVerifyExpect: a checkpoint recorded outside the database catches
// what a valid chain cannot show by itself: its newest checkpoints
// deleted, or the whole chain sealed anew after an edit.
func TestVerifyExpect(t *testing.T) {
	ctx := context.Background()
	db := sealSchema(t)
	writeEntries(t, db, 2500)
	r, err := store.Seal(ctx, db, store.SealOptions{})
	require.NoError(t, err)
	require.Equal(t, int64(3), r.Last.Seq)
	expect := []store.CheckpointHash{{Seq: 2}, {Seq: 3, Hash: r.Last.Hash}}
	var h []byte
	require.NoError(t, db.QueryRow(`SELECT hash FROM auditpgx_seal WHERE seq = 2`).Scan(&h))
	copy(expect[0].Hash[:], h)
	v, err := store.Verify(ctx, db, store.VerifyOptions{Expect: expect})
	require.NoError(t, err)
	require.Equal(t, int64(2500), v.Entries)

	_, err = db.ExecContext(ctx, `DELETE FROM auditpgx_seal WHERE seq = 3`)
	require.NoError(t, err)
	_, err = store.Verify(ctx, db, store.VerifyOptions{})
	require.NoError(t, err, "a shorter chain is valid by itself")
	_, err = store.Verify(ctx, db, store.VerifyOptions{Expect: expect})
	require.Equal(t, &store.VerifyError{Kind: store.CheckpointAltered, Checkpoint: 3,
		Reason: "is missing: the chain ends at checkpoint 2, but this one was recorded outside the database: checkpoints were deleted"}, err)

	// Sealed anew after an edit: valid by itself, not the chain recorded.
	_, err = db.ExecContext(ctx, `DELETE FROM auditpgx_seal; UPDATE auditpgx_entry SET object_id = 'x' WHERE id = 1500`)
	require.NoError(t, err)
	_, err = store.Seal(ctx, db, store.SealOptions{})
	require.NoError(t, err)
	_, err = store.Verify(ctx, db, store.VerifyOptions{})
	require.NoError(t, err)
	_, err = store.Verify(ctx, db, store.VerifyOptions{Expect: expect})
	require.Equal(t, &store.VerifyError{Kind: store.CheckpointAltered, Checkpoint: 2,
		Reason: "has a hash other than the one recorded outside the database: the chain was rewritten"}, err)
	// From an id after the recorded checkpoints: they are not checked.
	_, err = store.Verify(ctx, db, store.VerifyOptions{FromID: 2001, Expect: expect[:1]})
	require.NoError(t, err)
}
