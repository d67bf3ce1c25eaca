package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/auditpgx/auditpgx/store"
)

// tableShape is what the catalog says about a table, with its schema's name
// left out so that tables in different schemas compare equal.
type tableShape struct {
	Columns     []string
	Constraints []string
	Indexes     []string
}

func describe(t *testing.T, db *sql.DB, schema, table string) tableShape {
	t.Helper()
	ctx := context.Background()
	var s tableShape
	collect := func(dst *[]string, query string) {
		t.Helper()
		rows, err := db.QueryContext(ctx, query, schema, table)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			*dst = append(*dst, v)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	const rel = `SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2`
	collect(&s.Columns, `SELECT concat_ws(' ', a.attname, format_type(a.atttypid, a.atttypmod),
			CASE WHEN a.attnotnull THEN 'NOT NULL' END, 'identity=' || a.attidentity::text,
			'default=' || pg_get_expr(d.adbin, d.adrelid))
		FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = (`+rel+`) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`)
	collect(&s.Constraints, `SELECT contype::text || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
		WHERE conrelid = (`+rel+`) ORDER BY 1`)
	collect(&s.Indexes, `SELECT replace(pg_get_indexdef(indexrelid), quote_ident($1) || '.', '')
		FROM pg_index WHERE indrelid = (`+rel+`) ORDER BY 1`)
	if len(s.Columns) == 0 {
		t.Fatalf("table %s.%s does not exist", schema, table)
	}
	return s
}

func tableExists(t *testing.T, db *sql.DB, schema, table string) bool {
	t.Helper()
	var ok bool
	err := db.QueryRow(`SELECT EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p'))`, schema, table).Scan(&ok)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// layoutIndexes returns the definitions of a new entry table's indexes,
// written as for the plain layout, as they read on the suite's layout: on
// the partitioned one, the indexes are the partitioned table's own (ON
// ONLY) and the primary key includes created.
func layoutIndexes(defs []string) []string {
	if !partitionedLayout() {
		return defs
	}
	out := make([]string, len(defs))
	for i, d := range defs {
		d = strings.Replace(d, " ON ", " ON ONLY ", 1)
		if strings.Contains(d, "_pkey ON ") {
			d = strings.Replace(d, "(id)", "(id, created)", 1)
		}
		out[i] = d
	}
	return out
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	db, schema := openSchema(t)
	for i := range 2 {
		if err := store.Migrate(ctx, db, "auditpgx_entry"); err != nil {
			t.Fatalf("Migrate, run %d: %v", i+1, err)
		}
	}
	got := describe(t, db, schema, "auditpgx_entry")
	want := tableShape{
		Columns: []string{
			"id bigint NOT NULL identity=a",
			"created timestamp with time zone NOT NULL identity= default=statement_timestamp()",
			"created_by text identity=",
			"operation text NOT NULL identity=",
			"table_name text NOT NULL identity=",
			"object_id text NOT NULL identity=",
			"changes jsonb identity=",
			"related_table_name text identity=",
			"related_object_id text identity=",
			"related_field_name text identity=",
			"tx_id bigint NOT NULL identity=",
			"statement_fingerprint text identity=",
			"context jsonb identity=",
		},
		Indexes: []string{
			"CREATE INDEX auditpgx_entry_actor_idx ON auditpgx_entry USING btree (created_by, id)",
			"CREATE INDEX auditpgx_entry_changes_idx ON auditpgx_entry USING gin (changes jsonb_path_ops, context jsonb_path_ops)",
			"CREATE INDEX auditpgx_entry_created_idx ON auditpgx_entry USING btree (created)",
			"CREATE INDEX auditpgx_entry_object_idx ON auditpgx_entry USING btree (table_name, object_id, id)",
			"CREATE INDEX auditpgx_entry_related_idx ON auditpgx_entry USING btree (related_table_name, related_object_id, id) WHERE (related_table_name IS NOT NULL)",
			"CREATE INDEX auditpgx_entry_tx_idx ON auditpgx_entry USING btree (tx_id)",
			"CREATE UNIQUE INDEX auditpgx_entry_pkey ON auditpgx_entry USING btree (id)",
		},
	}
	if partitionedLayout() {
		want.Columns[0] = "id bigint NOT NULL identity= default=nextval('auditpgx_entry_id_seq'::regclass)"
	}
	want.Indexes = layoutIndexes(want.Indexes)
	if !reflect.DeepEqual(got.Columns, want.Columns) {
		t.Errorf("columns:\n got %q\nwant %q", got.Columns, want.Columns)
	}
	if !reflect.DeepEqual(got.Indexes, want.Indexes) {
		t.Errorf("indexes:\n got %q\nwant %q", got.Indexes, want.Indexes)
	}
	// The primary key and the operation check; PostgreSQL 18 also lists
	// NOT NULL constraints ("n ..."), which the columns above already show.
	var kept []string
	for _, c := range got.Constraints {
		if !strings.HasPrefix(c, "n ") {
			kept = append(kept, c)
		}
	}
	if len(kept) != 2 {
		t.Errorf("constraints: %q", got.Constraints)
	}
}

// The embedded schema.sql and Migrate must produce the same table.
func TestSchemaMatchesMigrate(t *testing.T) {
	ctx := context.Background()
	fromSchema, schemaA := openSchema(t)
	fromMigrate, schemaB := openSchema(t)
	schema := store.Schema
	if partitionedLayout() {
		// What Migrate makes of a new table in this suite, partitions aside.
		var err error
		if schema, err = store.DDL("auditpgx_entry", store.Partitioned(store.Monthly)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fromSchema.ExecContext(ctx, schema); err != nil {
		t.Fatalf("running schema.sql: %v", err)
	}
	if _, err := fromSchema.ExecContext(ctx, schema); err != nil {
		t.Fatalf("running schema.sql again: %v", err)
	}
	if err := store.Migrate(ctx, fromMigrate, "auditpgx_entry"); err != nil {
		t.Fatal(err)
	}
	a := describe(t, fromSchema, schemaA, "auditpgx_entry")
	b := describe(t, fromMigrate, schemaB, "auditpgx_entry")
	for _, part := range []struct {
		name       string
		schema, mg []string
	}{
		{"columns", a.Columns, b.Columns},
		{"constraints", a.Constraints, b.Constraints},
		{"indexes", a.Indexes, b.Indexes},
	} {
		if !reflect.DeepEqual(part.schema, part.mg) {
			t.Errorf("%s differ:\nschema.sql: %q\nMigrate:    %q", part.name, part.schema, part.mg)
		}
	}
}

func TestMigrateConcurrent(t *testing.T) {
	ctx := context.Background()
	db, schema := openSchema(t)
	db.SetMaxOpenConns(8)
	// Several rounds, each a fresh name, so the racers meet on an absent table.
	for round := range 3 {
		table := fmt.Sprintf("entries_%d", round)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { errs[i] = store.Migrate(ctx, db, table) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d, goroutine %d: %v", round, i, err)
			}
		}
		if got := describe(t, db, schema, table); len(got.Indexes) != 7 {
			t.Errorf("round %d: indexes %q", round, got.Indexes)
		}
	}
}

func TestMigrateCustomName(t *testing.T) {
	ctx := context.Background()
	db, schema := openSchema(t)
	if err := store.Migrate(ctx, db, "audit_log"); err != nil {
		t.Fatal(err)
	}
	got := describe(t, db, schema, "audit_log")
	want := []string{
		"CREATE INDEX audit_log_actor_idx ON audit_log USING btree (created_by, id)",
		"CREATE INDEX audit_log_changes_idx ON audit_log USING gin (changes jsonb_path_ops, context jsonb_path_ops)",
		"CREATE INDEX audit_log_created_idx ON audit_log USING btree (created)",
		"CREATE INDEX audit_log_object_idx ON audit_log USING btree (table_name, object_id, id)",
		"CREATE INDEX audit_log_related_idx ON audit_log USING btree (related_table_name, related_object_id, id) WHERE (related_table_name IS NOT NULL)",
		"CREATE INDEX audit_log_tx_idx ON audit_log USING btree (tx_id)",
		"CREATE UNIQUE INDEX audit_log_pkey ON audit_log USING btree (id)",
	}
	want = layoutIndexes(want)
	if !reflect.DeepEqual(got.Indexes, want) {
		t.Errorf("indexes:\n got %q\nwant %q", got.Indexes, want)
	}
	if tableExists(t, db, schema, "auditpgx_entry") {
		t.Error("the default table was created too")
	}
}

// A qualified name lands in its schema, not in the search_path, and names
// that need quoting keep their case and characters.
func TestMigrateQualifiedName(t *testing.T) {
	ctx := context.Background()
	db, searchPath := openSchema(t)
	other := `Audit "` + strings.TrimPrefix(searchPath, "t_") + `"`
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA "`+strings.ReplaceAll(other, `"`, `""`)+`"`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(),
			`DROP SCHEMA "`+strings.ReplaceAll(other, `"`, `""`)+`" CASCADE`); err != nil {
			t.Error(err)
		}
	})
	table := `"` + strings.ReplaceAll(other, `"`, `""`) + `"."Entries"`
	for range 2 {
		if err := store.Migrate(ctx, db, table); err != nil {
			t.Fatal(err)
		}
	}
	got := describe(t, db, other, "Entries")
	if len(got.Indexes) != 7 || !strings.Contains(strings.Join(got.Indexes, "\n"), `"Entries_object_idx"`) {
		t.Errorf("indexes: %q", got.Indexes)
	}
	if tableExists(t, db, searchPath, "Entries") || tableExists(t, db, searchPath, "entries") {
		t.Error("table created in the search_path schema")
	}

	_, err := db.ExecContext(ctx, `INSERT INTO "`+strings.ReplaceAll(other, `"`, `""`)+`"."Entries"
		(operation, table_name, object_id, tx_id) VALUES ('create', 'users', '1', 1)`)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := store.List(ctx, db, store.Query{Table: table})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].TableName != "users" {
		t.Errorf("List(%q) = %+v", table, entries)
	}
}

