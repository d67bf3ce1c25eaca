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

	"github.com/auditpgx/auditpgx/internal/catalog"
	"github.com/auditpgx/auditpgx/internal/parse"
	"github.com/auditpgx/auditpgx/internal/record"
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
	// withContext: the entries are written with the context column (the
	// entry table has it), from a parameter after the actor's or, with
	// inlineActor, from a literal at contextMarker.
	withContext bool
	entryTable  sqlq.Name
	// multi marks a string of several statements, which pgx cannot prepare.
	multi bool
	// tag is the start of the original's command tag, before its row
	// count ("INSERT 0", "UPDATE", …), for the pgx front's counted Exec.
	tag string
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
	reg   *registry.Registry
	cache *planCache
	// suppressed caches the plans of statements run under WithoutAudit.
	suppressed *planCache
	sessions   sessions
	// ddlConns are the connections whose open transaction ran DDL.
	ddlConns sessions
	version  atomic.Int64 // server_version_num, read once
	// entryContext is whether the entry table has its context column, as
	// last read.
	entryContext atomic.Pointer[columnState]
}

// columnState is whether a column exists, as read at a registry
// generation, until the coarse clock reaches expires.
type columnState struct {
	generation uint64
	expires    int64
	exists     bool
}

// entryHasContext reports whether the entry table has its context column.
// The answer is kept as long as a write's plan is (recheckAfter), and
// until DDL through the driver: a column added by another client is seen
// within that time.
func (p *planner) entryHasContext(ctx context.Context, q driver.QueryerContext) (bool, error) {
	gen := p.reg.Generation()
	if s := p.entryContext.Load(); s != nil && s.generation == gen && coarse.now() < s.expires {
		return s.exists, nil
	}
	exists, err := catalog.HasColumn(ctx, q, p.reg.EntryTable().Quoted(), record.ContextColumn)
	if err != nil {
		return false, err
	}
	p.entryContext.Store(&columnState{generation: gen, expires: coarse.now() + recheckTicks, exists: exists})
	return exists, nil
}

// plan returns the cached plan for query or builds it, reading the catalog
// through q the first time an audited table is used.
func (p *planner) plan(ctx context.Context, q driver.QueryerContext, query string) (*plan, error) {
	if reason, ok := suppression(ctx); ok {
		return p.suppressedPlan(ctx, q, query, reason)
	}
	return p.planIn(ctx, q, query, false)
}

// planIn is plan for statements run under WithoutAudit, when suppressed,
// whose plans have a cache of their own, or not.
func (p *planner) planIn(ctx context.Context, q driver.QueryerContext, query string, suppressed bool) (*plan, error) {
	cache := p.cache
	if suppressed {
		cache = p.suppressed
	}
	gen := p.reg.Generation()
	pl := cache.get(query)
	if pl != nil && pl.generation == gen && pl.current() && !(pl.bySearchPath && p.sessions.changedSearchPath(q)) &&
		(pl.expires == 0 || coarse.now() < pl.expires) {
		return pl, nil
	}
	pl, cacheable, err := p.build(ctx, q, query, suppressed)
	for attempt := 0; errors.Is(err, catalog.ErrMoved) && attempt < 4; attempt++ {
		pl, cacheable, err = p.build(ctx, q, query, suppressed)
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
		cache.put(query, &cp)
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
func (p *planner) build(ctx context.Context, q driver.QueryerContext, query string, suppressed bool) (pl *plan, cacheable bool, err error) {
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
			// store.Migrate's statements do not come here (record.Migrating).
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
	cat := &lookup{planner: p, ctx: ctx, q: q, refs: refs}
	entry := p.reg.EntryTable()
	opt := rewrite.Options{
		Entries:       entry,
		ServerVersion: int(p.version.Load()),
		Suppressed:    suppressed,
	}
	if suppressed {
		if pl, err := p.outdatedEntryTable(ctx, q); pl != nil || err != nil {
			return pl, false, err
		}
	}
	var withContext bool
	if wal := p.reg.Config().WAL; wal != nil {
		if p.version.Load() < 140000 {
			return &plan{action: refuse, err: fmt.Errorf("%w: PostgreSQL %d cannot decode logical messages through pgoutput; the WAL sink needs 14 or later",
				ErrWALSinkUnavailable, p.version.Load()/10000)}, true, nil
		}
		// The payload always has the context; no entry table is read.
		opt.WAL, withContext = wal, true
	} else if withContext, err = p.entryHasContext(ctx, q); err != nil {
		return nil, false, err
	}
	// The actor, and the context, are parameters after the statement's
	// own, or literals spliced in at run time where no parameter can be
	// added (see bind).
	extra := 1
	if withContext {
		extra = 2
	}
	inline := st.Count > 1 || truncates || st.NumParams+extra > maxParams
	if withContext {
		opt.Context = contextMarker
		if !inline {
			opt.Context = "$" + strconv.Itoa(st.NumParams+2) + "::jsonb"
		}
	}
	var rw *rewrite.Rewrite
	var truncate bool
	if st.Count > 1 {
		rw, err = p.rewriteMulti(ctx, q, st, cat, opt)
	} else if truncates {
		rw, truncate, err = p.rewriteTruncate(ctx, q, st, opt)
	} else if inline {
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
	return &plan{action: audit, rewrite: rw, inlineActor: inline, withContext: withContext, entryTable: entry, multi: st.Count > 1,
		truncate: truncate, changesCatalog: st.ChangesCatalog, endsTx: st.EndsTransaction, setsSearchPath: sessionOnly, bySearchPath: refs.unqualified,
		recheck: refs.resolved, tag: st.Tag,
		tables: tables, versions: versions}, cacheable, nil
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
