package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/examples/orms/ent/ent"
	"github.com/auditpgx/auditpgx/examples/orms/ent/ent/group"
	"github.com/auditpgx/auditpgx/examples/orms/ent/ent/user"
	"github.com/auditpgx/auditpgx/examples/orms/internal/demo"
	"github.com/auditpgx/auditpgx/examples/orms/internal/suite"
	"github.com/auditpgx/auditpgx/internal/pgtest"
	"github.com/auditpgx/auditpgx/store"
)

func TestMain(m *testing.M) {
	if err := register(); err != nil { // the default registry, for TestDemo
		panic(err)
	}
	os.Exit(suite.Main(m))
}

func registerTables(r *auditpgx.Registry) error {
	return errors.Join(
		r.RegisterTable("users", auditpgx.Redact("password")),
		r.RegisterTable("groups"),
		r.RegisterM2M("group_users", groupUsers),
	)
}

type env struct {
	*suite.Env
	plain, audited *ent.Client
}

// newEnv opens ent on both sides and runs its migration through each.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{Env: suite.New(t, suite.Config{Register: registerTables})}
	e.plain, e.audited = open(e.Plain), open(e.Audited)
	for _, c := range []*ent.Client{e.plain, e.audited} {
		require.NoError(t, c.Schema.Create(e.Ctx))
	}
	return e
}

func both[T any](e *env, actor string, fn func(ctx context.Context, c *ent.Client) T) (plain, audited T) {
	ctx := auditpgx.WithActor(context.Background(), actor)
	return fn(ctx, e.plain), fn(ctx, e.audited)
}

// userRow is what a test compares of an *ent.User, whose unexported
// fields hold the client.
type userRow struct {
	ID       int
	Name     string
	Email    string
	Password string
	Age      int
}

func rowOf(u *ent.User) userRow {
	if u == nil {
		return userRow{}
	}
	return userRow{ID: u.ID, Name: u.Name, Email: u.Email, Password: u.Password, Age: u.Age}
}

func rowsOf(us []*ent.User) []userRow {
	out := make([]userRow, len(us))
	for i, u := range us {
		out[i] = rowOf(u)
	}
	return out
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func userJSON(id int, name, email string, age int) string {
	return fmt.Sprintf(`{"id": %d, "name": %q, "email": %q, "password": "$encrypted$", "age": %d}`, id, name, email, age)
}

func TestCreateUpdateDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	type out struct {
		Created []userRow
		Updated userRow
		Counts  []int
		Errs    []string
		Flags   []bool
		Left    []userRow
	}
	want, got := both(e, "alice", func(ctx context.Context, c *ent.Client) (o out) {
		al, err := c.User.Create().SetName("Al").SetEmail("al@example.com").SetPassword("p1").Save(ctx)
		require.NoError(t, err)
		bulk, err := c.User.CreateBulk(
			c.User.Create().SetName("Bea").SetEmail("bea@example.com").SetAge(20),
			c.User.Create().SetName("Cy").SetEmail("cy@example.com").SetAge(30),
			c.User.Create().SetName("Di").SetEmail("di@example.com").SetAge(40),
		).Save(ctx)
		require.NoError(t, err)
		o.Created = rowsOf(append([]*ent.User{al}, bulk...))
		// Update one: ent reads the row back with RETURNING.
		up, err := c.User.UpdateOne(al).SetName("Alan").AddAge(5).SetPassword("p2").Save(ctx)
		require.NoError(t, err)
		o.Updated = rowOf(up)
		// Update many.
		n, err := c.User.Update().Where(user.AgeGTE(20)).AddAge(1).Save(ctx)
		require.NoError(t, err)
		o.Counts = append(o.Counts, n)
		// A unique violation.
		_, err = c.User.Create().SetName("dup").SetEmail("bea@example.com").Save(ctx)
		o.Errs = append(o.Errs, errText(err))
		o.Flags = append(o.Flags, ent.IsConstraintError(err))
		_, err = c.User.UpdateOneID(42).SetName("x").Save(ctx)
		o.Errs = append(o.Errs, errText(err))
		o.Flags = append(o.Flags, ent.IsNotFound(err))
		// Delete one and delete many.
		require.NoError(t, c.User.DeleteOneID(bulk[0].ID).Exec(ctx))
		n, err = c.User.Delete().Where(user.AgeGT(35)).Exec(ctx)
		require.NoError(t, err)
		o.Counts = append(o.Counts, n)
		o.Errs = append(o.Errs, errText(c.User.DeleteOneID(42).Exec(ctx)))
		left, err := c.User.Query().Order(ent.Asc(user.FieldID)).All(ctx)
		require.NoError(t, err)
		o.Left = rowsOf(left)
		return o
	})
	require.Equal(t, want, got)
	require.Equal(t, userRow{ID: 1, Name: "Alan", Email: "al@example.com", Password: "p2", Age: 5}, got.Updated)
	require.Equal(t, []int{3, 1}, got.Counts)
	require.Equal(t, []bool{true, true}, got.Flags)

	e.RequireSameTables()
	e.RequireEntries(suite.By("alice",
		suite.Create("users", "1", userJSON(1, "Al", "al@example.com", 0)),
		suite.Create("users", "2", userJSON(2, "Bea", "bea@example.com", 20)),
		suite.Create("users", "3", userJSON(3, "Cy", "cy@example.com", 30)),
		suite.Create("users", "4", userJSON(4, "Di", "di@example.com", 40)),
		suite.Update("users", "1", `{"name": ["Al", "Alan"], "age": [0, 5], "password": ["$encrypted$", "$encrypted$"]}`),
		suite.Update("users", "2", `{"age": [20, 21]}`),
		suite.Update("users", "3", `{"age": [30, 31]}`),
		suite.Update("users", "4", `{"age": [40, 41]}`),
		suite.Delete("users", "2", userJSON(2, "Bea", "bea@example.com", 21)),
		suite.Delete("users", "4", userJSON(4, "Di", "di@example.com", 41)),
	)...)
	e.RequireReplay()
}

