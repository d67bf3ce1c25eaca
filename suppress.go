package auditpgx

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"

	"github.com/auditpgx/auditpgx/internal/record"
)

// ErrSuppressionNotAllowed is wrapped by the error an audited write run
// under WithoutAudit returns when the registry does not allow suppression
// (RegistryConfig.AllowSuppression): nothing ran.
var ErrSuppressionNotAllowed = errors.New("auditpgx: WithoutAudit is not allowed by this registry")

// ErrEntryTableOutdated is wrapped by the error a write returns when the
// entry table predates what the write must record: its CHECK on operation
// does not allow "suppressed". Nothing ran. The error gives the ALTER
// TABLE to run; store.Migrate runs it when its role owns the table.
var ErrEntryTableOutdated = errors.New("auditpgx: the entry table predates this kind of entry")

type suppressKey struct{}

// WithoutAudit returns a context whose audited writes are recorded as one
// entry per statement and table instead of one per row: operation
// "suppressed", the actor and entry context as for any entry, reason in the
// context under ContextReason, the statement's fingerprint, and in changes
// the number of rows written, {"rows": n}. A backfill of a million rows
// costs one entry, and the gap in the per-row history stays visible. The
// entry commits or rolls back with the statement, as every entry does.
// Rows that a suppressed DELETE removes through ON DELETE CASCADE belong to
// it and get no entries either; a TRUNCATE records its truncate entry as
// always.
//
// Suppression must be allowed by the registry
// (RegistryConfig.AllowSuppression); otherwise an audited write run with
// this context fails with ErrSuppressionNotAllowed, and so does one whose
// reason is empty. Statements that write no audited table run as usual.
func WithoutAudit(ctx context.Context, reason string) context.Context {
	return context.WithValue(WithReason(ctx, reason), suppressKey{}, reason)
}

// suppression returns the reason WithoutAudit gave, and whether ctx is
// suppressed.
func suppression(ctx context.Context) (string, bool) {
	reason, ok := ctx.Value(suppressKey{}).(string)
	return reason, ok
}

// suppressedPlan returns the plan of query run under WithoutAudit: an
// audited write's plan writes one suppressed entry per table, when the
// registry allows it; anything else is planned as usual.
func (p *planner) suppressedPlan(ctx context.Context, q driver.QueryerContext, query, reason string) (*plan, error) {
	if !p.reg.Config().AllowSuppression {
		pl, err := p.planIn(ctx, q, query, false)
		if err != nil || pl.action != audit {
			return pl, err
		}
		return nil, fmt.Errorf("%w: set RegistryConfig.AllowSuppression to let it record such a statement as one %q entry per table", ErrSuppressionNotAllowed, record.Suppressed)
	}
	pl, err := p.planIn(ctx, q, query, true)
	if err != nil || pl.action != audit {
		return pl, err
	}
	if reason == "" {
		return nil, fmt.Errorf("%w: WithoutAudit was given an empty reason", ErrSuppressionNotAllowed)
	}
	return pl, nil
}

// outdatedEntryTable returns the refusal of a suppressed write to an entry
// table whose CHECK on operation does not allow suppressed entries, or nil.
func (p *planner) outdatedEntryTable(ctx context.Context, q driver.QueryerContext) (*plan, error) {
	quoted := p.reg.EntryTable().Quoted()
	rows, err := q.QueryContext(ctx, record.OperationCheckQuery, []driver.NamedValue{{Ordinal: 1, Value: quoted}})
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	name, _ := dest[0].(string)
	return &plan{action: refuse, err: fmt.Errorf("%w: its CHECK on operation does not allow %q; run, as the entry table's owner, %s (store.Migrate does)",
		ErrEntryTableOutdated, record.Suppressed, record.WidenOperationCheck(quoted, name))}, nil
}
