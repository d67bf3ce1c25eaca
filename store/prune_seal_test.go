package store_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/store"
)

// requireManifestSeal requires that the manifest of archive records the
// seal table's checkpoints that cover its first and last entry.
func requireManifestSeal(t *testing.T, db *sql.DB, archive string) store.ArchiveManifest {
	t.Helper()
	m, _, err := store.ReadArchiveManifest(archive)
	require.NoError(t, err)
	require.NotNil(t, m.Seal, "%s has no seal", archive)
	var first, last int64
	var prev, hash []byte
	require.NoError(t, db.QueryRow(`SELECT seq, prev_hash FROM auditpgx_seal WHERE $1 BETWEEN first_id AND last_id`, m.FirstID).Scan(&first, &prev))
	require.NoError(t, db.QueryRow(`SELECT seq, hash FROM auditpgx_seal WHERE $1 BETWEEN first_id AND last_id`, m.LastID).Scan(&last, &hash))
	require.Equal(t, store.ArchiveSeal{Table: "auditpgx_seal", FirstSeq: first, LastSeq: last,
		Prev: hex.EncodeToString(prev), Hash: hex.EncodeToString(hash)}, *m.Seal)
	return m
}

// rewriteArchive rewrites an archive with change applied to each entry
// line, and its manifest's checksum to match: a forgery that the
// manifest alone cannot tell.
func rewriteArchive(t *testing.T, archive string, change func(line map[string]any)) {
	t.Helper()
	f, err := os.Open(archive)
	require.NoError(t, err)
	gz, err := gzip.NewReader(f)
	require.NoError(t, err)
	dec := json.NewDecoder(gz)
	dec.UseNumber() // numbers as written, so that only change changes them
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	for dec.More() {
		var line map[string]any
		require.NoError(t, dec.Decode(&line))
		change(line)
		b, err := json.Marshal(line)
		require.NoError(t, err)
		_, err = w.Write(append(b, '\n'))
		require.NoError(t, err)
	}
	f.Close()
	require.NoError(t, w.Close())
	require.NoError(t, os.WriteFile(archive, out.Bytes(), 0o600))
	editManifest(t, archive, func(m *store.ArchiveManifest) {
		sum := sha256.Sum256(out.Bytes())
		m.SHA256 = hex.EncodeToString(sum[:])
	})
}

func editManifest(t *testing.T, archive string, edit func(*store.ArchiveManifest)) {
	t.Helper()
	path := strings.TrimSuffix(archive, ".ndjson.gz") + ".manifest.json"
	m, _, err := store.ReadArchiveManifest(path)
	require.NoError(t, err)
	edit(&m)
	data, err := json.Marshal(m)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o600))
}

