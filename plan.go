package auditpgx

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/auditpgx/auditpgx/internal/sqlq"
	"github.com/auditpgx/auditpgx/parser"
	"github.com/auditpgx/auditpgx/registry"
)

// action is what the interceptor does with a statement.
type action uint8

const (
	passThrough action = iota // hand the statement to pgx unchanged
	audit                     // run the rewrite instead
	refuse                    // return err without executing anything
)

// plan is the cached decision for one SQL text.
type plan struct {
	action     action
	generation uint64
	rewrite    *parser.Rewrite
	// inlineActor: the rewrite holds actorMarker where the actor goes, as a
	// literal (multi-statement strings, and statements that use every
	// parameter the protocol allows).
	inlineActor bool
	// multi marks a string of several statements, which pgx cannot prepare.
	multi bool
	// truncate marks a TRUNCATE sent with the INSERT of its entries: two
	// statements, run through the simple protocol, that return no rows.
	truncate bool
	err      error
	// invalidates lists audited tables whose catalog description the
	// statement (DDL) may change; they are re-read after it runs.
	invalidates []*registry.Table
	// setsSearchPath marks a statement that may change the session's
	// search_path; bySearchPath a plan that depends on it (an unqualified
	// name resolved to a registered table, or to none).
	setsSearchPath, bySearchPath bool
	// tables are the audited tables the rewrite describes, and versions
	// their versions when it was made.
	tables   []*registry.Table
	versions []uint64
}

var passThroughPlan = &plan{action: passThrough}

// planner decides, once per SQL text, how a statement is handled.
type planner struct {
	reg      *registry.Registry
	cache    *planCache
	sessions sessions
	version  atomic.Int64 // server_version_num, read once
}

// plan returns the cached plan for query or builds it, reading the catalog
// through q the first time an audited table is used.
func (p *planner) plan(ctx context.Context, q driver.QueryerContext, query string) (*plan, error) {
	gen := p.reg.Generation()
	pl := p.cache.get(query)
	if pl != nil && pl.generation == gen && pl.current() && !(pl.bySearchPath && p.sessions.changedSearchPath(q)) {
		return pl, nil
	}
	pl, cacheable, err := p.build(ctx, q, query)
	if err != nil {
		return nil, err
	}
	if pl.bySearchPath && p.sessions.changedSearchPath(q) {
		// Resolved through this connection's own search_path: good for
		// this execution only.
		cacheable = false
	}
	if pl.action == refuse && p.reg.Config().AllowUnaudited && !errors.Is(pl.err, ErrAppendOnly) {
		p.reg.Config().Logger.WarnContext(ctx, "auditpgx: running a write that cannot be audited", "error", pl.err.Error())
		pl = passThroughPlan
		cacheable = false // log every such statement
	}
	if cacheable {
		cp := *pl
		cp.generation = gen
		p.cache.put(query, &cp)
	}
	return pl, nil
}

// current reports whether the tables the plan was made from are still
// described as they were.
func (pl *plan) current() bool {
	for i, t := range pl.tables {
		if t.Version() != pl.versions[i] {
			return false
		}
	}
	return true
}

func refused(table, format string, args ...any) *plan {
	return &plan{action: refuse, err: &UnauditedError{Table: table, Reason: fmt.Sprintf(format, args...)}}
}

