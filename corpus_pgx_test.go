package auditpgx_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"sort"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/auditpgx/auditpgx"
)

// The corpus through the pgx front: each case runs with pgx.Conn's Exec
// and Query, on a plain *pgx.Conn and through auditpgx.WrapConn, in one of
// pgx's five exec modes chosen by the case's name, so that the corpus as
// a whole runs in all of them. What the caller sees (command tag, field
// descriptions, values, error class) must be the same, and the entries
// those of entries.json.

var pgxExecModes = []pgx.QueryExecMode{
	pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec,
	pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol,
}

// pgxExecMode is the exec mode a case runs in for call.
func pgxExecMode(name, call string) pgx.QueryExecMode {
	h := fnv.New32a()
	fmt.Fprint(h, name, "/", call)
	return pgxExecModes[h.Sum32()%uint32(len(pgxExecModes))]
}

// pgxRunner is what the two sides have of pgx.Conn.
type pgxRunner interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func runPgxMode(t testing.TB, c *corpusCase, call string) modeResult {
	mode := "pgx-" + call
	execMode := pgxExecMode(c.name, call)
	audited := newCorpusEnvSink(t, c, true, false)
	viaFront := func() *outcome { return runPgx(audited, true, c.auditCtx(), call, execMode) }
	if c.hasRefused {
		checkRefused(t, audited, mode, c.refused, viaFront)
		return modeResult{}
	}
	if call == "query" && execMode == pgx.QueryExecModeSimpleProtocol && c.opt.PgxQueryRefused != "" {
		checkRefused(t, audited, mode, c.opt.PgxQueryRefused, viaFront)
		return modeResult{}
	}
	plain := newCorpusEnv(t, c, false)
	want := runPgx(plain, false, context.Background(), call, execMode)
	got := viaFront()
	if d := lineDiff(want.lines(c.opt.AnyOrder), got.lines(c.opt.AnyOrder)); d != "" {
		t.Errorf("%s (%v): what the caller sees differs between pgx and auditpgx (-pgx +auditpgx):\n%s\npgx error: %v\nauditpgx error: %v",
			mode, execMode, d, want.err, got.err)
	}
	if d := lineDiff(plain.snapshot(), audited.snapshot()); d != "" {
		t.Errorf("%s (%v): tables afterwards differ between pgx and auditpgx (-pgx +auditpgx):\n%s", mode, execMode, d)
	}
	entries := audited.entries()
	if got.err != nil {
		if len(entries) > 0 {
			t.Errorf("%s (%v): the statement failed (%v) but left %d entries", mode, execMode, got.err, len(entries))
		}
		return modeResult{}
	}
	if c.opt.AnyOrder {
		sort.Strings(entries)
	}
	return modeResult{ok: true, entries: entries}
}

// runPgx runs the case's statement on a new connection to its schema,
// through the pgx front when audited.
func runPgx(e *corpusEnv, audited bool, ctx context.Context, call string, execMode pgx.QueryExecMode) *outcome {
	o := &outcome{mode: "pgx-" + call}
	conn, err := pgx.Connect(ctx, e.dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var r pgxRunner = conn
	if audited {
		if r, err = auditpgx.WrapConn(conn, auditpgx.WithRegistry(e.reg)); err != nil {
			e.t.Fatal(err)
		}
	}
	args := append([]any{execMode}, e.c.args...)
	if call == "exec" {
		tag, err := r.Exec(ctx, e.c.input, args...)
		if err != nil {
			o.fail(err)
			return o
		}
		o.tag = tag.String()
		return o
	}
	rows, err := r.Query(ctx, e.c.input, args...)
	if err != nil {
		o.fail(err)
		return o
	}
	defer rows.Close()
	for _, fd := range rows.FieldDescriptions() {
		o.columns = append(o.columns, fd.Name)
		o.types = append(o.types, fmt.Sprintf("%s %s typmod=%d size=%d format=%d", fd.Name, e.typeName(fmt.Sprint(fd.DataTypeOID)),
			fd.TypeModifier, fd.DataTypeSize, fd.Format))
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			o.fail(err)
			return o
		}
		line := ""
		for i, v := range vals {
			if i > 0 {
				line += " | "
			}
			line += renderValue(v)
		}
		o.rows = append(o.rows, line)
	}
	if err := rows.Err(); err != nil {
		o.fail(err)
		return o
	}
	o.tag = rows.CommandTag().String()
	return o
}
