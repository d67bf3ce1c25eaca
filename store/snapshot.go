package store

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/record"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// Snapshot reads the current rows of an audited table as [Replay] would
// rebuild them: object_id → image of cols.Names, each value as to_jsonb
// renders it, redacted columns as "$encrypted$" and other columns absent.
// table is written as in SQL ("users", "app.projects", `"Users"`), keyCols
// are the primary-key columns in key order, and object ids are rendered
// from them as the entries' object_id is.
//
// It is meant for tests: after a workload through auditpgx on tables that
// started empty or were baselined, [EqualStates] of [ReplayTable] and
// Snapshot is nil.
func Snapshot(ctx context.Context, db Querier, table string, keyCols []string, cols diff.Columns) (map[string]diff.Image, error) {
	n, err := sqlq.ParseName(table)
	if err != nil {
		return nil, fmt.Errorf("auditpgx: snapshot: %q is not a table name as SQL writes one", table)
	}
	if len(keyCols) == 0 {
		return nil, fmt.Errorf("auditpgx: snapshot of %q: no key columns given", table)
	}
	var id string
	if len(keyCols) == 1 {
		id = `to_jsonb(t.` + sqlq.Ident(keyCols[0]) + `) #>> '{}'`
	} else {
		parts := make([]string, len(keyCols))
		for i, k := range keyCols {
			parts[i] = `to_jsonb(t.` + sqlq.Ident(k) + `)::text`
		}
		id = `'[' || ` + strings.Join(parts, ` || ',' || `) + ` || ']'`
	}
	rows, err := db.QueryContext(ctx, `SELECT `+id+`, `+record.ImageSQL("t", cols)+
		` FROM `+sqlq.QualifiedIdent(n.Schema, n.Rel)+` t`)
	if err != nil {
		return nil, fmt.Errorf("auditpgx: snapshot of %q: %w", table, err)
	}
	defer rows.Close()
	out := map[string]diff.Image{}
	for rows.Next() {
		var (
			oid string
			raw []byte
		)
		if err := rows.Scan(&oid, &raw); err != nil {
			return nil, fmt.Errorf("auditpgx: snapshot of %q: %w", table, err)
		}
		img := diff.Image{}
		if err := json.Unmarshal(raw, &img); err != nil {
			return nil, fmt.Errorf("auditpgx: snapshot of %q, object %q: %w", table, oid, err)
		}
		for col := range img {
			if cols.Redacted[col] {
				img[col] = json.RawMessage(strconv.Quote(diff.Encrypted))
			}
		}
		out[oid] = img
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auditpgx: snapshot of %q: %w", table, err)
	}
	return out, nil
}

// EqualStates returns nil when a and b hold the same objects with the same
// columns and [diff.Equal] values, else an error describing the first
// difference in object id and column order. A column absent from one image
// differs from a column holding null.
func EqualStates(a, b map[string]diff.Image) error {
	for _, id := range unionKeys(a, b) {
		ia, inA := a[id]
		ib, inB := b[id]
		switch {
		case !inA:
			return fmt.Errorf("object %q is in b but not in a", id)
		case !inB:
			return fmt.Errorf("object %q is in a but not in b", id)
		}
		for _, col := range unionKeys(ia, ib) {
			va, inA := ia[col]
			vb, inB := ib[col]
			switch {
			case !inA:
				return fmt.Errorf("object %q: column %q is in b (%s) but not in a", id, col, rawText(vb))
			case !inB:
				return fmt.Errorf("object %q: column %q is in a (%s) but not in b", id, col, rawText(va))
			case !diff.Equal(va, vb):
				return fmt.Errorf("object %q: column %q is %s in a and %s in b", id, col, rawText(va), rawText(vb))
			}
		}
	}
	return nil
}

func unionKeys[V any](a, b map[string]V) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
