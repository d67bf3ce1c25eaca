// Schemas and partitions: a partitioned table is audited under its
// parent's registration, and unqualified names follow the search_path.

package auditpgx_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
)

func TestPartitionsAreAuditedUnderTheParent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `CREATE TABLE events (id int, at date, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
		CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
		CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
		CREATE TABLE animals (id int PRIMARY KEY, name text);
		CREATE TABLE dogs (good bool) INHERITS (animals);`,
		func(r *auditpgx.Registry) error {
			if err := r.RegisterTable("events"); err != nil {
				return err
			}
			return r.RegisterTable("animals")
		})
	for _, q := range []string{
		`INSERT INTO events VALUES (1, '2024-05-01', 'a'), (2, '2025-05-01', 'b')`,
		`UPDATE events_2025 SET v = 'b2'`,                  // a partition, addressed directly
		`UPDATE events SET at = '2025-06-01' WHERE id = 1`, // moves between partitions
		`CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`,
		`INSERT INTO events_2026 VALUES (3, '2026-02-02', 'c')`, // a partition created later
		`INSERT INTO dogs VALUES (7, 'rex', true)`,              // an inheritance child
		`UPDATE animals SET name = 'Rex' WHERE id = 7`,          // through the parent
		`DELETE FROM ONLY animals WHERE id = 7`,                 // ONLY: not the child's row
	} {
		_, err := e.db.ExecContext(e.ctx, q)
		require.NoError(t, err, q)
	}
	requireEntries(t, []entry{
		want("create", "events", `[1,"2024-05-01"]`, `{"added_fields":{"id":1,"at":"2024-05-01","v":"a"},"removed_fields":{},"changed_fields":{}}`),
		want("create", "events", `[2,"2025-05-01"]`, `{"added_fields":{"id":2,"at":"2025-05-01","v":"b"},"removed_fields":{},"changed_fields":{}}`),
		want("update", "events", `[2,"2025-05-01"]`, `{"added_fields":{},"removed_fields":{},"changed_fields":{"v":["b","b2"]}}`),
		want("update", "events", `[1,"2025-06-01"]`, `{"added_fields":{},"removed_fields":{},"changed_fields":{"at":["2024-05-01","2025-06-01"]}}`),
		want("create", "events", `[3,"2026-02-02"]`, `{"added_fields":{"id":3,"at":"2026-02-02","v":"c"},"removed_fields":{},"changed_fields":{}}`),
		want("create", "animals", `7`, `{"added_fields":{"id":7,"name":"rex"},"removed_fields":{},"changed_fields":{}}`),
		want("update", "animals", `7`, `{"added_fields":{},"removed_fields":{},"changed_fields":{"name":["rex","Rex"]}}`),
	}, e.entries())
}

func TestSearchPathIsHonoured(t *testing.T) {
	t.Parallel()
	dsn, schema := pgtestSchema(t)
	e := newEnvDSN(t, dsn, schema, `CREATE SCHEMA `+schema+`_app;
		CREATE TABLE `+schema+`_app.projects (id int PRIMARY KEY, name text);
		CREATE TABLE projects (id int PRIMARY KEY, name text, other text);`,
		func(r *auditpgx.Registry) error { return r.RegisterTable(schema + "_app.projects") })
	// The connection's default search_path finds the unregistered table.
	_, err := e.db.ExecContext(e.ctx, `INSERT INTO projects VALUES (1, 'public one', 'x')`)
	require.NoError(t, err)
	require.Equal(t, 0, e.countEntries())

	conn, err := e.db.Conn(e.ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(e.ctx, `SET search_path TO `+schema+`_app, `+schema)
	require.NoError(t, err)
	_, err = conn.ExecContext(e.ctx, `INSERT INTO projects VALUES (1, 'app one')`)
	require.NoError(t, err)
	require.Equal(t, 1, e.countEntries())
	// Same text again on the default connection pool: still the other table.
	_, err = e.db.ExecContext(e.ctx, `INSERT INTO projects VALUES (2, 'public two', 'y')`)
	require.NoError(t, err)
	require.Equal(t, 1, e.countEntries())
	_, err = conn.ExecContext(e.ctx, `RESET search_path`)
	require.NoError(t, err)
	_, err = conn.ExecContext(e.ctx, `INSERT INTO projects VALUES (3, 'public three', 'z')`)
	require.NoError(t, err)
	require.Equal(t, 1, e.countEntries())
	got := e.entries()
	require.Equal(t, schema+"_app.projects", got[0].Table)
}