// build parses and classifies a statement. cacheable is false for results
// that depend on the catalog's current state.
func (p *planner) build(ctx context.Context, q driver.QueryerContext, query string) (pl *plan, cacheable bool, err error) {
	st, perr := parser.Parse(query)
	if perr == nil && strings.IndexByte(query, 0) >= 0 {
		perr = errors.New("the text contains a NUL byte")
	}
	if perr != nil {
		if name := p.mentioned(query); name != "" {
			return refused(name, "the statement cannot be parsed (%v), so its changes cannot be audited", perr), true, nil
		}
		return passThroughPlan, true, nil
	}
	if st.Count > 1 && st.SetsSearchPath {
		// Names after the SET resolve differently from what the connection
		// says now; refuse rather than guess.
		for _, w := range st.Writes {
			if p.reg.MayMean(w.Table.Name) || p.reg.Lookup(w.Table.Schema, w.Table.Name) != nil {
				return refused(w.Table.String(), "a string that changes search_path or the role and writes an audited table is not audited; send the SET on its own first"), true, nil
			}
		}
	}
	refs, bySearchPath, err := p.resolveRefs(ctx, q, st)
	if err != nil {
		return nil, false, err
	}
	var audited *registry.Table
	var invalidates []*registry.Table
	for _, w := range st.Writes {
		if p.reg.IsEntryTable(w.Table.Schema, w.Table.Name) {
			return &plan{action: refuse, err: fmt.Errorf("%w: %s on %q is refused", ErrAppendOnly, w.Kind, w.Table.String())}, true, nil
		}
		t := refs.tables[w.Table]
		if t == nil {
			if deletes(w.Kind) && len(refs.cascades[w.Table]) > 0 {
				audited = &registry.Table{Registered: w.Table.String()}
			}
			continue
		}
		switch w.Kind {
		case parser.Alter, parser.Drop:
			invalidates = append(invalidates, t)
		case parser.Truncate:
			// What a TRUNCATE empties is decided below, from the catalog.
		case parser.CopyFrom:
			return refused(t.Registered, "COPY FROM cannot be audited; use INSERT (multi-row VALUES or INSERT ... SELECT)"), true, nil
		default:
			audited = t
		}
	}
	truncates := p.truncates(st)
	if audited == nil && !truncates {
		if len(invalidates) > 0 || st.SetsSearchPath || bySearchPath {
			return &plan{action: passThrough, invalidates: invalidates, setsSearchPath: st.SetsSearchPath, bySearchPath: bySearchPath}, true, nil
		}
		return passThroughPlan, true, nil
	}
	if p.version.Load() == 0 {
		v, err := serverVersion(ctx, q)
		if err != nil {
			return nil, false, err
		}
		p.version.Store(int64(v))
	}
	cat := &catalog{planner: p, ctx: ctx, q: q, refs: refs}
	entry := p.reg.EntryTable()
	opt := parser.Options{
		Entries:       parser.EntryTable{Schema: entry.Schema, Name: entry.Rel},
		ServerVersion: int(p.version.Load()),
	}
	var rw *parser.Rewrite
	var truncate bool
	if st.Count > 1 {
		rw, err = p.rewriteMulti(ctx, q, st, cat, opt)
	} else if truncates {
		rw, truncate, err = p.rewriteTruncate(ctx, q, st, opt)
	} else if st.NumParams >= maxParams {
		// No parameter is left for the actor: splice it in as a literal.
		rw, err = p.rewriteOne(st, cat, opt, actorMarker)
	} else {
		rw, err = p.rewriteOne(st, cat, opt, "$"+strconv.Itoa(st.NumParams+1)+"::text")
	}
	// What a TRUNCATE empties depends on the catalog (partitions, children,
	// foreign keys): such plans are made afresh every time.
	cacheable = !truncates
	var re *refusalError
	if errors.As(err, &re) {
		return re.plan, cacheable, nil
	}
	var ue *parser.UnsupportedError
	if errors.As(err, &ue) {
		name := ""
		if audited != nil {
			name = audited.Registered
		}
		return refused(name, "%s", ue.Reason), cacheable, nil
	}

	if err != nil {
		return nil, false, err
	}
	var tables []*registry.Table
	for _, t := range refs.tables {
		if t != nil {
			tables = append(tables, t)
		}
	}
	for _, cs := range refs.cascades {
		for _, c := range cs {
			tables = append(tables, c.Table)
		}
	}
	versions := make([]uint64, len(tables))
	for i, t := range tables {
		versions[i] = t.Version()
	}
	if rw == nil {
		// A TRUNCATE that empties no registered table.
		return &plan{action: passThrough, invalidates: invalidates, setsSearchPath: st.SetsSearchPath, bySearchPath: bySearchPath}, cacheable, nil
	}
	return &plan{action: audit, rewrite: rw, inlineActor: st.Count > 1 || truncate || st.NumParams >= maxParams, multi: st.Count > 1,
		truncate: truncate, setsSearchPath: st.SetsSearchPath, bySearchPath: bySearchPath, tables: tables, versions: versions}, cacheable, nil
}

// refusalError carries a refusal out of a rewrite.
type refusalError struct{ plan *plan }

func (e *refusalError) Error() string { return e.plan.err.Error() }

