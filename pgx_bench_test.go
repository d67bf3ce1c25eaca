package auditpgx_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/internal/pgtest"
)

// BenchmarkPgxCopyFrom copies 100,000 rows into a table: with pgx alone
// (plain), through the pgx front into a registered table (auditpgx), and
// with pgx into a table whose row trigger writes each row to a log
// (trigger). The table is emptied between runs. Compare ns/op.
func BenchmarkPgxCopyFrom(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	raw, pool := pgxBenchEnv(b, `CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, price numeric(10,2));
		CREATE TABLE trig_items (LIKE items INCLUDING ALL);
		CREATE TABLE trig_log (id bigserial PRIMARY KEY, created timestamptz NOT NULL DEFAULT now(), row_data jsonb NOT NULL);
		CREATE FUNCTION trig_log() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO trig_log (row_data) VALUES (to_jsonb(NEW)); RETURN NULL; END $$;
		CREATE TRIGGER trig_log AFTER INSERT ON trig_items FOR EACH ROW EXECUTE FUNCTION trig_log()`)
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
		{"trigger", "trig_items", raw.CopyFrom},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				if _, err := raw.Exec(ctx, `TRUNCATE items, trig_items, trig_log, auditpgx_entry`); err != nil {
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
