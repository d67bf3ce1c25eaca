package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
)

// pruneSeal is the seal table that [Prune] keeps in step with: the
// entries it removes must be sealed, and their archives record where they
// stand in the chain.
type pruneSeal struct {
	table tableName
	// through is the last checkpoint's LastID: every entry up to it is
	// sealed. 0 with no checkpoint.
	through int64
	any     bool
}

// readPruneSeal finds the seal table named table ("" for auditpgx_seal)
// and its last checkpoint; nil when it does not exist and was not named.
func readPruneSeal(ctx context.Context, db Querier, table string) (*pruneSeal, error) {
	t, err := sealTableName(table)
	if err != nil {
		return nil, err
	}
	var exists bool
	if err := queryRowInto(ctx, db, `SELECT pg_catalog.to_regclass($1) IS NOT NULL`, []any{t.Quoted()}, &exists); err != nil {
		return nil, err
	}
	if !exists {
		if table != "" {
			return nil, fmt.Errorf("option SealTable: %s does not exist", t.Quoted())
		}
		return nil, nil
	}
	last, ok, err := lastCheckpoint(ctx, db, t)
	if err != nil {
		return nil, fmt.Errorf("%w (the role that prunes needs SELECT on the seal table, docs/SECURITY.md)", err)
	}
	return &pruneSeal{table: t, through: last.LastID, any: ok}, nil
}

// covering refuses a step whose entries are not all sealed, and returns
// the part of the chain that covers them; nil without a seal table or
// entries.
func (s *pruneSeal) covering(ctx context.Context, db Querier, step PruneStep) (*ArchiveSeal, error) {
	if s == nil || step.Entries == 0 {
		return nil, nil
	}
	if err := s.sealed(step.LastID); err != nil {
		return nil, err
	}
	a := &ArchiveSeal{Table: s.table.String()}
	var prev, hash []byte
	// The checkpoint with the lowest last_id at or above an id covers it:
	// a sealed entry's id lies in a checkpoint's range.
	const covering = ` FROM %s WHERE last_id >= $1 ORDER BY last_id LIMIT 1`
	if err := queryRowInto(ctx, db, `SELECT seq, prev_hash`+fmt.Sprintf(covering, s.table.Quoted()), []any{step.FirstID}, &a.FirstSeq, &prev); err != nil {
		return nil, s.readErr(err)
	}
	if err := queryRowInto(ctx, db, `SELECT seq, hash`+fmt.Sprintf(covering, s.table.Quoted()), []any{step.LastID}, &a.LastSeq, &hash); err != nil {
		return nil, s.readErr(err)
	}
	a.Prev, a.Hash = hex.EncodeToString(prev), hex.EncodeToString(hash)
	return a, nil
}

// sealed refuses to remove entries up to id last unless a checkpoint
// covers them all.
func (s *pruneSeal) sealed(last int64) error {
	if s == nil || (s.any && last <= s.through) {
		return nil
	}
	sealed := "no entry is sealed yet"
	if s.any {
		sealed = fmt.Sprintf("the last checkpoint ends at entry %d", s.through)
	}
	return fmt.Errorf("entries up to id %d are to be removed, but %s in seal table %s: seal them first (auditpgx seal): removed unsealed, nothing would show what they held",
		last, sealed, s.table.Quoted())
}

func (s *pruneSeal) readErr(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		err = errors.New("no checkpoint covers it")
	}
	return fmt.Errorf("read seal table %s: %w", s.table.Quoted(), err)
}
