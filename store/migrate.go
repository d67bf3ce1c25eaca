package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/auditpgx/auditpgx/internal/record"
	"github.com/auditpgx/auditpgx/internal/sqlq"
	"github.com/auditpgx/auditpgx/internal/testlayout"
)

// Querier is the part of *sql.DB, *sql.Conn and *sql.Tx that this package
// uses.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// MigrateOption changes what [Migrate] creates: [WithoutIndexes],
// [Partitioned].
type MigrateOption struct {
	apply func(*migrateConfig) error
}

// migrateConfig is what the options of Migrate set.
type migrateConfig struct {
	skip        map[string]bool // index suffixes left out
	partitioned bool            // Partitioned was given
	period      PartitionPeriod
	test        *testlayout.Layout // a test binary's layout for new tables
}

// newMigrateConfig applies the options of fn (Migrate or DDL).
func newMigrateConfig(fn string, opts []MigrateOption) (migrateConfig, error) {
	var c migrateConfig
	for i, o := range opts {
		if o.apply == nil {
			return c, fmt.Errorf("auditpgx: %s: option %d is the zero MigrateOption", fn, i+1)
		}
		if err := o.apply(&c); err != nil {
			return c, err
		}
	}
	return c, nil
}

// forLayout returns the options that apply to a table of layout lay: a
// test binary's layout applies to a new table for which none was asked.
func (c migrateConfig) forLayout(lay layout) migrateConfig {
	if c.test != nil && !c.partitioned && !lay.exists {
		c.partitioned, c.period = true, Monthly
	} else {
		c.test = nil
	}
	return c
}

// check refuses options that do not fit the table as it is.
func (c migrateConfig) check(table string, lay layout) error {
	switch {
	case !c.partitioned || !lay.exists:
		return nil
	case !lay.partitioned:
		return fmt.Errorf("auditpgx: migrate %q: Partitioned: the table exists and is not partitioned; "+
			"Migrate does not convert it: follow docs/RETENTION.md (partitioning an existing entry table)", table)
	case !lay.byCreated:
		return fmt.Errorf("auditpgx: migrate %q: Partitioned: the table is partitioned, but not by range on created alone", table)
	}
	return nil
}

// WithoutIndexes leaves secondary indexes of the entry table out: Migrate
// neither creates them nor counts them when it decides whether there is
// anything to do, so an index dropped on purpose stays dropped. Names are
// "object", "created", "tx", "actor", "related" and "changes" (the suffixes
// of the index names before _idx). Each index costs every write that
// records entries (docs/PERFORMANCE.md lists how much); without one, the
// queries of this package that it serves scan instead: "changes", a GIN
// index of the changes and context columns, serves [ChangeFilter] and
// [Query].Context, "actor" the actor filter, "object" [History] and [AsOf].
// An unknown name is an error.
func WithoutIndexes(names ...string) MigrateOption {
	return MigrateOption{func(c *migrateConfig) error {
		for _, n := range names {
			suffix := "_" + n + "_idx"
			if !slices.ContainsFunc(entryIndexes, func(ix entryIndex) bool { return ix.suffix == suffix }) {
				return fmt.Errorf("auditpgx: WithoutIndexes: no index %q (the indexes are object, created, tx, actor, related and changes)", n)
			}
			if c.skip == nil {
				c.skip = map[string]bool{}
			}
			c.skip[suffix] = true
		}
		return nil
	}}
}

// migrateLockKey is the pg_advisory_xact_lock key Migrate holds while it runs.
const migrateLockKey int64 = 0x6175646974706778