func TestMigrateMissingSchema(t *testing.T) {
	db, _ := openSchema(t)
	err := store.Migrate(context.Background(), db, "no_such_schema_x.entries")
	if err == nil || !strings.Contains(err.Error(), `"no_such_schema_x.entries"`) {
		t.Errorf("Migrate into a missing schema: %v", err)
	}
}

func TestMigrateLongName(t *testing.T) {
	db, schema := openSchema(t)
	table := strings.Repeat("e", 63)
	if err := store.Migrate(context.Background(), db, table); err != nil {
		t.Fatal(err)
	}
	if got := describe(t, db, schema, table); len(got.Indexes) != 7 {
		t.Errorf("indexes: %q", got.Indexes)
	}
}

func TestMigrateInvalidName(t *testing.T) {
	db, _ := openSchema(t)
	err := store.Migrate(context.Background(), db, "a.b.c")
	if !errors.Is(err, store.ErrInvalidTableName) {
		t.Errorf("Migrate(\"a.b.c\") = %v, want ErrInvalidTableName", err)
	}
}

// In a caller's transaction Migrate neither commits nor rolls back.
func TestMigrateInTx(t *testing.T) {
	ctx := context.Background()
	db, schema := openSchema(t)

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx, tx, "rolled_back"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if tableExists(t, db, schema, "rolled_back") {
		t.Error("Migrate in a rolled-back transaction left a table")
	}

	tx, err = db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx, tx, "committed"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if !tableExists(t, db, schema, "committed") {
		t.Error("Migrate in a committed transaction left no table")
	}
}

