// The stress suite: many clients write the audited tables at random, in
// transactions that commit or roll back, and replaying every entry from
// nothing must rebuild the tables exactly.

package auditpgx_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/store"
)

// The stress workload's tables. They start empty (groups, which is not
// audited, aside), so replaying every entry from nothing must rebuild them.
const stressDDL = `
CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL, email text UNIQUE,
	balance int NOT NULL CHECK (balance >= 0), rev int NOT NULL DEFAULT 0, secret text, seen timestamptz);
CREATE TABLE items (owner bigint, sku text, qty int NOT NULL CHECK (qty >= 0), PRIMARY KEY (owner, sku));
CREATE TABLE pairs (id int PRIMARY KEY, n int NOT NULL);
CREATE TABLE groups (id int PRIMARY KEY, name text);
CREATE TABLE memberships (group_id int NOT NULL REFERENCES groups, account_id bigint NOT NULL, PRIMARY KEY (group_id, account_id));
INSERT INTO groups SELECT g, 'g' || g FROM generate_series(1, 8) g;`

const (
	stressWorkers  = 8
	stressAccounts = 400 // account ids are drawn from 1..stressAccounts
)

var stressTables = []struct {
	name string
	keys []string
	cols diff.Columns
}{
	{"accounts", []string{"id"}, diff.Columns{Names: []string{"id", "name", "email", "balance", "rev", "secret"}, Redacted: map[string]bool{"secret": true}}},
	{"items", []string{"owner", "sku"}, diff.Columns{Names: []string{"owner", "sku", "qty"}}},
	{"pairs", []string{"id"}, diff.Columns{Names: []string{"id", "n"}}},
}

func registerStress(r *auditpgx.Registry) error {
	if err := r.RegisterTable("accounts", auditpgx.Exclude("seen"), auditpgx.Redact("secret")); err != nil {
		return err
	}
	if err := r.RegisterTable("items"); err != nil {
		return err
	}
	if err := r.RegisterTable("pairs"); err != nil {
		return err
	}
	return r.RegisterM2M("memberships", auditpgx.M2M{
		Field:   "members",
		Owner:   auditpgx.Ref{Table: "groups", Column: "group_id"},
		Related: auditpgx.Ref{Table: "accounts", Column: "account_id"},
	})
}

// change is one entry a statement is known to have written: its operation,
// table, object id and, for links, the related object id.
type change struct{ op, table, object, related string }

// stmtResult is what one successful statement is known to have written:
// changes read from its RETURNING rows, or only a count of entries.
type stmtResult struct {
	changes []change
	counted int
	xid     int64 // from the RETURNING rows; 0 when none came back
}

// txRecord is the client's record of one transaction that ended.
type txRecord struct {
	xid       int64 // 0 for autocommit statements that returned no xid
	actor     string
	committed bool
	results   []stmtResult
}

// ledger is every outcome the workers saw.
type ledger struct {
	mu       sync.Mutex
	txs      []txRecord
	failures map[string]int // expected failures by SQLSTATE
	counts   map[string]int // operations by kind
	errs     []error        // unexpected errors
}

func (l *ledger) add(rec txRecord) {
	l.mu.Lock()
	l.txs = append(l.txs, rec)
	l.mu.Unlock()
}

// failed notes a statement's error: expected kinds are counted, others
// kept for the test to report.
func (l *ledger) failed(what string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505", "23514", "40P01", "21000":
			l.failures[pgErr.Code]++
			return
		}
	}
	l.errs = append(l.errs, fmt.Errorf("%s: %w", what, err))
}

func (l *ledger) count(kind string) {
	l.mu.Lock()
	l.counts[kind]++
	l.mu.Unlock()
}

// querier is *sql.DB or *sql.Tx.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// statement is one audited write of the workload. Statements with rows
// end their RETURNING list with the transaction id; each row maps to the
// entries it caused. Statements without rows are run with Exec and write
// perRow entries for each affected row.
type statement struct {
	kind   string
	sql    string
	args   []any
	rows   func(cols []string) []change
	perRow int
}

