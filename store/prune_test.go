package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/store"
)

// fillVaried writes entries of every kind at the times given, each with
// a context, a related side or not, and changes of each shape, and
// returns them as read.
func fillVaried(t *testing.T, db *sql.DB, times string) []store.Entry {
	t.Helper()
	ctx := context.Background()
	_, err := db.ExecContext(ctx, `INSERT INTO auditpgx_entry
		(created, created_by, operation, table_name, object_id, changes, related_table_name, related_object_id, related_field_name,
		 tx_id, statement_fingerprint, context)
		SELECT at, CASE WHEN i % 5 <> 0 THEN 'actor' || (i % 3) END,
			(ARRAY['create', 'update', 'delete', 'associate', 'truncate', 'snapshot', 'suppressed'])[i % 7 + 1],
			'table' || (i % 4), CASE WHEN i % 7 IN (4, 6) THEN '' ELSE (i % 50)::text END,
			CASE i % 7
				WHEN 0 THEN '{"added_fields": {"id": 1, "n": 1.50, "s": "a\u00e9\"b"}, "removed_fields": {}, "changed_fields": {}}'::jsonb
				WHEN 1 THEN '{"added_fields": {}, "removed_fields": {}, "changed_fields": {"n": [1, null]}}'::jsonb
				WHEN 2 THEN '{"added_fields": {}, "removed_fields": {"pw": "$encrypted$"}, "changed_fields": {}}'::jsonb
				WHEN 5 THEN CASE WHEN i % 2 = 0 THEN '{"snapshot": "10:20:15", "rows": 3}'::jsonb
					ELSE '{"added_fields": {"id": 2}, "removed_fields": {}, "changed_fields": {}}'::jsonb END
				WHEN 6 THEN '{"rows": 12}'::jsonb
			END,
			CASE WHEN i % 7 = 3 THEN 'groups' END, CASE WHEN i % 7 = 3 THEN 'g' || i END, CASE WHEN i % 7 = 3 THEN 'members' END,
			i, CASE WHEN i % 2 = 0 THEN 'fp' || i END,
			CASE WHEN i % 3 = 0 THEN jsonb_build_object('request_id', 'r' || i, 'nested', jsonb_build_object('a', i)) END
		FROM (SELECT row_number() OVER () AS i, at FROM (`+times+`) AS s(at)) AS q`)
	require.NoError(t, err)
	return allEntries(t, db)
}

// requireSameJSON requires that want and got encode to the same JSON:
// the same entries, their JSON values whatever their spacing.
func requireSameJSON(t *testing.T, want, got []store.Entry) {
	t.Helper()
	w, err := json.Marshal(want)
	require.NoError(t, err)
	g, err := json.Marshal(got)
	require.NoError(t, err)
	require.JSONEq(t, string(w), string(g))
}

func readArchive(t *testing.T, path string) []store.Entry {
	t.Helper()
	var out []store.Entry
	_, err := store.ReadArchive(path, func(e *store.Entry) error {
		out = append(out, *e)
		return nil
	})
	require.NoError(t, err)
	return out
}

