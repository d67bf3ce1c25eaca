package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/auditpgx/auditpgx/internal/record"
)

// defaultPruneBatch is how many entries one transaction of Prune removes
// from an unpartitioned entry table by default.
const defaultPruneBatch = 10_000

// PruneOptions configures [Prune].
type PruneOptions struct {
	// Before is the cut: entries created before it are removed. It must be
	// set, and in the past by the database server's clock.
	Before time.Time

	// ArchiveDir, when set, is an existing directory where each partition
	// or batch is written before its entries are removed: NAME.ndjson.gz,
	// one [Entry] as JSON per line in id order, and NAME.manifest.json, an
	// [ArchiveManifest]. The archive is read back and checked against its
	// manifest before anything is removed; [Restore] loads it back. NAME
	// is the partition's, or the entry table's with the batch's first and
	// last id (auditpgx_entry_1-10000).
	ArchiveDir string

	// BatchSize is the most entries one transaction removes from an
	// unpartitioned entry table. Default: 10,000.
	BatchSize int

	// LockTimeout bounds the wait for the lock that detaching a partition
	// takes on the entry table (ACCESS EXCLUSIVE, held for as long as
	// detaching and dropping it take): Prune then fails, leaving that
	// partition and those after it. Zero keeps the session's setting.
	LockTimeout time.Duration

	// Progress, when set, is called after each partition or batch removed.
	Progress func(PruneStep)

	// SealTable is the seal table of the entry table ([Seal]), named as
	// for [SealOptions]; "" is auditpgx_seal. When it exists, Prune
	// refuses to remove an entry that no checkpoint covers yet (seal
	// first: removed unsealed, it would be protected by nothing), and
	// each archive's manifest records where its entries stood in the
	// hash chain ([ArchiveManifest].Seal), which [Verify] checks when
	// given the archive. The role that prunes then needs SELECT on it.
	SealTable string
}

// PruneStep is one partition or batch that [Prune] removed.
type PruneStep struct {
	// Partition is the partition detached and dropped, "" for a batch of
	// an unpartitioned entry table.
	Partition string
	// Entries is how many entries it held, FirstID and LastID the lowest
	// and highest id (0 when none).
	Entries         int64
	FirstID, LastID int64
	// Locked is how long the transaction that removed them held its
	// locks: for a partition, from detaching it to the commit (the entry
	// table is locked ACCESS EXCLUSIVE meanwhile); for a batch, its DELETE
	// and commit (row locks, which writes and reads do not wait for).
	Locked time.Duration
	// Archive is the path of the archive written, "" without ArchiveDir.
	Archive string
}

// PruneResult is what [Prune] removed.
type PruneResult struct {
	Partitioned bool
	Steps       []PruneStep
	Entries     int64 // the entries removed, in all
	// Kept names the partitions that hold entries before the cut but were
	// kept: those that hold later ones too, and the DEFAULT partition.
	Kept []string
}

// Prune removes the entries of the entry table named table that were
// created before opts.Before. On a partitioned entry table it detaches and
// drops each partition whose range lies wholly before the cut, a
// partition at a time, and keeps the others (PruneResult.Kept); on an
// unpartitioned one it deletes the entries in batches of opts.BatchSize,
// in id order, each batch in a short transaction of its own. With
// opts.ArchiveDir, each partition or batch is first written to an archive
// and checked (see [PruneOptions]). An interrupted Prune leaves whole
// partitions and batches, removed or not, and may run again.
//
// Prune must run as the entry table's owner, or a role that may delete
// from it: the application's role, set up as docs/SECURITY.md says, gets
// a permission error. When the entry table is sealed (PruneOptions.SealTable),
// only sealed entries are removed; [Verify] reports them as deleted
// unless it starts after them (VerifyOptions.FromID) or reads them from
// their archives (VerifyOptions.Archives).
//
// A Before that is zero or not in the past, an entry table that does not
// exist, and an archive that does not read back as written are errors.
func Prune(ctx context.Context, db *sql.DB, table string, opts PruneOptions) (PruneResult, error) {
	t, err := parseTableName(table)
	if err != nil {
		return PruneResult{}, fmt.Errorf("%w %q: %v", ErrInvalidTableName, table, err)
	}
	fail := func(err error) (PruneResult, error) {
		return PruneResult{}, fmt.Errorf("auditpgx: prune %q: %w", table, err)
	}
	switch {
	case opts.Before.IsZero():
		return fail(errors.New("option Before is not set"))
	case opts.BatchSize < 0:
		return fail(fmt.Errorf("option BatchSize %d is negative", opts.BatchSize))
	case opts.LockTimeout < 0:
		return fail(fmt.Errorf("option LockTimeout %v is negative", opts.LockTimeout))
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = defaultPruneBatch
	}
	if opts.ArchiveDir != "" {
		if fi, err := os.Stat(opts.ArchiveDir); err != nil {
			return fail(fmt.Errorf("ArchiveDir: %w", err))
		} else if !fi.IsDir() {
			return fail(fmt.Errorf("ArchiveDir %s is not a directory", opts.ArchiveDir))
		}
	}
	// The entry table is append-only to the driver's other statements.
	ctx = record.Migrating(ctx)
	now, err := serverNow(ctx, db)
	if err != nil {
		return fail(err)
	}
	if !opts.Before.Before(now) {
		return fail(fmt.Errorf("option Before %s is not in the past", opts.Before.UTC().Format(time.RFC3339)))
	}
	lay, err := readLayout(ctx, db, t)
	switch {
	case err != nil:
		return fail(err)
	case !lay.exists:
		return fail(errors.New("the entry table does not exist"))
	}
	p := pruner{db: db, t: t, opts: opts, res: PruneResult{Partitioned: lay.partitioned}}
	if p.seal, err = readPruneSeal(ctx, db, opts.SealTable); err != nil {
		return fail(err)
	}
	if lay.partitioned {
		err = p.partitions(ctx)
	} else {
		err = p.batches(ctx)
	}
	if err != nil {
		// With what was removed before the failure.
		_, err = fail(err)
		return p.res, err
	}
	return p.res, nil
}

