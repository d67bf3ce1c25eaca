// The corpus with the WAL sink: every case also runs with its entries sent
// as logical decoding messages, which must hold exactly the entries the
// table sink writes (entries.json), while the caller sees what pgx returns.

package auditpgx_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// walCollector drains one database's test_decoding slot for all the cases
// that use that database at once, and hands each case the messages of its
// own prefix.
type walCollector struct {
	db   *sql.DB
	slot string

	mu       sync.Mutex // one drain at a time; guards what follows
	gen      int        // bumped when the slot skips WAL: see take
	byPrefix map[string][]string
}

var walCollectors struct {
	mu   sync.Mutex
	byDB map[string]*walCollector
}

// collectorFor returns the collector of the database plain is connected
// to (key names it), creating its slot on first use; the slot is dropped
// by cleanup: when TestCorpus ends, or a case of its own database. plain
// must stay open until then.
func collectorFor(t testing.TB, plain *sql.DB, key string, cleanup func(func())) *walCollector {
	walCollectors.mu.Lock()
	defer walCollectors.mu.Unlock()
	if c := walCollectors.byDB[key]; c != nil {
		return c
	}
	c := &walCollector{db: plain, slot: fmt.Sprintf("corpus_%08x", rand.Uint32()), byPrefix: map[string][]string{}}
	if _, err := plain.Exec(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, c.slot); err != nil {
		t.Fatalf("creating the corpus's WAL slot: %v", err)
	}
	cleanup(func() {
		walCollectors.mu.Lock()
		delete(walCollectors.byDB, key)
		walCollectors.mu.Unlock()
		if _, err := c.db.Exec(`SELECT pg_drop_replication_slot($1)`, c.slot); err != nil {
			t.Errorf("dropping the corpus's WAL slot: %v", err)
		}
	})
	if walCollectors.byDB == nil {
		walCollectors.byDB = map[string]*walCollector{}
	}
	walCollectors.byDB[key] = c
	return c
}

// generation is the slot generation a case's messages are sent under: the
// case must start writing after it has it.
func (c *walCollector) generation() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// take flushes the WAL, drains the slot, and returns the contents of the
// messages with prefix, in order, forgetting them. It returns ok false
// when the messages of generation gen are lost: the server failed to
// decode the slot's WAL with "could not map filenumber" (seen twice in
// about forty CI runs, on PostgreSQL 18 only), which fails every later
// read of that slot. Then take logs the WAL records of the transactions
// that wrote the relation file named, moves the slot past the WAL written
// so far (pg_replication_slot_advance decodes no row change, so it does
// not fail the same way) and bumps the generation; the cases whose
// statements ran before run them again, once (see runMode), and a case
// whose own statement makes the server fail so fails twice.
func (c *walCollector) take(t testing.TB, prefix string, gen int) (msgs []string, ok bool) {
	t.Helper()
	flushWAL(t, c.db)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return nil, false
	}
	rows, err := c.db.Query(`SELECT data FROM pg_logical_slot_get_changes($1, NULL, NULL)`, c.slot)
	if err != nil && strings.Contains(err.Error(), "could not map filenumber") {
		t.Logf("reading the corpus's WAL slot: %v%s", err, c.unmappedRecords(err))
		if _, err := c.db.Exec(`SELECT pg_replication_slot_advance($1, pg_current_wal_flush_lsn())`, c.slot); err != nil {
			t.Fatalf("moving the corpus's WAL slot past the WAL it cannot decode: %v", err)
		}
		c.gen++
		clear(c.byPrefix)
		return nil, false
	}
	if err != nil {
		t.Fatalf("reading the corpus's WAL slot: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			t.Fatal(err)
		}
		p, content, ok := decodedMessage(t, data)
		if !ok {
			continue
		}
		c.byPrefix[p] = append(c.byPrefix[p], content)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	out := c.byPrefix[prefix]
	delete(c.byPrefix, prefix)
	return out, true
}

