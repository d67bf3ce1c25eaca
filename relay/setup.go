package relay

import (
	"context"
	"fmt"

	"github.com/auditpgx/auditpgx/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Setup creates what Run needs, when missing: in Source, the publication
// (CREATE PUBLICATION with no tables, which is enough for messages; the
// watched tables are added to it, and their replica identity checked or,
// with SetReplicaIdentity, set) and then the logical replication slot, of
// plugin pgoutput; in Dest, the
// state table, the entry table (with store.Migrate, through plain pgx) and,
// with cfg.Seal, the seal table (store.MigrateSeal).
// With cfg.NDJSON set, it creates nothing in Dest. It is idempotent, and
// fails when a slot of that name exists but is not a pgoutput slot of
// Source's database.
//
// A new slot reads WAL written after its creation only: messages emitted
// before Setup are not relayed.
func Setup(ctx context.Context, cfg Config) error {
	s, err := cfg.validate()
	if err != nil {
		return err
	}
	if err := ensureSource(ctx, s); err != nil {
		return err
	}
	if len(s.Watch) > 0 {
		// Checks, or with SetReplicaIdentity sets, the replica identity.
		w, err := newWatcher(ctx, s)
		if err != nil {
			return err
		}
		w.close()
	}
	if s.NDJSON != nil {
		return nil
	}
	pc, err := pgx.ParseConfig(s.Dest)
	if err != nil {
		return fmt.Errorf("%w: Dest: %v", ErrConfig, err)
	}
	db := stdlib.OpenDB(*pc)
	defer db.Close()
	if err := store.Migrate(ctx, db, s.EntryTable); err != nil {
		return err
	}
	if s.Seal != nil {
		if err := store.MigrateSeal(ctx, db, s.sealTable.Quoted()); err != nil {
			return err
		}
	}
	conn, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("auditpgx: relay: connecting to Dest: %w", err)
	}
	defer conn.Close(context.Background())
	return createStateTable(ctx, conn, s)
}
