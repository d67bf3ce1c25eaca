package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/auditpgx/auditpgx/internal/pgtest"
)

// The floor variants write what auditpgx writes, by other statements: one
// entry per row written, with the same operation, object, actor and, for
// creates and deletes, the same changes. An UPDATE's floor entry records
// every assigned column (auditpgx only those that changed, and no entry
// when none did): its new values hold auditpgx's. FloorDiff's entries,
// updates included, are auditpgx's.
func TestFloorEntries(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{DSN: pgtest.NewDatabase(t), Rows: 100, BulkInsert: 20, Conns: 2,
		Variants: []string{Auditpgx, Floor, FloorPreImage, FloorDiff}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	a := s.Variant(Auditpgx)
	// FloorDiff compares by the type OIDs auditpgx reads from the catalog:
	// columnTypeOIDs must be the table's.
	var oids []uint32
	if err := s.admin.QueryRow(ctx, `SELECT array_agg(atttypid ORDER BY attnum) FROM pg_catalog.pg_attribute
		WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, a.Schema+"."+Table).Scan(&oids); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(oids) != fmt.Sprint(columnTypeOIDs) {
		t.Fatalf("the table's type OIDs are %v, columnTypeOIDs %v", oids, columnTypeOIDs)
	}
	for _, name := range []string{"insert", "update", "delete", "gorm-create", "gorm-save", "prepared", "concurrent", "bulk-insert", "bulk-update"} {
		w := WorkloadByName(name)
		for _, v := range s.Variants {
			if err := s.adminExec(ctx, v, `TRUNCATE auditpgx_entry`); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Run(ctx, s, v, 1, 3); err != nil {
				t.Fatal(err)
			}
		}
		// Under the concurrent workload, which row gets which id depends
		// on the connections' timing: its entries are compared without it.
		byContent := name == "concurrent"
		want := s.entryDigest(ctx, t, a, byContent, false)
		if len(want) == 0 && name != "update" && name != "prepared" && name != "gorm-save" && name != "bulk-update" {
			t.Fatalf("%s: auditpgx wrote no create or delete entry", name)
		}
		all := s.entryDigest(ctx, t, a, byContent, true)
		if got := s.entryDigest(ctx, t, s.Variant(FloorDiff), byContent, true); fmt.Sprint(got) != fmt.Sprint(all) {
			t.Errorf("%s: %s wrote\n%q\nauditpgx\n%q", name, FloorDiff, got, all)
		}
		for _, f := range []string{Floor, FloorPreImage} {
			v := s.Variant(f)
			if got := s.entryDigest(ctx, t, v, byContent, false); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: %s wrote\n%q\nauditpgx\n%q", name, f, got, want)
			}
			var updates, floorUpdates, missing int
			err := s.admin.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+a.Schema+`.auditpgx_entry WHERE operation = 'update'),
				(SELECT count(*) FROM `+v.Schema+`.auditpgx_entry WHERE operation = 'update'),
				(SELECT count(*) FROM `+a.Schema+`.auditpgx_entry AS a WHERE operation = 'update' AND NOT EXISTS (
					SELECT FROM `+v.Schema+`.auditpgx_entry AS f WHERE f.operation = 'update' AND f.object_id = a.object_id
						AND f.created_by = a.created_by AND (SELECT coalesce(jsonb_object_agg(k, c->1), '{}') FROM jsonb_each(f.changes->'changed_fields') AS e(k, c)) @> (SELECT coalesce(jsonb_object_agg(k, c->1), '{}') FROM jsonb_each(a.changes->'changed_fields') AS e(k, c))))`).Scan(&updates, &floorUpdates, &missing)
			if err != nil {
				t.Fatal(err)
			}
			if missing > 0 || floorUpdates < updates {
				t.Errorf("%s: %s wrote %d update entries for auditpgx's %d, and %d of auditpgx's have no floor entry holding their new values",
					name, f, floorUpdates, updates, missing)
			}
			if updates > 0 {
				t.Logf("%s: %s: %d update entries, auditpgx %d", name, f, floorUpdates, updates)
			}
		}
	}
}

// entryDigest lists v's create and delete entries, and with updates its
// update entries too, as a floor must match them: operation, table,
// object, actor and changes, ordered by operation, object and then
// content; byContent leaves the row's id out of the object and the
// changes, and orders by the rest.
func (s *Suite) entryDigest(ctx context.Context, t *testing.T, v *Variant, byContent, updates bool) []string {
	t.Helper()
	which := `operation <> 'update'`
	if updates {
		which = `true`
	}
	query := `SELECT d FROM (SELECT operation, object_id, concat_ws(' ', operation, table_name, object_id, created_by, changes::text) AS d
		FROM ` + v.Schema + `.auditpgx_entry WHERE ` + which + `) AS e ORDER BY operation, object_id::bigint, d COLLATE "C"`
	if byContent {
		query = `SELECT d FROM (SELECT concat_ws(' ', operation, table_name, created_by,
			(changes #- '{added_fields,id}' #- '{removed_fields,id}')::text) AS d
		FROM ` + v.Schema + `.auditpgx_entry WHERE ` + which + `) AS e ORDER BY d COLLATE "C"`
	}
	rows, err := s.admin.Query(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}