const xidCol = `pg_current_xact_id()::text::bigint`

func (s statement) run(ctx context.Context, q querier) (stmtResult, error) {
	if s.rows == nil {
		res, err := q.ExecContext(ctx, s.sql, s.args...)
		if err != nil {
			return stmtResult{}, err
		}
		n, err := res.RowsAffected()
		return stmtResult{counted: int(n) * s.perRow}, err
	}
	rows, err := q.QueryContext(ctx, s.sql, s.args...)
	if err != nil {
		return stmtResult{}, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return stmtResult{}, err
	}
	var out stmtResult
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return stmtResult{}, err
		}
		strs := make([]string, len(cols))
		for i, v := range vals {
			strs[i] = v.String
		}
		xid, err := strconv.ParseInt(strs[len(strs)-1], 10, 64)
		if err != nil {
			return stmtResult{}, fmt.Errorf("RETURNING xid %q: %w", strs[len(strs)-1], err)
		}
		if out.xid != 0 && out.xid != xid {
			return stmtResult{}, fmt.Errorf("one statement returned two transaction ids, %d and %d", out.xid, xid)
		}
		out.xid = xid
		out.changes = append(out.changes, s.rows(strs[:len(strs)-1])...)
	}
	if err := rows.Err(); err != nil {
		return stmtResult{}, err
	}
	return out, rows.Close()
}

func itemID(owner, sku string) string {
	b, _ := json.Marshal(sku)
	return "[" + owner + "," + string(b) + "]"
}

func one(op, table string) func([]string) []change {
	return func(c []string) []change { return []change{{op, table, c[0], ""}} }
}

func oneItem(op string) func([]string) []change {
	return func(c []string) []change { return []change{{op, "items", itemID(c[0], c[1]), ""}} }
}

func linkOp(op string) func([]string) []change {
	return func(c []string) []change { return []change{{op, "groups", c[0], c[1]}} }
}

