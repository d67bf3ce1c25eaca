package store

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ArchiveFormat is the Format of the archives [Prune] writes: each line
// one entry row as the server writes it as JSON (row_to_json), every
// column verbatim, jsonb columns as they are stored. Format 1, read
// still, held entries as [Entry] marshals them, which keeps the changes
// of the entries auditpgx writes but not those of any jsonb value.
const ArchiveFormat = "auditpgx-entries-ndjson-gzip/2"

// archiveFormat1 is the first format; [Restore] and [Verify] read it.
const archiveFormat1 = "auditpgx-entries-ndjson-gzip/1"

// archiveRow is one line of an archive: the entry row as JSON, with its
// id and time.
type archiveRow struct {
	ID      int64     `json:"id"`
	Created time.Time `json:"created"`
	line    []byte
}

// Archive files: NAME.ndjson.gz holds the entries, NAME.manifest.json
// describes it.
const (
	archiveSuffix  = ".ndjson.gz"
	manifestSuffix = ".manifest.json"
)

// ArchiveManifest describes an archive that [Prune] wrote before removing
// its entries: a gzip file of NDJSON, one entry row as JSON per line
// (see [ArchiveFormat]; [ReadArchive] reads them as entries), in id
// order. It is written beside the archive as NAME.manifest.json.
type ArchiveManifest struct {
	Format string `json:"format"` // ArchiveFormat
	// Table is the entry table the entries were removed from, and
	// Partition the partition, for one removed whole ("" for a batch).
	Table     string `json:"table"`
	Partition string `json:"partition,omitempty"`
	// File is the archive's name, in the manifest's directory.
	File    string `json:"file"`
	Entries int64  `json:"entries"`
	// FirstID and LastID are the lowest and highest id archived;
	// FirstCreated and LastCreated the earliest and latest created.
	FirstID      int64     `json:"first_id"`
	LastID       int64     `json:"last_id"`
	FirstCreated time.Time `json:"first_created"`
	LastCreated  time.Time `json:"last_created"`
	// SHA256 is the hex SHA-256 of the archive file, as written.
	SHA256 string `json:"sha256"`
	// Seal is where the archived entries stood in the seal table's hash
	// chain when they were pruned; nil when no seal table was there.
	Seal *ArchiveSeal `json:"seal,omitempty"`
}

// ArchiveSeal is the part of a seal table's hash chain that covers an
// archive's entries, as it was when [Prune] removed them: a copy kept
// outside the database. [Verify] with the archive among
// VerifyOptions.Archives requires the seal table to hold it still.
// Checkpoints cover ids, partitions times: the first and the last
// checkpoint may cover entries of other archives, or entries kept, too.
type ArchiveSeal struct {
	// Table is the seal table.
	Table string `json:"table"`
	// FirstSeq and LastSeq are the first and the last checkpoint that
	// cover an archived entry.
	FirstSeq int64 `json:"first_seq"`
	LastSeq  int64 `json:"last_seq"`
	// Prev is the chain's hash before checkpoint FirstSeq, Hash its hash
	// after checkpoint LastSeq, in hex.
	Prev string `json:"prev"`
	Hash string `json:"hash"`
}

// add counts e into m.
func (m *ArchiveManifest) add(e *archiveRow) {
	if m.Entries == 0 || e.Created.Before(m.FirstCreated) {
		m.FirstCreated = e.Created
	}
	if m.Entries == 0 || e.Created.After(m.LastCreated) {
		m.LastCreated = e.Created
	}
	if m.Entries == 0 {
		m.FirstID = e.ID
	}
	m.LastID = e.ID
	m.Entries++
}

