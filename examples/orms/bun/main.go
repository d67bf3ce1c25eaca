// Command bun shows bun on auditpgx: bun.NewDB takes the *sql.DB that
// sql.Open("auditpgx", ...) returns, and nothing else changes.
//
//	cd examples && go run ./bun
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/examples/orms/internal/demo"
)

// User is soft-deleted: bun's Delete sets deleted_at, ForceDelete deletes.
type User struct {
	bun.BaseModel `bun:"table:users,alias:u"`

	ID        int64     `bun:"id,pk,autoincrement"`
	Name      string    `bun:"name,notnull"`
	Email     string    `bun:"email,notnull,unique"`
	Password  string    `bun:"password"`
	DeletedAt time.Time `bun:"deleted_at,soft_delete,nullzero"`
}

// Story belongs to a user.
type Story struct {
	bun.BaseModel `bun:"table:stories,alias:s"`

	ID       int64  `bun:"id,pk,autoincrement"`
	Title    string `bun:"title,notnull"`
	AuthorID int64  `bun:"author_id,notnull"`
	Author   *User  `bun:"rel:belongs-to,join:author_id=id"`
}

func register() error {
	return errors.Join(
		auditpgx.RegisterTable("users", auditpgx.Redact("password")),
		auditpgx.RegisterTable("stories"),
	)
}

// createTables creates the models' tables with bun, through auditpgx.
func createTables(ctx context.Context, db *bun.DB) error {
	for _, model := range []any{(*User)(nil), (*Story)(nil)} {
		if _, err := db.NewCreateTable().Model(model).Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	if err := register(); err != nil {
		panic(err)
	}
	demo.Main("bun", run)
}

func run(ctx context.Context, w io.Writer, dsn string) error {
	sqldb, err := sql.Open("auditpgx", dsn)
	if err != nil {
		return err
	}
	db := bun.NewDB(sqldb, pgdialect.New())
	defer db.Close()
	if err := createTables(ctx, db); err != nil {
		return err
	}

	alice := auditpgx.WithActor(ctx, "alice")
	users := []User{{Name: "Al", Email: "al@example.com", Password: "bcrypt:al"}, {Name: "Bea", Email: "bea@example.com"}}
	if _, err := db.NewInsert().Model(&users).Exec(alice); err != nil {
		return err
	}
	story := Story{Title: "Hello", AuthorID: users[0].ID}
	if _, err := db.NewInsert().Model(&story).Exec(alice); err != nil {
		return err
	}

	bob := auditpgx.WithActor(ctx, "bob")
	var renamed User
	if err := db.NewUpdate().Model(&renamed).Set("name = ?", "Alan").Where("id = ?", users[0].ID).Returning("*").Scan(bob); err != nil {
		return err
	}
	if _, err := db.NewDelete().Model(&users[1]).WherePK().Exec(bob); err != nil { // soft delete
		return err
	}
	var loaded Story
	if err := db.NewSelect().Model(&loaded).Relation("Author").Where("s.id = ?", story.ID).Scan(ctx); err != nil {
		return err
	}
	fmt.Fprintf(w, "%q by %s; entries:\n\n", loaded.Title, loaded.Author.Name)
	return demo.PrintEntries(ctx, w, sqldb)
}