// randomStatement draws one audited statement; pairA and pairB are the two
// pairs rows the worker owns, and merge says the server audits MERGE (17+).
func randomStatement(r *rand.Rand, pairA, pairB int, merge bool) statement {
	acct := func() int64 { return int64(1 + r.IntN(stressAccounts)) }
	owner := func() int64 { return int64(1 + r.IntN(20)) }
	sku := func() string { return "s" + strconv.Itoa(r.IntN(10)) }
	group := func() int { return 1 + r.IntN(8) }
	switch n := r.IntN(100); {
	case n < 12:
		var email any
		if r.IntN(2) == 0 {
			email = "e" + strconv.Itoa(r.IntN(600)) + "@x"
		}
		return statement{kind: "create account", sql: `INSERT INTO accounts (id, name, email, balance, secret, seen)
			VALUES ($1, $2, $3, $4, md5(random()::text), now()) RETURNING id, ` + xidCol,
			args: []any{acct(), "n" + strconv.Itoa(r.IntN(50)), email, r.IntN(100)}, rows: one("create", "accounts")}
	case n < 15:
		return statement{kind: "create accounts (bulk)", sql: `INSERT INTO accounts (id, name, balance)
			SELECT g, 'bulk', 10 FROM generate_series($1::bigint, $1::bigint + $2::bigint) g ON CONFLICT DO NOTHING RETURNING id, ` + xidCol,
			args: []any{acct(), r.IntN(20)}, rows: one("create", "accounts")}
	case n < 27 && n >= 23 && merge:
		// Two accounts: each is deleted (low balance), updated or created.
		return statement{kind: "merge accounts", sql: `MERGE INTO accounts a USING (VALUES ($1::bigint, $2::text), ($3::bigint, $2::text)) s (id, name) ON a.id = s.id
			WHEN MATCHED AND a.balance < 5 THEN DELETE
			WHEN MATCHED THEN UPDATE SET name = s.name, rev = a.rev + 1
			WHEN NOT MATCHED THEN INSERT (id, name, balance) VALUES (s.id, s.name, 7)
			RETURNING a.id, merge_action(), ` + xidCol,
			args: []any{acct(), "m" + strconv.Itoa(r.IntN(50)), acct()}, rows: func(c []string) []change {
				op := map[string]string{"INSERT": "create", "UPDATE": "update", "DELETE": "delete"}[c[1]]
				return []change{{op, "accounts", c[0], ""}}
			}}
	case n < 27:
		return statement{kind: "update account", sql: `UPDATE accounts SET name = $1, balance = balance + $2, rev = rev + 1 WHERE id = $3 RETURNING id, ` + xidCol,
			args: []any{"u" + strconv.Itoa(r.IntN(50)), r.IntN(61) - 30, acct()}, rows: one("update", "accounts")}
	case n < 31:
		return statement{kind: "update accounts (bulk)", sql: `UPDATE accounts SET rev = rev + 1, balance = balance + 1 WHERE id % $1 = $2 RETURNING id, ` + xidCol,
			args: []any{3 + r.IntN(5), r.IntN(3)}, rows: one("update", "accounts")}
	case n < 35:
		return statement{kind: "update secrets (exec)", sql: `UPDATE accounts SET secret = md5(random()::text), rev = rev + 1 WHERE id BETWEEN $1 AND $1 + 10`,
			args: []any{acct()}, perRow: 1}
	case n < 38:
		return statement{kind: "move account key", sql: `UPDATE accounts SET id = $1, rev = rev + 1 WHERE id = $2 RETURNING id, ` + xidCol,
			args: []any{acct(), acct()}, rows: one("update", "accounts")}
	case n < 43:
		return statement{kind: "delete account", sql: `DELETE FROM accounts WHERE id = $1 RETURNING id, ` + xidCol,
			args: []any{acct()}, rows: one("delete", "accounts")}
	case n < 45:
		return statement{kind: "delete accounts (bulk)", sql: `DELETE FROM accounts WHERE id BETWEEN $1 AND $1 + 3 RETURNING id, ` + xidCol,
			args: []any{acct()}, rows: one("delete", "accounts")}
	case n < 53:
		return statement{kind: "upsert accounts", sql: `INSERT INTO accounts AS a (id, name, balance) VALUES ($1, $2, 5), ($3, $2, 5)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, rev = a.rev + 1 RETURNING id, (xmax = 0), ` + xidCol,
			args: []any{acct(), "up" + strconv.Itoa(r.IntN(50)), acct()}, rows: func(c []string) []change {
				if c[1] == "true" {
					return []change{{"create", "accounts", c[0], ""}}
				}
				return []change{{"update", "accounts", c[0], ""}}
			}}
	case n < 58:
		return statement{kind: "create item", sql: `INSERT INTO items VALUES ($1, $2, $3) RETURNING owner, sku, ` + xidCol,
			args: []any{owner(), sku(), r.IntN(10)}, rows: oneItem("create")}
	case n < 63:
		return statement{kind: "update items", sql: `UPDATE items SET qty = qty + $1 WHERE owner = $2 RETURNING owner, sku, ` + xidCol,
			args: []any{r.IntN(9) - 4 | 1, owner()}, rows: oneItem("update")}
	case n < 65:
		return statement{kind: "move item key", sql: `UPDATE items SET sku = sku || 'm' WHERE owner = $1 AND sku = $2 RETURNING owner, sku, ` + xidCol,
			args: []any{owner(), sku()}, rows: oneItem("update")}
	case n < 67:
		return statement{kind: "delete items", sql: `DELETE FROM items WHERE owner = $1 RETURNING owner, sku, ` + xidCol,
			args: []any{owner()}, rows: oneItem("delete")}
	case n < 70:
		from, to := owner(), owner()
		if from == to {
			to = from%20 + 1
		}
		return statement{kind: "move item (writable CTE)", sql: `WITH d AS (DELETE FROM items WHERE owner = $1 AND sku = $2 RETURNING owner, sku, qty)
			INSERT INTO items (owner, sku, qty) SELECT $3, sku, qty FROM d RETURNING owner, sku, ` + xidCol,
			args: []any{from, sku(), to}, rows: func(c []string) []change {
				return []change{{"delete", "items", itemID(strconv.FormatInt(from, 10), c[1]), ""}, {"create", "items", itemID(c[0], c[1]), ""}}
			}}
	case n < 77:
		return statement{kind: "link", sql: `INSERT INTO memberships VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING group_id, account_id, ` + xidCol,
			args: []any{group(), acct()}, rows: linkOp("associate")}
	case n < 79:
		return statement{kind: "link (bulk)", sql: `INSERT INTO memberships SELECT $1, id FROM accounts WHERE id % 10 = $2
			ON CONFLICT DO NOTHING RETURNING group_id, account_id, ` + xidCol,
			args: []any{group(), r.IntN(10)}, rows: linkOp("associate")}
	case n < 84:
		return statement{kind: "unlink", sql: `DELETE FROM memberships WHERE group_id = $1 AND account_id % 5 = $2 RETURNING group_id, account_id, ` + xidCol,
			args: []any{group(), r.IntN(5)}, rows: linkOp("disassociate")}
	case n < 87:
		from, to := group(), group()
		if from == to {
			to = from%8 + 1
		}
		return statement{kind: "move link", sql: `UPDATE memberships SET group_id = $1 WHERE group_id = $2 AND account_id = $3 RETURNING group_id, account_id, ` + xidCol,
			args: []any{to, from, acct()}, rows: func(c []string) []change {
				return []change{{"disassociate", "groups", strconv.Itoa(from), c[1]}, {"associate", "groups", c[0], c[1]}}
			}}
	case n < 89:
		return statement{kind: "unlink (exec)", sql: `DELETE FROM memberships WHERE account_id = $1`, args: []any{acct()}, perRow: 1}
	case n < 93:
		return statement{kind: "check violation", sql: `UPDATE accounts SET balance = balance - 1000, rev = rev + 1 WHERE id = $1 RETURNING id, ` + xidCol,
			args: []any{acct()}, rows: one("update", "accounts")}
	case n < 96:
		return statement{kind: "bump pairs (exec)", sql: `UPDATE pairs SET n = n + 1 WHERE id = $1 OR id = $2`, args: []any{pairA, pairB}, perRow: 1}
	default:
		return statement{kind: "unique violation", sql: `INSERT INTO accounts (id, name, balance) SELECT id, 'dup', 0 FROM accounts WHERE id >= $1 LIMIT 1 RETURNING id, ` + xidCol,
			args: []any{acct()}, rows: one("create", "accounts")}
	}
}