// truncates reports whether st holds a TRUNCATE that may empty a
// registered table.
func (p *planner) truncates(st *parser.Statement) bool {
	if p.reg.Empty() {
		return false
	}
	for _, w := range st.Writes {
		if w.Kind == parser.Truncate {
			return true
		}
	}
	return false
}

// rewriteTruncate puts an INSERT of one truncate entry per registered table
// the TRUNCATE empties in front of it, in one string that runs as one
// transaction. It returns a nil rewrite when no registered table is
// emptied, and a refusalError when one is that does not record TRUNCATE.
func (p *planner) rewriteTruncate(ctx context.Context, q driver.QueryerContext, st *parser.Statement, opt parser.Options) (*parser.Rewrite, bool, error) {
	tables, err := p.truncated(ctx, q, st.Writes)
	if err != nil || len(tables) == 0 {
		return nil, false, err
	}
	fp, err := parser.Fingerprint(st.SQL)
	if err != nil {
		return nil, false, fmt.Errorf("auditpgx: fingerprint: %w", err)
	}
	opt.Fingerprint, opt.Actor = fp, actorMarker
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.Registered
	}
	// The user's text goes last: its command tag is the string's, and a
	// trailing comment cannot hide anything.
	sql := parser.TruncateEntries(names, opt) + "\n; " + st.SQL
	return &parser.Rewrite{ExecSQL: sql, QuerySQL: sql}, true, nil
}

// truncated returns the registered tables a TRUNCATE's writes empty: those
// named, their partitions and inheritance children, and with CASCADE the
// tables that refer to any of them by foreign key, transitively. If one of
// them does not record TRUNCATE, the error is a refusalError.
func (p *planner) truncated(ctx context.Context, q driver.QueryerContext, writes []parser.Write) ([]*registry.Table, error) {
	var names []string
	cascade := false
	for _, w := range writes {
		if w.Kind == parser.Truncate {
			names = append(names, sqlq.QualifiedIdent(w.Table.Schema, w.Table.Name))
			cascade = cascade || w.Cascade
		}
	}
	for _, t := range p.reg.Unresolved() {
		if _, err := p.resolve(ctx, q, t); err != nil {
			// Its OID is unknown, so whether the TRUNCATE reaches it is
			// too: refuse rather than guess.
			return nil, &refusalError{refused(t.Registered, "TRUNCATE is refused while registered table %q fails its check: %v", t.Registered, err)}
		}
	}
	oids, err := queryOIDs(ctx, q, "TRUNCATE reach query", truncateReachQuery, names, cascade)
	if err != nil {
		return nil, err
	}
	var out []*registry.Table
	seen := map[*registry.Table]bool{}
	for _, oid := range oids {
		t := p.reg.ByOID(oid)
		if t == nil || seen[t] {
			continue
		}
		seen[t] = true
		if !t.RecordsTruncate() {
			return nil, &refusalError{refused(t.Registered, "TRUNCATE cannot be audited row by row; use DELETE, or register the table with RecordTruncate to record a TRUNCATE as one entry")}
		}
		out = append(out, t)
	}
	return out, nil
}

// truncateReachQuery lists the OIDs of the tables that TRUNCATE of the
// quoted names in $1 empties, with CASCADE when $2. TRUNCATE ONLY is taken
// to reach children too, which can only refuse or record more.
const truncateReachQuery = `WITH RECURSIVE r(oid) AS (
	SELECT c.oid FROM unnest($1::text[]) AS u(n), LATERAL (SELECT pg_catalog.to_regclass(u.n)::oid AS oid) c WHERE c.oid IS NOT NULL
	UNION
	SELECT e.child FROM r JOIN (
		SELECT inhparent AS parent, inhrelid AS child FROM pg_catalog.pg_inherits
		UNION ALL
		SELECT confrelid, conrelid FROM pg_catalog.pg_constraint WHERE contype = 'f' AND $2::bool
	) e ON e.parent = r.oid
) SELECT oid::bigint FROM r`

// refs maps each table a statement writes to the registered table it means
// (nil for none) and to the cascading foreign keys that refer to it.
type refs struct {
	tables   map[parser.TableName]*registry.Table
	cascades map[parser.TableName][]registry.Cascade
}