// pruner is one Prune.
type pruner struct {
	db   *sql.DB
	t    tableName
	opts PruneOptions
	res  PruneResult
	seal *pruneSeal // nil when there is no seal table
}

func (p *pruner) done(step PruneStep) {
	p.res.Steps = append(p.res.Steps, step)
	p.res.Entries += step.Entries
	if p.opts.Progress != nil {
		p.opts.Progress(step)
	}
}

// partitions removes the partitions that lie before the cut, oldest
// first.
func (p *pruner) partitions(ctx context.Context) error {
	parts, err := readPartitions(ctx, p.db, p.t)
	if err != nil {
		return err
	}
	// By their upper bound; MAXVALUE and DEFAULT last.
	slices.SortStableFunc(parts, func(a, b partition) int {
		switch {
		case a.to.IsZero() && b.to.IsZero():
			return 0
		case a.to.IsZero():
			return 1
		case b.to.IsZero():
			return -1
		}
		return a.to.Compare(b.to)
	})
	cut := p.opts.Before
	// Refused before anything is removed: a partition to drop that holds
	// an unsealed entry.
	for _, part := range parts {
		if !part.isDefault && !part.to.IsZero() && !part.to.After(cut) && p.seal != nil {
			var last int64
			if err := queryRowInto(ctx, p.db, `SELECT coalesce(max(id), 0) FROM `+part.name.Quoted(), nil, &last); err != nil {
				return err
			}
			if err := p.seal.sealed(last); err != nil {
				return fmt.Errorf("partition %s: %w", part.name.Quoted(), err)
			}
		}
	}
	for _, part := range parts {
		switch {
		case part.isDefault:
			var old bool
			if err := queryRowInto(ctx, p.db, `SELECT EXISTS (SELECT FROM `+part.name.Quoted()+` WHERE created < $1)`, []any{cut}, &old); err != nil {
				return err
			}
			if old {
				p.res.Kept = append(p.res.Kept, part.shown)
			}
		case !part.to.IsZero() && !part.to.After(cut):
			if err := p.partition(ctx, part); err != nil {
				return fmt.Errorf("partition %s: %w", part.name.Quoted(), err)
			}
		case part.from.IsZero() || part.from.Before(cut):
			p.res.Kept = append(p.res.Kept, part.shown)
		}
	}
	return nil
}