// On a partitioned entry table, Prune archives, detaches and drops the
// partitions wholly before the cut, and keeps the one the cut falls in;
// Restore loads the archives back, once.
func TestPrunePartitioned(t *testing.T) {
	ctx := context.Background()
	db, _ := openSchema(t)
	require.NoError(t, store.Migrate(ctx, db, "auditpgx_entry", store.Partitioned(store.Monthly)))
	_, err := store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{Now: utc("2024-01-01T00:00:00Z"), Future: 4})
	require.NoError(t, err)
	all := fillVaried(t, db, `SELECT generate_series(timestamptz '2024-01-01 00:00:00+00', '2024-05-31', interval '7 hours')`)
	var old []store.Entry
	for _, e := range all {
		if e.Created.Before(utc("2024-03-01T00:00:00Z")) {
			old = append(old, e)
		}
	}

	dir := t.TempDir()
	var steps []store.PruneStep
	res, err := store.Prune(ctx, db, "auditpgx_entry", store.PruneOptions{Before: utc("2024-03-15T00:00:00Z"), ArchiveDir: dir,
		Progress: func(s store.PruneStep) { steps = append(steps, s) }})
	require.NoError(t, err)
	require.True(t, res.Partitioned)
	require.Equal(t, steps, res.Steps)
	require.Len(t, res.Steps, 2)
	require.Equal(t, "auditpgx_entry_p2024_01", res.Steps[0].Partition)
	require.Equal(t, "auditpgx_entry_p2024_02", res.Steps[1].Partition)
	require.Equal(t, int64(len(old)), res.Entries)
	require.Equal(t, []string{"auditpgx_entry_p2024_03"}, res.Kept)
	for _, s := range res.Steps {
		require.Positive(t, s.Locked)
		t.Logf("%s: %d entries, ids %d to %d, locked %v", s.Partition, s.Entries, s.FirstID, s.LastID, s.Locked)
	}
	require.Equal(t, filepath.Join(dir, "auditpgx_entry_p2024_01.ndjson.gz"), res.Steps[0].Archive)
	archived := append(readArchive(t, res.Steps[0].Archive), readArchive(t, res.Steps[1].Archive)...)
	requireSameJSON(t, old, archived)
	m, _, err := store.ReadArchiveManifest(filepath.Join(dir, "auditpgx_entry_p2024_02.manifest.json"))
	require.NoError(t, err)
	require.Equal(t, store.ArchiveFormat, m.Format)
	require.Equal(t, "auditpgx_entry", m.Table)
	require.Equal(t, "auditpgx_entry_p2024_02", m.Partition)
	require.Equal(t, res.Steps[1].Entries, m.Entries)
	require.Equal(t, res.Steps[1].LastID, m.LastID)
	require.Len(t, m.SHA256, 64)

	left := allEntries(t, db)
	require.Equal(t, all[len(old):], left)
	require.NotContains(t, strings.Join(partitionsOf(t, db, "auditpgx_entry"), " "), "p2024_02")

	// Nothing more to do: a second run removes nothing.
	res, err = store.Prune(ctx, db, "auditpgx_entry", store.PruneOptions{Before: utc("2024-03-15T00:00:00Z")})
	require.NoError(t, err)
	require.Empty(t, res.Steps)

	for i, s := range steps {
		r, err := store.Restore(ctx, db, "auditpgx_entry", s.Archive)
		require.NoError(t, err)
		require.Equal(t, store.RestoreResult{Entries: s.Entries, Restored: s.Entries}, r, "archive %d", i)
	}
	require.Equal(t, all, allEntries(t, db), "restored as they were, in the DEFAULT partition")
	r, err := store.Restore(ctx, db, "auditpgx_entry", strings.TrimSuffix(steps[0].Archive, ".ndjson.gz")+".manifest.json")
	require.NoError(t, err)
	require.Equal(t, store.RestoreResult{Entries: steps[0].Entries, Skipped: steps[0].Entries}, r, "a second time, nothing")
	require.Equal(t, all, allEntries(t, db))
}

// On an unpartitioned entry table, Prune deletes the entries before the
// cut in batches of BatchSize, in id order, archived first; Restore
// loads them back.
func TestPrunePlain(t *testing.T) {
	ctx := context.Background()
	db, _ := openSchema(t)
	_, err := db.ExecContext(ctx, store.Schema)
	require.NoError(t, err)
	all := fillVaried(t, db, `SELECT generate_series(timestamptz '2024-01-01 00:00:00+00', '2024-01-31', interval '1 minute')
		ORDER BY random()`)
	var old []store.Entry
	for _, e := range all {
		if e.Created.Before(utc("2024-01-21T00:00:00Z")) {
			old = append(old, e)
		}
	}
	require.Len(t, old, 28800)

	dir := t.TempDir()
	res, err := store.Prune(ctx, db, "auditpgx_entry", store.PruneOptions{Before: utc("2024-01-21T00:00:00Z"), ArchiveDir: dir})
	require.NoError(t, err)
	require.False(t, res.Partitioned)
	require.Len(t, res.Steps, 3)
	require.Equal(t, int64(len(old)), res.Entries)
	var archived []store.Entry
	for i, s := range res.Steps {
		require.Equal(t, int64(min(10000, len(old)-10000*i)), s.Entries)
		require.Equal(t, old[10000*i].ID, s.FirstID)
		require.Equal(t, filepath.Join(dir, fmt.Sprintf("auditpgx_entry_%d-%d.ndjson.gz", s.FirstID, s.LastID)), s.Archive)
		t.Logf("batch %d: %d entries, ids %d to %d, locked %v", i+1, s.Entries, s.FirstID, s.LastID, s.Locked)
		archived = append(archived, readArchive(t, s.Archive)...)
	}
	requireSameJSON(t, old, archived)
	var newer []store.Entry
	for _, e := range all {
		if !e.Created.Before(utc("2024-01-21T00:00:00Z")) {
			newer = append(newer, e)
		}
	}
	require.Equal(t, newer, allEntries(t, db))

	for _, s := range res.Steps {
		r, err := store.Restore(ctx, db, "auditpgx_entry", s.Archive)
		require.NoError(t, err)
		require.Equal(t, s.Entries, r.Restored)
	}
	require.Equal(t, all, allEntries(t, db))

	// Without an archive, in smaller batches.
	res, err = store.Prune(ctx, db, "auditpgx_entry", store.PruneOptions{Before: utc("2024-01-02T00:00:00Z"), BatchSize: 500})
	require.NoError(t, err)
	require.Len(t, res.Steps, 3)
	require.Equal(t, int64(1440), res.Entries)
	require.Empty(t, res.Steps[0].Archive)
}

