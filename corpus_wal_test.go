// The corpus with the WAL sink: every case also runs with its entries sent
// as logical decoding messages, which must hold exactly the entries the
// table sink writes (entries.json), while the caller sees what pgx returns.

package auditpgx_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
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

	mu       sync.Mutex // one drain at a time
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

// take flushes the WAL, drains the slot, and returns the contents of the
// messages with prefix, in order, forgetting them.
func (c *walCollector) take(t testing.TB, prefix string) []string {
	t.Helper()
	flushWAL(t, c.db)
	c.mu.Lock()
	defer c.mu.Unlock()
	rows, err := c.db.Query(`SELECT data FROM pg_logical_slot_get_changes($1, NULL, NULL)`, c.slot)
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
	return out
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
// renders the entry table's.
func (e *corpusEnv) walEntries() []string {
	e.t.Helper()
	var out []string
	for _, content := range e.wal.take(e.t, e.walPrefix) {
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
	return out
}

// useWAL points the case's audited side at the WAL sink: a prefix of its
// own on its database's shared slot.
func (e *corpusEnv) useWAL(t testing.TB, db *sql.DB, key string, cleanup func(func())) {
	e.wal = collectorFor(t, db, key, cleanup)
	e.walPrefix = fmt.Sprintf("corpus_%08x", rand.Uint32())
}
