CREATE TABLE stock (warehouse int, sku text, qty int NOT NULL DEFAULT 0, PRIMARY KEY (warehouse, sku));
INSERT INTO stock VALUES (1, 'A-1', 5), (1, 'B-2', 0), (2, 'A-1', 7);