func TestEdges(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	type out struct {
		Members [][]userRow
		Counts  []int
	}
	want, got := both(e, "bob", func(ctx context.Context, c *ent.Client) (o out) {
		us, err := c.User.CreateBulk(
			c.User.Create().SetName("a").SetEmail("a@example.com"),
			c.User.Create().SetName("b").SetEmail("b@example.com"),
			c.User.Create().SetName("c").SetEmail("c@example.com"),
		).Save(ctx)
		require.NoError(t, err)
		members := func(g *ent.Group) {
			ms, err := c.Group.QueryUsers(g).Order(ent.Asc(user.FieldID)).All(ctx)
			require.NoError(t, err)
			o.Members = append(o.Members, rowsOf(ms))
		}
		// A group created with its members.
		g, err := c.Group.Create().SetName("g").AddUsers(us[0], us[1]).Save(ctx)
		require.NoError(t, err)
		members(g)
		// Add from the other side of the edge, and remove.
		require.NoError(t, c.User.UpdateOne(us[2]).AddGroups(g).Exec(ctx))
		require.NoError(t, c.Group.UpdateOne(g).RemoveUsers(us[0]).Exec(ctx))
		members(g)
		// Adding a member twice changes nothing.
		require.NoError(t, c.Group.UpdateOne(g).AddUsers(us[1]).Exec(ctx))
		// Clear, on a group update of many groups.
		n, err := c.Group.Update().Where(group.Name("g")).ClearUsers().AddUsers(us[0]).Save(ctx)
		require.NoError(t, err)
		o.Counts = append(o.Counts, n)
		members(g)
		// A group deleted after its members were removed.
		require.NoError(t, c.Group.UpdateOne(g).ClearUsers().Exec(ctx))
		require.NoError(t, c.Group.DeleteOne(g).Exec(ctx))
		n, err = c.Group.Query().Count(ctx)
		require.NoError(t, err)
		o.Counts = append(o.Counts, n)
		return o
	})
	require.Equal(t, want, got)
	require.Equal(t, []int{1, 0}, got.Counts)
	e.RequireSameTables()
	e.RequireEntries(suite.By("bob",
		suite.Create("users", "1", userJSON(1, "a", "a@example.com", 0)),
		suite.Create("users", "2", userJSON(2, "b", "b@example.com", 0)),
		suite.Create("users", "3", userJSON(3, "c", "c@example.com", 0)),
		suite.Create("groups", "1", `{"id": 1, "name": "g"}`),
		// ent keeps an edge's ids in a map: the rows of one INSERT come
		// in any order.
		suite.Associate("groups", "1", "users", "users", "1").InAnyOrder(),
		suite.Associate("groups", "1", "users", "users", "2").InAnyOrder(),
		suite.Associate("groups", "1", "users", "users", "3"),
		suite.Disassociate("groups", "1", "users", "users", "1"),
		suite.Disassociate("groups", "1", "users", "users", "2"),
		suite.Disassociate("groups", "1", "users", "users", "3"),
		suite.Associate("groups", "1", "users", "users", "1"),
		suite.Disassociate("groups", "1", "users", "users", "1"),
		suite.Delete("groups", "1", `{"id": 1, "name": "g"}`),
	)...)
	e.RequireReplay()
}

