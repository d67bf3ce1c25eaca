package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/record"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// WatchTable is a table registered with auditpgx whose committed writes
// that no auditpgx entry accounts for the relay records (Config.Watch):
// writes by psql sessions, functions, triggers and other applications.
// Give it as the application registers it, so that its entries follow the
// same rules: auditpgx.Registry.Tables lists the registrations.
type WatchTable struct {
	// Table is the name as registered, which entries carry in table_name,
	// resolved in Source with the relay's search_path (as SQL writes a
	// name: "users", "app.users", `"Audit Log"`).
	Table string
	// Exclude, Redact and Only are the registration's column options:
	// excluded columns never appear, redacted ones as "$encrypted$", and
	// with Only every other column behaves as excluded.
	Exclude, Redact, Only []string
	// Link is set for a join table registered with RegisterM2M, whose
	// rows make associate and disassociate entries; the column options
	// are then unused.
	Link *WatchLink
}

// WatchLink is a join table's registration (auditpgx.M2M): Field names
// the relation, Owner and Related the registered tables the join table's
// columns refer to. Entries are recorded on the owner.
type WatchLink struct {
	Field                       string
	OwnerTable, OwnerColumn     string
	RelatedTable, RelatedColumn string
}

// OutsideContext is the context of the entries the relay records for
// outside writes.
const OutsideContext = `{"source": "outside"}`

// watcher finds the row changes of watched tables that no entry of their
// transaction accounts for, and makes their entries.
type watcher struct {
	s    settings
	conn *pgx.Conn // Source, to read the catalog and render values
	// tables are the watched tables by their resolved schema and name.
	tables map[[2]string]*watchedTable
	// rels are the watched relations pgoutput described, by relation id.
	rels map[uint32]*relation
	// changes are the open transaction's row changes of watched tables.
	changes []rowChange
	queries map[queryKey]string
}

type watchedTable struct {
	WatchTable
	name sqlq.Name // as resolved: schema-qualified
}

// relation is a watched table as pgoutput last described it.
type relation struct {
	t     *watchedTable
	names []string
	types []uint32
	key   []int // indexes of the primary key's columns in names
	cols  diff.Columns
	// owner and related are the indexes of a join table's columns.
	owner, related int
}

// rowChange is one row change; nil values are SQL NULL.
type rowChange struct {
	rel      *relation
	op       string // create, update or delete
	old, new []*string
}

type queryKey struct {
	rel *relation
	op  string
}

// newWatcher resolves the watched tables in Source and checks, or sets,
// their replica identity.
func newWatcher(ctx context.Context, s settings) (*watcher, error) {
	conn, err := pgx.Connect(ctx, s.Source)
	if err != nil {
		return nil, fmt.Errorf("auditpgx: relay: connecting to Source: %w", err)
	}
	w := &watcher{s: s, conn: conn, tables: map[[2]string]*watchedTable{}, rels: map[uint32]*relation{}, queries: map[queryKey]string{}}
	for _, wt := range s.Watch {
		t, err := resolveWatched(ctx, conn, s, wt)
		if err != nil {
			conn.Close(context.Background())
			return nil, err
		}
		w.tables[[2]string{t.name.Schema, t.name.Rel}] = t
	}
	return w, nil
}

// resolveWatched finds the table wt names and checks that pgoutput will
// send its old rows: REPLICA IDENTITY FULL, set here when the Config says
// so.
func resolveWatched(ctx context.Context, conn *pgx.Conn, s settings, wt WatchTable) (*watchedTable, error) {
	n, err := sqlq.ParseName(wt.Table)
	if err != nil {
		return nil, fmt.Errorf("%w: Watch %q: %v", ErrConfig, wt.Table, err)
	}
	var schema, rel, ident *string
	err = conn.QueryRow(ctx, `SELECT n.nspname, c.relname, c.relreplident::text FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = pg_catalog.to_regclass($1)`, n.Quoted()).Scan(&schema, &rel, &ident)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("auditpgx: relay: watched table %q does not exist in Source", wt.Table)
	}
	if err != nil {
		return nil, fmt.Errorf("auditpgx: relay: looking up watched table %q: %w", wt.Table, err)
	}
	t := &watchedTable{WatchTable: wt, name: sqlq.Name{Schema: *schema, Rel: *rel}}
	if *ident != "f" {
		alter := "ALTER TABLE " + t.name.Quoted() + " REPLICA IDENTITY FULL"
		if !s.SetReplicaIdentity {
			return nil, fmt.Errorf("auditpgx: relay: watched table %q has REPLICA IDENTITY %s, and the relay needs FULL to read the old values of its updates and deletes: run %s, or set SetReplicaIdentity (--set-replica-identity)",
				wt.Table, replicaIdentityName(*ident), alter)
		}
		if _, err := conn.Exec(ctx, alter); err != nil {
			return nil, fmt.Errorf("auditpgx: relay: %s: %w", alter, err)
		}
	}
	return t, nil
}

