package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// The safe horizon
//
// Seal may only hash an id range in which every id is decided: its entry
// committed, or never to be (its transaction rolled back). An entry that
// commits later inside a sealed range would look inserted.
//
// Ids come from the entry table's identity sequence. With CACHE 1 (which
// checkSequence requires) every nextval takes the next value from the
// sequence itself, under its buffer lock, so ids are handed out in the
// order of time. A writer holds RowExclusiveLock on the table it inserts
// into (the entry table, or with partitions the partition or the parent)
// from before its statement draws an id (the lock is taken when the
// statement is analysed or its cached plan locked, nextval runs in the
// executor) until its transaction ends, or until the subtransaction that
// took it rolls back, which kills the entries it wrote.
//
// waitHorizon reads, in one statement, M = max(id) in the statement's
// snapshot S and then the transactions holding such a lock. Take an id
// x < M whose entry S does not see. M's transaction drew M, then committed,
// then S was taken; x was drawn before M, so x's writer held its lock
// before S. When the lock list is read, after S, that writer has either
// ended (its entry committed, after S, or is rolled back), or rolled back
// the subtransaction that held x (x's entry is dead), or still holds the
// lock, and is listed. waitHorizon waits until no listed transaction holds
// it any more. PostgreSQL releases a transaction's locks after it is
// visible as ended to new snapshots (including COMMIT PREPARED, whose
// locks a prepared transaction keeps), so every statement Seal runs after
// that sees each id up to M committed or gone for good.
//
// Nothing here blocks a writer: Seal takes no lock, and transactions that
// start after the list is read are not waited for (their ids are above M).

// horizon is the id up to which every entry is decided, and the
// database's time when that became known.
type horizon struct {
	id    int64 // 0 with empty
	at    time.Time
	empty bool // the entry table has no entry
}

// writersFilter selects, from pg_locks, the transactions that hold a
// lock allowing inserts into the entry table $1 or any of its partitions,
// other than the session's own (a caller's transaction sees its own
// entries).
const writersFilter = `FROM pg_catalog.pg_locks l
	WHERE l.locktype = 'relation' AND l.mode = 'RowExclusiveLock' AND l.granted
	AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
	AND l.relation IN (SELECT pg_catalog.to_regclass($1)::oid UNION ALL
		SELECT relid::oid FROM pg_catalog.pg_partition_tree(pg_catalog.to_regclass($1)))
	AND l.pid IS DISTINCT FROM pg_catalog.pg_backend_pid()`

