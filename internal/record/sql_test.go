package record_test

import (
	"testing"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/record"
)

// The exact text the rewriter splices into statements.
func TestSQLShape(t *testing.T) {
	cols := diff.Columns{
		Names:    []string{"id", "pw", `it's "x"\`},
		Redacted: map[string]bool{"pw": true},
	}
	for _, c := range []struct{ name, got, want string }{
		{
			"ImageSQL", record.ImageSQL(`"u"`, cols),
			`jsonb_build_object('id', "u"."id", 'pw', "u"."pw", E'it''s "x"\\', "u"."it's ""x""\")`,
		},
		{
			"CreateSQL", record.CreateSQL(`"s"."new"`, cols),
			`jsonb_build_object('added_fields', jsonb_build_object('id', ("s"."new")->'id', 'pw', '$encrypted$'::text, E'it''s "x"\\', ("s"."new")->E'it''s "x"\\'), 'removed_fields', '{}'::jsonb, 'changed_fields', '{}'::jsonb)`,
		},
		{
			"DeleteSQL", record.DeleteSQL(`o`, cols),
			`jsonb_build_object('added_fields', '{}'::jsonb, 'removed_fields', jsonb_build_object('id', (o)->'id', 'pw', '$encrypted$'::text, E'it''s "x"\\', (o)->E'it''s "x"\\'), 'changed_fields', '{}'::jsonb)`,
		},
		{
			"ChangedSQL", record.ChangedSQL(`o`, `n`, cols),
			`(CASE WHEN (o)->'id' IS DISTINCT FROM (n)->'id' THEN jsonb_build_object('id', jsonb_build_array((o)->'id', (n)->'id')) ELSE '{}'::jsonb END` +
				` || (CASE WHEN (o)->'pw' IS DISTINCT FROM (n)->'pw' THEN '{"pw":["$encrypted$","$encrypted$"]}'::jsonb ELSE '{}'::jsonb END` +
				` || CASE WHEN (o)->E'it''s "x"\\' IS DISTINCT FROM (n)->E'it''s "x"\\' THEN jsonb_build_object(E'it''s "x"\\', jsonb_build_array((o)->E'it''s "x"\\', (n)->E'it''s "x"\\')) ELSE '{}'::jsonb END))`,
		},
		{
			"UpdateSQL", record.UpdateSQL(`c`),
			`jsonb_build_object('added_fields', '{}'::jsonb, 'removed_fields', '{}'::jsonb, 'changed_fields', (c))`,
		},
		{"ImageSQL no columns", record.ImageSQL(`"u"`, diff.Columns{}), `'{}'::jsonb`},
		{"CreateSQL no columns", record.CreateSQL(`i`, diff.Columns{}), `jsonb_build_object('added_fields', '{}'::jsonb, 'removed_fields', '{}'::jsonb, 'changed_fields', '{}'::jsonb)`},
		{"ChangedSQL no columns", record.ChangedSQL(`o`, `n`, diff.Columns{}), `'{}'::jsonb`},
	} {
		if c.got != c.want {
			t.Errorf("%s =\n%s\nwant\n%s", c.name, c.got, c.want)
		}
	}
}
