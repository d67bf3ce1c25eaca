package bench

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/store"
)

//go:embed row_trigger.sql
var rowTriggerFunction string

// The variants, in the order reports list them.
const (
	Plain       = "plain"        // pgx's stdlib driver, no auditing: the lower bound
	Auditpgx    = "auditpgx"     // the same statements through auditpgx
	RowTrigger  = "row trigger"  // plain pgx, generic AFTER ROW trigger (row_trigger.sql)
	StmtTrigger = "stmt trigger" // plain pgx, AFTER STATEMENT triggers over transition tables
	// Suppressed runs the statements through auditpgx under WithoutAudit:
	// one suppressed entry per statement. Only when asked for.
	Suppressed = "suppressed"
	// AuditpgxWAL runs the statements through auditpgx with the WAL sink:
	// entries as logical decoding messages (slot WALSlot, which nothing
	// reads during the run). It needs wal_level=logical. Only when asked
	// for.
	AuditpgxWAL = "auditpgx-wal"
)

// WALSlot is the slot the auditpgx-wal variant's messages are checked
// against.
const WALSlot = "auditbench_wal"

// VariantNames lists the variants run by default.
var VariantNames = []string{Plain, Auditpgx, RowTrigger, StmtTrigger}

// allVariants lists every variant.
var allVariants = append(slices.Clone(VariantNames), Suppressed, AuditpgxWAL, Floor, FloorPreImage, FloorDiff)

// Variant is one way of running the workloads: its own schema holding the
// table (and, when audited, an entry table and any triggers), and a pool of
// connections whose search_path is that schema.
type Variant struct {
	Name   string
	Schema string
	DB     *sql.DB
	// Audited is true when the variant writes entries.
	Audited bool
	// actor is passed to auditpgx with WithActor; the trigger variants
	// read it from the setting auditbench.actor of their connections.
	actor string
	// suppressed runs every statement under auditpgx.WithoutAudit.
	suppressed bool
	// floor maps each workload write to the floor statement a floor
	// variant sends instead (floor.go), with floorActor as its last
	// argument; nil on the other variants.
	floor      map[string]string
	floorActor string
}

// Config configures a Suite.
type Config struct {
	// DSN is a postgres:// URL of a database in which the suite may create
	// and drop the schemas auditbench_*. Required.
	DSN string
	// Rows is how many rows each variant's table is seeded with; the bulk
	// UPDATE updates all of them. Default 100,000.
	Rows int
	// BulkInsert is how many rows the bulk INSERT writes. Default 10,000.
	BulkInsert int
	// Conns is each variant's connection pool size and the number of
	// goroutines of the concurrent workload. Default 8.
	Conns int
	// Actor is recorded as created_by. Default "auditbench".
	Actor string
	// Variants lists the variants to set up, by name. Default all.
	Variants []string
	// WALChunkRows is the auditpgx-wal variant's WALSink.ChunkRows: the
	// most entries in one message (0: auditpgx's default).
	WALChunkRows int
}

func (c *Config) setDefaults() error {
	if c.DSN == "" {
		return errors.New("bench: Config.DSN is required")
	}
	if c.Rows == 0 {
		c.Rows = 100_000
	}
	if c.BulkInsert == 0 {
		c.BulkInsert = 10_000
	}
	if c.Conns == 0 {
		c.Conns = 8
	}
	if c.Actor == "" {
		c.Actor = "auditbench"
	}
	if len(c.Variants) == 0 {
		c.Variants = VariantNames
	}
	if c.Rows < 10 || c.BulkInsert < 1 || c.Conns < 1 {
		return fmt.Errorf("bench: Config: Rows (%d) must be at least 10, BulkInsert (%d) and Conns (%d) at least 1", c.Rows, c.BulkInsert, c.Conns)
	}
	return nil
}

// Suite is the table, set up once per variant on one server, and the
// variants' connection pools.
type Suite struct {
	cfg      Config
	admin    *pgx.Conn // resets data with triggers disabled
	Variants []*Variant
	// ServerVersion is the server's server_version_num.
	ServerVersion int
	// Durability is the server's fsync, synchronous_commit and
	// full_page_writes settings, as "fsync=on synchronous_commit=on
	// full_page_writes=on".
	Durability string
}

// Open creates each variant's schema, table, entry table and triggers,
// seeds the tables, and opens the variants' pools.
func Open(ctx context.Context, cfg Config) (*Suite, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	base, err := url.Parse(cfg.DSN)
	if err != nil || (base.Scheme != "postgres" && base.Scheme != "postgresql") {
		return nil, errors.New("bench: Config.DSN must be a postgres:// URL")
	}
	admin, err := pgx.Connect(ctx, cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("bench: connecting: %w", err)
	}
	s := &Suite{cfg: cfg, admin: admin}
	if err := s.open(ctx, base); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Suite) open(ctx context.Context, base *url.URL) error {
	// Replica mode skips ordinary triggers, so resets write no entries.
	if _, err := s.admin.Exec(ctx, `SET session_replication_role = replica`); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := s.admin.QueryRow(ctx, settingsSQL).Scan(&s.ServerVersion, &s.Durability); err != nil {
		return err
	}
	for _, name := range s.cfg.Variants {
		v, err := s.setup(ctx, base, name)
		if err != nil {
			return fmt.Errorf("bench: setting up %s: %w", name, err)
		}
		s.Variants = append(s.Variants, v)
		if err := s.Seed(ctx, v); err != nil {
			return err
		}
	}
	return nil
}