type stressWorker struct {
	t     *testing.T
	db    *sql.DB
	l     *ledger
	r     *rand.Rand
	actor string
	ctx   context.Context
	pairA int
	pairB int
	merge bool // the server audits MERGE
}

func (w *stressWorker) xid(tx *sql.Tx) (int64, error) {
	var xid int64
	err := tx.QueryRowContext(w.ctx, `SELECT `+xidCol).Scan(&xid)
	return xid, err
}

func (w *stressWorker) step() {
	switch n := w.r.IntN(100); {
	case n < 55:
		s := randomStatement(w.r, w.pairA, w.pairB, w.merge)
		w.l.count(s.kind)
		res, err := s.run(w.ctx, w.db)
		if err != nil {
			w.l.failed(s.kind, err)
			return
		}
		w.l.add(txRecord{xid: res.xid, actor: w.actor, committed: true, results: []stmtResult{res}})
	case n < 58:
		w.l.count("multi-statement string")
		q := fmt.Sprintf(`UPDATE pairs SET n = n + 1 WHERE id = %d; UPDATE pairs SET n = n + 2 WHERE id = %d`, w.pairA, w.pairB)
		if _, err := w.db.ExecContext(w.ctx, q); err != nil {
			w.l.failed("multi-statement string", err)
			return
		}
		w.l.add(txRecord{actor: w.actor, committed: true, results: []stmtResult{{counted: 2}}})
	case n < 60:
		w.deadlock()
	default:
		w.transaction()
	}
}

