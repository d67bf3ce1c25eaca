INSERT INTO stock (sku, warehouse, qty) VALUES ('C-3', 2, 1)
