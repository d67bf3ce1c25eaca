package auditpgx

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/registry"
)

// Registry is a set of audited tables and where their entries go. It is
// safe for concurrent use. Register every table at start-up, before the
// first statement that writes it.
//
// A registration is of a name, not of a table: an unqualified name means
// whatever table the session's search_path makes it mean when a statement
// runs, a qualified one the table of that schema (docs/REGISTRATION.md).
type Registry struct {
	r *registry.Registry
}

// RegistryConfig configures a Registry.
type RegistryConfig struct {
	// EntryTable is where entries are written, named as in SQL:
	// "auditpgx_entry" (the default) is found through the connection's
	// search_path, "audit.entries" is qualified, `"Audit Log"` keeps its
	// case. store and the CLI read a name the same way.
	EntryTable string
	// AllowUnaudited lets a write that cannot be audited run anyway,
	// logged at warning level, instead of being refused. Default false.
	AllowUnaudited bool
	// AllowSuppression lets statements run under WithoutAudit write one
	// "suppressed" entry per statement and table instead of an entry per
	// row. Default false: such a statement fails with
	// ErrSuppressionNotAllowed.
	AllowSuppression bool
	// Sink is where entries go: TableSink (the default, nil), an INSERT
	// into EntryTable in the audited statement, or WALSink, a
	// transactional logical decoding message that a relay writes to an
	// entry table (docs/SINKS.md).
	Sink Sink
	// Logger receives warnings. Default slog.Default().
	Logger *slog.Logger
}

var defaultRegistry = func() *Registry {
	r, err := NewRegistry(RegistryConfig{})
	if err != nil {
		panic(err) // the zero config is valid
	}
	return r
}()

// NewRegistry returns an empty registry, for use with WithRegistry. An
// EntryTable that is not a table name as SQL writes one, and a WALSink
// whose Slot or Prefix is invalid, are errors wrapping
// ErrInvalidRegistration.
func NewRegistry(cfg RegistryConfig) (*Registry, error) {
	wal, err := walConfig(cfg.Sink)
	if err != nil {
		return nil, err
	}
	r, err := registry.New(registry.Config{EntryTable: cfg.EntryTable, AllowUnaudited: cfg.AllowUnaudited,
		AllowSuppression: cfg.AllowSuppression, WAL: wal, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	return &Registry{r: r}, nil
}

// DefaultRegistry returns the registry that sql.Open("auditpgx", ...) and
// the package-level RegisterTable use.
func DefaultRegistry() *Registry { return defaultRegistry }

// TableOption configures a table registered with RegisterTable: Exclude,
// Redact, Only, RecordTruncate.
type TableOption struct {
	apply registry.TableOption
}

// Exclude leaves columns out of every entry, deletes included.
func Exclude(cols ...string) TableOption { return TableOption{registry.Exclude(cols...)} }

// Redact records columns as "$encrypted$"; a change to one is recorded as
// ["$encrypted$", "$encrypted$"]. Values never leave the server.
func Redact(cols ...string) TableOption { return TableOption{registry.Redact(cols...)} }

// Only audits just these columns; every other column behaves as excluded.
func Only(cols ...string) TableOption { return TableOption{registry.Only(cols...)} }

// RecordTruncate lets TRUNCATE of the table run, recorded as one entry with
// operation "truncate" (no object_id, no changes), where it is otherwise
// refused. Partitions, inheritance children and, for TRUNCATE ... CASCADE,
// the tables that refer to the truncated ones count too: a TRUNCATE that
// empties a registered table without this option is refused.
func RecordTruncate() TableOption { return TableOption{registry.RecordTruncate()} }

// RegisterTable audits a table. name is written as in SQL: "users",
// "app.projects", `"Users"`. The table is checked against the catalog when
// first used (or by Check). Registering a table twice, under one spelling
// or two, is an error wrapping ErrInvalidRegistration.
func (r *Registry) RegisterTable(name string, opts ...TableOption) error {
	inner := make([]registry.TableOption, len(opts))
	for i, o := range opts {
		if o.apply == nil {
			return fmt.Errorf("%w: table %q: option %d is the zero TableOption", ErrInvalidRegistration, name, i+1)
		}
		inner[i] = o.apply
	}
	return r.r.RegisterTable(name, inner...)
}

// M2M describes a many-to-many join table for RegisterM2M: each row links
// an owner object (the entry's table_name and object_id) to a related one.
type M2M struct {
	// Field is the entries' related_field_name, e.g. "members".
	Field string
	// Owner is the object whose entries record the link: its table, as
	// entries name it, and the join table's column holding its key.
	Owner Ref
	// Related is the object on the other side of the link.
	Related Ref
}

// Ref names a table and the join table's column that refers to it.
type Ref struct {
	Table  string
	Column string
}

// RegisterM2M records every write to a join table as associate and
// disassociate entries on the owner: one per link inserted or deleted, a
// disassociate and an associate for an UPDATE that moves a link, nothing
// for links that did not change. The join table and both columns are
// checked at first use; Owner and Related need not be registered tables. A
// join table may also be registered with RegisterTable, for its own
// columns.
func (r *Registry) RegisterM2M(table string, m M2M) error {
	return r.r.RegisterM2M(table, registry.M2M{Field: m.Field, Owner: registry.Ref(m.Owner), Related: registry.Ref(m.Related)})
}

// RegisterTable audits a table in the default registry; see
// Registry.RegisterTable.
func RegisterTable(name string, opts ...TableOption) error {
	return defaultRegistry.RegisterTable(name, opts...)
}

// RegisterM2M records writes to a join table in the default registry; see
// Registry.RegisterM2M.
func RegisterM2M(table string, m M2M) error {
	return defaultRegistry.RegisterM2M(table, m)
}

// RegisteredTable is one registration, with what the catalog said of its
// table when last read (by Check, Baseline or a write): what replay and
// comparison helpers need to read a table as its entries record it.
type RegisteredTable struct {
	// Name is the name as registered; entries carry it in table_name.
	Name string
	// Audited is true for a table registered with RegisterTable.
	Audited bool
	// Link is set for a join table registered with RegisterM2M.
	Link *M2M

	// Checked is false until the table's catalog has been read; the
	// fields below are then empty.
	Checked bool
	// Table is the table the name last meant, schema-qualified and quoted
	// for SQL: "app"."users".
	Table string
	// PrimaryKey lists the key columns, whose values make object_id.
	PrimaryKey []string
	// Columns are the audited columns (exclusions and Only applied) and
	// which of them are redacted.
	Columns diff.Columns
}

// Tables returns the registrations, ordered by name.
func (r *Registry) Tables() []RegisteredTable {
	tables := r.r.Tables()
	slices.SortFunc(tables, func(a, b *registry.Table) int { return strings.Compare(a.Registered, b.Registered) })
	out := make([]RegisteredTable, 0, len(tables))
	for _, t := range tables {
		rt := RegisteredTable{Name: t.Registered, Audited: t.Audited()}
		if l := t.Link(); l != nil {
			rt.Link = &M2M{Field: l.Field, Owner: Ref(l.Owner), Related: Ref(l.Related)}
		}
		if m := t.Meta(); m != nil {
			rt.Checked, rt.Table, rt.PrimaryKey = true, m.Quoted(), slices.Clone(m.PrimaryKey)
			rt.Columns = diff.Columns{Names: slices.Clone(m.Audit.Names), Redacted: maps.Clone(m.Audit.Redacted)}
		}
		out = append(out, rt)
	}
	return out
}
