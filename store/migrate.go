package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/auditpgx/auditpgx/internal/record"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// Querier is the part of *sql.DB, *sql.Conn and *sql.Tx that this package
// uses.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// MigrateOption changes what [Migrate] creates: [WithoutIndexes].
type MigrateOption struct {
	apply func(*migrateConfig) error
}

// migrateConfig is what the options of Migrate set.
type migrateConfig struct {
	skip map[string]bool // index suffixes left out
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
			if !slices.Contains(indexSuffixes, suffix) {
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
// It is idempotent and safe to run from several processes at once: the
// statements run in one transaction that first takes
// pg_advisory_xact_lock(0x6175646974706778), a fixed key (the ASCII bytes of
// "auditpgx") shared by all table names, so concurrent callers wait for each
// other instead of racing on the catalog.
//
// When db is a *sql.DB or *sql.Conn, Migrate begins and commits its own
// transaction. Any other Querier, such as a *sql.Tx, is taken to be a
// transaction already: the statements run in it, the lock is held until the
// caller ends it, and a failed statement leaves it aborted.
//
// The schema of a qualified name must already exist. An invalid name returns
// an error wrapping [ErrInvalidTableName] before anything is sent.
func Migrate(ctx context.Context, db Querier, table string, opts ...MigrateOption) error {
	var c migrateConfig
	for i, o := range opts {
		if o.apply == nil {
			return fmt.Errorf("auditpgx: Migrate: option %d is the zero MigrateOption", i+1)
		}
		if err := o.apply(&c); err != nil {
			return err
		}
	}
	// The driver hands Migrate's statements to the server unplanned: the
	// entry table is append-only to every other statement.
	ctx = record.Migrating(ctx)
	skip := c.skip
	all, err := ddlStatements(table)
	if err != nil {
		return err
	}
	stmts := all[:2] // the table, and its context column
	for i, suffix := range indexSuffixes {
		if !skip[suffix] {
			stmts = append(stmts, all[i+2])
		}
	}
	if done, err := migrated(ctx, db, table, skip); err != nil {
		return err
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
		widened, err := migrateIn(ctx, db, table, stmts)
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
	widened, err := migrateIn(ctx, tx, table, stmts)
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
	t, _ := parseTableName(table) // valid: migrated checked it
	for _, c := range constraints {
		if _, err := db.ExecContext(ctx, "ALTER TABLE "+t.Quoted()+" VALIDATE CONSTRAINT "+sqlq.Ident(c)); err != nil {
			return fmt.Errorf("auditpgx: migrate %q: %w", table, err)
		}
	}
	return nil
}

// migrateIn runs stmts, then widens outdated CHECK constraints on operation,
// whose names it returns.
func migrateIn(ctx context.Context, db Querier, table string, stmts []string) ([]string, error) {
	if _, err := db.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLockKey); err != nil {
		return nil, fmt.Errorf("auditpgx: migrate %q: advisory lock: %w", table, err)
	}
	// One statement per call, so that no driver has to accept several
	// statements in one query string.
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return nil, fmt.Errorf("auditpgx: migrate %q: %w", table, err)
		}
	}
	// A table made before an operation was added keeps the narrower CHECK
	// it was made with, which CREATE TABLE IF NOT EXISTS leaves alone.
	t, _ := parseTableName(table) // valid: ddlStatements checked it
	outdated, err := outdatedChecks(ctx, db, t.Quoted())
	if err != nil {
		return nil, fmt.Errorf("auditpgx: migrate %q: %w", table, err)
	}
	for _, name := range outdated {
		if _, err := db.ExecContext(ctx, record.WidenOperationCheck(t.Quoted(), name)); err != nil {
			return nil, fmt.Errorf("auditpgx: migrate %q: %w", table, err)
		}
	}
	return outdated, nil
}

// ownsOrAbsent reports whether the current role may alter the entry table
// (it is a member of the owning role), or the table does not exist yet.
func ownsOrAbsent(ctx context.Context, db Querier, table string) (bool, error) {
	t, _ := parseTableName(table) // valid: migrated checked it
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
	rows, err := db.QueryContext(ctx, record.OperationCheckQuery, quoted)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

// migrated reports whether the table and every index of the schema exist.
func migrated(ctx context.Context, db Querier, table string, skip map[string]bool) (bool, error) {
	t, err := parseTableName(table)
	if err != nil {
		return false, fmt.Errorf("%w %q: %v", ErrInvalidTableName, table, err)
	}
	names := []string{t.Quoted()}
	for _, suffix := range indexSuffixes {
		if !skip[suffix] {
			names = append(names, t.qualify(sqlq.Ident(t.indexName(suffix))))
		}
	}
	// The table, its indexes, and its context column, added after the
	// table's first release.
	rows, err := db.QueryContext(ctx, `SELECT count(*) + (SELECT count(*) FROM pg_catalog.pg_attribute
		WHERE attrelid = pg_catalog.to_regclass($2) AND attname = 'context' AND NOT attisdropped)
		FROM unnest($1::text[]) AS n WHERE pg_catalog.to_regclass(n) IS NOT NULL`, names, t.Quoted())
	if err != nil {
		return false, fmt.Errorf("auditpgx: migrate %q: %w", table, err)
	}
	defer rows.Close()
	var n int
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return false, fmt.Errorf("auditpgx: migrate %q: %w", table, err)
		}
	}
	if err := rows.Close(); err != nil || n != len(names)+1 {
		return false, err
	}
	outdated, err := outdatedChecks(ctx, db, t.Quoted())
	if err != nil {
		return false, fmt.Errorf("auditpgx: migrate %q: %w", table, err)
	}
	return len(outdated) == 0, nil
}