func TestMigrateConn(t *testing.T) {
	ctx := context.Background()
	db, schema := openSchema(t)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := store.Migrate(ctx, conn, "via_conn"); err != nil {
		t.Fatal(err)
	}
	// conn is held, so db asks on another connection: the table is committed.
	if !tableExists(t, db, schema, "via_conn") {
		t.Error("no committed table")
	}
}

// A table made by an earlier version, with three indexes, gets the new
// ones from Migrate; its rows stay.
func TestMigrateAddsIndexesToExistingTable(t *testing.T) {
	ctx := context.Background()
	db, schema := openSchema(t)
	_, err := db.ExecContext(ctx, `
		CREATE TABLE auditpgx_entry (
			id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			created timestamptz NOT NULL DEFAULT statement_timestamp(),
			created_by text,
			operation text NOT NULL CHECK (operation IN ('create', 'update', 'delete', 'associate', 'disassociate')),
			table_name text NOT NULL,
			object_id text NOT NULL,
			changes jsonb,
			related_table_name text,
			related_object_id text,
			related_field_name text,
			tx_id bigint NOT NULL,
			statement_fingerprint text
		);
		CREATE INDEX auditpgx_entry_object_idx ON auditpgx_entry (table_name, object_id, id);
		CREATE INDEX auditpgx_entry_created_idx ON auditpgx_entry (created);
		CREATE INDEX auditpgx_entry_tx_idx ON auditpgx_entry (tx_id);
		INSERT INTO auditpgx_entry (operation, table_name, object_id, tx_id) VALUES ('create', 'users', '1', 1);`)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := store.Migrate(ctx, db, "auditpgx_entry"); err != nil {
			t.Fatal(err)
		}
	}
	if got := describe(t, db, schema, "auditpgx_entry"); len(got.Indexes) != 7 {
		t.Errorf("indexes: %q", got.Indexes)
	}
	entries, err := store.List(ctx, db, store.Query{})
	if err != nil || len(entries) != 1 {
		t.Errorf("List = %v, %v", entries, err)
	}
}