// transaction runs a few statements in a transaction, some under a
// savepoint that is sometimes rolled back, and commits or rolls back. A
// failed statement rolls back to the savepoint if one is open, else the
// whole transaction.
func (w *stressWorker) transaction() {
	w.l.count("transaction")
	tx, err := w.db.BeginTx(w.ctx, nil)
	if err != nil {
		w.l.failed("begin", err)
		return
	}
	defer tx.Rollback() //nolint:errcheck // after Commit or Rollback it is a no-op
	xid, err := w.xid(tx)
	if err != nil {
		w.l.failed("txid", err)
		return
	}
	rec := txRecord{xid: xid, actor: w.actor}
	savepoint := -1
	rollbackTo := func() bool {
		if _, err := tx.ExecContext(w.ctx, `ROLLBACK TO SAVEPOINT sp`); err != nil {
			w.l.failed("rollback to savepoint", err)
			return false
		}
		w.l.count("rollback to savepoint")
		rec.results, savepoint = rec.results[:savepoint], -1
		return true
	}
	for range 1 + w.r.IntN(5) {
		if savepoint < 0 && w.r.IntN(3) == 0 {
			if _, err := tx.ExecContext(w.ctx, `SAVEPOINT sp`); err != nil {
				w.l.failed("savepoint", err)
				return
			}
			savepoint = len(rec.results)
		}
		s := randomStatement(w.r, w.pairA, w.pairB, w.merge)
		w.l.count(s.kind + " (in a transaction)")
		res, err := s.run(w.ctx, tx)
		if err != nil {
			w.l.failed(s.kind, err)
			if savepoint >= 0 && rollbackTo() {
				continue
			}
			w.abort(tx, rec)
			return
		}
		if res.xid != 0 && res.xid != xid {
			w.l.failed(s.kind, fmt.Errorf("RETURNING gave transaction id %d inside transaction %d", res.xid, xid))
		}
		rec.results = append(rec.results, res)
		if savepoint >= 0 && w.r.IntN(4) == 0 && !rollbackTo() {
			w.abort(tx, rec)
			return
		}
	}
	if w.r.IntN(4) == 0 {
		w.abort(tx, rec)
		return
	}
	w.commit(tx, rec)
}

func (w *stressWorker) abort(tx *sql.Tx, rec txRecord) {
	w.l.count("rollback")
	if err := tx.Rollback(); err != nil {
		w.l.failed("rollback", err)
	}
	rec.committed, rec.results = false, nil
	w.l.add(rec)
}

// commit commits; when COMMIT fails the server says what became of it.
func (w *stressWorker) commit(tx *sql.Tx, rec txRecord) {
	w.l.count("commit")
	rec.committed = true
	if err := tx.Commit(); err != nil {
		w.l.failed("commit", err)
		var status sql.NullString
		if err := w.db.QueryRowContext(w.ctx, `SELECT pg_xact_status($1::text::xid8)`, rec.xid).Scan(&status); err != nil {
			w.l.failed("pg_xact_status", err)
		}
		rec.committed = status.String == "committed"
	}
	w.l.add(rec)
}