// writeArchive writes the entry rows that each yields, in id order, to
// dir/name.ndjson.gz and its manifest, each first to a temporary file
// that is synced and then renamed, so that a file of the final name is
// whole. It then reads the archive back and checks it against the
// manifest (verifyArchive).
func writeArchive(dir, name string, m ArchiveManifest, each func(yield func(*archiveRow) error) error) (ArchiveManifest, error) {
	m.Format, m.File = ArchiveFormat, name+archiveSuffix
	path := filepath.Join(dir, m.File)
	f, err := os.CreateTemp(dir, "."+m.File+".*")
	if err != nil {
		return m, err
	}
	defer os.Remove(f.Name()) // a no-op once renamed
	defer f.Close()
	sum := sha256.New()
	gz := gzip.NewWriter(io.MultiWriter(f, sum))
	buf := bufio.NewWriter(gz)
	var prev int64
	err = each(func(e *archiveRow) error {
		if m.Entries > 0 && e.ID <= prev {
			return fmt.Errorf("entry %d after entry %d: not in id order", e.ID, prev)
		}
		if bytes.IndexByte(e.line, '\n') >= 0 {
			return fmt.Errorf("entry %d: its JSON spans lines", e.ID)
		}
		prev = e.ID
		m.add(e)
		buf.Write(e.line)
		return buf.WriteByte('\n')
	})
	if err != nil {
		return m, err
	}
	if err := buf.Flush(); err != nil {
		return m, err
	}
	if err := gz.Close(); err != nil {
		return m, err
	}
	if err := syncClose(f); err != nil {
		return m, err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return m, err
	}
	m.SHA256 = hex.EncodeToString(sum.Sum(nil))
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	mf, err := os.CreateTemp(dir, "."+name+manifestSuffix+".*")
	if err != nil {
		return m, err
	}
	defer os.Remove(mf.Name())
	defer mf.Close()
	if _, err := mf.Write(append(data, '\n')); err != nil {
		return m, err
	}
	if err := syncClose(mf); err != nil {
		return m, err
	}
	if err := os.Rename(mf.Name(), filepath.Join(dir, name+manifestSuffix)); err != nil {
		return m, err
	}
	syncDir(dir)
	got, err := verifyArchive(dir, m, nil)
	if err != nil {
		return m, fmt.Errorf("reading %s back: %w", path, err)
	}
	return got, nil
}

// syncDir syncs the renames in dir where the file system can; where it
// cannot (some return EINVAL), the files themselves are synced already.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync() //nolint:errcheck // best effort, see above
		d.Close()
	}
}

func syncClose(f *os.File) error {
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// verifyArchive reads the archive that manifest m in dir describes and
// checks it against m: its SHA-256, that every line is an entry, in id
// order, and the count, ids and times. each, when not nil, is called with
// every entry read, its line a JSON object of the entry table's columns
// (for format 1, rebuilt from the entry). It returns the manifest as
// read.
func verifyArchive(dir string, m ArchiveManifest, each func(*archiveRow) error) (ArchiveManifest, error) {
	if m.Format != ArchiveFormat && m.Format != archiveFormat1 {
		return m, fmt.Errorf("format %q is not %q", m.Format, ArchiveFormat)
	}
	if m.File == "" || filepath.Base(m.File) != m.File {
		return m, fmt.Errorf("file %q is not a file name", m.File)
	}
	f, err := os.Open(filepath.Join(dir, m.File))
	if err != nil {
		return m, err
	}
	defer f.Close()
	// The checksum first, so that a changed file is named as such before
	// anything of it is read.
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		return m, err
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != m.SHA256 {
		return m, fmt.Errorf("%s: SHA-256 %s, but the manifest says %s", m.File, got, m.SHA256)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return m, err
	}
	gz, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return m, fmt.Errorf("%s: %w", m.File, err)
	}
	dec := json.NewDecoder(gz)
	got := ArchiveManifest{Format: m.Format, Table: m.Table, Partition: m.Partition, File: m.File, Seal: m.Seal}
	var prev int64
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return m, fmt.Errorf("%s: entry %d: %w", m.File, got.Entries+1, err)
		}
		e, err := readArchiveRow(m.Format, raw)
		if err != nil {
			return m, fmt.Errorf("%s: entry %d: %w", m.File, got.Entries+1, err)
		}
		if got.Entries > 0 && e.ID <= prev {
			return m, fmt.Errorf("%s: entry %d after entry %d: not in id order", m.File, e.ID, prev)
		}
		prev = e.ID
		got.add(e)
		if each != nil {
			if err := each(e); err != nil {
				return m, err
			}
		}
	}
	got.SHA256 = m.SHA256
	if got.Entries != m.Entries || got.FirstID != m.FirstID || got.LastID != m.LastID ||
		!got.FirstCreated.Equal(m.FirstCreated) || !got.LastCreated.Equal(m.LastCreated) {
		return m, fmt.Errorf("%s holds %d entries, ids %d to %d, but the manifest says %d, ids %d to %d",
			m.File, got.Entries, got.FirstID, got.LastID, m.Entries, m.FirstID, m.LastID)
	}
	return got, nil
}

