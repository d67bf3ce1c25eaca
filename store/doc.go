// Package store owns the entry table that auditpgx writes to: its schema, its
// migration, and reading entries back.
//
// Create the table once at start-up (or apply [Schema] with a migration tool),
// then page through the activity stream, newest first:
//
//	if err := store.Migrate(ctx, db, "auditpgx_entry"); err != nil {
//		return err
//	}
//	q := store.Query{TableName: "users", Actor: "alice", Descending: true}
//	for {
//		page, err := store.ListPage(ctx, db, q)
//		if err != nil {
//			return err
//		}
//		for _, e := range page.Entries {
//			fmt.Println(e.ID, e.Operation, e.ObjectID)
//		}
//		if page.Next == "" {
//			break
//		}
//		q.Cursor = page.Next
//	}
//
// One object's story is [History] (its entries, oldest first) and [AsOf]
// (its audited columns at an instant, rebuilt from the entries):
//
//	entries, err := store.History(ctx, db, "users", "42")
//	before, err := store.AsOf(ctx, db, "users", "42", time.Now().Add(-24*time.Hour))
//
// An object that existed before auditing began has no known state until
// its table is baselined (auditpgx.Baseline writes one [OpSnapshot] entry
// per row, then a marker); until then AsOf returns an *[IncompleteError]
// for it once an update of it is recorded. Around a baseline, entries
// apply in id order except that those its snapshot did not see come after
// it (see [History]).
//
// [Replay] and [ReplayTable] rebuild whole tables the same way; with
// [Snapshot] and [EqualStates] a test can check that the entries account for
// every row.
//
// [Revert] plans the SQL that undoes one entry or one transaction's entries:
// an update's columns set back, a deleted row inserted again, a created row
// deleted, a link deleted or restored in the join table a [RevertLink]
// names. It refuses what the entries cannot restore (redacted and excluded
// values, truncates, baselines) and objects changed since. Run the
// statements in one transaction through the auditpgx driver, and the revert
// is recorded too:
//
//	stmts, err := store.Revert(ctx, db, store.RevertTx(765))
//	ctx = auditpgx.WithReason(ctx, "revert of tx 765")
//	for _, s := range stmts {
//		_, err = tx.ExecContext(ctx, s.SQL, s.Args...)
//	}
//
// [Seal] makes later changes to the entries evident: it hash-chains the
// committed entries in id order into checkpoints of a seal table
// ([MigrateSeal]), optionally signed with an Ed25519 key the database never
// sees, and [Verify] recomputes the chain and returns a *[VerifyError]
// naming the first entry edited, deleted or inserted since, or the
// checkpoint altered (docs/SECURITY.md):
//
//	_, err := store.Seal(ctx, db, store.SealOptions{Signer: key})
//	r, err := store.Verify(ctx, db, store.VerifyOptions{PublicKey: pub})
//	if errors.Is(err, store.ErrTampered) { ... }
//
// The entry table may be partitioned by time, one partition a month, week
// or day ([Partitioned]); [Maintain], run from cron or at start-up at least
// once a period, makes the partitions ahead of time (docs/RETENTION.md).
// Every function here reads either layout the same way:
//
//	err := store.Migrate(ctx, db, "auditpgx_entry", store.Partitioned(store.Monthly))
//	res, err := store.Maintain(ctx, db, "auditpgx_entry", store.MaintainOptions{})
//
// [Prune] removes old entries, whole partitions at a time or in batches,
// archiving them first if asked; [Restore] loads an archive back.
//
// Entry table names are given as "table" or "schema.table". The name is split
// at the dot and each part is used literally, case included: it is quoted, not
// folded, so "Audit.Entries" names the table "Audit"."Entries". Audited table
// names (table_name) are compared as the entries spell them.
package store
