package riverjobs

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/examples/orms/internal/suite"
)

func TestMain(m *testing.M) { os.Exit(suite.Main(m)) }

const schema = `CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance bigint NOT NULL DEFAULT 0)`

func registerTables(r *auditpgx.Registry) error { return r.RegisterTable("accounts") }

// depositArgs is a job that adds Amount to an account's balance; Fail
// makes the worker fail after its update.
type depositArgs struct {
	Account int64 `json:"account"`
	Amount  int64 `json:"amount"`
	Fail    bool  `json:"fail"`
}

func (depositArgs) Kind() string { return "deposit" }

type depositWorker struct {
	river.WorkerDefaults[depositArgs]
	pool *auditpgx.Pool
}

// Work updates the account and completes the job in one transaction of
// the audited pool: the entry and the job's completion commit together.
func (w *depositWorker) Work(ctx context.Context, job *river.Job[depositArgs]) error {
	ctx = auditpgx.WithActor(ctx, "river:deposit")
	return pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE accounts SET balance = balance + $1 WHERE id = $2`, job.Args.Amount, job.Args.Account); err != nil {
			return err
		}
		if job.Args.Fail {
			return errors.New("deposit refused")
		}
		_, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job)
		return err
	})
}

func TestRiver(t *testing.T) {
	e := suite.New(t, suite.Config{DDL: schema, Register: registerTables})
	ctx := e.Ctx
	raw, err := pgxpool.New(ctx, e.AuditedDSN)
	require.NoError(t, err)
	t.Cleanup(raw.Close)
	migrator, err := rivermigrate.New(riverpgxv5.New(raw), nil)
	require.NoError(t, err)
	_, err = migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	require.NoError(t, err)
	pool, err := auditpgx.WrapPool(raw, auditpgx.WithRegistry(e.Registry))
	require.NoError(t, err)

	workers := river.NewWorkers()
	river.AddWorker(workers, &depositWorker{pool: pool})
	client, err := river.NewClient(riverpgxv5.New(raw), &river.Config{
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		Workers: workers,
	})
	require.NoError(t, err)
	events, cancel := client.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed)
	defer cancel()

	// A job inserted in the transaction of an audited write, committed;
	// and one rolled back with its write.
	app := auditpgx.WithActor(ctx, "app")
	for _, c := range []struct {
		id     int64
		commit bool
	}{{1, true}, {2, false}} {
		tx, err := pool.Begin(app)
		require.NoError(t, err)
		_, err = tx.Exec(app, `INSERT INTO accounts (id, owner) VALUES ($1, 'ann')`, c.id)
		require.NoError(t, err)
		_, err = client.InsertTx(app, tx, depositArgs{Account: c.id, Amount: 5}, nil)
		require.NoError(t, err)
		if c.commit {
			require.NoError(t, tx.Commit(app))
		} else {
			require.NoError(t, tx.Rollback(app))
		}
	}
	// A job whose worker fails after its update: nothing of it remains.
	_, err = client.Insert(app, depositArgs{Account: 1, Amount: 100, Fail: true}, &river.InsertOpts{MaxAttempts: 1})
	require.NoError(t, err)

	require.NoError(t, client.Start(ctx))
	defer client.Stop(context.Background()) //nolint:errcheck // the test is over
	got := map[river.EventKind]int{}
	for got[river.EventKindJobCompleted]+got[river.EventKindJobFailed] < 2 {
		select {
		case ev := <-events:
			got[ev.Kind]++
		case <-time.After(30 * time.Second):
			t.Fatalf("jobs not worked in 30 s: %v", got)
		}
	}
	require.Equal(t, map[river.EventKind]int{river.EventKindJobCompleted: 1, river.EventKindJobFailed: 1}, got)

	var balance int64
	require.NoError(t, raw.QueryRow(ctx, `SELECT balance FROM accounts WHERE id = 1`).Scan(&balance))
	require.Equal(t, int64(5), balance)
	var jobs int
	require.NoError(t, raw.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state = 'completed'`).Scan(&jobs))
	require.Equal(t, 1, jobs)
	e.RequireEntries(
		suite.Create("accounts", "1", `{"id": 1, "owner": "ann", "balance": 0}`).By("app"),
		suite.Update("accounts", "1", `{"balance": [0, 5]}`).By("river:deposit"),
	)
	e.RequireReplay()
}