// A restored entry table made anew: ids are kept, the sequence moves past
// them, and later writes go on from there.
func TestRestoreIntoNewTable(t *testing.T) {
	ctx := context.Background()
	db, _ := openSchema(t)
	_, err := db.ExecContext(ctx, store.Schema)
	require.NoError(t, err)
	all := fillVaried(t, db, `SELECT generate_series(timestamptz '2024-01-01 00:00:00+00', '2024-01-02', interval '1 hour')`)
	dir := t.TempDir()
	res, err := store.Prune(ctx, db, "auditpgx_entry", store.PruneOptions{Before: utc("2025-01-01T00:00:00Z"), ArchiveDir: dir})
	require.NoError(t, err)
	require.Len(t, res.Steps, 1)

	require.NoError(t, store.Migrate(ctx, db, "fresh", store.Partitioned(store.Monthly)))
	r, err := store.Restore(ctx, db, "fresh", res.Steps[0].Archive)
	require.NoError(t, err)
	require.Equal(t, int64(len(all)), r.Restored)
	got, err := store.List(ctx, db, store.Query{Table: "fresh", Limit: 1000})
	require.NoError(t, err)
	require.Equal(t, all, got)
	var id int64
	require.NoError(t, db.QueryRowContext(ctx, `INSERT INTO fresh (operation, table_name, object_id, tx_id) VALUES ('create', 't', '1', 1) RETURNING id`).Scan(&id))
	require.Equal(t, all[len(all)-1].ID+1, id)
}

// A changed archive is refused whole; so are bad options.
func TestPruneRestoreErrors(t *testing.T) {
	ctx := context.Background()
	db, _ := openSchema(t)
	_, err := db.ExecContext(ctx, store.Schema)
	require.NoError(t, err)
	fillVaried(t, db, `SELECT generate_series(timestamptz '2024-01-01 00:00:00+00', '2024-01-02', interval '1 hour')`)
	dir := t.TempDir()
	res, err := store.Prune(ctx, db, "auditpgx_entry", store.PruneOptions{Before: utc("2025-01-01T00:00:00Z"), ArchiveDir: dir})
	require.NoError(t, err)
	path := res.Steps[0].Archive

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	data[len(data)/2] ^= 1
	require.NoError(t, os.WriteFile(path, data, 0o644))
	_, err = store.Restore(ctx, db, "auditpgx_entry", path)
	require.ErrorContains(t, err, "SHA-256")
	require.Empty(t, allEntries(t, db), "nothing restored")
	_, err = store.Restore(ctx, db, "auditpgx_entry", filepath.Join(dir, "nothing.ndjson.gz"))
	require.ErrorContains(t, err, "manifest")
	_, err = store.Restore(ctx, db, "auditpgx_entry", filepath.Join(dir, "entries.txt"))
	require.ErrorContains(t, err, "neither an archive")

	for _, tc := range []struct {
		opts store.PruneOptions
		want string
	}{
		{store.PruneOptions{}, "option Before is not set"},
		{store.PruneOptions{Before: time.Now().Add(time.Hour)}, "option Before "},
		{store.PruneOptions{Before: utc("2024-01-01T00:00:00Z"), BatchSize: -1}, "option BatchSize -1 is negative"},
		{store.PruneOptions{Before: utc("2024-01-01T00:00:00Z"), ArchiveDir: filepath.Join(dir, "missing")}, "ArchiveDir"},
	} {
		_, err := store.Prune(ctx, db, "auditpgx_entry", tc.opts)
		require.ErrorContains(t, err, `prune "auditpgx_entry": `+tc.want)
	}
	_, err = store.Prune(ctx, db, "auditpgx_entry", store.PruneOptions{Before: time.Now().Add(time.Hour)})
	require.ErrorContains(t, err, "is not in the past")
	_, err = store.Prune(ctx, db, "missing", store.PruneOptions{Before: utc("2024-01-01T00:00:00Z")})
	require.ErrorContains(t, err, "does not exist")
}