// TestDeleteCascadesLinks deletes a user who belongs to a group. ent does
// not delete the join rows itself: its migration declares the join
// table's foreign keys ON DELETE CASCADE, and PostgreSQL removes them;
// auditpgx records those links as disassociated in the same statement.
func TestDeleteCascadesLinks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	want, got := both(e, "carol", func(ctx context.Context, c *ent.Client) []string {
		u, err := c.User.Create().SetName("a").SetEmail("a@example.com").Save(ctx)
		require.NoError(t, err)
		_, err = c.Group.Create().SetName("g").AddUsers(u).Save(ctx)
		require.NoError(t, err)
		return []string{errText(c.User.DeleteOne(u).Exec(ctx))}
	})
	require.Equal(t, want, got)
	e.RequireSameTables()
	e.RequireEntries(suite.By("carol",
		suite.Create("users", "1", userJSON(1, "a", "a@example.com", 0)),
		suite.Create("groups", "1", `{"id": 1, "name": "g"}`),
		suite.Associate("groups", "1", "users", "users", "1"),
		// The user's delete entry, then the link the cascade removes.
		suite.Delete("users", "1", userJSON(1, "a", "a@example.com", 0)),
		suite.Disassociate("groups", "1", "users", "users", "1"),
	)...)
	e.RequireReplay()
}

func TestTransaction(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	errUndo := errors.New("undo")
	// withTx is the helper ent's documentation recommends.
	withTx := func(ctx context.Context, c *ent.Client, fn func(tx *ent.Tx) error) error {
		tx, err := c.Tx(ctx)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return errors.Join(err, tx.Rollback())
		}
		return tx.Commit()
	}
	type out struct {
		Errs []string
		Left []userRow
	}
	want, got := both(e, "dave", func(ctx context.Context, c *ent.Client) (o out) {
		o.Errs = append(o.Errs, errText(withTx(ctx, c, func(tx *ent.Tx) error {
			u, err := tx.User.Create().SetName("gone").SetEmail("gone@example.com").Save(ctx)
			if err != nil {
				return err
			}
			if _, err := tx.Group.Create().SetName("gone").AddUsers(u).Save(ctx); err != nil {
				return err
			}
			return errUndo
		})))
		o.Errs = append(o.Errs, errText(withTx(ctx, c, func(tx *ent.Tx) error {
			u, err := tx.User.Create().SetName("kept").SetEmail("kept@example.com").Save(ctx)
			if err != nil {
				return err
			}
			_, err = tx.User.UpdateOne(u).SetAge(7).Save(ctx)
			return err
		})))
		left, err := c.User.Query().All(ctx)
		require.NoError(t, err)
		o.Left = rowsOf(left)
		return o
	})
	require.Equal(t, want, got)
	require.Equal(t, []string{"undo", ""}, got.Errs)
	e.RequireSameTables()
	e.RequireEntries(suite.By("dave",
		suite.Create("users", "2", userJSON(2, "kept", "kept@example.com", 0)),
		suite.Update("users", "2", `{"age": [0, 7]}`),
	)...)
	e.RequireReplay()
}

// TestDemo runs the program as `go run ./ent` does, on the default
// registry, and checks what it wrote.
func TestDemo(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	var entries []store.Entry
	require.NoError(t, demo.InSchema(ctx, pgtest.URL(t), func(dsn string) error {
		if err := run(ctx, &buf, dsn); err != nil {
			return err
		}
		entries = suite.ReadEntries(t, dsn)
		return nil
	}))
	t.Log("\n" + buf.String())
	suite.RequireEntryList(t, entries,
		suite.Create("users", "1", userJSON(1, "Al", "al@example.com", 0)).By("alice"),
		suite.Create("users", "2", userJSON(2, "Bea", "bea@example.com", 0)).By("alice"),
		suite.Create("groups", "1", `{"id": 1, "name": "admins"}`).By("alice"),
		suite.Associate("groups", "1", "users", "users", "1").By("alice").InAnyOrder(),
		suite.Associate("groups", "1", "users", "users", "2").By("alice").InAnyOrder(),
		suite.Update("users", "1", `{"name": ["Al", "Alan"], "age": [0, 1]}`).By("bob"),
		suite.Disassociate("groups", "1", "users", "users", "2").By("bob"),
	)
}