// On a sealed, unpartitioned entry table whose ids do not follow their
// times, Prune removes only sealed entries; its archives record their
// place in the chain; Verify, given the archives, verifies the whole
// chain across the removed entries, and finds a forged archive or a seal
// table that no longer holds what a manifest recorded.
func TestPruneSealedPlain(t *testing.T) {
	ctx := context.Background()
	db, _ := openSchema(t)
	_, err := db.ExecContext(ctx, store.Schema) // unpartitioned on either test layout
	require.NoError(t, err)
	require.NoError(t, store.MigrateSeal(ctx, db, ""))
	all := fillVaried(t, db, `SELECT generate_series(timestamptz '2024-01-01 00:00:00+00', '2024-01-31', interval '5 minutes')
		ORDER BY random()`)
	cut := utc("2024-01-21T00:00:00Z")
	opts := store.PruneOptions{Before: cut, BatchSize: 1500}

	_, err = store.Prune(ctx, db, "auditpgx_entry", opts)
	require.ErrorContains(t, err, `no entry is sealed yet in seal table "auditpgx_seal": seal them first`)
	require.Equal(t, int64(len(all)), countEntries(t, db, "true"), "nothing removed")
	_, err = store.Seal(ctx, db, store.SealOptions{})
	require.NoError(t, err)
	// Entries created before the cut but sealed by no checkpoint.
	_, err = db.ExecContext(ctx, `INSERT INTO auditpgx_entry (created, operation, table_name, object_id, tx_id)
		VALUES ('2024-01-02', 'create', 't', '1', 1), ('2030-01-02', 'create', 't', '2', 2)`)
	require.NoError(t, err)
	_, err = store.Prune(ctx, db, "auditpgx_entry", opts)
	require.ErrorContains(t, err, "but the last checkpoint ends at entry")
	require.Equal(t, int64(len(all))+2, countEntries(t, db, "true"), "nothing removed")
	_, err = store.Seal(ctx, db, store.SealOptions{})
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO auditpgx_entry (created, operation, table_name, object_id, tx_id)
		VALUES (now(), 'create', 't', '3', 3)`) // after the cut: unsealed, kept
	require.NoError(t, err)
	total := countEntries(t, db, "true")

	dir := t.TempDir()
	opts.ArchiveDir = dir
	res, err := store.Prune(ctx, db, "auditpgx_entry", opts)
	require.NoError(t, err)
	require.Len(t, res.Steps, 4)
	for _, s := range res.Steps {
		requireManifestSeal(t, db, s.Archive)
	}

	_, err = store.Verify(ctx, db, store.VerifyOptions{})
	var ve *store.VerifyError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, store.EntryDeleted, ve.Kind, "without the archives")
	v, err := store.Verify(ctx, db, store.VerifyOptions{Archives: []string{dir}})
	require.NoError(t, err)
	require.Equal(t, total-1, v.Entries, "every entry sealed, removed or kept")
	require.Equal(t, int64(1), v.Unsealed)
	var paths []string
	for _, s := range res.Steps {
		paths = append(paths, s.Archive)
	}
	_, err = store.Verify(ctx, db, store.VerifyOptions{Archives: paths[1:]})
	require.ErrorAs(t, err, &ve, "an archive left out")
	require.Equal(t, store.EntryDeleted, ve.Kind)
	v, err = store.Verify(ctx, db, store.VerifyOptions{Archives: append(paths, paths[0])})
	require.NoError(t, err, "an archive given twice")
	require.Equal(t, total-1, v.Entries)

	// A restored archive: its entries come from the table again.
	_, err = store.Restore(ctx, db, "auditpgx_entry", paths[0])
	require.NoError(t, err)
	v, err = store.Verify(ctx, db, store.VerifyOptions{Archives: []string{dir}})
	require.NoError(t, err)
	require.Equal(t, total-1, v.Entries)
	// Some of it removed again: from the archive once more.
	_, err = db.ExecContext(ctx, `DELETE FROM auditpgx_entry WHERE id = ANY ($1)`, []int64{res.Steps[0].FirstID, res.Steps[0].LastID})
	require.NoError(t, err)
	v, err = store.Verify(ctx, db, store.VerifyOptions{Archives: []string{dir}})
	require.NoError(t, err)
	require.Equal(t, total-1, v.Entries)

	// A manifest whose chain position the seal table no longer holds:
	// as after the chain was recomputed from a changed entry on.
	m, _, err := store.ReadArchiveManifest(paths[1])
	require.NoError(t, err)
	editManifest(t, paths[1], func(m *store.ArchiveManifest) { m.Seal.Hash = strings.Repeat("00", 32) })
	_, err = store.Verify(ctx, db, store.VerifyOptions{Archives: []string{dir}})
	require.ErrorAs(t, err, &ve)
	require.Equal(t, store.CheckpointAltered, ve.Kind)
	require.Equal(t, m.Seal.LastSeq, ve.Checkpoint)
	require.Contains(t, ve.Reason, "has a hash other than the one the manifest of archive "+strings.TrimSuffix(paths[1], ".ndjson.gz")+".manifest.json")
	editManifest(t, paths[1], func(mm *store.ArchiveManifest) { mm.Seal = m.Seal })

	// An archive changed with its checksum: the chain names the entry.
	edited := res.Steps[2].FirstID
	rewriteArchive(t, paths[2], func(line map[string]any) {
		if line["id"].(json.Number).String() == strconv.FormatInt(edited, 10) {
			line["object_id"] = "forged"
		}
	})
	_, err = store.Verify(ctx, db, store.VerifyOptions{Archives: []string{dir}})
	require.ErrorAs(t, err, &ve)
	require.Equal(t, store.EntryEdited, ve.Kind)
	require.Equal(t, edited, ve.EntryID)

	// An archive changed without its checksum is named as such.
	require.NoError(t, os.WriteFile(paths[3], []byte("not gzip"), 0o600))
	_, err = store.Verify(ctx, db, store.VerifyOptions{Archives: []string{dir}})
	require.ErrorContains(t, err, "verify: archive "+strings.TrimSuffix(paths[3], ".ndjson.gz")+".manifest.json: ")
	require.ErrorContains(t, err, "but the manifest says")
	require.NotErrorIs(t, err, store.ErrTampered)

	_, err = store.Verify(ctx, db, store.VerifyOptions{Archives: []string{t.TempDir()}})
	require.ErrorContains(t, err, "holds no archive manifest")
	_, err = store.Prune(ctx, db, "auditpgx_entry", store.PruneOptions{Before: cut, SealTable: "nosuch"})
	require.ErrorContains(t, err, `option SealTable: "nosuch" does not exist`)
}

// On a partitioned entry table, checkpoints cross partitions: the first
// and last checkpoint of an archive cover entries of the next partition
// too. Verify with the archives verifies the chain across them.
func TestPruneSealedPartitioned(t *testing.T) {
	ctx := context.Background()
	db := sealSchema(t)
	_, err := db.ExecContext(ctx, `DROP TABLE auditpgx_entry`)
	require.NoError(t, err)
	require.NoError(t, store.Migrate(ctx, db, "auditpgx_entry", store.Partitioned(store.Monthly)))
	_, err = store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{Now: utc("2024-01-01T00:00:00Z"), Future: 4})
	require.NoError(t, err)
	// Ids a few days out of step with times, as concurrent writers give.
	fillVaried(t, db, `SELECT at FROM generate_series(timestamptz '2024-01-01 00:00:00+00', '2024-05-31', interval '1 hour') AS at
		ORDER BY at + random() * interval '5 days'`)
	_, err = store.Seal(ctx, db, store.SealOptions{})
	require.NoError(t, err)
	total := countEntries(t, db, "true")

	dir := t.TempDir()
	res, err := store.Prune(ctx, db, "auditpgx_entry", store.PruneOptions{Before: utc("2024-03-15T00:00:00Z"), ArchiveDir: dir})
	require.NoError(t, err)
	require.Len(t, res.Steps, 2)
	m0 := requireManifestSeal(t, db, res.Steps[0].Archive)
	m1 := requireManifestSeal(t, db, res.Steps[1].Archive)
	require.GreaterOrEqual(t, m0.Seal.LastSeq, m1.Seal.FirstSeq, "ids interleave: a checkpoint covers both partitions")

	_, err = store.Verify(ctx, db, store.VerifyOptions{})
	require.ErrorIs(t, err, store.ErrTampered, "without the archives")
	v, err := store.Verify(ctx, db, store.VerifyOptions{Archives: []string{dir}})
	require.NoError(t, err)
	require.Equal(t, total, v.Entries)
	require.Zero(t, v.Unsealed)

	// An entry of an old month that no checkpoint covers stops Prune.
	_, err = db.ExecContext(ctx, `INSERT INTO auditpgx_entry (created, operation, table_name, object_id, tx_id)
		VALUES ('2024-03-02', 'create', 't', '1', 1)`)
	require.NoError(t, err)
	before := countEntries(t, db, "true")
	_, err = store.Prune(ctx, db, "auditpgx_entry", store.PruneOptions{Before: utc("2024-04-15T00:00:00Z")})
	require.ErrorContains(t, err, `auditpgx_entry_p2024_03": entries up to id `)
	require.ErrorContains(t, err, "seal them first")
	require.Equal(t, before, countEntries(t, db, "true"))
}

