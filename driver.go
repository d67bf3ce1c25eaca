// Package auditpgx is a database/sql driver for PostgreSQL that records an
// activity-stream entry for every row an INSERT, UPDATE, DELETE or (from
// PostgreSQL 17) MERGE changes in a registered table, in the same statement
// as the change, so the entry commits or rolls back with it.
//
// It wraps pgx's stdlib driver and is a drop-in replacement for it:
//
//	import "github.com/auditpgx/auditpgx"
//
//	auditpgx.RegisterTable("users", auditpgx.Exclude("last_login"), auditpgx.Redact("password_hash"))
//	db, err := sql.Open("auditpgx", "postgres://app@localhost/app")
//	err = auditpgx.Migrate(ctx, db) // creates auditpgx_entry if absent
//	ctx = auditpgx.WithActor(ctx, "alice")
//	_, err = db.ExecContext(ctx, `UPDATE users SET name = $1 WHERE id = $2`, "Bob", 7)
//
// The UPDATE above reaches PostgreSQL as one statement that locks and reads
// the old rows, updates them and inserts one entry per changed row with the
// diff {"added_fields": {}, "removed_fields": {}, "changed_fields":
// {"name": ["Al", "Bob"]}}. What the caller sees — rows, columns, column
// types, RowsAffected, errors as *pgconn.PgError — is what pgx returns for
// the original statement.
//
// Statements that write no registered table reach pgx unchanged. A write to
// a registered table that cannot be audited is refused with an error
// wrapping ErrUnaudited, and nothing runs; RegistryConfig.AllowUnaudited
// lets such writes through, logged.
//
// Not seen: writes made inside SQL functions, procedures, DO blocks and
// triggers, by EXECUTE of a server-side PREPARE, and by clients that do not
// use this driver. A write through a view or a rule that reads a registered
// table is refused.
package auditpgx

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/ngrok/sqlmw"

	"github.com/auditpgx/auditpgx/internal/catalog"
	"github.com/auditpgx/auditpgx/internal/registry"
	"github.com/auditpgx/auditpgx/store"
)

// DriverName is the name the driver registers with database/sql.
const DriverName = "auditpgx"

var defaultInterceptor = newInterceptor(defaultRegistry.r)

func init() {
	sql.Register(DriverName, sqlmw.Driver(stdlib.GetDefaultDriver(), defaultInterceptor))
}

// Option configures NewConnector, Migrate and Check.
type Option func(*options)

type options struct {
	registry *Registry
	migrate  []store.MigrateOption
	stdlib   []stdlib.OptionOpenDB // WithStdlibOptions
}

// WithoutEntryIndexes makes Migrate leave these secondary indexes of the
// entry table out: any of "object", "created", "tx", "actor", "related" and
// "changes" (see store.WithoutIndexes). Each index costs every audited
// write (docs/PERFORMANCE.md); the read queries it serves scan without it.
// Other functions refuse it with an error.
func WithoutEntryIndexes(names ...string) Option {
	return func(o *options) { o.migrate = append(o.migrate, store.WithoutIndexes(names...)) }
}

// WithRegistry uses r instead of the default registry.
func WithRegistry(r *Registry) Option {
	return func(o *options) { o.registry = r }
}

// optionUse says which options a function takes besides WithRegistry.
type optionUse uint8

const (
	takesMigrate optionUse = 1 << iota // WithoutEntryIndexes
	takesStdlib                        // WithStdlibOptions
)

// applyOptions applies opts for a function named fn; an option fn does not
// take is an error, never ignored.
func applyOptions(fn string, use optionUse, opts []Option) (*options, error) {
	o := &options{registry: defaultRegistry}
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("auditpgx: %s: option %d is nil", fn, i+1)
		}
		opt(o)
	}
	return o, o.check(fn, use)
}

// check refuses, for a function named fn, a nil registry and an option fn
// does not take.
func (o *options) check(fn string, use optionUse) error {
	switch {
	case o.registry == nil:
		return fmt.Errorf("auditpgx: %s: WithRegistry(nil)", fn)
	case len(o.migrate) > 0 && use&takesMigrate == 0:
		return fmt.Errorf("auditpgx: %s does not take WithoutEntryIndexes, an option of Migrate", fn)
	case len(o.stdlib) > 0 && use&takesStdlib == 0:
		return fmt.Errorf("auditpgx: %s does not take WithStdlibOptions, an option of the connectors", fn)
	}
	return nil
}

// NewConnector returns a connector for sql.OpenDB. dsn is anything pgx
// accepts; with WithStdlibOptions, a connection string or URL.
func NewConnector(dsn string, opts ...Option) (driver.Connector, error) {
	return newDSNConnector(dsn, opts)
}

// Migrate creates the entry table and its indexes if they are absent. It is
// idempotent and safe to run from several processes at once. The same DDL
// is available as store.Schema for migration tools.
func Migrate(ctx context.Context, db *sql.DB, opts ...Option) error {
	o, err := applyOptions("Migrate", takesMigrate, opts)
	if err != nil {
		return err
	}
	return store.Migrate(ctx, db, o.registry.r.EntryTable().Quoted(), o.migrate...)
}

// Check reads the catalog for every registered table and returns the first
// problem: a missing table, a table without a primary key, or an excluded,
// redacted or only column that does not exist. Run it at start-up to fail
// early; otherwise the same check runs at each table's first use.
func Check(ctx context.Context, db *sql.DB, opts ...Option) error {
	o, err := applyOptions("Check", 0, opts)
	if err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var errs []error
	tables := o.registry.r.Tables()
	slices.SortFunc(tables, func(a, b *registry.Table) int { return strings.Compare(a.Registered, b.Registered) })
	// owner maps each table checked, and its partitions and children, to
	// its registration: two registrations of one table are an error.
	owner := map[uint32]*registry.Table{}
	reported := map[[2]*registry.Table]bool{}
	for _, t := range tables {
		err := conn.Raw(func(dc any) error {
			q, ok := dc.(driver.QueryerContext)
			if !ok {
				return fmt.Errorf("auditpgx: connection of type %T cannot run queries", dc)
			}
			c, err := catalog.Describe(ctx, q, catalog.ByNameQuery, t.Quoted())
			if err != nil {
				return err
			}
			if _, err := o.registry.r.Resolve(t, c); err != nil {
				return err
			}
			covered := []catalog.Child{{OID: c.OID, Schema: c.Schema, Rel: c.Rel}}
			for _, child := range append(covered, c.Children...) {
				other := owner[child.OID]
				if other == nil {
					owner[child.OID] = t
					continue
				}
				if pair := [2]*registry.Table{other, t}; other != t && !reported[pair] {
					reported[pair] = true
					errs = append(errs, registry.Duplicate(child.Schema+"."+child.Rel, other, t))
				}
			}
			return nil
		})
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
