package auditpgx

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/auditpgx/auditpgx/internal/catalog"
	"github.com/auditpgx/auditpgx/internal/record"
	"github.com/auditpgx/auditpgx/internal/registry"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// DefaultBaselineBatch is the number of rows Baseline records per
// statement unless BaselineBatchSize says otherwise.
const DefaultBaselineBatch = 5000

// BaselineOption configures Baseline: WithRegistry, BaselineTables,
// BaselineForce, BaselineBatchSize and OnBaselineProgress. Other Options are
// an error.
type BaselineOption interface {
	applyBaseline(*baselineConfig)
}

type baselineConfig struct {
	options
	tables   []string
	force    bool
	batch    int
	progress func(BaselineProgress)
}

func (o Option) applyBaseline(c *baselineConfig) { o(&c.options) }

type baselineOptionFunc func(*baselineConfig)

func (f baselineOptionFunc) applyBaseline(c *baselineConfig) { f(c) }

// BaselineTables baselines these registered tables, named as they were
// registered (or as SQL writes the same name), in the order given. By
// default Baseline takes every table registered with RegisterTable, in
// name order; join tables registered only with RegisterM2M are left out
// (links are not state that a snapshot replaces), and naming one is an
// error.
func BaselineTables(names ...string) BaselineOption {
	return baselineOptionFunc(func(c *baselineConfig) { c.tables = append(c.tables, names...) })
}

// BaselineForce baselines a table again even when a baseline of it is
// already recorded. The new snapshot entries replace the state the earlier
// ones and the entries since give.
func BaselineForce() BaselineOption {
	return baselineOptionFunc(func(c *baselineConfig) { c.force = true })
}

// BaselineBatchSize records n rows per statement (default
// DefaultBaselineBatch). Each batch is one INSERT ... SELECT on the server;
// nothing of the rows passes through the client.
func BaselineBatchSize(n int) BaselineOption {
	return baselineOptionFunc(func(c *baselineConfig) { c.batch = n })
}

// OnBaselineProgress calls f after each batch of each table, once when a
// table is skipped, and once when a table's baseline is committed.
func OnBaselineProgress(f func(BaselineProgress)) BaselineOption {
	return baselineOptionFunc(func(c *baselineConfig) { c.progress = f })
}

// BaselineProgress is where a Baseline stands in one table.
type BaselineProgress struct {
	Table string // as registered
	Rows  int64  // rows recorded so far
	Total int64  // rows in the snapshot
	// Skipped is set, alone, for a table already baselined.
	Skipped bool
	// Done is set once the table's entries are committed.
	Done    bool
	Elapsed time.Duration
}

// BaselineResult is what Baseline did for one table.
type BaselineResult struct {
	Table string // as registered
	// Skipped is true when the table had been baselined before and
	// BaselineForce was not given: nothing was written, and Marker and At
	// are those of the latest earlier baseline.
	Skipped bool
	// Rows is the number of snapshot entries written.
	Rows int64
	// Marker is the id of the baseline's marker entry.
	Marker int64
	// At is the created time of the baseline's entries: when its snapshot
	// was taken.
	At       time.Time
	Duration time.Duration
}

// ErrBaselineCheck is wrapped by the error Baseline returns when the
// entry table's CHECK constraint on operation predates snapshot entries.
var ErrBaselineCheck = errors.New("auditpgx: the entry table does not accept snapshot entries")

