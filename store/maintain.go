package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/auditpgx/auditpgx/internal/record"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// defaultFuture is how many periods after the current one Maintain gives
// a partition by default.
const defaultFuture = 3

// MaintainOptions configures [Maintain]. The zero value is the default.
type MaintainOptions struct {
	// Future is how many periods after the current one get a partition.
	// Default: 3; a negative value means none but the current one.
	Future int

	// Now is an instant in the current period. Default: the database
	// server's clock, which also sets the created time of entries.
	Now time.Time

	// LockTimeout bounds each wait for a lock (SET LOCAL lock_timeout):
	// Maintain then fails, changing nothing, rather than queue behind a
	// long transaction that reads the DEFAULT partition, with the reads
	// and writes that would queue behind it in turn. Zero keeps the
	// session's setting (by default, no bound); negative is an error. In
	// a caller's transaction the setting lasts until the transaction ends.
	LockTimeout time.Duration
}

// MaintainResult is what [Maintain] found and did.
type MaintainResult struct {
	// Partitioned is false when the entry table is not partitioned;
	// Maintain then changed nothing, and the other fields are zero.
	Partitioned bool
	// Period is the period recorded for the table.
	Period PartitionPeriod
	// Created names the partitions made, range partitions oldest first
	// and then the DEFAULT one, as schema.name when the entry table's
	// name is qualified.
	Created []string
	// Moved counts the entries moved out of the DEFAULT partition into a
	// partition made for their period: entries written while that
	// period had none.
	Moved int64
	// Overlapping names the partitions not made because another partition
	// holds part of their period (one with other bounds, such as a table
	// attached by the procedure of docs/RETENTION.md, or one made under
	// another period). Entries of the rest of such a period go to the
	// DEFAULT partition.
	Overlapping []string
}

// Maintain gives the partitioned entry table named table a partition for
// the current period and for each of the next opts.Future ones (3 by
// default), and a DEFAULT partition for the entries that no other
// partition covers, as far as they do not exist. The period is the one
// [Migrate] recorded ([Partitioned]). Partitions are named after the
// table and their period: auditpgx_entry_p2026_12 (monthly),
// auditpgx_entry_p2026w49 (weekly, ISO week), auditpgx_entry_p2026_12_06
// (daily), auditpgx_entry_default; each gets the table's indexes, under
// names derived from its own. Entries that were written to the DEFAULT
// partition before their period had a partition move into it.
//
// On an entry table that is not partitioned Maintain changes nothing and
// returns a result whose Partitioned is false. An entry table that does
// not exist, one partitioned otherwise than by range on created, or one
// whose period is not recorded is an error.
//
// It is idempotent and safe to run from cron, at start-up and from
// several processes at once: it works under the same advisory lock as
// Migrate, and creates each partition as a table of its own that it then
// attaches, which locks the entry table only in SHARE UPDATE EXCLUSIVE
// mode (entries are written and read meanwhile). Attaching takes an
// ACCESS EXCLUSIVE lock on the DEFAULT partition, which queries that read
// it hold for as long as they run: see opts.LockTimeout. Maintain must
// run as the owner of the entry table (or a member of the owning role).
//
// db is used as by Migrate: a *sql.DB or *sql.Conn gets a transaction of
// Maintain's own; any other Querier is taken to be a transaction already.
func Maintain(ctx context.Context, db Querier, table string, opts MaintainOptions) (MaintainResult, error) {
	t, err := parseTableName(table)
	if err != nil {
		return MaintainResult{}, fmt.Errorf("%w %q: %v", ErrInvalidTableName, table, err)
	}
	if opts.LockTimeout < 0 {
		return MaintainResult{}, fmt.Errorf("auditpgx: maintain %q: LockTimeout %v is negative", table, opts.LockTimeout)
	}
	future := opts.Future
	switch {
	case future == 0:
		future = defaultFuture
	case future < 0:
		future = 0
	}
	// Statements on the entry table's partitions go to the server
	// unplanned, as Migrate's do.
	ctx = record.Migrating(ctx)
	run := func(q Querier) (MaintainResult, error) {
		// Another Maintain is waited for as long as it takes: its own
		// waits are bounded by its own LockTimeout.
		if _, err := q.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLockKey); err != nil {
			return MaintainResult{}, fmt.Errorf("advisory lock: %w", err)
		}
		if err := setLockTimeout(ctx, q, opts.LockTimeout); err != nil {
			return MaintainResult{}, err
		}
		lay, err := readLayout(ctx, q, t)
		switch {
		case err != nil:
			return MaintainResult{}, err
		case !lay.exists:
			return MaintainResult{}, errors.New("the entry table does not exist (run Migrate, or auditpgx migrate)")
		case !lay.partitioned:
			return MaintainResult{}, nil
		case !lay.byCreated:
			return MaintainResult{}, errors.New("the entry table is partitioned, but not by range on created alone")
		case !lay.periodKnown:
			return MaintainResult{}, fmt.Errorf("the entry table's comment does not record its period (%smonthly, weekly or daily): "+
				"run Migrate with Partitioned (auditpgx migrate --partition) to record it", layoutCommentPrefix)
		}
		return maintainIn(ctx, q, t, lay.period, opts.Now, future)
	}
	fail := func(err error) (MaintainResult, error) {
		return MaintainResult{}, fmt.Errorf("auditpgx: maintain %q: %w", table, err)
	}
	b, ok := db.(beginner)
	if !ok {
		res, err := run(db)
		if err != nil {
			return fail(err)
		}
		return res, nil
	}
	tx, err := b.BeginTx(ctx, nil)
	if err != nil {
		return fail(fmt.Errorf("begin: %w", err))
	}
	defer tx.Rollback() //nolint:errcheck // no-op after a successful commit
	res, err := run(tx)
	if err != nil {
		return fail(err)
	}
	if err := tx.Commit(); err != nil {
		return fail(fmt.Errorf("commit: %w", err))
	}
	return res, nil
}

