// Package store owns the entry table that auditpgx writes to: its schema, its
// migration, and reading entries back.
//
// Create the table once at start-up (or apply [Schema] with a migration tool),
// then page through the activity stream:
//
//	if err := store.Migrate(ctx, db, "auditpgx_entry"); err != nil {
//		return err
//	}
//	q := store.Query{TableName: "users", ObjectID: "42"}
//	for {
//		entries, err := store.List(ctx, db, q)
//		if err != nil {
//			return err
//		}
//		if len(entries) == 0 {
//			break
//		}
//		for _, e := range entries {
//			fmt.Println(e.ID, e.Operation, e.CreatedBy)
//		}
//		q.AfterID = entries[len(entries)-1].ID
//	}
//
// Entry table names are given as "table" or "schema.table". The name is split
// at the dot and each part is used literally, case included: it is quoted, not
// folded, so "Audit.Entries" names the table "Audit"."Entries".
package store
