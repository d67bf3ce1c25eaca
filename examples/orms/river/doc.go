// Package riverjobs shows River, the job queue, on auditpgx's pgx front: a
// worker that updates an audited table and completes its job in the same
// transaction (river.JobCompleteTx), and a job inserted in the transaction
// of an audited write (Client.InsertTx). The transactions are pgx.Tx values
// of an auditpgx.Pool, which River's pgx/v5 driver takes as its own; River
// itself runs on the plain *pgxpool.Pool the auditpgx.Pool wraps. See
// river_test.go.
package riverjobs
