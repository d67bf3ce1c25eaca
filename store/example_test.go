package store_test

import (
	"encoding/json"
	"fmt"

	"github.com/auditpgx/auditpgx/diff"
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
	//     operation             text NOT NULL CHECK (operation IN ('create', 'update', 'delete', 'associate', 'disassociate', 'truncate', 'snapshot', 'suppressed')),
	//     table_name            text NOT NULL,
	//     object_id             text NOT NULL,
	//     changes               jsonb,
	//     related_table_name    text,
	//     related_object_id     text,
	//     related_field_name    text,
	//     tx_id                 bigint NOT NULL,
	//     statement_fingerprint text,
	//     context               jsonb
	// );
	// ALTER TABLE "audit"."entries" ADD COLUMN IF NOT EXISTS context jsonb;
	// CREATE INDEX IF NOT EXISTS "entries_object_idx" ON "audit"."entries" (table_name, object_id, id);
	// CREATE INDEX IF NOT EXISTS "entries_created_idx" ON "audit"."entries" (created);
	// CREATE INDEX IF NOT EXISTS "entries_tx_idx" ON "audit"."entries" (tx_id);
	// CREATE INDEX IF NOT EXISTS "entries_actor_idx" ON "audit"."entries" (created_by, id);
	// CREATE INDEX IF NOT EXISTS "entries_related_idx" ON "audit"."entries" (related_table_name, related_object_id, id) WHERE related_table_name IS NOT NULL;
	// CREATE INDEX IF NOT EXISTS "entries_changes_idx" ON "audit"."entries" USING gin (changes jsonb_path_ops, context jsonb_path_ops);
}

func ExampleDDL_invalid() {
	_, err := store.DDL("a.b.c")
	fmt.Println(err)
	// Output:
	// auditpgx: invalid entry table name "a.b.c": has 3 dot-separated parts, want at most 2 (schema.table)
}

func ExampleObjectID() {
	fmt.Println(store.ObjectID(json.RawMessage(`42`)))
	fmt.Println(store.ObjectID(json.RawMessage(`"eu"`)))
	fmt.Println(store.ObjectID(json.RawMessage(`7`), json.RawMessage(`"eu"`)))
	// Output:
	// 42
	// eu
	// [7,"eu"]
}

func ExampleReplay() {
	changes := func(s string) *diff.Changes {
		c, err := diff.Decode([]byte(s))
		if err != nil {
			panic(err)
		}
		return &c
	}
	entries := []store.Entry{
		{ID: 1, Operation: store.OpCreate, TableName: "users", ObjectID: "7",
			Changes: changes(`{"added_fields": {"id": 7, "name": "Al", "password": "$encrypted$"}}`)},
		{ID: 2, Operation: store.OpUpdate, TableName: "users", ObjectID: "8",
			Changes: changes(`{"changed_fields": {"id": [7, 8], "name": ["Al", "Bob"]}}`)},
	}
	state, err := store.Replay(entries, map[string][]string{"users": {"id"}})
	if err != nil {
		panic(err)
	}
	out, _ := json.Marshal(state)
	fmt.Println(string(out))
	// Output:
	// {"users":{"8":{"id":8,"name":"Bob","password":"$encrypted$"}}}
}
