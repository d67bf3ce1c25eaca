package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/examples/orms/internal/demo"
	"github.com/auditpgx/auditpgx/examples/orms/internal/suite"
	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/store"
)

func TestMain(m *testing.M) {
	// For TestDemo, which runs the program on the default registry.
	if err := register(); err != nil {
		panic(err)
	}
	os.Exit(suite.Main(m))
}

// now is GORM's clock in these tests, so that both sides write the same
// timestamps and entries can be written out in full.
var now = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

const nowJSON = `"2024-05-01T12:00:00+00:00"`

func registerTables(r *auditpgx.Registry) error {
	return errors.Join(
		r.RegisterTable("users", auditpgx.Exclude("updated_at"), auditpgx.Redact("password")),
		r.RegisterTable("products"),
	)
}

// env is a suite.Env with GORM opened on both sides and the models
// migrated through each.
type env struct {
	*suite.Env
	plain, audited *gorm.DB
}

func newEnv(t *testing.T, cfg gorm.Config) *env {
	t.Helper()
	return newEnvWith(t, cfg, registerTables, &User{}, &Product{})
}

// newEnvWith registers tables with register and migrates models.
func newEnvWith(t *testing.T, cfg gorm.Config, register func(*auditpgx.Registry) error, models ...any) *env {
	t.Helper()
	e := &env{Env: suite.New(t, suite.Config{Register: register})}
	cfg.NowFunc = func() time.Time { return now }
	cfg.Logger = logger.Discard
	e.plain = openGorm(t, postgres.Config{Conn: e.Plain}, cfg)
	e.audited = openGorm(t, postgres.Config{Conn: e.Audited}, cfg)
	for _, db := range []*gorm.DB{e.plain, e.audited} {
		require.NoError(t, db.AutoMigrate(models...))
	}
	return e
}

func openGorm(t *testing.T, pc postgres.Config, cfg gorm.Config) *gorm.DB {
	t.Helper()
	db, err := gorm.Open(postgres.New(pc), &cfg)
	require.NoError(t, err)
	return db
}

// both runs fn through plain pgx, then through auditpgx, each time with
// actor in the context, and returns both results.
func both[T any](e *env, actor string, fn func(db *gorm.DB) T) (plain, audited T) {
	ctx := auditpgx.WithActor(context.Background(), actor)
	return fn(e.plain.WithContext(ctx)), fn(e.audited.WithContext(ctx))
}

// result is what GORM reports for one operation.
type result struct {
	RowsAffected int64
	Err          string
}

func resultOf(tx *gorm.DB) result {
	return result{RowsAffected: tx.RowsAffected, Err: errText(tx.Error)}
}

// errText compares errors by message: a *pgconn.PgError also names the
// schema, which differs between the two sides.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// userJSON is the audited image of a user row: updated_at is excluded and
// password redacted.
func userJSON(id int, name, email string, age int, deletedAt string) string {
	return fmt.Sprintf(`{"id": %d, "name": %q, "email": %q, "age": %d, "password": "$encrypted$", "created_at": %s, "deleted_at": %s}`,
		id, name, email, age, nowJSON, deletedAt)
}

func TestCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, gorm.Config{})
	type out struct {
		One      User
		Batch    []User
		Products []Product
		Results  []result
	}
	want, got := both(e, "alice", func(db *gorm.DB) (o out) {
		o.One = User{Name: "Al", Email: "al@example.com", Age: 30, Password: "s1"}
		o.Results = append(o.Results, resultOf(db.Create(&o.One)))
		for i := range 5 {
			o.Batch = append(o.Batch, User{Name: fmt.Sprintf("u%d", i), Email: fmt.Sprintf("u%d@example.com", i), Age: 20 + i})
		}
		// Three INSERTs of two, two and one rows.
		o.Results = append(o.Results, resultOf(db.CreateInBatches(&o.Batch, 2)))
		o.Products = []Product{{Code: "p1", Name: "Pen", Price: 2}, {Code: "p2", Name: "Ink", Price: 5}}
		o.Results = append(o.Results, resultOf(db.Create(&o.Products)))
		return o
	})
	require.Equal(t, want, got)
	require.Equal(t, []result{{RowsAffected: 1}, {RowsAffected: 5}, {RowsAffected: 2}}, got.Results)
	require.Equal(t, uint(6), got.Batch[4].ID)

	e.RequireSameTables()
	e.RequireEntries(suite.By("alice",
		suite.Create("users", "1", userJSON(1, "Al", "al@example.com", 30, "null")),
		suite.Create("users", "2", userJSON(2, "u0", "u0@example.com", 20, "null")),
		suite.Create("users", "3", userJSON(3, "u1", "u1@example.com", 21, "null")),
		suite.Create("users", "4", userJSON(4, "u2", "u2@example.com", 22, "null")),
		suite.Create("users", "5", userJSON(5, "u3", "u3@example.com", 23, "null")),
		suite.Create("users", "6", userJSON(6, "u4", "u4@example.com", 24, "null")),
		suite.Create("products", "p1", `{"code": "p1", "name": "Pen", "price": 2}`),
		suite.Create("products", "p2", `{"code": "p2", "name": "Ink", "price": 5}`),
	)...)
	e.RequireReplay()
}

func TestSaveAndUpdates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, gorm.Config{})
	type out struct {
		Users   []User
		Results []result
	}
	want, got := both(e, "bob", func(db *gorm.DB) (o out) {
		al := User{Name: "Al", Email: "al@example.com", Age: 30, Password: "s1"}
		bea := User{Name: "Bea", Email: "bea@example.com", Age: 40}
		cy := User{Name: "Cy", Email: "cy@example.com", Age: 50}
		// Save of a new record is an INSERT.
		for _, u := range []*User{&al, &bea, &cy} {
			o.Results = append(o.Results, resultOf(db.Save(u)))
		}
		// Save of a loaded record writes every column; only name and age
		// change.
		al.Name, al.Age = "Alan", 31
		o.Results = append(o.Results, resultOf(db.Save(&al)))
		// Updates with a struct writes its non-zero fields; the password
		// changes and is recorded as redacted.
		o.Results = append(o.Results, resultOf(db.Model(&al).Updates(User{Name: "Alan B", Password: "s2"})))
		// Updates with a map.
		o.Results = append(o.Results, resultOf(db.Model(&bea).Updates(map[string]any{"age": 41, "email": "b@example.com"})))
		// Only updated_at, which is excluded, changes: no entry.
		o.Results = append(o.Results, resultOf(db.Model(&bea).Update("age", 41)))
		// An update of many rows, with an expression.
		o.Results = append(o.Results, resultOf(db.Model(&User{}).Where("age >= ?", 40).Update("name", gorm.Expr("upper(name)"))))
		// An update of many rows that returns them.
		var returned []User
		o.Results = append(o.Results, resultOf(db.Model(&returned).Clauses(clause.Returning{}).
			Where("age > ?", 45).Update("age", gorm.Expr("age + 1"))))
		o.Users = append(o.Users, returned...)
		var all []User
		o.Results = append(o.Results, resultOf(db.Order("id").Find(&all)))
		o.Users = append(o.Users, all...)
		return o
	})
	require.Equal(t, want, got)
	require.Equal(t, []result{
		{RowsAffected: 1}, {RowsAffected: 1}, {RowsAffected: 1},
		{RowsAffected: 1}, {RowsAffected: 1}, {RowsAffected: 1}, {RowsAffected: 1},
		{RowsAffected: 2}, {RowsAffected: 1}, {RowsAffected: 3},
	}, got.Results)
	require.Equal(t, "CY", got.Users[0].Name)
	require.Equal(t, 51, got.Users[0].Age)

	e.RequireSameTables()
	e.RequireEntries(suite.By("bob",
		suite.Create("users", "1", userJSON(1, "Al", "al@example.com", 30, "null")),
		suite.Create("users", "2", userJSON(2, "Bea", "bea@example.com", 40, "null")),
		suite.Create("users", "3", userJSON(3, "Cy", "cy@example.com", 50, "null")),
		suite.Update("users", "1", `{"name": ["Al", "Alan"], "age": [30, 31]}`),
		suite.Update("users", "1", `{"name": ["Alan", "Alan B"], "password": ["$encrypted$", "$encrypted$"]}`),
		suite.Update("users", "2", `{"age": [40, 41], "email": ["bea@example.com", "b@example.com"]}`),
		// Row 3 comes first: rows 2's newest version is at the heap's end.
		suite.Update("users", "3", `{"name": ["Cy", "CY"]}`),
		suite.Update("users", "2", `{"name": ["Bea", "BEA"]}`),
		suite.Update("users", "3", `{"age": [50, 51]}`),
	)...)
	e.RequireReplay()
}

func TestDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t, gorm.Config{})
	type out struct {
		Deleted []User
		Left    []User
		Results []result
	}
	want, got := both(e, "carol", func(db *gorm.DB) (o out) {
		users := []User{
			{Name: "a", Email: "a@example.com", Age: 1},
			{Name: "b", Email: "b@example.com", Age: 2},
			{Name: "c", Email: "c@example.com", Age: 3},
			{Name: "d", Email: "d@example.com", Age: 4},
		}
		o.Results = append(o.Results, resultOf(db.Create(&users)))
		o.Results = append(o.Results, resultOf(db.Create(&Product{Code: "p1", Name: "Pen", Price: 2})))
		// Soft delete: an UPDATE of deleted_at.
		o.Results = append(o.Results, resultOf(db.Delete(&users[0])))
		// Hard delete.
		o.Results = append(o.Results, resultOf(db.Unscoped().Delete(&users[1])))
		// A soft-deleted row is not deleted again.
		o.Results = append(o.Results, resultOf(db.Delete(&User{}, users[0].ID)))
		// Soft delete of many rows.
		o.Results = append(o.Results, resultOf(db.Where("age > ?", 2).Delete(&User{})))
		// Hard delete of the soft-deleted rows, returning them.
		o.Results = append(o.Results, resultOf(db.Unscoped().Clauses(clause.Returning{}).
			Where("deleted_at IS NOT NULL AND age < ?", 4).Delete(&o.Deleted)))
		// By primary key, on a table with a text key.
		o.Results = append(o.Results, resultOf(db.Delete(&Product{Code: "p1"})))
		// Nothing to delete.
		o.Results = append(o.Results, resultOf(db.Unscoped().Delete(&User{}, 42)))
		o.Results = append(o.Results, resultOf(db.Unscoped().Order("id").Find(&o.Left)))
		return o
	})
	require.Equal(t, want, got)
	require.Equal(t, []result{
		{RowsAffected: 4}, {RowsAffected: 1}, {RowsAffected: 1}, {RowsAffected: 1}, {RowsAffected: 0},
		{RowsAffected: 2}, {RowsAffected: 2}, {RowsAffected: 1}, {RowsAffected: 0}, {RowsAffected: 1},
	}, got.Results)

	e.RequireSameTables()
	deleted := nowJSON
	e.RequireEntries(suite.By("carol",
		suite.Create("users", "1", userJSON(1, "a", "a@example.com", 1, "null")),
		suite.Create("users", "2", userJSON(2, "b", "b@example.com", 2, "null")),
		suite.Create("users", "3", userJSON(3, "c", "c@example.com", 3, "null")),
		suite.Create("users", "4", userJSON(4, "d", "d@example.com", 4, "null")),
		suite.Create("products", "p1", `{"code": "p1", "name": "Pen", "price": 2}`),
		suite.Update("users", "1", `{"deleted_at": [null, `+deleted+`]}`),
		suite.Delete("users", "2", userJSON(2, "b", "b@example.com", 2, "null")),
		suite.Update("users", "3", `{"deleted_at": [null, `+deleted+`]}`),
		suite.Update("users", "4", `{"deleted_at": [null, `+deleted+`]}`),
		suite.Delete("users", "1", userJSON(1, "a", "a@example.com", 1, deleted)),
		suite.Delete("users", "3", userJSON(3, "c", "c@example.com", 3, deleted)),
		suite.Delete("products", "p1", `{"code": "p1", "name": "Pen", "price": 2}`),
	)...)
	e.RequireReplay()
}

func TestUpsertDoNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, gorm.Config{})
	want, got := both(e, "alice", func(db *gorm.DB) (rs []result) {
		rs = append(rs, resultOf(db.Create(&Product{Code: "p1", Name: "Pen", Price: 2})))
		ps := []Product{{Code: "p1", Name: "Pencil", Price: 3}, {Code: "p2", Name: "Ink", Price: 5}}
		rs = append(rs, resultOf(db.Clauses(clause.OnConflict{DoNothing: true}).Create(&ps)))
		return rs
	})
	require.Equal(t, want, got)
	require.Equal(t, []result{{RowsAffected: 1}, {RowsAffected: 1}}, got)
	e.RequireSameTables()
	e.RequireEntries(suite.By("alice",
		suite.Create("products", "p1", `{"code": "p1", "name": "Pen", "price": 2}`),
		suite.Create("products", "p2", `{"code": "p2", "name": "Ink", "price": 5}`),
	)...)
	e.RequireReplay()
}

// TestUpsertDoUpdate needs INSERT ... ON CONFLICT DO UPDATE, which GORM
// sends for OnConflict with DoUpdates or UpdateAll, for Save of a slice,
// and for Save of a struct whose primary key matches no row.
func TestUpsertDoUpdate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, gorm.Config{})
	type out struct {
		Products []Product
		Users    []User
		Results  []result
	}
	want, got := both(e, "alice", func(db *gorm.DB) (o out) {
		o.Results = append(o.Results, resultOf(db.Create(&Product{Code: "p1", Name: "Pen", Price: 2})))
		o.Results = append(o.Results, resultOf(db.Create(&Product{Code: "p2", Name: "Ink", Price: 5})))
		ps := []Product{{Code: "p1", Name: "Pen", Price: 3}, {Code: "p2", Name: "Ink", Price: 5}, {Code: "p3", Name: "Pad", Price: 4}}
		o.Results = append(o.Results, resultOf(db.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "code"}},
			DoUpdates: clause.AssignmentColumns([]string{"name", "price"}),
		}).Create(&ps)))
		o.Results = append(o.Results, resultOf(db.Clauses(clause.OnConflict{UpdateAll: true}).
			Create(&Product{Code: "p3", Name: "Notepad", Price: 4})))
		// Save of a slice is an upsert of every element.
		o.Products = []Product{{Code: "p1", Name: "Pen", Price: 1}, {Code: "p4", Name: "Clip", Price: 1}}
		o.Results = append(o.Results, resultOf(db.Save(&o.Products)))
		// Save of a struct whose key matches no row: the UPDATE affects
		// nothing, so GORM inserts it with ON CONFLICT DO UPDATE.
		u := User{ID: 7, Name: "Seven", Email: "seven@example.com", Age: 7}
		o.Results = append(o.Results, resultOf(db.Save(&u)))
		o.Users = append(o.Users, u)
		return o
	})
	require.Equal(t, want, got)
	require.Equal(t, "", got.Results[len(got.Results)-1].Err)
	e.RequireSameTables()
	e.RequireEntries(suite.By("alice",
		suite.Create("products", "p1", `{"code": "p1", "name": "Pen", "price": 2}`),
		suite.Create("products", "p2", `{"code": "p2", "name": "Ink", "price": 5}`),
		suite.Update("products", "p1", `{"price": [2, 3]}`),
		suite.Create("products", "p3", `{"code": "p3", "name": "Pad", "price": 4}`),
		suite.Update("products", "p3", `{"name": ["Pad", "Notepad"]}`),
		suite.Update("products", "p1", `{"price": [3, 1]}`),
		suite.Create("products", "p4", `{"code": "p4", "name": "Clip", "price": 1}`),
		suite.Create("users", "7", userJSON(7, "Seven", "seven@example.com", 7, "null")),
	)...)
	e.RequireReplay()
}

