package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/auditpgx/auditpgx/internal/sqlq"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// defaultSealTable is the seal table's name when none is given.
const defaultSealTable = "auditpgx_seal"

// sealTableName parses a seal table name, "" meaning the default.
func sealTableName(table string) (tableName, error) {
	if table == "" {
		table = defaultSealTable
	}
	t, err := parseTableName(table)
	if err != nil {
		return tableName{}, fmt.Errorf("auditpgx: invalid seal table name %q: %v", table, err)
	}
	return t, nil
}

// checkpointColumns are the seal table's columns in the order of
// checkpointScanner.scan and insertCheckpoints.
const checkpointColumns = `seq, format, first_id, last_id, count, prev_hash, hash, gaps, digests, sealed_at, signature`

// SealDDL returns the statements that create the seal table named table
// ("" for auditpgx_seal) if it does not exist, separated by semicolons and
// newlines, for migration tools: one row per [Checkpoint], and a unique
// index on last_id that finds the checkpoint of an entry. The error names
// what is wrong with an invalid name.
func SealDDL(table string) (string, error) {
	stmts, err := sealDDLStatements(table)
	if err != nil {
		return "", err
	}
	return strings.Join(stmts, ";\n") + ";\n", nil
}

func sealDDLStatements(table string) ([]string, error) {
	t, err := sealTableName(table)
	if err != nil {
		return nil, err
	}
	q := t.Quoted()
	return []string{
		`CREATE TABLE IF NOT EXISTS ` + q + ` (
    seq       bigint PRIMARY KEY,
    format    smallint NOT NULL,
    first_id  bigint NOT NULL,
    last_id   bigint NOT NULL,
    count     integer NOT NULL,
    prev_hash bytea NOT NULL,
    hash      bytea NOT NULL,
    gaps      bigint[] NOT NULL,
    digests   bytea NOT NULL,
    sealed_at timestamptz NOT NULL,
    signature bytea
)`,
		`CREATE UNIQUE INDEX IF NOT EXISTS ` + sqlq.Ident(t.indexName("_last_id_idx")) + ` ON ` + q + ` (last_id)`,
	}, nil
}

// MigrateSeal creates the seal table named table ("" for auditpgx_seal)
// and its index if they do not exist, using the statements of [SealDDL].
// When both exist it sends nothing but one catalog query, and so needs no
// privilege on them: any role may call it at start-up.
//
// Create the seal table as a role of its own, and grant the application's
// role at most SELECT on it (docs/SECURITY.md): whoever can write
// checkpoints can rewrite the chain after changing entries, unless
// checkpoints are signed with a key the database never sees.
//
// Like [Migrate], it runs under pg_advisory_xact_lock(0x6175646974706778),
// in a transaction of its own when db is a *sql.DB or *sql.Conn, else in
// the caller's. The schema of a qualified name must already exist.
func MigrateSeal(ctx context.Context, db Querier, table string) error {
	stmts, err := sealDDLStatements(table)
	if err != nil {
		return err
	}
	t, _ := sealTableName(table) // valid: sealDDLStatements checked it
	var n int
	if err := queryRowInto(ctx, db, `SELECT count(*) FROM unnest($1::text[]) AS n WHERE pg_catalog.to_regclass(n) IS NOT NULL`,
		[]any{[]string{t.Quoted(), t.qualify(sqlq.Ident(t.indexName("_last_id_idx")))}}, &n); err != nil {
		return fmt.Errorf("auditpgx: migrate seal table %s: %w", t.Quoted(), err)
	}
	if n == 2 {
		return nil
	}
	run := func(q Querier) error {
		if _, err := q.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLockKey); err != nil {
			return fmt.Errorf("auditpgx: migrate seal table %s: advisory lock: %w", t.Quoted(), err)
		}
		for _, s := range stmts {
			if _, err := q.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("auditpgx: migrate seal table %s: %w", t.Quoted(), err)
			}
		}
		return nil
	}
	b, ok := db.(beginner)
	if !ok {
		return run(db)
	}
	tx, err := b.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("auditpgx: migrate seal table %s: begin: %w", t.Quoted(), err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after a successful commit
	if err := run(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("auditpgx: migrate seal table %s: commit: %w", t.Quoted(), err)
	}
	return nil
}