// deadlock runs two transactions of this worker that lock its two pairs
// rows in opposite orders, so that PostgreSQL must break the deadlock:
// the victim rolls back, the other commits.
func (w *stressWorker) deadlock() {
	w.l.count("deadlock pair")
	var txs [2]*sql.Tx
	var recs [2]txRecord
	for i := range txs {
		tx, err := w.db.BeginTx(w.ctx, nil)
		if err != nil {
			w.l.failed("begin", err)
			return
		}
		defer tx.Rollback() //nolint:errcheck // no-op once ended
		xid, err := w.xid(tx)
		if err != nil {
			w.l.failed("txid", err)
			return
		}
		txs[i], recs[i] = tx, txRecord{xid: xid, actor: w.actor}
	}
	bump := func(id int) statement {
		return statement{kind: "deadlock", sql: `UPDATE pairs SET n = n + 1 WHERE id = $1 RETURNING id, ` + xidCol, args: []any{id}, rows: one("update", "pairs")}
	}
	order := [2][2]int{{w.pairA, w.pairB}, {w.pairB, w.pairA}}
	for i := range txs {
		res, err := bump(order[i][0]).run(w.ctx, txs[i])
		if err != nil {
			w.l.failed("deadlock first lock", err)
			return
		}
		recs[i].results = append(recs[i].results, res)
	}
	var wg sync.WaitGroup
	for i := range txs {
		wg.Go(func() {
			res, err := bump(order[i][1]).run(w.ctx, txs[i])
			if err != nil {
				w.l.failed("deadlock second lock", err)
				w.abort(txs[i], recs[i])
				return
			}
			recs[i].results = append(recs[i].results, res)
			w.commit(txs[i], recs[i])
		})
	}
	wg.Wait()
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	require.NoError(t, err, "%s=%q", name, s)
	return n
}

