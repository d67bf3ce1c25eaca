CREATE TABLE categories (name text PRIMARY KEY, discount numeric(4,2) NOT NULL DEFAULT 0);
CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, category text REFERENCES categories, price numeric(10,2) NOT NULL, stock int NOT NULL DEFAULT 0);
CREATE TABLE order_lines (order_id int, product_id int REFERENCES products, qty int NOT NULL);
INSERT INTO categories VALUES ('tools', 0.10), ('toys', 0), ('food', 0.05);
INSERT INTO products VALUES (1, 'hammer', 'tools', 12.50, 10), (2, 'saw', 'tools', 20.00, 0), (3, 'ball', 'toys', 3.00, 100),
    (4, 'apple', 'food', 0.50, 1000), (5, 'kite', 'toys', 15.00, 2);
INSERT INTO order_lines VALUES (100, 1, 2), (100, 3, 1), (101, 3, 5), (102, 1, 1), (102, 5, 1);
