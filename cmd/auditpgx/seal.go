package main

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/auditpgx/auditpgx/store"
)

// exitTampered is the exit code of verify when the entries or the
// checkpoints differ from what was sealed (store.ErrTampered).
const exitTampered = 4

func isTampered(err error) bool { return errors.Is(err, store.ErrTampered) }

func runSeal(ctx context.Context, e env, args []string) error {
	fs, c := newFlags("seal", "", "Extend the hash chain over the entry table to every entry committed now, writing\n"+
		"checkpoints of up to 1000 entries to the seal table (created if absent), so that auditpgx verify\n"+
		"can later tell an entry edited, deleted or inserted since. Run it regularly, as a role that may\n"+
		"write the seal table and the application's role may not (docs/SECURITY.md). It waits, up to\n"+
		"--wait, for transactions that were writing entries when it started; with nothing new it writes\n"+
		"nothing", e.stderr)
	sealTable := fs.String("seal-table", "auditpgx_seal", "the seal table, optionally schema-qualified")
	keyFile := fs.String("key-file", "", "sign the checkpoints with the Ed25519 private key in this PEM file\n"+
		"(PKCS #8, as openssl genpkey -algorithm ed25519 writes it)")
	wait := fs.Duration("wait", time.Minute, "how long to wait for the transactions writing entries when it starts")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if _, err := store.SealDDL(*sealTable); err != nil {
		return usagef("--seal-table: %v", err)
	}
	if *wait <= 0 {
		return usagef("--wait: %s is not a positive duration", *wait)
	}
	opts := store.SealOptions{EntryTable: c.entryTable, SealTable: *sealTable, Wait: *wait}
	if *keyFile != "" {
		key, err := readPrivateKey(*keyFile)
		if err != nil {
			return usagef("--key-file: %v", err)
		}
		opts.Signer = key
	}
	db, err := c.open(ctx, e)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := store.MigrateSeal(ctx, db, *sealTable); err != nil {
		return err
	}
	r, err := store.Seal(ctx, db, opts)
	if err != nil {
		return err
	}
	switch {
	case r.Checkpoints > 0:
		signed := ""
		if opts.Signer != nil {
			signed = ", signed"
		}
		fmt.Fprintf(e.stdout, "sealed %d entries up to id %d in %d checkpoint(s)%s\n", r.Entries, r.Last.LastID, r.Checkpoints, signed)
	case r.Last.Seq > 0:
		fmt.Fprintf(e.stdout, "nothing new to seal\n")
	default:
		fmt.Fprintf(e.stdout, "nothing to seal: %s has no entry\n", c.entryTable)
		return nil
	}
	printCheckpoint(e, r.Last)
	return nil
}

// printCheckpoint prints c's number, range and hash: kept outside the
// database, they show later that the chain was not cut short or rewritten.
func printCheckpoint(e env, c store.Checkpoint) {
	fmt.Fprintf(e.stdout, "checkpoint %d: ids %d to %d, sealed at %s, hash %s\n", c.Seq, c.FirstID, c.LastID,
		c.SealedAt.UTC().Format(time.RFC3339Nano), hex.EncodeToString(c.Hash[:]))
}

