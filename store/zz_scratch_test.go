package store_test

import (
	"context"
	"testing"
)

func TestZZScratch(t *testing.T) {
	db, _ := openSchema(t)
	for _, q := range []string{
		`select to_jsonb(ARRAY[1,2])::text || ' ' || to_jsonb('a<b"é'::text)::text || ' ' || to_jsonb(1.50::numeric)::text || ' ' || to_jsonb('{"b":1,"aa":[1,2]}'::jsonb)::text || ' ' || to_jsonb(E'x\u2028y\x01'::text)::text`,
		`select coalesce(to_regclass('Foo Bar')::text, 'NULL')`,
		`select coalesce(to_regclass('a.b.c.d')::text, 'NULL')`,
		`select coalesce(to_regclass('"x')::text, 'NULL')`,
		`select coalesce(to_regclass('nosuchschema.x')::text, 'NULL')`,
		`select to_jsonb(1e2::numeric)::text || ' ' || to_jsonb('1e2'::jsonb)::text || ' ' || ('[1.0e1]'::jsonb)::text`,
	} {
		var s string
		err := db.QueryRowContext(context.Background(), q).Scan(&s)
		t.Logf("%s\n  => %q %v", q, s, err)
	}
}
