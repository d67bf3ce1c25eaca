package auditpgx

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditpgx/auditpgx/internal/parse"
	"github.com/auditpgx/auditpgx/internal/registry"
	"github.com/auditpgx/auditpgx/internal/rewrite"
	"github.com/auditpgx/auditpgx/internal/sqlq"
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
	rewrite    *rewrite.Rewrite
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
	// verify marks a write that passes through although a name it writes
	// is a registered name: it runs verified (verify.go), where reaching
	// a registered table other than those skipped undoes it.
	verify  bool
	skipped []*registry.Table
	// changesCatalog marks DDL: once it has run, every description and
	// cached plan is made anew, and again when its transaction ends;
	// endsTx marks COMMIT, ROLLBACK and the like.
	changesCatalog, endsTx bool
	// setsSearchPath marks a statement that may change the session's
	// search_path (or create a temporary table, which shadows others);
	// bySearchPath a plan that depends on it (an unqualified name resolved
	// to a registered table).
	setsSearchPath, bySearchPath bool
	// recheck marks a plan of a write, resolved against the catalog: kept
	// until the coarse clock reaches expires, then made anew.
	recheck bool
	expires int64
	// tables are the audited tables the rewrite describes, and versions
	// their versions when it was made.
	tables   []*registry.Table
	versions []uint64
}

var passThroughPlan = &plan{action: passThrough}

// recheckAfter bounds how long a write's plan is trusted without asking the
// server again what its names mean. DDL sent through the driver, and the
// rewrite's guard, catch every other change at once; this catches what
// neither sees: another client attaching a table as a partition or child
// of a registered one, or adding an ON DELETE CASCADE key to it from one.
const (
	recheckAfter = time.Second
	recheckTicks = 2 // of coarseTick: a plan is asked again within 0.5-1 s
	coarseTick   = recheckAfter / recheckTicks
)

// coarse is a clock that a cache hit reads with one atomic load (reading
// time.Now costs twice a whole hit): one goroutine, started at the first
// use, advances it every coarseTick.
var coarse coarseClock

type coarseClock struct {
	once  sync.Once
	ticks atomic.Int64
}

func (c *coarseClock) now() int64 {
	c.once.Do(func() {
		go func() {
			for range time.Tick(coarseTick) {
				c.ticks.Add(1)
			}
		}()
	})
	return c.ticks.Load()
}

// planner decides, once per SQL text, how a statement is handled.
type planner struct {
	reg      *registry.Registry
	cache    *planCache
	sessions sessions
	// ddlConns are the connections whose open transaction ran DDL.
	ddlConns sessions
	version  atomic.Int64 // server_version_num, read once
}