// resolveRefs finds what each table a statement writes means. A qualified
// name is looked up directly; an unqualified one that may mean a registered
// table, and any table a cascading foreign key may refer to, is resolved
// by the server through the connection's search_path, and bySearchPath
// says so.
func (p *planner) resolveRefs(ctx context.Context, q driver.QueryerContext, st *parser.Statement) (r refs, bySearchPath bool, err error) {
	r = refs{tables: map[parser.TableName]*registry.Table{}, cascades: map[parser.TableName][]registry.Cascade{}}
	if len(st.Writes) == 0 {
		return r, false, nil
	}
	for _, t := range p.reg.Unresolved() {
		// Children are only known once their parent is checked; a table
		// that fails its check reports the failure when a write uses it.
		_, _ = p.resolve(ctx, q, t)
	}
	var names []string
	var byOID []parser.TableName
	for _, w := range st.Writes {
		if _, done := r.tables[w.Table]; done {
			continue
		}
		r.tables[w.Table] = nil
		unqualified := w.Table.Schema == "" && p.reg.MayMean(w.Table.Name)
		if !unqualified {
			r.tables[w.Table] = p.reg.Lookup(w.Table.Schema, w.Table.Name)
		}
		if unqualified || (deletes(w.Kind) && p.reg.MayCascade(w.Table.Schema, w.Table.Name)) {
			byOID = append(byOID, w.Table)
			names = append(names, sqlq.QualifiedIdent(w.Table.Schema, w.Table.Name))
		}
	}
	if len(byOID) == 0 {
		return r, false, nil
	}
	oids, err := regclassOIDs(ctx, q, names)
	if err != nil {
		return r, false, err
	}
	for i, n := range byOID {
		r.cascades[n] = p.reg.CascadesTo(oids[i])
		if n.Schema != "" {
			continue
		}
		bySearchPath = true
		if r.tables[n] = p.reg.ByOID(oids[i]); r.tables[n] != nil {
			continue
		}
		// A registration of this name that failed its check must not let
		// the write through unaudited: report why it failed.
		for _, t := range p.reg.Tables() {
			if t.Name.Rel == n.Name && t.Meta() == nil {
				if _, err := p.resolve(ctx, q, t); err != nil {
					return r, false, err
				}
			}
		}
	}
	return r, bySearchPath, nil
}

// regclassOIDs resolves quoted names to table OIDs (0 for none) through
// the connection's search_path.
func regclassOIDs(ctx context.Context, q driver.QueryerContext, names []string) ([]uint32, error) {
	out, err := queryOIDs(ctx, q, "to_regclass", `SELECT coalesce(pg_catalog.to_regclass(n)::oid::bigint, 0) FROM unnest($1::text[]) WITH ORDINALITY AS u(n, i) ORDER BY i`, names)
	if err == nil && len(out) != len(names) {
		return nil, fmt.Errorf("auditpgx: to_regclass returned %d rows for %d names", len(out), len(names))
	}
	return out, err
}