func TestNestedTransactions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, gorm.Config{})
	errInner := errors.New("inner rolled back")
	errOuter := errors.New("outer rolled back")
	type out struct {
		Inner, Outer, Discarded string
		Users                   []User
	}
	want, got := both(e, "dave", func(db *gorm.DB) (o out) {
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Create(&User{Name: "kept", Email: "kept@example.com"}).Error; err != nil {
				return err
			}
			// db.Transaction inside db.Transaction is a SAVEPOINT; an
			// error rolls back to it.
			o.Inner = errText(tx.Transaction(func(tx *gorm.DB) error {
				if err := tx.Create(&User{Name: "undone", Email: "undone@example.com"}).Error; err != nil {
					return err
				}
				if err := tx.Model(&User{}).Where("name = ?", "kept").Update("age", 99).Error; err != nil {
					return err
				}
				return errInner
			}))
			// A committed inner transaction keeps its writes.
			return tx.Transaction(func(tx *gorm.DB) error {
				return tx.Model(&User{}).Where("name = ?", "kept").Update("age", 1).Error
			})
		})
		o.Outer = errText(err)
		o.Discarded = errText(db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Create(&User{Name: "gone", Email: "gone@example.com"}).Error; err != nil {
				return err
			}
			return errOuter
		}))
		db.Order("id").Find(&o.Users)
		return o
	})
	require.Equal(t, want, got)
	require.Equal(t, out{Inner: errInner.Error(), Outer: "", Discarded: errOuter.Error()}, out{Inner: got.Inner, Outer: got.Outer, Discarded: got.Discarded})
	require.Len(t, got.Users, 1)
	e.RequireSameTables()
	e.RequireEntries(suite.By("dave",
		suite.Create("users", "1", userJSON(1, "kept", "kept@example.com", 0, "null")),
		suite.Update("users", "1", `{"age": [0, 1]}`),
	)...)
	e.RequireReplay()
}

func TestPrepareStmt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, gorm.Config{PrepareStmt: true})
	type out struct {
		Users   []User
		Results []result
	}
	want, got := both(e, "erin", func(db *gorm.DB) (o out) {
		// Twice each, so the second run uses GORM's cached statement.
		for i := range 2 {
			u := User{Name: fmt.Sprintf("u%d", i), Email: fmt.Sprintf("u%d@example.com", i), Age: i}
			o.Results = append(o.Results, resultOf(db.Create(&u)))
			o.Results = append(o.Results, resultOf(db.Model(&u).Update("age", gorm.Expr("age + ?", 10))))
		}
		o.Results = append(o.Results, resultOf(db.Create(&User{Name: "dup", Email: "u0@example.com"})))
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Delete(&User{}, 1).Error; err != nil {
				return err
			}
			_ = tx.Transaction(func(tx *gorm.DB) error {
				if err := tx.Unscoped().Delete(&User{}, 2).Error; err != nil {
					return err
				}
				return errors.New("undo")
			})
			return nil
		})
		o.Results = append(o.Results, result{Err: errText(err)})
		o.Results = append(o.Results, resultOf(db.Unscoped().Order("id").Find(&o.Users)))
		return o
	})
	require.Equal(t, want, got)
	require.Equal(t, "", got.Results[5].Err)
	e.RequireSameTables()
	e.RequireEntries(suite.By("erin",
		suite.Create("users", "1", userJSON(1, "u0", "u0@example.com", 0, "null")),
		suite.Update("users", "1", `{"age": [0, 10]}`),
		suite.Create("users", "2", userJSON(2, "u1", "u1@example.com", 1, "null")),
		suite.Update("users", "2", `{"age": [1, 11]}`),
		suite.Update("users", "1", `{"deleted_at": [null, `+nowJSON+`]}`),
	)...)
	e.RequireReplay()
}