// maintainIn does Maintain's work for the partitioned entry table t of
// period, under the advisory lock: the partitions of the period holding
// now (the server's clock when zero) and of future periods after it, and
// the DEFAULT one.
func maintainIn(ctx context.Context, db Querier, t tableName, period PartitionPeriod, now time.Time, future int) (MaintainResult, error) {
	res := MaintainResult{Partitioned: true, Period: period}
	if now.IsZero() {
		var err error
		if now, err = serverNow(ctx, db); err != nil {
			return res, err
		}
	}
	parts, err := readPartitions(ctx, db, t)
	if err != nil {
		return res, err
	}
	indexes, err := parentIndexes(ctx, db, t)
	if err != nil {
		return res, err
	}
	// Partitions live in the entry table's schema, wherever the
	// search_path would put a table, and belong to its owner, whichever
	// member of that role (or superuser) makes them.
	var schema, owner string
	if err := queryRowInto(ctx, db, `SELECT n.nspname, CASE WHEN pg_catalog.pg_get_userbyid(c.relowner) <> current_user
		THEN pg_catalog.pg_get_userbyid(c.relowner) ELSE '' END
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = pg_catalog.to_regclass($1)`,
		[]any{t.Quoted()}, &schema, &owner); err != nil {
		return res, err
	}
	// name derives a partition's name, and returns it qualified and as
	// shown: qualified as the entry table's name is.
	name := func(suffix string) (tableName, string) {
		n := t.derived(suffix)
		shown := n.String()
		n.Schema = schema
		return n, shown
	}
	create := func(name tableName, bound string, dflt *partition, from, to time.Time) (int64, error) {
		return createPartition(ctx, db, t, name, owner, indexes, bound, dflt, from, to)
	}
	var dflt *partition
	for _, p := range parts {
		if p.isDefault {
			dflt = &p
		}
	}
	from := period.start(now)
	for range future + 1 {
		to := period.next(from)
		n, shown := name(period.suffix(from))
		switch {
		case slices.ContainsFunc(parts, func(p partition) bool { return p.name == n }):
		case slices.ContainsFunc(parts, func(p partition) bool { return p.overlaps(from, to) }):
			res.Overlapping = append(res.Overlapping, shown)
		default:
			bound := "FOR VALUES FROM (" + boundLiteral(from) + ") TO (" + boundLiteral(to) + ")"
			moved, err := create(n, bound, dflt, from, to)
			if err != nil {
				return res, err
			}
			res.Created = append(res.Created, shown)
			res.Moved += moved
			parts = append(parts, partition{name: n, shown: shown, from: from, to: to})
		}
		from = to
	}
	if dflt == nil {
		n, shown := name(defaultPartitionSuffix)
		if _, err := create(n, "DEFAULT", nil, time.Time{}, time.Time{}); err != nil {
			return res, err
		}
		res.Created = append(res.Created, shown)
	}
	return res, nil
}

// boundLiteral is the literal of a partition bound at t.
func boundLiteral(t time.Time) string {
	return sqlq.Literal(t.UTC().Format("2006-01-02 15:04:05.999999Z07:00"))
}

