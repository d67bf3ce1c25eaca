package auditpgx_test

import (
	"testing"

	"github.com/auditpgx/auditpgx"
)

func TestDbgSkew(t *testing.T) {
	e := newEnv(t, `CREATE TABLE accounts (id int PRIMARY KEY, system_user text); INSERT INTO accounts VALUES (1, 'a');`,
		func(r *auditpgx.Registry) error { return r.RegisterTable("accounts") })
	for _, q := range []string{
		`UPDATE accounts SET system_user = 'y'`,
		`WITH x AS (SELECT E'\'' AS a) UPDATE accounts SET system_user = 'z'`,
	} {
		_, err := e.db.ExecContext(e.ctx, q)
		var v string
		e.plain.QueryRow(`SELECT system_user FROM accounts`).Scan(&v)
		t.Logf("%s\n err=%v value=%s entries=%d", q, err, v, e.countEntries())
	}
}
