package auditpgx

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

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
	err        error
	// invalidates lists audited tables whose catalog description the
	// statement (DDL) may change; they are re-read after it runs.
	invalidates []*registry.Table
}

var passThroughPlan = &plan{action: passThrough}

// planner decides, once per SQL text, how a statement is handled.
type planner struct {
	reg   *registry.Registry
	cache *planCache
}

// plan returns the cached plan for query or builds it, reading the catalog
// through q the first time an audited table is used.
func (p *planner) plan(ctx context.Context, q driver.QueryerContext, query string) (*plan, error) {
	gen := p.reg.Generation()
	if pl := p.cache.get(query); pl != nil && pl.generation == gen {
		return pl, nil
	}
	pl, cacheable, err := p.build(ctx, q, query)
	if err != nil {
		return nil, err
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

func refused(table, format string, args ...any) *plan {
	return &plan{action: refuse, err: &UnauditedError{Table: table, Reason: fmt.Sprintf(format, args...)}}
}

// build parses and classifies a statement. cacheable is false for results
// that depend on the catalog's current state.
func (p *planner) build(ctx context.Context, q driver.QueryerContext, query string) (pl *plan, cacheable bool, err error) {
	st, perr := parser.Parse(query)
	if perr != nil {
		if name := p.mentioned(query); name != "" {
			return refused(name, "the statement cannot be parsed (%v), so its changes cannot be audited", perr), true, nil
		}
		return passThroughPlan, true, nil
	}
	var target *registry.Table
	var invalidates []*registry.Table
	for _, w := range st.Writes {
		if p.reg.IsEntryTable(w.Table.Schema, w.Table.Name) {
			return &plan{action: refuse, err: fmt.Errorf("%w: %s on %q is refused", ErrAppendOnly, w.Kind, w.Table.String())}, true, nil
		}
		t := p.reg.Lookup(w.Table.Schema, w.Table.Name)
		if t == nil {
			continue
		}
		switch {
		case w.Kind == parser.Alter || w.Kind == parser.Drop:
			invalidates = append(invalidates, t)
			continue
		case w.Kind == parser.Truncate:
			return refused(t.Registered, "TRUNCATE cannot be audited row by row; use DELETE"), true, nil
		case w.Kind == parser.CopyFrom:
			return refused(t.Registered, "COPY FROM cannot be audited; use INSERT (multi-row VALUES or INSERT ... SELECT)"), true, nil
		case w.Kind == parser.Merge:
			return refused(t.Registered, "MERGE is not audited; use INSERT ... ON CONFLICT, UPDATE or DELETE"), true, nil
		case w.CurrentOf:
			return refused(t.Registered, "%s ... WHERE CURRENT OF cannot be audited; address the row by its primary key", w.Kind), true, nil
		case !w.TopLevel:
			return refused(t.Registered, "a %s inside a WITH query, PREPARE or EXPLAIN is not audited; send it as a statement of its own", w.Kind), true, nil
		case st.Count > 1:
			return refused(t.Registered, "a string of %d statements is not audited; send each statement on its own", st.Count), true, nil
		case w.OnConflictUpdate:
			return refused(t.Registered, "INSERT ... ON CONFLICT DO UPDATE is not audited yet"), true, nil
		case target != nil && target != t:
			return refused(t.Registered, "a statement writing two audited tables is not audited"), true, nil
		}
		target = t
	}
	if target == nil {
		if len(invalidates) > 0 {
			return &plan{action: passThrough, invalidates: invalidates}, true, nil
		}
		return passThroughPlan, true, nil
	}
	meta := target.Meta()
	if meta == nil {
		if meta, err = p.resolve(ctx, q, target); err != nil {
			return nil, false, err
		}
	}
	fp, err := parser.Fingerprint(query)
	if err != nil {
		return nil, false, fmt.Errorf("auditpgx: fingerprint: %w", err)
	}
	entry := p.reg.EntryTable()
	rw, err := st.Rewrite(parser.Target{
		Registered: target.Registered,
		Columns:    meta.Columns,
		PrimaryKey: meta.PrimaryKey,
		Audit:      meta.Audit,
	}, parser.EntryTable{Schema: entry.Schema, Name: entry.Rel}, fp)
	var ue *parser.UnsupportedError
	if errors.As(err, &ue) {
		return refused(target.Registered, "%s", ue.Reason), true, nil
	}
	if err != nil {
		return nil, false, err
	}
	return &plan{action: audit, rewrite: rw}, true, nil
}

// mentioned returns a registered table whose name appears in query, for
// refusing text that cannot be parsed.
func (p *planner) mentioned(query string) string {
	lower := strings.ToLower(query)
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

// resolve reads t's description from the catalog and checks the
// registration against it.
func (p *planner) resolve(ctx context.Context, q driver.QueryerContext, t *registry.Table) (*registry.Meta, error) {
	c, err := readCatalog(ctx, q, t)
	if err != nil {
		return nil, err
	}
	return t.Resolve(c)
}

func readCatalog(ctx context.Context, q driver.QueryerContext, t *registry.Table) (*registry.Catalog, error) {
	rows, err := q.QueryContext(ctx, registry.CatalogQuery, []driver.NamedValue{{Ordinal: 1, Value: t.Quoted()}})
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
		return nil, fmt.Errorf("auditpgx: catalog query for %q returned %T", t.Registered, dest[0])
	}
	var c registry.Catalog
	if err := json.Unmarshal(text, &c); err != nil {
		return nil, fmt.Errorf("auditpgx: catalog query for %q: %w", t.Registered, err)
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
