package record_test

import (
	"fmt"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/record"
)

func ExampleChangedSQL() {
	cols := diff.Columns{
		Names:    []string{"name", "password"},
		Redacted: map[string]bool{"password": true},
	}
	fmt.Println(record.UpdateSQL(record.ChangedSQL(`"o"."img"`, `"n"."img"`, cols)))
	// Output: jsonb_build_object('added_fields', '{}'::jsonb, 'removed_fields', '{}'::jsonb, 'changed_fields', ((CASE WHEN ("o"."img")->'name' IS DISTINCT FROM ("n"."img")->'name' THEN jsonb_build_object('name', jsonb_build_array(("o"."img")->'name', ("n"."img")->'name')) ELSE '{}'::jsonb END || CASE WHEN ("o"."img")->'password' IS DISTINCT FROM ("n"."img")->'password' THEN '{"password":["$encrypted$","$encrypted$"]}'::jsonb ELSE '{}'::jsonb END)))
}

func ExampleImageSQL() {
	cols := diff.Columns{Names: []string{"id", "name"}}
	fmt.Println(record.ImageSQL(`"u"`, cols))
	// Output: jsonb_build_object('id', "u"."id", 'name', "u"."name")
}