// waitHorizon finds M (see above) and, when it is above after, waits up
// to wait for the writers that may hold ids up to it.
func waitHorizon(ctx context.Context, db Querier, t tableName, after int64, wait time.Duration) (horizon, error) {
	m := pgtype.NewMap()
	var (
		top     sql.NullInt64
		at      time.Time
		writers []string
	)
	if err := queryRowInto(ctx, db, `SELECT (SELECT max(id) FROM `+t.Quoted()+`), pg_catalog.statement_timestamp(),
		ARRAY(SELECT DISTINCT l.virtualtransaction `+writersFilter+`)`, []any{t.Quoted()},
		&top, &at, m.SQLScanner(&writers)); err != nil {
		return horizon{}, fmt.Errorf("auditpgx: seal: read the largest id of %s: %w", t.Quoted(), err)
	}
	if !top.Valid {
		return horizon{empty: true, at: at.UTC()}, nil
	}
	h := horizon{id: top.Int64, at: at.UTC()}
	if h.id <= after || len(writers) == 0 {
		return h, nil
	}
	deadline := time.Now().Add(wait)
	pause := 5 * time.Millisecond
	for {
		var pids []int64
		if err := queryRowInto(ctx, db, `SELECT pg_catalog.statement_timestamp(),
			ARRAY(SELECT DISTINCT coalesce(l.pid, 0)::int8 `+writersFilter+` AND l.virtualtransaction = ANY ($2))`,
			[]any{t.Quoted(), writers}, &at, m.SQLScanner(&pids)); err != nil {
			return horizon{}, fmt.Errorf("auditpgx: seal: wait for the transactions writing to %s: %w", t.Quoted(), err)
		}
		if len(pids) == 0 {
			h.at = at.UTC()
			return h, nil
		}
		if time.Now().After(deadline) {
			slices.Sort(pids)
			s := make([]string, len(pids))
			for i, p := range pids {
				s[i] = fmt.Sprint(p)
			}
			return horizon{}, fmt.Errorf("%w: %d transaction(s) writing to %s since before id %d did not end within %s "+
				"(server pids %s; 0 is a prepared transaction)", ErrSealWait, len(pids), t.Quoted(), h.id, wait, strings.Join(s, ", "))
		}
		select {
		case <-ctx.Done():
			return horizon{}, fmt.Errorf("auditpgx: seal: wait for the transactions writing to %s: %w", t.Quoted(), ctx.Err())
		case <-time.After(pause):
		}
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// ErrSealWait is wrapped by the error [Seal] returns when transactions
// that were writing to the entry table when it started are still running
// when SealOptions.Wait has passed. Nothing new is sealed; the message
// names their server pids (pg_stat_activity.pid).
var ErrSealWait = errors.New("auditpgx: seal: gave up waiting for writers")

// checkSequence refuses an entry table whose ids do not come, one at a
// time and increasing, from a sequence: see the safe horizon above.
func checkSequence(ctx context.Context, db Querier, t tableName) error {
	var (
		seq         sql.NullString
		cache, incr sql.NullInt64
	)
	// The identity's or serial's sequence, else the one the column's
	// default draws from (nextval(seq) of a sequence it does not own).
	err := queryRowInto(ctx, db, `SELECT q.seq::regclass::text, s.seqcache, s.seqincrement
		FROM (SELECT coalesce(pg_catalog.pg_get_serial_sequence($1, 'id')::regclass,
			(SELECT d.refobjid::regclass FROM pg_catalog.pg_attrdef ad
				JOIN pg_catalog.pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum AND a.attname = 'id'
				JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid
					AND d.refclassid = 'pg_catalog.pg_class'::regclass
				JOIN pg_catalog.pg_class c ON c.oid = d.refobjid AND c.relkind = 'S'
				WHERE ad.adrelid = pg_catalog.to_regclass($1) LIMIT 1)) AS seq) AS q
		LEFT JOIN pg_catalog.pg_sequence s ON s.seqrelid = q.seq`, []any{t.Quoted()}, &seq, &cache, &incr)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
		return fmt.Errorf("auditpgx: seal: entry table %s does not exist", t.Quoted())
	}
	if err != nil {
		return fmt.Errorf("auditpgx: seal: read the id sequence of %s: %w", t.Quoted(), err)
	}
	switch {
	case !seq.Valid || !cache.Valid:
		return fmt.Errorf("auditpgx: seal: the id column of %s does not take its values from a sequence, "+
			"so Seal cannot tell when every id up to a point is decided", t.Quoted())
	case incr.Int64 <= 0:
		return fmt.Errorf("auditpgx: seal: the id sequence %s of %s does not increase (INCREMENT %d)", seq.String, t.Quoted(), incr.Int64)
	case cache.Int64 != 1:
		return fmt.Errorf("auditpgx: seal: the id sequence %s of %s caches %d values per session, so ids are not handed out "+
			"in the order of time and Seal cannot tell when every id up to a point is decided; "+
			"as its owner run ALTER SEQUENCE %s CACHE 1", seq.String, t.Quoted(), cache.Int64, seq.String)
	}
	return nil
}

// checkSnapshots refuses a transaction in which each statement does not
// take a new snapshot: after waiting for the writers, Seal must see what
// they committed.
func checkSnapshots(ctx context.Context, db Querier) error {
	switch db.(type) {
	case *sql.DB, *sql.Conn:
		return nil
	}
	var iso string
	if err := queryRowInto(ctx, db, `SELECT pg_catalog.current_setting('transaction_isolation')`, nil, &iso); err != nil {
		return fmt.Errorf("auditpgx: seal: %w", err)
	}
	if iso != "read committed" {
		return fmt.Errorf("auditpgx: seal: in a %s transaction every statement sees the snapshot of the first, "+
			"so Seal would miss what the writers it waits for commit; pass a *sql.DB, a *sql.Conn or a READ COMMITTED transaction", strings.ToUpper(iso))
	}
	return nil
}
