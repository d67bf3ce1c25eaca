// Command ent shows an ent client on auditpgx: entsql.OpenDB wraps the
// *sql.DB that sql.Open("auditpgx", ...) returns, and the generated client
// works as on plain pgx.
//
//	cd examples && go run ./ent
//
// ent/ holds the client generated from ent/schema; regenerate it with
// go generate ./ent/ent.
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/examples/orms/ent/ent"
	"github.com/auditpgx/auditpgx/examples/orms/ent/ent/user"
	"github.com/auditpgx/auditpgx/examples/orms/internal/demo"
)

// groupUsers describes ent's join table of the Group.users edge, so that
// adding and removing members records associate and disassociate entries
// on the group.
var groupUsers = auditpgx.M2M{
	Field:   "users",
	Owner:   auditpgx.Ref{Table: "groups", Column: "group_id"},
	Related: auditpgx.Ref{Table: "users", Column: "user_id"},
}

func register() error {
	return errors.Join(
		auditpgx.RegisterTable("users", auditpgx.Redact("password")),
		auditpgx.RegisterTable("groups"),
		auditpgx.RegisterM2M("group_users", groupUsers),
	)
}

// open returns an ent client on a *sql.DB.
func open(db *sql.DB) *ent.Client {
	return ent.NewClient(ent.Driver(entsql.OpenDB(dialect.Postgres, db)))
}

func main() {
	if err := register(); err != nil {
		panic(err)
	}
	demo.Main("ent", run)
}

func run(ctx context.Context, w io.Writer, dsn string) error {
	db, err := sql.Open("auditpgx", dsn)
	if err != nil {
		return err
	}
	client := open(db)
	defer client.Close()
	if err := client.Schema.Create(ctx); err != nil {
		return err
	}

	alice := auditpgx.WithActor(ctx, "alice")
	users, err := client.User.CreateBulk(
		client.User.Create().SetName("Al").SetEmail("al@example.com").SetPassword("bcrypt:al"),
		client.User.Create().SetName("Bea").SetEmail("bea@example.com"),
	).Save(alice)
	if err != nil {
		return err
	}
	admins, err := client.Group.Create().SetName("admins").AddUsers(users...).Save(alice)
	if err != nil {
		return err
	}

	bob := auditpgx.WithActor(ctx, "bob")
	tx, err := client.Tx(bob)
	if err != nil {
		return err
	}
	if _, err := tx.User.UpdateOneID(users[0].ID).SetName("Alan").AddAge(1).Save(bob); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	if err := tx.Group.UpdateOne(admins).RemoveUsers(users[1]).Exec(bob); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	n, err := client.User.Query().Where(user.HasGroups()).Count(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%d user(s) in a group; entries:\n\n", n)
	return demo.PrintEntries(ctx, w, db)
}