// checkpointScanner scans rows of checkpointColumns.
type checkpointScanner struct {
	m *pgtype.Map // reads the gaps array, which database/sql cannot
}

func newCheckpointScanner() checkpointScanner { return checkpointScanner{pgtype.NewMap()} }

// scan reads the current row. bad says why the row cannot be a
// checkpoint (a hash that is not 32 bytes long), "" when it can.
func (s checkpointScanner) scan(rows *sql.Rows) (c Checkpoint, bad string, err error) {
	var (
		prev, hash []byte
		format     int16
	)
	if err := rows.Scan(&c.Seq, &format, &c.FirstID, &c.LastID, &c.Count, &prev, &hash,
		s.m.SQLScanner(&c.Gaps), &c.Digests, &c.SealedAt, &c.Signature); err != nil {
		return Checkpoint{}, "", err
	}
	c.Format = int(format)
	c.SealedAt = c.SealedAt.UTC()
	if c.Gaps == nil {
		c.Gaps = []int64{}
	}
	if len(prev) != sha256.Size || len(hash) != sha256.Size {
		return c, fmt.Sprintf("prev_hash and hash hold %d and %d bytes, not %d", len(prev), len(hash), sha256.Size), nil
	}
	c.Prev, c.Hash = [sha256.Size]byte(prev), [sha256.Size]byte(hash)
	return c, "", nil
}

// lastCheckpoint reads the seal table's last checkpoint; ok is false when
// it has none.
func lastCheckpoint(ctx context.Context, db Querier, seal tableName) (c Checkpoint, ok bool, err error) {
	rows, err := db.QueryContext(ctx, `SELECT `+checkpointColumns+` FROM `+seal.Quoted()+` ORDER BY seq DESC LIMIT 1`)
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("auditpgx: read seal table %s: %w", seal.Quoted(), noSealTableHint(err))
	}
	defer rows.Close()
	if !rows.Next() {
		return Checkpoint{}, false, rows.Err()
	}
	c, bad, err := newCheckpointScanner().scan(rows)
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("auditpgx: read seal table %s: %w", seal.Quoted(), err)
	}
	if bad != "" {
		return Checkpoint{}, false, fmt.Errorf("auditpgx: seal table %s: checkpoint %d is malformed (%s); run Verify", seal.Quoted(), c.Seq, bad)
	}
	return c, true, rows.Close()
}

// ErrSealConflict is wrapped by the error [Seal] returns when another
// seal run wrote the checkpoints it was about to write; nothing is lost,
// and sealing again continues from them.
var ErrSealConflict = errors.New("auditpgx: seal: another seal run got there first")

// insertCheckpoints writes cs in one statement. A checkpoint of the same
// Seq written meanwhile by another seal run is an error that says so.
func insertCheckpoints(ctx context.Context, db Querier, seal tableName, cs []Checkpoint) error {
	var b strings.Builder
	b.WriteString(`INSERT INTO ` + seal.Quoted() + ` (` + checkpointColumns + `) VALUES `)
	args := make([]any, 0, 11*len(cs))
	for i := range cs {
		c := &cs[i]
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j := range 11 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d", len(args)+j+1)
		}
		b.WriteByte(')')
		args = append(args, c.Seq, int16(c.Format), c.FirstID, c.LastID, c.Count, c.Prev[:], c.Hash[:], c.Gaps, c.Digests,
			c.SealedAt, c.Signature)
	}
	_, err := db.ExecContext(ctx, b.String(), args...)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%w: checkpoints %d to %d in %s were written meanwhile by another seal run; seal again to continue from them",
			ErrSealConflict, cs[0].Seq, cs[len(cs)-1].Seq, seal.Quoted())
	}
	if err != nil {
		return fmt.Errorf("auditpgx: seal: write checkpoints %d to %d to %s: %w", cs[0].Seq, cs[len(cs)-1].Seq, seal.Quoted(), err)
	}
	return nil
}

// noSealTableHint adds, to the error of a read from a seal table that does
// not exist, how to create it.
func noSealTableHint(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
		return fmt.Errorf("no seal table: create it with MigrateSeal (auditpgx seal creates it): %w", err)
	}
	return err
}
