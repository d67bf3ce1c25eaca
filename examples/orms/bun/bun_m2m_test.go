package main

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/examples/orms/internal/suite"
)

// Order has many items through the join model OrderItem.
type Order struct {
	bun.BaseModel `bun:"table:orders,alias:o"`

	ID    int64  `bun:"id,pk,autoincrement"`
	Note  string `bun:"note"`
	Items []Item `bun:"m2m:order_items,join:Order=Item"`
}

type Item struct {
	bun.BaseModel `bun:"table:items,alias:i"`

	ID   int64  `bun:"id,pk,autoincrement"`
	Name string `bun:"name"`
}

// OrderItem is the join model; bun needs it registered with RegisterModel.
type OrderItem struct {
	bun.BaseModel `bun:"table:order_items,alias:oi"`

	OrderID int64  `bun:"order_id,pk"`
	Order   *Order `bun:"rel:belongs-to,join:order_id=id"`
	ItemID  int64  `bun:"item_id,pk"`
	Item    *Item  `bun:"rel:belongs-to,join:item_id=id"`
}

var orderItems = auditpgx.M2M{
	Field:   "items",
	Owner:   auditpgx.Ref{Table: "orders", Column: "order_id"},
	Related: auditpgx.Ref{Table: "items", Column: "item_id"},
}

func registerOrders(r *auditpgx.Registry) error {
	return errors.Join(r.RegisterTable("orders"), r.RegisterTable("items"), r.RegisterM2M("order_items", orderItems))
}

func createOrderTables(ctx context.Context, db *bun.DB) error {
	db.RegisterModel((*OrderItem)(nil))
	for _, model := range []any{(*Order)(nil), (*Item)(nil), (*OrderItem)(nil)} {
		if _, err := db.NewCreateTable().Model(model).Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

func TestMany2Many(t *testing.T) {
	t.Parallel()
	e := newEnv(t, registerOrders, createOrderTables)
	type out struct {
		Loaded  Order
		Results []result
	}
	want, got := both(e, "erin", func(ctx context.Context, db *bun.DB) (o out) {
		order := Order{Note: "first"}
		o.Results = append(o.Results, resultOf(db.NewInsert().Model(&order).Exec(ctx)))
		items := []Item{{Name: "pen"}, {Name: "ink"}, {Name: "pad"}}
		o.Results = append(o.Results, resultOf(db.NewInsert().Model(&items).Exec(ctx)))
		links := []OrderItem{{OrderID: order.ID, ItemID: items[0].ID}, {OrderID: order.ID, ItemID: items[1].ID}}
		o.Results = append(o.Results, resultOf(db.NewInsert().Model(&links).Exec(ctx)))
		// A link moved to another item: one disassociate, one associate.
		o.Results = append(o.Results, resultOf(db.NewUpdate().Model((*OrderItem)(nil)).
			Set("item_id = ?", items[2].ID).Where("order_id = ? AND item_id = ?", order.ID, items[1].ID).Exec(ctx)))
		o.Results = append(o.Results, resultOf(db.NewDelete().Model(&links[0]).WherePK().Exec(ctx)))
		require.NoError(t, db.NewSelect().Model(&o.Loaded).Relation("Items").Where("o.id = ?", order.ID).Scan(ctx))
		return o
	})
	require.Equal(t, want, got)
	require.Equal(t, []result{{RowsAffected: 1}, {RowsAffected: 3}, {RowsAffected: 2}, {RowsAffected: 1}, {RowsAffected: 1}}, got.Results)
	require.Equal(t, []Item{{ID: 3, Name: "pad"}}, got.Loaded.Items)
	e.RequireSameTables()
	e.RequireEntries(suite.By("erin",
		suite.Create("orders", "1", `{"id": 1, "note": "first"}`),
		suite.Create("items", "1", `{"id": 1, "name": "pen"}`),
		suite.Create("items", "2", `{"id": 2, "name": "ink"}`),
		suite.Create("items", "3", `{"id": 3, "name": "pad"}`),
		suite.Associate("orders", "1", "items", "items", "1"),
		suite.Associate("orders", "1", "items", "items", "2"),
		suite.Disassociate("orders", "1", "items", "items", "2"),
		suite.Associate("orders", "1", "items", "items", "3"),
		suite.Disassociate("orders", "1", "items", "items", "1"),
	)...)
	e.RequireReplay()
}