// partition archives, detaches and drops one partition, in one
// transaction in which nothing can be written to it.
func (p *pruner) partition(ctx context.Context, part partition) error {
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after a successful commit
	q := part.name.Quoted()
	if _, err := tx.ExecContext(ctx, `LOCK TABLE `+q+` IN SHARE MODE`); err != nil {
		return err
	}
	step := PruneStep{Partition: part.shown}
	if err := queryRowInto(ctx, tx, `SELECT count(*), coalesce(min(id), 0), coalesce(max(id), 0) FROM `+q, nil,
		&step.Entries, &step.FirstID, &step.LastID); err != nil {
		return err
	}
	sealed, err := p.seal.covering(ctx, tx, step)
	if err != nil {
		return err
	}
	if p.opts.ArchiveDir != "" {
		m, err := writeArchive(p.opts.ArchiveDir, part.name.Rel, ArchiveManifest{Table: p.t.String(), Partition: part.shown, Seal: sealed},
			func(yield func(*archiveRow) error) error {
				return scanArchiveRows(ctx, tx, `FROM `+q, nil, yield)
			})
		if err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		if m.Entries != step.Entries {
			return fmt.Errorf("archive: %d entries archived of the %d counted", m.Entries, step.Entries)
		}
		step.Archive = filepath.Join(p.opts.ArchiveDir, m.File)
	}
	if err := setLockTimeout(ctx, tx, p.opts.LockTimeout); err != nil {
		return err
	}
	began := time.Now()
	if _, err := tx.ExecContext(ctx, `ALTER TABLE `+p.t.Quoted()+` DETACH PARTITION `+q); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE `+q); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	step.Locked = time.Since(began)
	p.done(step)
	return nil
}

// batches deletes the entries before the cut from an unpartitioned entry
// table, BatchSize at a time in id order, each batch archived first.
func (p *pruner) batches(ctx context.Context) error {
	if p.seal != nil {
		// Refused before anything is removed.
		var last int64
		if err := queryRowInto(ctx, p.db, `SELECT coalesce(max(id), 0) FROM `+p.t.Quoted()+` WHERE created < $1`,
			[]any{p.opts.Before}, &last); err != nil {
			return err
		}
		if err := p.seal.sealed(last); err != nil {
			return err
		}
	}
	var after int64
	for {
		var (
			step PruneStep
			ids  []int64
			rows []archiveRow
		)
		const next = ` FROM %s WHERE created < $1 AND id > $2 ORDER BY id LIMIT $3`
		args := []any{p.opts.Before, after, p.opts.BatchSize}
		if p.opts.ArchiveDir != "" {
			err := scanArchiveRows(ctx, p.db, fmt.Sprintf(next, p.t.Quoted()), args, func(r *archiveRow) error {
				rows = append(rows, *r)
				ids = append(ids, r.ID)
				return nil
			})
			if err != nil {
				return err
			}
		} else if err := scanIDs(ctx, p.db, `SELECT id`+fmt.Sprintf(next, p.t.Quoted()), args, &ids); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		step.Entries, step.FirstID, step.LastID = int64(len(ids)), ids[0], ids[len(ids)-1]
		sealed, err := p.seal.covering(ctx, p.db, step)
		if err != nil {
			return err
		}
		if p.opts.ArchiveDir != "" {
			name := fmt.Sprintf("%s_%d-%d", p.t.Rel, step.FirstID, step.LastID)
			m, err := writeArchive(p.opts.ArchiveDir, name, ArchiveManifest{Table: p.t.String(), Seal: sealed},
				func(yield func(*archiveRow) error) error {
					for i := range rows {
						if err := yield(&rows[i]); err != nil {
							return err
						}
					}
					return nil
				})
			if err != nil {
				return fmt.Errorf("archive of entries %d to %d: %w", step.FirstID, step.LastID, err)
			}
			step.Archive = filepath.Join(p.opts.ArchiveDir, m.File)
		}
		locked, err := p.deleteIDs(ctx, ids)
		if err != nil {
			return fmt.Errorf("entries %d to %d: %w", step.FirstID, step.LastID, err)
		}
		step.Locked = locked
		p.done(step)
		after = step.LastID
	}
}

// deleteIDs deletes the entries of ids, all or none, and returns how long
// its transaction took.
func (p *pruner) deleteIDs(ctx context.Context, ids []int64) (time.Duration, error) {
	began := time.Now()
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after a successful commit
	r, err := tx.ExecContext(ctx, `DELETE FROM `+p.t.Quoted()+` WHERE id = ANY ($1::bigint[])`, ids)
	if err != nil {
		return 0, err
	}
	if n, err := r.RowsAffected(); err != nil {
		return 0, err
	} else if n != int64(len(ids)) {
		// Deleted by someone else meanwhile: what was archived is not
		// what this would remove.
		return 0, fmt.Errorf("%d of the %d entries read are no longer there; nothing removed", int64(len(ids))-n, len(ids))
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return time.Since(began), nil
}

// setLockTimeout sets lock_timeout for the rest of the transaction q,
// unless d is zero.
func setLockTimeout(ctx context.Context, q Querier, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	_, err := q.ExecContext(ctx, `SELECT pg_catalog.set_config('lock_timeout', $1, true)`, fmt.Sprint(max(d.Milliseconds(), 1)))
	return err
}

// scanIDs appends the ids that query selects to ids.
func scanIDs(ctx context.Context, db Querier, query string, args []any, ids *[]int64) error {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return err
		}
		*ids = append(*ids, id)
	}
	return rows.Err()
}
