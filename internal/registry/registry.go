// Package registry holds what an application told auditpgx at start-up:
// which tables are audited and how, and where entries go. It checks each
// registration against the database catalog the first time it is used.
package registry

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/catalog"
	"github.com/auditpgx/auditpgx/internal/record"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// DefaultEntryTable is the table entries are written to unless configured.
const DefaultEntryTable = "auditpgx_entry"

// ErrInvalid is wrapped by every registration and catalog-check error.
var ErrInvalid = errors.New("auditpgx: invalid registration")

// Config holds a registry's settings.
type Config struct {
	// EntryTable is where entries are written. Default "auditpgx_entry",
	// resolved through the connection's search_path unless qualified.
	EntryTable string
	// AllowUnaudited lets a write that cannot be audited run anyway,
	// logged at warning level, instead of being refused. Default false.
	AllowUnaudited bool
	// AllowSuppression lets statements run under auditpgx.WithoutAudit
	// write one suppressed entry per statement and table.
	AllowSuppression bool
	// WAL, when set, is the WAL sink entries go to instead of EntryTable.
	WAL *record.WAL
	// Logger receives warnings. Default slog.Default().
	Logger *slog.Logger
}

// Registry is a set of audited tables. It is safe for concurrent use.
//
// A registration is of a name, not of a table: an unqualified name means
// whatever table the session's search_path makes it mean when a statement
// runs, a qualified one the table of that schema. What the catalog says of
// a table is kept per table OID, so a table replaced behind the driver's
// back, or a session's temporary table of the registered name, is
// described anew rather than mistaken for the old one.
type Registry struct {
	cfg   Config
	entry sqlq.Name

	mu     sync.RWMutex
	tables map[sqlq.Name]*Table
	// rels counts the registrations of each relation name, schema aside.
	rels map[string]int
	// generation changes whenever the set of tables changes, so that
	// cached rewrites made before a registration are not reused.
	generation atomic.Uint64
}