// ReadArchiveManifest reads the manifest of an archive, given the path of
// the archive (NAME.ndjson.gz) or of its manifest (NAME.manifest.json);
// it returns the manifest and the directory both are in.
func ReadArchiveManifest(path string) (ArchiveManifest, string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	switch {
	case strings.HasSuffix(base, archiveSuffix):
		base = strings.TrimSuffix(base, archiveSuffix) + manifestSuffix
	case strings.HasSuffix(base, manifestSuffix):
	default:
		return ArchiveManifest{}, "", fmt.Errorf("auditpgx: %s is neither an archive (%s) nor its manifest (%s)", path, archiveSuffix, manifestSuffix)
	}
	data, err := os.ReadFile(filepath.Join(dir, base))
	if err != nil {
		return ArchiveManifest{}, "", fmt.Errorf("auditpgx: archive manifest: %w", err)
	}
	var m ArchiveManifest
	if err := json.Unmarshal(data, &m); err != nil {
		return ArchiveManifest{}, "", fmt.Errorf("auditpgx: archive manifest %s: %w", filepath.Join(dir, base), err)
	}
	return m, dir, nil
}

// scanArchiveRows reads the entries that from selects ("FROM … WHERE …
// ORDER BY id LIMIT …") as archive rows, in id order.
func scanArchiveRows(ctx context.Context, db Querier, from string, args []any, each func(*archiveRow) error) error {
	rows, err := db.QueryContext(ctx, `SELECT e.id, e.created, pg_catalog.row_to_json(e)::text FROM (SELECT `+entryColumns+` `+from+`) AS e ORDER BY e.id`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r archiveRow
		if err := rows.Scan(&r.ID, &r.Created, &r.line); err != nil {
			return err
		}
		if err := each(&r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// readArchiveRow reads one line of an archive of format.
func readArchiveRow(format string, line []byte) (*archiveRow, error) {
	if format == archiveFormat1 {
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, err
		}
		data, err := json.Marshal(e.columns())
		if err != nil {
			return nil, err
		}
		return &archiveRow{ID: e.ID, Created: e.Created, line: data}, nil
	}
	r := &archiveRow{line: line}
	if err := json.Unmarshal(line, r); err != nil {
		return nil, err
	}
	if r.Created.IsZero() {
		return nil, errors.New("no created time")
	}
	return r, nil
}

// entry reads the row as [scanEntries] reads one from the entry table.
func (r *archiveRow) entry() (*Entry, error) {
	var c struct {
		Entry
		Changes json.RawMessage `json:"changes"`
	}
	if err := json.Unmarshal(r.line, &c); err != nil {
		return nil, err
	}
	e := c.Entry
	e.Created = e.Created.UTC()
	if len(e.Context) == 0 || string(e.Context) == "null" {
		e.Context = nil
	}
	if len(c.Changes) > 0 && string(c.Changes) != "null" {
		if err := decodeChanges(&e, c.Changes); err != nil {
			return nil, fmt.Errorf("entry %d: %w", e.ID, err)
		}
	}
	return &e, nil
}

// ReadArchive checks the archive at path (the archive or its manifest)
// against its manifest, as [Restore] does, and calls each with every
// entry in id order, as [List] would have returned it. It returns the
// manifest.
func ReadArchive(path string, each func(*Entry) error) (ArchiveManifest, error) {
	m, dir, err := ReadArchiveManifest(path)
	if err != nil {
		return m, err
	}
	if _, err := verifyArchive(dir, m, nil); err != nil {
		return m, fmt.Errorf("auditpgx: archive %s: %w", path, err)
	}
	_, err = verifyArchive(dir, m, func(r *archiveRow) error {
		e, err := r.entry()
		if err != nil {
			return err
		}
		return each(e)
	})
	if err != nil {
		return m, fmt.Errorf("auditpgx: archive %s: %w", path, err)
	}
	return m, nil
}