// queryOIDs runs a catalog query whose one column is an OID as bigint.
func queryOIDs(ctx context.Context, q driver.QueryerContext, what, query string, args ...any) ([]uint32, error) {
	named := make([]driver.NamedValue, len(args))
	for i, a := range args {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	rows, err := q.QueryContext(ctx, query, named)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []uint32
	dest := make([]driver.Value, 1)
	for {
		err := rows.Next(dest)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		v, ok := dest[0].(int64)
		if !ok {
			return nil, fmt.Errorf("auditpgx: %s returned %T", what, dest[0])
		}
		out = append(out, uint32(v))
	}
	return out, rows.Close()
}

func (p *planner) rewriteOne(st *parser.Statement, cat *catalog, opt parser.Options, actor string) (*parser.Rewrite, error) {
	fp, err := parser.Fingerprint(st.SQL)
	if err != nil {
		return nil, fmt.Errorf("auditpgx: fingerprint: %w", err)
	}
	opt.Fingerprint, opt.Actor = fp, actor
	return st.Rewrite(cat, opt)
}

// rewriteMulti rewrites each audited statement of a multi-statement
// string. Such strings travel without parameters (the simple protocol), so
// the actor is spliced in as a quoted literal at run time, at each NUL.
func (p *planner) rewriteMulti(ctx context.Context, q driver.QueryerContext, st *parser.Statement, cat *catalog, opt parser.Options) (*parser.Rewrite, error) {
	if st.NumParams > 0 {
		return nil, &parser.UnsupportedError{Reason: "a string of several statements cannot take parameters"}
	}
	opt.RowsForExec = true
	var execParts, queryParts []string
	audits := false
	for _, sub := range st.Split() {
		if p.truncates(sub) {
			rw, _, err := p.rewriteTruncate(ctx, q, sub, opt)
			if err != nil {
				return nil, err
			}
			if rw != nil {
				audits = true
				execParts = append(execParts, rw.ExecSQL)
				queryParts = append(queryParts, rw.QuerySQL)
				continue
			}
		}
		if !writesAudited(sub, cat) {
			execParts = append(execParts, sub.SQL)
			queryParts = append(queryParts, sub.SQL)
			continue
		}
		rw, err := p.rewriteOne(sub, cat, opt, actorMarker)
		if err != nil {
			return nil, err
		}
		audits = true
		execParts = append(execParts, rw.ExecSQL)
		queryParts = append(queryParts, rw.QuerySQL)
	}
	if !audits {
		return nil, nil
	}
	// A newline before each semicolon: a statement's text may end in a
	// line comment.
	return &parser.Rewrite{ExecSQL: strings.Join(execParts, "\n; "), QuerySQL: strings.Join(queryParts, "\n; ")}, nil
}

// maxParams is the most parameters the extended protocol carries.
const maxParams = 65535

// actorMarker stands for the actor literal in multi-statement rewrites; a
// NUL cannot occur in SQL text.
const actorMarker = "\x00"

// deletes reports whether a write of kind k may delete rows, and so
// cascade to the rows that refer to them.
func deletes(k parser.Kind) bool {
	return k == parser.Delete || k == parser.Merge
}

func writesAudited(st *parser.Statement, cat *catalog) bool {
	for _, w := range st.Writes {
		if cat.refs.tables[w.Table] != nil || (deletes(w.Kind) && len(cat.refs.cascades[w.Table]) > 0) {
			return true
		}
	}
	return false
}

// catalog answers the rewriter from the registry, reading the database
// catalog through the statement's own connection where needed.
type catalog struct {
	planner *planner
	ctx     context.Context
	q       driver.QueryerContext
	refs    refs
}

func (c *catalog) Target(n parser.TableName) (*parser.Target, error) {
	t := c.refs.tables[n]
	cascades := cascades(c.refs.cascades[n])
	if t == nil {
		if len(cascades) == 0 {
			return nil, nil
		}
		return &parser.Target{Registered: n.String(), Cascades: cascades}, nil
	}
	meta := t.Meta()
	if meta == nil {
		var err error
		if meta, err = c.planner.resolve(c.ctx, c.q, t); err != nil {
			return nil, err
		}
	}
	return &parser.Target{
		Cascades:     cascades,
		Registered:   t.Registered,
		OID:          meta.OID,
		NAtts:        meta.NAtts,
		Partitioned:  meta.Partitioned,
		Generated:    meta.Generated,
		BeforeUpdate: meta.BeforeUpdate,
		Columns:      meta.Columns,
		Types:        meta.Types,
		PrimaryKey:   meta.PrimaryKey,
		Unique:       meta.Unique,
		Audited:      meta.Audited,
		Audit:        meta.Audit,
		Link:         link(meta.Link),
	}, nil
}

func cascades(cs []registry.Cascade) []parser.Cascade {
	var out []parser.Cascade
	for _, c := range cs {
		pc := parser.Cascade{
			RefColumn: c.FK.RefColumn,
			Schema:    c.Meta.Schema, Rel: c.Meta.Rel, Column: c.FK.Column,
		}
		if l := c.Meta.Link; l != nil && (c.FK.Column == l.Owner.Column || c.FK.Column == l.Related.Column) {
			pc.Link = link(l)
		}
		if c.Meta.Audited {
			pc.Audited, pc.Registered, pc.PrimaryKey, pc.Audit = true, c.Table.Registered, c.Meta.PrimaryKey, c.Meta.Audit
		}
		out = append(out, pc)
	}
	return out
}

func link(l *registry.M2M) *parser.Link {
	if l == nil {
		return nil
	}
	return &parser.Link{
		Field:      l.Field,
		OwnerTable: l.Owner.Table, OwnerColumn: l.Owner.Column,
		RelatedTable: l.Related.Table, RelatedColumn: l.Related.Column,
	}
}

func (c *catalog) Columns(n parser.TableName) ([]string, error) {
	desc, err := readCatalog(c.ctx, c.q, sqlq.QualifiedIdent(n.Schema, n.Name))
	if err != nil {
		return nil, err
	}
	if desc == nil {
		return nil, &parser.UnsupportedError{Reason: fmt.Sprintf("RETURNING * over %q, which is not a table, is not audited; name the columns", n.String())}
	}
	return desc.Columns, nil
}

func serverVersion(ctx context.Context, q driver.QueryerContext) (int, error) {
	rows, err := q.QueryContext(ctx, "SELECT current_setting('server_version_num')::int", nil)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		return 0, err
	}
	switch v := dest[0].(type) {
	case int64:
		return int(v), rows.Close()
	case int32:
		return int(v), rows.Close()
	}
	return 0, fmt.Errorf("auditpgx: server_version_num is %T", dest[0])
}

