package relay

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// Entries of committed transactions arrive in commit order; those of
// rolled-back transactions and savepoints, of other prefixes, and
// non-transactional messages do not.
func TestRunCommittedOnlyInCommitOrder(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	run := start(t, e.cfg)

	emitTx(t, e.src, "t1a", "t1b")

	// Begun A before B, committed B before A.
	a, err := e.src.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	emit(t, a, payloadOf("a1"))
	other := connect(t, e.cfg.Source)
	b, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	emit(t, b, payloadOf("b1"))
	emit(t, a, payloadOf("a2", "a3"))
	emit(t, b, payloadOf("b2"))
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	emit(t, a, payloadOf("a4"))
	if err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	r, err := e.src.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	emit(t, r, payloadOf("rolled_back"))
	if err := r.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	sp, err := e.src.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	emit(t, sp, payloadOf("s1"))
	if _, err := sp.Exec(ctx, "SAVEPOINT x"); err != nil {
		t.Fatal(err)
	}
	emit(t, sp, payloadOf("savepoint_rolled_back"))
	if _, err := sp.Exec(ctx, "ROLLBACK TO SAVEPOINT x"); err != nil {
		t.Fatal(err)
	}
	emit(t, sp, payloadOf("s2"))
	if _, err := sp.Exec(ctx, "SELECT pg_logical_emit_message(true, 'other', $1::text)", payloadOf("other_prefix")); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Exec(ctx, "SELECT pg_logical_emit_message(false, 'auditpgx', $1::text)", payloadOf("non_transactional")); err != nil {
		t.Fatal(err)
	}
	if err := sp.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	waitConfirmed(t, e.cfg, currentLSN(t, e.src), run)
	if err := run.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	sameIDs(t, objectIDs(t, e.dst, "auditpgx_entry"), []string{"t1a", "t1b", "b1", "b2", "a1", "a2", "a3", "a4", "s1", "s2"})
}

