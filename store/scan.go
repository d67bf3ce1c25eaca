package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/record"
	"github.com/jackc/pgx/v5/pgconn"
)

// entryColumns are the columns scanEntries reads, in its order.
const entryColumns = record.ReadColumns

// entryTableName parses an entry table name, "" meaning the default.
func entryTableName(table string) (tableName, error) {
	if table == "" {
		table = defaultTable
	}
	t, err := parseTableName(table)
	if err != nil {
		return tableName{}, fmt.Errorf("%w %q: %v", ErrInvalidTableName, table, err)
	}
	return t, nil
}

// scanEntries runs query, which selects entryColumns from t, and calls
// each for every row in order, with a new Entry each time.
func scanEntries(ctx context.Context, db Querier, t tableName, query string, args []any, each func(*Entry) error) error {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("auditpgx: read entries from %s: %w", t.Quoted(), noContextHint(err))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e            Entry
			changes, ctx []byte
		)
		if err := rows.Scan(&e.ID, &e.Created, &e.CreatedBy, &e.Operation, &e.TableName, &e.ObjectID,
			&changes, &e.RelatedTableName, &e.RelatedObjectID, &e.RelatedFieldName, &e.TxID,
			&e.StatementFingerprint, &ctx); err != nil {
			return fmt.Errorf("auditpgx: read entries from %s: %w", t.Quoted(), err)
		}
		if ctx != nil {
			e.Context = json.RawMessage(ctx)
		}
		// UTC, so that output does not depend on the reader's time zone.
		e.Created = e.Created.UTC()
		if changes != nil {
			if err := decodeChanges(&e, changes); err != nil {
				return fmt.Errorf("auditpgx: entry %d in %s: %w", e.ID, t.Quoted(), err)
			}
		}
		if err := each(&e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("auditpgx: read entries from %s: %w", t.Quoted(), err)
	}
	return nil
}

// readEntries collects what scanEntries reads.
func readEntries(ctx context.Context, db Querier, t tableName, query string, args []any) ([]Entry, error) {
	var out []Entry
	err := scanEntries(ctx, db, t, query, args, func(e *Entry) error {
		out = append(out, *e)
		return nil
	})
	return out, err
}

// decodeChanges sets e.Changes, or e.Baseline for a baseline's marker
// entry, from the changes column.
func decodeChanges(e *Entry, changes []byte) error {
	if e.Operation == OpSnapshot && e.ObjectID == "" {
		// A marker, unless an object's key is the empty string.
		var m struct {
			Snapshot *string `json:"snapshot"`
			Rows     int64   `json:"rows"`
		}
		if err := json.Unmarshal(changes, &m); err == nil && m.Snapshot != nil {
			e.Baseline = &Baseline{Snapshot: *m.Snapshot, Rows: m.Rows}
			return nil
		}
	}
	if e.Operation == OpSuppressed {
		var m struct {
			Rows *int64 `json:"rows"`
		}
		if err := json.Unmarshal(changes, &m); err == nil && m.Rows != nil {
			e.Rows = m.Rows
			return nil
		}
	}
	// Into a pointer, so that a JSON null also leaves Changes nil.
	var c *diff.Changes
	if err := json.Unmarshal(changes, &c); err != nil {
		return err
	}
	e.Changes = c
	return nil
}

// noContextHint adds, to the error of a read from an entry table made
// before the context column existed, how to add it.
func noContextHint(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42703" && strings.Contains(pgErr.Message, `"context"`) {
		return fmt.Errorf("the entry table has no context column; run Migrate, or as its owner ALTER TABLE ... ADD COLUMN context jsonb: %w", err)
	}
	return err
}

// queryStrings returns the one text column of query's rows.
func queryStrings(ctx context.Context, db Querier, query string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// queryRowInto scans the one row query returns into dest; no row is
// sql.ErrNoRows.
func queryRowInto(ctx context.Context, db Querier, query string, args []any, dest ...any) error {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Close()
}