// createPartition makes the table name, with the indexes of the entry
// table t whose suffixes are in indexes, gives it to owner unless that is
// "", and attaches it to t with bound.
// The entries of [from, to) in the DEFAULT partition dflt, if any, move
// into it first; their number is returned.
//
// A table made apart and attached, rather than CREATE TABLE ... PARTITION
// OF, which would lock t in ACCESS EXCLUSIVE mode: reads and writes of
// entries would wait for it, and it for them.
func createPartition(ctx context.Context, db Querier, t, name tableName, owner string, indexes []string, bound string,
	dflt *partition, from, to time.Time) (int64, error) {
	var taken bool
	if err := queryRowInto(ctx, db, `SELECT pg_catalog.to_regclass($1) IS NOT NULL`, []any{name.Quoted()}, &taken); err != nil {
		return 0, err
	}
	if taken {
		return 0, fmt.Errorf("%s exists and is not a partition of the entry table: rename or drop it", name.Quoted())
	}
	q := name.Quoted()
	stmts := []string{
		`CREATE TABLE ` + q + ` (LIKE ` + t.Quoted() + ` INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`,
		`ALTER TABLE ` + q + ` ADD CONSTRAINT ` + sqlq.Ident(name.indexName("_pkey")) + ` PRIMARY KEY (id, created)`,
	}
	for _, ix := range entryIndexes {
		if slices.Contains(indexes, ix.suffix) {
			stmts = append(stmts, createIndex(name, ix.suffix, ix.def))
		}
	}
	if owner != "" {
		stmts = append(stmts, `ALTER TABLE `+q+` OWNER TO `+sqlq.Ident(owner))
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return 0, fmt.Errorf("partition %s: %w", q, err)
		}
	}
	var moved int64
	if dflt != nil {
		// Attaching checks that the DEFAULT partition holds nothing of the
		// new range, under this same lock: none can be written in between.
		d := dflt.name.Quoted()
		if _, err := db.ExecContext(ctx, `LOCK TABLE `+d+` IN ACCESS EXCLUSIVE MODE`); err != nil {
			return 0, fmt.Errorf("partition %s: %w", d, err)
		}
		var err error
		if moved, err = moveOut(ctx, db, t, dflt.name, name, from, to); err != nil {
			return 0, fmt.Errorf("partition %s: moving entries from %s: %w", q, d, err)
		}
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE `+t.Quoted()+` ATTACH PARTITION `+q+` `+bound); err != nil {
		return 0, fmt.Errorf("partition %s: %w", q, err)
	}
	return moved, nil
}

// moveOut moves the entries of [from, to) from the partition src to the
// table dst, and returns how many it moved.
func moveOut(ctx context.Context, db Querier, t, src, dst tableName, from, to time.Time) (int64, error) {
	var found bool
	if err := queryRowInto(ctx, db, `SELECT EXISTS (SELECT FROM `+src.Quoted()+` WHERE created >= $1 AND created < $2)`,
		[]any{from, to}, &found); err != nil || !found {
		return 0, err
	}
	// The entry table's columns by name, whatever their order in each.
	var cols string
	if err := queryRowInto(ctx, db, `SELECT string_agg(pg_catalog.quote_ident(attname), ', ' ORDER BY attnum)
		FROM pg_catalog.pg_attribute WHERE attrelid = pg_catalog.to_regclass($1) AND attnum > 0 AND NOT attisdropped`,
		[]any{t.Quoted()}, &cols); err != nil {
		return 0, err
	}
	r, err := db.ExecContext(ctx, `WITH moved AS (DELETE FROM `+src.Quoted()+` WHERE created >= $1 AND created < $2 RETURNING `+cols+`)
		INSERT INTO `+dst.Quoted()+` (`+cols+`) SELECT `+cols+` FROM moved`, from, to)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

// parentIndexes returns the suffixes of the entry indexes that the entry
// table t has.
func parentIndexes(ctx context.Context, db Querier, t tableName) ([]string, error) {
	names, err := queryStrings(ctx, db, `SELECT c.relname FROM pg_catalog.pg_index i
		JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = pg_catalog.to_regclass($1)`, t.Quoted())
	if err != nil {
		return nil, err
	}
	var suffixes []string
	for _, ix := range entryIndexes {
		if slices.Contains(names, t.indexName(ix.suffix)) {
			suffixes = append(suffixes, ix.suffix)
		}
	}
	return suffixes, nil
}

// serverNow is the database server's clock.
func serverNow(ctx context.Context, db Querier) (time.Time, error) {
	var now time.Time
	err := queryRowInto(ctx, db, `SELECT statement_timestamp()`, nil, &now)
	return now, err
}
