package auditpgx

import (
	"context"
	"database/sql/driver"
)

// DDL run inside a transaction becomes visible to other sessions only when
// the transaction commits, and is undone by a rollback. Plans made on other
// connections between the DDL and the transaction's end read the catalog as
// it was, so every description and plan is made anew again when a
// transaction that ran DDL ends: the connection is marked when the DDL runs
// (ddlConns), and a Commit or Rollback through database/sql, or a COMMIT,
// ROLLBACK or ROLLBACK TO statement, on a marked connection invalidates.

// auditTx remembers which connection a database/sql transaction runs on.
type auditTx struct {
	driver.Tx
	conn any
}

func (i *interceptor) ConnBeginTx(ctx context.Context, conn driver.ConnBeginTx, opts driver.TxOptions) (context.Context, driver.Tx, error) {
	tx, err := conn.BeginTx(ctx, opts)
	if err != nil {
		return ctx, nil, err
	}
	return ctx, &auditTx{Tx: tx, conn: conn}, nil
}

func (i *interceptor) TxCommit(ctx context.Context, tx driver.Tx) error {
	return i.endTx(tx, tx.Commit)
}

func (i *interceptor) TxRollback(ctx context.Context, tx driver.Tx) error {
	return i.endTx(tx, tx.Rollback)
}

func (i *interceptor) endTx(tx driver.Tx, end func() error) error {
	err := end()
	if at, ok := tx.(*auditTx); ok {
		i.txEnded(at.conn)
	}
	return err
}

// ddlRan notes DDL that ran, or failed, on conn: it invalidates now, and
// again when the connection's transaction ends.
func (i *interceptor) ddlRan(conn any) {
	i.planner.reg.InvalidateAll()
	if !idle(conn) {
		i.planner.ddlConns.markChanged(conn)
	}
}

// txEnded invalidates if conn's ended transaction ran DDL.
func (i *interceptor) txEnded(conn any) {
	if i.planner.ddlConns.unmark(conn) {
		i.planner.reg.InvalidateAll()
	}
}