// New returns an empty registry.
func New(cfg Config) (*Registry, error) {
	if cfg.EntryTable == "" {
		cfg.EntryTable = DefaultEntryTable
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	entry, err := sqlq.ParseName(cfg.EntryTable)
	if err != nil {
		return nil, fmt.Errorf("%w: EntryTable %q: %v", ErrInvalid, cfg.EntryTable, err)
	}
	return &Registry{cfg: cfg, entry: entry, tables: map[sqlq.Name]*Table{}, rels: map[string]int{}}, nil
}

// Config returns the registry's settings with defaults filled in.
func (r *Registry) Config() Config { return r.cfg }

// EntryTable returns the entry table's name.
func (r *Registry) EntryTable() sqlq.Name { return r.entry }

// Generation changes every time a table is registered.
func (r *Registry) Generation() uint64 { return r.generation.Load() }

// TableOption configures a registered table.
type TableOption func(*Table) error

// Exclude leaves columns out of every entry.
func Exclude(cols ...string) TableOption {
	return func(t *Table) error { return addColumns(&t.exclude, "Exclude", cols) }
}

// Redact records columns as "$encrypted$" instead of their values.
func Redact(cols ...string) TableOption {
	return func(t *Table) error { return addColumns(&t.redact, "Redact", cols) }
}

// RecordTruncate lets TRUNCATE of the table run, recorded as one entry with
// operation "truncate", instead of refusing it.
func RecordTruncate() TableOption {
	return func(t *Table) error {
		t.recordTruncate = true
		return nil
	}
}

// Only audits just these columns; every other column behaves as excluded.
func Only(cols ...string) TableOption {
	return func(t *Table) error {
		if len(cols) == 0 {
			return errors.New("Only needs at least one column")
		}
		return addColumns(&t.only, "Only", cols)
	}
}

func addColumns(dst *[]string, option string, cols []string) error {
	for _, c := range cols {
		if c == "" {
			return fmt.Errorf("%s: empty column name", option)
		}
		*dst = append(*dst, c)
	}
	return nil
}

// RegisterTable adds a table. Registering the same table twice is an error;
// a table registered as a join table with RegisterM2M may also be
// registered here, and then both kinds of entries are written.
func (r *Registry) RegisterTable(name string, opts ...TableOption) error {
	t, err := r.newTable(name)
	if err != nil {
		return err
	}
	for _, opt := range opts {
		if err := opt(t); err != nil {
			return fmt.Errorf("%w: table %q: %v", ErrInvalid, name, err)
		}
	}
	if len(t.only) > 0 && len(t.exclude) > 0 {
		return fmt.Errorf("%w: table %q: Only and Exclude cannot be combined", ErrInvalid, name)
	}
	if err := t.checkOptionOverlap(); err != nil {
		return err
	}
	t.audited = true
	return r.add(t, func(existing *Table) error {
		if existing.audited {
			return fmt.Errorf("%w: table %q is already registered", ErrInvalid, name)
		}
		existing.audited, existing.exclude, existing.redact, existing.only = true, t.exclude, t.redact, t.only
		existing.recordTruncate = t.recordTruncate
		return nil
	})
}

// M2M describes a many-to-many join table: each row links an owner object
// (the entry's table_name and object_id) to a related object.
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

// RegisterM2M records writes to a join table as associate and disassociate
// entries. Registering the same join table twice is an error.
func (r *Registry) RegisterM2M(name string, l M2M) error {
	switch {
	case l.Field == "":
		return fmt.Errorf("%w: join table %q: Field is empty", ErrInvalid, name)
	case l.Owner.Table == "" || l.Owner.Column == "":
		return fmt.Errorf("%w: join table %q: Owner needs a Table and a Column", ErrInvalid, name)
	case l.Related.Table == "" || l.Related.Column == "":
		return fmt.Errorf("%w: join table %q: Related needs a Table and a Column", ErrInvalid, name)
	case l.Owner.Column == l.Related.Column:
		return fmt.Errorf("%w: join table %q: Owner and Related use the same column %q", ErrInvalid, name, l.Owner.Column)
	}
	t, err := r.newTable(name)
	if err != nil {
		return err
	}
	t.link = &l
	return r.add(t, func(existing *Table) error {
		if existing.link != nil {
			return fmt.Errorf("%w: join table %q is already registered", ErrInvalid, name)
		}
		existing.link = &l
		return nil
	})
}

func (r *Registry) newTable(name string) (*Table, error) {
	n, err := sqlq.ParseName(name)
	if err != nil {
		return nil, fmt.Errorf("%w: table name %q: %v", ErrInvalid, name, err)
	}
	if n == r.entry || (n.Schema == "" && n.Rel == r.entry.Rel) {
		return nil, fmt.Errorf("%w: table %q is the entry table and cannot be audited", ErrInvalid, name)
	}
	if systemSchema(n.Schema) {
		return nil, fmt.Errorf("%w: table %q is in a system schema and cannot be audited", ErrInvalid, name)
	}
	return &Table{Registered: name, Name: n}, nil
}

// add stores t, or lets merge fold it into an existing registration.
func (r *Registry) add(t *Table, merge func(existing *Table) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if existing, ok := r.tables[t.Name]; ok {
		existing.once.Lock()
		defer existing.once.Unlock()
		if err := merge(existing); err != nil {
			return err
		}
		existing.metas, existing.last = nil, nil
		existing.version.Add(1)
	} else {
		r.tables[t.Name] = t
		r.rels[t.Name.Rel]++
		// A new registration may cover a table another one was checked
		// against (a partition of it, another spelling): check anew.
		for _, other := range r.tables {
			if other != t {
				other.Invalidate()
			}
		}
	}
	r.generation.Add(1)
	return nil
}

// Tables returns the registered tables.
func (r *Registry) Tables() []*Table {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Table, 0, len(r.tables))
	for _, t := range r.tables {
		out = append(out, t)
	}
	return out
}

// Empty reports whether no table is registered.
func (r *Registry) Empty() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.tables) == 0
}

// systemSchema reports whether a schema holds PostgreSQL's own catalogs.
func systemSchema(schema string) bool {
	return schema == "pg_catalog" || schema == "information_schema" || schema == "pg_toast" || strings.HasPrefix(schema, "pg_toast_temp_")
}

