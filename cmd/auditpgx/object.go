package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/auditpgx/auditpgx/internal/sqlq"
	"github.com/auditpgx/auditpgx/store"
)

// checkText refuses an argument PostgreSQL cannot take as text (invalid
// UTF-8 or a NUL byte) before anything is sent; name is the flag or
// argument.
func checkText(name, v string) error {
	if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
		return usagef("%s: %q is not valid UTF-8 text", name, v)
	}
	return nil
}

// objectIDSpellings returns the object_id texts an ID argument may mean,
// most likely first: the argument as written, then, when it is JSON, the
// form entries give it (store.ObjectID): a JSON array of several values is
// a composite key ('[7, "eu"]' and '[7,"\u0065u"]' are [7,"eu"]), another
// JSON value one key ('"eu"' is eu).
func objectIDSpellings(id string) []string {
	spellings := []string{id}
	add := func(s string) {
		if !slices.Contains(spellings, s) {
			spellings = append(spellings, s)
		}
	}
	trimmed := bytes.TrimSpace([]byte(id))
	if !json.Valid(trimmed) {
		return spellings
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(trimmed, &elems); err == nil && len(elems) > 1 {
		add(store.ObjectID(elems...))
	}
	add(store.ObjectID(trimmed))
	return spellings
}

// resolveObject returns the spelling of id under which the entry table
// files entries of table (any table when table is ""), trying
// objectIDSpellings in order; id as written when none has entries.
func resolveObject(ctx context.Context, db *sql.DB, entryTable, table, id string) (string, error) {
	spellings := objectIDSpellings(id)
	if len(spellings) == 1 {
		return id, nil
	}
	for _, s := range spellings {
		found, err := anyEntry(ctx, db, store.Query{Table: entryTable, TableName: table, ObjectID: s})
		if err == nil && !found && table != "" {
			found, err = anyEntry(ctx, db, store.Query{Table: entryTable, RelatedTableName: table, RelatedObjectID: s})
		}
		if err != nil {
			return "", err
		}
		if found {
			return s, nil
		}
	}
	return id, nil
}

// anyEntry reports whether an entry matches q.
func anyEntry(ctx context.Context, db *sql.DB, q store.Query) (bool, error) {
	q.Limit = 1
	entries, err := store.List(ctx, db, q)
	return len(entries) > 0, err
}

// checkTable returns an error, for exit code 1, when table is unknown:
// no entry names it (as its table or related table) and the database has
// no table of that name.
func checkTable(ctx context.Context, db *sql.DB, entryTable, table string) error {
	for _, q := range []store.Query{{TableName: table}, {RelatedTableName: table}} {
		q.Table = entryTable
		if found, err := anyEntry(ctx, db, q); err != nil || found {
			return err
		}
	}
	if n, err := sqlq.ParseName(table); err == nil {
		var exists bool
		err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT FROM pg_class c
			JOIN pg_namespace s ON s.oid = c.relnamespace
			WHERE c.relname = $2 AND c.relkind IN ('r', 'p')
			AND CASE WHEN $1 = '' THEN pg_table_is_visible(c.oid) ELSE s.nspname = $1 END)`,
			n.Schema, n.Rel).Scan(&exists)
		if err != nil || exists {
			return err
		}
	}
	return fmt.Errorf("unknown table %q: no entry names it and the database has no such table", table)
}