// settingsSQL reads the server_version_num and the durability settings.
const settingsSQL = `SELECT current_setting('server_version_num')::int,
	format('fsync=%s synchronous_commit=%s full_page_writes=%s', current_setting('fsync'), current_setting('synchronous_commit'), current_setting('full_page_writes'))`

// ServerSettings returns the server's server_version_num and its
// durability settings, as Suite.ServerVersion and Suite.Durability.
func ServerSettings(ctx context.Context, dsn string) (version int, durability string, err error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close(context.Background())
	err = conn.QueryRow(ctx, settingsSQL).Scan(&version, &durability)
	return version, durability, err
}

func schemaFor(name string) string {
	switch name {
	case RowTrigger:
		return "auditbench_row"
	case StmtTrigger:
		return "auditbench_stmt"
	case AuditpgxWAL:
		return "auditbench_wal"
	case FloorPreImage:
		return "auditbench_floor_pre"
	case FloorDiff:
		return "auditbench_floor_diff"
	}
	return "auditbench_" + name
}

func (s *Suite) setup(ctx context.Context, base *url.URL, name string) (*Variant, error) {
	v := &Variant{Name: name, Schema: schemaFor(name), Audited: name != Plain}
	ddl := []string{
		`DROP SCHEMA IF EXISTS ` + v.Schema + ` CASCADE`,
		`CREATE SCHEMA ` + v.Schema,
		`SET search_path = ` + v.Schema,
		tableDDL,
	}
	if v.Audited {
		ddl = append(ddl, store.Schema)
	}
	switch name {
	case Plain, Auditpgx, Suppressed:
	case Floor, FloorPreImage, FloorDiff:
		v.floor, v.floorActor = map[string]string{}, s.cfg.Actor
		for q := range floorStatements {
			f, err := floorSQL(q, s.ServerVersion, name)
			if err != nil {
				return nil, err
			}
			v.floor[q] = f
		}
	case AuditpgxWAL:
		ddl = append(ddl, `SELECT pg_create_logical_replication_slot('`+WALSlot+`', 'pgoutput')
			WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = '`+WALSlot+`')`)
	case RowTrigger:
		ddl = append(ddl, rowTriggerFunction, rowTriggerDDL())
	case StmtTrigger:
		ddl = append(ddl, statementTriggerDDL())
	default:
		return nil, fmt.Errorf("unknown variant %q (want one of %q)", name, allVariants)
	}
	for _, q := range ddl {
		if _, err := s.admin.Exec(ctx, q); err != nil {
			return nil, err
		}
	}
	u := *base
	q := u.Query()
	q.Set("search_path", v.Schema)
	q.Set("application_name", v.Schema)
	if name == RowTrigger || name == StmtTrigger {
		q.Set("auditbench.actor", s.cfg.Actor)
	}
	u.RawQuery = q.Encode()
	dsn := u.String()
	if name == Auditpgx || name == Suppressed || name == AuditpgxWAL {
		cfg := auditpgx.RegistryConfig{AllowSuppression: name == Suppressed}
		if name == AuditpgxWAL {
			cfg.Sink = auditpgx.WALSink{Slot: WALSlot, ChunkRows: s.cfg.WALChunkRows}
		}
		db, reg, err := openAuditpgx(dsn, cfg)
		if err != nil {
			return nil, err
		}
		v.DB = db
		if err := auditpgx.Check(ctx, v.DB, auditpgx.WithRegistry(reg)); err != nil {
			v.DB.Close()
			return nil, err
		}
		v.actor = s.cfg.Actor
		v.suppressed = name == Suppressed
	} else {
		var err error
		if v.DB, err = sql.Open("pgx", dsn); err != nil {
			return nil, err
		}
	}
	v.DB.SetMaxOpenConns(s.cfg.Conns)
	v.DB.SetMaxIdleConns(s.cfg.Conns)
	return v, nil
}

// Close closes the pools and drops the schemas.
func (s *Suite) Close() error {
	var errs []error
	ctx := context.Background()
	for _, v := range s.Variants {
		errs = append(errs, v.DB.Close())
		if _, err := s.admin.Exec(ctx, `DROP SCHEMA IF EXISTS `+v.Schema+` CASCADE`); err != nil {
			errs = append(errs, err)
		}
		if v.Name == AuditpgxWAL {
			if _, err := s.admin.Exec(ctx, `SELECT pg_drop_replication_slot('`+WALSlot+`')`); err != nil {
				errs = append(errs, err)
			}
		}
	}
	errs = append(errs, s.admin.Close(ctx))
	return errors.Join(errs...)
}

// Config returns the suite's configuration with defaults filled in.
func (s *Suite) Config() Config { return s.cfg }