func TestTranslateError(t *testing.T) {
	t.Parallel()
	for _, translate := range []bool{false, true} {
		t.Run(fmt.Sprint("TranslateError=", translate), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, gorm.Config{TranslateError: translate})
			type out struct {
				Err           string
				Duplicated    bool
				Code          string
				UpdateErr     string
				UpdateDup     bool
				InvalidColumn string
			}
			want, got := both(e, "alice", func(db *gorm.DB) (o out) {
				require.NoError(t, db.Create(&User{Name: "a", Email: "a@example.com"}).Error)
				require.NoError(t, db.Create(&User{Name: "b", Email: "b@example.com"}).Error)
				err := db.Create(&User{Name: "a2", Email: "a@example.com"}).Error
				o.Err = errText(err)
				o.Duplicated = errors.Is(err, gorm.ErrDuplicatedKey)
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) {
					o.Code = pgErr.Code
				}
				err = db.Model(&User{}).Where("name = ?", "b").Update("email", "a@example.com").Error
				o.UpdateErr = errText(err)
				o.UpdateDup = errors.Is(err, gorm.ErrDuplicatedKey)
				o.InvalidColumn = errText(db.Model(&User{}).Where("name = ?", "b").Update("nosuch", 1).Error)
				return o
			})
			require.Equal(t, want, got)
			require.Equal(t, "23505", got.Code)
			require.Equal(t, translate, got.Duplicated)
			require.Equal(t, translate, got.UpdateDup)
			require.Contains(t, got.InvalidColumn, "42703")
			e.RequireSameTables()
			e.RequireEntries(suite.By("alice",
				suite.Create("users", "1", userJSON(1, "a", "a@example.com", 0, "null")),
				suite.Create("users", "2", userJSON(2, "b", "b@example.com", 0, "null")),
			)...)
			e.RequireReplay()
		})
	}
}

// UserV2 is User after a new field: AutoMigrate adds the column through
// auditpgx, which must audit it from the next write on.
type UserV2 struct {
	User
	Nickname string
}

func (UserV2) TableName() string { return "users" }

func TestAutoMigrateAddsColumn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, gorm.Config{})
	type out struct {
		Users   []UserV2
		Results []result
	}
	want, got := both(e, "alice", func(db *gorm.DB) (o out) {
		o.Results = append(o.Results, resultOf(db.Create(&User{Name: "a", Email: "a@example.com"})))
		require.NoError(t, db.AutoMigrate(&UserV2{}))
		o.Results = append(o.Results, resultOf(db.Create(&UserV2{User: User{Name: "b", Email: "b@example.com"}, Nickname: "bee"})))
		o.Results = append(o.Results, resultOf(db.Model(&UserV2{}).Where("id = ?", 1).Update("nickname", "ay")))
		o.Results = append(o.Results, resultOf(db.Order("id").Find(&o.Users)))
		return o
	})
	require.Equal(t, want, got)
	e.RequireSameTables()
	withNick := func(id int, name, email, nick string) string {
		return fmt.Sprintf(`{"id": %d, "name": %q, "email": %q, "age": 0, "password": "$encrypted$", "created_at": %s, "deleted_at": null, "nickname": %q}`,
			id, name, email, nowJSON, nick)
	}
	e.RequireEntries(suite.By("alice",
		suite.Create("users", "1", userJSON(1, "a", "a@example.com", 0, "null")),
		suite.Create("users", "2", withNick(2, "b", "b@example.com", "bee")),
		suite.Update("users", "1", `{"nickname": [null, "ay"]}`),
	)...)
	e.RequireReplay()
}