// Match returns the registration a table of the catalog falls under, or
// nil: the registration of its schema and name, or, when visible (the
// session's search_path finds it by its bare name), the unqualified
// registration of its name. When both exist they are two registrations of
// one table, which is the error Duplicate returns.
func (r *Registry) Match(schema, rel string, visible bool) (*Table, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	qualified := r.tables[sqlq.Name{Schema: schema, Rel: rel}]
	var bare *Table
	if visible {
		bare = r.tables[sqlq.Name{Rel: rel}]
	}
	switch {
	case qualified != nil && bare != nil:
		return nil, Duplicate(sqlq.Name{Schema: schema, Rel: rel}.String(), qualified, bare)
	case qualified != nil:
		return qualified, nil
	}
	return bare, nil
}

// Duplicate is the error for registrations a and b both covering table
// (the same table by two spellings, or a table and its parent).
func Duplicate(table string, a, b *Table) error {
	x, y := a.Registered, b.Registered
	if x > y {
		x, y = y, x
	}
	return fmt.Errorf("%w: table %s is registered twice, as %q and as %q: a table, with its partitions and inheritance children, takes one registration", ErrInvalid, table, x, y)
}

// Collides reports whether a reference to a table, as written in SQL
// (schema empty when unqualified), may mean a registered table, depending
// on the search_path and on the catalog at the time: an unqualified name
// that is the relation name of a registration in any schema, or a
// qualified one that is registered, qualified or not.
func (r *Registry) Collides(schema, rel string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if schema != "" {
		return r.tables[sqlq.Name{Schema: schema, Rel: rel}] != nil || r.tables[sqlq.Name{Rel: rel}] != nil
	}
	return r.rels[rel] > 0
}

