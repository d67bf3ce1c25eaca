package store_test

import (
	"fmt"

	"github.com/auditpgx/auditpgx/store"
)

func ExampleDDL() {
	ddl, err := store.DDL("audit.entries")
	if err != nil {
		panic(err)
	}
	fmt.Print(ddl)
	// Output:
	// CREATE TABLE IF NOT EXISTS "audit"."entries" (
	//     id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	//     created               timestamptz NOT NULL DEFAULT statement_timestamp(),
	//     created_by            text,
	//     operation             text NOT NULL CHECK (operation IN ('create', 'update', 'delete', 'associate', 'disassociate')),
	//     table_name            text NOT NULL,
	//     object_id             text NOT NULL,
	//     changes               jsonb,
	//     related_table_name    text,
	//     related_object_id     text,
	//     related_field_name    text,
	//     tx_id                 bigint NOT NULL,
	//     statement_fingerprint text
	// );
	// CREATE INDEX IF NOT EXISTS "entries_object_idx" ON "audit"."entries" (table_name, object_id, id);
	// CREATE INDEX IF NOT EXISTS "entries_created_idx" ON "audit"."entries" (created);
	// CREATE INDEX IF NOT EXISTS "entries_tx_idx" ON "audit"."entries" (tx_id);
	// CREATE INDEX IF NOT EXISTS "entries_actor_idx" ON "audit"."entries" (created_by, id);
	// CREATE INDEX IF NOT EXISTS "entries_related_idx" ON "audit"."entries" (related_table_name, related_object_id, id) WHERE related_table_name IS NOT NULL;
	// CREATE INDEX IF NOT EXISTS "entries_changes_idx" ON "audit"."entries" USING gin (changes jsonb_path_ops);
}

func ExampleDDL_invalid() {
	_, err := store.DDL("a.b.c")
	fmt.Println(err)
	// Output:
	// auditpgx: invalid entry table name "a.b.c": has 3 dot-separated parts, want at most 2 (schema.table)
}