// mentioned returns a registered table (or the entry table) whose name
// appears in query as an identifier, for refusing text that cannot be
// parsed. Unquoted words compare case-insensitively, quoted ones exactly;
// a match may be a false alarm (a column of that name), never a miss,
// except for names spelled with Unicode escapes (U&"..."), which the
// scan compares as written.
func (p *planner) mentioned(query string) string {
	lower := strings.ToLower(query)
	if strings.Contains(lower, "u&") {
		// Unicode escapes can spell any name: refuse if anything is audited.
		for _, t := range p.reg.Tables() {
			return t.Registered
		}
	}
	words, ok := parser.Identifiers(query)
	if !ok {
		// Not even lexable (as pg_query lexes; a server with other settings
		// may differ): any occurrence of a name, even in a string, counts.
		for _, t := range p.reg.Tables() {
			if strings.Contains(lower, strings.ToLower(t.Name.Rel)) {
				return t.Registered
			}
		}
		if strings.Contains(lower, strings.ToLower(p.reg.EntryTable().Rel)) {
			return p.reg.EntryTable().String()
		}
		return ""
	}
	for _, t := range p.reg.Tables() {
		if words[t.Name.Rel] {
			return t.Registered
		}
		if m := t.Meta(); m != nil {
			for _, c := range m.Children {
				if words[c.Rel] {
					return t.Registered
				}
			}
		}
	}
	if words[p.reg.EntryTable().Rel] {
		return p.reg.EntryTable().String()
	}
	return ""
}

// resolve reads t's description from the catalog and checks the
// registration against it.
func (p *planner) resolve(ctx context.Context, q driver.QueryerContext, t *registry.Table) (*registry.Meta, error) {
	c, err := readCatalog(ctx, q, t.Quoted())
	if err != nil {
		return nil, err
	}
	return p.reg.Resolve(t, c)
}

// readCatalog describes the table a quoted name means, or returns nil when
// there is none.
func readCatalog(ctx context.Context, q driver.QueryerContext, quoted string) (*registry.Catalog, error) {
	rows, err := q.QueryContext(ctx, registry.CatalogQuery, []driver.NamedValue{{Ordinal: 1, Value: quoted}})
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	switch err := rows.Next(dest); {
	case errors.Is(err, io.EOF):
		return nil, nil
	case err != nil:
		return nil, err
	}
	var text []byte
	switch v := dest[0].(type) {
	case string:
		text = []byte(v)
	case []byte:
		text = v
	default:
		return nil, fmt.Errorf("auditpgx: catalog query for %s returned %T", quoted, dest[0])
	}
	var c registry.Catalog
	if err := json.Unmarshal(text, &c); err != nil {
		return nil, fmt.Errorf("auditpgx: catalog query for %s: %w", quoted, err)
	}
	return &c, rows.Close()
}

// planCache maps SQL text to plans. A hit takes a read lock and a map
// look-up and allocates nothing. When full, an arbitrary entry is evicted.
type planCache struct {
	mu      sync.RWMutex
	m       map[string]*plan
	max     int
	maxText int
}

func newPlanCache(maxEntries, maxText int) *planCache {
	return &planCache{m: make(map[string]*plan), max: maxEntries, maxText: maxText}
}

func (c *planCache) get(query string) *plan {
	c.mu.RLock()
	p := c.m[query]
	c.mu.RUnlock()
	return p
}

func (c *planCache) put(query string, p *plan) {
	if len(query) > c.maxText || c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[query]; !ok && len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[query] = p
}