// Resolve checks t against a catalog description (nil when the table does
// not exist) and keeps the result, by the table's OID, for later
// statements.
// A partition or inheritance child of the table that falls under another
// registration makes two registrations of one table: an error.
func (r *Registry) Resolve(t *Table, c *catalog.Table) (*Meta, error) {
	if c != nil {
		for _, child := range c.Children {
			other, err := r.Match(child.Schema, child.Rel, child.Visible)
			if err == nil && other != nil && other != t {
				err = Duplicate(child.Schema+"."+child.Rel, t, other)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return t.resolve(c)
}

// InvalidateAll forgets every checked description and every cached
// rewrite (after DDL, which may have changed any table).
func (r *Registry) InvalidateAll() {
	for _, t := range r.Tables() {
		t.Invalidate()
	}
	r.generation.Add(1)
}

// IsEntryTable reports whether a reference in SQL may mean the entry table.
func (r *Registry) IsEntryTable(schema, rel string) bool {
	return rel == r.entry.Rel && (schema == "" || r.entry.Schema == "" || schema == r.entry.Schema)
}

// Table is one registered table.
type Table struct {
	// Registered is the name as the application registered it; entries
	// carry it in table_name.
	Registered string
	Name       sqlq.Name

	exclude, redact, only []string
	audited               bool
	recordTruncate        bool
	link                  *M2M

	once sync.Mutex
	// metas holds the checked description of each table the name has
	// meant, by OID; last is the latest.
	metas map[uint32]*Meta
	last  *Meta
	// version changes whenever metas are forgotten.
	version atomic.Uint64
}

// Version changes every time the table's checked description is forgotten;
// a rewrite made from an older description is not to be used.
func (t *Table) Version() uint64 { return t.version.Load() }

// Audited reports whether the table was registered with RegisterTable.
func (t *Table) Audited() bool {
	t.once.Lock()
	defer t.once.Unlock()
	return t.audited
}

// Link returns the join-table registration, or nil.
func (t *Table) Link() *M2M {
	t.once.Lock()
	defer t.once.Unlock()
	return t.link
}

// RecordsTruncate reports whether a TRUNCATE of the table is recorded as
// one entry rather than refused.
func (t *Table) RecordsTruncate() bool { return t.recordTruncate }

// Quoted returns the registered name quoted for SQL, e.g. "app"."projects".
func (t *Table) Quoted() string { return t.Name.Quoted() }

// Invalidate forgets the checked description, so that the next statement
// reads the catalog again (after DDL on the table).
func (t *Table) Invalidate() {
	t.once.Lock()
	t.metas, t.last = nil, nil
	t.version.Add(1)
	t.once.Unlock()
}

func (t *Table) checkOptionOverlap() error {
	red := map[string]bool{}
	for _, c := range t.redact {
		red[c] = true
	}
	for _, c := range t.exclude {
		if red[c] {
			return fmt.Errorf("%w: table %q: column %q is both excluded and redacted", ErrInvalid, t.Registered, c)
		}
	}
	return nil
}

// Meta is a table as the catalog describes it, with the registration's
// options applied.
type Meta struct {
	*catalog.Table
	// Audited is true for a table registered with RegisterTable; Audit
	// then lists its audited columns.
	Audited bool
	Audit   diff.Columns
	// Link is set for a join table registered with RegisterM2M.
	Link *M2M
}

// MetaFor returns the checked description of the table with that OID, or
// nil before its first successful check.
func (t *Table) MetaFor(oid uint32) *Meta {
	t.once.Lock()
	defer t.once.Unlock()
	return t.metas[oid]
}

// Meta returns the latest checked description (Check, or the latest write),
// or nil before any.
func (t *Table) Meta() *Meta {
	t.once.Lock()
	defer t.once.Unlock()
	return t.last
}

// ChildNames returns the names of the partitions and inheritance children
// of the tables the registration has been checked against.
func (t *Table) ChildNames() []string {
	t.once.Lock()
	defer t.once.Unlock()
	var out []string
	for _, m := range t.metas {
		for _, c := range m.Children {
			out = append(out, c.Rel)
		}
	}
	return out
}

// metasKept bounds the descriptions kept per registration: each session's
// temporary table of the name is one.
const metasKept = 64

func (t *Table) resolve(c *catalog.Table) (*Meta, error) {
	t.once.Lock()
	defer t.once.Unlock()
	m, err := t.apply(c)
	if err != nil {
		return nil, err
	}
	if t.metas == nil || len(t.metas) >= metasKept {
		t.metas = map[uint32]*Meta{}
	}
	t.metas[c.OID] = m
	t.last = m
	return m, nil
}

func (t *Table) apply(c *catalog.Table) (*Meta, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: table %q does not exist", ErrInvalid, t.Registered)
	}
	if systemSchema(c.Schema) {
		return nil, fmt.Errorf("%w: table %q is %s.%s, a system catalog, and cannot be audited", ErrInvalid, t.Registered, c.Schema, c.Rel)
	}
	if len(c.PrimaryKey) == 0 && t.audited {
		return nil, fmt.Errorf("%w: table %q has no primary key", ErrInvalid, t.Registered)
	}
	exists := map[string]bool{}
	for _, col := range c.Columns {
		exists[col] = true
	}
	if l := t.link; l != nil {
		for _, col := range []string{l.Owner.Column, l.Related.Column} {
			if !exists[col] {
				return nil, fmt.Errorf("%w: join table %q has no column %q", ErrInvalid, t.Registered, col)
			}
		}
	}
	inKey := map[string]bool{}
	for _, col := range c.PrimaryKey {
		inKey[col] = true
	}
	check := func(option string, cols []string, keyAllowed bool) (map[string]bool, error) {
		set := map[string]bool{}
		for _, col := range cols {
			if !exists[col] {
				return nil, fmt.Errorf("%w: table %q has no column %q (named in %s)", ErrInvalid, t.Registered, col, option)
			}
			if inKey[col] && !keyAllowed {
				return nil, fmt.Errorf("%w: table %q: column %q is part of the primary key and cannot be %s", ErrInvalid, t.Registered, col, option)
			}
			set[col] = true
		}
		return set, nil
	}
	excluded, err := check("Exclude", t.exclude, false)
	if err != nil {
		return nil, err
	}
	redacted, err := check("Redact", t.redact, false)
	if err != nil {
		return nil, err
	}
	only, err := check("Only", t.only, true)
	if err != nil {
		return nil, err
	}
	m := &Meta{Table: c, Audited: t.audited, Link: t.link, Audit: diff.Columns{Redacted: redacted}}
	for _, col := range c.Columns {
		if excluded[col] || (len(only) > 0 && !only[col]) {
			continue
		}
		m.Audit.Names = append(m.Audit.Names, col)
	}
	return m, nil
}

// Invalidate forgets t's checked description and every cached rewrite, so
// that the next statement re-reads the catalog (after DDL on the table).
func (r *Registry) Invalidate(t *Table) {
	t.Invalidate()
	r.generation.Add(1)
}