// Every column arrives as the payload gave it.
func TestRunColumns(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	full := entryJSON("full")
	full["created"] = "2026-12-06T09:55:08.123456+05:30"
	full["related_table_name"], full["related_object_id"], full["related_field_name"] = "public.tags", "9", "tags"
	full["context"] = map[string]any{"request": "r-1"}
	full["tx_id"] = int64(1) << 40
	sparse := entryJSON("sparse")
	for _, k := range []string{"created_by", "changes", "statement_fingerprint"} {
		sparse[k] = nil
	}
	content, err := json.Marshal(map[string]any{"v": 1, "entries": []any{full, sparse}})
	if err != nil {
		t.Fatal(err)
	}
	emit(t, e.src, string(content))
	run := start(t, e.cfg)
	waitConfirmed(t, e.cfg, currentLSN(t, e.src), run)

	rows, err := e.dst.Query(ctx, `SELECT to_jsonb(e) - 'id' FROM auditpgx_entry e ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	for rows.Next() {
		var m map[string]any
		if err := rows.Scan(&m); err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d entries, want 2", len(got))
	}
	full["created"] = "2026-12-06T04:25:08.123456+00:00" // the session's TimeZone is UTC
	for i, want := range []map[string]any{full, sparse} {
		wb, _ := json.Marshal(want)
		gb, _ := json.Marshal(got[i])
		var w, g any
		json.Unmarshal(wb, &w)
		json.Unmarshal(gb, &g)
		if string(mustJSON(w)) != string(mustJSON(g)) {
			t.Errorf("entry %d:\ngot  %s\nwant %s", i+1, mustJSON(g), mustJSON(w))
		}
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// A message of another version stops Run with an error naming its LSN;
// the transactions before it are applied and confirmed, it and those
// after are not, and the next Run stops at it again.
func TestRunBadPayloadStops(t *testing.T) {
	e := newEnv(t, false)
	emitTx(t, e.src, "good1")
	before := currentLSN(t, e.src)
	tx, err := e.src.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	emit(t, tx, payloadOf("same_tx_before"))
	emit(t, tx, `{"v": 2, "entries": []}`)
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	emitTx(t, e.src, "after")

	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := Run(ctx, e.cfg)
		cancel()
		var perr *PayloadError
		if !errors.As(err, &perr) {
			t.Fatalf("run %d: Run returned %v, want a *PayloadError", i+1, err)
		}
		if perr.LSN <= before || !strings.Contains(err.Error(), perr.LSN.String()) || !strings.Contains(err.Error(), "version 2") {
			t.Errorf("run %d: error %q, want one naming the message's LSN (after %s) and its version", i+1, err, before)
		}
		st, err := ReadStatus(context.Background(), e.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if st.Confirmed > perr.LSN || st.Applied > perr.LSN {
			t.Errorf("run %d: confirmed %s, applied %s, past the bad message at %s", i+1, st.Confirmed, st.Applied, perr.LSN)
		}
		sameIDs(t, objectIDs(t, e.dst, "auditpgx_entry"), []string{"good1"})
	}
}

// Entries go to Dest, another database, with the state row.
func TestRunOtherDest(t *testing.T) {
	e := newEnv(t, true)
	run := start(t, e.cfg)
	for _, id := range seq("x", 20) {
		emitTx(t, e.src, id)
	}
	waitConfirmed(t, e.cfg, currentLSN(t, e.src), run)
	sameIDs(t, objectIDs(t, e.dst, "auditpgx_entry"), seq("x", 20))
	var srcTables int
	if err := e.src.QueryRow(context.Background(),
		"SELECT count(*) FROM pg_class WHERE relname IN ('auditpgx_entry', 'auditpgx_relay_state')").Scan(&srcTables); err != nil {
		t.Fatal(err)
	}
	if srcTables != 0 {
		t.Errorf("Source has %d of the entry and state tables, want none", srcTables)
	}
	st, err := ReadStatus(context.Background(), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !st.StateFound || st.Applied == 0 || st.AppliedCommit.IsZero() {
		t.Errorf("Status %+v, want a state row with a position and a commit time", st)
	}
}

// Status shows WAL pending while the relay is stopped, and none once it
// has caught up.
func TestStatusLag(t *testing.T) {
	e := newEnv(t, false)
	st, err := ReadStatus(context.Background(), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !st.SlotExists || st.SlotActive || st.StateFound {
		t.Fatalf("Status before any Run: %+v, want an inactive slot and no state row", st)
	}
	for _, id := range seq("p", 10) {
		emitTx(t, e.src, id)
	}
	// st.Current is pg_current_wal_lsn(), the WAL written so far, which
	// the test server, committing asynchronously, moves past the messages
	// only when its WAL writer writes their commits (within a few
	// wal_writer_delay): until then LagBytes may read 0, and a relay that
	// confirmed Current would not have applied them. The insert position
	// is past them at once.
	emitted := currentLSN(t, e.src)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err = ReadStatus(context.Background(), e.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if st.LagBytes > 0 && st.Current > st.Confirmed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Status 20 s after emitting, with messages pending: %+v, want LagBytes > 0", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	pending := st.LagBytes

	run := start(t, e.cfg)
	waitConfirmed(t, e.cfg, emitted, run)
	deadline = time.Now().Add(20 * time.Second)
	for {
		st, err = ReadStatus(context.Background(), e.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if st.LagBytes == 0 && st.Confirmed >= emitted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("LagBytes %d 20 s after applying (was %d while pending)", st.LagBytes, pending)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !st.SlotActive || !st.StateFound || st.Applied == 0 || st.Lag <= 0 || st.Lag > time.Minute {
		t.Errorf("Status after applying: %+v, want an active slot, a state row, and a lag of seconds", st)
	}
}

// NDJSON receives each entry as one line.
func TestRunNDJSON(t *testing.T) {
	e := newEnv(t, false)
	var buf syncBuffer
	cfg := e.cfg
	cfg.NDJSON = &buf
	run := start(t, cfg)
	emitTx(t, e.src, "n1", "n2")
	emitTx(t, e.src, "n3")
	waitConfirmed(t, cfg, currentLSN(t, e.src), run)
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	var ids []string
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if len(m) != len(entryColumns) {
			t.Errorf("line %q has %d keys, want %d", l, len(m), len(entryColumns))
		}
		ids = append(ids, m["object_id"].(string))
	}
	sameIDs(t, ids, []string{"n1", "n2", "n3"})
	sameIDs(t, objectIDs(t, e.dst, "auditpgx_entry"), nil)
}