// plan returns the cached plan for query or builds it, reading the catalog
// through q the first time an audited table is used.
func (p *planner) plan(ctx context.Context, q driver.QueryerContext, query string) (*plan, error) {
	gen := p.reg.Generation()
	pl := p.cache.get(query)
	if pl != nil && pl.generation == gen && pl.current() && !(pl.bySearchPath && p.sessions.changedSearchPath(q)) &&
		(pl.expires == 0 || coarse.now() < pl.expires) {
		return pl, nil
	}
	pl, cacheable, err := p.build(ctx, q, query)
	for attempt := 0; errors.Is(err, errCatalogMoved) && attempt < 4; attempt++ {
		pl, cacheable, err = p.build(ctx, q, query)
	}
	if err != nil {
		return nil, err
	}
	if f := afterBuild.Load(); f != nil {
		(*f)(query)
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
		if cp.recheck {
			cp.expires = coarse.now() + recheckTicks
		}
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

// afterBuild, when set (by tests only), is called with each statement text
// the planner has just planned, before it runs.
var afterBuild atomic.Pointer[func(query string)]

// build parses and classifies a statement. cacheable is false for results
// that depend on the catalog's current state in a way no guard in the
// rewrite checks when it runs.
func (p *planner) build(ctx context.Context, q driver.QueryerContext, query string) (pl *plan, cacheable bool, err error) {
	st, perr := parse.Parse(query)
	if perr == nil && strings.IndexByte(query, 0) >= 0 {
		perr = errors.New("the text contains a NUL byte")
	}
	if perr != nil {
		if name := p.mentioned(query); name != "" {
			return refused(name, "the statement cannot be parsed (%v), so its changes cannot be audited", perr), true, nil
		}
		return passThroughPlan, true, nil
	}
	for _, w := range st.Writes {
		if p.reg.IsEntryTable(w.Table.Schema, w.Table.Name) {
			return &plan{action: refuse, err: fmt.Errorf("%w: %s on %q is refused", ErrAppendOnly, w.Kind, w.Table.String())}, true, nil
		}
	}
	if pl := p.refuseUnplannable(st); pl != nil {
		return pl, true, nil
	}
	refs, err := p.resolveRefs(ctx, q, st)
	var ve *viewError
	if errors.As(err, &ve) {
		return refused(ve.table, "%s", ve.Error()), false, nil
	}
	var regErr *registrationError
	if errors.As(err, &regErr) {
		// The table exists and the registration does not fit it: refuse
		// (Check reports the same error), or run unaudited if allowed.
		return &plan{action: refuse, err: regErr.err}, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	refs.dropLinkOnlyUpdates(st.Writes)
	var audited *registry.Table
	for _, w := range st.Writes {
		t := refs.tables[w.Table]
		if t == nil {
			if deletes(w.Kind) && len(refs.cascades[w.Table]) > 0 {
				audited = &registry.Table{Registered: w.Table.String()}
			}
			continue
		}
		switch w.Kind {
		case parse.CopyFrom:
			return refused(t.table.Registered, "COPY FROM cannot be audited; use INSERT (multi-row VALUES or INSERT ... SELECT)"), !refs.temp, nil
		default:
			audited = t.table
		}
	}
	truncates := p.truncates(st)
	sessionOnly := st.SetsSearchPath || st.CreatesTemp
	if audited == nil && !truncates {
		// Nothing registered is written now; a name that may come to mean
		// a registered table is resolved again at every execution.
		if st.ChangesCatalog || sessionOnly || st.EndsTransaction || refs.resolved {
			return &plan{action: passThrough, changesCatalog: st.ChangesCatalog, endsTx: st.EndsTransaction, setsSearchPath: sessionOnly,
				recheck: refs.resolved, verify: refs.collides && refs.resolved && st.Count == 1, skipped: refs.skipped}, !refs.collides, nil
		}
		return passThroughPlan, !refs.collides, nil
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
	opt := rewrite.Options{
		Entries:       entry,
		ServerVersion: int(p.version.Load()),
	}
	var rw *rewrite.Rewrite
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
	// foreign keys): such plans are made afresh every time. So are plans
	// for a session's temporary tables, which mean nothing in another.
	cacheable = !truncates && !refs.temp
	var re *refusalError
	if errors.As(err, &re) {
		return re.plan, cacheable && !errors.As(err, &regErr), nil
	}
	var ue *rewrite.UnsupportedError
	if errors.As(err, &ue) {
		name := ""
		if audited != nil {
			name = audited.Registered
		}
		return refused(name, "%s", ue.Reason), cacheable, nil
	}
	if errors.As(err, &regErr) {
		return &plan{action: refuse, err: regErr.err}, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var tables []*registry.Table
	for _, t := range refs.tables {
		if t != nil {
			tables = append(tables, t.table)
		}
	}
	for _, cs := range refs.cascades {
		for _, c := range cs {
			tables = append(tables, c.table)
		}
	}
	versions := make([]uint64, len(tables))
	for i, t := range tables {
		versions[i] = t.Version()
	}
	if rw == nil {
		// A TRUNCATE that empties no registered table.
		return &plan{action: passThrough, changesCatalog: st.ChangesCatalog, endsTx: st.EndsTransaction, setsSearchPath: sessionOnly}, cacheable, nil
	}
	return &plan{action: audit, rewrite: rw, inlineActor: st.Count > 1 || truncate || st.NumParams >= maxParams, multi: st.Count > 1,
		truncate: truncate, changesCatalog: st.ChangesCatalog, endsTx: st.EndsTransaction, setsSearchPath: sessionOnly, bySearchPath: refs.unqualified,
		recheck: refs.resolved,
		tables:  tables, versions: versions}, cacheable, nil
}

// refuseUnplannable refuses what cannot be planned before it runs: a string
// that changes the search_path, or the catalog, and then writes a name that
// may mean a registered table (the name means something else once the
// string's first statements have run), and CREATE TABLE ... AS or SELECT
// ... INTO a registered name, which fills a table without an INSERT.
func (p *planner) refuseUnplannable(st *parse.Statement) *plan {
	if p.reg.Empty() {
		return nil
	}
	for _, n := range st.Fills {
		if p.reg.Collides(n.Schema, n.Name) {
			return refused(n.String(), "CREATE TABLE ... AS and SELECT ... INTO cannot be audited; create the table, then fill it with INSERT ... SELECT")
		}
	}
	if st.Count < 2 || (!st.SetsSearchPath && !st.ChangesCatalog) {
		return nil
	}
	collides := ""
	for _, w := range st.Writes {
		if p.reg.Collides(w.Table.Schema, w.Table.Name) {
			collides = w.Table.String()
			break
		}
	}
	if collides == "" {
		return nil
	}
	changed := false
	for _, sub := range st.Split() {
		if changed {
			for _, w := range sub.Writes {
				switch w.Kind {
				case parse.Alter, parse.Drop:
				default:
					return refused(collides, "a string that changes search_path, the role or the catalog and then writes a table that may be registered is not audited: its names mean something else once its first statements have run; send them separately")
				}
			}
		}
		changed = changed || sub.SetsSearchPath || sub.ChangesCatalog
	}
	return nil
}

// refusalError carries a refusal out of a rewrite.
type refusalError struct{ plan *plan }

func (e *refusalError) Error() string { return e.plan.err.Error() }

// truncates reports whether st holds a TRUNCATE that may empty a
// registered table.
func (p *planner) truncates(st *parse.Statement) bool {
	if p.reg.Empty() {
		return false
	}
	for _, w := range st.Writes {
		if w.Kind == parse.Truncate {
			return true
		}
	}
	return false
}

// rewriteTruncate puts an INSERT of one truncate entry per registered table
// the TRUNCATE empties in front of it, in one string that runs as one
// transaction. It returns a nil rewrite when no registered table is
// emptied, and a refusalError when one is that does not record TRUNCATE.
func (p *planner) rewriteTruncate(ctx context.Context, q driver.QueryerContext, st *parse.Statement, opt rewrite.Options) (*rewrite.Rewrite, bool, error) {
	tables, err := p.truncated(ctx, q, st.Writes)
	if err != nil || len(tables) == 0 {
		return nil, false, err
	}
	fp, err := parse.Fingerprint(st.SQL)
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
	sql := rewrite.TruncateEntries(names, opt) + "\n; " + st.SQL
	return &rewrite.Rewrite{ExecSQL: sql, QuerySQL: sql}, true, nil
}

// truncated returns the registered tables a TRUNCATE's writes empty: those
// named, their partitions and inheritance children, and with CASCADE the
// tables that refer to any of them by foreign key, transitively; each
// counts under its own registration or its nearest registered ancestor's.
// If one of them does not record TRUNCATE, the error is a refusalError.
// Registered tables the TRUNCATE does not reach play no part.
func (p *planner) truncated(ctx context.Context, q driver.QueryerContext, writes []parse.Write) ([]*registry.Table, error) {
	var names []string
	cascade := false
	for _, w := range writes {
		if w.Kind == parse.Truncate {
			names = append(names, sqlq.QualifiedIdent(w.Table.Schema, w.Table.Name))
			cascade = cascade || w.Cascade
		}
	}
	rels, err := queryRelations(ctx, q, truncateReachQuery, names, cascade)
	if err != nil {
		return nil, err
	}
	var out []*registry.Table
	seen := map[*registry.Table]bool{}
	reached := map[int]bool{} // by reached table, once registered
	for _, rel := range rels {
		if reached[rel.i] {
			continue
		}
		t, err := p.reg.Match(rel.schema, rel.rel, rel.visible)
		if err != nil {
			return nil, &refusalError{&plan{action: refuse, err: err}}
		}
		if t == nil {
			continue
		}
		reached[rel.i] = true
		if seen[t] {
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

// truncateReachQuery lists the tables that TRUNCATE of the quoted names in
// $1 empties, with CASCADE when $2, each (numbered by i) followed by its
// ancestors, in the columns of resolveQuery. TRUNCATE ONLY is taken to
// reach children too, which can only refuse or record more.
const truncateReachQuery = `WITH RECURSIVE r(oid) AS (
	SELECT c.oid FROM unnest($1::text[]) AS u(n), LATERAL (SELECT pg_catalog.to_regclass(u.n)::oid AS oid) c WHERE c.oid IS NOT NULL
	UNION
	SELECT e.child FROM r JOIN (
		SELECT inhparent AS parent, inhrelid AS child FROM pg_catalog.pg_inherits
		UNION ALL
		SELECT confrelid, conrelid FROM pg_catalog.pg_constraint WHERE contype = 'f' AND $2::bool
	) e ON e.parent = r.oid
), roots AS (
	SELECT row_number() OVER (ORDER BY oid) AS i, oid FROM r
)` + ancestorsCTE + `, rel AS (SELECT i, depth, oid FROM a)` + relationRows

func (p *planner) rewriteOne(st *parse.Statement, cat *catalog, opt rewrite.Options, actor string) (*rewrite.Rewrite, error) {
	fp, err := parse.Fingerprint(st.SQL)
	if err != nil {
		return nil, fmt.Errorf("auditpgx: fingerprint: %w", err)
	}
	opt.Fingerprint, opt.Actor = fp, actor
	return rewrite.Build(st, cat, opt)
}

// rewriteMulti rewrites each audited statement of a multi-statement
// string. Such strings travel without parameters (the simple protocol), so
// the actor is spliced in as a quoted literal at run time, at each NUL.
func (p *planner) rewriteMulti(ctx context.Context, q driver.QueryerContext, st *parse.Statement, cat *catalog, opt rewrite.Options) (*rewrite.Rewrite, error) {
	if st.NumParams > 0 {
		return nil, &rewrite.UnsupportedError{Reason: "a string of several statements cannot take parameters"}
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
	return &rewrite.Rewrite{ExecSQL: strings.Join(execParts, "\n; "), QuerySQL: strings.Join(queryParts, "\n; ")}, nil
}

// maxParams is the most parameters the extended protocol carries.
const maxParams = 65535

// actorMarker stands for the actor literal in multi-statement rewrites; a
// NUL cannot occur in SQL text.
const actorMarker = "\x00"

// deletes reports whether a write of kind k may delete rows, and so
// cascade to the rows that refer to them.
func deletes(k parse.Kind) bool {
	return k == parse.Delete || k == parse.Merge
}

func writesAudited(st *parse.Statement, cat *catalog) bool {
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

func (c *catalog) Target(n parse.TableName) (*rewrite.Target, error) {
	t := c.refs.tables[n]
	cascades := cascades(c.refs.cascades[n])
	if t == nil {
		if len(cascades) == 0 {
			return nil, nil
		}
		return &rewrite.Target{Registered: n.String(), Cascades: cascades}, nil
	}
	meta := t.meta
	return &rewrite.Target{
		Cascades:     cascades,
		Registered:   t.table.Registered,
		OID:          meta.OID,
		NAtts:        meta.NAtts,
		Resolved:     t.resolved,
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

func cascades(cs []cascade) []rewrite.Cascade {
	var out []rewrite.Cascade
	for _, c := range cs {
		pc := rewrite.Cascade{
			RefColumn: c.fk.RefColumn,
			Schema:    c.meta.Schema, Rel: c.meta.Rel, Column: c.fk.Column,
		}
		if l := c.meta.Link; l != nil && (c.fk.Column == l.Owner.Column || c.fk.Column == l.Related.Column) {
			pc.Link = link(l)
		}
		if c.meta.Audited {
			pc.Audited, pc.Registered, pc.PrimaryKey, pc.Audit = true, c.table.Registered, c.meta.PrimaryKey, c.meta.Audit
		}
		out = append(out, pc)
	}
	return out
}

func link(l *registry.M2M) *rewrite.Link {
	if l == nil {
		return nil
	}
	return &rewrite.Link{
		Field:      l.Field,
		OwnerTable: l.Owner.Table, OwnerColumn: l.Owner.Column,
		RelatedTable: l.Related.Table, RelatedColumn: l.Related.Column,
	}
}

func (c *catalog) Columns(n parse.TableName) ([]string, error) {
	desc, err := readCatalog(c.ctx, c.q, registry.CatalogQuery, sqlq.QualifiedIdent(n.Schema, n.Name))
	if err != nil {
		return nil, err
	}
	if desc == nil {
		return nil, &rewrite.UnsupportedError{Reason: fmt.Sprintf("RETURNING * over %q, which is not a table, is not audited; name the columns", n.String())}
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
// scan compares as written. Names match whole identifiers only: "t" is not
// found in "select".
func (p *planner) mentioned(query string) string {
	lower := strings.ToLower(query)
	if strings.Contains(lower, "u&") {
		// Unicode escapes can spell any name: refuse if anything is audited.
		for _, t := range p.reg.Tables() {
			return t.Registered
		}
	}
	words, lexed := parse.Identifiers(query)
	if !lexed {
		// Not even lexable (as pg_query lexes; a server with other settings,
		// such as standard_conforming_strings off, may read quotes
		// differently): every word counts, inside quotes too.
		words = plainWords(lower)
	}
	has := func(rel string) bool {
		if lexed || plainIdent(rel) {
			return words[rel]
		}
		return strings.Contains(query, rel) || strings.Contains(lower, strings.ToLower(rel))
	}
	for _, t := range p.reg.Tables() {
		if has(t.Name.Rel) {
			return t.Registered
		}
		for _, c := range t.ChildNames() {
			if has(c) {
				return t.Registered
			}
		}
	}
	if has(p.reg.EntryTable().Rel) {
		return p.reg.EntryTable().String()
	}
	return ""
}

// identByte reports whether b may occur in an unquoted identifier.
func identByte(b byte) bool {
	return b == '_' || b == '$' || b >= 0x80 || ('a' <= b && b <= 'z') || ('A' <= b && b <= 'Z') || ('0' <= b && b <= '9')
}

// plainIdent reports whether name is spelled the same unquoted: lower
// case identifier characters only.
func plainIdent(name string) bool {
	for i := 0; i < len(name); i++ {
		if !identByte(name[i]) || ('A' <= name[i] && name[i] <= 'Z') {
			return false
		}
	}
	return name != ""
}

// plainWords returns the maximal runs of identifier characters in s,
// whatever quotes surround them.
func plainWords(s string) map[string]bool {
	words := map[string]bool{}
	for i := 0; i < len(s); {
		if !identByte(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && identByte(s[j]) {
			j++
		}
		words[s[i:j]] = true
		i = j
	}
	return words
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
