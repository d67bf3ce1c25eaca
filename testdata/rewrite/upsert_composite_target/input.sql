INSERT INTO stock VALUES (1, 'A-1', 10), (3, 'Z-9', 1) ON CONFLICT (warehouse, sku) DO UPDATE SET qty = stock.qty + excluded.qty RETURNING warehouse, sku, qty