// Baseline records the rows that registered tables hold now, so that the
// history of rows that existed before auditing began (or that writes
// auditpgx did not see changed) starts from a known state: one entry with
// operation "snapshot" per row, holding every audited column under
// added_fields as a create does (excluded columns left out, redacted ones
// as "$encrypted$", both applied in SQL by the same code as every other
// entry), then one marker entry per table (operation "snapshot", empty
// object_id, changes {"snapshot": "xmin:xmax:xip", "rows": N}).
//
// Each table is read in one REPEATABLE READ transaction, which first locks
// it in ACCESS SHARE mode (so that no TRUNCATE or ALTER TABLE runs under
// it; writes go on), and is recorded in batches of INSERT ... SELECT in
// primary key order, on the server: the client holds no rows, whatever the
// table's size. The entries' created is the time the snapshot was taken
// and their created_by the actor of ctx (WithActor), or NULL. The marker,
// written last in the same transaction, records the snapshot, so that
// readers (store.History, store.AsOf, store.Replay) can order the entries
// of writes that ran meanwhile: a write committed after the snapshot was
// taken applies after the snapshot entries even when its entry has a lower
// id, and one committed before is accounted for by them. Concurrent writes
// are thus neither lost nor counted twice.
//
// A table whose marker exists is skipped unless BaselineForce is given, so
// Baseline may be run again after an interruption: the tables committed
// before it are skipped, and the table it was in, whose transaction rolled
// back and left nothing, is done again. Two Baselines of the same table
// and entry table wait for each other (a session advisory lock).
//
// The writes bypass the driver (the entry table is append-only through
// it): db may be opened with "auditpgx" or with pgx's "pgx" driver. The
// entry table's CHECK on operation must accept 'snapshot' (Migrate creates
// it so; for an older table see docs/READING.md); otherwise the error wraps
// ErrBaselineCheck and nothing is written.
//
// The results list each table done or skipped, up to the error if any.
func Baseline(ctx context.Context, db *sql.DB, opts ...BaselineOption) ([]BaselineResult, error) {
	cfg := &baselineConfig{options: options{registry: defaultRegistry}, batch: DefaultBaselineBatch}
	for _, o := range opts {
		if o != nil {
			o.applyBaseline(cfg)
		}
	}
	if err := cfg.check("Baseline", 0); err != nil {
		return nil, err
	}
	if cfg.batch <= 0 {
		return nil, fmt.Errorf("auditpgx: BaselineBatchSize(%d): want a positive number of rows", cfg.batch)
	}
	actor, hasActor := ActorFrom(ctx)
	if hasActor {
		if err := ValidateActor(actor); err != nil {
			return nil, err
		}
	}
	tables, named, err := baselineTables(cfg.registry, cfg.tables)
	if err != nil {
		return nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var results []BaselineResult
	err = conn.Raw(func(dc any) error {
		sc, ok := StdlibConn(dc)
		if !ok {
			return fmt.Errorf("auditpgx: Baseline: the connection is a %T, not pgx's", dc)
		}
		b := &baseliner{cfg: cfg, conn: sc.Conn(), entry: cfg.registry.r.EntryTable()}
		if hasActor {
			b.actor = &actor
		}
		for _, t := range tables {
			res, skip, err := b.table(ctx, t, named)
			if err != nil {
				return fmt.Errorf("auditpgx: baseline of %q: %w", t.Registered, err)
			}
			if !skip {
				results = append(results, res)
			}
		}
		return nil
	})
	return results, err
}

// baselineTables returns the registrations to baseline; named says they
// were asked for by name.
func baselineTables(reg *Registry, names []string) ([]*registry.Table, bool, error) {
	all := reg.r.Tables()
	slices.SortFunc(all, func(a, b *registry.Table) int { return strings.Compare(a.Registered, b.Registered) })
	if len(names) == 0 {
		return all, false, nil
	}
	var out []*registry.Table
	for _, name := range names {
		n, err := sqlq.ParseName(name)
		if err != nil {
			return nil, true, fmt.Errorf("auditpgx: baseline: table name %q: %v", name, err)
		}
		i := slices.IndexFunc(all, func(t *registry.Table) bool { return t.Registered == name || t.Name == n })
		if i < 0 {
			return nil, true, fmt.Errorf("auditpgx: baseline: table %q is not registered", name)
		}
		if !slices.Contains(out, all[i]) {
			out = append(out, all[i])
		}
	}
	return out, true, nil
}

type baseliner struct {
	cfg   *baselineConfig
	conn  *pgx.Conn
	entry sqlq.Name
	actor *string
}

func (b *baseliner) progress(p BaselineProgress) {
	if b.cfg.progress != nil {
		b.cfg.progress(p)
	}
}

// table baselines one table. skip is true for a join table not asked
// for by name.
func (b *baseliner) table(ctx context.Context, t *registry.Table, named bool) (res BaselineResult, skip bool, err error) {
	start := time.Now()
	res.Table = t.Registered
	entry := b.entry.Quoted()
	lockKey := "auditpgx baseline " + b.entry.String() + " " + t.Registered
	if _, err := b.conn.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended($1, 0))`, lockKey); err != nil {
		return res, false, err
	}
	defer func() {
		// On a dead connection the lock went with the session.
		unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		b.conn.Exec(unlockCtx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, lockKey) //nolint:errcheck
	}()

	if !b.cfg.force {
		err := b.conn.QueryRow(ctx, `SELECT id, created FROM `+entry+
			` WHERE table_name = $1 AND object_id = '' AND operation = 'snapshot' AND changes ? 'snapshot'
			ORDER BY id DESC LIMIT 1`, t.Registered).Scan(&res.Marker, &res.At)
		switch {
		case err == nil:
			res.Skipped = true
			res.At = res.At.UTC()
			res.Duration = time.Since(start)
			b.progress(BaselineProgress{Table: t.Registered, Skipped: true, Elapsed: res.Duration})
			return res, false, nil
		case !errors.Is(err, pgx.ErrNoRows):
			return res, false, err
		}
	}

	tx, err := b.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadWrite})
	if err != nil {
		return res, false, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	// LOCK takes no snapshot: the transaction's snapshot is the next
	// statement's, once no TRUNCATE or ALTER TABLE can be under way.
	if _, err := tx.Exec(ctx, `LOCK TABLE `+t.Quoted()+` IN ACCESS SHARE MODE`); err != nil {
		return res, false, err
	}
	var snapshot string
	if err := tx.QueryRow(ctx, `SELECT pg_current_snapshot()::text, clock_timestamp()`).Scan(&snapshot, &res.At); err != nil {
		return res, false, err
	}
	res.At = res.At.UTC()
	var description string
	if err := tx.QueryRow(ctx, catalog.ByNameQuery, t.Quoted()).Scan(&description); errors.Is(err, pgx.ErrNoRows) {
		return res, false, fmt.Errorf("%w: table %q does not exist", ErrInvalidRegistration, t.Registered)
	} else if err != nil {
		return res, false, err
	}
	c, err := catalog.Decode([]byte(description))
	if err != nil {
		return res, false, err
	}
	meta, err := b.cfg.registry.r.Resolve(t, c)
	if err != nil {
		return res, false, err
	}
	if !meta.Audited {
		if !named {
			return res, true, nil
		}
		return res, false, fmt.Errorf("it is registered only as a join table (RegisterM2M): links are not baselined")
	}
	total := int64(0)
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+t.Quoted()).Scan(&total); err != nil {
		return res, false, err
	}
	b.progress(BaselineProgress{Table: t.Registered, Total: total, Elapsed: time.Since(start)})

	first, next, err := baselineBatchSQL(b.entry, t.Quoted(), meta)
	if err != nil {
		return res, false, err
	}
	nk := len(meta.PrimaryKey)
	var after []string // the last key recorded, as text
	for {
		query := first
		args := []any{b.cfg.batch, res.At, b.actor, t.Registered}
		if after != nil {
			query = next
			for _, k := range after {
				args = append(args, k)
			}
		}
		var n int64
		keys := make([]string, nk)
		dest := []any{&n}
		for i := range keys {
			dest = append(dest, &keys[i])
		}
		err := tx.QueryRow(ctx, query, args...).Scan(dest...)
		if errors.Is(err, pgx.ErrNoRows) {
			break
		}
		if err != nil {
			return res, false, checkError(err)
		}
		res.Rows += n
		after = keys
		b.progress(BaselineProgress{Table: t.Registered, Rows: res.Rows, Total: max(total, res.Rows), Elapsed: time.Since(start)})
		if n < int64(b.cfg.batch) {
			break
		}
	}
	marker := record.Entry{Created: "$1::timestamptz", Actor: "$2::text", Operation: "'snapshot'", Table: "$3::text",
		ObjectID: "''", Changes: "jsonb_build_object('snapshot', $4::text, 'rows', $5::bigint)"}
	err = tx.QueryRow(ctx, record.InsertInto(b.entry, false)+` VALUES (`+marker.Values()+`) RETURNING id`, res.At, b.actor, t.Registered, snapshot, res.Rows).Scan(&res.Marker)
	if err != nil {
		return res, false, checkError(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return res, false, err
	}
	res.Duration = time.Since(start)
	b.progress(BaselineProgress{Table: t.Registered, Rows: res.Rows, Total: res.Rows, Done: true, Elapsed: res.Duration})
	return res, false, nil
}

// checkError explains a CHECK violation on operation: an entry table
// created before snapshot entries existed.
func checkError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23514" && strings.Contains(pgErr.ConstraintName, "operation") {
		return fmt.Errorf("%w: its CHECK constraint %s on operation predates them; run Migrate as the table's owner, which widens it "+
			"(or see docs/READING.md, \"An entry table from before snapshot entries\"): %w", ErrBaselineCheck, pgErr.ConstraintName, err)
	}
	return err
}

// baselineBatchSQL returns the statement that records one batch of rows
// of table as snapshot entries, from the first row (first) or after the
// key given as text in $5… (next). Its parameters are the batch size, the
// entries' created, created_by and table_name; it returns, from the last
// row of the batch, the number of rows and the key columns as text.
func baselineBatchSQL(entry sqlq.Name, table string, m *registry.Meta) (first, next string, err error) {
	if len(m.PrimaryKey) == 0 {
		return "", "", fmt.Errorf("%w: table %q has no primary key", ErrInvalidRegistration, table)
	}
	var (
		sel, order, orderB, desc, cols, params, text []string
		ids, keyTypes                                []string
	)
	for i, k := range m.PrimaryKey {
		j := slices.Index(m.Columns, k)
		if j < 0 || j >= len(m.Types) {
			return "", "", fmt.Errorf("primary key column %q is not in the catalog's description", k)
		}
		q := "t." + sqlq.Ident(k)
		alias := "k" + strconv.Itoa(i)
		sel = append(sel, q+" AS "+alias)
		order = append(order, q)
		orderB = append(orderB, "b."+alias)
		desc = append(desc, "b."+alias+" DESC")
		cols = append(cols, q)
		params = append(params, "$"+strconv.Itoa(5+i)+"::text::"+m.Types[j])
		text = append(text, "b."+alias+"::text")
		ids = append(ids, q)
		keyTypes = append(keyTypes, m.Types[j])
	}
	oid := record.ObjectIDSQL(ids, keyTypes)
	build := func(where string) string {
		return `WITH b AS MATERIALIZED (
	SELECT ` + strings.Join(sel, ", ") + `, ` + oid + ` AS oid, ` + record.MaskedImageSQL("t", m.Audit) + ` AS img
	FROM ` + table + ` t` + where + `
	ORDER BY ` + strings.Join(order, ", ") + `
	LIMIT $1
), ins AS (
	` + record.InsertInto(entry, false) + `
	` + record.Entry{Created: "$2::timestamptz", Actor: "$3::text", Operation: "'snapshot'", Table: "$4::text",
			ObjectID: "b.oid", Changes: record.CreatedSQL("b.img")}.Select() + `
	FROM b ORDER BY ` + strings.Join(orderB, ", ") + `
)
SELECT count(*) OVER (), ` + strings.Join(text, ", ") + ` FROM b ORDER BY ` + strings.Join(desc, ", ") + ` LIMIT 1`
	}
	first = build("")
	next = build("\n\tWHERE (" + strings.Join(cols, ", ") + ") > (" + strings.Join(params, ", ") + ")")
	return first, next, nil
}
