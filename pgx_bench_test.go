package auditpgx_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/internal/pgtest"
)

// BenchmarkPgxCopyFrom copies 100,000 rows into a table: with pgx alone
// (plain); through the pgx front into a registered table, with the table
// sink (auditpgx) and the WAL sink (auditpgx-wal); and with pgx into a
// table whose row trigger writes each row's create entry into the same
// entry table (trigger), as auditbench's row trigger does. The tables are
// emptied between runs. Compare ns/op.
func BenchmarkPgxCopyFrom(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	raw, pool := pgxBenchEnv(b, `CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, price numeric(10,2));
		CREATE TABLE trig_items (LIKE items INCLUDING ALL)`)
	if _, err := raw.Exec(ctx, `CREATE FUNCTION trig_entry() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
			INSERT INTO auditpgx_entry (created, created_by, operation, table_name, object_id, changes, tx_id)
			VALUES (statement_timestamp(), 'bench', 'create', TG_TABLE_NAME, NEW.id::text,
				jsonb_build_object('added_fields', to_jsonb(NEW), 'removed_fields', '{}'::jsonb, 'changed_fields', '{}'::jsonb),
				pg_current_xact_id()::text::bigint);
			RETURN NULL; END $$;
		CREATE TRIGGER trig_entry AFTER INSERT ON trig_items FOR EACH ROW EXECUTE FUNCTION trig_entry()`); err != nil {
		b.Fatal(err)
	}
	slot := fmt.Sprintf("bench_%08x", rand.Uint32())
	if _, err := raw.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, slot); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { raw.Exec(context.Background(), `SELECT pg_drop_replication_slot($1)`, slot) }) //nolint:errcheck // the database goes too
	walReg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{Sink: auditpgx.WALSink{Slot: slot}})
	if err != nil {
		b.Fatal(err)
	}
	if err := walReg.RegisterTable("items"); err != nil {
		b.Fatal(err)
	}
	walPool, err := auditpgx.WrapPool(raw, auditpgx.WithRegistry(walReg))
	if err != nil {
		b.Fatal(err)
	}
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{int64(i + 1), fmt.Sprintf("item %d", i+1), "12.50"}
	}
	cols := []string{"id", "name", "price"}
	for _, c := range []struct {
		name  string
		table string
		copy  func(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error)
	}{
		{"plain", "items", raw.CopyFrom},
		{"auditpgx", "items", pool.CopyFrom},
		{"auditpgx-wal", "items", walPool.CopyFrom},
		{"trigger", "trig_items", raw.CopyFrom},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				if _, err := raw.Exec(ctx, `TRUNCATE items, trig_items, auditpgx_entry`); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				got, err := c.copy(ctx, pgx.Identifier{c.table}, cols, pgx.CopyFromRows(rows))
				if err != nil || got != n {
					b.Fatalf("copied %d, %v", got, err)
				}
			}
		})
	}
}

// BenchmarkPgxFront is a single-row UPDATE by key, and a SELECT by key
// (a plan-cache hit, passed through), through a plain pool and through
// the pgx front.
func BenchmarkPgxFront(b *testing.B) {
	ctx := context.Background()
	raw, pool := pgxBenchEnv(b, `CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL);
		INSERT INTO items SELECT g, 'i' || g FROM generate_series(1, 1000) g`)
	var name string
	for _, c := range []struct {
		name string
		run  func(ctx context.Context, i int) error
	}{
		{"update/plain", func(ctx context.Context, i int) error {
			_, err := raw.Exec(ctx, `UPDATE items SET name = $1 WHERE id = $2`, fmt.Sprintf("n%d", i), int64(i%1000+1))
			return err
		}},
		{"update/auditpgx", func(ctx context.Context, i int) error {
			_, err := pool.Exec(ctx, `UPDATE items SET name = $1 WHERE id = $2`, fmt.Sprintf("n%d", i), int64(i%1000+1))
			return err
		}},
		{"select/plain", func(ctx context.Context, i int) error {
			return raw.QueryRow(ctx, `SELECT name FROM items WHERE id = $1`, int64(i%1000+1)).Scan(&name)
		}},
		{"select/auditpgx", func(ctx context.Context, i int) error {
			return pool.QueryRow(ctx, `SELECT name FROM items WHERE id = $1`, int64(i%1000+1)).Scan(&name)
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				if err := c.run(ctx, i); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// pgxBenchEnv is a fresh database set up by ddl, with items registered and
// the entry table made: a plain pool on it and the pool audited.
func pgxBenchEnv(b *testing.B, ddl string) (*pgxpool.Pool, *auditpgx.Pool) {
	b.Helper()
	dsn := pgtest.NewDatabase(b)
	ctx := context.Background()
	raw, err := pgxpool.New(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(raw.Close)
	if _, err := raw.Exec(ctx, ddl); err != nil {
		b.Fatal(err)
	}
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{})
	if err != nil {
		b.Fatal(err)
	}
	if err := reg.RegisterTable("items"); err != nil {
		b.Fatal(err)
	}
	if err := auditpgx.Migrate(ctx, openWith(b, dsn, reg), auditpgx.WithRegistry(reg)); err != nil {
		b.Fatal(err)
	}
	pool, err := auditpgx.WrapPool(raw, auditpgx.WithRegistry(reg))
	if err != nil {
		b.Fatal(err)
	}
	return raw, pool
}
