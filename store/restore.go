package store

import (
	"context"
	"fmt"

	"github.com/auditpgx/auditpgx/internal/record"
)

// restoreBatch is how many entries one statement of Restore inserts.
const restoreBatch = 1000

// RestoreResult is what [Restore] did with an archive.
type RestoreResult struct {
	Entries  int64 // in the archive
	Restored int64 // inserted
	Skipped  int64 // already in the entry table, by id
}

// Restore loads an archive written by [Prune] back into the entry table
// named table. path names the archive (NAME.ndjson.gz) or its manifest
// (NAME.manifest.json); both must be there. The archive is checked
// against its manifest first, and nothing is inserted when it does not
// match. Entries keep their ids; an entry whose id the table already has
// is skipped, so Restore may run again, and after an interrupted run. On
// a partitioned entry table the entries go to the partitions of their
// times, or to the DEFAULT one, which holds those of partitions dropped
// since. When the entries' ids pass the table's id sequence, the sequence
// is moved past them.
//
// An entry's changes column is written back as the driver writes it: a
// changes object that lacked one of added_fields, removed_fields and
// changed_fields gets it empty; everything else is as it was.
func Restore(ctx context.Context, db Querier, table, path string) (RestoreResult, error) {
	var res RestoreResult
	t, err := parseTableName(table)
	if err != nil {
		return res, fmt.Errorf("%w %q: %v", ErrInvalidTableName, table, err)
	}
	fail := func(err error) (RestoreResult, error) {
		return res, fmt.Errorf("auditpgx: restore %s into %q: %w", path, table, err)
	}
	m, dir, err := ReadArchiveManifest(path)
	if err != nil {
		return res, err
	}
	if _, err := verifyArchive(dir, m, nil); err != nil {
		return fail(err)
	}
	ctx = record.Migrating(ctx)
	var identity bool
	if err := queryRowInto(ctx, db, `SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute
		WHERE attrelid = pg_catalog.to_regclass($1) AND attname = 'id' AND attidentity <> '')`, []any{t.Quoted()}, &identity); err != nil {
		return fail(err)
	}
	override := ""
	if identity {
		override = " OVERRIDING SYSTEM VALUE"
	}
	insert := `INSERT INTO ` + t.Quoted() + ` (` + entryColumns + `)` + override + `
		SELECT ` + entryColumns + ` FROM pg_catalog.jsonb_populate_recordset(NULL::` + t.Quoted() + `, $1::jsonb) AS r
		WHERE NOT EXISTS (SELECT FROM ` + t.Quoted() + ` AS e WHERE e.id = r.id)
		ON CONFLICT DO NOTHING`
	var rows jsonRows
	flush := func() error {
		if rows.n == 0 {
			return nil
		}
		r, err := db.ExecContext(ctx, insert, rows.json())
		if err != nil {
			return fmt.Errorf("entries %v to %v: %w", rows.first, rows.last, err)
		}
		n, err := r.RowsAffected()
		if err != nil {
			return err
		}
		res.Restored += n
		rows.reset()
		return nil
	}
	_, err = verifyArchive(dir, m, func(e *archiveRow) error {
		res.Entries++
		rows.add(e)
		if rows.n == restoreBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	res.Skipped = res.Entries - res.Restored
	if err != nil {
		return fail(err)
	}
	// Ids beyond the sequence, as in a table made anew: later entries
	// must not take them again.
	if _, err := db.ExecContext(ctx, `SELECT pg_catalog.setval(s, m) FROM (SELECT pg_catalog.pg_get_serial_sequence($1, 'id')::regclass AS s,
		(SELECT max(id) FROM `+t.Quoted()+`) AS m) AS q
		WHERE m > coalesce(pg_catalog.pg_sequence_last_value(s), 0)`, t.Quoted()); err != nil {
		return fail(err)
	}
	return res, nil
}

// columns returns e as the entry table's columns, for
// jsonb_populate_recordset: the changes column as it is stored, rebuilt
// from Changes, Rows or Baseline.
func (e *Entry) columns() map[string]any {
	var changes any
	switch {
	case e.Baseline != nil:
		changes = map[string]any{"snapshot": e.Baseline.Snapshot, "rows": e.Baseline.Rows}
	case e.Rows != nil:
		changes = map[string]any{"rows": *e.Rows}
	case e.Changes != nil:
		changes = e.Changes
	}
	var ctx any
	if len(e.Context) > 0 {
		ctx = e.Context
	}
	return map[string]any{
		"id": e.ID, "created": e.Created, "created_by": e.CreatedBy, "operation": e.Operation,
		"table_name": e.TableName, "object_id": e.ObjectID, "changes": changes,
		"related_table_name": e.RelatedTableName, "related_object_id": e.RelatedObjectID, "related_field_name": e.RelatedFieldName,
		"tx_id": e.TxID, "statement_fingerprint": e.StatementFingerprint, "context": ctx,
	}
}

// jsonRows collects archive rows into a JSON array, for
// jsonb_populate_recordset.
type jsonRows struct {
	buf         []byte
	n           int
	first, last int64
}

func (j *jsonRows) add(r *archiveRow) {
	if j.n == 0 {
		j.buf, j.first = append(j.buf[:0], '['), r.ID
	} else {
		j.buf = append(j.buf, ',')
	}
	j.buf = append(j.buf, r.line...)
	j.n++
	j.last = r.ID
}

// json returns the array; valid until the next add or reset.
func (j *jsonRows) json() string { return string(append(j.buf, ']')) }

func (j *jsonRows) reset() { j.n = 0 }
