package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/store"
)

// retentionSQL returns the SQL block of docs/RETENTION.md that follows the
// marker <!-- sql:name -->, with the cut and the application role
// replaced.
func retentionSQL(t *testing.T, name string, cut time.Time, role string) string {
	t.Helper()
	s := docSQL(t, "RETENTION.md", name, map[string]string{"app_user": role})
	return regexp.MustCompile(`'\d{4}-\d\d-\d\d 00:00:00\+00'`).ReplaceAllString(s, "'"+cut.Format("2006-01-02 15:04:05-07")+"'")
}

// allEntries walks every entry, oldest first.
func allEntries(t *testing.T, db store.Querier) []store.Entry {
	t.Helper()
	var out []store.Entry
	q := store.Query{Limit: 1000}
	for {
		page, err := store.ListPage(context.Background(), db, q)
		require.NoError(t, err)
		out = append(out, page.Entries...)
		if page.Next == "" {
			return out
		}
		q.Cursor = page.Next
	}
}

// The procedure of docs/RETENTION.md, run as written on an unpartitioned
// entry table that holds entries from 2024 and from now, while an
// application role writes through the driver, makes it the first
// partition of a partitioned entry table: the entries read as before,
// the writes go on, and ids continue.
func TestRetentionProcedure(t *testing.T) {
	ctx := context.Background()
	dsn, schema := pgtest.NewSchema(t)
	role := "app_" + strconv.FormatUint(rand.Uint64(), 36)
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	// Registered before the application's pool, so it runs after it closes.
	t.Cleanup(func() {
		_, err := db.Exec(`DROP OWNED BY ` + role + ` CASCADE; DROP ROLE ` + role)
		require.NoError(t, err)
		db.Close()
	})

	// The unpartitioned table, whatever the suite's layout, set up as
	// docs/SECURITY.md sets it up.
	_, err = db.ExecContext(ctx, store.Schema+`
		CREATE TABLE notes (id int PRIMARY KEY, body text);
		CREATE ROLE `+role+` NOLOGIN;
		GRANT USAGE ON SCHEMA `+schema+` TO `+role+`;
		GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO `+role+`;
		REVOKE ALL ON auditpgx_entry FROM PUBLIC;
		GRANT SELECT, INSERT ON auditpgx_entry TO `+role+`;
		GRANT USAGE ON SEQUENCE auditpgx_entry_id_seq TO `+role+`;
		INSERT INTO auditpgx_entry (created, created_by, operation, table_name, object_id, changes, tx_id)
		SELECT timestamptz '2024-01-01 00:00:00+00' + i * interval '1 hour', 'actor' || (i % 7), 'update',
			'table' || (i % 10), (i % 300)::text, '{"changed_fields": {"n": [1, 2]}}', i
		FROM generate_series(1, 3000) i`)
	require.NoError(t, err)

	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{})
	require.NoError(t, err)
	require.NoError(t, reg.RegisterTable("notes"))
	connector, err := auditpgx.NewConnector(dsn, auditpgx.WithRegistry(reg),
		auditpgx.WithStdlibOptions(stdlib.OptionAfterConnect(func(ctx context.Context, c *pgx.Conn) error {
			_, err := c.Exec(ctx, `SET ROLE `+role)
			return err
		})))
	require.NoError(t, err)
	app := sql.OpenDB(connector)
	defer app.Close()
	app.SetMaxOpenConns(2)
	alice := auditpgx.WithActor(ctx, "alice")
	exec := func(q string, args ...any) {
		t.Helper()
		_, err := app.ExecContext(alice, q, args...)
		require.NoError(t, err, q)
	}
	exec(`INSERT INTO notes VALUES (1, 'one'), (2, 'two')`)
	exec(`UPDATE notes SET body = 'uno' WHERE id = 1`)
	exec(`DELETE FROM notes WHERE id = 2`)

	// An application that goes on writing throughout.
	var (
		written atomic.Int64
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		errs    = make(chan error, 1)
	)
	wg.Go(func() {
		for i := 100; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := app.ExecContext(alice, `INSERT INTO notes VALUES ($1, 'written meanwhile')`, i); err != nil {
				errs <- fmt.Errorf("write %d: %w", i, err)
				return
			}
			written.Add(1)
		}
	})
	waitFor := func(n int64) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); written.Load() < n; {
			require.True(t, time.Now().Before(deadline), "the application wrote %d of %d", written.Load(), n)
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(5)
	before := allEntries(t, db)
	history, err := store.History(ctx, db, "notes", "1")
	require.NoError(t, err)

	// The cut: the beginning of the month after next, safely ahead.
	var now time.Time
	require.NoError(t, db.QueryRowContext(ctx, `SELECT statement_timestamp()`).Scan(&now))
	cut := time.Date(now.UTC().Year(), now.UTC().Month()+2, 1, 0, 0, 0, 0, time.UTC)

	// The application role cannot prune.
	_, err = store.Prune(ctx, app, "auditpgx_entry", store.PruneOptions{Before: utc("2024-02-01T00:00:00Z")})
	require.ErrorContains(t, err, "SQLSTATE 42501")

	// 1. Up to date.
	require.NoError(t, store.Migrate(ctx, db, "auditpgx_entry"))
	// 2. Prepare, one statement at a time.
	for _, stmt := range strings.Split(strings.TrimSpace(retentionSQL(t, "prepare", cut, role)), ";\n") {
		_, err := db.ExecContext(ctx, stmt)
		require.NoError(t, err, stmt)
	}
	waitFor(written.Load() + 5)
	// 3. Switch. Its DDL is store.DDL's.
	switchSQL := retentionSQL(t, "switch", cut, role)
	ddl, err := store.DDL("auditpgx_entry", store.Partitioned(store.Monthly))
	require.NoError(t, err)
	require.Contains(t, switchSQL, ddl, "docs/RETENTION.md's switch creates the table as store.DDL does")
	began := time.Now()
	_, err = db.ExecContext(ctx, switchSQL)
	require.NoError(t, err)
	t.Logf("the switch took %v", time.Since(began))
	// 4. Maintain.
	res, err := store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{})
	require.NoError(t, err)
	month := func(t time.Time) string { return "auditpgx_entry_p" + t.Format("2006_01") }
	require.Equal(t, []string{month(cut), month(cut.AddDate(0, 1, 0)), "auditpgx_entry_default"}, res.Created)
	require.Equal(t, []string{month(cut.AddDate(0, -2, 0)), month(cut.AddDate(0, -1, 0))}, res.Overlapping)

	waitFor(written.Load() + 5)
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}

	// The entries read as before, and the writes made meanwhile follow
	// them, ids in order.
	after := allEntries(t, db)
	require.Equal(t, before, after[:len(before)])
	meanwhile := 0
	for i, e := range after {
		if i > 0 {
			require.Less(t, after[i-1].ID, e.ID)
		}
		if n, _ := strconv.Atoi(e.ObjectID); e.TableName == "notes" && n >= 100 {
			meanwhile++
		}
	}
	require.Equal(t, int(written.Load()), meanwhile, "an entry for every write made meanwhile")
	t.Logf("%d writes made meanwhile", meanwhile)
	got, err := store.History(ctx, db, "notes", "1")
	require.NoError(t, err)
	require.Equal(t, history, got)

	// Writes through the driver go on; their ids too.
	last := after[len(after)-1].ID
	exec(`UPDATE notes SET body = 'eins' WHERE id = 1`)
	got, err = store.History(ctx, db, "notes", "1")
	require.NoError(t, err)
	require.Len(t, got, len(history)+1)
	require.Equal(t, last+1, got[len(got)-1].ID)
	// Entries after the cut land in the new partitions, earlier ones
	// not covered by any in the DEFAULT one.
	_, err = db.ExecContext(ctx, `INSERT INTO auditpgx_entry (created, operation, table_name, object_id, tx_id)
		VALUES ($1, 'create', 'later', '1', 1), ($2, 'create', 'later', '2', 1)`, cut.Add(time.Hour), cut.AddDate(1, 0, 0))
	require.NoError(t, err)
	var where []string
	rows, err := db.QueryContext(ctx, `SELECT tableoid::regclass::text FROM auditpgx_entry WHERE table_name = 'later' ORDER BY id`)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		where = append(where, s)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{month(cut), "auditpgx_entry_default"}, where)

	var legacy string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT c.relname || ' ' || pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'auditpgx_entry'::regclass AND c.relname = 'auditpgx_entry_legacy'`).Scan(&legacy))
	require.True(t, strings.HasPrefix(legacy, "auditpgx_entry_legacy FOR VALUES FROM (MINVALUE) TO ("), legacy)
	// The legacy partition holds every index of the table, attached.
	var indexes int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM pg_index i JOIN pg_inherits h ON h.inhrelid = i.indexrelid
		WHERE i.indrelid = 'auditpgx_entry_legacy'::regclass`).Scan(&indexes))
	require.Equal(t, 7, indexes)

	// The application role reaches the partitions only through the
	// partitioned table, where it may read and insert, no more.
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, `SET ROLE `+role)
	require.NoError(t, err)
	for _, q := range []string{
		`DELETE FROM ` + month(cut),
		`DELETE FROM auditpgx_entry_legacy`,
		`INSERT INTO auditpgx_entry_default (operation, table_name, object_id, tx_id) VALUES ('create', 'x', '1', 1)`,
		`UPDATE auditpgx_entry SET created_by = 'mallory'`,
		`DELETE FROM auditpgx_entry`,
		`ALTER TABLE auditpgx_entry DETACH PARTITION auditpgx_entry_legacy`,
	} {
		_, err := conn.ExecContext(ctx, q)
		require.ErrorContains(t, err, "SQLSTATE 42501", q)
	}
	_, err = conn.ExecContext(ctx, `RESET ROLE`)
	require.NoError(t, err)

	// Migrate, with the option or without, has nothing left to do, and the
	// application role may call it.
	require.NoError(t, store.Migrate(ctx, db, "auditpgx_entry", store.Partitioned(store.Monthly)))
	require.NoError(t, auditpgx.Migrate(ctx, app, auditpgx.WithRegistry(reg)))
}