// unmappedRecords explains a decoding error "could not map filenumber
// \"base/DB/N\" to relation OID": the WAL records, from the slot's restart
// point on, of the transactions that wrote relation file N, as pg_walinspect
// shows them (best effort: an empty string when they cannot be read).
func (c *walCollector) unmappedRecords(decodeErr error) string {
	m := regexp.MustCompile(`could not map filenumber "base/(\d+)/(\d+)"`).FindStringSubmatch(decodeErr.Error())
	if m == nil {
		return ""
	}
	if _, err := c.db.Exec(`CREATE EXTENSION IF NOT EXISTS pg_walinspect`); err != nil {
		return fmt.Sprintf("\n(pg_walinspect: %v)", err)
	}
	rows, err := c.db.Query(`
WITH r AS (
	SELECT * FROM pg_get_wal_records_info(
		(SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = $1), pg_current_wal_flush_lsn()))
, hit AS (
	SELECT * FROM r WHERE block_ref LIKE '%/' || $2 || '/' || $3 || ' %' OR description LIKE '%/' || $2 || '/' || $3 || '%')
SELECT start_lsn::text, xid::text, resource_manager, record_type, coalesce(description, ''), coalesce(block_ref, '')
FROM r
WHERE (xid IN (SELECT xid FROM hit WHERE xid <> 0) AND resource_manager <> 'Btree') OR start_lsn IN (SELECT start_lsn FROM hit)
ORDER BY start_lsn
LIMIT 400`, c.slot, m[1], m[2])
	if err != nil {
		return fmt.Sprintf("\n(pg_walinspect: %v)", err)
	}
	defer rows.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "\nthe WAL records of the transactions that wrote %s/%s:", m[1], m[2])
	for rows.Next() {
		var f [6]string
		if err := rows.Scan(&f[0], &f[1], &f[2], &f[3], &f[4], &f[5]); err != nil {
			return b.String() + fmt.Sprintf("\n(%v)", err)
		}
		fmt.Fprintf(&b, "\n  %s xid %s %s/%s %s %s", f[0], f[1], f[2], f[3], f[4], f[5])
	}
	if err := rows.Err(); err != nil {
		fmt.Fprintf(&b, "\n(%v)", err)
	}
	return b.String()
}

// decodedMessage reads a line of test_decoding's output: the prefix and
// content of a transactional message, or ok false for any other line.
func decodedMessage(t testing.TB, data string) (prefix, content string, ok bool) {
	t.Helper()
	rest, ok := strings.CutPrefix(data, "message: transactional: 1 prefix: ")
	if !ok {
		return "", "", false
	}
	prefix, rest, ok = strings.Cut(rest, ", sz: ")
	if !ok {
		t.Fatalf("a message line without its size: %s", data)
	}
	_, content, ok = strings.Cut(rest, " content:")
	if !ok {
		t.Fatalf("a message line without content: %s", data)
	}
	return prefix, content, true
}

// walEntries returns the entries of the case's messages as entries()
// renders the entry table's; ok false when they were lost (see take).
func (e *corpusEnv) walEntries() (out []string, ok bool) {
	e.t.Helper()
	msgs, ok := e.wal.take(e.t, e.walPrefix, e.walGen)
	if !ok {
		return nil, false
	}
	for _, content := range msgs {
		var m struct {
			V       int               `json:"v"`
			Entries []json.RawMessage `json:"entries"`
		}
		if err := json.Unmarshal([]byte(content), &m); err != nil || m.V != 1 {
			e.t.Fatalf("a message that is not version 1 JSON (%v): %s", err, content)
		}
		for _, raw := range m.Entries {
			var en corpusEntry
			if err := json.Unmarshal(raw, &en); err != nil {
				e.t.Fatal(err)
			}
			if string(en.Changes) == "null" {
				en.Changes = nil
			}
			b, err := json.Marshal(en)
			if err != nil {
				e.t.Fatal(err)
			}
			out = append(out, canonicalJSON(e.t, b))
		}
	}
	return out, true
}

// useWAL points the case's audited side at the WAL sink: a prefix of its
// own on its database's shared slot.
func (e *corpusEnv) useWAL(t testing.TB, db *sql.DB, key string, cleanup func(func())) {
	e.wal = collectorFor(t, db, key, cleanup)
	e.walGen = e.wal.generation()
	e.walPrefix = fmt.Sprintf("corpus_%08x", rand.Uint32())
}
