package store_test

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"log"

	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/store"
)

// A sealing job signs checkpoints with a private key kept outside the
// database; whoever verifies holds the public key. An entry changed
// afterwards, here by the table's owner, is named.
func ExampleSeal() {
	ctx := context.Background()
	dsn, done := pgtest.ExampleSchema("seal")
	defer done()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if err := store.Migrate(ctx, db, "auditpgx_entry"); err != nil {
		log.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO auditpgx_entry (operation, table_name, object_id, changes, tx_id)
		SELECT 'create', 'users', i::text, jsonb_build_object('added_fields', jsonb_build_object('id', i)), 1
		FROM generate_series(1, 2500) AS i`); err != nil {
		log.Fatal(err)
	}
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		log.Fatal(err)
	}

	if err := store.MigrateSeal(ctx, db, ""); err != nil {
		log.Fatal(err)
	}
	s, err := store.Seal(ctx, db, store.SealOptions{Signer: key})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("sealed %d entries in %d checkpoints\n", s.Entries, s.Checkpoints)

	v, err := store.Verify(ctx, db, store.VerifyOptions{PublicKey: pub})
	fmt.Printf("verified %d entries, signed: %v, error: %v\n", v.Entries, v.Signed, err)

	if _, err := db.ExecContext(ctx, `UPDATE auditpgx_entry SET object_id = '0' WHERE id = 1234`); err != nil {
		log.Fatal(err)
	}
	_, err = store.Verify(ctx, db, store.VerifyOptions{PublicKey: pub})
	var ve *store.VerifyError
	if errors.As(err, &ve) {
		fmt.Println(ve.Kind, ve.EntryID, ve.Checkpoint)
	}
	fmt.Println(err)
	// Output:
	// sealed 2500 entries in 3 checkpoints
	// verified 2500 entries, signed: true, error: <nil>
	// edited 1234 2
	// auditpgx: entries or checkpoints changed since sealing: entry 1234 was changed since checkpoint 2 sealed it
}