// Archives of the first format, which held entries as Entry marshals
// them, are read and restored still.
func TestArchiveFormat1(t *testing.T) {
	ctx := context.Background()
	db, _ := openSchema(t)
	_, err := db.ExecContext(ctx, store.Schema)
	require.NoError(t, err)
	all := fillVaried(t, db, `SELECT generate_series(timestamptz '2024-01-01 00:00:00+00', '2024-01-01 10:00', interval '1 hour')`)
	dir := t.TempDir()
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	for _, e := range all {
		b, err := json.Marshal(e)
		require.NoError(t, err)
		_, err = w.Write(append(b, '\n'))
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "old.ndjson.gz"), gz.Bytes(), 0o600))
	sum := sha256.Sum256(gz.Bytes())
	m, err := json.Marshal(store.ArchiveManifest{Format: "auditpgx-entries-ndjson-gzip/1", Table: "auditpgx_entry", File: "old.ndjson.gz",
		Entries: int64(len(all)), FirstID: all[0].ID, LastID: all[len(all)-1].ID,
		FirstCreated: all[0].Created, LastCreated: all[len(all)-1].Created, SHA256: hex.EncodeToString(sum[:])})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "old.manifest.json"), m, 0o600))

	requireSameJSON(t, all, readArchive(t, filepath.Join(dir, "old.ndjson.gz")))
	_, err = db.ExecContext(ctx, `DELETE FROM auditpgx_entry`)
	require.NoError(t, err)
	r, err := store.Restore(ctx, db, "auditpgx_entry", filepath.Join(dir, "old.ndjson.gz"))
	require.NoError(t, err)
	require.Equal(t, int64(len(all)), r.Restored)
	require.Equal(t, all, allEntries(t, db))
}
