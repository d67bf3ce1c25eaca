package main

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/internal/pgtest"
)

// TestSealAndVerify: seal creates the seal table and seals; verify passes,
// then exits 4 naming the entry once one is edited, and passes again once
// it is put back; signed checkpoints verify with their public key only.
func TestSealAndVerify(t *testing.T) {
	ctx := context.Background()
	dsn, _ := pgtest.NewSchema(t)
	env := map[string]string{"DATABASE_URL": dsn}
	runOK(t, env, "migrate")
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	defer db.Close()
	write := func(n int) {
		t.Helper()
		_, err := db.ExecContext(ctx, `INSERT INTO auditpgx_entry (operation, table_name, object_id, changes, tx_id)
			SELECT 'update', 'users', i::text, jsonb_build_object('changed_fields', jsonb_build_object('n', jsonb_build_array(i, i + 1))), 1
			FROM generate_series(1, $1) AS i`, n)
		require.NoError(t, err)
	}

	require.Equal(t, "nothing to seal: auditpgx_entry has no entry\n", runOK(t, env, "seal"))
	require.Equal(t, "no checkpoint to verify\n", runOK(t, env, "verify"))
	write(1500)
	out := runOK(t, env, "seal")
	require.Regexp(t, `^sealed 1500 entries up to id 1500 in 2 checkpoint\(s\)
checkpoint 2: ids 1001 to 1500, sealed at \S+Z, hash [0-9a-f]{64}
$`, out)
	hash := out[strings.LastIndex(out, " ")+1:]
	out = runOK(t, env, "seal")
	require.Equal(t, "nothing new to seal\n", out[:strings.Index(out, "\n")+1])
	require.True(t, strings.HasSuffix(out, hash), "the same last checkpoint")

	write(3)
	out = runOK(t, env, "verify")
	require.Regexp(t, `^verified 1500 entries \(ids 1 to 1500\) in 2 checkpoint\(s\)
checkpoint 2: ids 1001 to 1500, sealed at \S+, hash `+strings.TrimSpace(hash)+`
3 entries after id 1500 are not sealed yet
$`, out)

	_, err = db.ExecContext(ctx, `UPDATE auditpgx_entry SET object_id = 'x' WHERE id = 1200`)
	require.NoError(t, err)
	code, out, errOut := call(env, "verify")
	require.Equal(t, exitTampered, code, errOut)
	require.Regexp(t, `^verified 1000 entries \(ids 1 to 1000\) in 1 checkpoint\(s\) before the first difference
checkpoint 1: `, out)
	require.Equal(t, "auditpgx verify: auditpgx: entries or checkpoints changed since sealing: entry 1200 was changed since checkpoint 2 sealed it\n", errOut)
	_, err = db.ExecContext(ctx, `UPDATE auditpgx_entry SET object_id = '1200' WHERE id = 1200`)
	require.NoError(t, err)
	runOK(t, env, "verify")

	// Pruned entries: verify from an id after them.
	_, err = db.ExecContext(ctx, `DELETE FROM auditpgx_entry WHERE id <= 1000`)
	require.NoError(t, err)
	code, _, errOut = call(env, "verify")
	require.Equal(t, exitTampered, code)
	require.Contains(t, errOut, "entry 1 was deleted since checkpoint 1 sealed it")
	out = runOK(t, env, "verify", "--from", "1001")
	require.True(t, strings.HasPrefix(out, "verified 500 entries (ids 1001 to 1500) in 1 checkpoint(s)\n"), out)

	// Signed.
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	otherPub, _, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	keyFile, pubFile, otherFile := filepath.Join(dir, "seal.pem"), filepath.Join(dir, "seal.pub"), filepath.Join(dir, "other.pub")
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	for file, key := range map[string]ed25519.PublicKey{pubFile: pub, otherFile: otherPub} {
		der, err := x509.MarshalPKIXPublicKey(key)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644))
	}
	_, err = db.ExecContext(ctx, `CREATE TABLE signed_seal (LIKE auditpgx_seal INCLUDING ALL)`)
	require.NoError(t, err)
	out = runOK(t, env, "seal", "--seal-table", "signed_seal", "--key-file", keyFile)
	require.True(t, strings.HasPrefix(out, "sealed 503 entries up to id 1503 in 1 checkpoint(s), signed\n"), out)
	out = runOK(t, env, "verify", "--seal-table", "signed_seal", "--public-key", pubFile)
	require.True(t, strings.HasPrefix(out, "verified 503 entries (ids 1001 to 1503) in 1 checkpoint(s), signatures checked\n"), out)
	code, out, errOut = call(env, "verify", "--seal-table", "signed_seal", "--public-key", otherFile)
	require.Equal(t, exitTampered, code)
	require.Equal(t, "verified no checkpoint before the first difference\n", out)
	require.Contains(t, errOut, "checkpoint 1 has a signature that the public key does not verify")
	code, _, errOut = call(env, "verify", "--public-key", pubFile)
	require.Equal(t, exitTampered, code)
	require.Contains(t, errOut, "checkpoint 1 is not signed")

	// The last checkpoint, as printed, kept outside the database.
	last := regexp.MustCompile(`checkpoint (\d+): .* hash ([0-9a-f]{64})\n`).FindStringSubmatch(runOK(t, env, "verify", "--seal-table", "signed_seal"))
	require.NotNil(t, last)
	runOK(t, env, "verify", "--seal-table", "signed_seal", "--expect", last[1]+":"+last[2])
	code, _, errOut = call(env, "verify", "--seal-table", "signed_seal", "--expect", "2:"+last[2])
	require.Equal(t, exitTampered, code)
	require.Contains(t, errOut, "checkpoint 2 is missing: the chain ends at checkpoint 1, but this one was recorded outside the database")

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"seal", "--key-file", filepath.Join(dir, "none.pem")}, exitUsage, "--key-file: open "},
		{[]string{"seal", "--key-file", pubFile}, exitUsage, `--key-file: ` + pubFile + ` holds no PEM block "PRIVATE KEY"`},
		{[]string{"verify", "--public-key", keyFile}, exitUsage, `holds no PEM block "PUBLIC KEY"`},
		{[]string{"seal", "--wait", "0s"}, exitUsage, "--wait: 0s is not a positive duration"},
		{[]string{"seal", "--seal-table", "a.b.c"}, exitUsage, "--seal-table: auditpgx: invalid seal table name"},
		{[]string{"verify", "--from", "-1"}, exitUsage, "--from: -1 is not an entry id"},
		{[]string{"verify", "--expect", "3"}, exitUsage, `"3" is not SEQ:HASH with a checkpoint number`},
		{[]string{"verify", "--expect", "3:abc"}, exitUsage, `"3:abc" is not SEQ:HASH with a hash of 64 hex digits`},
		{[]string{"verify", "--seal-table", "missing"}, exitError, `no seal table`},
		{[]string{"seal", "--entry-table", "missing"}, exitError, `auditpgx seal: auditpgx: seal: entry table "missing" does not exist`},
	} {
		code, _, errOut := call(env, tc.args...)
		require.Equal(t, tc.code, code, "%q: %s", tc.args, errOut)
		require.Contains(t, errOut, tc.want, "%q", tc.args)
	}

	for cmd, flags := range map[string][]string{"seal": {"-key-file", "-seal-table", "-wait"}, "verify": {"-public-key", "-seal-table", "-from", "-expect", "-archive"}} {
		code, _, errOut := call(env, "help", cmd)
		require.Equal(t, exitOK, code)
		for _, f := range flags {
			require.Contains(t, errOut, f)
		}
	}
}
