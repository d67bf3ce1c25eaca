package diff_test

import (
	"encoding/json"
	"fmt"

	"github.com/auditpgx/auditpgx/diff"
)

func ExampleUpdate() {
	cols := diff.Columns{
		Names:    []string{"id", "name", "balance", "password"},
		Redacted: map[string]bool{"password": true},
	}
	oldRow := diff.Image{"id": json.RawMessage(`1`), "name": json.RawMessage(`"ann"`), "balance": json.RawMessage(`10.5`), "password": json.RawMessage(`"x"`)}
	newRow := diff.Image{"id": json.RawMessage(`1`), "name": json.RawMessage(`"ann"`), "balance": json.RawMessage(`10.50`), "password": json.RawMessage(`"y"`)}

	out, _ := json.Marshal(diff.Update(oldRow, newRow, cols))
	fmt.Println(string(out))
	// Output: {"added_fields":{},"removed_fields":{},"changed_fields":{"password":["$encrypted$","$encrypted$"]}}
}

func ExampleChangedSQL() {
	cols := diff.Columns{
		Names:    []string{"name", "password"},
		Redacted: map[string]bool{"password": true},
	}
	fmt.Println(diff.UpdateSQL(diff.ChangedSQL(`"o"."img"`, `"n"."img"`, cols)))
	// Output: jsonb_build_object('added_fields', '{}'::jsonb, 'removed_fields', '{}'::jsonb, 'changed_fields', ((CASE WHEN ("o"."img")->'name' IS DISTINCT FROM ("n"."img")->'name' THEN jsonb_build_object('name', jsonb_build_array(("o"."img")->'name', ("n"."img")->'name')) ELSE '{}'::jsonb END || CASE WHEN ("o"."img")->'password' IS DISTINCT FROM ("n"."img")->'password' THEN '{"password":["$encrypted$","$encrypted$"]}'::jsonb ELSE '{}'::jsonb END)))
}

func ExampleImageSQL() {
	cols := diff.Columns{Names: []string{"id", "name"}}
	fmt.Println(diff.ImageSQL(`"u"`, cols))
	// Output: jsonb_build_object('id', "u"."id", 'name', "u"."name")
}
