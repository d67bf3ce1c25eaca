// Command gorm shows GORM on auditpgx: the only change from plain pgx is
// DriverName: "auditpgx" in gorm.io/driver/postgres's Config.
//
//	cd examples && go run ./gorm
//
// It starts a throwaway PostgreSQL (set AUDITPGX_DATABASE_URL to use an
// existing server instead), migrates two models, changes them as two
// actors and prints the entries that auditpgx wrote.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/examples/orms/internal/demo"
)

// User is soft-deleted (DeletedAt), has a secret that entries must not
// hold, and an UpdatedAt that changes on every save and is not audited.
type User struct {
	ID        uint   `gorm:"primaryKey"`
	Name      string `gorm:"not null"`
	Email     string `gorm:"uniqueIndex;not null"`
	Age       int
	Password  string
	CreatedAt time.Time
	UpdatedAt time.Time
	DeletedAt gorm.DeletedAt `gorm:"index"`
}

// Product has a natural key, for upserts.
type Product struct {
	Code  string `gorm:"primaryKey"`
	Name  string
	Price int
}

// register audits the models' tables in the default registry, which
// DriverName "auditpgx" uses.
func register() error {
	return errors.Join(
		auditpgx.RegisterTable("users", auditpgx.Exclude("updated_at"), auditpgx.Redact("password")),
		auditpgx.RegisterTable("products"),
	)
}

func main() {
	if err := register(); err != nil {
		panic(err)
	}
	demo.Main("gorm", run)
}

func run(ctx context.Context, w io.Writer, dsn string) error {
	db, err := gorm.Open(postgres.New(postgres.Config{DriverName: "auditpgx", DSN: dsn}),
		&gorm.Config{Logger: logger.Default.LogMode(logger.Silent), TranslateError: true})
	if err != nil {
		return err
	}
	if err := db.AutoMigrate(&User{}, &Product{}); err != nil {
		return err
	}

	alice := db.WithContext(auditpgx.WithActor(ctx, "alice"))
	al := User{Name: "Al", Email: "al@example.com", Age: 30, Password: "bcrypt:al"}
	if err := alice.Create(&al).Error; err != nil {
		return err
	}
	if err := alice.CreateInBatches([]Product{{Code: "p1", Name: "Pen", Price: 2}, {Code: "p2", Name: "Ink", Price: 5}}, 100).Error; err != nil {
		return err
	}
	err = alice.Create(&User{Name: "Al again", Email: "al@example.com"}).Error
	fmt.Fprintf(w, "a second al@example.com: errors.Is(err, gorm.ErrDuplicatedKey) = %v\n", errors.Is(err, gorm.ErrDuplicatedKey))

	bob := db.WithContext(auditpgx.WithActor(ctx, "bob"))
	if err := bob.Model(&al).Updates(User{Name: "Alan", Password: "bcrypt:alan"}).Error; err != nil {
		return err
	}
	if err := bob.Model(&Product{}).Where("price < ?", 10).Update("price", gorm.Expr("price * 2")).Error; err != nil {
		return err
	}
	// The inner transaction rolls back to its savepoint: its write leaves
	// no entry.
	err = bob.Transaction(func(tx *gorm.DB) error {
		if err := tx.Delete(&al).Error; err != nil { // soft delete: an UPDATE of deleted_at
			return err
		}
		_ = tx.Transaction(func(tx *gorm.DB) error {
			if err := tx.Delete(&Product{Code: "p2"}).Error; err != nil {
				return err
			}
			return errors.New("changed my mind")
		})
		return nil
	})
	if err != nil {
		return err
	}

	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	fmt.Fprintln(w)
	return demo.PrintEntries(ctx, w, sqlDB)
}