// WithoutIndexes leaves indexes out, and a later Migrate with the same
// option does not create them; one without it does. An unknown name is an
// error and creates nothing.
func TestMigrateWithoutIndexes(t *testing.T) {
	ctx := context.Background()
	db, _ := openSchema(t)
	indexes := func() []string {
		t.Helper()
		rows, err := db.QueryContext(ctx, `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'auditpgx_entry' ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			out = append(out, n)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	err := store.Migrate(ctx, db, "auditpgx_entry", store.WithoutIndexes("gin"))
	if err == nil || !strings.Contains(err.Error(), `no index "gin"`) {
		t.Fatalf("WithoutIndexes(\"gin\"): %v, want an error naming it", err)
	}
	if got := indexes(); len(got) != 0 {
		t.Fatalf("a refused Migrate created %v", got)
	}

	without := store.WithoutIndexes("changes", "actor")
	want := []string{"auditpgx_entry_created_idx", "auditpgx_entry_object_idx", "auditpgx_entry_pkey", "auditpgx_entry_related_idx", "auditpgx_entry_tx_idx"}
	for range 2 {
		if err := store.Migrate(ctx, db, "auditpgx_entry", without); err != nil {
			t.Fatal(err)
		}
		if got := indexes(); !reflect.DeepEqual(got, want) {
			t.Fatalf("indexes %v, want %v", got, want)
		}
	}
	if err := store.Migrate(ctx, db, "auditpgx_entry"); err != nil {
		t.Fatal(err)
	}
	if got := indexes(); len(got) != 7 {
		t.Fatalf("Migrate without the option: indexes %v, want all 7", got)
	}
}

// A table made before the context column and suppressed entries gets both
// from its owner's Migrate; a role that does not own it changes nothing,
// and its Migrate returns nil.
func TestMigrateUpgradesOnlyAsOwner(t *testing.T) {
	ctx := context.Background()
	db, schema := openSchema(t)
	role := "app_" + schema
	if err := store.Migrate(ctx, db, "auditpgx_entry"); err != nil {
		t.Fatal(err)
	}
	fresh := describe(t, db, schema, "auditpgx_entry")
	_, err := db.ExecContext(ctx, `
		ALTER TABLE auditpgx_entry DROP COLUMN context,
			DROP CONSTRAINT auditpgx_entry_operation_check,
			ADD CONSTRAINT auditpgx_entry_operation_check CHECK (operation IN ('create', 'update', 'delete', 'associate', 'disassociate'));
		CREATE ROLE `+role+`;
		GRANT USAGE ON SCHEMA `+schema+` TO `+role+`;
		GRANT SELECT, INSERT ON auditpgx_entry TO `+role)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.ExecContext(ctx, `DROP OWNED BY `+role+`; DROP ROLE `+role) //nolint:errcheck // best effort
	})
	old := describe(t, db, schema, "auditpgx_entry")

	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `SET ROLE `+role); err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx, conn, "auditpgx_entry"); err != nil {
		t.Fatalf("Migrate by a role that does not own the table: %v", err)
	}
	if _, err := conn.ExecContext(ctx, `RESET ROLE`); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if got := describe(t, db, schema, "auditpgx_entry"); !reflect.DeepEqual(got, old) {
		t.Errorf("changed by a role that does not own it:\n%v\n%v", got, old)
	}

	if err := store.Migrate(ctx, db, "auditpgx_entry"); err != nil {
		t.Fatal(err)
	}
	if got := describe(t, db, schema, "auditpgx_entry"); !reflect.DeepEqual(got, fresh) {
		t.Errorf("upgraded table differs from a new one:\n%v\n%v", got, fresh)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO auditpgx_entry (operation, table_name, object_id, tx_id, changes)
		VALUES ('suppressed', 'users', '', 1, '{"rows": 2}')`); err != nil {
		t.Fatal(err)
	}
}