// beginner is implemented by *sql.DB and *sql.Conn.
type beginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// Migrate creates the entry table named table and its indexes if they do not
// exist, using the statements of [DDL], and brings a table made by an earlier
// release up to date: it adds the context column and widens the CHECK on
// operation to the operations of this release (added NOT VALID, then
// validated after the commit, under a lock that lets entries be written
// meanwhile). When the table exists and the role does not own it (is not a
// member of its owner), Migrate changes nothing and returns nil, so that an
// application role may call it at start-up: a write that needs what the
// table lacks fails with an error that gives the statement its owner runs.
//
// A table that exists keeps its layout: without [Partitioned], Migrate
// works on a partitioned entry table as on a plain one; with it, an
// unpartitioned table is an error (see Partitioned). A new partitioned
// table gets its first partitions as from [Maintain], in the same
// transaction.
//
// It is idempotent and safe to run from several processes at once: the
// statements run in one transaction that first takes
// pg_advisory_xact_lock(0x6175646974706778), a fixed key (the ASCII bytes of
// "auditpgx") shared by all table names and by Maintain, so concurrent
// callers wait for each other instead of racing on the catalog.
//
// When db is a *sql.DB or *sql.Conn, Migrate begins and commits its own
// transaction. Any other Querier, such as a *sql.Tx, is taken to be a
// transaction already: the statements run in it, the lock is held until the
// caller ends it, and a failed statement leaves it aborted.
//
// The schema of a qualified name must already exist. An invalid name returns
// an error wrapping [ErrInvalidTableName] before anything is sent.
func Migrate(ctx context.Context, db Querier, table string, opts ...MigrateOption) error {
	c, err := newMigrateConfig("Migrate", opts)
	if err != nil {
		return err
	}
	c.test = testlayout.Partitioned()
	t, err := parseTableName(table)
	if err != nil {
		return fmt.Errorf("%w %q: %v", ErrInvalidTableName, table, err)
	}
	// The driver hands Migrate's statements to the server unplanned: the
	// entry table is append-only to every other statement.
	ctx = record.Migrating(ctx)
	lay, err := readLayout(ctx, db, t)
	if err != nil {
		return fmt.Errorf("auditpgx: migrate %q: %w", table, err)
	}
	if err := c.forLayout(lay).check(table, lay); err != nil {
		return err
	}
	if done, err := migrated(ctx, db, t, c.forLayout(lay), lay); err != nil {
		return fmt.Errorf("auditpgx: migrate %q: %w", table, err)
	} else if done {
		// Nothing to create: an application role that does not own the
		// table (see docs/SECURITY.md) may call Migrate at start-up.
		return nil
	}
	if owns, err := ownsOrAbsent(ctx, db, table); err != nil || !owns {
		// A table the role cannot alter: what it lacks is named by the
		// error of each write that needs it, with the statement to run.
		return err
	}
	b, ok := db.(beginner)
	if !ok {
		widened, err := migrateIn(ctx, db, table, t, c)
		if err != nil {
			return err
		}
		return validate(ctx, db, table, widened)
	}
	tx, err := b.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("auditpgx: migrate %q: begin: %w", table, err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after a successful commit
	widened, err := migrateIn(ctx, tx, table, t, c)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("auditpgx: migrate %q: commit: %w", table, err)
	}
	// Out of the transaction, under a lock that lets entries be written
	// meanwhile.
	return validate(ctx, db, table, widened)
}

// validate validates the CHECK constraints Migrate added NOT VALID: a scan
// of the table that holds SHARE UPDATE EXCLUSIVE, which writes do not wait
// for.
func validate(ctx context.Context, db Querier, table string, constraints []string) error {
	t, _ := parseTableName(table) // valid: Migrate checked it
	for _, c := range constraints {
		if _, err := db.ExecContext(ctx, "ALTER TABLE "+t.Quoted()+" VALIDATE CONSTRAINT "+sqlq.Ident(c)); err != nil {
			return fmt.Errorf("auditpgx: migrate %q: %w", table, err)
		}
	}
	return nil
}

