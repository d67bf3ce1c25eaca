package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
)

// verifyArchives are the archives of pruned entries that [Verify] reads
// in place of the entries the entry table no longer holds, merged in id
// order.
type verifyArchives struct {
	srcs []*archiveSource
}

// archiveSource is one archive, read entry by entry in id order.
type archiveSource struct {
	path      string
	manifest  ArchiveManifest
	next      func() (*archiveRow, error, bool)
	stop      func()
	head      *archiveRow // the next entry, nil when none is read yet or at the end
	exhausted bool
}

// errStopArchive ends the read of an archive that Verify no longer needs.
var errStopArchive = errors.New("stop")

// openVerifyArchives reads the manifests of paths (archives, manifests,
// or directories whose every manifest is taken) and checks each archive
// against its manifest, so that a changed file is named as such before
// any of its entries is compared with a checkpoint.
func openVerifyArchives(paths []string) (*verifyArchives, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("auditpgx: verify: archive: %w", err)
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		found, err := filepath.Glob(filepath.Join(p, "*"+manifestSuffix))
		if err != nil {
			return nil, fmt.Errorf("auditpgx: verify: archives in %s: %w", p, err)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("auditpgx: verify: %s holds no archive manifest (*%s)", p, manifestSuffix)
		}
		files = append(files, found...)
	}
	a := &verifyArchives{}
	for _, f := range files {
		m, dir, err := ReadArchiveManifest(f)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("auditpgx: verify: %w", err)
		}
		if _, err := verifyArchive(dir, m, nil); err != nil {
			a.close()
			return nil, fmt.Errorf("auditpgx: verify: archive %s: %w", f, err)
		}
		src := &archiveSource{path: f, manifest: m}
		src.next, src.stop = iter.Pull2(func(yield func(*archiveRow, error) bool) {
			_, err := verifyArchive(dir, m, func(e *archiveRow) error {
				if !yield(e, nil) {
					return errStopArchive
				}
				return nil
			})
			if err != nil && !errors.Is(err, errStopArchive) {
				yield(nil, fmt.Errorf("auditpgx: verify: archive %s: %w", f, err))
			}
		})
		a.srcs = append(a.srcs, src)
	}
	return a, nil
}

func (a *verifyArchives) close() {
	if a == nil {
		return
	}
	for _, s := range a.srcs {
		s.stop()
	}
}

// peek returns the source's next entry with an id above lower, nil at its
// end.
func (s *archiveSource) peek(lower int64) (*archiveRow, error) {
	for !s.exhausted && (s.head == nil || s.head.ID <= lower) {
		e, err, ok := s.next()
		switch {
		case !ok:
			s.exhausted, s.head = true, nil
		case err != nil:
			return nil, err
		default:
			s.head = e
		}
	}
	return s.head, nil
}

// between returns, as a JSON array of entry rows for
// jsonb_populate_recordset, the archived entries with ids after lower and
// up to upper, each id once (the first archive given that holds it), and
// how many there are.
func (a *verifyArchives) between(lower, upper int64) (string, int, error) {
	var rows jsonRows
	seen := map[int64]bool{}
	for _, s := range a.srcs {
		for {
			e, err := s.peek(lower)
			if err != nil {
				return "", 0, err
			}
			if e == nil || e.ID > upper {
				break
			}
			if !seen[e.ID] {
				seen[e.ID] = true
				rows.add(e)
			}
			s.head = nil
		}
	}
	if rows.n == 0 {
		return "", 0, nil
	}
	return rows.json(), rows.n, nil
}

// checkManifests compares the chain positions the archives' manifests
// recorded when their entries were pruned (ArchiveManifest.Seal) with the
// seal table's checkpoints: a seal table rewritten since does not hold
// them any more.
func (v *verifier) checkManifests(ctx context.Context, a *verifyArchives) error {
	srcs := slices.Clone(a.srcs)
	slices.SortStableFunc(srcs, func(x, y *archiveSource) int { return cmp.Compare(x.manifest.FirstID, y.manifest.FirstID) })
	for _, s := range srcs {
		ms := s.manifest.Seal
		if ms == nil {
			continue
		}
		check := func(seq int64, column, want string) error {
			var got []byte
			err := queryRowInto(ctx, v.db, `SELECT `+column+` FROM `+v.seal.Quoted()+` WHERE seq = $1`, []any{seq}, &got)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return checkpointAltered(seq, "is missing, but the manifest of archive %s names it", s.path)
			case err != nil:
				return fmt.Errorf("auditpgx: verify: read seal table %s: %w", v.seal.Quoted(), err)
			case hex.EncodeToString(got) != want:
				return checkpointAltered(seq, "has a %s other than the one the manifest of archive %s recorded when its entries were pruned", column, s.path)
			}
			return nil
		}
		if err := check(ms.FirstSeq, "prev_hash", ms.Prev); err != nil {
			return err
		}
		if err := check(ms.LastSeq, "hash", ms.Hash); err != nil {
			return err
		}
	}
	return nil
}
