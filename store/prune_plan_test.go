package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/store"
)

// A listing bounded by Since and Until reads only the partitions of its
// time range, whether the server plans it for its parameters (as for a
// statement sent once) or once for any (as for a prepared statement used
// often, whose partitions are then pruned when it starts).
func TestListPrunesPartitions(t *testing.T) {
	ctx := context.Background()
	db, _ := openSchema(t)
	require.NoError(t, store.Migrate(ctx, db, "auditpgx_entry", store.Partitioned(store.Monthly)))
	_, err := store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{Now: utc("2024-01-01T00:00:00Z"), Future: 5})
	require.NoError(t, err)
	// Six months, January to June 2024, an entry every ten minutes.
	_, err = db.ExecContext(ctx, `INSERT INTO auditpgx_entry (created, created_by, operation, table_name, object_id, tx_id)
		SELECT timestamptz '2024-01-01 00:00:00+00' + i * interval '10 minutes', 'actor' || (i % 50), 'update',
			'table' || (i % 20), (i % 2000)::text, i
		FROM generate_series(0, 26207) i`)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `VACUUM ANALYZE auditpgx_entry`)
	require.NoError(t, err)

	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	scanned := regexp.MustCompile(`(?m)Scan(?: Backward)?(?: using \S+)? on (auditpgx_entry\w*)`)
	for _, tc := range []struct {
		name  string
		q     store.Query
		parts []string
	}{
		{"within a month", store.Query{Since: utc("2024-03-10T00:00:00Z"), Until: utc("2024-03-20T00:00:00Z")},
			[]string{"auditpgx_entry_p2024_03"}},
		{"a whole month", store.Query{Since: utc("2024-03-01T00:00:00Z"), Until: utc("2024-04-01T00:00:00Z")},
			[]string{"auditpgx_entry_p2024_03"}},
		{"across months, newest first", store.Query{Since: utc("2024-02-15T00:00:00Z"), Until: utc("2024-04-15T00:00:00Z"), Descending: true},
			[]string{"auditpgx_entry_p2024_02", "auditpgx_entry_p2024_03", "auditpgx_entry_p2024_04"}},
		{"an actor in a week", store.Query{Actor: "actor7", Since: utc("2024-05-06T00:00:00Z"), Until: utc("2024-05-13T00:00:00Z")},
			[]string{"auditpgx_entry_p2024_05"}},
		{"an object in two months", store.Query{TableName: "table7", ObjectID: "1227",
			Since: utc("2024-05-20T00:00:00Z"), Until: utc("2024-06-20T00:00:00Z")},
			[]string{"auditpgx_entry_p2024_05", "auditpgx_entry_p2024_06"}},
		{"a stream page", store.Query{Since: utc("2024-06-01T00:00:00Z"), Until: utc("2024-06-02T00:00:00Z"), Descending: true, Limit: 100, BeforeID: 25000},
			[]string{"auditpgx_entry_p2024_06"}},
	} {
		for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
			t.Run(tc.name+", "+mode, func(t *testing.T) {
				_, err := conn.ExecContext(ctx, `SET plan_cache_mode = `+mode)
				require.NoError(t, err)
				query, args := store.ListSQL(tc.q)
				// A prepared statement, so that the generic plan is one.
				_, err = conn.ExecContext(ctx, `PREPARE listing AS `+query)
				require.NoError(t, err)
				defer func() {
					_, err := conn.ExecContext(ctx, `DEALLOCATE listing`)
					require.NoError(t, err)
				}()
				// EXECUTE takes no parameters of its own: the values as
				// constants.
				values := make([]string, len(args))
				for i, a := range args {
					switch v := a.(type) {
					case time.Time:
						values[i] = "'" + v.Format(time.RFC3339Nano) + "'"
					case string:
						values[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
					default:
						values[i] = fmt.Sprint(v)
					}
				}
				plan := explainConn(t, conn, `EXECUTE listing (`+strings.Join(values, ", ")+`)`)
				t.Log(plan)
				var got []string
				for _, m := range scanned.FindAllStringSubmatch(plan, -1) {
					if !slices.Contains(got, m[1]) {
						got = append(got, m[1])
					}
				}
				slices.Sort(got)
				require.Equal(t, tc.parts, got, "query: %s\nplan:\n%s", query, plan)
				requireNoSeqScan(t, db, plan)

				entries, err := store.List(ctx, db, tc.q)
				require.NoError(t, err)
				require.NotEmpty(t, entries)
				for _, e := range entries {
					require.False(t, e.Created.Before(tc.q.Since) || !e.Created.Before(tc.q.Until), "entry %d at %s", e.ID, e.Created)
				}
			})
		}
	}
}

func explainConn(t *testing.T, conn *sql.Conn, query string) string {
	t.Helper()
	rows, err := conn.QueryContext(context.Background(), "EXPLAIN "+query)
	require.NoError(t, err)
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		lines = append(lines, line)
	}
	require.NoError(t, rows.Err())
	return strings.Join(lines, "\n")
}
