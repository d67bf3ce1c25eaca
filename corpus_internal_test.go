package auditpgx

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
)

// CorpusPlan is what the planner decides for a statement, for the golden
// corpus (corpus_test.go): Action is "audit", "refuse" or "pass"; ExecSQL
// and QuerySQL are the rewrite's two forms; Err is the refusal.
type CorpusPlan struct {
	Action            string
	ExecSQL, QuerySQL string
	Err               error
}

// PlanForCorpus plans query with a fresh planner over reg, reading the
// catalog through one connection of db (a plain pgx pool on the schema the
// statement will run in). Nothing is cached and nothing is executed.
func PlanForCorpus(ctx context.Context, db *sql.DB, reg *Registry, query string) (CorpusPlan, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return CorpusPlan{}, err
	}
	defer conn.Close()
	var out CorpusPlan
	err = conn.Raw(func(dc any) error {
		q, ok := dc.(driver.QueryerContext)
		if !ok {
			return fmt.Errorf("connection of type %T cannot run queries", dc)
		}
		p := &planner{reg: reg.r, cache: newPlanCache(0, 0), suppressed: newPlanCache(0, 0)}
		pl, err := p.plan(ctx, q, query)
		if err != nil {
			return err
		}
		switch pl.action {
		case audit:
			out = CorpusPlan{Action: "audit", ExecSQL: pl.rewrite.ExecSQL, QuerySQL: pl.rewrite.QuerySQL}
		case refuse:
			out = CorpusPlan{Action: "refuse", Err: pl.err}
		default:
			out = CorpusPlan{Action: "pass"}
		}
		return nil
	})
	return out, err
}

// SetAfterBuild makes the planner call f with every statement text it has
// just planned, before the statement runs, until the returned function is
// called: for tests of what happens when the catalog changes in between.
func SetAfterBuild(f func(query string)) (reset func()) {
	afterBuild.Store(&f)
	return func() { afterBuild.Store(nil) }
}