// Variant returns the variant of that name, or nil.
func (s *Suite) Variant(name string) *Variant {
	for _, v := range s.Variants {
		if v.Name == name {
			return v
		}
	}
	return nil
}

func (s *Suite) adminExec(ctx context.Context, v *Variant, stmts ...string) error {
	if _, err := s.admin.Exec(ctx, `SET search_path = `+v.Schema); err != nil {
		return err
	}
	for _, q := range stmts {
		if _, err := s.admin.Exec(ctx, q); err != nil {
			return fmt.Errorf("bench: %s: %w", v.Name, err)
		}
	}
	return nil
}

func (s *Suite) truncate(v *Variant) string {
	if v.Audited {
		return `TRUNCATE account, auditpgx_entry RESTART IDENTITY`
	}
	return `TRUNCATE account RESTART IDENTITY`
}

func (s *Suite) vacuum(v *Variant) string {
	if v.Audited {
		return `VACUUM (ANALYZE) account, auditpgx_entry`
	}
	return `VACUUM (ANALYZE) account`
}

// Seed empties v's tables and fills the table with Rows fresh rows, the
// same in every variant, without writing entries; then vacuums.
func (s *Suite) Seed(ctx context.Context, v *Variant) error {
	if err := s.adminExec(ctx, v, s.truncate(v)); err != nil {
		return err
	}
	if _, err := s.admin.Exec(ctx, seedSQL, s.cfg.Rows); err != nil {
		return fmt.Errorf("bench: seeding %s: %w", v.Name, err)
	}
	return s.adminExec(ctx, v, s.vacuum(v))
}

// trim removes the rows added after seeding and every entry, then vacuums.
func (s *Suite) trim(ctx context.Context, v *Variant) error {
	stmts := []string{fmt.Sprintf(`DELETE FROM account WHERE id > %d`, s.cfg.Rows)}
	if v.Audited {
		stmts = append(stmts, `TRUNCATE auditpgx_entry RESTART IDENTITY`)
	}
	return s.adminExec(ctx, v, append(stmts, s.vacuum(v))...)
}

// insertUntimed adds n rows to v's table without writing entries and
// returns their keys.
func (s *Suite) insertUntimed(ctx context.Context, v *Variant, round, n int) ([]int64, error) {
	if _, err := s.admin.Exec(ctx, `SET search_path = `+v.Schema); err != nil {
		return nil, err
	}
	rows, err := s.admin.Query(ctx, `INSERT INTO account (name, email, balance, active, score, tags, meta, created_at, password_hash)
SELECT 'doomed ' || g, 'doomed' || g || '@example.com', g, false, g, ARRAY['doomed'], jsonb_build_object('round', $1::int), $2::timestamptz, md5(g::text)
FROM generate_series(1, $3::int) g RETURNING id`, round, baseTime, n)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// serverCPU returns the CPU time that the server processes of v's
// connections have used, read from /proc/<pid>/schedstat: time on a CPU,
// which, unlike elapsed time, does not grow while a process waits for one.
// ok is false when the server's processes cannot be read, as when it runs
// on another machine.
func (s *Suite) serverCPU(ctx context.Context, v *Variant) (total time.Duration, ok bool, err error) {
	rows, err := s.admin.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, v.Schema)
	if err != nil {
		return 0, false, err
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return 0, false, err
	}
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && len(pids) > 1 {
				continue // a connection that has just closed
			}
			return 0, false, nil
		}
		f := strings.Fields(string(data))
		if len(f) == 0 {
			return 0, false, nil
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, false, nil
		}
		total += time.Duration(ns)
	}
	return total, len(pids) > 0, nil
}

// EntrySize is the space that one variant's entries take, per entry.
type EntrySize struct {
	Entries int64
	// Heap and Toast are the table's main fork and TOAST table (with its
	// index), in bytes per entry.
	Heap, Toast float64
	// Indexes is each index's size in bytes per entry, by index name.
	Indexes map[string]float64
}

// EntrySize measures v's entry table as it stands.
func (s *Suite) EntrySize(ctx context.Context, v *Variant) (*EntrySize, error) {
	if !v.Audited {
		return nil, fmt.Errorf("bench: %s writes no entries", v.Name)
	}
	tbl := v.Schema + ".auditpgx_entry"
	es := &EntrySize{Indexes: map[string]float64{}}
	var heap, toast int64
	err := s.admin.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+tbl+`), pg_relation_size($1::regclass),
		coalesce((SELECT pg_total_relation_size(reltoastrelid) FROM pg_class WHERE oid = $1::regclass AND reltoastrelid <> 0), 0)`,
		tbl).Scan(&es.Entries, &heap, &toast)
	if err != nil {
		return nil, err
	}
	if es.Entries == 0 {
		return es, nil
	}
	es.Heap, es.Toast = float64(heap)/float64(es.Entries), float64(toast)/float64(es.Entries)
	rows, err := s.admin.Query(ctx, `SELECT c.relname, pg_relation_size(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass ORDER BY 1`, tbl)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var size int64
		if err := rows.Scan(&name, &size); err != nil {
			return nil, err
		}
		es.Indexes[name] = float64(size) / float64(es.Entries)
	}
	return es, rows.Err()
}
