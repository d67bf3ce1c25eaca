package bench

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/auditpgx/auditpgx/internal/pgtest"
)

// TestEntriesEqual runs every write workload, small, and a script of edge
// cases through auditpgx and both triggers, and requires the three entry
// tables to hold the same entries: operation, table, object, actor and
// changes (compared as jsonb, so key order and spacing do not matter), in
// the order of transaction, statement and object. statement_fingerprint,
// which the triggers leave NULL, is not compared.
func TestEntriesEqual(t *testing.T) {
	ctx := context.Background()
	// One connection, so that the concurrent workload runs in one
	// goroutine and assigns keys in the same order in every variant.
	s, err := Open(ctx, Config{DSN: pgtest.NewDatabase(t), Rows: 300, BulkInsert: 40, Conns: 1,
		Variants: []string{Auditpgx, RowTrigger, StmtTrigger}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	for _, w := range Workloads {
		if w.ReadOnly {
			continue
		}
		t.Run(w.Name, func(t *testing.T) {
			for _, v := range s.Variants {
				if _, err := w.Run(ctx, s, v, 1, 4); err != nil {
					t.Fatal(err)
				}
			}
			requireSameEntries(t, s)
		})
	}
	t.Run("edge-cases", func(t *testing.T) {
		for _, v := range s.Variants {
			if err := s.Seed(ctx, v); err != nil {
				t.Fatal(err)
			}
			if err := runEdgeCases(contextFor(ctx, v), v.DB); err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
		}
		requireSameEntries(t, s)
	})
}

// edgeCases are statements whose entries are easy to get subtly wrong. Each
// runs on its own, or, when it is a slice of several, in one transaction.
var edgeCases = []any{
	[]any{`INSERT INTO account (name, email, created_at) VALUES ($1, $2, $3)`, "nulls", "nulls@example.com", baseTime},
	`UPDATE account SET updated_at = now() WHERE id = 1`,                                    // excluded column only: no entry
	`UPDATE account SET name = name, meta = '{"n": 2, "plan": "p2"}' WHERE id = 2`,          // same values, keys reordered: no entry
	`UPDATE account SET password_hash = 'changed' WHERE id = 3`,                             // redacted
	`UPDATE account SET password_hash = NULL, score = NULL, tags = NULL WHERE id IN (4, 5)`, // to NULL, redacted to NULL
	`UPDATE account SET balance = 6.250 WHERE id = 5`,                                       // numeric of another scale, same value
	`UPDATE account SET balance = 7.5, meta = meta || '{"x": [1, {"y": null}]}' WHERE id = 6`,
	`UPDATE account SET created_at = created_at + interval '1 day', tags = tags || ARRAY['b"q']::text[] WHERE id = 7`,
	`UPDATE account SET active = true WHERE id BETWEEN 10 AND 20`, // some rows already true
	`UPDATE account a SET name = v.n FROM (VALUES (21, 'x'), (22, 'y'), (23, 'user 23')) v(id, n) WHERE a.id = v.id`,
	`INSERT INTO account (name, email, score, tags, meta, created_at) VALUES ('m1', 'm1@x', 1, '{}', 'null', '2025-01-01'), ('m2', 'm2@x', NULL, NULL, '[]', '2025-01-02')`,
	`DELETE FROM account WHERE id BETWEEN 30 AND 33`,
	`DELETE FROM account WHERE id = 999999`, // nothing
	[]any{[]any{`INSERT INTO account (name, email, created_at) VALUES ('tx', 'tx@x', '2025-01-03') RETURNING id`},
		`UPDATE account SET name = 'tx2' WHERE name = 'tx'`,
		`DELETE FROM account WHERE name = 'tx2'`},
	`UPDATE account SET score = coalesce(score, 0) + 1, updated_at = now() WHERE id > 290`,
}

func runEdgeCases(ctx context.Context, db *sql.DB) error {
	exec := func(ex interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	}, c any) error {
		switch c := c.(type) {
		case string:
			_, err := ex.ExecContext(ctx, c)
			return err
		case []any:
			_, err := ex.ExecContext(ctx, c[0].(string), c[1:]...)
			return err
		}
		return fmt.Errorf("bad case %v", c)
	}
	for _, c := range edgeCases {
		if tx, ok := c.([]any); ok && len(tx) > 0 {
			if _, nested := tx[0].([]any); nested {
				t, err := db.BeginTx(ctx, nil)
				if err != nil {
					return err
				}
				for _, c := range tx {
					if inner, ok := c.([]any); ok {
						c = inner[0]
					}
					if err := exec(t, c); err != nil {
						t.Rollback()
						return err
					}
				}
				if err := t.Commit(); err != nil {
					return err
				}
				continue
			}
		}
		if err := exec(db, c); err != nil {
			return fmt.Errorf("%v: %w", c, err)
		}
	}
	return nil
}

// requireSameEntries compares auditpgx's entries with each trigger's.
func requireSameEntries(t *testing.T, s *Suite) {
	t.Helper()
	ctx := context.Background()
	ref := s.Variant(Auditpgx)
	var n int
	if err := s.admin.QueryRow(ctx, `SELECT count(*) FROM `+ref.Schema+`.auditpgx_entry`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("auditpgx wrote no entries")
	}
	for _, v := range s.Variants {
		if v == ref {
			continue
		}
		diffs, err := entryDiffs(ctx, s, ref, v)
		if err != nil {
			t.Fatal(err)
		}
		if len(diffs) > 0 {
			t.Errorf("%d entries; %s and %s differ (first differences, - %s + %s):\n%s", n, ref.Name, v.Name, ref.Name, v.Name, strings.Join(diffs, "\n"))
		}
	}
}

// entryDiffs pairs the entries of two variants by position and returns the
// pairs that differ.
func entryDiffs(ctx context.Context, s *Suite, a, b *Variant) ([]string, error) {
	numbered := func(v *Variant) string {
		return `SELECT row_number() OVER (ORDER BY tx_id, created, object_id, id) AS n,
		        operation, table_name, object_id, changes, created_by FROM ` + v.Schema + `.auditpgx_entry`
	}
	rows, err := s.admin.Query(ctx, `WITH a AS (`+numbered(a)+`), b AS (`+numbered(b)+`)
		SELECT n, concat_ws(' ', a.operation, a.table_name, a.object_id, a.created_by, a.changes),
		          concat_ws(' ', b.operation, b.table_name, b.object_id, b.created_by, b.changes)
		  FROM a FULL JOIN b USING (n)
		 WHERE a.operation IS DISTINCT FROM b.operation OR a.table_name IS DISTINCT FROM b.table_name
		    OR a.object_id IS DISTINCT FROM b.object_id OR a.changes IS DISTINCT FROM b.changes
		    OR a.created_by IS DISTINCT FROM b.created_by
		 ORDER BY n LIMIT 5`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n int
		var x, y string
		if err := rows.Scan(&n, &x, &y); err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprintf("entry %d:\n- %s\n+ %s", n, x, y))
	}
	return out, rows.Err()
}