// migrateIn runs the statements of the options c for the table as it is
// under the lock, creates the first partitions of a new partitioned table,
// then widens outdated CHECK constraints on operation, whose names it
// returns.
func migrateIn(ctx context.Context, db Querier, table string, t tableName, c migrateConfig) ([]string, error) {
	fail := func(err error) ([]string, error) { return nil, fmt.Errorf("auditpgx: migrate %q: %w", table, err) }
	if _, err := db.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLockKey); err != nil {
		return fail(fmt.Errorf("advisory lock: %w", err))
	}
	// Read again under the lock: another process may have made the table
	// since.
	lay, err := readLayout(ctx, db, t)
	if err != nil {
		return fail(err)
	}
	c = c.forLayout(lay)
	if err := c.check(table, lay); err != nil {
		return nil, err
	}
	// One statement per call, so that no driver has to accept several
	// statements in one query string.
	for _, s := range ddlStatements(t, c) {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fail(err)
		}
	}
	if c.partitioned && !lay.exists {
		// Writes must find a partition from the first one on.
		if c.test != nil {
			for _, span := range c.test.Spans {
				if _, err := maintainIn(ctx, db, t, c.period, span.From, span.Count-1); err != nil {
					return fail(err)
				}
			}
		}
		if _, err := maintainIn(ctx, db, t, c.period, time.Time{}, defaultFuture); err != nil {
			return fail(err)
		}
	}
	// A table made before an operation was added keeps the narrower CHECK
	// it was made with, which CREATE TABLE IF NOT EXISTS leaves alone.
	outdated, err := outdatedChecks(ctx, db, t.Quoted())
	if err != nil {
		return fail(err)
	}
	for _, name := range outdated {
		if _, err := db.ExecContext(ctx, record.WidenOperationCheck(t.Quoted(), name)); err != nil {
			return fail(err)
		}
	}
	return outdated, nil
}

// ownsOrAbsent reports whether the current role may alter the entry table
// (it is a member of the owning role), or the table does not exist yet.
func ownsOrAbsent(ctx context.Context, db Querier, table string) (bool, error) {
	t, _ := parseTableName(table) // valid: Migrate checked it
	rows, err := db.QueryContext(ctx, `SELECT coalesce((SELECT pg_catalog.pg_has_role(relowner, 'USAGE') FROM pg_catalog.pg_class
		WHERE oid = pg_catalog.to_regclass($1)), true)`, t.Quoted())
	if err != nil {
		return false, fmt.Errorf("auditpgx: migrate %q: %w", table, err)
	}
	defer rows.Close()
	owns := false
	if rows.Next() {
		if err := rows.Scan(&owns); err != nil {
			return false, fmt.Errorf("auditpgx: migrate %q: %w", table, err)
		}
	}
	return owns, rows.Err()
}

// outdatedChecks names the CHECK constraints on the entry table's
// operation that do not allow every operation of this release.
func outdatedChecks(ctx context.Context, db Querier, quoted string) ([]string, error) {
	return queryStrings(ctx, db, record.OperationCheckQuery, quoted)
}

// migrated reports whether the table of layout lay has every index of the
// options c, the context column, the CHECK of this release and, with
// Partitioned, the period recorded.
func migrated(ctx context.Context, db Querier, t tableName, c migrateConfig, lay layout) (bool, error) {
	if !lay.exists || (c.partitioned && (!lay.periodKnown || lay.period != c.period)) {
		return false, nil
	}
	var names []string
	for _, ix := range entryIndexes {
		if !c.skip[ix.suffix] {
			names = append(names, t.qualify(sqlq.Ident(t.indexName(ix.suffix))))
		}
	}
	// The indexes, and the context column, added after the table's first
	// release.
	rows, err := db.QueryContext(ctx, `SELECT count(*) + (SELECT count(*) FROM pg_catalog.pg_attribute
		WHERE attrelid = pg_catalog.to_regclass($2) AND attname = 'context' AND NOT attisdropped)
		FROM unnest($1::text[]) AS n WHERE pg_catalog.to_regclass(n) IS NOT NULL`, names, t.Quoted())
	if err != nil {
		return false, err
	}
	defer rows.Close()
	var n int
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return false, err
		}
	}
	if err := rows.Close(); err != nil || n != len(names)+1 {
		return false, err
	}
	outdated, err := outdatedChecks(ctx, db, t.Quoted())
	if err != nil {
		return false, err
	}
	return len(outdated) == 0, nil
}