func replicaIdentityName(c string) string {
	switch c {
	case "d":
		return "DEFAULT"
	case "n":
		return "NOTHING"
	case "i":
		return "USING INDEX"
	}
	return c
}

func (w *watcher) close() { w.conn.Close(context.Background()) }

// check fails when a watched table is not in the publication, or has left
// it, as a table dropped and created again does: pgoutput would send none
// of its changes, and no error would say so. Run calls it at start and
// every status interval.
func (w *watcher) check(ctx context.Context) error {
	missing, err := unpublished(ctx, w.conn, w.s)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("auditpgx: relay: watched table %s is not in publication %q, so its writes by other clients are not seen (a table dropped and created again leaves it): run ALTER PUBLICATION %s ADD TABLE %s, or set Create",
			missing[0], w.s.Publication, sqlq.Ident(w.s.Publication), strings.Join(missing, ", "))
	}
	return nil
}

// relation takes pgoutput's description of a relation, sent before its
// first change in a stream and after each change of its columns.
func (w *watcher) relation(ctx context.Context, m *pglogrepl.RelationMessage) error {
	t := w.tables[[2]string{m.Namespace, m.RelationName}]
	if t == nil {
		delete(w.rels, m.RelationID)
		return nil
	}
	r := &relation{t: t}
	for _, c := range m.Columns {
		r.names = append(r.names, c.Name)
		r.types = append(r.types, c.DataType)
	}
	if l := t.Link; l != nil {
		r.owner, r.related = slices.Index(r.names, l.OwnerColumn), slices.Index(r.names, l.RelatedColumn)
		if r.owner < 0 || r.related < 0 {
			return fmt.Errorf("auditpgx: relay: watched join table %q has no column %q or %q", t.Table, l.OwnerColumn, l.RelatedColumn)
		}
		w.rels[m.RelationID] = r
		clear(w.queries)
		return nil
	}
	// The key as the catalog says now: pgoutput marks every column as the
	// key under REPLICA IDENTITY FULL.
	rows, err := w.conn.Query(ctx, `SELECT a.attname FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
WHERE i.indrelid = $1::oid AND i.indisprimary ORDER BY pg_catalog.array_position(i.indkey::int2[], a.attnum)`, m.RelationID)
	if err != nil {
		return fmt.Errorf("auditpgx: relay: reading the primary key of watched table %q: %w", t.Table, err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("auditpgx: relay: reading the primary key of watched table %q: %w", t.Table, err)
	}
	if len(keys) == 0 {
		return fmt.Errorf("auditpgx: relay: watched table %q has no primary key, which makes an entry's object_id", t.Table)
	}
	for _, k := range keys {
		i := slices.Index(r.names, k)
		if i < 0 {
			return fmt.Errorf("auditpgx: relay: watched table %q: key column %q is not among the columns pgoutput sent", t.Table, k)
		}
		r.key = append(r.key, i)
	}
	r.cols = auditedColumns(r.names, t.WatchTable)
	w.rels[m.RelationID] = r
	clear(w.queries)
	return nil
}

// auditedColumns applies a registration's column options to a table's
// columns, as auditpgx's registry does.
func auditedColumns(names []string, wt WatchTable) diff.Columns {
	cols := diff.Columns{Redacted: map[string]bool{}}
	for _, n := range names {
		if slices.Contains(wt.Exclude, n) || len(wt.Only) > 0 && !slices.Contains(wt.Only, n) {
			continue
		}
		cols.Names = append(cols.Names, n)
		if slices.Contains(wt.Redact, n) {
			cols.Redacted[n] = true
		}
	}
	return cols
}

func (w *watcher) begin() { w.changes = w.changes[:0] }

// change takes a row change of a transaction.
func (w *watcher) change(m pglogrepl.Message) error {
	var (
		id       uint32
		op       string
		old, new *pglogrepl.TupleData
	)
	switch m := m.(type) {
	case *pglogrepl.InsertMessage:
		id, op, new = m.RelationID, "create", m.Tuple
	case *pglogrepl.UpdateMessage:
		id, op, old, new = m.RelationID, "update", m.OldTuple, m.NewTuple
	case *pglogrepl.DeleteMessage:
		id, op, old = m.RelationID, "delete", m.OldTuple
	}
	r := w.rels[id]
	if r == nil {
		return nil
	}
	c := rowChange{rel: r, op: op}
	var err error
	if old != nil {
		if c.old, err = tupleValues(r, old, nil); err != nil {
			return err
		}
	}
	if new != nil {
		if c.new, err = tupleValues(r, new, c.old); err != nil {
			return err
		}
	}
	if (op != "create" && c.old == nil) || (op != "delete" && c.new == nil) {
		return fmt.Errorf("auditpgx: relay: watched table %q: pgoutput sent a %s without the old row; is its REPLICA IDENTITY still FULL?", r.t.Table, op)
	}
	w.changes = append(w.changes, c)
	return nil
}

// tupleValues reads a tuple's text values; an unchanged TOASTed value is
// taken from old.
func tupleValues(r *relation, t *pglogrepl.TupleData, old []*string) ([]*string, error) {
	if len(t.Columns) != len(r.names) {
		return nil, fmt.Errorf("auditpgx: relay: watched table %q: a tuple of %d columns, the relation has %d", r.t.Table, len(t.Columns), len(r.names))
	}
	out := make([]*string, len(t.Columns))
	for i, c := range t.Columns {
		switch c.DataType {
		case pglogrepl.TupleDataTypeText:
			v := string(c.Data)
			out[i] = &v
		case pglogrepl.TupleDataTypeToast:
			if old == nil {
				return nil, fmt.Errorf("auditpgx: relay: watched table %q: column %q unchanged and not sent, without an old row", r.t.Table, r.names[i])
			}
			out[i] = old[i]
		case pglogrepl.TupleDataTypeNull:
		default:
			return nil, fmt.Errorf("auditpgx: relay: watched table %q: column %q in format %q", r.t.Table, r.names[i], c.DataType)
		}
	}
	return out, nil
}

// entryKey identifies what an entry records: related is the related
// object of a link's entry.
type entryKey struct{ table, objectID, op, related string }

// outside returns the entries of the transaction's row changes that its
// entries txEntries do not account for: an entry of the same table,
// object_id and operation (for an update, of the old or the new key), or a
// suppressed entry of the table. A row change whose audited columns did
// not change makes none, as through the driver.
func (w *watcher) outside(ctx context.Context, xid uint32, commit time.Time, txEntries []entry) ([]entry, error) {
	if len(w.changes) == 0 {
		return nil, nil
	}
	accounted := map[entryKey]bool{}
	suppressed := map[string]bool{}
	var txID *int64
	for _, e := range txEntries {
		op, table, id := e.values[2].(string), e.values[3].(string), e.values[4].(string)
		var related string
		if r, _ := e.values[9].(*string); r != nil {
			related = *r
		}
		accounted[entryKey{table, id, op, related}] = true
		if op == record.Suppressed {
			suppressed[table] = true
		}
		tx := e.values[6].(int64)
		txID = &tx
	}
	// txOf is the transaction's tx_id: its entries', else read once.
	txOf := func() (int64, error) {
		if txID == nil {
			full, err := w.fullXid(ctx, xid)
			if err != nil {
				return 0, err
			}
			txID = &full
		}
		return *txID, nil
	}
	var out []entry
	for _, c := range w.changes {
		if c.rel.t.Link != nil {
			links, err := w.outsideLinks(ctx, c, accounted)
			if err != nil {
				return nil, err
			}
			for _, l := range links {
				tx, err := txOf()
				if err != nil {
					return nil, err
				}
				out = append(out, outsideEntry(commit, l.op, l.table, l.objectID, nil, tx, c.rel.t.Link, l.related))
			}
			continue
		}
		table := c.rel.t.Table
		if suppressed[table] {
			continue
		}
		ids := make([]string, 0, 2)
		known := true
		for _, vals := range [][]*string{c.new, c.old} {
			if vals == nil {
				continue
			}
			id, ok := keyText(c.rel, vals)
			if !ok {
				known = false
				break
			}
			ids = append(ids, id)
		}
		if known && slices.ContainsFunc(ids, func(id string) bool { return accounted[entryKey{table, id, c.op, ""}] }) {
			continue
		}
		id, changes, err := w.render(ctx, c)
		if err != nil {
			return nil, err
		}
		if accounted[entryKey{table, id, c.op, ""}] || (c.op == "update" && isEmptyUpdate(changes)) {
			continue
		}
		tx, err := txOf()
		if err != nil {
			return nil, err
		}
		out = append(out, outsideEntry(commit, c.op, table, id, changes, tx, nil, ""))
	}
	return out, nil
}

// outsideLinks returns the link entries of a join table's row change
// that no entry accounts for: an insert associates, a delete
// disassociates, and an update that moves the link does both.
func (w *watcher) outsideLinks(ctx context.Context, c rowChange, accounted map[entryKey]bool) ([]entryKey, error) {
	l := c.rel.t.Link
	var out []entryKey
	add := func(op string, vals []*string) error {
		owner, related, err := w.linkIDs(ctx, c.rel, vals)
		if err != nil {
			return err
		}
		k := entryKey{l.OwnerTable, owner, op, related}
		if !accounted[k] {
			out = append(out, k)
		}
		return nil
	}
	moved := c.op == "update" && (!equalText(c.old[c.rel.owner], c.new[c.rel.owner]) || !equalText(c.old[c.rel.related], c.new[c.rel.related]))
	if c.op == "delete" || moved {
		if err := add("disassociate", c.old); err != nil {
			return nil, err
		}
	}
	if c.op == "create" || moved {
		if err := add("associate", c.new); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func equalText(a, b *string) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

// linkIDs renders a join table row's owner and related ids, as object_ids
// are rendered.
func (w *watcher) linkIDs(ctx context.Context, r *relation, vals []*string) (owner, related string, err error) {
	idx := [2]int{r.owner, r.related}
	var ids [2]string
	known := true
	for i, k := range idx {
		if vals[k] == nil {
			return "", "", fmt.Errorf("auditpgx: relay: watched join table %q: a row with %q NULL", r.t.Table, r.names[k])
		}
		var ok bool
		if ids[i], ok = record.ObjectIDText([]uint32{r.types[k]}, []string{*vals[k]}); !ok {
			known = false
		}
	}
	if known {
		return ids[0], ids[1], nil
	}
	q := "SELECT " + record.ObjectIDSQL([]string{"$1"}, nil) + ", " + record.ObjectIDSQL([]string{"$2"}, nil)
	res := w.conn.PgConn().ExecParams(ctx, q, [][]byte{[]byte(*vals[idx[0]]), []byte(*vals[idx[1]])},
		[]uint32{r.types[idx[0]], r.types[idx[1]]}, nil, nil).Read()
	if res.Err != nil {
		return "", "", fmt.Errorf("auditpgx: relay: rendering a link of watched join table %q: %w", r.t.Table, res.Err)
	}
	return string(res.Rows[0][0]), string(res.Rows[0][1]), nil
}

// keyText is the object_id of a row, when Go can render it.
func keyText(r *relation, vals []*string) (string, bool) {
	types := make([]uint32, len(r.key))
	texts := make([]string, len(r.key))
	for i, k := range r.key {
		if vals[k] == nil {
			return "", false
		}
		types[i], texts[i] = r.types[k], *vals[k]
	}
	return record.ObjectIDText(types, texts)
}

// render computes a row change's object_id and changes in Source, from
// its values as text, with the SQL the driver's statements use.
func (w *watcher) render(ctx context.Context, c rowChange) (string, json.RawMessage, error) {
	q := w.queries[queryKey{c.rel, c.op}]
	if q == "" {
		q = renderSQL(c.rel, c.op)
		w.queries[queryKey{c.rel, c.op}] = q
	}
	n := len(c.rel.names)
	values := make([][]byte, 2*n)
	oids := make([]uint32, 2*n)
	for i := range n {
		oids[i], oids[n+i] = c.rel.types[i], c.rel.types[i]
		if c.new != nil && c.new[i] != nil {
			values[i] = []byte(*c.new[i])
		}
		if c.old != nil && c.old[i] != nil {
			values[n+i] = []byte(*c.old[i])
		}
	}
	res := w.conn.PgConn().ExecParams(ctx, q, values, oids, nil, nil).Read()
	if res.Err != nil {
		return "", nil, fmt.Errorf("auditpgx: relay: rendering an outside %s of watched table %q: %w", c.op, c.rel.t.Table, res.Err)
	}
	if len(res.Rows) != 1 || res.Rows[0][0] == nil || res.Rows[0][1] == nil {
		return "", nil, fmt.Errorf("auditpgx: relay: rendering an outside %s of watched table %q: no key or changes", c.op, c.rel.t.Table)
	}
	return string(res.Rows[0][0]), json.RawMessage(slices.Clone(res.Rows[0][1])), nil
}

// renderSQL is the query of render: the new values are $1…$n and the old
// ones $n+1…$2n, each of its column's type, in n and o.
func renderSQL(r *relation, op string) string {
	row := func(alias string, first int) string {
		cols := make([]string, len(r.names))
		for i, name := range r.names {
			cols[i] = fmt.Sprintf("$%d AS %s", first+i, sqlq.Ident(name))
		}
		return "(SELECT " + strings.Join(cols, ", ") + ") AS " + alias
	}
	keyOf := func(alias string) string {
		exprs := make([]string, len(r.key))
		for i, k := range r.key {
			exprs[i] = alias + "." + sqlq.Ident(r.names[k])
		}
		return record.ObjectIDSQL(exprs, nil)
	}
	n := len(r.names)
	// Every parameter is referred to, so that each has its type.
	from := " FROM " + row("n", 1) + ", " + row("o", n+1)
	switch op {
	case "create":
		return "SELECT " + keyOf("n") + ", " + record.CreatedSQL(record.MaskedImageSQL("n", r.cols)) + from
	case "delete":
		return "SELECT " + keyOf("o") + ", " + record.DeletedSQL(record.MaskedImageSQL("o", r.cols)) + from
	}
	olds := make([]string, len(r.cols.Names))
	news := make([]string, len(r.cols.Names))
	for i, name := range r.cols.Names {
		olds[i], news[i] = "o."+sqlq.Ident(name), "n."+sqlq.Ident(name)
	}
	return "SELECT " + keyOf("n") + ", " + record.UpdateSQL(record.ChangedValuesSQL(olds, news, r.cols)) + from
}

// isEmptyUpdate reports whether an update's changes hold no changed field.
func isEmptyUpdate(changes json.RawMessage) bool {
	var c struct {
		Changed map[string]json.RawMessage `json:"changed_fields"`
	}
	return json.Unmarshal(changes, &c) == nil && len(c.Changed) == 0
}

// fullXid is the 64-bit id of a transaction pgoutput names by its 32-bit
// xid, as pg_current_xact_id would have returned it: the epoch is that of
// Source's next transaction id, or the one before for an xid above it.
func (w *watcher) fullXid(ctx context.Context, xid uint32) (int64, error) {
	var next int64
	if err := w.conn.QueryRow(ctx, "SELECT pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text::bigint").Scan(&next); err != nil {
		return 0, fmt.Errorf("auditpgx: relay: reading Source's next transaction id: %w", err)
	}
	full := next&^0xFFFFFFFF | int64(xid)
	if full > next {
		full -= 1 << 32
	}
	return full, nil
}

// outsideEntry is the entry of an outside write: no actor, no
// fingerprint, created at the commit, context {"source": "outside"}.
func outsideEntry(commit time.Time, op, table, objectID string, changes json.RawMessage, txID int64, link *WatchLink, related string) entry {
	created := commit.UTC().Format("2006-01-02T15:04:05.999999") + "+00:00"
	var relTable, relID, relField *string
	if link != nil {
		relTable, relID, relField = &link.RelatedTable, &related, &link.Field
	}
	var changesValue any
	if changes != nil {
		changesValue = changes
	}
	// As the payload carries an entry, for NDJSON.
	raw, _ := json.Marshal(wireEntry{Created: &created, Operation: &op, TableName: &table, ObjectID: &objectID, Changes: changes,
		TxID: &txID, RelatedTableName: relTable, RelatedObjectID: relID, RelatedFieldName: relField, Context: json.RawMessage(OutsideContext)})
	var none *string
	return entry{
		values: []any{pgtype.Timestamptz{Time: commit, Valid: true}, none, op, table, objectID, changesValue, txID,
			none, relTable, relID, relField, json.RawMessage(OutsideContext)},
		raw: raw,
	}
}
