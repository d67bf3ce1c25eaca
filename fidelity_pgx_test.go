package auditpgx_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/internal/parse"
)

// TestFidelityPgx runs the fidelity cases through the pgx front, Exec and
// Query, in each of pgx's five exec modes, against plain pgxpool: command
// tags, field descriptions, values, errors and tables afterwards are the
// same, and the entries are those the cases expect.
func TestFidelityPgx(t *testing.T) {
	t.Parallel()
	for _, mode := range pgxExecModes {
		for _, call := range []string{"exec", "query"} {
			t.Run(fmt.Sprintf("%v/%s", mode, call), func(t *testing.T) {
				t.Parallel()
				plain := newFidelityEnv(t, "", nil)
				audited := newFidelityEnv(t, "", nil)
				plainPool, err := pgxpool.New(plain.ctx, plain.dsn)
				require.NoError(t, err)
				t.Cleanup(plainPool.Close)
				raw, err := pgxpool.New(audited.ctx, audited.dsn)
				require.NoError(t, err)
				t.Cleanup(raw.Close)
				pool, err := auditpgx.WrapPool(raw, auditpgx.WithRegistry(audited.reg))
				require.NoError(t, err)
				for _, c := range fidelityCases {
					t.Run(c.name, func(t *testing.T) {
						runFidelityPgx(t, plain, audited, plainPool, pool, mode, call, c)
					})
				}
			})
		}
	}
}

func runFidelityPgx(t *testing.T, plain, audited *env, plainPool *pgxpool.Pool, pool *auditpgx.Pool, mode pgx.QueryExecMode, call string, c fidelityCase) {
	for _, e := range []*env{plain, audited} {
		_, err := e.plain.ExecContext(e.ctx, fidelitySeed)
		require.NoError(t, err)
	}
	ctx := auditpgx.WithActor(context.Background(), fidActor)
	args := append([]any{mode}, c.args...)
	if audited.serverVersion() < c.minVersion {
		_, err := pool.Exec(ctx, c.sql, args...)
		require.ErrorIs(t, err, auditpgx.ErrUnaudited, "refused before server version %d", c.minVersion)
		require.Zero(t, audited.countEntries())
		return
	}
	if st, err := parse.Parse(c.sql); err == nil && st.Count > 1 && mode == pgx.QueryExecModeSimpleProtocol && call == "query" && audits(t, audited, c.sql) {
		// pgx's Query of several statements returns the first one's
		// result, which the rewrite does not keep: refused (REFUSALS.md).
		before := fidReadTables(t, audited)
		_, err := pool.Query(ctx, c.sql, args...)
		require.ErrorIs(t, err, auditpgx.ErrUnaudited)
		require.ErrorContains(t, err, "audited through Exec only")
		require.Equal(t, before, fidReadTables(t, audited), "a refused statement changed the tables")
		require.Zero(t, audited.countEntries())
		return
	}
	want := fidRunPgx(t, ctx, plain, plainPool, call, c, args)
	got := fidRunPgx(t, ctx, audited, pool, call, c, args)
	require.Equal(t, want.err, got.err, "error (pgx: %v; auditpgx: %v)", want.rawErr, got.rawErr)
	require.Equal(t, want.tag, got.tag, "command tag")
	require.Equal(t, want.fields, got.fields, "field descriptions")
	if c.anyOrder {
		fidSortRows(want.rows)
		fidSortRows(got.rows)
	}
	require.Equal(t, want.rows, got.rows, "rows")
	require.Equal(t, want.tables, got.tables, "table contents afterwards")
	wantEntries := c.entries
	if want.rawErr != nil {
		wantEntries = 0
	}
	require.Equal(t, wantEntries, audited.countEntries(), "number of entries written")
}

type fidPgxOutcome struct {
	err    string
	rawErr error
	tag    string
	fields []string
	rows   [][]any
	tables [][][]any
}

func (o *fidPgxOutcome) fail(err error) {
	o.rawErr = err
	o.err = "error"
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		o.err = "pg " + pgErr.Code
	}
}

type pgxExecQueryer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func fidRunPgx(t *testing.T, ctx context.Context, e *env, db pgxExecQueryer, call string, c fidelityCase, args []any) *fidPgxOutcome {
	t.Helper()
	o := &fidPgxOutcome{}
	defer func() { o.tables = fidReadTables(t, e) }()
	if call == "exec" {
		tag, err := db.Exec(ctx, c.sql, args...)
		if err != nil {
			o.fail(err)
			return o
		}
		o.tag = tag.String()
		return o
	}
	rows, err := db.Query(ctx, c.sql, args...)
	if err != nil {
		o.fail(err)
		return o
	}
	defer rows.Close()
	var volatile []int
	for i, fd := range rows.FieldDescriptions() {
		o.fields = append(o.fields, fmt.Sprintf("%s %s typmod=%d size=%d format=%d", fd.Name, fidTypeName(t, e, fmt.Sprint(fd.DataTypeOID)),
			fd.TypeModifier, fd.DataTypeSize, fd.Format))
		if slices.Contains(c.volatile, fd.Name) {
			volatile = append(volatile, i)
		}
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			o.fail(err)
			return o
		}
		for i := range vals {
			if slices.Contains(volatile, i) {
				vals[i] = "volatile"
				continue
			}
			vals[i] = fidNormalize(vals[i])
		}
		o.rows = append(o.rows, vals)
	}
	if err := rows.Err(); err != nil {
		o.fail(err)
		return o
	}
	o.tag = rows.CommandTag().String()
	return o
}

// audits reports whether the planner audits sql in e's schema.
func audits(t *testing.T, e *env, sql string) bool {
	p, err := auditpgx.PlanForCorpus(e.ctx, e.plain, e.reg, sql)
	require.NoError(t, err)
	return p.Action == "audit"
}