// TestDemo runs the program as `go run ./gorm` does, with DriverName
// "auditpgx" and the default registry, and checks what it wrote.
func TestDemo(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	var entries []store.Entry
	err := demo.InSchema(ctx, pgtest.URL(t), func(dsn string) error {
		if err := run(ctx, &buf, dsn); err != nil {
			return err
		}
		entries = suite.ReadEntries(t, dsn)
		return nil
	})
	require.NoError(t, err)
	t.Log("\n" + buf.String())
	require.Contains(t, buf.String(), "errors.Is(err, gorm.ErrDuplicatedKey) = true")
	suite.RequireEntryList(t, entries,
		suite.Create("users", "1", `{"id": 1, "name": "Al", "email": "al@example.com", "age": 30, "password": "$encrypted$", "created_at": "$any$", "deleted_at": null}`).By("alice"),
		suite.Create("products", "p1", `{"code": "p1", "name": "Pen", "price": 2}`).By("alice"),
		suite.Create("products", "p2", `{"code": "p2", "name": "Ink", "price": 5}`).By("alice"),
		suite.Update("users", "1", `{"name": ["Al", "Alan"], "password": ["$encrypted$", "$encrypted$"]}`).By("bob"),
		suite.Update("products", "p1", `{"price": [2, 4]}`).By("bob"),
		suite.Update("products", "p2", `{"price": [5, 10]}`).By("bob"),
		suite.Update("users", "1", `{"deleted_at": [null, "$any$"]}`).By("bob"),
	)
}

// TestSimpleProtocol runs GORM over pgx's simple protocol, which
// pgbouncer in transaction mode needs (gorm's PreferSimpleProtocol; with
// DriverName it is set in the DSN instead): pgx writes the arguments into
// the SQL text itself.
func TestSimpleProtocol(t *testing.T) {
	t.Parallel()
	e := &env{Env: suite.New(t, suite.Config{Register: registerTables})}
	const mode = "&default_query_exec_mode=simple_protocol"
	conn, err := auditpgx.NewConnector(e.AuditedDSN+mode, auditpgx.WithRegistry(e.Registry))
	require.NoError(t, err)
	audited := sql.OpenDB(conn)
	t.Cleanup(func() { audited.Close() })
	plain, err := sql.Open("pgx", e.PlainDSN+mode)
	require.NoError(t, err)
	t.Cleanup(func() { plain.Close() })
	cfg := gorm.Config{NowFunc: func() time.Time { return now }, Logger: logger.Discard}
	e.plain = openGorm(t, postgres.Config{Conn: plain}, cfg)
	e.audited = openGorm(t, postgres.Config{Conn: audited}, cfg)
	type out struct {
		Users   []User
		Results []result
	}
	want, got := both(e, "frank", func(db *gorm.DB) (o out) {
		require.NoError(t, db.AutoMigrate(&User{}, &Product{}))
		u := User{Name: "O'Brien", Email: "ob@example.com", Password: "s"}
		o.Results = append(o.Results, resultOf(db.Create(&u)))
		o.Results = append(o.Results, resultOf(db.Model(&u).Updates(map[string]any{"name": "O'Neil", "age": 3})))
		o.Results = append(o.Results, resultOf(db.Create(&User{Name: "dup", Email: "ob@example.com"})))
		o.Results = append(o.Results, resultOf(db.Delete(&u)))
		o.Results = append(o.Results, resultOf(db.Unscoped().Find(&o.Users)))
		return o
	})
	require.Equal(t, want, got)
	require.Contains(t, got.Results[2].Err, "23505")
	e.RequireSameTables()
	e.RequireEntries(suite.By("frank",
		suite.Create("users", "1", userJSON(1, "O'Brien", "ob@example.com", 0, "null")),
		suite.Update("users", "1", `{"name": ["O'Brien", "O'Neil"], "age": [0, 3]}`),
		suite.Update("users", "1", `{"deleted_at": [null, `+nowJSON+`]}`),
	)...)
	e.RequireReplay()
}