func runVerify(ctx context.Context, e env, args []string) error {
	fs, c := newFlags("verify", "", "Recompute the hash chain of the seal table's checkpoints from the entries and report the first\n"+
		"difference: an entry edited, deleted, or inserted with an id that was unused when sealed, or a\n"+
		"checkpoint altered, missing or with a signature that --public-key does not verify. Entries\n"+
		"after the last checkpoint are counted as not sealed yet. Exit status 4 when something\n"+
		"differs, 1 when verify could not finish", e.stderr)
	sealTable := fs.String("seal-table", "auditpgx_seal", "the seal table, optionally schema-qualified")
	from := fs.Int64("from", 0, "start at the checkpoint that holds this entry id, taking it as given (for pruned entries)")
	keyFile := fs.String("public-key", "", "require every checkpoint to be signed by the Ed25519 public key in this PEM file\n"+
		"(SubjectPublicKeyInfo, as openssl pkey -pubout writes it)")
	var expect expectFlag
	fs.Var(&expect, "expect", "require checkpoint SEQ, with hash HASH (hex), in the chain: SEQ:HASH, as seal and verify print it\n"+
		"(keep the last one outside the database); catches deleted newest checkpoints and a chain sealed anew; repeat for more")
	var archives columnsFlag
	fs.Var(&archives, "archive", "read the entries that prune removed from this archive (NAME.ndjson.gz or its manifest), or from\n"+
		"every archive in this directory; repeat for more")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if _, err := store.SealDDL(*sealTable); err != nil {
		return usagef("--seal-table: %v", err)
	}
	if *from < 0 {
		return usagef("--from: %d is not an entry id", *from)
	}
	opts := store.VerifyOptions{EntryTable: c.entryTable, SealTable: *sealTable, FromID: *from, Archives: archives, Expect: expect}
	if *keyFile != "" {
		key, err := readPublicKey(*keyFile)
		if err != nil {
			return usagef("--public-key: %v", err)
		}
		opts.PublicKey = key
	}
	db, err := c.open(ctx, e)
	if err != nil {
		return err
	}
	defer db.Close()
	r, err := store.Verify(ctx, db, opts)
	if err != nil && !isTampered(err) {
		return err
	}
	switch {
	case r.Checkpoints == 0 && err == nil:
		fmt.Fprintf(e.stdout, "no checkpoint to verify\n")
	case r.Checkpoints == 0:
		fmt.Fprintf(e.stdout, "verified no checkpoint before the first difference\n")
	default:
		signed := ""
		if r.Signed {
			signed = ", signatures checked"
		}
		fmt.Fprintf(e.stdout, "verified %d entries (ids %d to %d) in %d checkpoint(s)%s", r.Entries, r.FirstID, r.LastID, r.Checkpoints, signed)
		if err != nil {
			fmt.Fprintf(e.stdout, " before the first difference\n")
		} else {
			fmt.Fprintf(e.stdout, "\n")
		}
		printCheckpoint(e, r.Last)
	}
	if err != nil {
		return err
	}
	if r.Unsealed > 0 {
		fmt.Fprintf(e.stdout, "%d entries after id %d are not sealed yet\n", r.Unsealed, r.LastID)
	}
	return nil
}

// readPrivateKey reads a PEM file holding a PKCS #8 Ed25519 private key.
func readPrivateKey(path string) (ed25519.PrivateKey, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s holds a %T, not an Ed25519 key", path, k)
	}
	return key, nil
}

// readPublicKey reads a PEM file holding an Ed25519 public key.
func readPublicKey(path string) (ed25519.PublicKey, error) {
	der, err := readPEM(path, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	key, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s holds a %T, not an Ed25519 key", path, k)
	}
	return key, nil
}

// readPEM returns the bytes of the first PEM block of type typ in path.
// Errors name the file, never its content.
func readPEM(path, typ string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("%s holds no PEM block %q", path, typ)
		}
		if block.Type == typ {
			return block.Bytes, nil
		}
	}
}

// expectFlag collects --expect SEQ:HASH.
type expectFlag []store.CheckpointHash

func (f *expectFlag) String() string { return "" }

func (f *expectFlag) Set(v string) error {
	seq, hash, ok := strings.Cut(v, ":")
	n, err := strconv.ParseInt(seq, 10, 64)
	if !ok || err != nil || n < 1 {
		return fmt.Errorf("%q is not SEQ:HASH with a checkpoint number", v)
	}
	c := store.CheckpointHash{Seq: n}
	if b, err := hex.DecodeString(hash); err != nil || len(b) != len(c.Hash) {
		return fmt.Errorf("%q is not SEQ:HASH with a hash of %d hex digits", v, 2*len(c.Hash))
	} else {
		copy(c.Hash[:], b)
	}
	*f = append(*f, c)
	return nil
}