// TestStress runs a seeded random workload from several goroutines and
// then proves, from the entries alone, that nothing was lost or forged:
//
//  1. replaying every entry in id order from empty tables rebuilds every
//     audited table exactly, and every join table's set of links;
//  2. each committed transaction has exactly the entries its statements
//     reported (RETURNING rows, or affected-row counts), with its actor,
//     and rolled-back work has none;
//  3. no entry belongs to an aborted transaction.
//
// AUDITPGX_STRESS_OPS sets the number of operations (default 2000) and
// AUDITPGX_STRESS_SEED the seed (default 7).
func TestStress(t *testing.T) {
	t.Parallel()
	ops := envInt(t, "AUDITPGX_STRESS_OPS", 2000)
	seed := uint64(envInt(t, "AUDITPGX_STRESS_SEED", 7))
	t.Logf("AUDITPGX_STRESS_OPS=%d AUDITPGX_STRESS_SEED=%d", ops, seed)

	dsn, schema := pgtestSchema(t)
	// Deadlocks are found after deadlock_timeout; the default second would
	// make the workload wait more than it works.
	e := newEnvDSN(t, dsn+"&deadlock_timeout=50ms", schema, stressDDL, registerStress)
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Minute)
	defer cancel()
	l := &ledger{failures: map[string]int{}, counts: map[string]int{}}

	setup := statement{sql: `INSERT INTO pairs SELECT g, 0 FROM generate_series(1, $1::int) g RETURNING id, ` + xidCol,
		args: []any{2 * stressWorkers}, rows: one("create", "pairs")}
	res, err := setup.run(ctx, e.db)
	require.NoError(t, err)
	l.add(txRecord{xid: res.xid, committed: true, results: []stmtResult{res}})

	start := time.Now()
	var wg sync.WaitGroup
	for i := range stressWorkers {
		w := &stressWorker{t: t, db: e.db, l: l, r: rand.New(rand.NewPCG(seed, uint64(i))),
			actor: "worker-" + strconv.Itoa(i), pairA: 2*i + 1, pairB: 2*i + 2, merge: e.serverVersion() >= 170000}
		w.ctx = auditpgx.WithActor(ctx, w.actor)
		share := ops / stressWorkers
		if i < ops%stressWorkers {
			share++
		}
		wg.Go(func() {
			for range share {
				w.step()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range l.errs {
		t.Errorf("unexpected error: %v", err)
	}

	entries := readAllEntries(t, ctx, e.plain)
	t.Logf("%d operations in %v with seed %d: %d entries, %d transactions ended", ops, elapsed.Round(time.Millisecond), seed, len(entries), len(l.txs))
	replaced := 0
	for _, en := range entries {
		if en.Changes != nil && len(en.Changes.ReplacedFields) > 0 {
			replaced++
		}
	}
	t.Logf("expected failures by SQLSTATE: %v; %d upsert entries with replaced_fields", l.failures, replaced)
	kinds := make([]string, 0, len(l.counts))
	for k, n := range l.counts {
		kinds = append(kinds, fmt.Sprintf("%s: %d", k, n))
	}
	slices.Sort(kinds)
	t.Logf("operations: %s", strings.Join(kinds, "; "))
	require.Positive(t, l.failures["23505"], "the workload should meet unique violations")
	require.Positive(t, l.failures["23514"], "the workload should meet check violations")
	if ops >= 2000 {
		require.Positive(t, l.failures["40P01"], "the workload should meet deadlocks")
	}

	t.Run("replay rebuilds the tables", func(t *testing.T) { checkReplay(t, ctx, e, entries) })
	t.Run("committed changes have their entries", func(t *testing.T) { checkLedger(t, l, entries) })
	t.Run("no entry of an aborted transaction", func(t *testing.T) { checkNoAborted(t, ctx, e, l) })
}

func readAllEntries(t *testing.T, ctx context.Context, db *sql.DB) []store.Entry {
	t.Helper()
	var all []store.Entry
	q := store.Query{Limit: 1000}
	for {
		page, err := store.ListPage(ctx, db, q)
		require.NoError(t, err)
		all = append(all, page.Entries...)
		if page.Next == "" {
			return all
		}
		q.Cursor = page.Next
	}
}

func checkReplay(t *testing.T, ctx context.Context, e *env, entries []store.Entry) {
	keys := map[string][]string{}
	for _, tb := range stressTables {
		keys[tb.name] = tb.keys
	}
	state, err := store.Replay(entries, keys)
	require.NoError(t, err)
	for _, tb := range stressTables {
		snap, err := store.Snapshot(ctx, e.plain, tb.name, tb.keys, tb.cols)
		require.NoError(t, err)
		replayed := state[tb.name]
		if replayed == nil {
			replayed = map[string]diff.Image{}
		}
		require.NoError(t, store.EqualStates(replayed, snap), "table %s: replayed (a) vs current (b)", tb.name)
		t.Logf("%s: %d rows rebuilt", tb.name, len(snap))
	}

	links := map[[2]string]bool{}
	for _, en := range entries {
		if en.RelatedFieldName == nil || *en.RelatedFieldName != "members" {
			continue
		}
		require.Equal(t, "groups", en.TableName)
		require.NotNil(t, en.RelatedObjectID)
		l := [2]string{en.ObjectID, *en.RelatedObjectID}
		switch en.Operation {
		case store.OpAssociate:
			require.False(t, links[l], "entry %d associates %v, which is already linked", en.ID, l)
			links[l] = true
		case store.OpDisassociate:
			require.True(t, links[l], "entry %d disassociates %v, which is not linked", en.ID, l)
			delete(links, l)
		default:
			t.Fatalf("entry %d: operation %s with a related field", en.ID, en.Operation)
		}
	}
	rows, err := e.plain.QueryContext(ctx, `SELECT group_id::text, account_id::text FROM memberships`)
	require.NoError(t, err)
	defer rows.Close()
	current := map[[2]string]bool{}
	for rows.Next() {
		var l [2]string
		require.NoError(t, rows.Scan(&l[0], &l[1]))
		current[l] = true
	}
	require.NoError(t, rows.Err())
	require.Equal(t, current, links, "links rebuilt from associate/disassociate entries vs memberships")
	t.Logf("memberships: %d links rebuilt", len(current))
}

func checkLedger(t *testing.T, l *ledger, entries []store.Entry) {
	byTx := map[int64][]store.Entry{}
	for _, en := range entries {
		byTx[en.TxID] = append(byTx[en.TxID], en)
	}
	known := map[int64]bool{}
	unknownWant := 0
	for _, rec := range l.txs {
		if !rec.committed {
			require.Empty(t, byTx[rec.xid], "rolled-back transaction %d has entries", rec.xid)
			continue
		}
		var want []change
		counted := 0
		for _, r := range rec.results {
			want = append(want, r.changes...)
			counted += r.counted
		}
		if rec.xid == 0 {
			require.Empty(t, want, "changes reported without a transaction id")
			unknownWant += counted
			continue
		}
		require.False(t, known[rec.xid], "transaction %d recorded twice", rec.xid)
		known[rec.xid] = true
		got := byTx[rec.xid]
		require.Len(t, got, len(want)+counted, "transaction %d: entries vs reported changes %v", rec.xid, want)
		have := map[change]int{}
		for _, en := range got {
			c := change{string(en.Operation), en.TableName, en.ObjectID, ""}
			if en.RelatedObjectID != nil {
				c.related = *en.RelatedObjectID
			}
			have[c]++
			if rec.actor != "" {
				require.NotNil(t, en.CreatedBy, "entry %d has no actor", en.ID)
				require.Equal(t, rec.actor, *en.CreatedBy, "entry %d actor", en.ID)
			}
		}
		for _, c := range want {
			require.Positive(t, have[c], "transaction %d: no entry for %+v", rec.xid, c)
			have[c]--
		}
	}
	unknownGot := 0
	for xid, es := range byTx {
		if !known[xid] {
			unknownGot += len(es)
		}
	}
	require.Equal(t, unknownWant, unknownGot, "entries of autocommit statements known only by their row counts")
}

func checkNoAborted(t *testing.T, ctx context.Context, e *env, l *ledger) {
	var bad []string
	rows, err := e.plain.QueryContext(ctx, `SELECT DISTINCT tx_id::text || ':' || coalesce(pg_xact_status(tx_id::text::xid8), 'unknown')
		FROM auditpgx_entry WHERE pg_xact_status(tx_id::text::xid8) IS DISTINCT FROM 'committed'`)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		bad = append(bad, s)
	}
	require.NoError(t, rows.Err())
	require.Empty(t, bad, "entries whose transaction did not commit")

	var aborted []int64
	for _, rec := range l.txs {
		if !rec.committed && rec.xid != 0 {
			aborted = append(aborted, rec.xid)
		}
	}
	var notAborted int
	require.NoError(t, e.plain.QueryRowContext(ctx, `SELECT count(*) FROM unnest($1::bigint[]) x
		WHERE pg_xact_status(x::text::xid8) IS DISTINCT FROM 'aborted'`, aborted).Scan(&notAborted))
	require.Zero(t, notAborted, "transactions the workers rolled back that the server does not report aborted")
	t.Logf("%d rolled-back transactions checked", len(aborted))
}

// TestStressReplayReplacedFields: an upsert that meets a row another
// transaction inserted after its snapshot records, before PostgreSQL 18,
// replaced_fields instead of a diff. Replaying the entries must still
// rebuild the table.
func TestStressReplayReplacedFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `CREATE TABLE teams (id bigint PRIMARY KEY, name text UNIQUE NOT NULL, region text);`, registerTeams)
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	other, err := e.db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = other.ExecContext(ctx, `INSERT INTO teams VALUES (1, 'new', 'theirs')`)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := e.db.ExecContext(ctx, `INSERT INTO teams (id, name, region) VALUES (2, 'new', 'ours')
			ON CONFLICT (name) DO UPDATE SET region = excluded.region`)
		done <- err
	}()
	waitForLock(t, e, ctx, done, "teams")
	require.NoError(t, other.Commit())
	require.NoError(t, <-done)

	entries := readAllEntries(t, ctx, e.plain)
	require.Len(t, entries, 2)
	state, err := store.Replay(entries, map[string][]string{"teams": {"id"}})
	require.NoError(t, err)
	cols := diff.Columns{Names: []string{"id", "name", "region"}}
	snap, err := store.Snapshot(ctx, e.plain, "teams", []string{"id"}, cols)
	require.NoError(t, err)
	require.NoError(t, store.EqualStates(state["teams"], snap), "replayed (a) vs current (b); entries: %s", mustJSON(entries))
}
